"""The tests' Prefect servers start on a copy of one migrated SQLite database: a new database runs
Prefect's migrations, ~9 s of CPU per server (each pytest-xdist worker's session API, the e2e server).

The template is made once per test session, by whichever worker needs it first (a file lock)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from filelock import FileLock


def shared_folder(tmp_path_factory) -> Path:
    """A folder of this test session that every xdist worker sees (their basetemps' parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def template(folder: Path) -> Path:
    path = folder / "prefect-template.db"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            fresh = folder / "prefect-template.tmp.db"
            env = {
                **os.environ,
                "PREFECT_HOME": str(folder / "prefect-template-home"),
                "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{fresh}",
            }
            cmd = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
            fresh.rename(path)
    return path


def copy_to(template_db: Path, folder: Path, name: str = "prefect.db") -> str:
    """-> the connection URL of a fresh copy of the template in folder."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_db, folder / name)
    return f"sqlite+aiosqlite:///{folder / name}"


@contextmanager
def seeded_harness(template_db: Path, timeout: int):
    """prefect_test_harness, with its temporary database a copy of the template (it makes the folder
    with tempfile.mkdtemp and names the file prefect-test.db)."""
    import tempfile

    from prefect.testing import utilities

    folder = Path(tempfile.mkdtemp())
    copy_to(template_db, folder, "prefect-test.db")
    with (
        mock.patch.object(utilities, "mkdtemp", lambda: str(folder)),
        utilities.prefect_test_harness(server_startup_timeout=timeout),
    ):
        yield
