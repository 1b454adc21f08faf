"""`make stack` for real: SeaweedFS, a Prefect server and an MLflow server on PostgreSQL (databases of
their own, dropped at the end), checked through S3, HTTP and PostgreSQL; nothing left running."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deployments"))
import stack as stack_module  # noqa: E402  (deployments/ is scripts, not a package)

from deployments import s3_server  # noqa: E402
from deployments.s3_server import free_base, free_port, keys  # noqa: E402


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    prefix = f"rnnflow_test_{uuid.uuid4().hex[:8]}"
    stack = stack_module.Stack(
        tmp_path_factory.mktemp("stack"),
        prefix=prefix,
        prefect_port=free_port(),
        mlflow_port=free_port(),
        s3_port=free_port(),
        weed_port_base=free_base(),
    )
    env = stack_module.up(stack)
    try:
        yield stack, env
    finally:
        stack_module.down(stack, drop=True)
        assert not any(stack_module.alive(pid) for pid in stack.pids.values()), "servers left running"
        assert databases(stack, prefix) == []


def databases(stack, prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(f"{stack.postgres}/postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))
        return sorted(r[0] for r in rows)


def test_the_stack_serves_prefect_and_mlflow_from_postgresql_with_artifacts_in_the_bucket(running, tmp_path):
    import boto3
    import mlflow
    import psycopg
    from mlflow.tracking import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    stack, env = running
    assert databases(stack, stack.prefix) == [stack.database("mlflow"), stack.database("prefect")]

    with (
        temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        assert client.api_healthcheck() is None  # None: healthy
        client.create_work_pool(WorkPoolCreate(name="stack-check", type="process"))
        assert [p.name for p in client.read_work_pools()] == ["stack-check"]
    with psycopg.connect(f"{stack.postgres}/{stack.database('prefect')}") as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"flow_run", "deployment", "work_pool"} <= tables  # Prefect's schema lives in PostgreSQL
    with psycopg.connect(f"{stack.postgres}/{stack.database('prefect')}") as conn:
        pools = [r[0] for r in conn.execute("SELECT name FROM work_pool")]
    assert "stack-check" in pools

    # A client with only MLFLOW_TRACKING_URI: no S3 settings, yet its artifact lands in the bucket.
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
    try:
        client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
        experiment = client.create_experiment("stack-check")
        run = client.create_run(experiment)
        (tmp_path / "note.txt").write_text("proxied")
        client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    finally:
        os.environ.update(saved)
        mlflow.set_tracking_uri(None)
    with psycopg.connect(f"{stack.postgres}/{stack.database('mlflow')}") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM experiments")}
    assert "stack-check" in names
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket).get("Contents", [])]
    assert any(k.endswith(f"{run.info.run_id}/artifacts/note.txt") for k in keys), keys


def test_wrong_s3_credentials_are_refused(running):
    import boto3
    from botocore.exceptions import ClientError

    stack, env = running
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
    )
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        s3.list_objects_v2(Bucket=stack.bucket)


def test_a_second_up_in_the_same_folder_is_refused_in_one_line(running):
    stack, _ = running
    with pytest.raises(SystemExit, match=r"stack\.json exists: a stack runs there"):
        stack_module.up(stack_module.Stack(stack.dir, prefix=stack.prefix))


# ---------------------------------------------------------------- the pipeline on the stack

PREFECT = [sys.executable, "-m", "prefect"]
DAYS = {"2026-11-01": 3, "2026-11-02": 4, "2026-11-03": 5}  # the backfill's days -> input rows
ONE_DAY = ("2026-11-05", 2)
NAMES = ["Ivanov", "Tanaka", "Kowalski", "Smith", "Yamamoto"]
LANGUAGES = ("Japanese", "Italian", "Chinese", "Greek")  # distinct, none a large majority


def names_csv() -> bytes:
    """Real surnames (the PyTorch tutorial's, four languages) as one CSV; where a clone has no
    ../shared/data beside it, the tests' generated surnames."""
    folder = ROOT.parent / "shared" / "data" / "names"
    if not folder.is_dir():
        from tests.conftest import make_surnames

        rows = make_surnames()
    else:
        rows = []
        for language in LANGUAGES:
            rows += [(n, language) for n in (folder / f"{language}.txt").read_text().split("\n") if n]
    return pl.DataFrame(rows, schema=["surname", "nationality"], orient="row").write_csv().encode()


def test_pull_the_code_deployments_run_the_pipeline_on_the_bucket(running, tmp_path):
    """Deployments pulled from git, a worker in another folder, the data root in the bucket: ingest a
    file from the bucket, train (features first), score a day and backfill three; everything is read
    back through S3 and MLflow's PostgreSQL store, and nothing lands on the local disk."""
    import json

    import psycopg
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.operate.test_server_e2e import deployment_run, group_alive, stop, wait_for

    stack, stack_env = running
    data_root = f"s3://{stack.bucket}/data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RNNFLOW_", "PYTHONPATH"))}
    env |= stack_env | {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "RNNFLOW_DATA_ROOT": data_root,
    }
    s3 = s3_server.client(stack_env)
    s3.put_object(Bucket=stack.bucket, Key="sources/names.csv", Body=names_csv())
    for ds, n in [*DAYS.items(), ONE_DAY]:
        frame = pl.DataFrame({"id": [str(i) for i in range(n)], "surname": NAMES[:n]})
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        s3.put_object(
            Bucket=stack.bucket, Key=f"data/incoming/names/ds={ds}/part-0.parquet", Body=buffer.getvalue()
        )

    cmd = [sys.executable, "deployments/deploy.py", "--data-root", data_root, "--pool", "stack"]
    cmd += ["--code", "git", "--git-url", str(ROOT), "--scheduler-timeout", "0"]
    deployed = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as c:
        deployment = c.read_deployment_by_name("train-names/weekly")
    assert any("prefect.deployments.steps.git_clone" in step for step in deployment.pull_steps)
    assert deployment.parameters["data_root"] == data_root

    elsewhere = tmp_path / "elsewhere"  # the worker's folder: no checkout, no data
    elsewhere.mkdir()
    worker = subprocess.Popen(
        [*PREFECT, "worker", "start", "--pool", "stack", "--type", "process", "--limit", "2"],
        env=env,
        cwd=elsewhere,
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = env["PREFECT_API_URL"]

    def run(name: str, *params: str, timeout: float = 300) -> str:
        run_id = deployment_run(env, name, *params)
        finished = wait_for(api, run_id, timeout=timeout)
        log = (tmp_path / "worker.log").read_text()[-3000:]
        assert finished.state.is_completed(), (name, finished.state, log)
        return run_id

    try:
        run("ingest-names/manual", f"sources={json.dumps([f's3://{stack.bucket}/sources/names.csv'])}")
        model = json.dumps({"hidden_size": 32, "embed_dim": 16})  # tiny; gated on the majority baseline
        train = json.dumps({"epochs": 2, "reference": False})
        run("train-names/weekly", f"train={train}", f"model={model}")
        run("score-names/daily", f"ds={ONE_DAY[0]}")
        run("backfill/scores", "kind=names", f"start={min(DAYS)}", f"end={max(DAYS)}")
    finally:
        stop(worker)
    assert not group_alive(worker.pid), "the worker left processes behind"

    bronze = keys(s3, "data/bronze/names/")
    assert len(bronze) == 1 and bronze[0].endswith(".parquet"), bronze
    assert keys(s3, "data/features/names/LATEST") == ["data/features/names/LATEST"]
    for ds, n in [*DAYS.items(), ONE_DAY]:
        key = f"data/predictions/names/ds={ds}/part-0.parquet"
        assert keys(s3, f"data/predictions/names/ds={ds}/") == [key]
        scored = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()))
        assert scored.height == n and scored["model_version"].to_list() == [1] * n

    with psycopg.connect(f"{stack.postgres}/{stack.database('mlflow')}") as conn:
        versions = conn.execute("SELECT name, version, run_id FROM model_versions").fetchall()
        aliases = conn.execute("SELECT name, alias, version FROM registered_model_aliases").fetchall()
    assert [(n, v) for n, v, _ in versions] == [("names-nationality", 1)]
    assert aliases == [("names-nationality", "champion", 1)]
    artifacts = keys(s3, "mlartifacts/")
    assert any(k.endswith("weights.pt") for k in artifacts), artifacts
    assert any(versions[0][2] in k for k in artifacts), "the training run's own artifacts are in the bucket"

    local = [p for p in elsewhere.rglob("*") if p.suffix in (".parquet", ".db", ".pt") or p.name == "LATEST"]
    assert local == [], "the runs wrote data to the local disk"
    assert not (elsewhere / "data").exists()
