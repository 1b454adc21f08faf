"""Launch a DDP training with torchrun (`torch.distributed.run`) as a child process: stream every rank's
output, and on failure raise an error naming the rank, its exit code and its last lines.

The child runs in its own process group, which is killed on any exit, so no rank outlives the launcher.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

RANK_LINE = re.compile(r"^\[rank(\d+)\]")
LAST_LINES = 15


class RankFailed(RuntimeError):
    def __init__(
        self, rank: int | None, exitcode: int | None, last_lines: list[str], returncode: int
    ) -> None:
        self.rank, self.exitcode, self.last_lines = rank, exitcode, last_lines
        who = f"rank {rank}" if rank is not None else "a rank"
        code = f"exit code {exitcode}" if exitcode is not None else f"torchrun exit code {returncode}"
        if exitcode is not None and exitcode < 0:
            code += f" (killed by {signal.Signals(-exitcode).name})"
        tail = "\n".join(f"    {line}" for line in last_lines) or "    (no output)"
        super().__init__(f"DDP training failed: {who} ended with {code}; its last lines:\n{tail}")


def check_gpus(device: str, nproc: int) -> None:
    """On CUDA each local rank takes one GPU: refuse more processes than GPUs before starting any."""
    import torch

    if device != "cpu" and torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise ValueError(
            f"--nproc {nproc} on CUDA needs {nproc} GPUs, this node has {torch.cuda.device_count()}; "
            "lower --nproc or train on CPU with --device cpu"
        )


def command(spec_path: Path, nproc: int, nnodes: int, node_rank: int, rdzv_endpoint: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}"]
    if nnodes == 1 and rdzv_endpoint is None:
        cmd.append("--standalone")  # a local rendezvous on a free port
    else:
        if not rdzv_endpoint or ":" not in rdzv_endpoint:
            raise ValueError(
                f"--rdzv-endpoint {rdzv_endpoint!r}: multi-node training needs HOST:PORT of node 0"
            )
        host, port = rdzv_endpoint.rsplit(":", 1)
        cmd += [
            "--rdzv-backend=static",
            f"--node-rank={node_rank}",
            f"--master-addr={host}",
            f"--master-port={port}",
        ]
    # $RNNFLOW_DDP_WORKER: another entry module wrapping models.ddp_worker (the tests' installs hooks)
    worker = os.environ.get("RNNFLOW_DDP_WORKER", "models.ddp_worker")
    return [*cmd, "-m", worker, "--spec", str(spec_path)]


def torchrun(
    spec: dict,
    nproc: int,
    nnodes: int = 1,
    node_rank: int = 0,
    rdzv_endpoint: str | None = None,
    log: Callable[[str], None] = print,
) -> dict | None:
    """Run the training described by `spec` (kind, data_root, train, model_options, resume) under DDP.

    -> rank 0's report (None on a node that does not hold rank 0)."""
    if nproc < 1 or nnodes < 1 or not 0 <= node_rank < nnodes:
        raise ValueError(
            f"--nproc {nproc}, --nnodes {nnodes}, --node-rank {node_rank}: need N >= 1, 0 <= R < M"
        )
    check_gpus(spec.get("train", {}).get("device", "auto"), nproc)  # before any process starts
    with tempfile.TemporaryDirectory(prefix="rnnflow-ddp-") as tmp:
        report_path = Path(tmp) / "report.json"
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps({**spec, "report": str(report_path)}))
        returncode, tails, tail = _run(command(spec_path, nproc, nnodes, node_rank, rdzv_endpoint), log)
        if returncode != 0:
            rank, exitcode = root_cause(list(tail))
            raise RankFailed(rank, exitcode, list(tails.get(rank, tail))[-LAST_LINES:], returncode)
        return json.loads(report_path.read_text()) if report_path.exists() else None


def _run(cmd: list[str], log: Callable[[str], None]):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ours_not_the_users(env):  # each rank picks the data root's own store again
        env.pop(name)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")])
    )
    tails: dict[int, deque[str]] = {}
    tail: deque[str] = deque(maxlen=200)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            log(line)
            tail.append(line)
            match = RANK_LINE.match(line)
            if match:
                tails.setdefault(int(match.group(1)), deque(maxlen=LAST_LINES)).append(line)
        return proc.wait(), tails, tail
    finally:
        _kill_group(proc)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the launcher dies, even by SIGKILL (torchrun then stops its ranks)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def root_cause(lines: list[str]) -> tuple[int | None, int | None]:
    """(rank, exit code) from torchrun's ChildFailedError summary, its 'Root Cause' part first."""
    text = "\n".join(lines)
    part = text[text.rfind("Root Cause") :] if "Root Cause" in text else text
    rank = re.search(r"rank\s*:\s*(\d+)", part)
    code = re.search(r"exitcode\s*:\s*(-?\d+)", part)
    return (int(rank.group(1)) if rank else None, int(code.group(1)) if code else None)


def ours_not_the_users(env: dict) -> list[str]:
    """MLflow variables that hold a default this process installed (mlflow.set_tracking_uri copies it
    into os.environ) rather than a user's setting: a child must not take them for a user's choice,
    or a training of another data root would log into this one's store."""
    tracking = sys.modules.get("models.tracking")  # not imported: nothing of ours can be there
    if tracking is None:
        return []
    ours = {
        "MLFLOW_TRACKING_URI": tracking.default_tracking_uri(),
        "MLFLOW_REGISTRY_URI": tracking.default_registry_uri(),
    }
    return [name for name, value in ours.items() if value and env.get(name) == value]
