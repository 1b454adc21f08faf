"""What a text training writes besides its model: the registered model's description, the champion's
re-score on the new features, and the reports and plots of the run (models/text/text_job.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow

from models import packaging, plots
from models.metrics import report_table
from models.text import scoring
from pipeline.kinds import TextKind
from pipeline.text.features import split_texts

log = logging.getLogger("rnnflow.job")


def model_description(kind: TextKind, manifest: dict) -> str:
    vocab = manifest["vocab"]
    return "\n".join(
        [
            f"**{kind.model_name}**: {kind.text_col} -> {kind.label_col} ({kind.name} kind of rnnflow).",
            "",
            f"- Data: bronze/{kind.name}/ batches, de-duplicated on ({kind.text_col}, {kind.label_col}); "
            "bad rows are quarantined at ingest with a reason.",
            f"- Features: {kind.tokenizer} tokens, vocabulary from the train split (min_freq "
            f"{manifest['config']['min_freq']}, {vocab['tokens']['size']} tokens), first "
            f"{manifest['config'].get('max_tokens') or 'all'} tokens kept, length-bucketed shards; "
            f"{vocab['labels']['size']} labels.",
            "- Model: embedding -> (bidirectional) GRU/LSTM -> mean+max or last-step pooling -> linear, "
            "trained as independent members whose probabilities are averaged (param model.members), "
            "by default blended with the TF-IDF reference trained on the same splits (see each version's "
            "params and blend_reference_share).",
            "- Metrics: best_val_accuracy (picks the champion; higher is better), test_accuracy and "
            "test_macro_f1 beside the majority baseline and the TF-IDF reference (registered as a version "
            "of its own, tagged model_role=reference, when the served model does not beat it)"
            + (", test_f1 and test_roc_auc for the positive class." if kind.positive_label else "."),
            f"- Score: `rnnflow score {kind.name} --input FILE --ds YYYY-MM-DD`, or "
            f"`mlflow.pyfunc.load_model('models:/{kind.model_name}@champion').predict(df)` with a "
            f"`{kind.text_col}` column.",
        ]
    )


def champion_accuracy(kind: TextKind, version: int, folder: Path, manifest: dict) -> float | None:
    """Accuracy of a registered version on this feature set's validation split (None: cannot load)."""
    val = split_texts(folder, manifest, "val")
    try:
        model = packaging.load(f"models:/{kind.model_name}/{version}")
    except Exception as err:  # an old or broken version must not block a new one
        log.warning("champion v%d could not be loaded to re-score it (%s); it will be replaced", version, err)
        return None
    predicted = scoring.predict(model, val[kind.text_col], kind.text_col)["predicted_label"]
    return float((predicted == val[kind.label_col]).fill_null(False).mean())


def log_reports(work, history, test_metrics, baseline, labels, manifest, binary=None, curves=None) -> None:
    report = {
        "test": {k: test_metrics[k] for k in ("accuracy", "macro_f1")},
        "majority_baseline": dict(baseline),
        "per_class": report_table(test_metrics["per_class"], labels),
    }
    if binary:  # positive-class F1 and ROC AUC, for the model and for the baseline
        report["positive_label"] = binary["positive_label"]
        report["test"].update(f1=binary["test_f1"], roc_auc=binary["test_roc_auc"])
        report["majority_baseline"].update(
            f1=binary["baseline_test_f1"], roc_auc=binary["baseline_test_roc_auc"]
        )
    (work / "classification_report.json").write_text(json.dumps(report, indent=2))
    (work / "features_manifest.json").write_text(json.dumps(manifest, indent=2))
    (work / "history.json").write_text(json.dumps(history, indent=2))
    if all("train_loss" in row for row in history):  # epochs of an RNN (a TF-IDF fit has none)
        plots.loss_curves(history, work / "loss_curves.png", **(curves or {}))
    plots.confusion_matrix(test_metrics["confusion"], labels, work / "confusion_matrix.png", "Test set")
    for name in ("classification_report.json", "features_manifest.json", "history.json"):
        mlflow.log_artifact(str(work / name), artifact_path="reports")
    for name in ("loss_curves.png", "confusion_matrix.png"):
        if (work / name).exists():
            mlflow.log_artifact(str(work / name), artifact_path="plots")
