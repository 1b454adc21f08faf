"""Runs killed mid-way (SIGKILL) do not stay running forever: the next rnnflow command marks the MLflow
run FAILED and the Prefect flow run Crashed, naming the process that stopped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from flows.cli import main
from models import tracking
from pipeline.layout import Layout
from tests.conftest import make_surnames

ROOT = Path(__file__).resolve().parents[2]


def killed(code: str, env: dict) -> subprocess.CompletedProcess:
    prelude = "import os, signal\ndef die(*a, **k):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    run = subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, env=env, timeout=300)
    assert run.returncode == -9
    return run


def test_a_training_killed_mid_way_is_marked_failed_by_the_next_command(tmp_path, prefect_api):
    root = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    killed(
        "from models import train\n"
        "train.EPOCH_HOOKS.append(lambda event, **k: event == 'epoch_end' and die())\n"
        "from tests.conftest import train_tiny_names\nimport pathlib\n"
        f"train_tiny_names(pathlib.Path({str(root)!r}))\n",
        env,
    )
    layout = Layout.of("names", root)
    uri = f"sqlite:///{layout.mlflow_db}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("rnnflow-names").experiment_id
    (run,) = client.search_runs([experiment])
    assert run.info.status == "RUNNING"  # what a kill leaves

    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)  # what any next command does first
    run = client.get_run(run.info.run_id)
    assert run.info.status == "FAILED"
    assert "stopped before the run ended" in run.data.tags["rnnflow.crashed"]


def test_a_cli_flow_run_killed_mid_way_is_marked_crashed_by_the_next_command(tmp_path, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    source = tmp_path / "names.csv"
    source.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in make_surnames(20)))
    root = str(tmp_path / "data")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    killed(
        "from pipeline import ingest\ningest.split_good_bad = die\nfrom flows.cli import main\n"
        f"main(['ingest', 'names', {str(source)!r}, '--data-root', {root!r}])\n",
        env,
    )

    def states() -> list[str]:
        tagged = FlowRunFilter(tags=FlowRunFilterTags(all_=["rnnflow-cli"]))
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=tagged)
        return sorted(r.state.type.value for r in runs if r.parameters.get("data_root") == root)

    assert states() == ["RUNNING"]  # what a kill leaves
    assert main(["ingest", "names", str(source), "--data-root", root]) == 0
    assert states() == ["COMPLETED", "CRASHED"]
