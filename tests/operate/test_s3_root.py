"""The data root on a real S3 server (SeaweedFS): feature versions switch only when whole, bad S3
settings are one line each, and two training nodes share features and checkpoints through the bucket."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from deployments import s3_server
from pipeline import storage
from pipeline.ingest import ingest
from pipeline.kinds import NAMES
from pipeline.layout import Layout
from pipeline.text.features import FeatureConfig, build_features
from tests.conftest import make_surnames, processes_tagged

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "flows.cli"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server.seaweed(tmp_path_factory.mktemp("seaweed")) as env:
        yield env


@pytest.fixture
def bucket_root(s3, monkeypatch, tmp_path) -> str:
    """A fresh prefix of the bucket as this test's data root, with the AWS settings in the environment."""
    for name, value in s3.items():
        monkeypatch.setenv(name, value)
    root = f"s3://{s3_server.BUCKET}/{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("RNNFLOW_DATA_ROOT", root)
    csv = tmp_path / "surnames.csv"
    csv.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in make_surnames()))
    ingest([str(csv)], NAMES, Layout.of("names", root))
    return root


def test_a_feature_version_is_switched_to_only_when_whole(bucket_root, s3, monkeypatch):
    """A build that fails mid-way leaves LATEST on the previous version, every file of which exists;
    the failed version's objects are never named by LATEST."""
    layout = Layout.of("names", bucket_root)
    assert layout.remote
    first = build_features(NAMES, layout, FeatureConfig(max_buckets=4))
    written = []
    real = storage.write_shard

    def fail_on_the_third(frame, path):
        written.append(path)
        if len(written) == 3:
            raise OSError("connection reset (simulated)")
        return real(frame, path)

    monkeypatch.setattr(storage, "write_shard", fail_on_the_third)
    with pytest.raises(OSError, match="simulated"):
        build_features(NAMES, layout, FeatureConfig(max_buckets=6))
    folder, manifest = storage.latest_features(layout)
    assert manifest["version"] == first["version"]
    prefix = str(folder).removeprefix(f"s3://{s3_server.BUCKET}/")
    objects = set(s3_server.keys(s3, prefix + "/"))
    assert {f"{prefix}/{name}" for name in manifest["files"]} <= objects


