"""Deterministic input errors fail at once: one stderr line from the CLI (no retry, no traceback, no
Prefect start-up, for every command), one clear state message from a flow, and retries kept for
transient failures only."""

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
        try:
            rc = main(args)
        except SystemExit as exit:  # argparse's usage errors
            rc = exit.code
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


# Every command's bad inputs: (argv without --data-root, which root, what the one line must say).
COMMAND_CASES = {
    "ingest: a missing file": (["ingest", "names", "missing.csv"], "empty", "missing.csv: no such file"),
    "ingest: an empty file": (["ingest", "names", "empty.csv"], "empty", "empty.csv: file is empty"),
    "ingest: a missing column": (["ingest", "names", "wrong.csv"], "empty", "missing column(s) ['surname'"),
    "ingest: an empty folder": (["ingest", "names", "nothing"], "empty", "holds no <label>.txt files"),
    "ingest: an unknown format": (["ingest", "names", "notes.xyz"], "empty", "unsupported source format"),
    "ingest: --text-col not in the file": (
        ["ingest", "names", "wrong.csv", "--text-col", "nope"],
        "empty",
        "column 'nope' given as text_col (--text-col) is not in the file",
    ),
    "ingest: a bad source option": (
        ["ingest", "names", "names-dataset?foo=1"],
        "empty",
        "unknown option(s) ['foo']",
    ),
    "ingest: prices without their columns": (["ingest", "prices", "wrong.csv"], "empty", "missing column(s)"),
    "ingest: an unknown packaged ticker": (
        ["ingest", "prices", "bokeh-stocks?tickers=ZZZ"],
        "empty",
        "unknown ticker(s) ['ZZZ']",
    ),
    "features before any ingest": (["features", "names"], "empty", "no bronze data for kind 'names'"),
    "features: --min-freq 0": (
        ["features", "names", "--min-freq", "0"],
        "bronze",
        "--min-freq) must be >= 1",
    ),
    "features: --max-buckets 0": (["features", "names", "--max-buckets", "0"], "bronze", "--max-buckets)"),
    "features: ratios not summing to 1": (
        ["features", "names", "--split-ratios", "0.5,0.5,0.5"],
        "bronze",
        "split_ratios (--split-ratios) must be three non-negative shares summing to 1",
    ),
    "features: ratios that are no numbers": (
        ["features", "names", "--split-ratios", "abc"],
        "bronze",
        "argument --split-ratios: 'abc': give three shares summing to 1",
    ),
    "features: --lookback 1": (
        ["features", "prices", "--lookback", "1"],
        "bronze",
        "--lookback) must be >= 2",
    ),
    "train before any features": (["train", "names"], "bronze", "no features for kind 'names'"),
    "train: --epochs 0": (["train", "names", "--epochs", "0"], "trained", "epochs (--epochs) must be >= 1"),
    "train: --epochs x": (["train", "names", "--epochs", "x"], "trained", "argument --epochs: invalid int"),
    "train: --lr 0": (["train", "names", "--lr", "0"], "trained", "lr (--lr) must be > 0"),
    "train: --hidden-size 0": (
        ["train", "names", "--hidden-size", "0"],
        "trained",
        "--hidden-size 0: give 1",
    ),
    "train: a text flag for prices": (
        ["train", "prices", "--embed-dim", "8"],
        "trained",
        "--embed-dim do(es) not apply to the prices model",
    ),
    "train: two nodes, no endpoint": (["train", "names", "--nnodes", "2"], "trained", "--rdzv-endpoint None"),
    "train: --resume with no checkpoint": (
        ["train", "names", "--resume"],
        "trained",
        "--resume: no checkpoint",
    ),
    "evaluate: a missing file": (
        ["evaluate", "names", "--input", "missing.csv"],
        "trained",
        "missing.csv: no such file",
    ),
    "repackage: an unknown version": (
        ["repackage", "names", "--model", "models:/names-nationality/9"],
        "trained",
        "model 'models:/names-nationality/9' not found",
    ),
    "demo: an unknown kind": (["demo", "--kinds", "names,nope"], "empty", "unknown kind(s) ['nope']"),
    "--threads 0": (["features", "names", "--threads", "0"], "bronze", "--threads 0: give 1 or more"),
}


