"""The n-gram reference trained beside every text model on exactly its splits: fitting, its metrics, and
the champion gate it sets (models/text/job.py)."""

from __future__ import annotations

import math

import numpy as np

from models import tracking
from models.metrics import binary_metrics, classification_metrics
from models.text.ngram import NgramConfig, NgramFit, fit_ngram, predict_proba
from models.train import FitResult
from pipeline.kinds import TextKind
from pipeline.text.vocab import Vocabulary


def gate(model_type: str, reference: NgramFit | None, blended: bool) -> tracking.Reference | None:
    """What the champion gate holds the model to: its reference's val accuracy (none for the n-gram
    model itself, or when the reference was switched off). A blend holds the reference, so it must
    beat it, not tie it, unless the reference is already perfect on val (nothing can beat it)."""
    if model_type == "ngram" or reference is None:
        return None
    strict = blended and reference.val_accuracy < 1.0
    return tracking.Reference("its n-gram reference", reference.val_accuracy, strict=strict)


def xy(kind: TextKind, labels: Vocabulary, frame) -> tuple[list[str], np.ndarray]:
    """One split's texts and label ids (rows whose label the vocabulary lacks are not in the shards)."""
    ids = np.array([labels.index[v] for v in frame[kind.label_col].to_list()], dtype=np.int64)
    return frame[kind.text_col].to_list(), ids


def train_reference(kind: TextKind, labels: Vocabulary, texts: dict, seed: int) -> NgramFit:
    """The n-gram reference on exactly the model's train split, its epoch picked on the same val split."""
    cfg = NgramConfig.for_tokenizer(kind.tokenizer, len(labels))
    return fit_ngram(cfg, xy(kind, labels, texts["train"]), xy(kind, labels, texts["val"]), seed)


def reference_metrics(
    kind: TextKind, labels: Vocabulary, reference: NgramFit, test
) -> tuple[dict, np.ndarray]:
    """-> the reference_* metrics and its test probabilities (N, C)."""
    texts, y = xy(kind, labels, test)
    probs = predict_proba(reference.model, texts)
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


def ngram_result(fitted: NgramFit, train_rows: int) -> FitResult:
    """The n-gram fit in the shape the job reports for every model."""
    rate = train_rows * len(fitted.history) / max(fitted.seconds, 1e-9)
    return FitResult(
        "val_accuracy",
        history=fitted.history,
        best_epoch=fitted.best_epoch,
        best_value=fitted.val_accuracy,
        samples_per_s=rate,
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
