"""Padding and training throughput: real tokens/s of length-bucketed batches vs every batch padded to
the global longest (the seeds' recipe) vs random batches padded to their own longest; same model,
the same share of one epoch each."""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch

from bench.suite.common import Bench, goal

BATCH_SIZE = 64
MAX_BATCHES = 80  # names' epoch has ~260 batches; reviews' ~30-40 (whole)


def one_bucket(buckets: list[dict]) -> list[dict]:
    """Every row in one bucket (padded to the global longest): batches become random-length mixes."""
    width = max(b["tokens"].shape[1] for b in buckets)
    rows = {
        "tokens": np.concatenate(
            [np.pad(b["tokens"], ((0, 0), (0, width - b["tokens"].shape[1]))) for b in buckets]
        ),
        "lengths": np.concatenate([b["lengths"] for b in buckets]),
        "labels": np.concatenate([b["labels"] for b in buckets]),
    }
    return [rows]


def rebucket(buckets: list[dict], count: int) -> list[dict]:
    """The same rows in `count` padding-minimal buckets, however few rows each gets (no 2-batch floor)."""
    from pipeline.buckets import assign_bucket, fit_boundaries

    (rows,) = one_bucket(buckets)
    which = assign_bucket(rows["lengths"], fit_boundaries(rows["lengths"], count))
    out = []
    for b in np.unique(which):
        keep = which == b
        width = int(rows["lengths"][keep].max())
        out.append(
            {
                "tokens": rows["tokens"][keep, :width],
                "lengths": rows["lengths"][keep],
                "labels": rows["labels"][keep],
            }
        )
    return out


def train_epoch(model, batches, pad_to: int | None) -> dict:
    """One epoch's shuffled plan, its first MAX_BATCHES batches at most (an unbiased sample of them;
    a time budget would favour whichever batches are fast): -> real tokens/s, samples/s and the share
    of processed positions that were padding. Two batches warm up first."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step(tokens, lengths, y) -> int:
        if pad_to is not None and tokens.shape[1] < pad_to:
            tokens = torch.nn.functional.pad(tokens, (0, pad_to - tokens.shape[1]))
        _, loss = model(tokens, lengths, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return tokens.numel()

    for batch in itertools.islice(batches.epoch(1), 2):
        step(*batch)
    real = positions = samples = 0
    began = time.perf_counter()
    for tokens, lengths, y in itertools.islice(batches.epoch(0), MAX_BATCHES):
        positions += step(tokens, lengths, y)
        real, samples = real + int(lengths.sum()), samples + len(y)
    took = time.perf_counter() - began
    return {"tokens_per_s": real / took, "samples_per_s": samples / took, "padding": 1 - real / positions}


def run(bench: Bench) -> dict:
    from models.batching import BucketBatches
    from models.text.rnn import RNNClassifier, RNNClassifierConfig
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.storage import latest_features
    from pipeline.text.features import load_split

    rows, goals = [], []
    for kind in ("names", "reviews"):
        folder, manifest = latest_features(Layout.of(kind, bench.root))
        buckets = load_split(folder, manifest, "train")
        cfg = RNNClassifierConfig(
            vocab_size=manifest["vocab"]["tokens"]["size"],
            num_classes=manifest["vocab"]["labels"]["size"],
            num_layers=get_kind(kind).rnn_layers,
        )
        width = max(b["tokens"].shape[1] for b in buckets)
        setups = {
            f"length buckets (default: {len(buckets)})": (buckets, None),
            "32 length buckets, no floor (before)": (rebucket(buckets, 32), None),
            "pad to global max (seeds)": (one_bucket(buckets), width),  # BucketBatches trims: pad back
            "random, padded to batch max": (one_bucket(buckets), None),
        }
        results = {}
        for name, (data, pad_to) in setups.items():
            torch.manual_seed(0)
            batches = BucketBatches(data, BATCH_SIZE, True, seed=0)
            results[name] = train_epoch(RNNClassifier(cfg), batches, pad_to)
        base = results[f"length buckets (default: {len(buckets)})"]
        for name, r in results.items():
            rows.append(
                {"kind": kind, "batches": name, **r, "vs_buckets": r["tokens_per_s"] / base["tokens_per_s"]}
            )
        goals.append(
            goal(f"{kind}: padding of bucketed batches", base["padding"] * 100, 3.0, "%", higher=False)
        )
        pad_max = results["pad to global max (seeds)"]
        speedup = base["tokens_per_s"] / pad_max["tokens_per_s"]
        note = "names are short: step overhead bound, reported only" if kind == "names" else ""
        entry = goal(f"{kind}: bucketed tokens/s over pad-to-max", speedup, 2.0, "x", note=note)
        if kind == "names":
            entry["met"] = None  # the issue sets no speed goal for names
        goals.append(entry)
    return {"title": "Padding and training throughput", "rows": rows, "goals": goals}
