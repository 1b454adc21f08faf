"""Training throughput alone vs beside two CPU-bound neighbour processes, with the project's thread
setting (models/threads.py) vs torch's default (one thread per core), side by side in one run.

Usage: python bench/bench_contention.py --data-root data [--kind names] [--seconds 8]
Needs features built first (e.g. `make demo`). Each measurement is a fresh process that trains the
kind's default model for a fixed time on the real train split.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEIGHBOUR = "while True: pass"  # a CPU-bound process that is not ours


def measure(data_root: str, kind: str, threads: int, seconds: float) -> float:
    """Samples per second of one training process with `threads` torch threads."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            "--data-root",
            data_root,
            "--kind",
            kind,
            "--threads",
            str(threads),
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=seconds * 20 + 120,
        env={**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"]


def compare(data_root: str, kind: str, seconds: float) -> dict:
    """{setting: {alone, beside 2 neighbours, slowdown}} for the project's threads and torch's."""
    sys.path.insert(0, str(ROOT))
    from models.threads import available_cpus, default_threads

    settings = {"project": default_threads(), "torch default": available_cpus()}
    results = {}
    for name, threads in settings.items():
        alone = measure(data_root, kind, threads, seconds)
        neighbours = [subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) for _ in range(2)]
        try:
            time.sleep(0.5)
            busy = measure(data_root, kind, threads, seconds)
        finally:
            for proc in neighbours:
                proc.kill()
                proc.wait()
        results[name] = {"threads": threads, "alone": alone, "beside_2": busy, "slowdown": alone / busy}
    return results


def worker(args) -> None:
    import torch

    from models.batching import BucketBatches
    from models.text.rnn import RNNClassifier, RNNClassifierConfig
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.storage import latest_features
    from pipeline.text.features import load_split

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder, manifest = latest_features(Layout.of(args.kind, args.data_root))
    batches = BucketBatches(load_split(folder, manifest, "train"), 64, True, seed=0)
    cfg = RNNClassifierConfig(
        vocab_size=manifest["vocab"]["tokens"]["size"],
        num_classes=manifest["vocab"]["labels"]["size"],
        num_layers=get_kind(args.kind).rnn_layers,
    )
    model = RNNClassifier(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    samples, start, epoch = 0, time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        for tokens, lengths, y in batches.epoch(epoch):
            _, loss = model(tokens, lengths, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            samples += len(y)
            if time.perf_counter() - start >= args.seconds:
                break
        epoch += 1
    print(json.dumps({"samples_per_s": samples / (time.perf_counter() - start)}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--kind", default="names")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    for name, r in compare(args.data_root, args.kind, args.seconds).items():
        print(
            f"{name:14s} {r['threads']} thread(s): alone {r['alone']:8.0f} samples/s, beside 2 neighbours "
            f"{r['beside_2']:8.0f} ({r['slowdown']:.1f}x slower)"
        )


if __name__ == "__main__":
    main()
