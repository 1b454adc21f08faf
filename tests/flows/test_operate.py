"""flows/operate.py's day and backfill flows: days without input are named Skipped and write nothing; a
re-run backfill replaces its days' partitions.

Through deployments and a worker, tests/operate/test_server_e2e.py runs the same flows on days with
input; these runs need only the session's Prefect API."""

from __future__ import annotations

import polars as pl
import pytest

from flows.operate import backfill, score_day


@pytest.fixture(scope="module")
def root(tiny_names_root, prefect_api):
    return tiny_names_root


def test_a_day_without_input_is_skipped_by_name(root):
    state = score_day("names", "2026-09-01", data_root=str(root), return_state=True)
    assert state.is_completed() and state.name == "Skipped"
    assert "incoming/names/ds=2026-09-01" in state.message
    assert state.result()["status"] == "skipped"
    assert not (root / "predictions" / "names" / "ds=2026-09-01").exists()


def test_a_backfill_of_days_without_input_is_named_skipped(root):
    state = backfill("names", "2026-08-01", "2026-08-02", data_root=str(root), return_state=True)
    assert state.is_completed() and state.name == "Skipped"
    assert state.message.startswith("all 2 days skipped: no input partition under ")
    assert not any((root / "predictions" / "names" / f"ds=2026-08-0{d}").exists() for d in (1, 2))


def test_a_backfill_run_again_replaces_each_day_and_keeps_one_version(root, monkeypatch):
    from models import packaging

    loads, real = [], packaging.load
    monkeypatch.setattr(packaging, "load", lambda uri: loads.append(uri) or real(uri))
    days = {"2026-07-01": 2, "2026-07-02": 3}
    for ds, n in days.items():
        path = root / "incoming" / "names" / f"ds={ds}" / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(
            {"id": [str(i) for i in range(n)], "surname": ["Ivanov", "Tanaka", "Nowak"][:n]}
        ).write_parquet(path)
    for _ in range(2):
        rows = backfill("names", "2026-07-01", "2026-07-02", data_root=str(root))
        assert [(r["ds"], r["status"], r["rows"]) for r in rows] == [
            (d, "scored", n) for d, n in days.items()
        ]
        for ds, n in days.items():
            files = list((root / "predictions" / "names" / f"ds={ds}").glob("*.parquet"))
            assert [f.name for f in files] == ["part-0.parquet"]  # replaced, never appended
            frame = pl.read_parquet(files[0])
            assert frame.height == n and frame["model_version"].to_list() == [1] * n
    assert loads == ["models:/names-nationality/1"]  # the pinned version, loaded once for 4 scored days
