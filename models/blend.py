"""The default text model: the RNN's probabilities averaged with its n-gram reference's.

The reference's share is picked on the validation split from 0.2-0.8, so the RNN always has a real say."""

from __future__ import annotations

import numpy as np

SHARES = tuple(round(0.2 + 0.1 * i, 1) for i in range(7))  # the reference's share: 0.2 ... 0.8


def mix(rnn: np.ndarray, reference: np.ndarray, share: float) -> np.ndarray:
    """(N, C) probabilities of each -> the blend's (N, C)."""
    return (1.0 - share) * rnn + share * reference


def pick_share(rnn_val: np.ndarray, reference_val: np.ndarray, y_val: np.ndarray) -> tuple[float, float]:
    """-> (share, blended val accuracy): the best accuracy; a tie goes to the smaller reference share."""
    best = (SHARES[0], -1.0)
    for share in SHARES:
        accuracy = float((mix(rnn_val, reference_val, share).argmax(-1) == y_val).mean())
        if accuracy > best[1]:
            best = (share, accuracy)
    return best
