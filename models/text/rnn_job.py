"""The text family's default model, trained: bucketed token batches -> GRU/LSTM, then the TF-IDF reference
trained on the same splits, the blend of the two (the share picked on val; models/text/blend.py) and the
champion gate the reference sets. The reference is logged as a model of its own, and registered too when
the served model does not beat it (models.job.run)."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np

from models.config import MODEL_DEFAULTS
from models.metrics import classification_metrics, compared, mcnemar
from models.run_scope import Scope
from models.text import blend
from models.text.pyfunc import log_text_classifier
from models.text.reference import gate, train_reference
from models.text.rnn import RNNClassifier, RNNClassifierConfig
from models.text.text_job import TextJob
from models.train import FitResult, class_weights, classification_objective, fit, predict

log = logging.getLogger("rnnflow.job")


class RNNJob(TextJob):
    model_type = "rnn"

    def build_model(self) -> None:
        options = {"num_layers": self.kind.rnn_layers} | MODEL_DEFAULTS["text"] | self.options
        self.model_cfg = RNNClassifierConfig(
            vocab_size=len(self.tokens),
            num_classes=len(self.labels),
            pad_id=self.tokens.pad_id,
            **options,
        )
        self.model = RNNClassifier(self.model_cfg)

    def fit(self, scope: Scope) -> FitResult:
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
        if self.cfg.reference:
            try:
                self.reference_fit = train_reference(self.kind, self.labels, self.texts, self.cfg.seed)
            except ValueError as err:  # e.g. one class only in train: no reference, no gate
                log.warning("no TF-IDF reference for this training: %s", err)
        return super().evaluate(result)

    def served_probabilities(self, result: FitResult, ref_probs) -> tuple[np.ndarray, np.ndarray]:
        probs, y_test, _ = predict(self.model, self.test, self.device)
        served_val, y_val, _ = predict(self.model, self.val, self.device)  # the RNN's, on val
        if self.reference_fit is not None and not np.array_equal(y_val, self.xy("val")[1]):
            raise RuntimeError("the val split's shards and texts disagree in row order; rebuild the features")
        if self.reference_fit is not None and self.cfg.blend:
            probs, served_val, self.mixed = blended(self, served_val, y_val, probs, ref_probs, y_test)
            result.best_value = self.mixed.pop("val_accuracy")
        self.gate = gate(served_val.argmax(-1), y_val, self.reference_fit)
        return probs, y_test

    def compare(self, y_test: np.ndarray, probs: np.ndarray, ref_probs: np.ndarray) -> None:
        p_value = mcnemar(y_test, probs.argmax(-1), ref_probs.argmax(-1))
        ref = self.ref_metrics["reference_test_accuracy"]
        self.verdict = compared(
            "accuracy", self.test_metrics["accuracy"], ref, "its TF-IDF reference", p_value, False
        )
        self.compared["test_mcnemar_p_value_vs_reference"] = p_value

    def curve_name(self) -> str:
        return self.model_cfg.cell.upper()

    def served_name(self, blend: bool) -> str:
        return f"{self.model_cfg.cell}-tfidf-blend" if blend else self.model_cfg.cell

    def log_reference(self, work: Path, examples: list[str], val_texts) -> None:
        if self.reference_fit is None:
            return
        ref_params = {f"model.{k}": v for k, v in self.reference_fit.model.config().items()}
        ref = log_text_classifier(
            work,
            self.kind,
            self.reference_fit.model,
            self.folder,
            self.manifest,
            examples,
            "tfidf-reference",
            reference_texts=val_texts,
            params=ref_params,
        )
        self.reference_model_id = ref.model_id  # scored beside the served model by `evaluate`
        mlflow.set_tag("reference_model_uri", ref.model_uri)
        # registered (and maybe crowned) in its own right when the served model does not beat it
        self.fallback = (ref, self.reference_fit.val_accuracy, "its TF-IDF reference")


def blended(job: RNNJob, rnn_val, y_val, rnn_test, ref_test, y_test):
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
