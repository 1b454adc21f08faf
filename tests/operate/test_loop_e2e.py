"""The loop on a real Prefect server and worker: days scored by champion v1; a drifted day's alert makes
the deployed automation start a training (the automation's run, not the test's); the new version is
challenger and scores days in the shadow; labels arrive late, in two pieces; the monitor records both
versions' realised accuracy and takes the promotion decision; rollback restores v1; --as-served scores
an old day with the version that served it. Every move is in the history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import polars as pl
import pytest

from tests import prefect_store
from tests.conftest import make_surnames, prefect_template, train_tiny_names
from tests.operate.test_server_e2e import (
    PREFECT,
    ROOT,
    deployment_run,
    free_port,
    group_alive,
    start,
    stop,
    wait_for,
    wait_healthy,
)

DAYS = [f"2026-11-0{n}" for n in range(1, 8)]
DRIFTED = DAYS[3]
NAME = "names-nationality"
# what an automation's training uses on this worker: a model that learns the suffixes (v1 barely has)
TRAINING = {
    "RNNFLOW_TRAIN_EPOCHS": "8",
    "RNNFLOW_TRAIN_LR": "0.02",
    "RNNFLOW_TRAIN_BATCH_SIZE": "16",
    "RNNFLOW_TRAIN_REFERENCE": "false",
    "RNNFLOW_MODEL_HIDDEN_SIZE": "24",
    "RNNFLOW_MODEL_EMBED_DIM": "12",
    "RNNFLOW_MODEL_MEMBERS": "1",
}


def day_rows(ds: str) -> pl.DataFrame:
    """The day's input (id, surname) and its truth: the 180 training surnames (a day like the training
    data: no drift), which the drifted day shouts."""
    rows = make_surnames()
    names = [f"#{s.upper()}!?" if ds == DRIFTED else s for s, _ in rows]
    return pl.DataFrame(
        {"id": [f"{ds}-{i}" for i in range(len(rows))], "surname": names, "truth": [n for _, n in rows]}
    )


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    base = tmp_path_factory.mktemp("loop")
    root, port = base / "data", free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_REGISTRY"))},
        "PREFECT_HOME": str(base / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "RNNFLOW_DATA_ROOT": str(root),
        "PYTHONPATH": str(ROOT),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_store.copy_to(
            prefect_template(tmp_path_factory), base
        ),
    }
    server = start(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, base / "s.log"
    )
    worker = None
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("MLFLOW_TRACKING_URI", raising=False)
            mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
            train_tiny_names(root)  # v1, champion: one epoch of a tiny model
        for ds in DAYS:
            path = root / "incoming" / "names" / f"ds={ds}" / "part-0.parquet"
            path.parent.mkdir(parents=True)
            day_rows(ds).drop("truth").write_parquet(path)
        wait_healthy(api, server, base / "s.log")
        deploy = [sys.executable, "deployments/deploy.py", "--data-root", str(root), "--pool", "loop"]
        done = subprocess.run(deploy, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        worker_env = env | TRAINING
        worker = start(
            [*PREFECT, "worker", "start", "--pool", "loop", "--type", "process"], worker_env, base / "w.log"
        )
        yield env, root, api, base
    finally:
        for proc in (worker, server):
            if proc is not None:
                stop(proc)
        for proc in (worker, server):
            if proc is not None:
                assert not group_alive(proc.pid), f"processes of {proc.args} left behind"


# v1 is barely trained: its predicted labels and the day's lengths move the label and length metrics on
# a plain day; the drifted day alerts on its characters (oov_psi), which stays at its default
PLAIN_DAY = {m: [0.6, 0.9] for m in ("length_psi", "token_tvd", "label_tvd", "probability_psi")}


def score(env, api, ds: str):
    limits = json.dumps({} if ds == DRIFTED else PLAIN_DAY)
    run = wait_for(
        api, deployment_run(env, "score-names/daily", f"ds={ds}", f"drift_thresholds={limits}"), timeout=240
    )
    assert run.state.is_completed(), run.state.message
    return run


def cli(env, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def automation_runs(api: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        found = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["weekly"]))
        )
        return [r for r in found if r.created_by is not None and r.created_by.type == "AUTOMATION"]


def aliases(root) -> dict[str, int]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    model = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(NAME)
    return {alias: int(version) for alias, version in model.aliases.items()}


def test_drift_retrains_a_challenger_that_the_monitor_judges_on_late_labels(loop, tmp_path):
    env, root, api, base = loop
    for ds in DAYS[:3]:
        assert score(env, api, ds).state.name == "Completed"  # not Drift: no training starts
    assert aliases(root) == {"champion": 1}

    drifted = score(env, api, DRIFTED)
    assert drifted.state.name == "Drift"
    deadline = time.time() + 120
    while not (runs := automation_runs(api)) and time.time() < deadline:
        time.sleep(1)
    assert len(runs) == 1, (base / "w.log").read_text()[-3000:]
    trained = wait_for(api, str(runs[0].id), timeout=400)
    assert trained.state.is_completed(), trained.state.message
    assert "rnnflow.drift.alert" in runs[0].parameters["launch"]["trigger"]
    assert aliases(root) == {"champion": 1, "challenger": 2}

    for ds in DAYS[4:]:
        score(env, api, ds)
        served = pl.read_parquet(root / f"predictions/names/ds={ds}/part-0.parquet")
        shadow = pl.read_parquet(root / f"shadow/names/ds={ds}/part-0.parquet")
        assert served["id"].to_list() == shadow["id"].to_list()
        assert set(served["model_version"]) == {1} and set(shadow["model_version"]) == {2}
        assert set(shadow.columns) == set(served.columns)

    truth = pl.concat([day_rows(ds).with_columns(pl.lit(ds).alias("ds")) for ds in DAYS[3:]])
    first, second = truth.filter(pl.col("ds") <= DAYS[4]), truth.filter(pl.col("ds") > DAYS[4])
    (tmp_path / "a.csv").write_text(first.select("ds", "id", pl.col("truth").alias("label")).write_csv())
    (tmp_path / "b.csv").write_text(
        second.select("ds", "id", pl.col("truth").alias("nationality")).write_csv()
    )
    sources = json.dumps([str(tmp_path / "a.csv")])
    piece = wait_for(api, deployment_run(env, "ingest-labels-names/manual", f"sources={sources}"))
    assert piece.state.is_completed(), piece.state.message
    cli(env, "labels", "names", str(tmp_path / "b.csv"))

    out = cli(env, "monitor", "names", "--start", DAYS[0], "--end", DAYS[-1], "--window", "3")
    assert "plot:" in out
    from pipeline import history
    from pipeline.layout import Layout

    layout = Layout.of("names", root)
    moves = history.read(layout)
    assert [(m["alias"], m["action"], m["to_version"]) for m in moves.head(2).to_dicts()] == [
        ("champion", "promote", 1),
        ("challenger", "challenger", 2),
    ]
    decision = moves.row(-1, named=True)
    assert decision["alias"] == "challenger" and decision["action"] in ("promote", "demote")
    assert "McNemar" in decision["reason"] and "p_value" in decision["evidence"]
    evidence = json.loads(decision["evidence"])
    assert evidence["days"] == 3 and evidence["rows"] == 180 * 3
    expected = {"champion": 2} if decision["action"] == "promote" else {"champion": 1}
    assert aliases(root) == expected

    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("rnnflow-names-monitoring").experiment_id
    for version, labelled_days in ((1, DAYS[3:]), (2, DAYS[4:])):
        (run,) = client.search_runs([experiment], f"attributes.run_name = 'realised-names-v{version}'")
        steps = client.get_metric_history(run.info.run_id, "accuracy")
        assert len({s.step for s in steps}) == len(labelled_days), (version, steps)

    cli(env, "rollback", "names", "--to", "1", "--reason", "the e2e test's rollback")
    assert aliases(root) == {"champion": 1}
    assert history.read(layout).row(-1, named=True)["action"] == "rollback"
    day2 = str(root / "incoming" / "names" / f"ds={DAYS[1]}" / "part-0.parquet")
    cli(env, "score", "names", "--input", day2, "--ds", DAYS[1], "--as-served")
    rescored = pl.read_parquet(root / f"predictions/names/ds={DAYS[1]}/part-0.parquet")
    assert set(rescored["model_version"]) == {1}
