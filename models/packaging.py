"""MLflow pyfunc packaging shared by every family: state_dict + spec.json + artifacts, no pickled module."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import torch
from mlflow.models import ModelSignature

PIP_REQUIREMENTS = ["rnnflow", "torch", "polars", "pandas", "numpy"]
# MLflow 3 warns about "Any" type hints for every PythonModel subclass, hinted or not: noise for users.
warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType.*")


def log_pyfunc(
    workdir: Path,
    python_model: mlflow.pyfunc.PythonModel,
    model: torch.nn.Module,
    spec: dict,
    artifacts: dict[str, str],
    model_signature: ModelSignature,
    input_example: pd.DataFrame,
    name: str = "model",
    drift_reference: dict | Callable[[mlflow.pyfunc.PythonModel], dict] | None = None,
):
    """Every kind's packaging: weights (state_dict) + spec.json + extra artifacts as a pyfunc `name`.

    drift_reference: what scoring compares each day with (pipeline/*/profile.py), or a function of the
    packaged model, loaded as scoring will load it, that computes it; shipped as drift_reference.json."""
    workdir = workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    weights = workdir / "weights.pt"
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
    (workdir / "spec.json").write_text(json.dumps(spec, indent=2))
    artifacts = {"weights": str(weights), "spec": str(workdir / "spec.json"), **artifacts}
    if callable(drift_reference):
        loaded = type(python_model)()  # a fresh one: python_model itself is pickled into the model
        loaded.load_context(SimpleNamespace(artifacts=artifacts))
        drift_reference = drift_reference(loaded)
    if drift_reference is not None:
        (workdir / "drift_reference.json").write_text(json.dumps(drift_reference))
        artifacts["drift_reference"] = str(workdir / "drift_reference.json")
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=python_model,
        artifacts=artifacts,
        signature=model_signature,
        input_example=input_example,
        pip_requirements=PIP_REQUIREMENTS,
    )
