"""Flows that use a registered model, for every kind: score a day, its drift history, evaluate a labelled
file, repackage an old version. Each reads top to bottom; score_day_of is shared with operate.score_day."""

from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from flows import artifacts, checks, events, route_library_logs
from flows.retry import fails_in_one_line, io_task_options
from flows.target import Target, resolve
from models import cluster
from pipeline import commit, drift, objectstore
from pipeline.storage import PART_FILE, PartitionWriter, score_commit

route_library_logs()


@task(cache_policy=NO_CACHE, **io_task_options())
def read_input(target: Target, input_path: str | None, ds: str, allow_empty: bool):
    """-> (the rows to score, how many input rows the kind's rules rejected); an input with no row to
    score fails, leaving the day's partition as it is, unless allow_empty."""
    kind = target.kind
    inputs, rejected = target.scorer().read(target.spec, input_path, target.layout)
    rows = inputs.height if hasattr(inputs, "height") else inputs.select(pl.len()).collect().item()
    if rows == 0 and not allow_empty:
        what = f"{input_path}" if input_path else f"the ingested {kind}"
        why = f"all {rejected} rows failed the {kind} rules" if rejected else "it holds no rows"
        raise ValueError(
            f"{what}: nothing to score ({why}); the partition ds={ds} is left as it was "
            "(pass --allow-empty to write an empty partition)"
        )
    return inputs, rejected


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def check_request(target: Target, input_path: str | None, ds: str, model_uri: str | None):
    return checks.check_score(target, input_path, ds, model_uri)


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def load_model(target: Target, model_uri: str):
    from models import scoring, tracking

    target.scorer()  # the family's code, which the loader builds the model from
    tracking.configure(target.layout.mlflow_db, target.layout.mlflow_artifacts)
    return scoring.load(model_uri)


@task(cache_policy=NO_CACHE)
def score_rows(target: Target, model, inputs, ds: str, resolved, ray_address: str | None):
    """-> (the day's commit, its partition staged; a sample of its rows for drift; the run's counts).
    Rows are scored and written chunk by chunk, so memory stays bounded on a large input; what a
    killed scoring left under the data root's .staging/ is cleared first. With a Ray address, a text
    day is scored in shards on the cluster's actors and written here in input order; the partition's
    manifest (manifests/<kind>/ds=<ds>.json) says which node scored each shard."""
    spec, layout, scorer = target.spec, target.layout, target.scorer()
    commit.recover(layout.root)
    day = score_commit(layout)
    writer = PartitionWriter(day, layout, ds)
    shards, manifest = None, {"engine": "process", "shards": []}
    if ray_address and not scorer.shardable:
        get_run_logger().info("%s days are scored in one process (no shards); Ray is not used", spec.name)
    elif ray_address:
        shards, manifest = cluster.sharded(ray_address, resolved, spec.family)
    try:
        extra = {"shards": shards} if shards is not None else {}
        sample, counts = scorer.score(model, inputs, spec, ds, resolved, writer.write, **extra)
        writer.finish()
        nodes = sorted({s["node"] for s in manifest["shards"]})
        manifest |= {"rows": counts["rows"], "model_version": resolved.version, "nodes": nodes}
        day.write_json(manifest, layout.score_manifest(ds))  # published with the partition
        counts |= {"engine": manifest["engine"], "shards": len(manifest["shards"]), "nodes": len(nodes)}
        return day, sample, counts
    except BaseException:
        writer.discard()
        raise


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def shadow_rows(target: Target, day, inputs, ds: str, requested: str, served: int) -> dict | None:
    """The champion's day scored by the challenger too, into shadow/<kind>/ds=<ds>/ (same ids, same
    lineage columns, never served), published with the day; None when there is no challenger."""
    from models import scoring, tracking

    if not requested.endswith("@champion"):  # a pinned version: no shadow
        return None
    try:
        challenger = tracking.resolve(f"models:/{target.spec.model_name}@{tracking.CHALLENGER}")
    except LookupError:
        return None
    if challenger.version == served:
        return None
    resolved, model = scoring.load(challenger.uri)
    writer = PartitionWriter(day, target.layout, ds, folder=target.layout.shadow)
    _, counts = target.scorer().score(model, inputs, target.spec, ds, resolved, writer.write)
    writer.finish()
    return {"challenger_version": resolved.version, "shadow_rows": counts["rows"]}


