"""Classification metrics in numpy: accuracy, macro-F1, per-class report, confusion, baselines, ROC AUC."""

from __future__ import annotations

import math

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class(matrix: np.ndarray) -> dict[str, np.ndarray]:
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    matrix = confusion(y_true, y_pred, num_classes)
    stats = per_class(matrix)
    present = stats["support"] > 0  # macro over classes that occur in y_true
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(stats["f1"][present].mean()) if present.any() else 0.0,
        "confusion": matrix,
        "per_class": stats,
    }


def majority_baseline(train_labels: np.ndarray, y_true: np.ndarray, num_classes: int) -> dict:
    """Always predict the most frequent training class."""
    majority = int(np.bincount(train_labels, minlength=num_classes).argmax())
    metrics = classification_metrics(y_true, np.full_like(y_true, majority), num_classes)
    return {"class": majority, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def report_table(stats: dict[str, np.ndarray], labels: list[str]) -> list[dict]:
    """Per-class rows for a JSON/CSV report."""
    return [
        {
            "label": label,
            "precision": round(float(stats["precision"][i]), 4),
            "recall": round(float(stats["recall"][i]), 4),
            "f1": round(float(stats["f1"][i]), 4),
            "support": int(stats["support"][i]),
        }
        for i, label in enumerate(labels)
    ]


def regression_metrics(actual: np.ndarray, forecast: np.ndarray, last: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, MAPE (%) and directional accuracy (sign of forecast - last == sign of actual - last)."""
    if len(actual) == 0:
        return {"rmse": float("nan"), "mae": float("nan"), "mape": float("nan"), "directional_accuracy": 0.0}
    error = forecast - actual
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(100 * np.mean(np.abs(error) / np.abs(actual))),
        "directional_accuracy": float(np.mean(np.sign(forecast - last) == np.sign(actual - last))),
    }


def binary_f1(y_true01: np.ndarray, y_pred01: np.ndarray) -> float:
    """F1 of the positive class (1/True); 0.0 when there is no positive in truth or prediction."""
    y, p = np.asarray(y_true01).astype(bool), np.asarray(y_pred01).astype(bool)
    tp, fp, fn = int((y & p).sum()), int((~y & p).sum()), int((y & ~p).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def roc_auc(y_true01: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by ranks (Mann-Whitney U); tied scores share their average rank.

    Returns nan when y_true01 holds only one class: the area is undefined, and a run can still log it.
    """
    y, s = np.asarray(y_true01).astype(bool), np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"roc_auc needs two 1-d arrays of one length, got shapes {y.shape} and {s.shape}")
    if np.isnan(s).any():
        raise ValueError("roc_auc scores hold NaN; score every row (e.g. drop empty texts) first")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)  # 1-based average rank of each tie group
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(y_true: np.ndarray, probs: np.ndarray, positive: int, majority: int) -> dict:
    """Positive-class F1 and ROC AUC of a model's probabilities (N, C) and of the majority baseline.

    The baseline predicts its class with a constant score, so its ROC AUC is 0.5 (nan: one class only).
    """
    y = np.asarray(y_true) == positive
    constant = np.full(len(y), float(majority == positive))
    return {
        "f1": binary_f1(y, probs.argmax(-1) == positive),
        "roc_auc": roc_auc(y, probs[:, positive]),
        "baseline_f1": binary_f1(y, constant.astype(bool)),
        "baseline_roc_auc": roc_auc(y, constant),
    }


def _two_sided_p(z: float) -> float:
    return float(math.erfc(abs(z) / math.sqrt(2)))


def diebold_mariano(actual: np.ndarray, forecast: np.ndarray, other: np.ndarray) -> float:
    """p-value of the Diebold-Mariano test that two one-step forecasts are equally accurate in squared
    error (d = e^2 - e_other^2; h = 1, so no autocovariance terms; the Harvey-Leybourne-Newbold small-sample
    factor; two-sided, normal). Windows of several tickers count as independent: an approximation."""
    d = (np.asarray(forecast) - actual) ** 2 - (np.asarray(other) - actual) ** 2
    n = len(d)
    if n < 3:
        return 1.0
    if float(np.var(d)) == 0.0:  # every pair differs by the same amount: certain unless that is zero
        return 0.0 if float(d[0]) != 0.0 else 1.0
    stat = float(np.mean(d)) / math.sqrt(float(np.var(d, ddof=1)) / n) * math.sqrt((n - 1) / n)
    return _two_sided_p(stat)


def mcnemar(y: np.ndarray, predicted: np.ndarray, other: np.ndarray) -> float:
    """p-value of McNemar's test that two classifiers are equally accurate on the same rows (the rows only
    one of them gets right decide; continuity-corrected, chi-square with 1 degree of freedom)."""
    right, other_right = np.asarray(predicted) == y, np.asarray(other) == y
    b, c = int((right & ~other_right).sum()), int((~right & other_right).sum())
    if b + c == 0:
        return 1.0
    chi2 = (abs(b - c) - 1) ** 2 / (b + c)
    return _two_sided_p(math.sqrt(chi2))


SIGNIFICANT = 0.05  # below this p-value a difference is reported as one; above, "no better than"


def compared(name: str, ours: float, theirs: float, other: str, p_value: float, lower_better: bool) -> str:
    """A verdict that does not call noise a win: beats / no better than / worse than, with the p-value."""
    better = ours < theirs if lower_better else ours > theirs
    figures = f"{ours:.4f} vs {theirs:.4f}, p={p_value:.3f}"
    if p_value >= SIGNIFICANT:
        return f"no better than {other} on test {name} ({figures}: a difference within noise)"
    return f"{'beats' if better else 'WORSE than'} {other} on test {name} ({figures})"


def wilson_interval(share: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (directional accuracy over n test days)."""
    if n == 0:
        return (0.0, 1.0)
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(centre - half), float(centre + half))
