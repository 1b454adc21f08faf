"""torch DDP through the training flow: torchrun children, gloo on CPU, one MLflow run, resume."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from flows.kind_flows import train_flow
from models.launch import RankFailed
from pipeline.ingest import ingest
from pipeline.kinds import NAMES
from pipeline.layout import Layout
from pipeline.storage import latest_features
from pipeline.text.features import FeatureConfig, build_features
from tests.conftest import make_surnames, processes_tagged

ROOT = Path(__file__).resolve().parents[2]
TINY = {"hidden_size": 16, "embed_dim": 8, "dropout": 0.0}
# reference off: DDP is about ranks and runs here, not the champion gate
RECIPE = {"epochs": 6, "batch_size": 16, "lr": 0.02, "patience": 6, "seed": 7, "reference": False}


def prepared(tmp_path) -> Path:
    """A data root with tiny names features, nothing trained."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "data"
    layout = Layout.of("names", root)
    csv = tmp_path / "surnames.csv"
    csv.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in make_surnames()))
    ingest([str(csv)], NAMES, layout)
    build_features(NAMES, layout, FeatureConfig(max_buckets=8))
    return root


def runs_and_versions(root: Path) -> tuple[list, list]:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("rnnflow-names")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return runs, client.search_model_versions("name='names-nationality'")


def assert_each_epoch_split_in_two(root: Path, trace: Path, epochs: int) -> None:
    """The ranks' traced batches: as many on each, disjoint rows, and together the whole train split."""
    _, manifest = latest_features(Layout.of("names", root))
    total = manifest["rows"]["train"]
    for epoch in range(1, epochs + 1):
        plans = [json.loads((trace / f"rank{r}-epoch{epoch}.json").read_text()) for r in (0, 1)]
        assert len(plans[0]) == len(plans[1])  # same number of batches on each rank
        seen = [(b, row) for plan in plans for b, rows in plan for row in rows]
        assert len(seen) == len(set(seen)) == total  # disjoint, and together the whole epoch


def test_two_ranks_split_every_epoch_a_killed_rank_fails_by_name_and_resume_finishes_one_run(
    tmp_path, prefect_api, monkeypatch
):
    """Rank 1 is killed after epoch 2: the task fails naming it, no rank outlives it, checkpoints
    1-2 are complete; --resume trains epochs 3-6 into the same MLflow run. Across both launches the
    two ranks split every epoch, and the result is close to one process's on the same data and seed."""
    one = train_flow("names", str(prepared(tmp_path / "one")), train=RECIPE, model=TINY, launch={"nproc": 1})
    root = prepared(tmp_path / "two")
    trace, tag = tmp_path / "trace", uuid.uuid4().hex
    monkeypatch.setenv("RNNFLOW_TRACE_BATCHES", str(trace))  # each rank's batches, every epoch
    monkeypatch.setenv("RNNFLOW_TEST_TAG", tag)  # marks this test's torchrun and ranks
    monkeypatch.setenv("RNNFLOW_FAULT", "1:2")  # rank 1 is SIGKILLed after epoch 2
    with pytest.raises(RankFailed, match=r"rank 1 ended with exit code -9 \(killed by SIGKILL\)") as failed:
        train_flow("names", str(root), train=RECIPE, model=TINY, launch={"nproc": 2})
    assert any("epoch 2/6" in line for line in failed.value.last_lines)
    assert processes_tagged(tag) == [], "rank processes outlived the failed task"
    checkpoints = Layout.of("names", root).checkpoints
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch-0001.pt", "epoch-0002.pt"]

    monkeypatch.delenv("RNNFLOW_FAULT")
    two = train_flow("names", str(root), train=RECIPE, model=TINY, launch={"nproc": 2, "resume": True})
    assert two["version"] == 1 and two["epochs_run"] == RECIPE["epochs"]
    assert_each_epoch_split_in_two(root, trace, two["epochs_run"])
    runs, versions = runs_and_versions(root)
    assert len(runs) == 1 and len(versions) == 1  # rank 1 never talked to MLflow; resume continued
    run = runs[0]
    assert run.data.tags["resumed"] == "true" and run.data.params["world_size"] == "2"
    assert {"train_samples_per_s", "train_samples_per_s_rank0", "train_samples_per_s_rank1"} <= set(
        run.data.metrics
    )
    assert not list(checkpoints.iterdir())  # registered: nothing to resume
    # Same seed and data; 2 processes take half the optimizer steps (each step averages 2 batches).
    assert one["best_val_accuracy"] >= 0.8 and two["best_val_accuracy"] >= 0.8
    assert abs(one["best_val_accuracy"] - two["best_val_accuracy"]) <= 0.1


def test_two_nodes_on_one_machine_finish(tmp_path, prefect_api):
    root = prepared(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Both nodes report to the session's server: two ephemeral servers starting at once on a busy
    # machine were what timed out.
    env = {**os.environ, "RNNFLOW_DATA_ROOT": str(root), "PREFECT_API_URL": prefect_api}
    base = [sys.executable, "-m", "flows.cli", "train", "names", "--epochs", "2", "--batch-size", "16"]
    base += ["--hidden-size", "16", "--embed-dim", "8", "--nproc", "1", "--nnodes", "2", "--no-reference"]
    base += ["--rdzv-endpoint", f"127.0.0.1:{port}"]
    nodes = [
        subprocess.Popen(
            [*base, "--node-rank", str(r)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in (0, 1)
    ]
    outputs = [n.communicate(timeout=300)[0] for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    assert '"version": 1' in outputs[0] and "rank 0's node reports" in outputs[1]
    runs, versions = runs_and_versions(root)
    assert len(runs) == 1 and len(versions) == 1
