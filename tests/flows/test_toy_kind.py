"""A new text kind is one declaration: declared in its own module, it ingests, builds features,
trains, registers, scores and deploys through the same code as names and reviews.

The steps of docs/adding-a-family.md, (a): the declaration (register_kind) in a module of its own, that
module imported as $RNNFLOW_KINDS makes every process import it, then the CLI, the flows and
deploy.py --dry-run with RNNFLOW_KINDS set; the kind is removed from KINDS afterwards."""

from __future__ import annotations

import importlib
import os
import random
import subprocess
import sys

import polars as pl
import pytest

from flows.cli import main
from pipeline.kinds import KINDS

DECLARATION = """
from pipeline.kinds import TextKind, register_kind

TOYS = register_kind(TextKind(name="toys", text_col="word", label_col="colour", model_name="toys-colour"))
"""
ENDINGS = {"red": "ro", "blue": "lu", "green": "gri"}


@pytest.fixture
def toy_kind(tmp_path, monkeypatch):
    (tmp_path / "toykind.py").write_text(DECLARATION)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("RNNFLOW_KINDS", "toykind")  # for any process a step starts
    importlib.import_module("toykind")  # what pipeline.kinds does for $RNNFLOW_KINDS at its import
    yield tmp_path
    KINDS.pop("toys", None)
    sys.modules.pop("toykind", None)


def test_a_declared_text_kind_runs_the_whole_pipeline_and_deploys(toy_kind, prefect_api):
    rng = random.Random(3)
    stems = ["".join(rng.choice("bdfkmnpst") + rng.choice("aeiou") for _ in range(2)) for _ in range(150)]
    rows = [(s + ENDINGS[c], c) for s, c in zip(stems, rng.choices(list(ENDINGS), k=150), strict=True)]
    source = toy_kind / "toys.csv"
    source.write_text("word,colour\n" + "".join(f"{w},{c}\n" for w, c in rows))
    root = str(toy_kind / "data")

    assert main(["ingest", "toys", str(source), "--data-root", root]) == 0
    assert main(["features", "toys", "--max-buckets", "4", "--data-root", root]) == 0
    train = ["train", "toys", "--epochs", "2", "--hidden-size", "8", "--embed-dim", "4", "--no-blend"]
    assert main([*train, "--data-root", root]) == 0
    inputs = toy_kind / "score.csv"
    inputs.write_text("word\nbatiro\nkemulu\npasogri\n")
    score = [
        "score",
        "toys",
        "--input",
        str(inputs),
        "--ds",
        "2026-11-01",
        "--model",
        "models:/toys-colour/1",
    ]
    assert main([*score, "--data-root", root]) == 0
    scored = pl.read_parquet(toy_kind / "data" / "predictions" / "toys" / "ds=2026-11-01" / "part-0.parquet")
    assert scored["word"].to_list() == ["batiro", "kemulu", "pasogri"]
    assert set(scored["predicted_label"].to_list()) <= set(ENDINGS)
    assert scored["model_version"].to_list() == [1, 1, 1]

    env = {**os.environ, "RNNFLOW_KINDS": "toykind", "PYTHONPATH": str(toy_kind)}
    deploy = [sys.executable, "deployments/deploy.py", "--dry-run", "--data-root", root]
    out = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=120, check=True).stdout
    for name in ("ingest-toys/manual", "train-toys/weekly", "score-toys/daily"):
        assert name in out
