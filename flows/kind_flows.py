"""Flows for every kind (names, reviews, prices): ingest, features, train, score. Each reads top to bottom."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from flows import artifacts, checks, route_library_logs
from flows.retry import fails_in_one_line, io_task_options
from models import cluster
from models.config import TrainConfig
from models.launch import torchrun
from pipeline import commit, drift, objectstore
from pipeline.families import family_of
from pipeline.ingest import ingest
from pipeline.kinds import get_kind
from pipeline.layout import Layout
from pipeline.storage import PART_FILE, PartitionWriter, latest_features, score_commit, stale_reason

route_library_logs()


def of_kind(flow_object, kind: str):
    """The flow named for its kind (ingest-names, train-prices, ...), as the deployments' flows are, so
    that Prefect's runs list says which kind each run is."""
    return flow_object.with_options(name=f"{flow_object.name}-{kind}")


def scorer_of(family: str):
    """The family's scorer. models.jobs loads torch and mlflow (~4 s of CPU), so it is imported by the
    steps that need a model, and an ingest or features run starts without them."""
    from models.jobs import scorer_of

    return scorer_of(family)


@task(cache_policy=NO_CACHE)
def ingest_batch(
    kind: str, sources: list[str], data_root: str | None, text_col: str | None, label_col: str | None
) -> dict:
    layout = Layout.of(kind, data_root)
    return ingest(sources, get_kind(kind), layout, text_col=text_col, label_col=label_col).as_dict()


@task(cache_policy=NO_CACHE)
def build_feature_set(kind: str, data_root: str | None, cfg) -> dict:
    spec = get_kind(kind)
    return family_of(spec).build_features(spec, Layout.of(kind, data_root), cfg)


@task(cache_policy=NO_CACHE)
def train_model(kind: str, data_root: str | None, cfg: TrainConfig, model_options: dict, ddp: dict) -> dict:
    """In this process when one process on one node, else torchrun as a child whose ranks log here."""
    if ddp["nproc"] == 1 and ddp["nnodes"] == 1:
        from models import jobs
        from models.run_scope import Launch

        return jobs.train(kind, data_root, cfg, model_options, Launch(resume=ddp["resume"]))
    spec = {
        "kind": kind,
        "data_root": str(Layout.of(kind, data_root).root),
        "train": cfg.to_dict(),
        "model_options": model_options,
        "resume": ddp["resume"],
    }
    logger = get_run_logger()
    report = torchrun(
        spec, ddp["nproc"], ddp["nnodes"], ddp["node_rank"], ddp["rdzv_endpoint"], log=logger.info
    )
    return report or {"kind": kind, "node_rank": ddp["node_rank"], "note": "rank 0's node reports"}


@task(cache_policy=NO_CACHE, **io_task_options())
def read_input(kind: str, input_path: str | None, ds: str, data_root: str | None, allow_empty: bool):
    """-> (the rows to score, how many input rows the kind's rules rejected); an input with no row to
    score fails, leaving the day's partition as it is, unless allow_empty."""
    spec = get_kind(kind)
    inputs, rejected = scorer_of(spec.family).read(spec, input_path, Layout.of(kind, data_root))
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
def check_request(kind: str, input_path: str | None, ds: str, model_uri: str | None, data_root: str | None):
    return checks.check_score(kind, input_path, ds, model_uri, data_root)


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def load_model(kind: str, model_uri: str, data_root: str | None):
    from models import scoring, tracking

    layout = Layout.of(kind, data_root)
    scorer_of(get_kind(kind).family)  # the family's code, which the loader builds the model from
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return scoring.load(model_uri)


