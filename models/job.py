"""The one training-job skeleton: latest features -> fit -> evaluate -> MLflow run -> registered version.

A family subclasses Job and fills in its steps (models/text/text_job.py, models/prices/job.py); run() is the
order they happen in, the same for every family, in one process or on every DDP rank."""

from __future__ import annotations

import logging
import tempfile
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import mlflow
import polars as pl
from mlflow.tracking import MlflowClient

from models import checkpoint, promotion, tracking
from models.config import train_params
from models.run_scope import Launch, Scope, training_run
from models.train import FitResult, TrainConfig, resolve_device, seed_everything
from pipeline.kinds import Kind
from pipeline.layout import Layout
from pipeline.storage import latest_features

log = logging.getLogger("rnnflow.job")


class Job(ABC):
    """One training of one kind. prepare() sets model, model_cfg and train_rows; the other steps run in
    the MLflow run on rank 0 only, except fit(), which every rank runs."""

    champion_metric: ClassVar[str]  # picks the champion; logged as result.best_value
    higher_is_better: ClassVar[bool] = True
    reference_model_id: str | None = None  # the logged reference model (text), which gets its metrics
    # (its ModelInfo, its champion metric, what it is): registered and put to the champion rule in its own
    # right when the served model does not beat it, so a training always leaves its best model servable
    fallback: tuple | None = None

    def __init__(
        self, kind: Kind, layout: Layout, cfg: TrainConfig, model_options: dict | None, launch: Launch | None
    ) -> None:
        self.kind, self.layout, self.cfg = kind, layout, cfg
        self.options = dict(model_options or {})
        self.launch = launch or Launch()
        self.device = resolve_device(cfg.device, self.launch.dist.local_rank)

    @abstractmethod
    def prepare(self, folder: Path, manifest: dict) -> None:
        """Read the splits of the feature set; build self.model, self.model_cfg, self.train_rows."""

    @abstractmethod
    def describe(self) -> str:
        """One log line: what trains on what."""

    def params(self) -> dict:
        """MLflow params beyond train.*, model.*, device and train_rows."""
        return {}

    @abstractmethod
    def fit(self, scope: Scope) -> FitResult: ...

    def loop_options(self, scope: Scope) -> dict:
        """What ties models.train.fit to this run: epoch logging, DDP, checkpoints and resume."""
        return {
            "on_epoch": scope.log_epoch,
            "dist": self.launch.dist,
            "checkpoints": scope.checkpoints,
            "resume": self.launch.resume,
            "extra_state": scope.extra_state,
        }

    @abstractmethod
    def evaluate(self, result: FitResult) -> dict[str, float | None]:
        """Test metrics to log (None values are not logged); may settle result.best_value."""

    @abstractmethod
    def log_model(self, work: Path, result: FitResult):
        """Reports and plots into the run, then the pyfunc; -> its ModelInfo."""

    @abstractmethod
    def rescore(self, version: int) -> float | None:
        """A registered version's champion metric on this feature set's val split (None: cannot)."""

    def split_frames(self) -> dict[str, tuple[pl.DataFrame, str]]:
        """Each split's rows and target column, logged as the run's MLflow dataset inputs."""
        return {}

    def reference(self) -> tracking.Reference | tuple | None:
        """What the champion gate holds the model to (None: only the incumbent)."""
        return None

    @abstractmethod
    def model_description(self) -> str:
        """The registered model's description in the MLflow UI."""

    @abstractmethod
    def headline(self) -> dict[str, float | None]:
        """The metrics the version's description shows beside the champion metric."""

    @abstractmethod
    def report(self, common: dict, result: FitResult) -> tracking.RegisteredRun: ...


