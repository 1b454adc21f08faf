"""What every text model's training shares (models.job.Job's steps): the splits as bucketed token batches,
the test metrics beside the majority baseline and the TF-IDF reference, the reports, the logged pyfunc,
the champion re-score and the report. Each model type fills in its own steps: models/text/rnn_job.py (the
GRU/LSTM, blended with its reference) and models/text/tfidf_job.py (the TF-IDF model alone)."""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import numpy as np

from models import tracking
from models.batching import BucketBatches
from models.config import check_model_options
from models.job import Job
from models.metrics import classification_metrics, majority_baseline, wilson_interval
from models.text.job_reports import champion_accuracy, log_reports, model_description
from models.text.pyfunc import log_text_classifier
from models.text.reference import binary_test_metrics, reference_metrics, xy
from models.text.tfidf import TfidfFit
from models.train import FitResult
from pipeline import storage
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


def model_type_of(options: dict) -> str:
    """The model type `--model` asks for ("ngram" is the TF-IDF model's former name)."""
    model_type = options.get("model", "rnn")
    return "tfidf" if model_type == "ngram" else model_type


class TextJob(Job):
    champion_metric = "best_val_accuracy"
    model_type: ClassVar[str]  # what `--model` names it: "rnn" or "tfidf"

    def __init__(self, kind, layout, cfg, model_options, launch) -> None:
        super().__init__(kind, layout, cfg, model_options, launch)
        check_model_options("text", self.options)
        model_type = model_type_of(self.options)
        self.options.pop("model", None)
        if model_type not in MODEL_TYPES:
            raise ValueError(f"--model {model_type!r}: choose one of {', '.join(MODEL_TYPES)}")
        assert model_type == self.model_type, (model_type, type(self).__name__)  # models.text.job picks
        self.reference_fit: TfidfFit | None = None
        self.gate: tracking.Reference | None = None
        self.ref_metrics: dict = {}
        self.mixed: dict = {}  # the RNN blended with its reference: the share, and the RNN alone
        self.compared: dict = {}  # the test accuracy's interval, the p-value against the reference
        self.verdict: str | None = None

    # -- the steps each model type fills in

    @abstractmethod
    def build_model(self) -> None:
        """Set self.model_cfg and self.model (once the vocabularies and batches are read)."""

    @abstractmethod
    def served_probabilities(self, result: FitResult, ref_probs) -> tuple[np.ndarray, np.ndarray]:
        """-> the served model's test probabilities and the test labels; may settle result.best_value."""

    def compare(self, y_test: np.ndarray, probs: np.ndarray, ref_probs: np.ndarray) -> None:
        """The served model against its reference on the same test rows (sets verdict and compared)."""

    @abstractmethod
    def curve_name(self) -> str:
        """What the loss curves call the model."""

    def own_params(self) -> dict:
        """The logged model's own params."""
        return {f"model.{k}": v for k, v in self.model_cfg.to_dict().items()}

    @abstractmethod
    def served_name(self, blend: bool) -> str:
        """What the logged model is, as the MLflow UI lists it: gru, lstm, gru-tfidf-blend or tfidf."""

    def log_reference(self, work: Path, examples: list[str], val_texts) -> None:
        """Log the reference as a model of its own beside the served one (when there is one to log)."""

    # -- models.job.Job's steps

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
        self.build_model()

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

    def evaluate(self, result: FitResult) -> dict:
        kind, labels = self.kind, self.labels
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
        probs, y_test = self.served_probabilities(result, ref_probs)
        self.test_loss = float(-np.log(np.maximum(probs[np.arange(len(y_test)), y_test], 1e-12)).mean())
        self.test_metrics = classification_metrics(y_test, probs.argmax(-1), len(labels))
        self.baseline = majority_baseline(self.train.labels(), y_test, len(labels))
        self.binary = binary_test_metrics(kind, labels, y_test, probs, self.baseline["class"])
        low, high = wilson_interval(self.test_metrics["accuracy"], len(y_test))
        self.compared = {"test_accuracy_ci95_low": low, "test_accuracy_ci95_high": high}
        if ref_probs is not None:
            self.compare(y_test, probs, ref_probs)
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
        served = ("served blend, validation", result.best_value) if share is not None else None
        log_reports(
            work,
            result.history,
            self.test_metrics,
            self.baseline,
            self.labels.tokens,
            manifest,
            binary_report,
            curves={"model": self.curve_name(), "served": served},
        )
        examples = sample_texts(folder, manifest)
        blend_with = (self.reference_fit.model, share) if share is not None else None
        val_texts = self.texts["val"][kind.text_col]  # the drift reference: held out, like scored days
        own = self.own_params()
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
            self.served_name(blend_with is not None),
            blend_with=blend_with,
            reference_texts=val_texts,
            params=own,
        )
        self.log_reference(work, examples, val_texts)
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
