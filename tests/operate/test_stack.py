"""`make stack` for real: SeaweedFS, a Prefect server and an MLflow server on PostgreSQL (databases of
their own, dropped at the end), checked through S3, HTTP and PostgreSQL; nothing left running."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deployments"))
import stack as stack_module  # noqa: E402  (deployments/ is scripts, not a package)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_base() -> int:
    """Four consecutive free ports, with their +10000 gRPC twins free too (SeaweedFS's rule)."""
    for _ in range(50):
        base = free_port() % 20000 + 20000
        ports = [p + off for p in range(base, base + 4) for off in (0, 10000)]
        try:
            socks = []
            for port in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no free port range for SeaweedFS")


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
