"""Flows for the text kinds (names, reviews): ingest, features, train, score. Each reads top to bottom."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models import scoring, tracking
from models.classifier_job import train_text_classifier
from models.train import TrainConfig
from pipeline import io
from pipeline.features import FeatureConfig, build_features
from pipeline.ingest import ingest
from pipeline.kinds import get_kind
from pipeline.layout import Layout
from pipeline.predictions import assemble, parse_ds, write_partition


@task(cache_policy=NO_CACHE)
def ingest_batch(
    kind: str, sources: list[str], data_root: str | None, text_col: str | None, label_col: str | None
) -> dict:
    layout = Layout.of(kind, data_root)
    return ingest(sources, get_kind(kind), layout, text_col=text_col, label_col=label_col).as_dict()


@task(cache_policy=NO_CACHE)
def build_feature_set(kind: str, data_root: str | None, cfg: FeatureConfig) -> dict:
    return build_features(get_kind(kind), Layout.of(kind, data_root), cfg)


@task(cache_policy=NO_CACHE)
def train_model(kind: str, data_root: str | None, cfg: TrainConfig, model_options: dict) -> dict:
    return train_text_classifier(get_kind(kind), Layout.of(kind, data_root), cfg, model_options).as_dict()


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def read_input(input_path: str, text_col: str):
    return io.read_scoring_input(Path(input_path), text_col)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)  # the registry may be a remote server
def load_model(kind: str, model_uri: str, data_root: str | None):
    layout = Layout.of(kind, data_root)
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return scoring.load(model_uri)


@task(cache_policy=NO_CACHE)
def score_rows(model, texts, text_col: str):
    return scoring.predict(model, texts, text_col)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def write_predictions(frame, kind: str, data_root: str | None, ds: str) -> str:
    return str(write_partition(frame, Layout.of(kind, data_root), ds))


@flow(name="ingest", flow_run_name="ingest-{kind}", log_prints=True)
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
    report = ingest_batch(kind, sources, data_root, text_col, label_col)
    get_run_logger().info(
        "rows_in=%d rows_ok=%d rows_quarantined=%d %s",
        report["rows_in"],
        report["rows_ok"],
        report["rows_quarantined"],
        report["reasons"],
    )
    return report


@flow(name="features", flow_run_name="features-{kind}", log_prints=True)
def features_flow(
    kind: str,
    data_root: str | None = None,
    max_buckets: int = 32,
    min_freq: int | None = None,
    max_tokens: int | None = None,
    split_ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> dict:
    """Vocabularies, splits and length-bucketed shards from all bronze batches (None: kind default)."""
    cfg = FeatureConfig.for_kind(
        get_kind(kind),
        split_ratios=tuple(split_ratios),
        max_buckets=max_buckets,
        min_freq=min_freq,
        max_tokens=max_tokens,
    )
    manifest = build_feature_set(kind, data_root, cfg)
    return {k: manifest[k] for k in ("version", "rows", "bucket_upper_bounds", "padding", "vocab")}


@flow(name="train", flow_run_name="train-{kind}", log_prints=True)
def train_flow(
    kind: str,
    data_root: str | None = None,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 3e-3,
    patience: int = 3,
    class_weighting: bool = False,
    device: str = "auto",
    seed: int = 0,
    model_options: dict | None = None,
) -> dict:
    """Train on the latest features, log to MLflow, register; `champion` moves only on improvement."""
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        class_weighting=class_weighting,
        device=device,
        seed=seed,
    )
    return train_model(kind, data_root, cfg, model_options or {})


@flow(name="score", flow_run_name="score-{kind}-{ds}", log_prints=True)
def score_flow(
    kind: str, input_path: str, ds: str, model_uri: str | None = None, data_root: str | None = None
) -> dict:
    """Score a Parquet/CSV of texts with models:/<name>@champion; replace predictions/<kind>/ds=<ds>."""
    spec, ds = get_kind(kind), parse_ds(ds)
    model_uri = model_uri or f"models:/{spec.model_name}@champion"
    inputs = read_input(input_path, spec.text_col)
    resolved, model = load_model(kind, model_uri, data_root)
    scored = score_rows(model, inputs[spec.text_col], spec.text_col)
    frame = assemble(
        inputs, scored, spec.text_col, resolved.name, resolved.version, resolved.run_id, datetime.now(UTC)
    )
    path = write_predictions(frame, kind, data_root, ds)
    unscored = frame["predicted_label"].null_count()
    get_run_logger().info(
        "scored %d rows (%d unscorable: empty text) with %s v%d -> %s",
        frame.height,
        unscored,
        resolved.name,
        resolved.version,
        path,
    )
    return {
        "rows": frame.height,
        "rows_unscored": unscored,
        "model_name": resolved.name,
        "model_version": resolved.version,
        "run_id": resolved.run_id,
        "path": path,
    }
