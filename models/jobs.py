"""The model family lookup: each family's training job and scorer (models/registry.py names them);
`train()` is the one entry for in-process and DDP training.

models/registry.py is imported on the first lookup, not here: it loads the families' torch and MLflow
code, which an ingest or features run never needs."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

from models import threads
from models.run_scope import Launch
from models.scoring import Scorer
from models.train import TrainConfig
from pipeline.kinds import get_kind
from pipeline.layout import Layout


class Entry(NamedTuple):
    """trainer(kind, layout, cfg, model_options, launch) -> report (with .as_dict()) or None off rank 0."""

    trainer: Callable
    scorer: Scorer


def _entry(family: str) -> Entry:
    from models.registry import FAMILIES

    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose from {sorted(FAMILIES)}")
    return FAMILIES[family]


def trainer_of(family: str) -> Callable:
    return _entry(family).trainer


def scorer_of(family: str) -> Scorer:
    return _entry(family).scorer


def train(
    kind: str, data_root: str | None, cfg: TrainConfig, model_options: dict, launch: Launch | None = None
) -> dict | None:
    """Train one kind; -> the report as a dict (None on DDP ranks other than 0)."""
    spec = get_kind(kind)
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # torchrun's ranks on this node
    threads.apply(cfg.threads, processes=local_ranks)
    report = trainer_of(spec.family)(spec, Layout.of(kind, data_root), cfg, model_options, launch)
    return report.as_dict() if report is not None else None
