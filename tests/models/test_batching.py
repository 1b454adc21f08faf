"""Bucket batches: one bucket per batch, every row once per epoch, deterministic by (seed, epoch)."""

from __future__ import annotations

import numpy as np
import pytest

from models.batching import BucketBatches
from models.train import TrainConfig, class_weights, resolve_device


def buckets():
    out, next_id = [], 0
    for length, n in ((2, 7), (4, 5), (6, 1)):
        tokens = np.zeros((n, length), dtype=np.int64)
        tokens[:, 0] = np.arange(next_id, next_id + n)  # row id in the first position
        out.append({"tokens": tokens, "lengths": np.full(n, length), "labels": np.zeros(n, dtype=np.int64)})
        next_id += n
    return out


def test_each_epoch_covers_every_row_once_with_single_bucket_batches():
    batches = BucketBatches(buckets(), batch_size=3, shuffle=True, seed=1)
    for epoch in (1, 2):
        seen = []
        for tokens, lengths, _ in batches.epoch(epoch):
            assert lengths.unique().numel() == 1  # one bucket per batch
            assert tokens.shape[1] == int(lengths.max())  # trimmed to its longest row
            seen += tokens[:, 0].tolist()
        assert sorted(seen) == list(range(13))
    assert len(batches) == 3 + 2 + 1


def test_plan_is_deterministic_per_seed_and_epoch():
    a = BucketBatches(buckets(), 3, shuffle=True, seed=7)
    b = BucketBatches(buckets(), 3, shuffle=True, seed=7)
    flat = lambda plan: [(bucket, rows.tolist()) for bucket, rows in plan]  # noqa: E731
    assert flat(a.plan(3)) == flat(b.plan(3))
    assert flat(a.plan(3)) != flat(a.plan(4))


def test_train_config_and_device_errors_name_the_flag():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="tpu")
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda"):
            resolve_device("cuda")


def test_class_weights_are_inverse_frequency():
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])
