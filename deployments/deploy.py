"""Deployment definitions for every kind, registered on the Prefect server at $PREFECT_API_URL.

Per kind: `ingest-<kind>/manual` (ad hoc), `train-<kind>/weekly` and `score-<kind>/daily`; plus
`backfill/scores`. Run `python deployments/deploy.py --data-root DIR` (or `make deploy`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.schedules import Cron

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `pipeline` comes from this checkout

from pipeline.kinds import KINDS  # noqa: E402
from pipeline.layout import resolve_data_root  # noqa: E402

POOL = "rnnflow"
TRAINING_QUEUE = "training"  # concurrency limit 1: two trainings never fight for one GPU
SCORE_CRON = "0 6 * * *"  # every day at 06:00 in --timezone
TRAIN_CRON = "0 2 * * 0"  # Sundays at 02:00 in --timezone


@dataclass(frozen=True)
class Definition:
    entrypoint: str  # flows/<file>.py:<flow object>
    name: str
    description: str
    parameters: dict = field(default_factory=dict)
    cron: str | None = None
    queue: str = "default"
    tags: tuple[str, ...] = ()


def definitions(data_root: str, timezone: str) -> list[Definition]:
    out = []
    for kind, spec in KINDS.items():
        common = {"kind": kind, "data_root": data_root}
        out += [
            Definition(
                f"flows/operate.py:ingest_{kind}",
                "manual",
                f"Ingest {kind} sources into bronze; pass --param sources='[\"FILE\", ...]'.",
                common,
                tags=(kind, "ingest"),
            ),
            Definition(
                f"flows/operate.py:train_{kind}",
                "weekly",
                f"Train {spec.model_name} on the latest features; the champion moves only on improvement.",
                common,
                cron=TRAIN_CRON,
                queue=TRAINING_QUEUE,
                tags=(kind, "train"),
            ),
            Definition(
                f"flows/operate.py:score_{kind}",
                "daily",
                f"Score {kind} for the scheduled date (ds) with {spec.model_name}@champion.",
                # prices forecast today from yesterday's close: ds = the scheduled date - 1
                {**common, "timezone": timezone, "days_back": 1 if spec.family == "prices" else 0},
                cron=SCORE_CRON,
                tags=(kind, "score"),
            ),
        ]
    out.append(
        Definition(
            "flows/operate.py:backfill",
            "scores",
            "Score every day from start to end; --param kind=names start=YYYY-MM-DD end=YYYY-MM-DD.",
            {"data_root": data_root},
            tags=("backfill",),
        )
    )
    return out


def ensure_pool(pool: str) -> None:
    """A process work pool with a `training` queue that runs one flow run at a time."""
    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        try:
            queue = client.read_work_queue_by_name(TRAINING_QUEUE, work_pool_name=pool)
            client.update_work_queue(queue.id, concurrency_limit=1)
        except ObjectNotFound:
            client.create_work_queue(TRAINING_QUEUE, work_pool_name=pool, concurrency_limit=1)


def deploy(data_root: str, pool: str = POOL, timezone: str = "UTC") -> list[str]:
    ensure_pool(pool)
    names = []
    for d in definitions(data_root, timezone):
        flow = Flow.from_source(source=str(ROOT), entrypoint=d.entrypoint)
        flow.deploy(
            name=d.name,
            work_pool_name=pool,
            work_queue_name=d.queue,
            schedules=[Cron(d.cron, timezone=timezone)] if d.cron else None,
            concurrency_limit=1 if d.queue == TRAINING_QUEUE else None,
            parameters=d.parameters,
            description=d.description,
            tags=["rnnflow", *d.tags],
            build=False,
            push=False,
            print_next_steps=False,
            ignore_warnings=True,
        )
        names.append(f"{flow.name}/{d.name}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data folder the runs use (default ./data)")
    parser.add_argument("--pool", default=os.environ.get("RNNFLOW_WORK_POOL", POOL), help="work pool")
    parser.add_argument(
        "--timezone", default=os.environ.get("RNNFLOW_TIMEZONE", "UTC"), help="schedules' time zone (UTC)"
    )
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "deploy: error: set PREFECT_API_URL to the server, e.g. http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    for name in deploy(str(resolve_data_root(args.data_root)), args.pool, args.timezone):
        print(f"deployed {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
