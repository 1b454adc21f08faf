"""The text family's training: `--model` picks the job (models/text/rnn_job.py, the GRU/LSTM blended with
its TF-IDF reference, by default; models/text/tfidf_job.py, the TF-IDF model alone), which
models.job.run takes through the steps every family shares. When the served model does not beat its
reference, the reference is registered too (models.job.run)."""

from __future__ import annotations

from models.job import run
from models.run_scope import Launch
from models.text.rnn_job import RNNJob
from models.text.text_job import MODEL_TYPES, TextJob, TrainReport, model_type_of
from models.text.tfidf_job import TfidfJob
from models.train import TrainConfig
from pipeline.kinds import TextKind
from pipeline.layout import Layout

__all__ = ["JOBS", "MODEL_TYPES", "TrainReport", "text_job", "train_text_classifier"]

JOBS: dict[str, type[TextJob]] = {"rnn": RNNJob, "tfidf": TfidfJob}  # one per MODEL_TYPES


def text_job(
    kind: TextKind, layout: Layout, cfg: TrainConfig, model_options: dict | None, launch: Launch | None
) -> TextJob:
    """The job `--model` (model_options["model"]) names. An unknown name gets the default's class, whose
    __init__ refuses it after the device and the other options were checked, as every job does."""
    cls = JOBS.get(model_type_of(dict(model_options or {})), RNNJob)
    return cls(kind, layout, cfg, model_options, launch)


def train_text_classifier(
    kind: TextKind,
    layout: Layout,
    cfg: TrainConfig,
    model_options: dict | None = None,
    launch: Launch | None = None,
) -> TrainReport | None:
    """-> the report on rank 0 (or without DDP); None on the other ranks."""
    return run(text_job(kind, layout, cfg, model_options, launch))
