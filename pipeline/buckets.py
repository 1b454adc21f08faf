"""Length buckets: boundaries chosen from the observed length distribution, and padding statistics."""

from __future__ import annotations

import numpy as np


def fit_boundaries(lengths: np.ndarray, max_buckets: int) -> list[int]:
    """Upper bounds (inclusive) of at most `max_buckets` buckets minimising padded tokens.

    Padding of a bucket = its longest length x its count - its token sum. With few distinct lengths
    every length gets its own bucket (zero padding); otherwise an exact dynamic programme over the
    distinct lengths picks the boundaries.
    """
    if max_buckets < 1:
        raise ValueError(f"max_buckets must be >= 1, got {max_buckets}")
    values, counts = np.unique(np.asarray(lengths, dtype=np.int64), return_counts=True)
    if len(values) <= max_buckets:
        return values.tolist()
    n = len(values)
    cum_n = np.concatenate([[0], np.cumsum(counts)])
    cum_s = np.concatenate([[0], np.cumsum(counts * values)])

    def cost(starts: np.ndarray, j: int) -> np.ndarray:  # one bucket holding distinct values start..j
        return values[j] * (cum_n[j + 1] - cum_n[starts]) - (cum_s[j + 1] - cum_s[starts])

    # best[j]: least padding covering values 0..j with k buckets; start[k, j]: where the last begins.
    best = np.array([cost(np.array([0]), j)[0] for j in range(n)], dtype=np.float64)
    start = np.zeros((max_buckets, n), dtype=np.int64)
    for k in range(1, max_buckets):  # n > max_buckets, so exactly max_buckets buckets is best
        new = np.full(n, np.inf)
        for j in range(k, n):
            starts = np.arange(k, j + 1)
            total = best[starts - 1] + cost(starts, j)
            pick = int(np.argmin(total))
            new[j], start[k, j] = total[pick], starts[pick]
        best = new
    bounds, j = [], n - 1
    for k in range(max_buckets - 1, -1, -1):
        bounds.append(int(values[j]))
        j = start[k, j] - 1
    return sorted(bounds)


def assign_bucket(lengths: np.ndarray, bounds: list[int]) -> np.ndarray:
    """Index of the first bucket whose upper bound holds each length (longer ones go to the last)."""
    idx = np.searchsorted(np.asarray(bounds), np.asarray(lengths), side="left")
    return np.minimum(idx, len(bounds) - 1)


def padding_stats(lengths: np.ndarray, bounds: list[int], batch_size: int, seed: int = 0) -> dict:
    """Share of padding tokens: buckets (batch padded to its own longest) vs the usual alternatives."""
    lengths = np.asarray(lengths, dtype=np.int64)
    real = int(lengths.sum())
    if real == 0:
        return {"real_tokens": 0}
    rng = np.random.default_rng(seed)

    def ratio(padded: int) -> float:
        return round(1.0 - real / padded, 6) if padded else 0.0

    def batched(groups: list[np.ndarray]) -> int:
        padded = 0
        for group in groups:
            group = rng.permutation(group)
            for start in range(0, len(group), batch_size):
                chunk = group[start : start + batch_size]
                padded += int(chunk.max()) * len(chunk)
        return padded

    bucket_of = assign_bucket(lengths, bounds)
    per_bucket = [lengths[bucket_of == b] for b in range(len(bounds))]
    return {
        "real_tokens": real,
        "batch_size": batch_size,
        "bucketed": ratio(batched([g for g in per_bucket if len(g)])),
        "random_batches": ratio(batched([lengths])),
        "pad_to_longest": ratio(int(lengths.max()) * len(lengths)),
    }
