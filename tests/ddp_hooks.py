"""The tests' DDP rank entry point (RNNFLOW_DDP_WORKER=tests.ddp_hooks, set in conftest): models.ddp_worker
with two epoch hooks installed, each switched on by the test that needs it:

- RNNFLOW_TRACE_BATCHES=<dir>: each rank writes the (bucket, rows) of its batches per epoch as JSON;
- RNNFLOW_FAULT=<rank>:<epoch>: that rank is SIGKILLed after that epoch.

and the tests' migrated MLflow store template (tests/mlflow_store.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

from models import ddp_worker, train
from tests import mlflow_store

log = logging.getLogger("rnnflow.train")


def trace_batches(event: str, batches, dist, epoch: int) -> None:
    folder = os.environ.get("RNNFLOW_TRACE_BATCHES")
    if event == "epoch_start" and folder:
        plan = [[int(b), rows.tolist()] for b, rows in batches.plan(epoch)]
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"rank{dist.rank}-epoch{epoch}.json").write_text(json.dumps(plan))


def kill_a_rank(event: str, batches, dist, epoch: int) -> None:
    if event == "epoch_end" and os.environ.get("RNNFLOW_FAULT") == f"{dist.rank}:{epoch}":
        log.error("RNNFLOW_FAULT: killing rank %d after epoch %d", dist.rank, epoch)
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    train.EPOCH_HOOKS.extend([trace_batches, kill_a_rank])
    mlflow_store.install()
    sys.exit(ddp_worker.main())
