"""Prefect artifacts every flow run publishes: what it read, wrote, quarantined and scored, with the
MLflow run and model version, so the Prefect UI answers "what did this run do?" without the logs."""

from __future__ import annotations

import os

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def _key(*parts: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return "-".join(parts).lower().replace("_", "-")


UI_ENV = "RNNFLOW_MLFLOW_UI"  # where the MLflow UI of an embedded store is served (`make mlflow-ui`)


def mlflow_ui(tracking_uri: str | None = None) -> str | None:
    """The MLflow UI's address: the tracking server's, else $RNNFLOW_MLFLOW_UI; None: not known."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return os.environ.get(UI_ENV, "").rstrip("/") or None


def mlflow_run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """A clickable link when the MLflow UI's address is known; else the run id and how to open it."""
    ui = mlflow_ui(tracking_uri)
    if ui:
        return f"[{run_id}]({ui}/#/experiments/{experiment_id}/runs/{run_id})"
    return f"{run_id} (`mlflow ui --backend-store-uri {tracking_uri}`; set ${UI_ENV} for links)"


def mlflow_version_link(name: str, version: int) -> str:
    """The registered version, linked to its page in the MLflow UI when its address is known."""
    ui = mlflow_ui()
    return f"[{name} v{version}]({ui}/#/models/{name}/versions/{version})" if ui else f"{name} v{version}"


def ingest_table(kind: str, report: dict) -> None:
    rows = [
        {"source": source, "rows_ok": n["ok"], "rows_quarantined": n["quarantined"]}
        for source, n in report["per_source"].items()
    ]
    rows.append(
        {"source": "TOTAL", "rows_ok": report["rows_ok"], "rows_quarantined": report["rows_quarantined"]}
    )
    create_table_artifact(
        rows,
        key=_key("ingest", kind),
        description=(
            f"Ingest batch {report['batch_id']}: {report['rows_in']} rows read; bronze "
            f"{report['bronze_path']}; quarantine {report['quarantine_path']}; "
            f"reasons {report['reasons'] or {}}"
        ),
    )


def features_table(kind: str, summary: dict) -> None:
    rows = [{"split": split, "rows": n} for split, n in summary["rows"].items()]
    create_table_artifact(rows, key=_key("features", kind), description=f"Feature set {summary['version']}")


def shown(value) -> object:
    """Numbers for people: floats to 4 decimals, dicts of numbers likewise."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {shown(v)}" for k, v in value.items())
    return value


def train_table(kind: str, report: dict) -> None:
    metrics = {
        k: shown(v)
        for k, v in report.items()
        if k.startswith(("best_val", "test", "baseline", "persistence", "reference")) and v is not None
    }
    rows = [
        {"item": "registered model", "value": mlflow_version_link(report["model_name"], report["version"])},
        {"item": "champion", "value": f"v{report['champion_version']}: {report['champion_decision']}"},
        {
            "item": "MLflow run",
            "value": mlflow_run_link(report["tracking_uri"], report["experiment_id"], report["run_id"]),
        },
        {
            "item": "features",
            "value": f"STALE: {report['features_stale']}"
            if report.get("features_stale")
            else "up to date with bronze",
        },
        *({"item": k, "value": v} for k, v in metrics.items()),
    ]
    create_table_artifact(rows, key=_key("train", kind), description=f"Training of {report['model_name']}")


def score_table(kind: str, ds: str, source: str, report: dict) -> None:
    rows = [
        {"item": "read", "value": source},
        {"item": "rows scored", "value": report["rows"] - report["rows_unscored"]},
        {"item": "rows without a prediction", "value": report["rows_unscored"]},
        {"item": "wrote", "value": report["path"]},
        {"item": "model", "value": mlflow_version_link(report["model_name"], report["model_version"])},
        {"item": "resolved from", "value": report.get("model_uri", "")},
        {
            "item": "MLflow run of the model",
            "value": mlflow_run_link("", report["experiment_id"], report["run_id"]),
        },
    ]
    if report.get("tickers_not_ok"):
        rows.append({"item": "tickers without a clean forecast", "value": str(report["tickers_not_ok"])})
    create_table_artifact(rows, key=_key("score", kind), description=f"Scoring of {kind} for ds={ds}")


def drift_table(kind: str, ds: str, report: dict) -> None:
    """One row per drift metric: value, thresholds, verdict; the description gives the day's verdict."""
    rows = [
        {
            "metric": name,
            "value": m["value"],
            "warn above": m["warn"],
            "alert above": m["alert"],
            "verdict": m["verdict"],
        }
        for name, m in report.get("metrics", {}).items()
    ] or [{"metric": "-", "value": None, "warn above": None, "alert above": None, "verdict": "n/a"}]
    note = f" ({report['note']})" if report.get("note") else ""
    said = f"Drift of {kind} ds={ds} vs training: {report['verdict']} on {report['rows']:,} rows{note}"
    create_table_artifact(rows, key=_key("drift", kind), description=said)


def skipped_note(kind: str, ds: str, reason: str) -> None:
    create_markdown_artifact(f"**Skipped** {kind} ds={ds}: {reason}", key=_key("score", kind))


def backfill_table(kind: str, days: list[dict]) -> None:
    create_table_artifact(
        days, key=_key("backfill", kind), description=f"Backfill of {kind}, one row per day"
    )


def evaluation_table(kind: str, source: str, report: dict) -> None:
    rows = [
        {"item": "model", "value": f"{report['model_name']} v{report['model_version']}"},
        {
            "item": "read",
            "value": f"{source}: {report['rows']:,} rows ({report['rows_rejected']:,} rejected)",
        },
        {"item": "MLflow evaluation run", "value": report["evaluation_run_id"]},
        *(
            {"item": k, "value": shown(v)}
            for k, v in report.items()
            if k.endswith(("_accuracy", "_macro_f1"))
        ),
    ]
    create_table_artifact(rows, key=_key("evaluate", kind), description=f"Evaluation of {kind} on {source}")


def drift_history(kind: str, start: str, end: str, result: dict) -> None:
    """The days' drift verdicts, and where the trend's plot is."""
    rows = [{"ds": ds, "verdict": verdict} for ds, verdict in result["days"].items()]
    create_table_artifact(
        rows,
        key=_key("drift-history", kind),
        description=f"Drift of {kind} from {start} to {end}; plot: {result['plot']}",
    )
