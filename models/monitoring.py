"""Drift reports in MLflow: one monitoring run per scored partition, its metrics linked to the model
version's logged model, and the version's tags saying how it fared on the latest day."""

from __future__ import annotations

from datetime import UTC, datetime

import mlflow
from mlflow.entities import Metric
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


def log_realised(kind: str, model_name: str, frame, layout: Layout) -> dict[int, str]:
    """Realised performance per day into one monitoring run per model version (realised-<kind>-v<N>,
    found again on the next monitor run), its metrics stepped by day (step YYYYMMDD, time the day); the
    version's tags show the latest labelled day. -> {version: run id}."""
    from datetime import date

    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    experiment = tracking.experiment_id(f"rnnflow-{kind}-monitoring", layout.mlflow_artifacts)
    client, runs = MlflowClient(), {}
    for version in sorted(set(frame["model_version"].to_list())):
        name = f"realised-{kind}-v{version}"
        found = client.search_runs([experiment], f"attributes.run_name = '{name}'", max_results=1)
        tags = {"kind": kind, "model_name": model_name, "model_version": str(version)}
        note = f"Realised performance of {model_name} v{version} on the days it scored, as labels arrive"
        with mlflow.start_run(
            run_id=found[0].info.run_id if found else None,
            experiment_id=None if found else experiment,
            run_name=None if found else name,
            tags=None if found else tags | {"mlflow.note.content": note} | upkeep.owner_tags(),
        ) as run:
            rows = frame.filter(frame["model_version"] == version).sort("ds")
            metrics = []
            for row in rows.iter_rows(named=True):
                day = date.fromisoformat(row["ds"])  # step YYYYMMDD; time: the day (the UI's "Time" axis)
                step, at = (
                    int(day.strftime("%Y%m%d")),
                    int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000),
                )
                skip = ("ds", "model_version", "role")
                metrics += [
                    Metric(k, float(v), at, step) for k, v in row.items() if k not in skip and v is not None
                ]
            client.log_batch(run.info.run_id, metrics=metrics)
            labelled = rows.filter(rows["rows_labelled"] > 0)
        runs[version] = run.info.run_id
        if labelled.height:
            last = labelled.row(-1, named=True)
            shown = {k: last[k] for k in ("accuracy", "rmse") if last.get(k) is not None}
            latest = {"realised_last_ds": last["ds"], "realised_run_id": run.info.run_id}
            for key, value in (latest | {f"realised_last_{k}": f"{v:.4f}" for k, v in shown.items()}).items():
                client.set_model_version_tag(model_name, str(version), key, value)
    return runs