@task(cache_policy=NO_CACHE)
def score_rows(kind: str, model, inputs, ds: str, resolved, data_root: str | None, ray_address: str | None):
    """-> (the day's commit, its partition staged; a sample of its rows for drift; the run's counts).
    Rows are scored and written chunk by chunk, so memory stays bounded on a large input; what a
    killed scoring left under the data root's .staging/ is cleared first. With a Ray address, a text
    day is scored in shards on the cluster's actors and written here in input order; the partition's
    manifest (manifests/<kind>/ds=<ds>.json) says which node scored each shard."""
    spec, layout = get_kind(kind), Layout.of(kind, data_root)
    scorer = scorer_of(spec.family)
    commit.recover(layout.root)
    day = score_commit(layout)
    writer = PartitionWriter(day, layout, ds)
    shards, manifest = None, {"engine": "process", "shards": []}
    if ray_address and not scorer.shardable:
        get_run_logger().info("%s days are scored in one process (no shards); Ray is not used", kind)
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


@task(cache_policy=NO_CACHE)
def drift_report(kind: str, model, inputs, sample, rows: int, ds: str, resolved, thresholds):
    """The day (or a uniform sample of it) against the model's training distributions."""
    spec = get_kind(kind)
    limits = drift.thresholds(spec.drift_thresholds, thresholds)
    report = scorer_of(spec.family).drift(model, inputs, sample, spec, ds, limits)
    report |= {"kind": kind, "ds": ds, "model_name": resolved.name, "model_version": resolved.version}
    if sample.height < rows:
        report |= {"rows_scored": rows, "rows_sampled": sample.height}
    return report


@task(cache_policy=NO_CACHE, **io_task_options())
def publish_day(day, report: dict, kind: str, ds: str, data_root: str | None) -> str:
    """The partition and its drift report in place together: readers see the previous pair or this one."""
    layout = Layout.of(kind, data_root)
    day.write_json(report, layout.drift_report(ds))
    day.apply()
    return str(layout.prediction_partition(ds) / PART_FILE)


@task(cache_policy=NO_CACHE, **io_task_options())  # the tracking store may be a remote server
def log_drift(kind: str, resolved, ds: str, report: dict, data_root: str | None) -> str:
    from models import monitoring

    return monitoring.log_drift(kind, resolved, ds, report, Layout.of(kind, data_root))


@flow(name="ingest", flow_run_name="ingest-{kind}", log_prints=True)
@fails_in_one_line
def ingest_flow(
    kind: str,
    sources: list[str],
    data_root: str | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
) -> dict:
    """Read SOURCES into a bronze batch; bad rows to quarantine with a reason.

    text_col/label_col: source columns holding the text and label (None: the kind's names and aliases).
    """
    checks.check_ingest(kind, sources, text_col, label_col)
    report = ingest_batch(kind, sources, data_root, text_col, label_col)
    artifacts.ingest_table(kind, report)
    get_run_logger().info(
        "rows_in=%d rows_ok=%d rows_quarantined=%d %s",
        report["rows_in"],
        report["rows_ok"],
        report["rows_quarantined"],
        report["reasons"],
    )
    return report


@flow(name="features", flow_run_name="features-{kind}", log_prints=True)
@fails_in_one_line
def features_flow(
    kind: str,
    data_root: str | None = None,
    max_buckets: int | None = None,
    min_freq: int | None = None,
    max_tokens: int | None = None,
    split_ratios: tuple[float, float, float] | None = None,
    lookback: int | None = None,
    target: str | None = None,
) -> dict:
    """Text: vocabularies, splits, length-bucketed shards. Prices: dated windows and a training-period
    scaler. Built from all bronze batches; None means the kind's default."""
    settings = {"split_ratios": split_ratios, "max_buckets": max_buckets, "min_freq": min_freq}
    settings |= {"max_tokens": max_tokens, "lookback": lookback, "target": target}
    cfg = checks.check_features(kind, data_root, settings)
    manifest = build_feature_set(kind, data_root, cfg)
    summary = {k: manifest[k] for k in family_of(get_kind(kind)).summary_keys}
    artifacts.features_table(kind, summary)
    return summary


