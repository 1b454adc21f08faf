"""Locks and multi-file commits on a local data root, with real processes killed by SIGKILL: a killed
holder frees its lock, a commit killed mid-way is finished by the next run, a writer killed before
its commit leaves nothing visible, and a live writer's staging is never touched."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import commit, locks

ROOT = Path(__file__).resolve().parents[2]


def child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_a_lock_is_held_by_one_process_and_freed_when_its_holder_is_killed(tmp_path):
    ready = tmp_path / "ready"
    holder = child(
        "import time, pathlib\nfrom pipeline import locks\n"
        f"with locks.hold(pathlib.Path({str(tmp_path)!r}), 'ingest-names'):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n    time.sleep(600)\n"
    )
    wait_for(ready, holder)
    held_by = pytest.raises(locks.LockTimeout, match=f"ingest-names.* held by .*-{holder.pid}-")
    with held_by, locks.hold(tmp_path, "ingest-names", timeout=0.3):
        pass
    holder.kill()  # SIGKILL: no finally block runs; the kernel drops the flock
    holder.wait()
    began = time.monotonic()
    with locks.hold(tmp_path, "ingest-names", timeout=10):
        assert time.monotonic() - began < 5


def commit_two_files(root: Path, kill_after_moves: int | None) -> str:
    """Stage a.json and b.json, then apply; SIGKILL the process after `kill_after_moves` renames
    (None: before the journal is written, as a writer killed while staging)."""
    kill = (
        "import os, signal\nfrom pipeline import commit as c\nreal, n = os.replace, [0]\n"
        "def replace(*a):\n    real(*a)\n    if not str(a[1]).endswith('.commit'):\n"
        f"        n[0] += 1\n        if n[0] == {kill_after_moves}: os.kill(os.getpid(), signal.SIGKILL)\n"
        "c.os.replace = replace\n"
    )
    apply = "t.apply()\n" if kill_after_moves is not None else "os.kill(os.getpid(), signal.SIGKILL)\n"
    return (
        "import os, signal, pathlib\n"
        + (kill if kill_after_moves is not None else "")
        + "from pipeline.commit import Commit\n"
        + f"root = pathlib.Path({str(root)!r})\nt = Commit(root, 'score-names-2026-11-01')\n"
        + "for name in ('a.json', 'b.json'):\n    t.write_json({'n': 2}, root / 'data' / name)\n"
        + apply
    )


def test_a_commit_killed_between_its_files_is_finished_by_the_next_run(tmp_path):
    (tmp_path / "data").mkdir()
    for name in ("a.json", "b.json"):
        (tmp_path / "data" / name).write_text(json.dumps({"n": 1}))
    proc = child(commit_two_files(tmp_path, kill_after_moves=1))
    assert proc.wait() == -9
    seen = {n: json.loads((tmp_path / "data" / n).read_text())["n"] for n in ("a.json", "b.json")}
    assert seen == {"a.json": 2, "b.json": 1}  # half of it, as a crash leaves it
    commit.recover(tmp_path)
    seen = {n: json.loads((tmp_path / "data" / n).read_text())["n"] for n in ("a.json", "b.json")}
    assert seen == {"a.json": 2, "b.json": 2}
    assert list((tmp_path / commit.STAGING).iterdir()) == []


def test_a_writer_killed_before_its_commit_leaves_nothing_visible_and_is_cleared(tmp_path):
    proc = child(commit_two_files(tmp_path, kill_after_moves=None))
    assert proc.wait() == -9
    assert not (tmp_path / "data").exists()  # not even an empty folder
    assert len(list((tmp_path / commit.STAGING).iterdir())) == 1
    commit.recover(tmp_path)
    assert list((tmp_path / commit.STAGING).iterdir()) == []


def test_a_live_writers_staging_is_left_alone(tmp_path):
    mine = commit.Commit(tmp_path, "score-names-2026-11-01")
    mine.write_json({"n": 1}, tmp_path / "data" / "a.json")
    commit.recover(tmp_path)
    assert mine.folder.is_dir()
    mine.apply()
    assert json.loads((tmp_path / "data" / "a.json").read_text()) == {"n": 1}
    assert list((tmp_path / commit.STAGING).iterdir()) == []


def test_a_commit_another_host_left_half_applied_is_finished_before_a_newer_one_not_after(tmp_path):
    """A journal under a held lock is nobody's live apply, whoever wrote it: the next commit under that
    lock finishes it first, so the older files can never land over the newer ones later."""
    txid = "20261101T000000-elsewhere-4242-1-0000abcd"  # a writer on another host, which cannot be asked
    staged = tmp_path / commit.STAGING / txid / "data" / "a.json"
    staged.parent.mkdir(parents=True)
    staged.write_text(json.dumps({"n": "older"}))
    journal = tmp_path / commit.STAGING / f"{txid}{commit.JOURNAL}"
    journal.write_text(json.dumps({"lock": "predictions-names", "files": ["data/a.json"]}))
    commit.recover(tmp_path)  # the lock is free: finished now
    assert json.loads((tmp_path / "data" / "a.json").read_text()) == {"n": "older"}
    staged.parent.mkdir(parents=True)
    staged.write_text(json.dumps({"n": "older"}))
    journal.write_text(json.dumps({"lock": "predictions-names", "files": ["data/a.json"]}))
    newer = commit.Commit(tmp_path, "predictions-names")
    newer.write_json({"n": "newer"}, tmp_path / "data" / "a.json")
    newer.apply()
    assert json.loads((tmp_path / "data" / "a.json").read_text()) == {"n": "newer"}
    commit.recover(tmp_path)
    assert json.loads((tmp_path / "data" / "a.json").read_text()) == {"n": "newer"}
    assert list((tmp_path / commit.STAGING).iterdir()) == []
