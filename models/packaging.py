"""MLflow pyfunc packaging shared by every family, and the one loader rnnflow scores with.

A model is logged as MLflow "models from code": its entry file (a module of this package that sets the
installed wrapper class) plus data files (spec.json, weights.pt loaded with weights_only=True, JSON
vocabularies and drift reference). Loading never executes anything stored: load() builds the wrapper
from the installed code named by the entry file, and refuses a version with a pickled wrapper.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import torch
from mlflow.models import Model, ModelSignature

from models.checkpoint import torch_error
from pipeline.storage import CorruptFile

PIP_REQUIREMENTS = ["rnnflow", "torch", "polars", "pandas", "numpy", "scikit-learn"]
# MLflow 3 warns about "Any" type hints for every PythonModel subclass, hinted or not: noise for users.
warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType.*")

# models-from-code entry file name -> the installed wrapper class it sets (each family registers its own)
ENTRIES: dict[str, type[mlflow.pyfunc.PythonModel]] = {}
FAMILY_ENTRIES: dict[str, Path] = {}  # family -> its entry file


def register_entry(family: str, entry: Path, wrapper: type[mlflow.pyfunc.PythonModel]) -> None:
    ENTRIES[entry.name] = wrapper
    FAMILY_ENTRIES[family] = entry


class ModelRefused(ValueError):
    """A registered version rnnflow will not load (a pickled wrapper, an unknown entry, a path escape)."""


def log_pyfunc(
    workdir: Path,
    entry: Path,
    model: torch.nn.Module | None,
    spec: dict,
    artifacts: dict[str, str],
    model_signature: ModelSignature,
    input_example: pd.DataFrame,
    name: str = "model",
    drift_reference: dict | Callable[[mlflow.pyfunc.PythonModel], dict] | None = None,
    params: dict | None = None,
):
    """Every kind's packaging: weights (state_dict) + spec.json + extra artifacts as a pyfunc `name`,
    with `entry` (a registered models-from-code file) as its code. The logged model carries `params`
    (its own settings) and none of the run's: a run that logs several models keeps them apart.

    drift_reference: what scoring compares each day with (pipeline/*/profile.py), or a function of the
    packaged model, loaded as scoring will load it, that computes it; shipped as drift_reference.json."""
    workdir = workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "spec.json").write_text(json.dumps(spec, indent=2))
    artifacts = {"spec": str(workdir / "spec.json"), **artifacts}
    if model is not None:  # a torch model's weights (a TF-IDF model brings its arrays in `artifacts`)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, workdir / "weights.pt")
        artifacts["weights"] = str(workdir / "weights.pt")
    if callable(drift_reference):
        loaded = ENTRIES[entry.name]()
        loaded.load_context(SimpleNamespace(artifacts=artifacts, model_config=None))
        drift_reference = drift_reference(loaded)
    if drift_reference is not None:
        (workdir / "drift_reference.json").write_text(json.dumps(drift_reference))
        artifacts["drift_reference"] = str(workdir / "drift_reference.json")
    run = mlflow.active_run()
    logged = mlflow.initialize_logged_model(  # created first, so MLflow copies none of the run's params
        name=name,
        source_run_id=run.info.run_id if run else None,
        experiment_id=run.info.experiment_id if run else None,
        params={k: str(v) for k, v in (params or {}).items()},
        model_type=spec.get("model_type") or type(model).__name__,
    )
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(entry),  # models from code: nothing is pickled
        artifacts=artifacts,
        signature=model_signature,
        input_example=input_example,
        pip_requirements=PIP_REQUIREMENTS,
        model_id=logged.model_id,
    )


# ---------------------------------------------------------------- reading a packaged model's files


REREGISTER = "the stored model is damaged: train it again, or score with another version (--model)"


def read_json(context, name: str) -> dict | list:
    path = context.artifacts[name]
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptFile(f"{Path(path).name}: not readable JSON ({str(err)[:120]}); {REREGISTER}") from None


def load_weights(context, name: str = "weights") -> dict:
    """A state_dict, with weights_only=True: a weights file can never run code."""
    path = context.artifacts[name]
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's advice (weights_only=False) is exactly what must never be done
        raise CorruptFile(
            f"{Path(path).name}: not readable weights ({torch_error(err)}); {REREGISTER}"
        ) from None


@dataclass
class LoadedModel:
    """What scoring uses of a pyfunc: predict(frame), its MLmodel metadata and the wrapper itself."""

    uri: str
    metadata: Model
    python_model: mlflow.pyfunc.PythonModel

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.python_model.predict(None, frame)

    def unwrap_python_model(self) -> mlflow.pyfunc.PythonModel:
        return self.python_model


def load(uri: str) -> LoadedModel:
    """A registered version (models:/<name>/<version>), built from the installed rnnflow code and the
    version's data files; nothing stored is unpickled or executed."""
    with tempfile.TemporaryDirectory(prefix="rnnflow-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        return load_local(local, uri)


def load_local(path: Path, uri: str) -> LoadedModel:
    retrain = "re-register it: train it again (`rnnflow train KIND`), or score with another version"
    if any(p.name.startswith("python_model.pkl") for p in path.iterdir()):
        raise ModelRefused(
            f"{uri} was packaged with a pickled wrapper (python_model.pkl), which rnnflow never loads "
            f"(unpickling runs code); re-register it from its data files: `rnnflow repackage KIND --model "
            f"{uri}`, or train it again"
        )
    try:
        meta = Model.load(str(path / "MLmodel"))
    except Exception as err:
        raise CorruptFile(f"{uri}: its MLmodel file is not readable ({str(err)[:120]}); {retrain}") from None
    flavor = meta.flavors.get("python_function") or {}
    entry = Path(str(flavor.get("model_code_path") or "")).name
    if entry not in ENTRIES:  # each family registers its entry when imported (models.jobs.scorer_of)
        raise ModelRefused(
            f"{uri}: its code entry {entry or '(none)'!r} is not one of this rnnflow's "
            f"{sorted(ENTRIES)}; {retrain}"
        )
    return LoadedModel(uri, meta, build(entry, artifact_files(path, flavor, uri), uri))


def artifact_files(path: Path, flavor: dict, uri: str) -> dict[str, str]:
    """The pyfunc's artifacts as local files, each of which must lie inside the downloaded model."""
    artifacts, base = {}, path.resolve()
    for name, info in (flavor.get("artifacts") or {}).items():
        file = (path / str(info.get("path", ""))).resolve()
        if not file.is_relative_to(base) or not file.is_file():
            raise ModelRefused(f"{uri}: artifact {name!r} is not a file inside the model; train it again")
        artifacts[name] = str(file)
    return artifacts


def build(entry: str, artifacts: dict[str, str], uri: str) -> mlflow.pyfunc.PythonModel:
    """The installed wrapper of `entry`, loaded from the data files; a damaged one fails naming it."""
    wrapper = ENTRIES[entry]()
    try:
        wrapper.load_context(SimpleNamespace(artifacts=artifacts, model_config=None))
    except CorruptFile as err:
        raise CorruptFile(f"{uri}: {err}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        detail = f"{type(err).__name__}: {str(err)[:120]}"
        raise CorruptFile(f"{uri}: its files do not load ({detail}); train it again") from None
    return wrapper