@flow(name="train", flow_run_name="train-{kind}", log_prints=True)
@fails_in_one_line
def train_flow(
    kind: str,
    data_root: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    patience: int | None = None,
    class_weighting: bool | None = None,
    device: str | None = None,
    seed: int | None = None,
    model_options: dict | None = None,
    nproc: int = 1,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
    resume: bool = False,
    amp: bool | None = None,
    pin_memory: bool | None = None,
    refresh_features: bool = False,
    reference: bool | None = None,
    schedule: str | None = None,
    weight_decay: float | None = None,
    blend: bool | None = None,
) -> dict:
    """Train on the latest features, log to MLflow, register; `champion` moves only on improvement.

    Features older than bronze (batches ingested or removed since) are rebuilt first, with the same
    settings, when refresh_features (the deployments set it; not with resume or nnodes > 1); otherwise
    the run warns that it trains on a stale feature set, in its log, its artifact and its result.

    nproc > 1 or nnodes > 1: torch DDP launched by torchrun (gloo on CPU, nccl on CUDA); run the same
    flow on every node with its node_rank and node 0's rdzv_endpoint HOST:PORT. resume: continue from
    the last complete checkpoint of the interrupted training. Settings left None take the kind's
    family defaults (models.config.FAMILY_DEFAULTS), then TrainConfig's.
    """
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience, "seed": seed}
    settings |= {"class_weighting": class_weighting, "device": device, "amp": amp, "pin_memory": pin_memory}
    settings |= {"reference": reference, "schedule": schedule, "weight_decay": weight_decay, "blend": blend}
    ddp = {"nproc": nproc, "nnodes": nnodes, "node_rank": node_rank, "rdzv_endpoint": rdzv_endpoint}
    run = {"resume": resume, "refresh_features": refresh_features}
    cfg = checks.check_train(kind, data_root, settings, model_options or {}, ddp | run)
    # A resume keeps the features its checkpoint was trained on; with several nodes each would build its
    # own version at once, so multi-node trainings use the features built beforehand.
    if refresh_features and not resume and nnodes == 1:
        fresh_features(kind, data_root)
    stale = stale_reason(Layout.of(kind, data_root))
    if stale:
        get_run_logger().warning(
            "training on stale features: %s; rebuild them with `rnnflow features %s` "
            "(or train with --refresh-features)",
            stale,
            kind,
        )
    report = train_model(kind, data_root, cfg, model_options or {}, ddp | {"resume": resume})
    report["features_stale"] = stale
    if "run_id" in report:
        artifacts.train_table(kind, report)
    return report


def fresh_features(kind: str, data_root: str | None) -> None:
    """Rebuild the feature set, with the settings of the current one, when bronze has changed since."""
    layout = Layout.of(kind, data_root)
    reason = stale_reason(layout)
    if reason is None:
        return
    get_run_logger().info("%s: building features first", reason)
    settings = {}
    if (layout.features / "LATEST").exists():
        config = latest_features(layout)[1]["config"]
        names = ("max_buckets", "min_freq", "max_tokens", "split_ratios", "lookback", "target")
        settings = {k: v for k, v in config.items() if k in names}
    features_flow(kind, data_root, **settings)


@task(cache_policy=NO_CACHE)
def evaluate_model(kind: str, input_path: str, model_uri: str, data_root: str | None) -> dict:
    spec = get_kind(kind)
    return scorer_of(spec.family).evaluate(spec, Layout.of(kind, data_root), input_path, model_uri)


@flow(name="evaluate", flow_run_name="evaluate-{kind}", log_prints=True)
@fails_in_one_line
def evaluate_flow(
    kind: str, input_path: str, model_uri: str | None = None, data_root: str | None = None
) -> dict:
    """Score a labelled file with a pinned version (default: the champion), beside its training's
    TF-IDF reference and the file's majority class; logged as an MLflow evaluation run."""
    spec = get_kind(kind)
    if scorer_of(spec.family).evaluate is None:
        raise ValueError(f"evaluate {kind}: the {spec.family} family cannot be evaluated on a file yet")
    report = evaluate_model(kind, input_path, model_uri or f"models:/{spec.model_name}@champion", data_root)
    artifacts.evaluation_table(kind, input_path, report)
    return report


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def repackage_version(kind: str, model_uri: str, data_root: str | None) -> dict:
    from models import tracking
    from models.repackage import repackage

    layout = Layout.of(kind, data_root)
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return repackage(get_kind(kind), model_uri)


