"""A scoring run killed (SIGKILL) before its first chunk, mid-way and right after its commit: the day's
folder always reads with pl.read_parquet, holds the previous partition or the new one (with its own
drift report) and never a temporary file, and the re-run gives the uninterrupted result. Scoring
inputs get ingest's column rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows.cli import main
from flows.score_flows import score_flow
from tests.conftest import make_surnames

ROOT = Path(__file__).resolve().parents[2]
DS = "2026-11-07"
LINEAGE = ["scored_at", "model_run_id"]

KILLS = {  # code run in the scoring process before it scores: SIGKILL at one moment
    "before-first-chunk": "from pipeline import storage\nreal = storage.PartitionWriter.write\n"
    "def write(self, frame):\n    die()\nstorage.PartitionWriter.write = write\n",
    "mid-way": "from pipeline import storage\nreal, n = storage.PartitionWriter.write, [0]\n"
    "def write(self, frame):\n    real(self, frame)\n    n[0] += 1\n    if n[0] == 3: die()\n"
    "storage.PartitionWriter.write = write\n",
    "after-commit": "from pipeline import commit\nreal = commit.Commit.apply\n"
    "def apply(self, *a, **k):\n    real(self, *a, **k)\n    die()\ncommit.Commit.apply = apply\n",
}


@pytest.fixture(scope="module")
def trained(tiny_names_root, prefect_api):
    return tiny_names_root


def day_file(path: Path, seed: int, n: int = 200) -> Path:
    names = [s for s, _ in make_surnames(80, seed=seed)][:n]
    pl.DataFrame({"id": [f"{seed}-{i}" for i in range(len(names))], "surname": names}).write_parquet(path)
    return path


def kill_scoring(root: Path, source: Path, ds: str, moment: str, api: str) -> int:
    """Score in a child process that SIGKILLs itself at `moment`; it talks to the session's Prefect API
    (api), so that no temporary server of its own outlives it."""
    code = (
        "import os, signal\ndef die():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        + KILLS[moment]
        + "from models.text import scoring\nscoring.CHUNK_ROWS = 50\n"
        + "from flows.score_flows import score_flow\n"
        + f"score_flow('names', {str(source)!r}, {ds!r}, data_root={str(root)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"PREFECT_API_URL": api}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=300).returncode


def partition(root: Path, ds: str = DS) -> pl.DataFrame:
    return pl.read_parquet(root / "predictions" / "names" / f"ds={ds}")  # the folder, as a reader reads it


def test_a_killed_scoring_leaves_a_readable_day_and_the_rerun_gives_the_uninterrupted_result(
    trained, tmp_path, monkeypatch, prefect_api
):
    monkeypatch.setattr("models.text.scoring.CHUNK_ROWS", 50)
    root = tmp_path / "data"
    shutil.copytree(trained, root)
    old, new = day_file(tmp_path / "old.parquet", 1, n=120), day_file(tmp_path / "new.parquet", 2)
    clean = tmp_path / "clean"
    shutil.copytree(trained, clean)
    uninterrupted = score_flow("names", str(new), DS, data_root=str(clean))

    folder = root / "predictions" / "names" / f"ds={DS}"
    for moment in KILLS:  # each time the day holds `old` when the scoring of `new` is killed
        score_flow("names", str(old), DS, data_root=str(root))
        assert kill_scoring(root, new, DS, moment, prefect_api) == -9, moment
        assert [p.name for p in folder.iterdir()] == ["part-0.parquet"], moment  # nothing temporary
        seen = partition(root)
        expected = new if moment == "after-commit" else old
        assert seen["id"].to_list() == pl.read_parquet(expected)["id"].to_list(), moment
        report = json.loads((root / "drift" / "names" / f"ds={DS}.json").read_text())
        assert report["rows"] == seen.height, moment  # the day's drift report is its partition's

    never = "2026-11-08"  # a day never scored: a kill before its first chunk leaves no folder at all
    assert kill_scoring(root, new, never, "before-first-chunk", prefect_api) == -9
    assert not (root / "predictions" / "names" / f"ds={never}").exists()

    again = score_flow("names", str(new), DS, data_root=str(root))
    assert again["rows"] == uninterrupted["rows"] == 200
    assert_frame_equal(partition(root).drop(LINEAGE), partition(clean).drop(LINEAGE))
    assert list((root / ".staging").iterdir()) == []  # the killed runs' leftovers are cleared


def test_a_scoring_input_gets_ingests_column_rules(trained, tmp_path, capsys):
    numbers = tmp_path / "numbers.parquet"
    pl.DataFrame({"surname": [1, 2]}).write_parquet(numbers)
    code = main(["score", "names", "--input", str(numbers), "--ds", DS, "--data-root", str(trained)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "column 'surname' holds Int64, not text" in err and len(err.splitlines()) == 1
