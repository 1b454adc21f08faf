"""Where everything lives under the data root (bronze, quarantine, features, predictions, MLflow): a local
folder, or s3://bucket/prefix (a UPath with the same path API)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipeline import objectstore

DATA_ROOT_ENV = "RNNFLOW_DATA_ROOT"


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """--data-root wins, then $RNNFLOW_DATA_ROOT, then ./data; always absolute (or an s3:// UPath)."""
    chosen = data_root or os.environ.get(DATA_ROOT_ENV) or "data"
    if objectstore.is_url(chosen):  # reached once per process: bad settings fail here, in one line
        root = objectstore.open_path(str(chosen))
        objectstore.check(root)
        return root
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class Layout:
    """Paths for one data kind under one data root."""

    root: Path
    kind: str

    @classmethod
    def of(cls, kind: str, data_root: str | os.PathLike | None = None) -> Layout:
        return cls(resolve_data_root(data_root), kind)

    @property
    def bronze(self) -> Path:  # one Parquet file per ingest batch
        return self.root / "bronze" / self.kind

    @property
    def quarantine(self) -> Path:  # rejected rows of each batch, with a `reason`
        return self.root / "quarantine" / self.kind

    @property
    def batches(self) -> Path:  # <fingerprint>.json per committed ingest batch: its report, for re-runs
        return self.root / "batches" / self.kind

    @property
    def features(self) -> Path:  # versioned feature sets + LATEST pointer
        return self.root / "features" / self.kind

    @property
    def predictions(self) -> Path:  # ds=YYYY-MM-DD/part-0.parquet
        return self.root / "predictions" / self.kind

    @property
    def incoming(self) -> Path:  # where the demo drops unlabelled data to score
        return self.root / "incoming" / self.kind

    @property
    def checkpoints(self) -> Path:  # epoch-NNNN.pt of the current training, for --resume
        return self.root / "checkpoints" / self.kind

    def prediction_partition(self, ds: str) -> Path:
        return self.predictions / f"ds={ds}"

    @property
    def shadow(self) -> Path:  # shadow/<kind>/ds=<ds>/: the challenger's scores of a served day, never served
        return self.root / "shadow" / self.kind

    @property
    def reports(self) -> Path:  # plots and reports made for people (drift trends)
        return self.root / "reports"

    # A tree of its own: polars refuses to read a partition folder that holds anything but Parquet.
    def drift_report(self, ds: str) -> Path:  # drift/<kind>/ds=<ds>.json, the day's drift report
        return self.root / "drift" / self.kind / f"ds={ds}.json"

    @property
    def labels(self) -> Path:  # labels/<kind>/<batch>.parquet (+ .json report): ground truth, late
        return self.root / "labels" / self.kind

    @property
    def label_quarantine(self) -> Path:  # the label rows refused, each with its reason
        return self.root / "label-quarantine" / self.kind

    @property
    def history(self) -> Path:  # history/<kind>/<time>-<id>.parquet: one file per alias move, never rewritten
        return self.root / "history" / self.kind

    def score_manifest(self, ds: str) -> Path:  # manifests/<kind>/ds=<ds>.json: how the day was scored
        return self.root / "manifests" / self.kind / f"ds={ds}.json"

    @property
    def remote(self) -> bool:  # on object storage: no SQLite MLflow store, no renames
        return objectstore.is_remote(self.root)

    # MLflow's embedded defaults are per data root, shared by all kinds (local roots only).
    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlartifacts"
