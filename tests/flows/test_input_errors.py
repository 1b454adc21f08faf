"""Deterministic input errors fail at once: one stderr line from the CLI (no retry, no traceback, no
Prefect start-up), one clear state message from a flow, and retries kept for transient failures only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.states import Failed

from flows.retry import transient_only
from pipeline.sources import SourceError
from tests.conftest import train_tiny_names

ROOT = Path(__file__).resolve().parents[2]
# Each bad `rnnflow score` request, in one fresh process (cases in order), recording for each its exit
# code, stdout, stderr and which heavy libraries the process had loaded by the time it answered.
CLI = """
import contextlib, io, json, os, sys
from flows.cli import main
answers = {}
for case, args in json.loads(os.environ["CASES"]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    heavy = [m for m in ("prefect", "torch") if m in sys.modules]
    answers[case] = {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue(), "loaded": heavy}
open(os.environ["ANSWERS"], "w").write(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A data root with names-nationality v1 as champion, and score inputs: good, wrong column."""
    base = tmp_path_factory.mktemp("errors")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        train_tiny_names(base / "data")
    (base / "ok.csv").write_text("Name\nIvanov\n")  # ingest's alias `name`, in any case, is accepted too
    (base / "wrong.csv").write_text("family_name\nIvanov\n")
    return base


CASES = {
    "missing file": (["--input", "nope.csv", "--ds", "2026-11-30"], "nope.csv: no such file"),
    "missing column": (["--input", "wrong.csv", "--ds", "2026-11-30"], "missing column 'surname'"),
    "bad date": (["--input", "ok.csv", "--ds", "2026-13-01"], "ds '2026-13-01' is not a date"),
    "unknown version": (
        ["--input", "ok.csv", "--ds", "2026-11-30", "--model", "models:/names-nationality/9"],
        "model 'models:/names-nationality/9' not found",
    ),
    "unknown model": (
        ["--input", "ok.csv", "--ds", "2026-11-30", "--model", "models:/nope@champion"],
        "model 'models:/nope@champion' not found",
    ),
}


@pytest.fixture(scope="module")
def answers(trained) -> dict:
    """CASES answered by one CLI process that starts without MLflow or Prefect settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API"))}
    env["PYTHONPATH"] = str(ROOT)
    env["ANSWERS"] = str(trained / "answers.json")
    root = str(trained / "data")
    env["CASES"] = json.dumps({c: ["score", "names", *a, "--data-root", root] for c, (a, _) in CASES.items()})
    done = subprocess.run(
        [sys.executable, "-c", CLI], cwd=trained, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((trained / "answers.json").read_text())


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_score_request_is_one_stderr_line_at_once(answers, case):
    answer, message = answers[case], CASES[case][1]
    assert answer["rc"] == 2
    lines = answer["stderr"].splitlines()
    assert len(lines) == 1, answer["stderr"]
    assert lines[0].startswith("rnnflow score: error: ") and message in lines[0]
    assert answer["stdout"] == ""
    assert answer["loaded"] == [], f"answered only after loading {answer['loaded']}"  # no Prefect, no torch


def test_a_good_request_with_the_alias_column_scores(trained, prefect_api):
    from flows.kind_flows import score_flow

    report = score_flow("names", str(trained / "ok.csv"), "2026-11-30", data_root=str(trained / "data"))
    assert report["rows"] == 1 and report["rows_unscored"] == 0


def test_a_flow_fails_on_a_missing_file_without_retrying(trained, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.kind_flows import score_flow

    state = score_flow(
        "names", str(trained / "nope.csv"), "2026-11-30", data_root=str(trained / "data"), return_state=True
    )
    assert state.is_failed()
    assert "nope.csv: no such file or directory" in state.message
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
    assert [(t.name.split("-")[0], t.run_count) for t in tasks] == [("check_request", 1)]


def test_only_transient_errors_are_retried():
    def failed(exc: BaseException):
        return Failed(data=exc)

    assert not transient_only(None, None, failed(SourceError("x.csv: missing column")))
    assert not transient_only(None, None, failed(FileNotFoundError("x.csv")))
    assert not transient_only(None, None, failed(LookupError("no such model")))
    assert transient_only(None, None, failed(ConnectionError("server went away")))
    assert transient_only(None, None, failed(TimeoutError("slow disk")))


@pytest.mark.parametrize(
    ("variable", "value", "argv", "named"),
    [
        ("PREFECT_API_URL", "http://127.0.0.1:{port}/api", ["features", "names"], "the Prefect server"),
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:{port}", ["train", "names"], "the MLflow server"),
    ],
)
def test_an_unreachable_server_is_one_line_naming_the_variable(
    tmp_path, monkeypatch, capsys, variable, value, argv, named
):
    from flows.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = value.format(port=port)
    monkeypatch.setenv(variable, url)
    assert main([*argv, "--data-root", str(tmp_path / "data")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"rnnflow {argv[0]}: error: {named} at ${variable}={url} does not answer")
    assert f"or unset {variable}" in lines[0]
    assert not (tmp_path / "data").exists()  # nothing started
