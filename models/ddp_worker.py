"""One DDP rank of a training, as torchrun starts it: `python -m torch.distributed.run ... -m
models.ddp_worker --kind K --spec FILE`. Rank 0 writes the training report to the spec's report path."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from models.distributed import DistInfo, backend
from models.jobs import train
from models.run_scope import Launch
from models.train import TrainConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="models.ddp_worker")
    parser.add_argument("--spec", required=True, help="JSON: kind, data_root, train, model_options, report")
    spec = json.loads(Path(parser.parse_args(argv).spec).read_text())
    info = DistInfo.from_env()
    logging.basicConfig(
        level=logging.INFO,
        format=f"[rank{info.rank}] %(asctime)s %(name)s %(message)s",
        stream=sys.stdout,
        force=True,
    )
    os.environ.setdefault("RNNFLOW_DATA_ROOT", spec["data_root"] or "")
    chosen = backend(spec["train"].get("device", "auto"))
    if chosen == "nccl":
        torch.cuda.set_device(info.local_rank)  # before any collective: each rank on its own GPU
    dist.init_process_group(chosen)
    try:
        report = train(
            spec["kind"],
            spec["data_root"],
            TrainConfig(**spec["train"]),
            spec["model_options"],
            Launch(info, resume=spec["resume"]),
        )
        if info.is_main:
            Path(spec["report"]).write_text(json.dumps(report, default=str))
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
