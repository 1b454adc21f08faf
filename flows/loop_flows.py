"""Flows that close the loop: `rnnflow labels` (ground truth for rows scored earlier), `rnnflow monitor`
(realised performance per day and version), `rnnflow history` (every alias move, why and on what
evidence) and `rnnflow rollback` (the champion back to a version that served before, with a reason)."""

import getpass

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import events, route_library_logs, settings
from flows.retry import fails_in_one_line, io_task_options
from flows.target import Target, resolve
from models.config import MonitorOverrides, MonitorSettings
from pipeline import history, labels, objectstore, realised

route_library_logs()
KINDS3 = ("names", "reviews", "prices")
SHOWN = ("at", "alias", "action", "from_version", "to_version", "reason", "actor", "features_version")


def history_table(target: Target) -> list[dict]:
    rows = history.read(target.layout).select(SHOWN).with_columns(pl.col("at").dt.strftime("%F %T"))
    return rows.to_dicts()


@flow(name="history", flow_run_name="history-{kind}", log_prints=True)
@fails_in_one_line
def history_flow(kind: str, data_root: str | None = None) -> list[dict]:
    """The kind's promotion history, oldest first: every move of champion (and challenger), when, from
    which version to which, why, by whom, on which features and code."""
    rows = history_table(resolve(kind, data_root))
    if rows:
        create_table_artifact(key=f"history-{kind}", table=rows, description=f"{kind}: alias moves")
    return rows


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def move_back(target: Target, to_version: int, reason: str, actor: str) -> dict:
    from models import promotion, tracking

    tracking.configure(target.layout.mlflow_db, target.layout.mlflow_artifacts)
    return promotion.rollback(target.layout, target.spec.model_name, to_version, reason, actor)


@flow(name="rollback", flow_run_name="rollback-{kind}-v{to_version}", log_prints=True)
@fails_in_one_line
def rollback_flow(
    kind: str, to_version: int, reason: str, data_root: str | None = None, actor: str | None = None
) -> dict:
    """Move the champion back to `to_version`, a version that served before, and record it (with the
    reason and who asked) in the history and on the versions' tags. A version that does not exist or
    never served is one line, and nothing changes."""
    target = resolve(kind, data_root)
    row = move_back(target, to_version, reason, actor or getpass.getuser())
    get_run_logger().info(
        "%s: champion v%s -> v%s (%s)", kind, row["from_version"], row["to_version"], reason
    )
    return {k: (str(v) if k == "at" else v) for k, v in row.items()}


@task(cache_policy=NO_CACHE, **io_task_options())
def ingest_label_batch(target: Target, sources: list[str], ds: str | None) -> dict:
    return labels.ingest_labels(sources, target.spec, target.layout, ds)


@flow(name="labels", flow_run_name="labels-{kind}", log_prints=True)
@fails_in_one_line
def labels_flow(kind: str, sources: list[str], ds: str | None = None, data_root: str | None = None) -> dict:
    """Ground truth for rows scored earlier (text: day, id and label; prices: day, ticker and the
    realised close), from SOURCES; rows that cannot be matched to a scored row, or carry a bad value,
    go to label-quarantine/<kind>/ with one reason each. ds: the day of rows whose file has no ds."""
    target = resolve(kind, data_root)
    report = ingest_label_batch(target, sources, ds)
    rows = [{"reason": r, "rows": n} for r, n in report["reasons"].items()]
    rows += [{"reason": f["reason"], "rows": f.get("rows", 0), "file": f["source"]} for f in report["files"]]
    create_table_artifact(
        key=f"labels-{kind}",
        table=[{"rows_in": report["rows_in"], "rows_ok": report["rows_ok"], "days": report["days"]}, *rows],
        description=f"{kind}: labels batch {report['batch']}",
    )
    if report["rows_ok"] and not report.get("already_ingested"):
        events.emit(kind, events.LABELS, {"days": report["days"], "rows": report["rows_ok"]})
    get_run_logger().info(
        "labels %s: %d in, %d ok, %d quarantined %s",
        kind,
        report["rows_in"],
        report["rows_ok"],
        report["rows_quarantined"],
        report["reasons"],
    )
    return report


