"""The default text model's blend: the reference's share picked on val, a tie held against it."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from models.text.blend import SHARES, mix, pick_share
from models.tracking import ChampionDecision, Reference


def test_the_share_is_picked_on_val_and_a_tie_goes_to_the_rnn():
    y = np.array([0, 1, 1])
    rnn = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])  # wrong on row 1
    ref = np.array([[0.4, 0.6], [0.1, 0.9], [0.5, 0.5]])  # wrong on row 0
    share, accuracy = pick_share(rnn, ref, y)
    assert accuracy == 1.0 and SHARES[0] <= share <= SHARES[-1]
    assert_allclose(mix(rnn, ref, share).sum(-1), 1.0)
    assert pick_share(ref, ref, y) == (SHARES[0], 1 / 3)  # nothing to gain: the smallest share


def test_a_blend_that_only_ties_its_reference_is_a_loss():
    strict = Reference("its TF-IDF reference", 0.8, strict=True)
    decision = ChampionDecision(False, 1, None, "best_val_accuracy", 0.8, None, "", strict, False)
    assert "LOSES TO its TF-IDF reference (0.8000)" in decision.message
    won = ChampionDecision(True, 1, None, "best_val_accuracy", 0.81, None, "", strict, True)
    assert "beats its TF-IDF reference (0.8000); first champion" in won.message


def test_the_gate_wants_a_win_that_is_not_noise():
    from types import SimpleNamespace

    from models.text.reference import gate

    y = np.array([0, 1] * 200)
    reference = SimpleNamespace(
        val_accuracy=0.9, val_probs=np.eye(2)[np.where(np.arange(400) % 10, y, 1 - y)]
    )
    assert gate(y, y, None) is None  # no reference, no gate
    clear = gate(y, y, reference)  # right on every row the reference gets wrong (40): not noise
    assert clear.verdict and "McNemar on val p=0.000" in clear.note
    close = y.copy()
    close[np.flatnonzero(np.arange(400) % 10 == 0)[:37]] = (
        1 - y[np.flatnonzero(np.arange(400) % 10 == 0)[:37]]
    )
    slight = gate(close, y, reference)  # 0.9075 against 0.9: more accurate, within noise
    assert not slight.verdict
