"""What the embedded MLflow store needs kept, done by tracking.configure: artifact locations follow a
copied or moved data root, and runs whose process was killed are closed, not left RUNNING forever."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlflow.tracking import MlflowClient

from pipeline.owner import Owner

log = logging.getLogger("rnnflow.tracking")
OWNER_TAG = "rnnflow.owner"  # the process running a run: a run whose process is gone is marked FAILED


def owner_tags() -> dict[str, str]:
    """Tags of every run rnnflow starts: which process runs it."""
    return {OWNER_TAG: Owner.me().token}


def close_crashed_runs() -> list[str]:
    """End FAILED the RUNNING runs of rnnflow's experiments whose process is gone (killed mid-way);
    -> their ids. Runs of other machines are left to those machines."""
    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments(filter_string="name LIKE 'rnnflow-%'")]
    if not experiments:
        return []
    closed = []
    for run in client.search_runs(experiments, "attributes.status = 'RUNNING'", max_results=500):
        owner = Owner.parse(run.data.tags.get(OWNER_TAG, ""))
        if owner is None or owner.alive() is not False:
            continue
        note = (
            f"its process ({owner.token}) stopped before the run ended; marked FAILED by {Owner.me().token}"
        )
        client.set_tag(run.info.run_id, "rnnflow.crashed", note)
        client.set_terminated(run.info.run_id, "FAILED")
        closed.append(run.info.run_id)
    if closed:
        log.warning("marked %d MLflow run(s) FAILED whose process had stopped: %s", len(closed), closed)
    return closed


# Where the embedded store keeps absolute artifact locations (MLflow has no relative ones).
LOCATIONS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)


def relocate(mlflow_db: Path, artifacts: Path) -> None:
    """A data root that was copied or moved keeps its store working on its own: the artifact
    locations its experiments, runs and models recorded under another root's mlartifacts/ (MLflow
    stores them absolute) are rewritten to this root's, before anything reads or writes them."""
    if not mlflow_db.exists():
        return
    new = artifacts.as_uri()
    with contextlib.closing(sqlite3.connect(mlflow_db, timeout=60)) as db:
        try:
            rows = db.execute(
                "SELECT artifact_location FROM experiments WHERE name LIKE 'rnnflow-%' "
                "AND artifact_location LIKE 'file://%/mlartifacts/%'"
            ).fetchall()
        except sqlite3.OperationalError:  # not (yet) an MLflow store
            return
        old = {loc.rsplit("/mlartifacts/", 1)[0] + "/mlartifacts" for (loc,) in rows} - {new}
        if not old:
            return
        with db:  # one transaction: a concurrent process sees the old locations or the new
            for prefix in old:
                for table, column in LOCATIONS:
                    with contextlib.suppress(sqlite3.OperationalError):  # a table this store lacks
                        db.execute(
                            f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                            f"WHERE substr({column}, 1, ?) = ?",
                            (new, len(prefix) + 1, len(prefix) + 1, prefix + "/"),
                        )
                before, after = Path(unquote(urlsplit(prefix).path)).parent, artifacts.parent
                with contextlib.suppress(sqlite3.OperationalError):
                    db.execute(  # the lineage of logged datasets: feature folders of the old root
                        "UPDATE datasets SET dataset_source = replace(dataset_source, ?, ?)",
                        (f'"{before}/', f'"{after}/'),
                    )