@task(cache_policy=NO_CACHE)
def drift_report(target: Target, model, inputs, sample, rows: int, ds: str, resolved, thresholds):
    """The day (or a uniform sample of it) against the model's training distributions."""
    spec = target.spec
    limits = drift.thresholds(spec.drift_thresholds, thresholds)
    report = target.scorer().drift(model, inputs, sample, spec, ds, limits)
    report |= {"kind": spec.name, "ds": ds, "model_name": resolved.name, "model_version": resolved.version}
    if sample.height < rows:
        report |= {"rows_scored": rows, "rows_sampled": sample.height}
    return report


@task(cache_policy=NO_CACHE, **io_task_options())
def publish_day(day, report: dict, target: Target, ds: str) -> str:
    """The partition and its drift report in place together: readers see the previous pair or this one."""
    layout = target.layout
    day.write_json(report, layout.drift_report(ds))
    day.apply()
    return str(layout.prediction_partition(ds) / PART_FILE)


@task(cache_policy=NO_CACHE, **io_task_options())  # the tracking store may be a remote server
def log_drift(target: Target, resolved, ds: str, report: dict) -> str:
    from models import monitoring

    return monitoring.log_drift(target.kind, resolved, ds, report, target.layout)


@task(cache_policy=NO_CACHE)
def evaluate_model(target: Target, input_path: str, model_uri: str) -> dict:
    return target.scorer().evaluate(target.spec, target.layout, input_path, model_uri)


@flow(name="evaluate", flow_run_name="evaluate-{kind}", log_prints=True)
@fails_in_one_line
def evaluate_flow(
    kind: str, input_path: str, model_uri: str | None = None, data_root: str | None = None
) -> dict:
    """Score a labelled file with a pinned version (default: the champion), beside its training's
    TF-IDF reference and the file's majority class; logged as an MLflow evaluation run."""
    target = resolve(kind, data_root)
    if target.scorer().evaluate is None:
        raise ValueError(
            f"evaluate {kind}: the {target.spec.family} family cannot be evaluated on a file yet"
        )
    report = evaluate_model(target, input_path, model_uri or target.champion)
    artifacts.evaluation_table(kind, input_path, report)
    return report


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def repackage_version(target: Target, model_uri: str) -> dict:
    from models import tracking
    from models.repackage import repackage

    tracking.configure(target.layout.mlflow_db, target.layout.mlflow_artifacts)
    return repackage(target.spec, model_uri)


@flow(name="repackage", flow_run_name="repackage-{kind}", log_prints=True)
@fails_in_one_line
def repackage_flow(kind: str, model_uri: str | None = None, data_root: str | None = None) -> dict:
    """Re-register a version packaged with a pickled wrapper (default: the champion) as models from
    code, from its data files alone (nothing is unpickled); its aliases move to the new version."""
    target = resolve(kind, data_root)
    report = repackage_version(target, model_uri or target.champion)
    get_run_logger().info(
        "%s v%d re-registered as v%d; aliases moved: %s",
        report["model_name"],
        report["from_version"],
        report["version"],
        report["aliases_moved"],
    )
    return report


@task(cache_policy=NO_CACHE)
def drift_plot(target: Target, start: str, end: str, plot: str | None) -> dict:
    """The daily drift metrics from start to end as a table, and their trend as a PNG written under the
    data root (reports/) unless `plot` names a file."""
    import tempfile

    from models.plots import drift_trend
    from pipeline import monitoring, storage

    kind, layout = target.kind, target.layout
    frame = monitoring.history(layout, start, end)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        table = str(monitoring.wide(frame))
    destination = plot or layout.reports / f"drift-{kind}-{start}-{end}.png"
    with tempfile.TemporaryDirectory() as tmp:
        drawn = drift_trend(frame, kind, Path(tmp) / "trend.png")
        storage.write_bytes_atomic(drawn.read_bytes(), objectstore.as_path(str(destination)))
    days = frame.select("ds", "day_verdict").unique().sort("ds")
    return {"table": table, "days": {str(d): v for d, v in days.iter_rows()}, "plot": str(destination)}


@flow(name="drift", flow_run_name="drift-{kind}-{start}-{end}", log_prints=True)
@fails_in_one_line
def drift_flow(
    kind: str, start: str, end: str, data_root: str | None = None, plot: str | None = None
) -> dict:
    """The daily drift verdicts and metrics of the days scored from start to end: a table (also as an
    artifact) and a PNG of the trend under the data root's reports/."""
    result = drift_plot(resolve(kind, data_root), start, end, plot)
    artifacts.drift_history(kind, start, end, result)
    return {"kind": kind, **result}


