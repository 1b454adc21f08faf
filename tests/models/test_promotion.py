"""The promotion history: every champion move is recorded before it is made, a kill between the two is
completed by the next move, rollback only to a version that served, and --as-served finds it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from mlflow import MlflowClient

from flows.cli import main
from models import promotion, tracking
from pipeline import history
from pipeline.layout import Layout
from tests.conftest import train_tiny_names

NAME = "names-nationality"

KILLED_MID_MOVE = """
import os, signal, sys
from mlflow import MlflowClient
from models import promotion, tracking
from pipeline.layout import Layout

layout = Layout.of("names", sys.argv[1])
tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
MlflowClient.set_registered_model_alias = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
promotion.move(layout, "names-nationality", 2, action="promote", reason="killed before the alias")
"""


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """v1 champion (recorded by its training); v2, the same recipe again: not better, never served."""
    from models.text.job import train_text_classifier
    from models.train import TrainConfig
    from pipeline.kinds import NAMES

    root = tmp_path_factory.mktemp("promotion") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        train_tiny_names(root)
        layout = Layout.of("names", root)
        tiny = {"hidden_size": 16, "embed_dim": 8}
        report = train_text_classifier(NAMES, layout, TrainConfig(epochs=1, reference=False), tiny)
        assert report.version == 2 and not report.promoted
    return root


@pytest.fixture
def layout(two_versions, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    layout = Layout.of("names", two_versions)
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return layout


def test_the_first_champion_is_in_the_history_with_its_evidence(layout):
    first = history.read(layout).row(0, named=True)
    assert (first["action"], first["from_version"], first["to_version"]) == ("promote", None, 1)
    assert "first champion" in first["reason"] and '"metric": "best_val_accuracy"' in first["evidence"]
    assert first["features_version"] and first["code_commit"] and first["actor"] == "training"
    tags = MlflowClient().get_model_version(NAME, "1").tags
    assert tags["champion_since"] == first["at"].isoformat() and tags["champion_why"].startswith("promote:")


def test_rollback_only_to_a_version_that_served_and_says_why_in_one_line(layout, capsys, prefect_api):
    root = str(layout.root)
    before = history.read(layout).height
    for to, message in [("7", "has no version 7"), ("2", "v2 never served (served: v1)")]:
        assert main(["rollback", "names", "--to", to, "--reason", "x", "--data-root", root]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and message in err and "nothing changed" in err, err
    assert history.read(layout).height == before and promotion.alias_version(NAME, "champion") == 1

    promotion.move(layout, NAME, 2, action="promote", reason="a better day", actor="test")
    argv = ["rollback", "names", "--to", "1", "--reason", "v2 misread Irish names", "--data-root", root]
    assert main(argv) == 0
    assert promotion.alias_version(NAME, "champion") == 1
    last = history.last_move(layout, "champion")
    assert (last["action"], last["from_version"], last["to_version"]) == ("rollback", 2, 1)
    assert last["reason"] == "v2 misread Irish names"
    assert MlflowClient().get_model_version(NAME, "2").tags["champion_until"] == last["at"].isoformat()
    assert main(["history", "names", "--data-root", root]) == 0
    assert "v2 misread Irish names" in capsys.readouterr().out


def test_a_kill_between_the_history_and_the_alias_is_completed_by_the_next_move(layout):
    assert promotion.alias_version(NAME, "champion") == 1
    done = subprocess.run([sys.executable, "-c", KILLED_MID_MOVE, str(layout.root)], timeout=120)
    assert done.returncode == -9
    assert history.last_move(layout, "champion")["to_version"] == 2  # recorded ...
    assert promotion.alias_version(NAME, "champion") == 1  # ... but not made
    promotion.move(layout, NAME, 2, action="promote", reason="the re-run", actor="test")
    assert (
        promotion.alias_version(NAME, "champion") == 2 == history.last_move(layout, "champion")["to_version"]
    )
    moves = history.read(layout).filter(history.pl.col("reason") == "the re-run")
    assert moves["from_version"].to_list() == [2]  # the interrupted move was completed first


def test_a_move_made_outside_rnnflow_is_recorded_and_as_served_finds_the_days_version(layout, capsys):
    MlflowClient().set_registered_model_alias(NAME, "champion", "1")  # someone in the MLflow UI
    promotion.move(layout, NAME, 2, action="promote", reason="after the UI", actor="test")
    outside = history.read(layout).filter(history.pl.col("action") == "outside").row(-1, named=True)
    assert (outside["from_version"], outside["to_version"]) == (2, 1)
    today = datetime.now(UTC).date().isoformat()
    assert history.served_on(layout, today) == 2
    assert history.served_on(layout, "2020-01-01") is None
    argv = ["score", "names", "--input", "x.csv", "--ds", "2020-01-01", "--as-served"]
    assert main([*argv, "--data-root", str(layout.root)]) == 2
    assert "no names champion had served by 2020-01-01" in capsys.readouterr().err
