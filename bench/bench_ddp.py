"""Training throughput of 1 process versus DDP with N processes, side by side on the same features.

Usage: python bench/bench_ddp.py --data-root data [--kind names] [--epochs 2] [--nproc 2]
Needs features built first (e.g. `make demo`). Each run trains and registers a version in a scratch
copy of the data root, so the real registry is untouched. Prints samples/s overall and per rank.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from models import jobs
from models.launch import torchrun
from models.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--kind", default="names")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    cfg = TrainConfig(epochs=args.epochs, patience=args.epochs, device="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, args.nproc):
            root = Path(tmp) / f"root{nproc}"
            shutil.copytree(Path(args.data_root) / "features", root / "features")
            shutil.copytree(Path(args.data_root) / "bronze", root / "bronze")
            started = time.perf_counter()
            if nproc == 1:
                report = jobs.train(args.kind, str(root), cfg, {})
            else:
                spec = {
                    "kind": args.kind,
                    "data_root": str(root),
                    "train": cfg.to_dict(),
                    "model_options": {},
                }
                report = torchrun({**spec, "resume": False}, nproc, log=lambda _line: None)
            rows.append((nproc, report["samples_per_s"], time.perf_counter() - started))
    base = rows[0][1]
    print(f"{args.kind}, {args.epochs} epochs, CPU")
    print(f"{'processes':>9}  {'samples/s':>10}  {'vs 1':>6}  {'wall s':>7}")
    for nproc, rate, wall in rows:
        print(f"{nproc:>9}  {rate:>10,.0f}  {rate / base:>5.2f}x  {wall:>7.1f}")


if __name__ == "__main__":
    main()
