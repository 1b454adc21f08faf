"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import classification_metrics, majority_baseline


def test_accuracy_macro_f1_and_confusion():
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 0])
    m = classification_metrics(y_true, y_pred, 3)
    assert m["accuracy"] == pytest.approx(0.6)
    # f1: class0 p=.5 r=.5 -> .5; class1 p=2/3 r=1 -> .8; class2 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["confusion"].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_majority_baseline_uses_training_labels():
    base = majority_baseline(np.array([2, 2, 1]), np.array([2, 1, 2, 2]), 3)
    assert base["class"] == 2 and base["accuracy"] == pytest.approx(0.75)
