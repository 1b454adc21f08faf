"""Operate it for real: `prefect server start`, a process worker, the deployments, and runs triggered
with `prefect deployment run`, all on a temporary PREFECT_HOME and data root; nothing left running."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests import prefect_store
from tests.conftest import prefect_template

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]
DAYS = {"2026-11-01": 3, "2026-11-02": 4, "2026-11-03": 5}  # backfill days -> input rows
ONE_DAY = ("2026-11-05", 2)  # the single scoring run
PAST_SCHEDULED = ("2026-10-15", 6)  # a scheduled run created for a past date
NAMES = ["Ivanov", "Tanaka", "Kowalski", "Smith", "Yamamoto", "Petrov", "Nowak"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """In its own process group, so stop() can end it with everything it started."""
    return subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.time() + grace  # children may outlive the leader briefly
        while time.time() < deadline and group_alive(proc.pid):
            time.sleep(0.2)
        if not group_alive(proc.pid):
            return


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def prepare_data(root: Path) -> None:
    """A trained names model (tiny) and incoming/names/ds=*/ partitions, without any Prefect run."""
    from pipeline.layout import Layout
    from tests.conftest import train_tiny_names

    train_tiny_names(root)
    layout = Layout.of("names", root)
    for ds, n in [*DAYS.items(), ONE_DAY, PAST_SCHEDULED]:
        path = layout.incoming / f"ds={ds}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pl.DataFrame({"id": [str(i) for i in range(n)], "surname": NAMES[:n]}).write_parquet(path)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Server + worker + deployments; yields (env, data root, api url); tears all down, checks it."""
    base = tmp_path_factory.mktemp("operate")
    root, port = base / "data", free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(base / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "RNNFLOW_DATA_ROOT": str(root),
        "PYTHONPATH": str(ROOT),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_LOGGING_TO_API_ENABLED": "true",  # test_ingest_then_the_train... reads the run's log
        # a copy of the session's migrated database: the server skips ~9 s of migrations
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_store.copy_to(
            prefect_template(tmp_path_factory), base
        ),  # the worker polls often, so scheduled runs start on time
    }
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # earlier tests may have left theirs
        env.pop(name, None)
    server = start(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, base / "server.log"
    )
    worker = None
    try:
        with pytest.MonkeyPatch.context() as mp:  # while the server starts
            mp.delenv("MLFLOW_TRACKING_URI", raising=False)
            mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
            prepare_data(root)
        wait_healthy(api, server, base / "server.log")
        deployed = subprocess.run(
            [sys.executable, "deployments/deploy.py", "--data-root", str(root), "--pool", "e2e"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert "score-names/daily" in deployed.stdout and "backfill/scores" in deployed.stdout
        assert "deployed 16 deployments on work pool 'e2e'" in deployed.stdout
        assert "scheduler ok" in deployed.stdout  # the server's scheduler queued the cron deployments' runs
        worker = start(
            [*PREFECT, "worker", "start", "--pool", "e2e", "--type", "process"], env, base / "worker.log"
        )
        yield env, root, api
    finally:
        for proc in (worker, server):
            if proc is not None:
                stop(proc)
        for proc in (worker, server):
            if proc is not None:
                assert not group_alive(proc.pid), f"processes of {proc.args} left behind"


def wait_healthy(api: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


def deployment_run(env: dict, name: str, *params: str) -> str:
    """`prefect deployment run NAME --param k=v ...` -> the new flow run's id."""
    args = [*PREFECT, "deployment", "run", name]
    for p in params:
        args += ["--param", p]
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return re.search(r"UUID:\s*([0-9a-f-]{36})", out.stdout).group(1)


def wait_for(api: str, run_id: str, timeout: float = 240):
    """Poll the server until the flow run is final; returns it."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.time() + timeout
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        while time.time() < deadline:
            run = client.read_flow_run(run_id)
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(0.5)
    pytest.fail(f"flow run {run_id} not finished after {timeout}s")


def artifacts_of(api: str, run_id: str) -> dict[str, object]:
    """key -> data of the artifacts a flow run published."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return {a.key: json.loads(a.data) if a.type == "table" else a.data for a in found}


def partition_rows(root: Path, ds: str) -> int:
    folder = root / "predictions" / "names" / f"ds={ds}"
    files = list(folder.glob("*.parquet"))
    assert [f.name for f in files] == ["part-0.parquet"], files  # one file: replaced, never appended
    return pl.read_parquet(files[0]).height


def assert_drift_reported(root: Path, api: str, run_id: str, ds: str) -> None:
    """The day's drift report: drift/names/ds=<ds>.json, the run's table artifact, and an MLflow
    monitoring run linked to the version that scored it (tags on both)."""
    import json

    from mlflow.tracking import MlflowClient

    saved = json.loads((root / f"drift/names/ds={ds}.json").read_text())
    assert saved["ds"] == ds and saved["model_version"] == 1 and saved["verdict"] in ("ok", "n/a")
    table = artifacts_of(api, run_id)["drift-names"]
    assert {r["metric"] for r in table} == set(saved["metrics"]) and {"length_psi", "oov_psi"} <= set(
        saved["metrics"]
    )
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("rnnflow-names-monitoring")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.ds = '{ds}'")
    assert (
        runs
        and runs[0].data.tags["model_version"] == "1"
        and runs[0].data.tags["model_name"] == "names-nationality"
    )
    assert runs[0].data.metrics["rows"] == saved["rows"]
    version = client.get_model_version("names-nationality", "1")
    assert version.tags["drift_last_run_id"] in {
        r.info.run_id for r in client.search_runs([experiment.experiment_id])
    }


def test_one_day_scoring_and_a_three_day_backfill_through_the_cli(stack):
    env, root, api = stack
    one = deployment_run(env, "score-names/daily", f"ds={ONE_DAY[0]}")
    assert wait_for(api, one).state.is_completed()
    assert partition_rows(root, ONE_DAY[0]) == ONE_DAY[1]
    assert_drift_reported(root, api, one, ONE_DAY[0])

    start, end = min(DAYS), max(DAYS)
    first = deployment_run(env, "backfill/scores", "kind=names", f"start={start}", f"end={end}")
    assert wait_for(api, first).state.is_completed()
    counts = {ds: partition_rows(root, ds) for ds in DAYS}
    assert counts == DAYS
    versions = {
        pl.read_parquet(root / f"predictions/names/ds={ds}/part-0.parquet")["model_version"][0] for ds in DAYS
    }
    assert versions == {1}
    table = artifacts_of(api, first)["backfill-names"]
    assert [(r["ds"], r["status"], r["rows"], r["model"]) for r in table] == [
        (ds, "scored", n, "names-nationality v1") for ds, n in DAYS.items()
    ]
    # re-running a backfill replaces its days: tests/flows/test_operate.py


@pytest.fixture(scope="module", autouse=True)
def early_runs(stack) -> dict[str, str]:
    """Runs the tests below only wait for, created before the first test so that the worker runs them
    beside the others: one scheduled for a past date, one with a bad date (by the CLI)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Scheduled

    env, _, api = stack
    when = datetime.fromisoformat(f"{PAST_SCHEDULED[0]}T06:00:00").replace(tzinfo=UTC)
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("score-names/daily")
        past = client.create_flow_run_from_deployment(deployment.id, state=Scheduled(scheduled_time=when))
    return {"past": str(past.id), "bad_date": deployment_run(env, "score-names/daily", "ds=2026-13-01")}


def test_a_run_scheduled_for_a_past_date_scores_that_date(stack, early_runs):
    _, root, api = stack
    ds, rows = PAST_SCHEDULED
    finished = wait_for(api, early_runs["past"])
    assert finished.state.is_completed()
    assert finished.name == f"score-names-{ds}"
    assert partition_rows(root, ds) == rows
    today = datetime.now(UTC).date().isoformat()
    assert not (root / "predictions" / "names" / f"ds={today}").exists()


def test_trainings_share_one_queue_that_runs_one_at_a_time(stack):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _, _, api = stack
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        queue = client.read_work_queue_by_name("training", work_pool_name="e2e")
        trains = [client.read_deployment_by_name(f"train-{k}/weekly") for k in ("names", "reviews", "prices")]
        score = client.read_deployment_by_name("score-names/daily")
        prices = client.read_deployment_by_name("score-prices/daily")
    assert queue.concurrency_limit == 1
    assert {d.work_queue_name for d in trains} == {"training"}
    assert score.work_queue_name == "default"
    assert [s.schedule.cron for s in score.schedules] == ["0 6 * * *"]
    assert score.schedules[0].schedule.timezone == "UTC"
    assert (score.parameters["days_back"], prices.parameters["days_back"]) == (0, 1)


def logs_of(api: str, run_id: str, until: str, timeout: float = 60) -> list[str]:
    """The messages of a flow run's Prefect log (its tasks' and subflows' included), read from the API.

    A run's last lines reach the API shortly after its state is final (the log worker sends batches),
    so this polls until a message containing `until` is there."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.time() + timeout
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        while True:
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id]))
            )
            ids = [run_id, *(str(c.id) for c in children)]
            messages, offset = [], 0
            while True:  # page through: the API answers at most 200 rows a call
                page = client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200, offset=offset
                )
                messages += [log.message for log in page]
                offset += len(page)
                if len(page) < 200:
                    break
            if any(until in m for m in messages) or time.time() > deadline:
                return messages
            time.sleep(1)


