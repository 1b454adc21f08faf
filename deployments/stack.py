"""`make stack`: the several-machine setup rehearsed on 127.0.0.1 with existing engines: SeaweedFS (S3),
a Prefect server on PostgreSQL, an MLflow server on PostgreSQL with its artifacts proxied to the bucket.

`up` starts them in the background and writes their pids and the clients' settings to <dir>/stack.json
(and stack.env, to `source`); `down` stops them, and with --drop drops their databases."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ADMIN_DB = "postgres"


@dataclass
class Stack:
    dir: Path
    postgres: str = "postgresql://postgres@127.0.0.1:5432"  # a server this user may create databases on
    prefix: str = "rnnflow"  # databases <prefix>_prefect and <prefix>_mlflow
    bucket: str = "rnnflow"
    access_key: str = "rnnflow"
    secret_key: str = "rnnflow-secret"
    prefect_port: int = 4200
    mlflow_port: int = 5000
    s3_port: int = 8333
    weed_port_base: int | None = None  # None: SeaweedFS's own ports (9333, 9340, 8888, 23646)
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def database(self, service: str) -> str:
        return f"{self.prefix}_{service}"

    def client_env(self) -> dict[str, str]:
        """What a client process needs: the two servers' URLs (MLflow proxies artifacts), and the S3
        settings, the way AWS tools read them, for what reads or writes the bucket itself."""
        return {
            "PREFECT_API_URL": f"http://127.0.0.1:{self.prefect_port}/api",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{self.mlflow_port}",
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "RNNFLOW_DATA_ROOT": f"s3://{self.bucket}/data",
        }


def start(stack: Stack, name: str, cmd: list[str], env: dict[str, str]) -> None:
    log = (stack.dir / f"{name}.log").open("w")
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.pids[name] = proc.pid


def weed_ports(base: int | None) -> list[str]:
    if base is None:
        return []
    names = ("master.port", "volume.port", "filer.port", "admin.port")
    return [f"-{n}={base + i}" for i, n in enumerate(names)]


def create_databases(stack: Stack) -> None:
    import psycopg

    with psycopg.connect(f"{stack.postgres}/{ADMIN_DB}", autocommit=True, connect_timeout=5) as conn:
        for service in ("prefect", "mlflow"):
            name = stack.database(service)
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not found:
                conn.execute(f'CREATE DATABASE "{name}"')


def drop_databases(stack: Stack) -> None:
    import psycopg

    with psycopg.connect(f"{stack.postgres}/{ADMIN_DB}", autocommit=True, connect_timeout=5) as conn:
        for service in ("prefect", "mlflow"):
            conn.execute(f'DROP DATABASE IF EXISTS "{stack.database(service)}" WITH (FORCE)')


def up(stack: Stack, timeout: float = 180) -> dict[str, str]:
    stack.dir.mkdir(parents=True, exist_ok=True)
    if (stack.dir / "stack.json").exists():
        raise SystemExit(f"stack: {stack.dir}/stack.json exists: a stack runs there; `make stack-down` first")
    try:
        create_databases(stack)
    except Exception as err:  # psycopg's errors name the host and the cause
        raise SystemExit(f"stack: PostgreSQL at {stack.postgres} refused: {err}".splitlines()[0]) from None
    s3_config = stack.dir / "s3.json"
    identity = {"name": "rnnflow", "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
    identity["credentials"] = [{"accessKey": stack.access_key, "secretKey": stack.secret_key}]
    s3_config.write_text(json.dumps({"identities": [identity]}))
    (stack.dir / "s3").mkdir(exist_ok=True)
    weed = [str(BIN / "weed"), "mini", f"-dir={stack.dir / 's3'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    weed += [f"-s3.port={stack.s3_port}", f"-s3.config={s3_config}", f"-bucket={stack.bucket}"]
    weed += ["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false"]
    start(stack, "s3", weed + weed_ports(stack.weed_port_base), {})
    pg = stack.postgres.split("://", 1)[1]
    prefect_env = {
        "PREFECT_HOME": str(stack.dir / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{pg}/{stack.database('prefect')}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    prefect = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1"]
    start(stack, "prefect", [*prefect, "--port", str(stack.prefect_port)], prefect_env)
    s3_env = {k: v for k, v in stack.client_env().items() if k.startswith("AWS_")}
    s3_env["MLFLOW_S3_ENDPOINT_URL"] = stack.s3_endpoint
    mlflow = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(stack.mlflow_port)]
    mlflow += ["--backend-store-uri", f"postgresql+psycopg://{pg}/{stack.database('mlflow')}"]
    mlflow += ["--artifacts-destination", f"s3://{stack.bucket}/mlartifacts"]
    start(stack, "mlflow", mlflow, s3_env | {"MLFLOW_DISABLE_TELEMETRY": "true"})
    save(stack)
    try:
        wait_ready(stack, timeout)
    except BaseException:
        down(stack)
        raise
    env = stack.client_env()
    (stack.dir / "stack.env").write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    return env


def wait_ready(stack: Stack, timeout: float) -> None:
    checks = {
        "s3": lambda: bucket_ready(stack),
        "prefect": lambda: http_ok(f"http://127.0.0.1:{stack.prefect_port}/api/health"),
        "mlflow": lambda: http_ok(f"http://127.0.0.1:{stack.mlflow_port}/health"),
    }
    deadline = time.time() + timeout
    for name, ready in checks.items():
        while not ready():
            if not alive(stack.pids[name]):
                tail = (stack.dir / f"{name}.log").read_text()[-2000:]
                raise SystemExit(f"stack: the {name} server exited; its log ends:\n{tail}")
            if time.time() > deadline:
                raise SystemExit(f"stack: the {name} server was not ready after {timeout:g}s; see {name}.log")
            time.sleep(0.5)
        print(f"stack: {name} ready", flush=True)


def bucket_ready(stack: Stack) -> bool:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.access_key,
        aws_secret_access_key=stack.secret_key,
        region_name="us-east-1",
    )
    try:
        client.head_bucket(Bucket=stack.bucket)
        return True
    except (BotoCoreError, ClientError):
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def save(stack: Stack) -> None:
    data = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(stack).items()}
    (stack.dir / "stack.json").write_text(json.dumps(data, indent=2))


def load(folder: Path) -> Stack:
    path = folder / "stack.json"
    if not path.exists():
        raise SystemExit(f"stack: no {path}: nothing runs there")
    data = json.loads(path.read_text())
    return Stack(**{**data, "dir": Path(data["dir"])})


def down(stack: Stack, drop: bool = False, grace: float = 15) -> None:
    """Every server with all it started: SIGINT, then SIGTERM, then SIGKILL to the process group."""
    for name in ("mlflow", "prefect", "s3"):
        pid = stack.pids.get(name)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if pid is None or not alive(pid):
                break
            os.killpg(pid, sig)
            deadline = time.time() + grace
            while time.time() < deadline and alive(pid):
                time.sleep(0.2)
                with_reaped(pid)
    if drop:
        drop_databases(stack)
    (stack.dir / "stack.json").unlink(missing_ok=True)


def with_reaped(pid: int) -> None:
    """Reap the leader if it is our child (it is when `up` and `down` run in one process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", default=".stack", help="state, logs and S3 data (default .stack)")
    parser.add_argument("--drop", action="store_true", help="down: also drop the stack's databases")
    parser.add_argument("--postgres", default=Stack.postgres, help="PostgreSQL server URL (no database)")
    parser.add_argument("--prefix", default=Stack.prefix, help="database name prefix (rnnflow)")
    args = parser.parse_args(argv)
    folder = Path(args.dir).resolve()
    if args.action == "down":
        down(load(folder), drop=args.drop)
        print(f"stack: stopped{' and dropped its databases' if args.drop else ''}")
        return 0
    env = up(Stack(folder, postgres=args.postgres, prefix=args.prefix))
    print(f"stack: up; for clients: source {folder / 'stack.env'}")
    for key, value in env.items():
        print(f"  {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
