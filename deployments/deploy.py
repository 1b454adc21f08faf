"""Deployment definitions for every kind, registered on the Prefect server at $PREFECT_API_URL.

Per kind: `ingest-<kind>/manual` (ad hoc), `train-<kind>/weekly` and `score-<kind>/daily`; plus
`backfill/scores`. Run `python deployments/deploy.py --data-root DIR` (or `make deploy`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import Flow
from prefect import deploy as prefect_deploy
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `pipeline` comes from this checkout

from pipeline.kinds import KINDS  # noqa: E402
from pipeline.layout import resolve_data_root  # noqa: E402

POOL = "rnnflow"
TRAINING_QUEUE = "training"  # concurrency limit 1: two trainings never fight for one GPU
SCORE_CRON = "0 6 * * *"  # every day at 06:00 in --timezone
TRAIN_CRON = "0 2 * * 0"  # Sundays at 02:00 in --timezone
MONITOR_CRON = "0 7 * * *"  # every day at 07:00, after the day's scoring
MONITOR_DAYS = 30  # the monitor's window of scored days (labels arrive late)
RETRAIN_COOLDOWN_HOURS = 24.0  # an automation starts at most one training per kind in this time


@dataclass(frozen=True)
class Definition:
    entrypoint: str  # flows/<file>.py:<flow object>
    name: str
    description: str
    parameters: dict = field(default_factory=dict)
    cron: str | None = None
    queue: str = "default"
    tags: tuple[str, ...] = ()
    triggers: tuple = ()  # DeploymentEventTrigger: automations that start this deployment on events


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
                f"Build features if bronze changed, then train {spec.model_name}; the champion moves "
                "only on improvement. Also started by a drift alert or low realised performance (at "
                f"most once per {RETRAIN_COOLDOWN_HOURS:g} h).",
                {**common, "launch": {"refresh_features": True}},
                cron=TRAIN_CRON,
                queue=TRAINING_QUEUE,
                tags=(kind, "train"),
                triggers=(retrain_trigger(kind, data_root),),
            ),
            Definition(
                f"flows/loop_flows.py:labels_{kind}",
                "manual",
                f"Ingest labels for scored {kind} rows (ds, id or ticker, label); "
                "pass --param sources='[\"FILE\", ...]'.",
                common,
                tags=(kind, "labels"),
            ),
            Definition(
                f"flows/loop_flows.py:monitor_{kind}",
                "daily",
                f"Realised performance of the last {MONITOR_DAYS} days of {kind}; decides a challenger.",
                {**common, "days": MONITOR_DAYS},
                cron=MONITOR_CRON,
                tags=(kind, "monitor"),
            ),
            Definition(
                f"flows/operate.py:score_{kind}",
                "daily",
                f"Score {kind} for the scheduled date (ds) with {spec.model_name}@champion.",
                # prices forecast today from yesterday's close: ds = the scheduled date - 1
                {**common, "timezone": timezone, "days_back": spec.score_days_back},
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


def retrain_trigger(kind: str, data_root: str):
    """The automation behind train-<kind>/weekly: a drift alert or low realised performance of the kind
    starts a training on the newest bronze, at most once per cool-down (the trigger's window; the
    training also checks it, launch.cooldown_hours); launch.trigger says which event started it."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from flows import events

    return DeploymentEventTrigger(
        name=f"retrain-{kind}-on-drift-or-low-accuracy",
        description=f"Train {kind} when its drift alerts or its realised performance drops",
        expect=set(events.RETRAIN_ON),
        match={"prefect.resource.id": f"{events.PREFIX}.kind.{kind}"},
        posture="Reactive",
        threshold=1,
        within=timedelta(hours=RETRAIN_COOLDOWN_HOURS),
        parameters={
            "kind": kind,
            "data_root": data_root,
            "launch": {
                "refresh_features": True,
                "cooldown_hours": RETRAIN_COOLDOWN_HOURS,
                "trigger": "{{ event.event }} ds={{ event.payload.ds }} (event {{ event.id }})",
            },
        },
    )


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


def code_source(mode: str, git_url: str | None = None, git_commit: str | None = None):
    """Where workers get the flows' code: this checkout's path (`checkout`: workers on this machine), or
    a git repository at one commit (`git`: each run clones it, so a worker needs rnnflow installed but
    no checkout). Default url: the checkout's `origin` remote, else the checkout itself; commit: HEAD."""
    if mode == "checkout":
        return str(ROOT)
    from prefect.runner.storage import GitRepository

    url = git_url or _git("remote", "get-url", "origin") or str(ROOT)
    commit = git_commit or _git("rev-parse", "HEAD")
    if not commit:
        raise DeployFailed(f"--code git: {ROOT} is not a git checkout with a commit; pass --git-commit")
    if _git("status", "--porcelain", "--untracked-files=no"):
        print(f"deploy: note: workers run commit {commit[:12]}, not this checkout's uncommitted changes")
    return GitRepository(url=url, commit_sha=commit)


def _git(*args: str) -> str:
    import subprocess

    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


