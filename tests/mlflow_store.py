"""Tests start each data root's MLflow store from one migrated empty SQLite file instead of creating it:
a new store runs MLflow's ~60 alembic migrations, 2-3 s of CPU each time, in every test that trains.

The session's template path travels to child processes in RNNFLOW_TEST_MLFLOW_TEMPLATE; `install()`
wraps models.tracking.configure in the process that calls it (the tests' own and torchrun ranks')."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "RNNFLOW_TEST_MLFLOW_TEMPLATE"


def template(folder: Path) -> Path:
    """The session's template in folder, made by whichever pytest-xdist worker comes first."""
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    path = folder / "mlflow-template.db"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            fresh = folder / "mlflow-template.tmp.db"
            MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()  # runs the migrations
            fresh.rename(path)
    return path


def seed(mlflow_db: Path) -> None:
    """Copy the template to a data root's store path if nothing is there yet."""
    template = os.environ.get(ENV)
    if template and not Path(mlflow_db).exists():
        Path(mlflow_db).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, mlflow_db)


def install() -> None:
    """Seed every store that models.tracking.configure() is about to create in this process."""
    from models import tracking

    if getattr(tracking.configure, "seeds_from_template", False):
        return
    real = tracking.configure

    def configure(mlflow_db: Path, artifacts: Path) -> str:
        user_uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not user_uri or user_uri == tracking.default_tracking_uri():
            seed(mlflow_db)
        return real(mlflow_db, artifacts)

    configure.seeds_from_template = True
    tracking.configure = configure