@pytest.fixture(scope="module")
def command_answers(trained) -> dict:
    """COMMAND_CASES answered by one CLI process, from a folder holding the files they name."""
    from pipeline.ingest import ingest
    from pipeline.kinds import NAMES
    from pipeline.layout import Layout

    (trained / "empty.csv").write_text("")
    (trained / "nothing").mkdir(exist_ok=True)
    (trained / "notes.xyz").write_text("surname,nationality\n")
    (trained / "names.csv").write_text("surname,nationality\nIvanov,Russian\n")
    ingest([str(trained / "names.csv")], NAMES, Layout.of("names", trained / "bronze"))
    roots = {"empty": trained / "none", "bronze": trained / "bronze", "trained": trained / "data"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_API"))}
    env["PYTHONPATH"] = str(ROOT)
    env["ANSWERS"] = str(trained / "command-answers.json")
    env["CASES"] = json.dumps(
        {c: [*argv, "--data-root", str(roots[root])] for c, (argv, root, _) in COMMAND_CASES.items()}
    )
    done = subprocess.run(
        [sys.executable, "-c", CLI], cwd=trained, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((trained / "command-answers.json").read_text())


@pytest.mark.parametrize("case", list(COMMAND_CASES))
def test_every_commands_bad_input_is_one_stderr_line_before_any_flow(command_answers, case):
    answer, (argv, _, message) = command_answers[case], COMMAND_CASES[case]
    assert answer["rc"] == 2, answer
    lines = answer["stderr"].splitlines()
    assert len(lines) == 1 and "Traceback" not in answer["stderr"], answer["stderr"]
    assert lines[0].startswith(f"rnnflow {argv[0]}: error: ") and message in lines[0], lines[0]
    assert answer["loaded"] == [], f"answered only after loading {answer['loaded']}"  # no Prefect, no torch


def test_a_deployment_run_fails_with_the_one_line_as_its_state_message(trained, prefect_api):
    from flows.kind_flows import features_flow, train_flow

    root = str(trained / "data")
    state = features_flow("names", data_root=root, features={"min_freq": 0}, return_state=True)
    assert state.is_failed() and state.message == "min_freq (--min-freq) must be >= 1, got 0"
    state = train_flow("names", data_root=root, train={"epochs": 0}, return_state=True)
    assert state.is_failed() and state.message == "epochs (--epochs) must be >= 1, got 0"
    state = train_flow("names", data_root=root, model={"hidden_size": 0}, return_state=True)
    assert state.is_failed() and state.message == "--hidden-size 0: give 1 or more"
    state = train_flow("names", data_root=root, epochs=0, return_state=True)  # last release's flat name
    assert state.is_failed() and state.message == "epochs (--epochs) must be >= 1, got 0"


def test_a_good_request_with_the_alias_column_scores(trained, prefect_api):
    from flows.score_flows import score_flow

    report = score_flow("names", str(trained / "ok.csv"), "2026-11-30", data_root=str(trained / "data"))
    assert report["rows"] == 1 and report["rows_unscored"] == 0


def test_a_flow_fails_on_a_missing_file_without_retrying(trained, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.score_flows import score_flow

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


def test_an_error_found_mid_run_ends_in_one_line_and_verbose_shows_the_traceback(trained, prefect_api):
    """--device cuda on a machine without CUDA is found once the training starts (it needs torch): the
    Prefect log says so without tracebacks, and the last line is the CLI's one line."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {
        "PREFECT_API_URL": prefect_api
    }
    argv = [sys.executable, "-m", "flows.cli", "train", "names", "--device", "cuda", "--epochs", "1"]
    argv += ["--data-root", str(trained / "data")]
    for verbose in (False, True):
        done = subprocess.run(
            argv + (["--verbose"] if verbose else []),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, done.stderr
        assert lines[-1].startswith("rnnflow train: error: --device cuda was asked for"), lines[-1]
        assert ("Traceback" in done.stderr) is verbose, done.stderr
