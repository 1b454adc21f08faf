"""Re-register a version packaged with a pickled wrapper (python_model.pkl, before models from code) from
its data files alone: nothing is unpickled. The new version keeps the old one's run, tags and aliases."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from models import jobs, packaging, tracking
from pipeline.kinds import Kind

log = logging.getLogger("rnnflow.repackage")


def repackage(kind: Kind, uri: str) -> dict:
    """-> the new version and the aliases moved to it."""
    resolved = tracking.resolve(uri)
    if resolved.name != kind.model_name:
        raise ValueError(f"{uri}: {resolved.name!r} is not the {kind.name} model ({kind.model_name!r})")
    jobs.scorer_of(kind.family)  # the family's code registers its entry file
    entry = packaging.FAMILY_ENTRIES[kind.family]
    client = MlflowClient()
    old = client.get_model_version(resolved.name, str(resolved.version))
    if old.run_id:  # the new logged model lives beside the old one, in its training's experiment
        mlflow.set_experiment(experiment_id=client.get_run(old.run_id).info.experiment_id)
    else:
        mlflow.set_experiment(f"rnnflow-{kind.name}")
    with tempfile.TemporaryDirectory(prefix="rnnflow-repackage-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=resolved.uri, dst_path=tmp))
        meta = Model.load(str(local / "MLmodel"))
        flavor = meta.flavors.get("python_function") or {}
        if flavor.get("model_code_path"):
            raise ValueError(f"{resolved.uri} is packaged as models from code already; nothing to do")
        artifacts = packaging.artifact_files(local, flavor, resolved.uri)
        packaging.build(entry.name, artifacts, resolved.uri)  # the files load as the new version will
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(entry),
            artifacts=artifacts,
            signature=meta.signature,
            input_example=meta.load_input_example(str(local)),
            pip_requirements=packaging.PIP_REQUIREMENTS,
        )
    note = f"v{resolved.version} re-registered as models from code (`rnnflow repackage`), same files."
    version = tracking.register(
        resolved.name,
        info.model_uri,
        old.run_id,
        info.model_id,
        {**old.tags, "repackaged_from": str(resolved.version)},
        version_description=f"{note} {old.description or ''}".strip(),
    )
    for alias in old.aliases:
        client.set_registered_model_alias(resolved.name, alias, str(version))
    log.info("%s v%d -> v%d (aliases moved: %s)", resolved.name, resolved.version, version, old.aliases)
    return {
        "model_name": resolved.name,
        "from_version": resolved.version,
        "version": version,
        "aliases_moved": list(old.aliases),
    }
