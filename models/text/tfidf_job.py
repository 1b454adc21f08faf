"""The text family's TF-IDF model trained alone (`rnnflow train --model tfidf`): one fit per C tried, in
seconds, in one process; the model is its own reference, so there is no blend and no champion gate."""

from __future__ import annotations

import numpy as np

from models.run_scope import Scope
from models.text.reference import reference_result, train_reference
from models.text.text_job import TextJob
from models.text.tfidf import TfidfConfig
from models.train import FitResult


class TfidfJob(TextJob):
    model_type = "tfidf"

    def __init__(self, kind, layout, cfg, model_options, launch) -> None:
        super().__init__(kind, layout, cfg, model_options, launch)
        if self.launch.dist.world_size > 1:
            raise ValueError("--model tfidf trains in seconds in one process; drop --nproc/--nnodes")

    def build_model(self) -> None:
        self.model_cfg, self.model = TfidfConfig(self.kind.tokenizer), None  # fitted in fit()

    def fit(self, scope: Scope) -> FitResult:
        fitted = train_reference(self.kind, self.labels, self.texts, self.cfg.seed)
        result = reference_result(fitted, self.train.num_rows)
        for row in result.history:  # one "epoch" per C tried
            scope.log_epoch(row)
        self.model, self.reference_fit = fitted.model, fitted  # the model is its own reference
        return result

    def served_probabilities(self, result: FitResult, ref_probs) -> tuple[np.ndarray, np.ndarray]:
        return ref_probs, self.xy("test")[1]  # the model is its reference: its probabilities are those

    def curve_name(self) -> str:
        return "TF-IDF model"

    def own_params(self) -> dict:
        return super().own_params() | {f"model.{k}": v for k, v in self.model.config().items()}

    def served_name(self, blend: bool) -> str:
        return "tfidf"
