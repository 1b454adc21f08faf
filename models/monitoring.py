"""Drift reports in MLflow: one monitoring run per scored partition, its metrics linked to the model
version's logged model, and the version's tags saying how it fared on the latest day."""

from __future__ import annotations

from datetime import UTC, datetime

import mlflow
from mlflow.tracking import MlflowClient

from models import tracking, upkeep
from models.tracking import ResolvedModel
from pipeline.layout import Layout


def log_drift(kind: str, resolved: ResolvedModel, ds: str, report: dict, layout: Layout) -> str:
    """-> the monitoring run's id (experiment rnnflow-<kind>-monitoring)."""
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    experiment = tracking.experiment_id(f"rnnflow-{kind}-monitoring", layout.mlflow_artifacts)
    client = MlflowClient()
    version = client.get_model_version(resolved.name, str(resolved.version))
    tags = {
        "kind": kind,
        "ds": ds,
        "model_name": resolved.name,
        "model_version": str(resolved.version),
        "model_run_id": resolved.run_id,
        "drift_verdict": report["verdict"],
        "mlflow.note.content": f"Drift of {kind} ds={ds} scored by {resolved.name} v{resolved.version}: "
        f"{report['verdict']}",
    }
    name = (
        f"drift-{kind}-{ds}-v{resolved.version}-at-{datetime.now(UTC):%Y%m%dT%H%M%S}"  # a re-score: another
    )
    with mlflow.start_run(experiment_id=experiment, run_name=name, tags=tags | upkeep.owner_tags()) as run:
        metrics = {k: m["value"] for k, m in report.get("metrics", {}).items() if m["value"] is not None}
        metrics["rows"] = report["rows"]
        metrics["alert"] = float(report["verdict"] == "alert")
        mlflow.log_metrics(metrics, model_id=getattr(version, "model_id", None))
        mlflow.log_dict(report, "drift.json")
    if ds >= version.tags.get("drift_last_ds", ""):  # a backfill of older days leaves the newest shown
        latest = {"drift_last_ds": ds, "drift_last_verdict": report["verdict"]}
        for key, value in (latest | {"drift_last_run_id": run.info.run_id}).items():
            client.set_model_version_tag(resolved.name, str(resolved.version), key, value)
    return run.info.run_id
