"""The TF-IDF reference trained beside every text model on exactly its splits (models/text/tfidf.py): fitting,
its metrics, and the champion gate it sets (models/text/rnn_job.py)."""

from __future__ import annotations

import math

import numpy as np

from models import tracking
from models.metrics import SIGNIFICANT, binary_metrics, classification_metrics, mcnemar
from models.text.tfidf import TfidfFit, fit_tfidf
from models.train import FitResult
from pipeline.kinds import TextKind
from pipeline.text.vocab import Vocabulary

NAME = "its TF-IDF reference"


def gate(served_val: np.ndarray, y_val: np.ndarray, reference: TfidfFit | None) -> tracking.Reference | None:
    """What the champion gate holds the served model to: its reference on the same val rows. It beats the
    reference only when more accurate and the difference is not noise (McNemar on the val predictions,
    p < 0.05); else the reference is the better model this training produced. None: no reference."""
    if reference is None:
        return None
    ours = float((served_val == y_val).mean()) if len(y_val) else 0.0
    p_value = mcnemar(y_val, served_val, reference.val_probs.argmax(-1))
    beaten = ours > reference.val_accuracy and p_value < SIGNIFICANT
    note = f"McNemar on val p={p_value:.3f}"
    return tracking.Reference(NAME, reference.val_accuracy, strict=True, verdict=beaten, note=note)


def xy(kind: TextKind, labels: Vocabulary, frame) -> tuple[list[str], np.ndarray]:
    """One split's texts and label ids (rows whose label the vocabulary lacks are not in the shards)."""
    ids = np.array([labels.index[v] for v in frame[kind.label_col].to_list()], dtype=np.int64)
    return frame[kind.text_col].to_list(), ids


def train_reference(kind: TextKind, labels: Vocabulary, texts: dict, seed: int) -> TfidfFit:
    """The TF-IDF reference on exactly the model's train split, its regularisation picked on val."""
    train, val = xy(kind, labels, texts["train"]), xy(kind, labels, texts["val"])
    return fit_tfidf(kind.tokenizer, train, val, len(labels), seed)


def reference_metrics(
    kind: TextKind, labels: Vocabulary, reference: TfidfFit, test
) -> tuple[dict, np.ndarray]:
    """-> the reference_* metrics and its test probabilities (N, C)."""
    texts, y = xy(kind, labels, test)
    probs = reference.model.predict_proba(texts)
    m = classification_metrics(y, probs.argmax(-1), len(labels))
    out = {
        "reference_val_accuracy": reference.val_accuracy,
        "reference_test_accuracy": m["accuracy"],
        "reference_test_macro_f1": m["macro_f1"],
        "reference_seconds": reference.seconds,
    }
    binary = binary_test_metrics(kind, labels, y, probs, 0)
    if binary:
        out |= {"reference_test_f1": binary["test_f1"], "reference_test_roc_auc": binary["test_roc_auc"]}
    return out, probs


def reference_result(fitted: TfidfFit, train_rows: int) -> FitResult:
    """The TF-IDF fit in the shape the job reports for every model (one "epoch" per C tried)."""
    history = [{"epoch": i + 1, **row} for i, row in enumerate(fitted.history)]
    best = max(range(len(history)), key=lambda i: history[i]["val_accuracy"]) + 1
    rate = train_rows * len(history) / max(fitted.seconds, 1e-9)
    return FitResult(
        "val_accuracy", history=history, best_epoch=best, best_value=fitted.val_accuracy, samples_per_s=rate
    )


def binary_test_metrics(kind: TextKind, labels: Vocabulary, y_test, probs, majority: int) -> dict:
    """test_f1/test_roc_auc and the majority baseline's, for kinds with a positive label ({} otherwise).

    Undefined values (ROC AUC on a test split with one class only) are None, and are not logged.
    """
    positive = labels.index.get(kind.positive_label) if kind.positive_label else None
    if positive is None:
        return {}
    m = binary_metrics(y_test, probs, positive, majority)
    values = {
        "test_f1": m["f1"],
        "test_roc_auc": m["roc_auc"],
        "baseline_test_f1": m["baseline_f1"],
        "baseline_test_roc_auc": m["baseline_roc_auc"],
    }
    return {k: None if math.isnan(v) else float(v) for k, v in values.items()}
