"""The MLflow run and checkpoint folder of one training, shared by every job and every DDP rank.

Rank 0 alone opens the MLflow run (one run per training, never one per rank) and writes checkpoints;
a resumed training continues the MLflow run its checkpoint names.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow

from models import checkpoint, tracking, upkeep
from models.distributed import DistInfo, barrier
from pipeline.layout import Layout


@dataclass(frozen=True)
class Launch:
    """How this process takes part in a training: its DDP rank (if any) and whether it resumes."""

    dist: DistInfo = field(default_factory=DistInfo)
    resume: bool = False


@dataclass
class Scope:
    checkpoints: Path
    run: mlflow.ActiveRun | None = None  # None on ranks other than 0
    tracking_uri: str = ""
    experiment_id: str = ""
    tags: dict = field(default_factory=dict)

    features_version: str = ""
    params: dict = field(default_factory=dict)

    @property
    def extra_state(self) -> dict:  # saved in every checkpoint; a resume must match it
        run_id = self.run.info.run_id if self.run else None
        return {"mlflow_run_id": run_id, "features_version": self.features_version, "params": self.params}

    def log_epoch(self, row: dict) -> None:
        mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])


@contextmanager
def training_run(kind: str, layout: Layout, manifest: dict, launch: Launch, params: dict) -> Iterator[Scope]:
    folder = layout.checkpoints
    if launch.dist.is_main and not launch.resume:
        checkpoint.clear(folder)  # a new training: the previous one's checkpoints are not resumable
    barrier(launch.dist)
    if not launch.dist.is_main:
        yield Scope(folder)
        return
    uri = tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    experiment = tracking.experiment_id(f"rnnflow-{kind}", layout.mlflow_artifacts)
    tags = tracking.feature_tags(kind, manifest)
    run_id = resumed_run_id(folder, manifest["version"], params) if launch.resume else None
    name = None if run_id else run_name(kind, manifest["version"])
    with mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment,
        run_name=name,
        tags=tags | upkeep.owner_tags(),
    ) as run:
        if run_id is None:
            mlflow.log_params(params | {"world_size": launch.dist.world_size})
        else:
            mlflow.set_tags({"resumed": "true", **upkeep.owner_tags()})
        yield Scope(folder, run, uri, experiment, tags, manifest["version"], params)


def run_name(kind: str, features_version: str) -> str:
    """<kind>-<UTC start>-f<features hash>-<random>: unique, sortable, and not drawn from the seeded RNG
    (MLflow's own names come from `random`, which the training seeds: every run got the same name)."""
    started = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{kind}-{started}-f{features_version.rsplit('-', 1)[-1][:8]}-{secrets.token_hex(2)}"


def resumed_run_id(folder: Path, features_version: str, params: dict) -> str | None:
    """The MLflow run to continue, once the checkpoint is known to be this training's."""
    path = checkpoint.latest(folder)
    if path is None:
        raise FileNotFoundError(
            f"--resume: no checkpoint under {folder}; start the training without --resume"
        )
    extra = checkpoint.load(path)["extra"]
    if extra.get("features_version") != features_version:
        raise ValueError(
            f"--resume: {path.name} was trained on features {extra.get('features_version')}, the latest "
            f"features are {features_version}; train anew without --resume"
        )
    saved = extra.get("params", {})
    growable = ("train.epochs", "train.patience", "train.threads")  # a resume may train longer...
    if params.get("train.schedule") == "onecycle":  # ...but a one-cycle schedule is fitted to its epochs
        growable = ("train.patience", "train.threads")
    changed = sorted(k for k in params if k in saved and saved[k] != params[k] and k not in growable)
    if changed:
        raise ValueError(
            f"--resume: {path.name} was trained with other settings: {changed}; use the same ones"
        )
    return extra.get("mlflow_run_id")
