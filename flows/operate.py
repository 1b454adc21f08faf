"""Flows that deployments run on a schedule or ad hoc: the daily scoring of one day and the backfill of a
range of days. `ds` comes from the run's scheduled time, so a late or re-run scheduled run scores the
day it was meant for, never the day it happens to run.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed, State

from flows import artifacts
from flows.kind_flows import ingest_flow, train_flow
from flows.retry import fails_in_one_line, io_task_options
from flows.score_flows import score_day_of
from flows.target import Target, resolve
from pipeline import objectstore
from pipeline.kinds import KINDS
from pipeline.predictions import parse_ds
from pipeline.storage import partition_rows, read_drift

MAX_BACKFILL_DAYS = 366
FAN_OUT_POLL_SECONDS = 1.0


def scheduled_date(timezone: str = "UTC") -> str:
    """The date this run was scheduled for, in the schedule's time zone (ad hoc runs: their start)."""
    start = flow_run.scheduled_start_time  # UTC; the creation time for a run nobody scheduled
    return datetime.fromisoformat(str(start)).astimezone(ZoneInfo(timezone)).date().isoformat()


def input_partition(target: Target, ds: str) -> str | None:
    """Where a day's input lands: incoming/<kind>/ds=<ds>/ (text kinds). Prices read the ingested bars."""
    if not target.spec.daily_input:
        return None
    return str(target.layout.incoming / f"ds={ds}")


def _day_run_name() -> str:
    """score-<kind>-<ds>, with ds as the run will resolve it (given, or the scheduled date)."""
    p = flow_run.parameters
    if p.get("ds"):
        return f"score-{p['kind']}-{p['ds']}"
    day = date.fromisoformat(scheduled_date(p.get("timezone") or "UTC")) - timedelta(
        days=p.get("days_back") or 0
    )
    return f"score-{p['kind']}-{day.isoformat()}"


@flow(name="score-day", flow_run_name=_day_run_name, log_prints=True)
@fails_in_one_line
def score_day(
    kind: str,
    ds: str | None = None,
    model_uri: str | None = None,
    data_root: str | None = None,
    timezone: str = "UTC",
    days_back: int = 0,
    drift_thresholds: dict | None = None,
    allow_empty: bool = False,
    ray_address: str | None = None,
):
    """Score one day into predictions/<kind>/ds=<ds>/ (replaced, never appended).

    ds defaults to the scheduled date minus days_back (prices deploy with 1: a 06:00 run forecasts
    today from yesterday's close, the last bar there is then, whether the run is on time or late).
    A text kind whose incoming/<kind>/ds=<ds>/ folder is missing or
    holds no Parquet file is skipped: the run ends in a Completed state named "Skipped" that says which
    folder it expected, and no partition is written (an empty one would pass for "scored, 0 rows");
    an input with no rows fails, leaving the day as it was, unless allow_empty. ray_address (else the
    worker's $RNNFLOW_RAY_ADDRESS): the day is scored in shards on that Ray cluster.
    """
    if ds is None:
        ds = (date.fromisoformat(scheduled_date(timezone)) - timedelta(days=days_back)).isoformat()
    ds = parse_ds(ds)
    target = resolve(kind, data_root)
    source = input_partition(target, ds)
    if source is not None and not _has_parquet(source):
        reason = f"no input partition: expected Parquet files under {source}"
        get_run_logger().warning("skipping %s ds=%s: %s", kind, ds, reason)
        artifacts.skipped_note(kind, ds, reason)
        result = {"kind": kind, "ds": ds, "status": "skipped", "reason": reason}
        return Completed(name="Skipped", message=reason, data=result)
    # the score flow's steps, as tasks of this run: one flow run per scored day, not a run and a subflow
    report = score_day_of(target, source, ds, model_uri, drift_thresholds, allow_empty, ray_address)
    if isinstance(report, State) and report.is_failed():  # a user's error, as one line
        return report
    if isinstance(report, State):  # a drift alert: scored and written, and the run's state says Drift
        return Completed(
            name="Drift",
            message=report.message,
            data={"kind": kind, "ds": ds, "status": "scored", **report.data},
        )
    return {"kind": kind, "ds": ds, "status": "scored", **report}


def _has_parquet(folder: str) -> bool:
    path = objectstore.as_path(folder)
    return path.is_dir() and any(path.rglob("*.parquet"))


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def pin_model(target: Target, model_uri: str):
    from models import tracking  # mlflow: loaded by the runs that score

    layout = target.layout
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return tracking.resolve(model_uri)