@flow(name="score", flow_run_name="score-{kind}-{ds}", log_prints=True)
@fails_in_one_line
def score_flow(
    kind: str,
    input_path: str | None,
    ds: str,
    model_uri: str | None = None,
    data_root: str | None = None,
    drift_thresholds: dict | None = None,
    allow_empty: bool = False,
    ray_address: str | None = None,
) -> dict:
    """Score with models:/<name>@champion into predictions/<kind>/ds=<ds> (replaced on re-run).

    Text kinds score a Parquet/CSV of texts; a text that breaks ingest's rules gets no prediction and
    its reason in `status`. Prices forecast the next close per ticker from the bars up to ds of the
    input file, or of everything ingested when input_path is None. Every day gets a drift report
    (drift/<kind>/ds=<ds>.json, a table artifact, an MLflow monitoring run); an `alert` ends the
    run Completed in a state named Drift. drift_thresholds: {"metric": [warn, alert]} over the kind's.
    The partition and its drift report are published together; an input with no row to score fails
    and leaves the day as it was, unless allow_empty. ray_address (else $RNNFLOW_RAY_ADDRESS): score the
    day in shards on that Ray cluster (text kinds); None scores it in this process."""
    target = resolve(kind, data_root)
    return score_day_of(target, input_path, ds, model_uri, drift_thresholds, allow_empty, ray_address)


def score_day_of(
    target: Target,
    input_path: str | None,
    ds: str,
    model_uri: str | None,
    drift_thresholds: dict | None,
    allow_empty: bool,
    ray_address: str | None,
):
    """score_flow's steps, as tasks of the calling flow run (score_flow's, or a deployment's score-day)."""
    kind = target.kind
    ray_address = checks.check_ray(ray_address)
    ds, pinned = check_request(target, input_path, ds, model_uri)
    inputs, rejected = read_input(target, input_path, ds, allow_empty)
    resolved, model = load_model(target, pinned.uri)
    get_run_logger().info(
        "scoring with %s v%d, resolved from %s (MLflow run %s)",
        resolved.name,
        resolved.version,
        pinned.requested,
        resolved.run_id,
    )
    day, sample, counts = score_rows(target, model, inputs, ds, resolved, ray_address)
    try:
        counts |= shadow_rows(target, day, inputs, ds, pinned.requested, resolved.version) or {}
        rows = counts["rows"]
        drifted = drift_report(target, model, inputs, sample, rows, ds, resolved, drift_thresholds)
        path = publish_day(day, drifted, target, ds)
    except BaseException:
        day.discard()
        raise
    monitoring_run = log_drift(target, resolved, ds, drifted)
    logger = get_run_logger()
    logger.info("wrote %d rows scored by %s v%d -> %s", rows, resolved.name, resolved.version, path)
    if rejected:
        logger.warning("%d input rows failed the %s rules and were not used", rejected, kind)
    report = {
        **counts,
        "input_rows_rejected": rejected,
        "model_name": resolved.name,
        "model_version": resolved.version,
        "run_id": resolved.run_id,
        "experiment_id": resolved.experiment_id,
        "tracking_uri": resolved.tracking_uri,
        "model_uri": pinned.requested,
        "path": path,
        "drift": drifted["verdict"],
        "drift_metrics": {k: m["verdict"] for k, m in drifted.get("metrics", {}).items()},
        "monitoring_run_id": monitoring_run,
    }
    day_event = {"ds": ds, "rows": rows, "model_version": resolved.version, "drift": drifted["verdict"]}
    events.emit(kind, events.SCORED, day_event | {"path": path})
    artifacts.score_table(kind, ds, target.scorer().input_label(input_path), report)
    artifacts.drift_table(kind, ds, drifted)
    flagged = {
        k: m["value"] for k, m in drifted.get("metrics", {}).items() if m["verdict"] in ("warn", "alert")
    }
    if drifted["verdict"] == "alert":
        message = f"{kind} ds={ds}: drift alert {flagged} (predictions written to {path})"
        events.emit(kind, events.DRIFT_ALERT, day_event | {"metrics": flagged, "message": message})
        logger.warning("%s", message)
        return Completed(name="Drift", message=message, data=report)
    logger.info("%s ds=%s: drift %s %s", kind, ds, drifted["verdict"], flagged or "(every metric ok)")
    return report
