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


@pytest.mark.parametrize("world", [2, 3, 4])
def test_rank_batches_are_disjoint_equal_in_number_and_cover_the_epoch(world):
    from models.batching import RankBatches

    rng = np.random.default_rng(0)
    buckets = []
    for length, n in ((3, 37), (5, 20), (9, 11)):  # 68 rows; 64-batches leave an odd remainder
        buckets.append(
            {
                "tokens": rng.integers(1, 9, size=(n, length)),
                "lengths": np.full(n, length),
                "labels": rng.integers(0, 2, size=n),
            }
        )
    base = BucketBatches(buckets, batch_size=8, shuffle=True, seed=3)
    for epoch in (1, 2):
        ranks = [RankBatches(base, r, world) for r in range(world)]
        plans = [rb.plan(epoch) for rb in ranks]
        assert len({len(p) for p in plans}) == 1  # same number of batches on every rank
        seen = [(b, int(i)) for p in plans for b, rows in p for i in rows]
        assert len(seen) == len(set(seen)) == base.num_rows  # disjoint, and every row once
        assert all(len(rows) > 0 for p in plans for _, rows in p)
        again = [RankBatches(base, r, world).plan(epoch) for r in range(world)]
        assert [as_lists(p) for p in plans] == [as_lists(p) for p in again]  # deterministic
    assert as_lists(ranks[0].plan(1)) != as_lists(ranks[0].plan(2))


def as_lists(plan):
    return [(b, rows.tolist()) for b, rows in plan]


def test_rank_batches_reject_more_processes_than_rows():
    from models.batching import RankBatches

    base = BucketBatches(
        [{"tokens": np.ones((1, 2)), "lengths": np.array([2]), "labels": np.array([0])}], 4, False
    )
    with pytest.raises(ValueError, match="cannot be shared by 2 processes"):
        RankBatches(base, 0, 2)


def test_rank_batches_refuse_an_uneven_split_of_single_row_batches():
    from models.batching import RankBatches

    one = [{"tokens": np.ones((1, n)), "lengths": np.array([n]), "labels": np.array([0])} for n in (2, 3, 4)]
    with pytest.raises(ValueError, match="cannot be shared evenly by 2 processes"):
        RankBatches(BucketBatches(one, 4, False), 0, 2).plan(0)
