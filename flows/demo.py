"""`rnnflow demo`: ingest -> features -> train -> score on real surnames, then a short summary."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.text_flows import features_flow, ingest_flow, score_flow, train_flow
from pipeline.features import export_split_texts
from pipeline.layout import Layout


@task(cache_policy=NO_CACHE)
def export_holdout(kind: str, data_root: str | None, ds: str) -> str:
    layout = Layout.of(kind, data_root)
    path, _ = export_split_texts(layout, "test", layout.incoming / f"ds={ds}" / "holdout.parquet")
    return str(path)


@flow(name="demo", log_prints=True)
def demo_flow(data_root: str | None = None, epochs: int = 6, per_country: int = 1500) -> dict:
    """The whole names pipeline on the names-dataset package; returns what the summary prints."""
    ds = datetime.now(UTC).date().isoformat()
    source = f"names-dataset?per_country={per_country}"
    ingested = ingest_flow("names", [source], data_root)
    features = features_flow("names", data_root)
    trained = train_flow("names", data_root, epochs=epochs)
    holdout = export_holdout("names", data_root, ds)
    scored = score_flow("names", holdout, ds, data_root=data_root)
    return {"ingest": ingested, "features": features, "train": trained, "score": scored}


def summary(result: dict, data_root: str | None) -> str:
    layout = Layout.of("names", data_root)
    ing, feat, tr, sc = result["ingest"], result["features"], result["train"], result["score"]
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{layout.mlflow_db}"
    lines = [
        "",
        "rnnflow demo: names -> nationality",
        f"  ingested      {ing['rows_in']:,} rows: {ing['rows_ok']:,} ok, "
        f"{ing['rows_quarantined']:,} quarantined {ing['reasons'] or ''}".rstrip(),
        f"  features      {sum(feat['rows'].values()):,} rows {feat['rows']}, "
        f"{len(feat['bucket_upper_bounds'])} length buckets, padding "
        f"{feat['padding']['bucketed']:.1%} (random batches {feat['padding']['random_batches']:.1%}, "
        f"pad-to-longest {feat['padding']['pad_to_longest']:.1%})",
        f"  test accuracy {tr['test_accuracy']:.3f} (majority baseline {tr['baseline_accuracy']:.3f}); "
        f"macro-F1 {tr['test_macro_f1']:.3f} (baseline {tr['baseline_macro_f1']:.3f})",
        f"  model         {tr['model_name']} v{tr['version']}; champion is "
        f"v{tr['champion_version']}: {tr['champion_decision']}",
        f"  predictions   {sc['rows']:,} rows scored by v{sc['model_version']} -> {sc['path']}",
        f"  MLflow UI     mlflow ui --backend-store-uri {uri} --port 5000",
    ]
    return "\n".join(lines)