def test_ingest_then_the_train_deployment_trains_on_new_features_and_logs_it(stack, tmp_path):
    import json

    from mlflow.tracking import MlflowClient

    env, root, api = stack
    latest = root / "features" / "names" / "LATEST"
    before = json.loads(latest.read_text())["version"]
    new = tmp_path / "more.csv"
    new.write_text(
        "surname,nationality\n" + "".join(f"Zq{i}ov,Russian\nZq{i}moto,Japanese\n" for i in range(8))
    )
    ingested = deployment_run(env, "ingest-names/manual", f"sources={json.dumps([str(new)])}")
    assert wait_for(api, ingested).state.is_completed()

    model = json.dumps({"hidden_size": 16, "embed_dim": 8})
    trained = deployment_run(env, "train-names/weekly", 'train={"epochs": 2}', f"model={model}")
    finished = wait_for(api, trained, timeout=300)
    assert finished.state.is_completed(), finished.state.message
    after = json.loads(latest.read_text())["version"]
    assert after != before
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name='names-nationality'")
    # the trained version (a TF-IDF reference it did not beat is registered after it, tagged model_role)
    own = [v for v in versions if v.tags.get("model_role") != "reference"]
    newest = max(own, key=lambda v: int(v.version))
    assert newest.tags["features_version"] == after

    messages = logs_of(api, trained, until=f"registered names-nationality v{newest.version};")
    assert any("building features first" in m for m in messages), messages
    assert any(m.startswith("epoch 1/2") for m in messages) and any(
        m.startswith("epoch 2/2") for m in messages
    )
    decision = [m for m in messages if m.startswith(f"registered names-nationality v{newest.version};")]
    assert decision and "champion" in decision[0], messages
    run = client.get_run(newest.run_id)
    assert run.info.run_name.startswith("names-") and after.rsplit("-", 1)[-1] in run.info.run_name
    inputs = {i.dataset.name: {t.key: t.value for t in i.tags} for i in run.inputs.dataset_inputs}
    assert sorted(t["mlflow.data.context"] for t in inputs.values()) == ["test", "training", "validation"]
    manifest = json.loads((root / "features" / "names" / after / "manifest.json").read_text())
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == {manifest["dataset_fingerprint"][:32]}
    assert all(t["features_version"] == after for t in inputs.values())


