"""MLflow pyfunc packaging shared by every family: state_dict + spec.json + artifacts, no pickled module."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

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
):
    """Every kind's packaging: weights (state_dict) + spec.json + extra artifacts as a pyfunc `name`."""
    workdir = workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    weights = workdir / "weights.pt"
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
    (workdir / "spec.json").write_text(json.dumps(spec, indent=2))
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=python_model,
        artifacts={"weights": str(weights), "spec": str(workdir / "spec.json"), **artifacts},
        signature=model_signature,
        input_example=input_example,
        pip_requirements=PIP_REQUIREMENTS,
    )