@flow(name="repackage", flow_run_name="repackage-{kind}", log_prints=True)
@fails_in_one_line
def repackage_flow(kind: str, model_uri: str | None = None, data_root: str | None = None) -> dict:
    """Re-register a version packaged with a pickled wrapper (default: the champion) as models from
    code, from its data files alone (nothing is unpickled); its aliases move to the new version."""
    report = repackage_version(kind, model_uri or f"models:/{get_kind(kind).model_name}@champion", data_root)
    get_run_logger().info(
        "%s v%d re-registered as v%d; aliases moved: %s",
        report["model_name"],
        report["from_version"],
        report["version"],
        report["aliases_moved"],
    )
    return report


@task(cache_policy=NO_CACHE)
def drift_plot(kind: str, start: str, end: str, data_root: str | None, plot: str | None) -> dict:
    """The daily drift metrics from start to end as a table, and their trend as a PNG written under the
    data root (reports/) unless `plot` names a file."""
    import tempfile

    import polars as pl

    from models.plots import drift_trend
    from pipeline import monitoring, storage

    layout = Layout.of(kind, data_root)
    frame = monitoring.history(layout, start, end)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        table = str(monitoring.wide(frame))
    target = plot or layout.reports / f"drift-{kind}-{start}-{end}.png"
    with tempfile.TemporaryDirectory() as tmp:
        drawn = drift_trend(frame, kind, Path(tmp) / "trend.png")
        storage.write_bytes_atomic(drawn.read_bytes(), objectstore.as_path(str(target)))
    days = frame.select("ds", "day_verdict").unique().sort("ds")
    return {"table": table, "days": {str(d): v for d, v in days.iter_rows()}, "plot": str(target)}


@flow(name="drift", flow_run_name="drift-{kind}-{start}-{end}", log_prints=True)
@fails_in_one_line
def drift_flow(
    kind: str, start: str, end: str, data_root: str | None = None, plot: str | None = None
) -> dict:
    """The daily drift verdicts and metrics of the days scored from start to end: a table (also as an
    artifact) and a PNG of the trend under the data root's reports/."""
    result = drift_plot(kind, start, end, data_root, plot)
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
    spec = get_kind(kind)
    ray_address = checks.check_ray(ray_address)
    ds, pinned = check_request(kind, input_path, ds, model_uri, data_root)
    inputs, rejected = read_input(kind, input_path, ds, data_root, allow_empty)
    resolved, model = load_model(kind, pinned.uri, data_root)
    get_run_logger().info(
        "scoring with %s v%d, resolved from %s (MLflow run %s)",
        resolved.name,
        resolved.version,
        pinned.requested,
        resolved.run_id,
    )
    day, sample, counts = score_rows(kind, model, inputs, ds, resolved, data_root, ray_address)
    try:
        rows = counts["rows"]
        drifted = drift_report(kind, model, inputs, sample, rows, ds, resolved, drift_thresholds)
        path = publish_day(day, drifted, kind, ds, data_root)
    except BaseException:
        day.discard()
        raise
    monitoring_run = log_drift(kind, resolved, ds, drifted, data_root)
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
    artifacts.score_table(kind, ds, scorer_of(spec.family).input_label(input_path), report)
    artifacts.drift_table(kind, ds, drifted)
    flagged = {
        k: m["value"] for k, m in drifted.get("metrics", {}).items() if m["verdict"] in ("warn", "alert")
    }
    if drifted["verdict"] == "alert":
        message = f"{kind} ds={ds}: drift alert {flagged} (predictions written to {path})"
        logger.warning("%s", message)
        return Completed(name="Drift", message=message, data=report)
    logger.info("%s ds=%s: drift %s %s", kind, ds, drifted["verdict"], flagged or "(every metric ok)")
    return report
