"""The text family's training job: bucketed token batches -> GRU (or the TF-IDF model alone) -> blend with
the TF-IDF reference -> test metrics beside the majority baseline; the steps of models.job.Job. When the
served model does not beat its reference, the reference is registered too (models.job.run)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import mlflow
import numpy as np

from models import packaging, plots, tracking
from models.batching import BucketBatches
from models.config import MODEL_DEFAULTS, check_model_options
from models.job import Job, run
from models.metrics import (
    classification_metrics,
    compared,
    majority_baseline,
    mcnemar,
    report_table,
    wilson_interval,
)
from models.run_scope import Launch, Scope
from models.text import blend, scoring
from models.text.pyfunc import log_text_classifier
from models.text.reference import (
    binary_test_metrics,
    gate,
    reference_metrics,
    reference_result,
    train_reference,
    xy,
)
from models.text.rnn import RNNClassifier, RNNClassifierConfig
from models.text.tfidf import TfidfConfig, TfidfFit
from models.train import FitResult, TrainConfig, class_weights, classification_objective, fit, predict
from pipeline import storage
from pipeline.kinds import TextKind
from pipeline.layout import Layout
from pipeline.splits import SPLITS
from pipeline.text.features import load_split, sample_texts, split_texts
from pipeline.text.vocab import Vocabulary

log = logging.getLogger("rnnflow.job")
MODEL_TYPES = ("rnn", "tfidf")  # `rnnflow train --model` ("ngram", the former reference's name: tfidf)
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
    # the TF-IDF reference trained in the same run on the same splits (see reference_metrics)
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
    # the served model against its reference on the test rows (McNemar), and its accuracy's 95% interval
    verdict: str | None = None
    test_accuracy_ci95_low: float | None = None
    test_accuracy_ci95_high: float | None = None
    test_mcnemar_p_value_vs_reference: float | None = None


def train_text_classifier(
    kind: TextKind,
    layout: Layout,
    cfg: TrainConfig,
    model_options: dict | None = None,
    launch: Launch | None = None,
) -> TrainReport | None:
    """-> the report on rank 0 (or without DDP); None on the other ranks."""
    return run(TextJob(kind, layout, cfg, model_options, launch))


class TextJob(Job):
    champion_metric = "best_val_accuracy"

    def __init__(self, kind, layout, cfg, model_options, launch) -> None:
        super().__init__(kind, layout, cfg, model_options, launch)
        check_model_options("text", self.options)
        model_type = self.options.pop("model", "rnn")
        self.model_type = "tfidf" if model_type == "ngram" else model_type
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"--model {self.model_type!r}: choose one of {', '.join(MODEL_TYPES)}")
        if self.model_type == "tfidf" and self.launch.dist.world_size > 1:
            raise ValueError("--model tfidf trains in seconds in one process; drop --nproc/--nnodes")
        self.reference_fit: TfidfFit | None = None
        self.gate: tracking.Reference | None = None
        self.ref_metrics: dict = {}
        self.mixed: dict = {}  # the RNN blended with its reference: the share, and the RNN alone
        self.compared: dict = {}  # the test accuracy's interval, the p-value against the reference
        self.verdict: str | None = None

    def prepare(self, folder: Path, manifest: dict) -> None:
        kind, cfg = self.kind, self.cfg
        self.folder = folder
        self.tokens = Vocabulary.from_json(storage.read_text(folder / manifest["vocab"]["tokens"]["file"]))
        self.labels = Vocabulary.from_json(storage.read_text(folder / manifest["vocab"]["labels"]["file"]))
        self.train = BucketBatches(load_split(folder, manifest, "train"), cfg.batch_size, True, cfg.seed)
        self.val = BucketBatches(load_split(folder, manifest, "val"), EVAL_BATCH, shuffle=False)
        if self.val.num_rows == 0:
            raise ValueError(
                f"kind {kind.name!r}: the val split of features {manifest['version']} is empty, so nothing "
                "can pick the best epoch or the champion; give some rows split=val, or leave split blank "
                "to have features assign 70/15/15 by hash"
            )
        self.test = BucketBatches(load_split(folder, manifest, "test"), EVAL_BATCH, shuffle=False)
        self.train_rows = self.train.num_rows
        if self.model_type == "tfidf":
            self.model_cfg, self.model = TfidfConfig(kind.tokenizer), None  # fitted in fit()
        else:
            options = {"num_layers": kind.rnn_layers} | MODEL_DEFAULTS["text"] | self.options
            self.model_cfg = RNNClassifierConfig(
                vocab_size=len(self.tokens),
                num_classes=len(self.labels),
                pad_id=self.tokens.pad_id,
                **options,
            )
            self.model = RNNClassifier(self.model_cfg)

    def describe(self) -> str:
        return (
            f"training {self.kind.name} on {self.device}: {self.train.num_rows:,} train / "
            f"{self.val.num_rows:,} val / {self.test.num_rows:,} test rows, {len(self.labels)} classes, "
            f"{len(self.train)} batches per epoch"
        )

    def params(self) -> dict:
        return {"model_type": self.model_type}

    @cached_property
    def texts(self) -> dict:
        return {split: split_texts(self.folder, self.manifest, split) for split in SPLITS}

    def split_frames(self) -> dict:
        return {split: (frame, self.kind.label_col) for split, frame in self.texts.items()}

    def xy(self, split: str) -> tuple[list[str], np.ndarray]:
        return xy(self.kind, self.labels, self.texts[split])

    def fit(self, scope: Scope) -> FitResult:
        if self.model_type == "tfidf":
            fitted = train_reference(self.kind, self.labels, self.texts, self.cfg.seed)
            result = reference_result(fitted, self.train.num_rows)
            for row in result.history:  # one "epoch" per C tried
                scope.log_epoch(row)
            self.model, self.reference_fit = fitted.model, fitted  # the model is its own reference
            return result
        weights = class_weights(self.train.labels(), len(self.labels)) if self.cfg.class_weighting else None
        return fit(
            self.model,
            self.train,
            self.val,
            self.cfg,
            classification_objective(),
            loss_kwargs={"class_weights": weights},
            **self.loop_options(scope),
        )

    def evaluate(self, result: FitResult) -> dict:
        kind, labels = self.kind, self.labels
        if self.model_type == "rnn" and self.cfg.reference:
            try:
                self.reference_fit = train_reference(kind, labels, self.texts, self.cfg.seed)
            except ValueError as err:  # e.g. one class only in train: no reference, no gate
                log.warning("no TF-IDF reference for this training: %s", err)
        ref_probs = None
        if self.reference_fit is not None:
            self.ref_metrics, ref_probs = reference_metrics(
                kind, labels, self.reference_fit, self.texts["test"]
            )
            log.info(
                "TF-IDF reference: val accuracy %.4f, test accuracy %.4f (%.1fs)",
                self.ref_metrics["reference_val_accuracy"],
                self.ref_metrics["reference_test_accuracy"],
                self.ref_metrics["reference_seconds"],
            )
        if self.model_type == "tfidf":
            y_test, probs = self.xy("test")[1], ref_probs
        else:
            probs, y_test, _ = predict(self.model, self.test, self.device)
            served_val, y_val, _ = predict(self.model, self.val, self.device)  # the RNN's, on val
            if self.reference_fit is not None and not np.array_equal(y_val, self.xy("val")[1]):
                raise RuntimeError(
                    "the val split's shards and texts disagree in row order; rebuild the features"
                )
            if self.reference_fit is not None and self.cfg.blend:
                probs, served_val, self.mixed = blended(self, served_val, y_val, probs, ref_probs, y_test)
                result.best_value = self.mixed.pop("val_accuracy")
            self.gate = gate(served_val.argmax(-1), y_val, self.reference_fit)
        self.test_loss = float(-np.log(np.maximum(probs[np.arange(len(y_test)), y_test], 1e-12)).mean())
        self.test_metrics = classification_metrics(y_test, probs.argmax(-1), len(labels))
        self.baseline = majority_baseline(self.train.labels(), y_test, len(labels))
        self.binary = binary_test_metrics(kind, labels, y_test, probs, self.baseline["class"])
        low, high = wilson_interval(self.test_metrics["accuracy"], len(y_test))
        self.compared = {"test_accuracy_ci95_low": low, "test_accuracy_ci95_high": high}
        if ref_probs is not None and self.model_type != "tfidf":  # the same test rows, both models
            p_value = mcnemar(y_test, probs.argmax(-1), ref_probs.argmax(-1))
            ref = self.ref_metrics["reference_test_accuracy"]
            self.verdict = compared(
                "accuracy", self.test_metrics["accuracy"], ref, "its TF-IDF reference", p_value, False
            )
            self.compared["test_mcnemar_p_value_vs_reference"] = p_value
        return {
            "test_loss": self.test_loss,
            "test_accuracy": self.test_metrics["accuracy"],
            "test_macro_f1": self.test_metrics["macro_f1"],
            "baseline_test_accuracy": self.baseline["accuracy"],
            "baseline_test_macro_f1": self.baseline["macro_f1"],
            **self.binary,
            **self.ref_metrics,
            **self.mixed,
            **self.compared,
        }

    def log_model(self, work: Path, result: FitResult):
        kind, folder, manifest = self.kind, self.folder, self.manifest
        binary_report = {"positive_label": kind.positive_label, **self.binary} if self.binary else None
        share = self.mixed.get("blend_reference_share")
        name = self.model_cfg.cell.upper() if self.model_type == "rnn" else "TF-IDF model"
        served = ("served blend, validation", result.best_value) if share is not None else None
        _log_reports(
            work,
            result.history,
            self.test_metrics,
            self.baseline,
            self.labels.tokens,
            manifest,
            binary_report,
            curves={"model": name, "served": served},
        )
        examples = sample_texts(folder, manifest)
        blend_with = (self.reference_fit.model, share) if share is not None else None
        val_texts = self.texts["val"][kind.text_col]  # the drift reference: held out, like scored days
        own = {f"model.{k}": v for k, v in self.model_cfg.to_dict().items()}
        if self.model_type == "tfidf":
            own |= {f"model.{k}": v for k, v in self.model.config().items()}
        if blend_with is not None:
            own |= {f"blend.{k}": v for k, v in self.reference_fit.model.config().items()}
            own["blend.reference_share"] = share
        info = log_text_classifier(
            work,
            kind,
            self.model,
            folder,
            manifest,
            examples,
            served_name(self.model_type, self.model_cfg, blend_with is not None),
            blend_with=blend_with,
            reference_texts=val_texts,
            params=own,
        )
        if self.model_type != "tfidf" and self.reference_fit is not None:  # scored beside it by `evaluate`
            ref_params = {f"model.{k}": v for k, v in self.reference_fit.model.config().items()}
            ref = log_text_classifier(
                work,
                kind,
                self.reference_fit.model,
                folder,
                manifest,
                examples,
                "tfidf-reference",
                reference_texts=val_texts,
                params=ref_params,
            )
            self.reference_model_id = ref.model_id
            mlflow.set_tag("reference_model_uri", ref.model_uri)
            # registered (and maybe crowned) in its own right when the served model does not beat it
            self.fallback = (ref, self.reference_fit.val_accuracy, "its TF-IDF reference")
        return info

    def rescore(self, version: int) -> float | None:
        return champion_accuracy(self.kind, version, self.folder, self.manifest)

    def reference(self) -> tracking.Reference | None:
        return self.gate  # set by evaluate(); None for the TF-IDF model itself or without a reference

    def model_description(self) -> str:
        return model_description(self.kind, self.manifest)

    def headline(self) -> dict:
        return {
            "test_accuracy": self.test_metrics["accuracy"],
            "baseline_test_accuracy": self.baseline["accuracy"],
            "test_roc_auc": self.binary.get("test_roc_auc"),
            "reference_val_accuracy": self.ref_metrics.get("reference_val_accuracy"),
            "reference_test_accuracy": self.ref_metrics.get("reference_test_accuracy"),
        }

    def report(self, common: dict, result: FitResult) -> TrainReport:
        return TrainReport(
            **common,
            best_val_accuracy=result.best_value,
            test_accuracy=self.test_metrics["accuracy"],
            test_macro_f1=self.test_metrics["macro_f1"],
            baseline_accuracy=self.baseline["accuracy"],
            baseline_macro_f1=self.baseline["macro_f1"],
            **self.binary,
            model_type=self.model_type,
            **self.ref_metrics,
            **self.mixed,
            **self.compared,
            verdict=self.verdict,
        )


def served_name(model_type: str, config, blend: bool) -> str:
    """What the logged model is, as the MLflow UI lists it: gru, lstm, gru-tfidf-blend or tfidf."""
    if model_type == "tfidf":
        return "tfidf"
    return f"{config.cell}-tfidf-blend" if blend else config.cell


def blended(job: TextJob, rnn_val, y_val, rnn_test, ref_test, y_test):
    """-> the blend's test probabilities, its val probabilities, and the share, the blend's val accuracy
    and the RNN's own val/test metrics (the share is picked on the val split, as the RNN's best epoch was)."""
    ref_val = job.reference_fit.val_probs  # in the row order of y_val (evaluate checked it)
    share, val_accuracy = blend.pick_share(rnn_val, ref_val, y_val)
    rnn_val_accuracy = float((rnn_val.argmax(-1) == y_val).mean())
    alone = classification_metrics(y_test, rnn_test.argmax(-1), len(job.labels))
    log.info(
        "blend: reference share %.2f, val accuracy %.4f (RNN alone %.4f)",
        share,
        val_accuracy,
        rnn_val_accuracy,
    )
    return (
        blend.mix(rnn_test, ref_test, share),
        blend.mix(rnn_val, ref_val, share),
        {
            "val_accuracy": val_accuracy,
            "blend_reference_share": share,
            "rnn_val_accuracy": rnn_val_accuracy,
            "rnn_test_accuracy": alone["accuracy"],
            "rnn_test_macro_f1": alone["macro_f1"],
        },
    )


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


def _log_reports(work, history, test_metrics, baseline, labels, manifest, binary=None, curves=None) -> None:
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
