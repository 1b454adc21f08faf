"""The promotion history's storage: one file per move, so two writers lose nothing, and a writer killed
mid-file leaves no row a reader could see half of."""

from __future__ import annotations

import subprocess
import sys

from pipeline import history
from pipeline.layout import Layout

WRITER = """
import sys
from pipeline import history
from pipeline.layout import Layout

layout = Layout.of("names", sys.argv[1])
for i in range(int(sys.argv[3])):
    history.append(layout, {"model_name": "m", "alias": "champion", "action": "promote",
                            "from_version": i, "to_version": i + 1, "reason": sys.argv[2]})
"""


def writers(root, *jobs: tuple[str, int]) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", WRITER, str(root), who, str(n)]) for who, n in jobs]


def test_two_writers_at_once_lose_no_move(tmp_path):
    for proc in writers(tmp_path, ("a", 25), ("b", 25)):
        assert proc.wait(timeout=120) == 0
    rows = history.read(Layout.of("names", tmp_path))
    assert rows.height == 50 and rows["reason"].value_counts().sort("reason")["count"].to_list() == [25, 25]


def test_a_killed_writer_leaves_whole_rows_only(tmp_path):
    (proc,) = writers(tmp_path, ("k", 100_000))
    layout = Layout.of("names", tmp_path)
    while not layout.history.is_dir() or len(list(layout.history.glob("*.parquet"))) < 20:
        assert proc.poll() is None
    proc.kill()
    proc.wait(timeout=60)
    rows = history.read(layout)  # every file there is a whole row; a half-written one is a .tmp
    assert rows.height >= 20 and rows["to_version"].to_list() == list(range(1, rows.height + 1))
    assert history.served(layout) == set(range(1, rows.height + 1))
