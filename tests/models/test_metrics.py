"""Metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import binary_f1, binary_metrics, classification_metrics, majority_baseline, roc_auc


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


def test_roc_auc_matches_pair_counting_with_ties():
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    # pos 0.5 ties neg 0.5 (counts 1/2), beats 0.2; pos 0.9 beats both -> 3.5 of 4
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9])) == pytest.approx(0.875)
    # three-way tie across classes: pos 0.3 vs neg (0.3, 0.3, 0.1) -> 0.5 + 0.5 + 1; pos 0.7 -> 3
    y, s = np.array([1, 0, 0, 0, 1]), np.array([0.3, 0.3, 0.3, 0.1, 0.7])
    assert roc_auc(y, s) == pytest.approx(5 / 6)


def test_roc_auc_perfect_inverted_constant_and_one_class():
    y = np.array([0, 0, 1, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.2, 0.7, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.3, 0.2, 0.1])) == 0.0
    assert roc_auc(y, np.full(5, 0.42)) == 0.5
    assert np.isnan(roc_auc(np.ones(3), np.array([0.1, 0.5, 0.9])))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(y, np.array([0.1, np.nan, 0.7, 0.8, 0.9]))


def test_binary_f1_is_the_positive_class_f1():
    # tp=2 (rows 0, 4), fp=1 (row 2), fn=1 (row 1) -> 2*2 / (2*2 + 1 + 1)
    assert binary_f1(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1])) == pytest.approx(2 / 3)
    assert binary_f1(np.zeros(3), np.zeros(3)) == 0.0
    assert binary_f1(np.array([1, 0]), np.array([1, 0])) == 1.0


def test_binary_metrics_for_model_and_constant_baseline():
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])  # class 1 = positive
    y = np.array([0, 1, 1, 1])
    m = binary_metrics(y, probs, positive=1, majority=1)
    assert m["roc_auc"] == 1.0 and m["f1"] == pytest.approx(0.8)  # tp=2, fn=1
    assert m["baseline_roc_auc"] == 0.5 and m["baseline_f1"] == pytest.approx(6 / 7)  # tp=3, fp=1
    assert binary_metrics(y, probs, positive=1, majority=0)["baseline_f1"] == 0.0


def test_a_difference_within_noise_is_no_better_and_a_real_one_beats():
    import numpy as np

    from models.metrics import compared, diebold_mariano, mcnemar

    rng = np.random.default_rng(0)
    actual = 100 + rng.normal(0, 1, 500).cumsum()
    last = np.concatenate([[actual[0]], actual[:-1]])  # persistence
    nearly = last + rng.normal(0, 0.01, 500)  # persistence with a whisker of noise
    better = last + 0.8 * (actual - last)  # most of each move, foreseen
    rmse = lambda f: float(np.sqrt(np.mean((f - actual) ** 2)))  # noqa: E731
    p_tie, p_win = diebold_mariano(actual, nearly, last), diebold_mariano(actual, better, last)
    assert p_tie > 0.05 and p_win < 0.001
    tie = compared("RMSE", rmse(nearly), rmse(last), "persistence", p_tie, True)
    assert tie.startswith("no better than persistence") and "within noise" in tie
    assert compared("RMSE", rmse(better), rmse(last), "persistence", p_win, True).startswith("beats")
    y = rng.integers(0, 3, 400)
    same = np.where(rng.random(400) < 0.8, y, (y + 1) % 3)
    assert mcnemar(y, same, same) == 1.0
    assert mcnemar(y, y, same) < 0.001  # right wherever the other is, and on 80 rows more
