"""Training throughput of length buckets vs random padded batches vs packed sequences, side by side.

Usage: python bench/bench_batching.py [--data-root data] [--kind names] [--epochs 1]
Needs features built first (e.g. `make demo`). Prints samples/s and the ratio to length buckets.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.batching import BucketBatches
from models.text.rnn import RNNClassifier, RNNClassifierConfig
from pipeline.layout import Layout
from pipeline.storage import latest_features
from pipeline.text.features import load_split


def one_bucket(buckets: list[dict]) -> list[dict]:
    """All rows in one bucket padded to the global longest: batches become random-length mixes."""
    width = max(b["tokens"].shape[1] for b in buckets)
    tokens = np.concatenate(
        [np.pad(b["tokens"], ((0, 0), (0, width - b["tokens"].shape[1]))) for b in buckets]
    )
    return [
        {
            "tokens": tokens,
            "lengths": np.concatenate([b["lengths"] for b in buckets]),
            "labels": np.concatenate([b["labels"] for b in buckets]),
        }
    ]


def run(model: RNNClassifier, batches: BucketBatches, epochs: int) -> tuple[float, float]:
    """-> (samples per second, share of processed positions that were padding)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    real = padded = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        for tokens, lengths, y in batches.epoch(epoch):
            _, loss = model(tokens, lengths, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            real += int(lengths.sum())
            padded += tokens.numel()
    seconds = time.perf_counter() - start
    return batches.num_rows * epochs / seconds, 1 - real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--kind", default="names")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    folder, manifest = latest_features(Layout.of(args.kind, args.data_root))
    buckets = load_split(folder, manifest, "train")
    cfg = RNNClassifierConfig(
        vocab_size=manifest["vocab"]["tokens"]["size"], num_classes=manifest["vocab"]["labels"]["size"]
    )
    setups = {
        "length buckets": (BucketBatches(buckets, args.batch_size, True, seed=0), False),
        "random batches": (BucketBatches(one_bucket(buckets), args.batch_size, True, seed=0), False),
        "random + packed": (BucketBatches(one_bucket(buckets), args.batch_size, True, seed=0), True),
    }
    print(
        f"{args.kind}: {buckets and sum(len(b['lengths']) for b in buckets):,} train rows, "
        f"batch {args.batch_size}, {args.epochs} epoch(s), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    results = {}
    for name, (batches, pack) in setups.items():
        torch.manual_seed(0)
        model = RNNClassifier(RNNClassifierConfig(**{**cfg.to_dict(), "pack": pack}))
        results[name] = run(model, batches, args.epochs)
    base = results["length buckets"][0]
    for name, (speed, pad) in results.items():
        print(
            f"  {name:16s} {speed:9.0f} samples/s  padding {pad:6.1%}  speed vs buckets {speed / base:5.2f}x"
        )


if __name__ == "__main__":
    main()