def test_bad_s3_settings_are_one_line_each(s3, tmp_path):
    """Wrong credentials, a missing bucket, an unreachable endpoint, another scheme, and a bucket data
    root with nowhere for MLflow: one `error:` line naming the fix, before any flow starts."""
    good = {**os.environ, **s3, "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # no flow may start
    good.pop("MLFLOW_TRACKING_URI", None)
    root = f"s3://{s3_server.BUCKET}/bad"
    cases = [
        ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, root, "refused the credentials for bucket 'rnnflow'"),
        ({}, "s3://no-such-bucket/data", "S3 bucket 'no-such-bucket' does not exist"),
        ({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_server.free_port()}"}, root, "is unreachable"),
        ({}, "gs://bucket/data", "scheme 'gs' is not supported; use a local path or s3://bucket/prefix"),
    ]
    for change, data_root, expected in cases:
        out = subprocess.run(
            [*CLI, "features", "names", "--data-root", data_root],
            env={**good, **change, "PREFECT_API_URL": ""},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and expected in lines[0], (change, out.stderr)
        assert lines[0].startswith("rnnflow features: error: ")
    out = subprocess.run(
        [*CLI, "train", "names", "--data-root", root],
        env={**good, "PREFECT_API_URL": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "set MLFLOW_TRACKING_URI to an MLflow server" in out.stderr, out.stderr
    assert not list(tmp_path.rglob("*.db")) and not (tmp_path / "data").exists()


def nodes(args: list[str], env: dict, folders: list[Path]) -> list[subprocess.CompletedProcess]:
    """`rnnflow train --nnodes 2` twice at once (node ranks 0 and 1), each from its own folder."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = [*CLI, "train", "names", *args, "--nproc", "1", "--nnodes", "2"]
    base += ["--rdzv-endpoint", f"127.0.0.1:{port}"]
    procs = [
        subprocess.Popen(
            [*base, "--node-rank", str(rank)],
            env=env,
            cwd=folders[rank],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), p.communicate()[0], "") for p in procs]


def test_two_nodes_train_from_the_bucket_and_resume_from_its_checkpoint(
    bucket_root, s3, tmp_path, prefect_api
):
    """Both nodes read the bucket's features; rank 0 writes checkpoints to the bucket. Node 1's rank is
    killed after epoch 1: both nodes fail, epoch-0001.pt is in the bucket. Resumed from two other
    folders, the training finishes in the same MLflow run; no node wrote data to its local disk."""
    build_features(NAMES, Layout.of("names", bucket_root), FeatureConfig(max_buckets=8))
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"  # rank 0's MLflow store (a server in production)
    tag = uuid.uuid4().hex
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "MLFLOW_TRACKING_URI": tracking}
    env |= {"RNNFLOW_TEST_TAG": tag, "PYTHONPATH": str(ROOT), "RNNFLOW_FAULT": "1:1"}
    args = ["--epochs", "3", "--batch-size", "16", "--hidden-size", "16", "--embed-dim", "8"]
    args += ["--no-reference", "--seed", "7"]
    first = [tmp_path / "node0", tmp_path / "node1"]
    for folder in first:
        folder.mkdir()
    failed = nodes(args, env, first)
    assert [p.returncode for p in failed] == [2, 2], "\n\n".join(p.stdout[-3000:] for p in failed)
    assert processes_tagged(tag) == [], "rank processes outlived the failed training"
    prefix = bucket_root.removeprefix(f"s3://{s3_server.BUCKET}/") + "/checkpoints/names/"
    assert s3_server.keys(s3, prefix) == [prefix + "epoch-0001.pt"]
    body = s3_server.client(s3).get_object(Bucket=s3_server.BUCKET, Key=prefix + "epoch-0001.pt")["Body"]
    saved = torch.load(io.BytesIO(body.read()), map_location="cpu", weights_only=True)
    assert saved["extra"]["mlflow_run_id"]

    env.pop("RNNFLOW_FAULT")
    again = [tmp_path / "other0", tmp_path / "other1"]
    for folder in again:
        folder.mkdir()
    resumed = nodes([*args, "--resume"], env, again)
    assert [p.returncode for p in resumed] == [0, 0], "\n\n".join(p.stdout[-3000:] for p in resumed)
    assert '"epochs_run": 3' in resumed[0].stdout
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    runs = client.search_runs([client.get_experiment_by_name("rnnflow-names").experiment_id])
    assert [r.info.run_id for r in runs] == [saved["extra"]["mlflow_run_id"]]
    assert runs[0].data.tags["resumed"] == "true" and runs[0].data.params["world_size"] == "2"
    assert s3_server.keys(s3, prefix) == []  # registered: nothing left to resume
    artifacts = bucket_root.removeprefix(f"s3://{s3_server.BUCKET}/") + "/mlartifacts/rnnflow-names/"
    assert any(k.endswith("weights.pt") for k in s3_server.keys(s3, artifacts))
    local = [p for f in first + again for p in f.rglob("*") if p.suffix in (".pt", ".parquet")]
    assert local == []


def ingest_at_once(root: str, sources: list[Path], env: dict, tmp_path: Path) -> None:
    """Two processes ingest into the bucket root at the same moment."""
    go = tmp_path / f"go-{uuid.uuid4().hex[:6]}"
    code = (
        "import pathlib, sys, time\nfrom pipeline.ingest import ingest\nfrom pipeline.kinds import NAMES\n"
        f"from pipeline.layout import Layout\ngo = pathlib.Path({str(go)!r})\n"
        f"layout = Layout.of('names', {root!r})\n"
        "while not go.exists():\n    time.sleep(0.005)\ningest([sys.argv[1]], NAMES, layout)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(s)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
        )
        for s in sources
    ]
    time.sleep(2)
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()


def test_two_ingests_at_once_on_the_bucket_keep_every_key_once(s3, tmp_path):
    """The ingest lock on S3 (a conditional PUT): rows shared by two concurrent ingests are in bronze
    once and quarantined once as duplicates, and nothing is left in the bucket's .staging/."""
    import polars as pl

    env = {**os.environ, **s3}
    files = []
    for name, first, last in (("a", 0, 20_000), ("b", 15_000, 35_000)):  # 5,000 rows in common
        path = tmp_path / f"{name}.csv"
        path.write_text("surname,nationality\n" + "".join(f"N{i:06d}x,Irish\n" for i in range(first, last)))
        files.append(path)
    for trial in range(2):
        prefix = f"lock{trial}-{uuid.uuid4().hex[:6]}"
        ingest_at_once(f"s3://{s3_server.BUCKET}/{prefix}", files, env, tmp_path)
        storage_options = {
            "aws_endpoint_url": s3["AWS_ENDPOINT_URL"],
            "aws_access_key_id": s3["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": s3["AWS_SECRET_ACCESS_KEY"],
            "aws_region": "us-east-1",
        }
        base = f"s3://{s3_server.BUCKET}/{prefix}"
        bronze = pl.read_parquet(f"{base}/bronze/names/*.parquet", storage_options=storage_options)
        bad = pl.read_parquet(f"{base}/quarantine/names/*.parquet", storage_options=storage_options)
        assert bronze.height == bronze["surname"].n_unique() == 35_000
        assert bad.filter(pl.col("reason") == "duplicate").height == 5_000
        assert not s3_server.keys(s3, f"{prefix}/.staging/")
        assert not s3_server.keys(s3, f"{prefix}/.locks/")  # released


def test_a_bucket_lock_whose_holder_is_killed_is_taken_over(s3, tmp_path):
    from pipeline import locks, objectstore

    env = {**os.environ, **s3}
    root = f"s3://{s3_server.BUCKET}/held-{uuid.uuid4().hex[:6]}"
    ready = tmp_path / "ready"
    code = (
        "import pathlib, time\nfrom pipeline import locks, objectstore\n"
        f"with locks.hold(objectstore.open_path({root!r}), 'ingest-names'):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env)
    while not ready.exists():
        assert holder.poll() is None
        time.sleep(0.1)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in s3.items():
            mp.setenv(name, value)
        path = objectstore.open_path(root)
        with pytest.raises(locks.LockTimeout, match=f"-{holder.pid}-"), locks.hold(path, "ingest-names", 1):
            pass
        holder.kill()
        holder.wait()
        with locks.hold(path, "ingest-names", timeout=30):  # its process is gone: taken over at once
            pass
