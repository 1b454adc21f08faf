"""Flows for every kind (names, reviews, prices): ingest, features, train, score. Each reads top to bottom."""

import warnings
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from flows import artifacts, checks, route_library_logs, settings
from flows.retry import fails_in_one_line, io_task_options
from flows.target import Target, resolve
from models import cluster
from models.config import (
    LaunchOverrides,
    LaunchSettings,
    ModelOverrides,
    ModelSettings,
    TrainConfig,
    TrainOverrides,
)
from models.launch import torchrun
from pipeline import commit, drift, objectstore
from pipeline.ingest import ingest
from pipeline.settings import FeatureOverrides, FeatureSettings
from pipeline.storage import PART_FILE, PartitionWriter, latest_features, score_commit, stale_reason

route_library_logs()


def of_kind(flow_object, kind: str):
    """The flow named for its kind (ingest-names, train-prices, ...), as the deployments' flows are, so
    that Prefect's runs list says which kind each run is."""
    return flow_object.with_options(name=f"{flow_object.name}-{kind}")


@task(cache_policy=NO_CACHE)
def ingest_batch(target: Target, sources: list[str], text_col: str | None, label_col: str | None) -> dict:
    return ingest(sources, target.spec, target.layout, text_col=text_col, label_col=label_col).as_dict()


@task(cache_policy=NO_CACHE)
def build_feature_set(target: Target, cfg) -> dict:
    return target.family.build_features(target.spec, target.layout, cfg)


@task(cache_policy=NO_CACHE)
def train_model(target: Target, cfg: TrainConfig, model_options: dict, launch: LaunchSettings) -> dict:
    """In this process when one process on one node, else torchrun as a child whose ranks log here."""
    if launch.nproc == 1 and launch.nnodes == 1:
        from models import jobs
        from models.run_scope import Launch

        return jobs.train(target.kind, target.data_root, cfg, model_options, Launch(resume=launch.resume))
    spec = {
        "kind": target.kind,
        "data_root": target.data_root,
        "train": cfg.to_dict(),
        "model_options": model_options,
        "resume": launch.resume,
    }
    logger = get_run_logger()
    report = torchrun(
        spec, launch.nproc, launch.nnodes, launch.node_rank, launch.rdzv_endpoint, log=logger.info
    )
    return report or {"kind": target.kind, "node_rank": launch.node_rank, "note": "rank 0's node reports"}


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
    target = resolve(kind, data_root)
    checks.check_ingest(target, sources, text_col, label_col)
    report = ingest_batch(target, sources, text_col, label_col)
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
    kind: str, data_root: str | None = None, features: FeatureOverrides | None = None, **flat
) -> dict:
    """Text: vocabularies, splits, length-bucketed shards. Prices: dated windows and a training-period
    scaler. Built from all bronze batches; a setting left unset takes the kind's default.

    features: {"max_buckets": 8, ...} (pipeline/settings.py); the flat names (max_buckets=8) still work,
    with a deprecation warning, for one release."""
    target = resolve(kind, data_root)
    given = (
        settings.collect("features", features) | deprecated(flat, {"features": FeatureSettings})["features"]
    )
    cfg = checks.check_features(target, given)
    manifest = build_feature_set(target, cfg)
    summary = {k: manifest[k] for k in target.family.summary_keys}
    artifacts.features_table(kind, summary)
    return summary


@flow(name="train", flow_run_name="train-{kind}", log_prints=True)
@fails_in_one_line
def train_flow(
    kind: str,
    data_root: str | None = None,
    train: TrainOverrides | None = None,
    model: ModelOverrides | None = None,
    launch: LaunchOverrides | None = None,
    **flat,
) -> dict:
    """Train on the latest features, log to MLflow, register; `champion` moves only on improvement.

    train, model, launch: the settings tree's sections (models/config.py), e.g. train={"epochs": 2},
    model={"hidden_size": 64}, launch={"nproc": 2}; unset fields take the kind's family defaults, then
    $RNNFLOW_<SECTION>_<FIELD>. The flat names of the previous release (epochs=2, model_options={...},
    nproc=2) still work, with a deprecation warning.

    Features older than bronze (batches ingested or removed since) are rebuilt first, with the same
    settings, when launch.refresh_features (the deployments set it; not with resume or nnodes > 1);
    otherwise the run warns that it trains on a stale feature set, in its log, its artifact and its result.
    launch.nproc > 1 or nnodes > 1: torch DDP launched by torchrun (gloo on CPU, nccl on CUDA); run the
    same flow on every node with its node_rank and node 0's rdzv_endpoint HOST:PORT. resume: continue
    from the last complete checkpoint of the interrupted training.
    """
    target = resolve(kind, data_root)
    old = deprecated(flat, {"train": TrainConfig, "model": ModelSettings, "launch": LaunchSettings})
    train_values = settings.collect("train", train) | old["train"]
    model_options = settings.collect("model", model) | old["model"]
    run = LaunchSettings(**(settings.collect("launch", launch) | old["launch"]))
    cfg = checks.check_train(target, train_values, model_options, run)
    # A resume keeps the features its checkpoint was trained on; with several nodes each would build its
    # own version at once, so multi-node trainings use the features built beforehand.
    if run.refresh_features and not run.resume and run.nnodes == 1:
        fresh_features(target)
    stale = stale_reason(target.layout)
    if stale:
        get_run_logger().warning(
            "training on stale features: %s; rebuild them with `rnnflow features %s` "
            "(or train with --refresh-features)",
            stale,
            kind,
        )
    report = train_model(target, cfg, model_options, run)
    report["features_stale"] = stale
    if "run_id" in report:
        artifacts.train_table(kind, report)
    return report


def deprecated(flat: dict, sections: dict[str, type]) -> dict[str, dict]:
    """The previous release's flat parameters, sorted into their sections, with a warning that names the
    new form; an unknown name is one line naming it."""
    out = {section: {} for section in ("train", "model", "features", "launch")}
    for name, value in flat.items():
        if name == "model_options" and "model" in sections:
            out["model"] |= settings.given(value)
            continue
        section = next((s for s, cls in sections.items() if name in cls.model_fields), None)
        if section is None:
            known = ", ".join(sections)
            raise ValueError(
                f"unknown parameter {name!r}; settings go in {known}, e.g. train={{'epochs': 2}}"
            )
        if value is not None:
            out[section][name] = value
    if flat:
        where = {n: next((s for s, c in sections.items() if n in c.model_fields), "model") for n in flat}
        moved = ", ".join(f"{n} -> {s}={{{n!r}: ...}}" for n, s in where.items())
        message = f"flat settings parameters are deprecated (gone in the next release); pass {moved}"
        warnings.warn(message, DeprecationWarning, stacklevel=3)
        get_run_logger().warning("%s", message)
    return out


def fresh_features(target: Target) -> None:
    """Rebuild the feature set, with the settings of the current one, when bronze has changed since."""
    layout = target.layout
    reason = stale_reason(layout)
    if reason is None:
        return
    get_run_logger().info("%s: building features first", reason)
    features = {}
    if (layout.features / "LATEST").exists():
        config = latest_features(layout)[1]["config"]
        features = {k: v for k, v in config.items() if k in FeatureSettings.model_fields}
    features_flow(target.kind, target.data_root, features=features)


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
    artifacts.score_table(kind, ds, target.scorer().input_label(input_path), report)
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