def deploy(data_root: str, pool: str = POOL, timezone: str = "UTC", source=None) -> list[str]:
    """Register every definition in one call (one summary table); -> `flow/deployment` names."""
    ensure_pool(pool)
    source = source or str(ROOT)
    runners, names = [], []
    for d in definitions(data_root, timezone):
        flow = Flow.from_source(source=source, entrypoint=d.entrypoint)
        runners.append(
            flow.to_deployment(
                name=d.name,
                work_pool_name=pool,
                work_queue_name=d.queue,
                schedules=[Cron(d.cron, timezone=timezone)] if d.cron else None,
                concurrency_limit=1 if d.queue == TRAINING_QUEUE else None,
                parameters=d.parameters,
                description=d.description,
                tags=["rnnflow", *d.tags],
                triggers=list(d.triggers) or None,
            )
        )
        names.append(f"{flow.name}/{d.name}")
    applied = prefect_deploy(
        *runners,
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    if len(applied) < len(runners):  # prefect.deploy reports a failed one in its table and goes on
        raise DeployFailed(
            f"{len(runners) - len(applied)} of {len(runners)} deployments failed (table above)"
        )
    return names


def dry_run(data_root: str, timezone: str = "UTC") -> list[str]:
    """Every definition with its flow loaded from its entrypoint (as a worker would): one line each."""
    lines = []
    for d in definitions(data_root, timezone):
        flow = load_flow_from_entrypoint(str(ROOT / d.entrypoint))
        schedule = f"cron {d.cron!r} {timezone}" if d.cron else "ad hoc"
        lines.append(f"{flow.name}/{d.name}  {d.entrypoint}  queue={d.queue}  {schedule}  {d.parameters}")
    return lines


class DeployFailed(RuntimeError):
    pass


def check_scheduler(names: list[str], timeout: float) -> list[str]:
    """Wait until the server's scheduler has queued a new run for every active scheduled deployment.

    Only runs the scheduler created (auto_scheduled) for after this check began count: a past-due run,
    or one created by hand, says nothing about today's scheduler. -> the deployments still without
    one after `timeout` seconds (the scheduler service is failing: its errors are in the server log).
    """
    began = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        waiting = {}
        for name in names:
            deployment = client.read_deployment_by_name(name)
            if not deployment.paused and any(s.active for s in deployment.schedules):
                waiting[deployment.id] = name
        deadline = time.monotonic() + timeout
        while waiting:
            for deployment_id in list(waiting):
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                        expected_start_time=FlowRunFilterExpectedStartTime(after_=began),
                    ),
                    limit=5,
                )
                if any(run.auto_scheduled for run in runs):
                    waiting.pop(deployment_id)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(1)
    return sorted(waiting.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="data folder the runs use (default ./data)")
    parser.add_argument("--pool", default=os.environ.get("RNNFLOW_WORK_POOL", POOL), help="work pool")
    parser.add_argument(
        "--timezone", default=os.environ.get("RNNFLOW_TIMEZONE", "UTC"), help="schedules' time zone (UTC)"
    )
    parser.add_argument(
        "--scheduler-timeout",
        type=float,
        default=60,
        help="seconds to wait for the server to queue the first scheduled runs (60; 0: do not check)",
    )
    parser.add_argument(
        "--code",
        choices=["checkout", "git"],
        default="checkout",
        help="where workers get the code: this checkout's path (one machine), or git: each run clones "
        "--git-url at --git-commit, so workers need rnnflow installed but no checkout",
    )
    parser.add_argument("--git-url", default=None, help="--code git: repository (default: origin)")
    parser.add_argument("--git-commit", default=None, help="--code git: commit to run (default: HEAD)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="load every deployment's flow and print the table; talk to no server",
    )
    args = parser.parse_args(argv)
    if args.dry_run:
        for line in dry_run(str(resolve_data_root(args.data_root)), args.timezone):
            print(line)
        return 0
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "deploy: error: set PREFECT_API_URL to the server, e.g. http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    try:
        source = code_source(args.code, args.git_url, args.git_commit)
        names = deploy(str(resolve_data_root(args.data_root)), args.pool, args.timezone, source)
    except DeployFailed as err:
        print(f"deploy: error: {err}", file=sys.stderr)
        return 1
    print(f"deployed {len(names)} deployments on work pool {args.pool!r} (table above)")
    if args.scheduler_timeout > 0:
        missing = check_scheduler(names, args.scheduler_timeout)
        if missing:
            print(
                f"deploy: error: after {args.scheduler_timeout:g}s the Prefect server's scheduler has "
                f"created no run for {', '.join(missing)}: its scheduler service is failing, so no "
                "scheduled run will ever start. Look for errors in the server's log; with Prefect 3.8, "
                "SQLAlchemy 2.1 is the known cause: pip install 'sqlalchemy>=2.0,<2.1' and restart "
                "the server.",
                file=sys.stderr,
            )
            return 1
        print("scheduler ok: every scheduled deployment has its next runs queued")
    return 0


if __name__ == "__main__":
    sys.exit(main())