def test_a_deployment_run_with_a_bad_date_fails_with_one_clear_message(stack, early_runs):
    _, _, api = stack
    finished = wait_for(api, early_runs["bad_date"])
    assert finished.state.is_failed()
    assert "ds '2026-13-01' is not a date; expected YYYY-MM-DD" in finished.state.message
    assert "--ds" not in finished.state.message


@pytest.fixture(scope="module", autouse=True)
def scheduled_soon(stack):
    """A deployment scheduled to run 20 s from now (scoring the day before), made before the first test
    so that its run comes while the other tests run; the last test checks it."""
    from prefect import Flow
    from prefect.schedules import Interval
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _, root, api = stack
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    ds = (soon.date() - timedelta(days=1)).isoformat()  # days_back=1, as prices deploy: not today
    incoming = root / "incoming" / "names" / f"ds={ds}" / "part-0.parquet"
    if not incoming.exists():
        incoming.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame({"id": [str(i) for i in range(4)], "surname": NAMES[:4]}).write_parquet(incoming)
    with temporary_settings({PREFECT_API_URL: api}):
        flow = Flow.from_source(source=str(ROOT), entrypoint="flows/operate.py:score_names")
        deployment_id = flow.deploy(
            name="soon",
            work_pool_name="e2e",
            schedules=[Interval(timedelta(days=1), anchor_date=soon, timezone="UTC")],
            parameters={"kind": "names", "data_root": str(root), "days_back": 1},
            build=False,
            push=False,
            print_next_steps=False,
            ignore_warnings=True,
        )
    return deployment_id, soon, ds, pl.read_parquet(incoming).height


