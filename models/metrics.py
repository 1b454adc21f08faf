"""Classification metrics in numpy: accuracy, macro-F1, per-class report, confusion, baselines."""

from __future__ import annotations

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
