"""Batches drawn bucket by bucket: each batch holds one length bucket, trimmed to its own longest row."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

# inputs (B, T) token ids or (B, T, F) floats, lengths (B,), targets (B,) class ids or floats
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class BucketBatches:
    """Deterministic from (seed, epoch): the same epoch always yields the same batches in one order."""

    def __init__(
        self, buckets: list[dict[str, np.ndarray]], batch_size: int, shuffle: bool, seed: int = 0
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.buckets = [b for b in buckets if len(b["lengths"])]
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed

    @property
    def num_rows(self) -> int:
        return sum(len(b["lengths"]) for b in self.buckets)

    def labels(self) -> np.ndarray:
        return np.concatenate([b["labels"] for b in self.buckets]) if self.buckets else np.array([])

    def plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """(bucket index, row indices) for every batch of this epoch, in the order to run them."""
        rng = np.random.default_rng([self.seed, epoch])
        plan = []
        for b, bucket in enumerate(self.buckets):
            n = len(bucket["lengths"])
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            plan += [(b, order[i : i + self.batch_size]) for i in range(0, n, self.batch_size)]
        if self.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        return plan

    def __len__(self) -> int:
        return len(self.plan(0))

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        for b, rows in self.plan(epoch):
            yield self.batch(b, rows)

    def batch(self, b: int, rows: np.ndarray) -> Batch:
        bucket = self.buckets[b]
        lengths = bucket["lengths"][rows]
        tokens = bucket["tokens"][rows, : int(lengths.max())]  # trim to this batch's longest
        labels = bucket["labels"][rows]
        labels = labels.astype(np.int64) if labels.dtype.kind in "iu" else labels.astype(np.float32)
        return torch.from_numpy(tokens), torch.from_numpy(lengths), torch.from_numpy(labels)


class RankBatches:
    """One process's share of a BucketBatches epoch under DDP.

    All ranks build the same global plan from (seed, epoch). While the number of batches does not divide
    by the world size, the largest batch is split in two (halves stay within one bucket), so every rank
    gets the same number of batches and together the ranks see every row of the epoch exactly once:
    the remainder is neither dropped nor repeated. Rank r takes batches r, r + W, r + 2W, ...
    """

    def __init__(self, base: BucketBatches, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if base.num_rows < world_size:
            raise ValueError(f"{base.num_rows} training rows cannot be shared by {world_size} processes")
        self.base, self.rank, self.world_size = base, rank, world_size

    def global_plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        plan = list(self.base.plan(epoch))
        while len(plan) % self.world_size:
            i = max(range(len(plan)), key=lambda j: len(plan[j][1]))  # the largest (first on ties)
            b, rows = plan[i]
            if len(rows) < 2:
                raise ValueError(
                    f"{self.base.num_rows} rows in {len(plan)} single-row batches cannot be shared evenly by "
                    f"{self.world_size} processes; use fewer processes or a larger --batch-size"
                )
            half = len(rows) // 2
            plan[i : i + 1] = [(b, rows[:half]), (b, rows[half:])]
        return plan

    def plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        return self.global_plan(epoch)[self.rank :: self.world_size]

    @property
    def num_rows(self) -> int:
        return self.base.num_rows  # rows per epoch over all ranks

    def labels(self) -> np.ndarray:
        return self.base.labels()

    def __len__(self) -> int:
        return len(self.plan(0))

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        for b, rows in self.plan(epoch):
            yield self.base.batch(b, rows)
