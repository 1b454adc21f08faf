"""The model family table: each family (models/text, models/prices) registers its training job and its
scorer once (`register`, in its __init__); `train()` is the one entry for in-process and DDP training.

Families are found by package name (FAMILY_PACKAGES), so no shared module imports one."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from models import threads
from models.run_scope import Launch
from models.scoring import Scorer
from models.train import TrainConfig
from pipeline.kinds import get_kind
from pipeline.layout import Layout

FAMILY_PACKAGES = {"text": "models.text", "prices": "models.prices"}
_FAMILIES: dict[str, tuple[Callable, Scorer]] = {}


def register(family: str, trainer: Callable, scorer: Scorer) -> None:
    """trainer(kind, layout, cfg, model_options, launch) -> report (with .as_dict()) or None off rank 0."""
    _FAMILIES[family] = (trainer, scorer)


def _entry(family: str) -> tuple[Callable, Scorer]:
    if family not in _FAMILIES:
        importlib.import_module(FAMILY_PACKAGES[family])
    return _FAMILIES[family]


def trainer_of(family: str) -> Callable:
    return _entry(family)[0]


def scorer_of(family: str) -> Scorer:
    return _entry(family)[1]


def train(
    kind: str, data_root: str | None, cfg: TrainConfig, model_options: dict, launch: Launch | None = None
) -> dict | None:
    """Train one kind; -> the report as a dict (None on DDP ranks other than 0)."""
    spec = get_kind(kind)
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # torchrun's ranks on this node
    threads.apply(cfg.threads, processes=local_ranks)
    report = trainer_of(spec.family)(spec, Layout.of(kind, data_root), cfg, model_options, launch)
    return report.as_dict() if report is not None else None
