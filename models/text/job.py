"""One training job for a text kind: features -> fit -> evaluate -> MLflow run -> registered version."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np

from models import checkpoint, descriptions, plots, tracking
from models.batching import BucketBatches
from models.metrics import binary_metrics, classification_metrics, majority_baseline, report_table
from models.run_scope import Launch, training_run
from models.text import blend, scoring
from models.text.ngram import NgramClassifier, NgramConfig, NgramFit, fit_ngram, predict_proba
from models.text.pyfunc import log_text_classifier
from models.text.rnn import RNNClassifier, RNNClassifierConfig
from models.train import (
    FitResult,
    TrainConfig,
    class_weights,
    classification_objective,
    fit,
    predict,
    resolve_device,
    seed_everything,
)
from pipeline.kinds import TextKind
from pipeline.layout import Layout
from pipeline.splits import SPLITS
from pipeline.storage import latest_features
from pipeline.text.features import load_split, sample_texts, split_texts
from pipeline.text.vocab import Vocabulary

log = logging.getLogger("rnnflow.job")
CHAMPION_METRIC = "best_val_accuracy"
MODEL_TYPES = ("rnn", "ngram")  # `rnnflow train --model`
EVAL_BATCH = 512


@dataclass
class TrainReport(tracking.RegisteredRun):
    best_val_accuracy: float
    test_accuracy: float
    test_macro_f1: float
    baseline_accuracy: float
    baseline_macro_f1: float
    best_epoch: int
    epochs_run: int
    device: str
    samples_per_s: float
    # binary kinds (a positive_label, e.g. reviews) only; None for multiclass kinds or when undefined
    test_f1: float | None = None
    test_roc_auc: float | None = None
    baseline_test_f1: float | None = None
    baseline_test_roc_auc: float | None = None
    # the n-gram reference trained in the same run on the same splits (see reference_metrics)
    model_type: str = "rnn"
    reference_val_accuracy: float | None = None
    reference_test_accuracy: float | None = None
    reference_test_macro_f1: float | None = None
    reference_test_f1: float | None = None
    reference_test_roc_auc: float | None = None
    reference_seconds: float | None = None
    # the default RNN model is blended with its reference (models/blend.py): the share, and the RNN alone
    blend_reference_share: float | None = None
    rnn_val_accuracy: float | None = None
    rnn_test_accuracy: float | None = None
    rnn_test_macro_f1: float | None = None


def train_text_classifier(
    kind: TextKind,
    layout: Layout,
    cfg: TrainConfig,
    model_options: dict | None = None,
    launch: Launch | None = None,
) -> TrainReport | None:
    """-> the report on rank 0 (or without DDP); None on the other ranks."""
    launch = launch or Launch()
    options = dict(model_options or {})
    model_type = options.pop("model", "rnn")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"--model {model_type!r}: choose one of {', '.join(MODEL_TYPES)}")
    if model_type == "ngram" and launch.dist.world_size > 1:
        raise ValueError("--model ngram trains in seconds in one process; drop --nproc/--nnodes")
    model_options = options
    folder, manifest = latest_features(layout)
    tokens = Vocabulary.from_json((folder / manifest["vocab"]["tokens"]["file"]).read_text())
    labels = Vocabulary.from_json((folder / manifest["vocab"]["labels"]["file"]).read_text())
    seed_everything(cfg.seed)
    train = BucketBatches(load_split(folder, manifest, "train"), cfg.batch_size, True, cfg.seed)
    val = BucketBatches(load_split(folder, manifest, "val"), EVAL_BATCH, shuffle=False)
    if val.num_rows == 0:
        raise ValueError(
            f"kind {kind.name!r}: the val split of features {manifest['version']} is empty, so nothing "
            "can pick the best epoch or the champion; give some rows split=val, or leave split blank "
            "to have features assign 70/15/15 by hash"
        )
    test = BucketBatches(load_split(folder, manifest, "test"), EVAL_BATCH, shuffle=False)
    if model_type == "ngram":
        model_cfg = NgramConfig.for_tokenizer(kind.tokenizer, len(labels), **model_options)
        model = NgramClassifier(model_cfg)
    else:
        model_options = {"num_layers": kind.rnn_layers} | model_options
        model_cfg = RNNClassifierConfig(
            vocab_size=len(tokens), num_classes=len(labels), pad_id=tokens.pad_id, **model_options
        )
        model = RNNClassifier(model_cfg)
    device = resolve_device(cfg.device, launch.dist.local_rank)
    log.info(
        "training %s on %s: %s train / %s val / %s test rows, %d classes, %d batches per epoch",
        kind.name,
        device,
        f"{train.num_rows:,}",
        f"{val.num_rows:,}",
        f"{test.num_rows:,}",
        len(labels),
        len(train),
    )

    params = {f"train.{k}": v for k, v in cfg.to_dict().items()}
    params |= {f"model.{k}": v for k, v in model_cfg.to_dict().items()}
    params |= {"device": str(device), "train_rows": train.num_rows, "model_type": model_type}
    with training_run(kind.name, layout, manifest, launch, params) as scope:
        texts = {split: split_texts(folder, manifest, split) for split in SPLITS}
        if model_type == "ngram":
            fitted = fit_ngram(model_cfg, *(xy(kind, labels, texts[s]) for s in ("train", "val")), cfg.seed)
            model, result = fitted.model, ngram_result(fitted, train.num_rows)
            for row in fitted.history:
                scope.log_epoch(row)
        else:
            weights = class_weights(train.labels(), len(labels)) if cfg.class_weighting else None
            result = fit(
                model,
                train,
                val,
                cfg,
                classification_objective(),
                on_epoch=scope.log_epoch,
                loss_kwargs={"class_weights": weights},
                dist=launch.dist,
                checkpoints=scope.checkpoints,
                resume=launch.resume,
                extra_state=scope.extra_state,
            )
        if scope.run is None:
            return None
        run, uri, experiment, tags = scope.run, scope.tracking_uri, scope.experiment_id, scope.tags
        reference, ref_metrics, ref_probs = None, {}, None
        if model_type == "ngram":
            reference = fitted
        elif cfg.reference:
            reference = train_reference(kind, labels, texts, cfg.seed)
        if reference is not None:
            ref_metrics, ref_probs = reference_metrics(kind, labels, reference, texts["test"])
            log.info(
                "reference n-gram model: val accuracy %.4f, test accuracy %.4f (%.1fs)",
                ref_metrics["reference_val_accuracy"],
                ref_metrics["reference_test_accuracy"],
                ref_metrics["reference_seconds"],
            )
        mixed = {}  # the RNN blended with its reference: what the RNN alone measured, and the share
        if model_type == "ngram":
            y_test, probs = xy(kind, labels, texts["test"])[1], ref_probs  # the model is its own reference
        else:
            probs, y_test, _ = predict(model, test, device)
            if reference is not None and cfg.blend:
                probs, mixed = blended(
                    kind, labels, model, val, device, reference, texts, probs, ref_probs, y_test
                )
                result.best_value = mixed.pop("val_accuracy")
        test_loss = float(-np.log(np.maximum(probs[np.arange(len(y_test)), y_test], 1e-12)).mean())
        test_metrics = classification_metrics(y_test, probs.argmax(-1), len(labels))
        baseline = majority_baseline(train.labels(), y_test, len(labels))
        binary = binary_test_metrics(kind, labels, y_test, probs, baseline["class"])
        mlflow.log_metrics(
            {
                CHAMPION_METRIC: result.best_value,
                "best_epoch": result.best_epoch,
                "test_loss": test_loss,
                "test_accuracy": test_metrics["accuracy"],
                "test_macro_f1": test_metrics["macro_f1"],
                "baseline_test_accuracy": baseline["accuracy"],
                "baseline_test_macro_f1": baseline["macro_f1"],
                "train_samples_per_s": result.samples_per_s,
                **{f"train_samples_per_s_rank{r}": v for r, v in enumerate(result.samples_per_s_per_rank)},
                **{k: v for k, v in binary.items() if v is not None},
                **{k: v for k, v in ref_metrics.items() if v is not None},
                **mixed,
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            binary_report = {"positive_label": kind.positive_label, **binary} if binary else None
            _log_reports(work, result.history, test_metrics, baseline, labels.tokens, manifest, binary_report)
            model.cpu()
            examples = sample_texts(folder, manifest)
            share = mixed.get("blend_reference_share")
            blend_with = (reference.model, share) if share is not None else None
            info = log_text_classifier(work, kind, model, folder, manifest, examples, blend_with=blend_with)
            if model_type != "ngram" and reference is not None:  # scored beside it by `rnnflow evaluate`
                ref_info = log_text_classifier(
                    work, kind, reference.model, folder, manifest, examples, "reference"
                )
                mlflow.set_tag("reference_model_uri", ref_info.model_uri)
        outcome = tracking.register_and_promote(
            kind.model_name,
            info,
            run.info.run_id,
            tags,
            CHAMPION_METRIC,
            result.best_value,
            manifest["version"],
            rescore=lambda v: champion_accuracy(kind, v, folder, manifest),
            reference=gate(model_type, reference, "blend_reference_share" in mixed),
            descriptions=(
                descriptions.text_model(kind, manifest),
                descriptions.version(
                    CHAMPION_METRIC,
                    result.best_value,
                    manifest,
                    {
                        "test_accuracy": test_metrics["accuracy"],
                        "baseline_test_accuracy": baseline["accuracy"],
                        "test_roc_auc": binary.get("test_roc_auc"),
                        "reference_val_accuracy": ref_metrics.get("reference_val_accuracy"),
                        "reference_test_accuracy": ref_metrics.get("reference_test_accuracy"),
                    },
                ),
            ),
        )
    checkpoint.clear(scope.checkpoints)  # registered: nothing left to resume
    log.info("registered %s v%d; %s", kind.model_name, outcome["version"], outcome["champion_decision"])
    return TrainReport(
        kind=kind.name,
        model_name=kind.model_name,
        run_id=run.info.run_id,
        experiment_id=experiment,
        tracking_uri=uri,
        **outcome,
        best_val_accuracy=result.best_value,
        test_accuracy=test_metrics["accuracy"],
        test_macro_f1=test_metrics["macro_f1"],
        baseline_accuracy=baseline["accuracy"],
        baseline_macro_f1=baseline["macro_f1"],
        best_epoch=result.best_epoch,
        epochs_run=len(result.history),
        device=str(device),
        samples_per_s=result.samples_per_s,
        **binary,
        model_type=model_type,
        **ref_metrics,
        **mixed,
    )


def blended(kind, labels, model, val, device, reference: NgramFit, texts, rnn_test, ref_test, y_test):
    """-> the blend's test probabilities, and the share, the blend's val accuracy and the RNN's own
    val/test metrics (the share is picked on the val split, as the RNN's best epoch was)."""
    rnn_val, y_val, _ = predict(model, val, device)
    val_texts, y_ref = xy(kind, labels, texts["val"])
    if not np.array_equal(y_val, y_ref):  # both read the val shards in the manifest's order
        raise RuntimeError("the val split's shards and texts disagree in row order; rebuild the features")
    ref_val = predict_proba(reference.model, val_texts)
    share, val_accuracy = blend.pick_share(rnn_val, ref_val, y_val)
    rnn_val_accuracy = float((rnn_val.argmax(-1) == y_val).mean())
    alone = classification_metrics(y_test, rnn_test.argmax(-1), len(labels))
    log.info(
        "blend: reference share %.2f, val accuracy %.4f (RNN alone %.4f)",
        share,
        val_accuracy,
        rnn_val_accuracy,
    )
    return blend.mix(rnn_test, ref_test, share), {
        "val_accuracy": val_accuracy,
        "blend_reference_share": share,
        "rnn_val_accuracy": rnn_val_accuracy,
        "rnn_test_accuracy": alone["accuracy"],
        "rnn_test_macro_f1": alone["macro_f1"],
    }


def gate(model_type: str, reference: NgramFit | None, blended: bool) -> tracking.Reference | None:
    """What the champion gate holds the model to: its reference's val accuracy (none for the n-gram
    model itself, or when the reference was switched off). A blend holds the reference, so it must
    beat it, not tie it, unless the reference is already perfect on val (nothing can beat it)."""
    if model_type == "ngram" or reference is None:
        return None
    strict = blended and reference.val_accuracy < 1.0
    return tracking.Reference("its n-gram reference", reference.val_accuracy, strict=strict)


def xy(kind: TextKind, labels: Vocabulary, frame) -> tuple[list[str], np.ndarray]:
    """One split's texts and label ids (rows whose label the vocabulary lacks are not in the shards)."""
    ids = np.array([labels.index[v] for v in frame[kind.label_col].to_list()], dtype=np.int64)
    return frame[kind.text_col].to_list(), ids


def train_reference(kind: TextKind, labels: Vocabulary, texts: dict, seed: int) -> NgramFit:
    """The n-gram reference on exactly the model's train split, its epoch picked on the same val split."""
    cfg = NgramConfig.for_tokenizer(kind.tokenizer, len(labels))
    return fit_ngram(cfg, xy(kind, labels, texts["train"]), xy(kind, labels, texts["val"]), seed)


def reference_metrics(
    kind: TextKind, labels: Vocabulary, reference: NgramFit, test
) -> tuple[dict, np.ndarray]:
    """-> the reference_* metrics and its test probabilities (N, C)."""
    texts, y = xy(kind, labels, test)
    probs = predict_proba(reference.model, texts)
    m = classification_metrics(y, probs.argmax(-1), len(labels))
    out = {
        "reference_val_accuracy": reference.val_accuracy,
        "reference_test_accuracy": m["accuracy"],
        "reference_test_macro_f1": m["macro_f1"],
        "reference_seconds": reference.seconds,
    }
    binary = binary_test_metrics(kind, labels, y, probs, 0)
    if binary:
        out |= {"reference_test_f1": binary["test_f1"], "reference_test_roc_auc": binary["test_roc_auc"]}
    return out, probs


def ngram_result(fitted: NgramFit, train_rows: int) -> FitResult:
    """The n-gram fit in the shape the job reports for every model."""
    rate = train_rows * len(fitted.history) / max(fitted.seconds, 1e-9)
    return FitResult(
        "val_accuracy",
        history=fitted.history,
        best_epoch=fitted.best_epoch,
        best_value=fitted.val_accuracy,
        samples_per_s=rate,
    )


def binary_test_metrics(kind: TextKind, labels: Vocabulary, y_test, probs, majority: int) -> dict:
    """test_f1/test_roc_auc and the majority baseline's, for kinds with a positive label ({} otherwise).

    Undefined values (ROC AUC on a test split with one class only) are None, and are not logged.
    """
    positive = labels.index.get(kind.positive_label) if kind.positive_label else None
    if positive is None:
        return {}
    m = binary_metrics(y_test, probs, positive, majority)
    values = {
        "test_f1": m["f1"],
        "test_roc_auc": m["roc_auc"],
        "baseline_test_f1": m["baseline_f1"],
        "baseline_test_roc_auc": m["baseline_roc_auc"],
    }
    return {k: None if math.isnan(v) else float(v) for k, v in values.items()}


def champion_accuracy(kind: TextKind, version: int, folder: Path, manifest: dict) -> float | None:
    """Accuracy of a registered version on this feature set's validation split (None: cannot load)."""
    val = split_texts(folder, manifest, "val")
    try:
        model = mlflow.pyfunc.load_model(f"models:/{kind.model_name}/{version}")
    except Exception as err:  # an old or broken version must not block a new one
        log.warning("champion v%d could not be loaded to re-score it (%s); it will be replaced", version, err)
        return None
    predicted = scoring.predict(model, val[kind.text_col], kind.text_col)["predicted_label"]
    return float((predicted == val[kind.label_col]).fill_null(False).mean())


def _log_reports(work, history, test_metrics, baseline, labels, manifest, binary=None) -> None:
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
    plots.loss_curves(history, work / "loss_curves.png")
    plots.confusion_matrix(test_metrics["confusion"], labels, work / "confusion_matrix.png", "Test set")
    for name in ("classification_report.json", "features_manifest.json", "history.json"):
        mlflow.log_artifact(str(work / name), artifact_path="reports")
    for name in ("loss_curves.png", "confusion_matrix.png"):
        mlflow.log_artifact(str(work / name), artifact_path="plots")
