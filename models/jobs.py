"""The training job of each kind family, and `train()`: one entry for in-process and DDP training."""

from __future__ import annotations

from models.classifier_job import train_text_classifier
from models.price_job import train_price_forecaster
from models.run_scope import Launch
from models.train import TrainConfig
from pipeline.kinds import get_kind
from pipeline.layout import Layout

TRAINERS = {"text": train_text_classifier, "prices": train_price_forecaster}


def train(
    kind: str, data_root: str | None, cfg: TrainConfig, model_options: dict, launch: Launch | None = None
) -> dict | None:
    """Train one kind; -> the report as a dict (None on DDP ranks other than 0)."""
    spec = get_kind(kind)
    report = TRAINERS[spec.family](spec, Layout.of(kind, data_root), cfg, model_options, launch)
    return report.as_dict() if report is not None else None