def test_the_servers_scheduler_creates_runs_that_the_worker_runs(stack, scheduled_soon):
    """No run is created by hand: the scheduler service turns a deployment's schedule into runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _, root, api = stack
    deployment_id, soon, ds, rows = scheduled_soon
    deadline, first = time.time() + 240, None
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        while time.time() < deadline and first is None:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            due = [r for r in runs if r.expected_start_time <= soon + timedelta(seconds=1)]
            first = due[0] if due and due[0].state.is_final() else None
            time.sleep(0.5)
        assert first is not None, f"no scheduled run finished; runs: {[(r.name, r.state) for r in runs]}"
        assert len(runs) >= 2  # the scheduler keeps future runs queued too
        client.delete_deployment(deployment_id)  # its future runs must not outlive the module
    assert first.auto_scheduled, "the run was not created by the scheduler service"
    assert first.state.is_completed(), first.state
    assert first.name == f"score-names-{ds}"
    assert partition_rows(root, ds) == rows


def test_a_fanned_out_backfill_runs_each_day_as_a_deployment_run(stack):
    """backfill fan_out=2: the days are runs of score-names/daily that any worker on the pool can take,
    at most 2 at a time; the backfill's table is the same as for days run in the backfill itself."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env, root, api = stack
    began = datetime.now(UTC)
    start, end = min(DAYS), max(DAYS)
    params = ["kind=names", f"start={start}", f"end={end}", "fan_out=2"]
    run_id = deployment_run(env, "backfill/scores", *params)
    assert wait_for(api, run_id).state.is_completed()
    assert {ds: partition_rows(root, ds) for ds in DAYS} == DAYS
    table = artifacts_of(api, run_id)["backfill-names"]
    assert [(r["ds"], r["status"], r["rows"]) for r in table] == [(ds, "scored", n) for ds, n in DAYS.items()]
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        daily = client.read_deployment_by_name("score-names/daily")
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=began)),
        )
    expected = [f"score-names-{ds}" for ds in DAYS]  # other tests' runs may start meanwhile
    days = sorted(r.name for r in runs if r.deployment_id == daily.id and r.name in expected)
    assert days == expected, days  # one deployment run per day


def test_a_worker_without_the_checkout_runs_deployments_that_pull_the_code(stack, tmp_path):
    """`deploy.py --code git`: every run clones this repository at HEAD, so a worker started in another
    folder, without the checkout on its PYTHONPATH, runs the deployments. Last in this file: it moves
    the deployments to its own pool."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    env, root, api = stack
    cmd = [sys.executable, "deployments/deploy.py", "--data-root", str(root), "--pool", "e2e-git"]
    cmd += ["--code", "git", "--git-url", str(ROOT), "--scheduler-timeout", "0"]
    deployed = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "deployed 16 deployments on work pool 'e2e-git'" in deployed.stdout
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("ingest-names/manual")
    clone = [step for step in deployment.pull_steps if "prefect.deployments.steps.git_clone" in step]
    assert clone and clone[0]["prefect.deployments.steps.git_clone"]["commit_sha"] == head

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    worker_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    worker = subprocess.Popen(
        [*PREFECT, "worker", "start", "--pool", "e2e-git", "--type", "process"],
        env=worker_env,
        cwd=elsewhere,
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        new = tmp_path / "git.csv"
        new.write_text("surname,nationality\nGitov,Russian\nGitmoto,Japanese\n")
        run_id = deployment_run(env, "ingest-names/manual", f"sources={json.dumps([str(new)])}")
        finished = wait_for(api, run_id)
        assert finished.state.is_completed(), (finished.state, (tmp_path / "worker.log").read_text()[-3000:])
        bronze = pl.read_parquet(root / "bronze" / "names")
        assert {"Gitov", "Gitmoto"} <= set(bronze["surname"].to_list())
    finally:
        stop(worker)
    assert not group_alive(worker.pid)
