"""A throw-away S3 server: SeaweedFS's `weed mini` on free loopback ports, with a bucket and credentials,
stopped with everything it started. The tests (tests/operate) and bench/bench_storage.py run theirs with
`seaweed()`; `make stack` (deployments/stack.py) starts a long-lived one on fixed ports instead."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BUCKET, ACCESS, SECRET = "rnnflow", "rnnflow", "rnnflow-secret"
WEED = Path(sys.executable).parent / "weed"


class S3ServerError(RuntimeError):
    """`weed mini` could not be started (no free ports, exited, or not ready in time)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_base() -> int:
    """Four consecutive free ports, with their +10000 gRPC twins free too (SeaweedFS's rule)."""
    for _ in range(50):
        base = free_port() % 20000 + 20000
        ports = [p + off for p in range(base, base + 4) for off in (0, 10000)]
        socks = []
        try:
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
    raise S3ServerError("no free port range for SeaweedFS")


def aws_env(port: int) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": ACCESS,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@contextlib.contextmanager
def seaweed(folder: Path, timeout: float = 60) -> Iterator[dict[str, str]]:
    """Run `weed mini` with bucket `rnnflow`; yields the AWS_* settings of a client."""
    folder.mkdir(parents=True, exist_ok=True)
    identity = {"name": ACCESS, "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
    identity["credentials"] = [{"accessKey": ACCESS, "secretKey": SECRET}]
    (folder / "s3.json").write_text(json.dumps({"identities": [identity]}))
    (folder / "s3").mkdir(exist_ok=True)
    port, base = free_port(), free_base()
    cmd = [str(WEED), "mini", f"-dir={folder / 's3'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    cmd += [f"-s3.port={port}", f"-s3.config={folder / 's3.json'}", f"-bucket={BUCKET}"]
    cmd += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false"]
    cmd += [
        f"-{n}={base + i}" for i, n in enumerate(("master.port", "volume.port", "filer.port", "admin.port"))
    ]
    log = folder / "weed.log"
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    env = aws_env(port)
    try:
        wait_ready(env, proc, log, timeout)
        yield env
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def client(env: dict):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


def keys(env_or_client, prefix: str = "", bucket: str = BUCKET) -> list[str]:
    """Object keys under a prefix, listed through S3 (never the server's disk)."""
    s3 = client(env_or_client) if isinstance(env_or_client, dict) else env_or_client
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def wait_ready(env: dict, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    s3, deadline = client(env), time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise S3ServerError(f"weed mini exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            s3.head_bucket(Bucket=BUCKET)
            return
        except (BotoCoreError, ClientError):
            time.sleep(0.3)
    raise S3ServerError(f"weed mini not ready after {timeout}s:\n{log.read_text()[-2000:]}")
