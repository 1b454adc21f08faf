"""Flows that build, for every kind (names, reviews, prices): ingest, features, train. Each reads top to
bottom; the flows that use a model (score, drift, evaluate, repackage) are in flows/score_flows.py."""

import warnings

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from flows import artifacts, checks, route_library_logs, settings
from flows.retry import fails_in_one_line
from flows.target import Target, resolve
from models.config import (
    LaunchOverrides,
    LaunchSettings,
    ModelOverrides,
    ModelSettings,
    TrainConfig,
    TrainOverrides,
)
from models.launch import torchrun
from pipeline import history
from pipeline.ingest import ingest
from pipeline.settings import FeatureOverrides, FeatureSettings
from pipeline.storage import latest_features, stale_reason

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
    if run.trigger:  # started by an automation: at most one such training per cool-down
        get_run_logger().info("started by %s", run.trigger)
        skip = history.claim_trigger(target.layout, run.trigger, run.cooldown_hours)
        if skip:
            get_run_logger().warning("%s: not training (%s)", kind, skip)
            return Completed(name="Skipped", message=skip, data={"kind": kind, "skipped": skip})
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