@task(cache_policy=NO_CACHE, **io_task_options())  # the tracking store may be a remote server
def realised_days(target: Target, start: str, end: str, plot: str | None) -> dict:
    import tempfile
    from pathlib import Path

    from models import monitoring
    from models import realised as realised_metrics
    from models.plots import realised_trend
    from pipeline import storage

    rows = realised.served_and_shadow(target.layout, target.spec, start, end)
    frame = realised_metrics.per_day(rows, target.spec)
    if frame.is_empty():
        raise LookupError(
            f"monitor {target.kind}: no scored day from {start} to {end}; score those days first"
        )
    runs = monitoring.log_realised(target.kind, target.spec.model_name, frame, target.layout)
    destination = plot or target.layout.reports / f"realised-{target.kind}-{start}-{end}.png"
    with tempfile.TemporaryDirectory() as tmp:
        drawn = realised_trend(frame, target.kind, Path(tmp) / "trend.png")
        storage.write_bytes_atomic(drawn.read_bytes(), objectstore.as_path(str(destination)))
    return {"rows": frame.to_dicts(), "plot": str(destination), "monitoring_runs": runs}


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def judge_challenger(target: Target, start: str, end: str, cfg: MonitorSettings) -> dict | None:
    from models import challenger

    return challenger.decide(target.layout, target.spec, start, end, cfg.window, cfg.alpha)


def below_threshold(rows: list[dict], cfg: MonitorSettings) -> dict | None:
    """The latest labelled day whose realised accuracy (or RMSE over persistence) misses the threshold."""
    labelled = [r for r in rows if r["rows_labelled"]]
    if not labelled:
        return None
    last = max(labelled, key=lambda r: (r["ds"], r["model_version"]))
    if (
        cfg.min_accuracy is not None
        and last.get("accuracy") is not None
        and last["accuracy"] < cfg.min_accuracy
    ):
        return last | {"threshold": f"accuracy < {cfg.min_accuracy}"}
    ratio = last["rmse"] / last["persistence_rmse"] if last.get("persistence_rmse") else None
    if cfg.max_rmse_ratio is not None and ratio is not None and ratio > cfg.max_rmse_ratio:
        return last | {"threshold": f"RMSE / persistence {ratio:.3f} > {cfg.max_rmse_ratio}"}
    return None


@flow(name="monitor", flow_run_name="monitor-{kind}", log_prints=True)
@fails_in_one_line
def monitor_flow(
    kind: str,
    start: str | None = None,
    end: str | None = None,
    data_root: str | None = None,
    plot: str | None = None,
    monitor: MonitorOverrides | None = None,
    days: int = 30,
) -> dict:
    """Realised performance of the days scored from start to end, per day and model version, from the
    labels known so far: a table (also an artifact), a PNG under reports/, and one MLflow monitoring
    run per version (realised-<kind>-v<N>, metrics stepped by day). With a challenger, the two are
    compared on the same labelled rows; after monitor.window labelled days the challenger is promoted
    when a paired test at monitor.alpha says it is better, and demoted otherwise (recorded in the
    history). A latest labelled day below monitor.min_accuracy (text) or above monitor.max_rmse_ratio
    (prices) emits rnnflow.realised.low, which the retrain automation listens to. Without start and
    end (the daily deployment): the `days` days up to the run's scheduled date."""
    from datetime import date, timedelta

    from flows.operate import scheduled_date
    from pipeline.predictions import parse_ds

    end = parse_ds(end) if end else scheduled_date()
    start = parse_ds(start) if start else (date.fromisoformat(end) - timedelta(days=days - 1)).isoformat()
    cfg = MonitorSettings(**settings.collect("monitor", monitor))
    target = resolve(kind, data_root)
    result = realised_days(target, start, end, plot)
    table = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in result["rows"]]
    create_table_artifact(key=f"monitor-{kind}", table=table, description=f"{kind}: realised {start}..{end}")
    low = below_threshold(result["rows"], cfg)
    if low is not None:
        get_run_logger().warning("%s ds=%s: realised %s", kind, low["ds"], low["threshold"])
        events.emit(
            kind, events.REALISED_LOW, {k: v for k, v in low.items() if not isinstance(v, float) or v == v}
        )
    decision = judge_challenger(target, start, end, cfg)
    if decision is not None and decision["decision"] != "waiting":
        get_run_logger().info("%s: %s", kind, decision["reason"])
        events.emit(kind, events.DECIDED, decision)
    return {"kind": kind, **result, "realised_low": low, "challenger": decision}


# One flow per kind, as deployments name them (ingest-labels-names/manual, monitor-prices/daily, ...)
labels_names, labels_reviews, labels_prices = (
    labels_flow.with_options(name=f"ingest-labels-{k}") for k in KINDS3
)
monitor_names, monitor_reviews, monitor_prices = (
    monitor_flow.with_options(name=f"monitor-{k}") for k in KINDS3
)


def __getattr__(name: str):
    """The same flows for a kind declared with register_kind ($RNNFLOW_KINDS), e.g. monitor_toys."""
    from pipeline.kinds import KINDS

    step, _, kind = name.partition("_")
    flows = {"labels": labels_flow, "monitor": monitor_flow}
    if step in flows and kind in KINDS:
        prefix = "ingest-labels" if step == "labels" else step
        globals()[name] = flows[step].with_options(name=f"{prefix}-{kind}")
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
