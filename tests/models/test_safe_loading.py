"""Loading a model never runs what is stored: a planted pickle payload does not run (the version is
refused in one line), a tampered entry file is never executed, damaged weights, spec or checkpoints
fail in one line naming the file, at once; and a copied data root works on its own."""

from __future__ import annotations

import io
import os
import pickle
import shutil
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from flows.score_flows import score_flow
from models import checkpoint, packaging, tracking
from pipeline.layout import Layout


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {PWNED}",))


PWNED = Path("/tmp/rnnflow-test-pwned-by-a-stored-model")


@pytest.fixture(scope="module")
def trained(tiny_names_root):
    return tiny_names_root


@pytest.fixture
def root(trained, tmp_path, prefect_api):
    copy = tmp_path / "data"
    shutil.copytree(trained, copy)  # a copied root stands alone: the copy's artifacts are its own
    PWNED.unlink(missing_ok=True)
    yield copy
    PWNED.unlink(missing_ok=True)


def model_folder(root: Path) -> Path:
    layout = Layout.of("names", root)
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return artifacts_of("1", root)


def artifacts_of(version: str, root: Path) -> Path:
    model_id = MlflowClient().get_model_version("names-nationality", version).source.removeprefix("models:/")
    return Path(mlflow.get_logged_model(model_id).artifact_location.removeprefix("file://"))


def score(root: Path, tmp_path: Path) -> tuple[int, str]:
    """-> (exit status, error) as `rnnflow score` gives them (it prints ValueErrors as one line, exit 2)."""
    source = tmp_path / "in.csv"
    source.write_text("surname\nCarmarov\n")
    try:
        score_flow("names", str(source), "2026-11-01", data_root=str(root))
    except ValueError as err:
        return 2, str(err)
    return 0, ""


def test_a_version_is_code_plus_data_files_and_scores_without_a_pickle(root, tmp_path):
    folder = model_folder(root)
    assert not list(folder.glob("python_model.pkl*"))
    assert (folder / "rnnflow_text_model.py").exists()
    assert score(root, tmp_path)[0] == 0


def old_style_version(root: Path) -> Path:
    """v2, packaged as rnnflow did before models from code (the wrapper pickled), made champion;
    -> its folder, whose python_model.pkl now holds a payload."""
    from models.text.pyfunc import TextClassifierPyfunc

    folder = model_folder(root)
    flavor = mlflow.models.Model.load(str(folder / "MLmodel")).flavors["python_function"]
    artifacts = {name: str(folder / info["path"]) for name, info in flavor["artifacts"].items()}
    run_id = MlflowClient().get_model_version("names-nationality", "1").run_id
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(name="model", python_model=TextClassifierPyfunc(), artifacts=artifacts)
    version = tracking.register("names-nationality", info.model_uri, run_id, info.model_id, {"kind": "names"})
    MlflowClient().set_registered_model_alias("names-nationality", "champion", str(version))
    old = artifacts_of(str(version), root)
    with open(old / "python_model.pkl", "wb") as fh:  # what someone with write access could plant
        pickle.dump(Payload(), fh)
    return old


def test_a_planted_pickle_payload_never_runs_and_repackage_rebuilds_the_version_from_its_files(
    root, tmp_path
):
    old_style_version(root)
    code, err = score(root, tmp_path)
    assert not PWNED.exists()
    assert code == 2 and len(err.splitlines()) == 1
    assert "python_model.pkl" in err and "never loads" in err
    assert "rnnflow repackage KIND --model models:/names-nationality/2" in err

    from flows.score_flows import repackage_flow

    report = repackage_flow("names", data_root=str(root))
    assert not PWNED.exists()
    assert (report["from_version"], report["version"], report["aliases_moved"]) == (2, 3, ["champion"])
    assert not list(artifacts_of("3", root).glob("python_model.pkl*"))
    assert score(root, tmp_path)[0] == 0  # the champion, now v3, scores
    assert MlflowClient().get_model_version("names-nationality", "3").tags["repackaged_from"] == "2"


def test_a_tampered_entry_file_is_never_executed(root, tmp_path):
    entry = model_folder(root) / "rnnflow_text_model.py"
    entry.write_text(f"import os\nos.system('touch {PWNED}')\n" + entry.read_text())
    assert score(root, tmp_path)[0] == 0  # scored by the installed code
    assert not PWNED.exists()


def test_damaged_weights_fail_at_once_in_one_line_naming_the_file(root, tmp_path, monkeypatch):
    loads, real = [], packaging.load_local
    monkeypatch.setattr(packaging, "load_local", lambda *a: loads.append(a) or real(*a))
    weights = model_folder(root) / "artifacts" / "weights.pt"
    weights.write_bytes(b"garbage, not a torch file")
    code, err = score(root, tmp_path)
    assert code == 2 and len(err.splitlines()) == 1 and len(loads) == 1  # no retries
    assert "weights.pt: not readable weights" in err and "weights_only" not in err
    spec = model_folder(root) / "artifacts" / "spec.json"
    spec.write_text("{not json")
    code, err = score(root, tmp_path)
    assert code == 2 and "spec.json: not readable JSON" in err and len(err.splitlines()) == 1


def test_a_damaged_checkpoint_is_named_without_torchs_unsafe_advice(tmp_path):
    buffer = io.BytesIO()
    torch.save({"epoch": 1, "w": torch.ones(3)}, buffer)
    truncated, garbage = tmp_path / "epoch-0001.pt", tmp_path / "epoch-0002.pt"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    garbage.write_bytes(pickle.dumps(Payload()))
    for path in (truncated, garbage):
        with pytest.raises(ValueError) as err:  # deterministic: never retried
            checkpoint.load(path)
        message = str(err.value)
        assert message.startswith(f"{path}: not a readable checkpoint") and "delete it" in message
        assert "weights_only" not in message and "\n" not in message
    assert not PWNED.exists()


def test_a_copied_data_root_trains_into_its_own_artifacts_and_leaves_the_original_alone(root, trained):
    from models.text.job import train_text_classifier
    from models.train import TrainConfig
    from pipeline.kinds import NAMES

    before = sorted(p.relative_to(trained) for p in (trained / "mlartifacts").rglob("*"))
    layout = Layout.of("names", root)
    report = train_text_classifier(
        NAMES, layout, TrainConfig(epochs=1, reference=False), {"hidden_size": 16, "embed_dim": 8}
    )
    assert sorted(p.relative_to(trained) for p in (trained / "mlartifacts").rglob("*")) == before
    for version in ("1", str(report.version)):
        folder = artifacts_of(version, root)
        assert folder.is_relative_to(root), f"{folder} is outside the copied data root {root}"
    assert mlflow.get_run(report.run_id).info.artifact_uri.startswith((root / "mlartifacts").as_uri())