@flow(name="backfill", flow_run_name="backfill-{kind}-{start}-{end}", log_prints=True)
@fails_in_one_line
def backfill(
    kind: str,
    start: str,
    end: str,
    model_uri: str | None = None,
    data_root: str | None = None,
    fan_out: int = 0,
    ray_address: str | None = None,
) -> list[dict]:
    """Score every day from start to end (ISO dates, inclusive), each day its own subflow run.

    The champion is pinned once, so every day is scored by one version. A failing day fails alone;
    the backfill then fails naming those days, and re-running it replaces every day's partition.
    fan_out N > 0: each day is instead its own run of the score-<kind>/daily deployment, N at a time,
    so every worker on the pool takes some (start workers with --limit to cap each one).
    ray_address (else $RNNFLOW_RAY_ADDRESS): each day scored here is split into shards on that cluster.
    """
    if fan_out < 0:
        raise ValueError(f"fan_out {fan_out}: give 0 (days run here) or the number of day runs at a time")
    first, last = date.fromisoformat(parse_ds(start)), date.fromisoformat(parse_ds(end))
    if last < first:
        raise ValueError(f"backfill end {end!r} is before start {start!r}")
    days = (last - first).days + 1
    if days > MAX_BACKFILL_DAYS:
        raise ValueError(
            f"backfill of {days} days from {start} to {end}: at most {MAX_BACKFILL_DAYS} per run"
        )
    target = resolve(kind, data_root)
    resolved = pin_model(target, model_uri or target.champion)
    logger = get_run_logger()
    logger.info("backfill %s %s..%s (%d days) with %s", kind, first, last, days, resolved.uri)
    dates = [(first + timedelta(days=offset)).isoformat() for offset in range(days)]
    if fan_out:
        rows = fan_out_days(target, dates, resolved.uri, data_root, fan_out)
    else:
        rows = [score_here(kind, ds, resolved.uri, data_root, ray_address) for ds in dates]
    artifacts.backfill_table(kind, [{**r, "model": f"{resolved.name} v{resolved.version}"} for r in rows])
    failed = [r["ds"] for r in rows if r["status"] == "failed"]
    if failed:
        raise RuntimeError(f"backfill {kind}: {len(failed)} of {days} days failed: {failed}; re-run them")
    skipped = [r["ds"] for r in rows if r["status"] == "skipped"]
    if len(skipped) == days:  # nothing was scored: not a plain green "Completed"
        message = f"all {days} days skipped: no input partition under {input_partition(target, '*')}"
        logger.warning("backfill %s: %s", kind, message)
        return Completed(name="Skipped", message=message, data=rows)
    alerts = [r["ds"] for r in rows if r.get("drift") == "alert"]
    message = f"{days - len(skipped)} of {days} days scored"
    message += f"; {len(skipped)} skipped (no input): {skipped}" if skipped else ""
    if alerts:  # scored and written; the state tells an automation to look
        logger.warning("backfill %s: %s; drift alert on %s", kind, message, alerts)
        return Completed(name="Drift", message=f"{message}; drift alert on {alerts}", data=rows)
    if skipped:
        logger.warning("backfill %s: %s", kind, message)
        return Completed(message=message, data=rows)
    return rows


def score_here(kind: str, ds: str, model_uri: str, data_root: str | None, ray_address: str | None) -> dict:
    """One day as a subflow of this run -> its backfill row."""
    state = score_day(kind, ds, model_uri, data_root, ray_address=ray_address, return_state=True)
    if state.is_failed():
        return {"ds": ds, "status": "failed", "rows": None, "detail": state.message or ""}
    result = state.result()
    detail = result.get("path") or result.get("reason")
    row = {"ds": ds, "status": result["status"], "rows": result.get("rows"), "detail": detail}
    return row | {"drift": result.get("drift")}


def fan_out_days(
    target: Target, dates: list[str], model_uri: str, data_root: str | None, at_once: int
) -> list[dict]:
    """Each day a run of score-<kind>/daily, at most `at_once` in flight -> the backfill rows, in order.
    data_root is passed on as given: each day's run resolves it on its worker."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    kind = target.kind
    name, logger = f"score-{kind}/daily", get_run_logger()
    waiting, running, finished = list(dates), {}, {}
    with get_client(sync_client=True) as client:
        while waiting or running:
            while waiting and len(running) < at_once:
                ds = waiting.pop(0)
                parameters = {"kind": kind, "ds": ds, "model_uri": model_uri, "data_root": data_root}
                run = run_deployment(name, parameters=parameters, timeout=0)
                running[ds] = run.id
                logger.info("ds=%s: flow run %s of %s", ds, run.name, name)
            time.sleep(FAN_OUT_POLL_SECONDS)
            for ds, run_id in list(running.items()):
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    finished[ds] = day_row(target, ds, state)
                    del running[ds]
    return [finished[ds] for ds in dates]


def day_row(target: Target, ds: str, state) -> dict:
    """A fanned-out day's backfill row, from its final state and its partition."""
    if state.name == "Skipped":
        return {"ds": ds, "status": "skipped", "rows": None, "detail": state.message}
    if not state.is_completed():
        return {"ds": ds, "status": "failed", "rows": None, "detail": state.message or state.name}
    layout = target.layout
    rows, drifted = partition_rows(layout, ds), read_drift(layout, ds)
    row = {"ds": ds, "status": "scored", "rows": rows, "detail": str(layout.prediction_partition(ds))}
    return row | {"drift": drifted["verdict"] if drifted else None}


# One flow per kind and step, so deployments read `score-names/daily`, `train-prices/weekly`, ...: the
# entry points of deploy.py.
def per_kind(flow_object, kind: str):
    step = flow_object.name.removesuffix("-day")  # score-day -> score-<kind>
    return flow_object.with_options(name=f"{step}-{kind}")


ingest_names, train_names, score_names = (per_kind(f, "names") for f in (ingest_flow, train_flow, score_day))
ingest_reviews, train_reviews, score_reviews = (
    per_kind(f, "reviews") for f in (ingest_flow, train_flow, score_day)
)
ingest_prices, train_prices, score_prices = (
    per_kind(f, "prices") for f in (ingest_flow, train_flow, score_day)
)
PER_KIND = {"ingest": ingest_flow, "train": train_flow, "score": score_day}


def __getattr__(name: str):
    """The same flows for a kind declared with register_kind ($RNNFLOW_KINDS), e.g. train_toys."""
    step, _, kind = name.partition("_")
    if step in PER_KIND and kind in KINDS:
        flow_object = per_kind(PER_KIND[step], kind)
        globals()[name] = flow_object
        return flow_object
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