def run(job: Job) -> tracking.RegisteredRun | None:
    """-> the report on rank 0 (or without DDP); None on the other ranks."""
    folder, job.manifest = latest_features(job.layout)
    seed_everything(job.cfg.seed)
    job.prepare(folder, job.manifest)
    log.info("%s", job.describe())
    params = {f"train.{k}": v for k, v in train_params(job.kind.family, job.cfg).items()}
    params |= {f"model.{k}": v for k, v in job.model_cfg.to_dict().items()}
    params |= {"device": str(job.device), "train_rows": job.train_rows, **job.params()}
    with training_run(job.kind.name, job.layout, job.manifest, job.launch, params) as scope:
        result = job.fit(scope)
        if scope.run is None:
            return None
        log_datasets(job, folder)
        metrics = job.evaluate(result)
        if hasattr(job.model, "cpu"):  # a torch model is packaged from the CPU (a TF-IDF model is numpy)
            job.model.cpu()
        with tempfile.TemporaryDirectory() as tmp:
            info = job.log_model(Path(tmp), result)
        # logged after the models, each set linked to its own model (MLflow would link all to each)
        final = {
            job.champion_metric: result.best_value,
            "best_epoch": result.best_epoch,
            "train_samples_per_s": result.samples_per_s,
            **{f"train_samples_per_s_rank{r}": v for r, v in enumerate(result.samples_per_s_per_rank)},
            **{k: v for k, v in metrics.items() if v is not None},
        }
        reference = {k: v for k, v in final.items() if k.startswith("reference_")}
        mlflow.log_metrics({k: v for k, v in final.items() if k not in reference}, model_id=info.model_id)
        if reference:
            mlflow.log_metrics(reference, model_id=job.reference_model_id)
        outcome = tracking.register_and_promote(
            job.kind.model_name,
            info,
            scope.run.info.run_id,
            scope.tags,
            job.champion_metric,
            result.best_value,
            job.manifest["version"],
            rescore=job.rescore,
            higher_is_better=job.higher_is_better,
            reference=job.reference(),
            descriptions=(job.model_description(), version_description(job, result.best_value)),
            move=recorded_move(job),
            challenger_first=job.cfg.promote_to == "challenger",
        )
        checkpoint.clear(scope.checkpoints)  # registered: nothing left to resume (a resume would add a twin)
        if not outcome["beats_reference"] and job.fallback is not None:
            outcome = register_fallback(job, scope, outcome)
        else:
            outcome["reference_version"] = None
        mlflow.set_tag("mlflow.note.content", run_description(job, result.best_value, outcome))
    checkpoint.clear(scope.checkpoints)  # registered: nothing left to resume
    log.info("registered %s v%d; %s", job.kind.model_name, outcome["version"], outcome["champion_decision"])
    common = {
        "kind": job.kind.name,
        "model_name": job.kind.model_name,
        "run_id": scope.run.info.run_id,
        "experiment_id": scope.experiment_id,
        "tracking_uri": scope.tracking_uri,
        **outcome,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "device": str(job.device),
        "samples_per_s": result.samples_per_s,
    }
    return job.report(common, result)


CONTEXTS = {"train": "training", "val": "validation", "test": "test"}


def log_datasets(job: Job, folder: Path) -> None:
    """Lineage: each split as a dataset input of the run (digest: the feature set's fingerprint), so the
    MLflow UI links every version to the data it was trained and judged on."""
    manifest = job.manifest
    digest = manifest["dataset_fingerprint"][:32]
    for split, (frame, target) in job.split_frames().items():
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways": the same one twice
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_polars(
                frame,
                source=str(folder / "shards" / f"split={split}"),
                name=f"{job.kind.name}-features-{manifest['version']}-{split}",
                digest=digest,
                targets=target,
            )
        tags = {"features_version": manifest["version"], "split": split}
        mlflow.log_input(dataset, context=CONTEXTS[split], tags=tags)


def register_fallback(job: Job, scope: Scope, outcome: dict) -> dict:
    """The served model did not beat its reference: the reference, a complete pyfunc, is registered as the
    next version and put to the champion rule against the incumbent; -> the run's outcome, both versions."""
    info, value, what = job.fallback
    served = outcome["version"]
    description = (
        f"{what} from the training that registered v{served}, which did not beat it; "
        f"{job.champion_metric} {value:.4f}. Features {job.manifest['version']}."
    )
    own = tracking.register_and_promote(
        job.kind.model_name,
        info,
        scope.run.info.run_id,
        scope.tags | {"model_role": "reference", "reference_of_version": str(served)},
        job.champion_metric,
        value,
        job.manifest["version"],
        rescore=job.rescore,
        higher_is_better=job.higher_is_better,
        descriptions=(job.model_description(), description),
        move=recorded_move(job),
        challenger_first=job.cfg.promote_to == "challenger",
    )
    decision = (
        f"{outcome['champion_decision']}; {what} registered as v{own['version']}: {own['champion_decision']}"
    )
    mlflow.set_tags({"registered_version": served, "champion_decision": decision})
    MlflowClient().set_model_version_tag(job.kind.model_name, str(served), "champion_decision", decision)
    log.info("v%d did not beat %s: registered it as v%d", served, what, own["version"])
    return outcome | {
        "reference_version": own["version"],
        "promoted": own["promoted"],
        "champion_version": own["champion_version"],
        "champion_decision": decision,
        "challenger_version": own["challenger_version"],
    }


def recorded_move(job: Job):
    """The champion rule's move, written to the kind's promotion history first (models/promotion.py)."""

    def move(version: int, reason: str, evidence: dict, alias: str) -> None:
        manifest = job.manifest
        promotion.move(
            job.layout,
            job.kind.model_name,
            version,
            alias=alias,
            action="promote" if alias == tracking.CHAMPION else "challenger",
            reason=reason,
            evidence=evidence,
            features_version=manifest["version"],
            dataset_fingerprint=manifest.get("dataset_fingerprint"),
        )

    return move


def run_description(job: Job, value: float, outcome: dict) -> str:
    """What the MLflow UI shows on the training run's page."""
    return (
        f"Training of {job.kind.model_name} ({job.kind.name}) on features {job.manifest['version']}: "
        f"{job.champion_metric} {value:.4f}. Registered as v{outcome['version']}; "
        f"{outcome['champion_decision']}."
    )


def version_description(job: Job, value: float) -> str:
    shown = ", ".join(f"{k} {v:.4f}" for k, v in job.headline().items() if v is not None)
    manifest = job.manifest
    return (
        f"{job.champion_metric} {value:.4f}; {shown}. Features {manifest['version']} "
        f"(dataset {manifest['dataset_fingerprint'][:12]})."
    )
