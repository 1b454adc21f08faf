"""`rnnflow evaluate`: score a labelled file with a pinned model version, beside that training's TF-IDF
reference and the file's majority class, and log it as an MLflow evaluation run linked to the version.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
from mlflow.tracking import MlflowClient

from models import packaging, plots, tracking, upkeep
from models.metrics import classification_metrics, report_table
from models.text import scoring
from pipeline.ingest import read_valid
from pipeline.kinds import TextKind
from pipeline.layout import Layout

log = logging.getLogger("rnnflow.evaluate")
NO_PREDICTION = "(no prediction)"


def evaluate_text(kind: TextKind, layout: Layout, input_path: str, model_uri: str) -> dict:
    """-> accuracy and macro-F1 of the model, its reference and the majority class, and the run."""
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    pinned = tracking.resolve(model_uri)
    rows, rejected = read_valid([input_path], kind)
    if rows.is_empty():
        raise ValueError(f"{input_path}: no labelled row passed the {kind.name} rules ({rejected} rejected)")
    texts, truth = rows[kind.text_col], rows[kind.label_col].to_list()
    client = MlflowClient()
    version = client.get_model_version(pinned.name, str(pinned.version))
    predicted = {"model": _labels(packaging.load(pinned.uri), texts, kind)}
    reference_uri = client.get_run(pinned.run_id).data.tags.get("reference_model_uri")
    if version.tags.get("model_role") == "reference":  # the version is its training's reference itself
        reference_uri = None
    if reference_uri:
        try:
            predicted["reference"] = _labels(packaging.load(reference_uri), texts, kind)
        except packaging.ModelRefused as err:  # packaged before models from code: not loaded
            log.warning("the training's reference is left out: %s", err)
    majority = pl.Series(truth).mode().sort()[0]
    predicted["majority"] = [majority] * len(truth)

    said = {p for labels in predicted.values() for p in labels}
    classes = sorted(set(truth) | (said - {None}))
    classes += [NO_PREDICTION] if None in said else []  # an empty text gets no label: counted wrong
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[t] for t in truth])
    metrics, model_stats = {}, None
    for who, labels in predicted.items():
        guess = np.array([index[NO_PREDICTION if p is None else p] for p in labels])
        stats = classification_metrics(y, guess, len(classes))
        metrics |= {f"{who}_accuracy": stats["accuracy"], f"{who}_macro_f1": stats["macro_f1"]}
        model_stats = model_stats or stats
    metrics["rows"], metrics["rows_rejected"] = len(truth), rejected

    experiment = tracking.experiment_id(f"rnnflow-{kind.name}-evaluations", layout.mlflow_artifacts)
    tags = {
        "kind": kind.name,
        "evaluated_model": pinned.name,
        "evaluated_version": str(pinned.version),
        "evaluated_model_uri": pinned.uri,
        "evaluated_run_id": pinned.run_id,
        "input": str(input_path),
    }
    name = f"evaluate-{pinned.name}-v{pinned.version}-{Path(input_path).stem}"
    with mlflow.start_run(experiment_id=experiment, run_name=name, tags=tags | upkeep.owner_tags()) as run:
        mlflow.log_metrics(metrics, model_id=version.model_id)  # shown on the logged model's page too
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            report = {"metrics": metrics, "per_class": report_table(model_stats["per_class"], classes)}
            (work / "evaluation_report.json").write_text(json.dumps(report, indent=2))
            plots.confusion_matrix(model_stats["confusion"], classes, work / "confusion_matrix.png", name)
            mlflow.log_artifact(str(work / "evaluation_report.json"), artifact_path="reports")
            mlflow.log_artifact(str(work / "confusion_matrix.png"), artifact_path="plots")
    client.set_model_version_tag(pinned.name, str(pinned.version), "last_evaluation_run", run.info.run_id)
    log.info(
        "evaluated %s v%d on %s rows of %s: accuracy %.4f (reference %s, majority %.4f)",
        pinned.name,
        pinned.version,
        f"{len(truth):,}",
        input_path,
        metrics["model_accuracy"],
        f"{metrics['reference_accuracy']:.4f}" if "reference_accuracy" in metrics else "n/a",
        metrics["majority_accuracy"],
    )
    return {
        "model_name": pinned.name,
        "model_version": pinned.version,
        "evaluation_run_id": run.info.run_id,
        "experiment_id": experiment,
        **metrics,
    }


def _labels(model, texts: pl.Series, kind: TextKind) -> list[str | None]:
    return scoring.predict(model, texts, kind.text_col)["predicted_label"].to_list()
