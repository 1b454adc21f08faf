"""The training job of each model family, and `train()`: one entry for in-process and DDP training.

Each family (models/text, models/prices) registers its job here once (`register`); families are found by
package name (FAMILY_PACKAGES), so no shared module imports one."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from models.run_scope import Launch
from models.train import TrainConfig
from pipeline.kinds import get_kind
from pipeline.layout import Layout

FAMILY_PACKAGES = {"text": "models.text", "prices": "models.prices"}
_TRAINERS: dict[str, Callable] = {}


def register(family: str, trainer: Callable) -> Callable:
    """trainer(kind, layout, cfg, model_options, launch) -> report (with .as_dict()) or None off rank 0."""
    _TRAINERS[family] = trainer
    return trainer


def trainer_of(family: str) -> Callable:
    if family not in _TRAINERS:
        importlib.import_module(FAMILY_PACKAGES[family])
    return _TRAINERS[family]


def train(
    kind: str, data_root: str | None, cfg: TrainConfig, model_options: dict, launch: Launch | None = None
) -> dict | None:
    """Train one kind; -> the report as a dict (None on DDP ranks other than 0)."""
    spec = get_kind(kind)
    report = trainer_of(spec.family)(spec, Layout.of(kind, data_root), cfg, model_options, launch)
    return report.as_dict() if report is not None else None
