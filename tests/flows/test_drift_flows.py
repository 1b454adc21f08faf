"""Drift in the flows: an alert ends the scoring run Completed in a state named Drift with the
partition written, a backfill says which days alerted, thresholds can be raised per run, and
`rnnflow drift` shows the trend as a table and a PNG."""

from __future__ import annotations

import json

import polars as pl
import pytest

from flows.cli import main
from flows.operate import backfill
from flows.score_flows import score_flow
from pipeline.layout import Layout
from pipeline.storage import latest_features
from pipeline.text.features import split_texts
from tests.conftest import make_surnames

DAYS = ("2026-11-01", "2026-11-02")


@pytest.fixture(scope="module")
def root(tiny_names_root, prefect_api):
    return tiny_names_root


def write_input(root, name: str, surnames: list[str]) -> str:
    path = root.parent / f"{name}.parquet"
    pl.DataFrame({"surname": surnames}).write_parquet(path)
    return str(path)


def shouted(n: int = 60) -> list[str]:
    return [f"#{s.upper()}!?" for s, _ in make_surnames()[:n]]


def test_a_drift_alert_ends_the_run_named_drift_with_the_predictions_written(root):
    source = write_input(root, "shouted", shouted())
    state = score_flow("names", source, "2026-11-05", data_root=str(root), return_state=True)
    assert state.is_completed() and state.name == "Drift", (state.name, state.message)
    assert "oov_psi" in state.message
    report = state.result()
    assert report["drift"] == "alert" and report["rows"] == 60
    partition = root / "predictions/names/ds=2026-11-05"
    assert pl.read_parquet(partition / "part-0.parquet").height == 60
    assert json.loads((root / "drift/names/ds=2026-11-05.json").read_text())["verdict"] == "alert"
    assert pl.read_parquet(partition).height == 60  # the partition folder holds Parquet only

    raised = {name: [100.0, 200.0] for name in report["drift_metrics"]}  # a run may raise any threshold
    calm = score_flow("names", source, "2026-11-05", data_root=str(root), drift_thresholds=raised)
    assert calm["drift"] == "ok"


def test_a_backfill_names_the_days_that_alerted_and_drift_shows_the_trend(root, tmp_path, capsys):
    folder, manifest = latest_features(Layout.of("names", root))
    plain = split_texts(folder, manifest, "val")["surname"].to_list()  # the reference's own texts: ok
    for ds, names in zip(DAYS, (plain, shouted()), strict=True):
        folder = root / "incoming/names" / f"ds={ds}"
        folder.mkdir(parents=True)
        pl.DataFrame({"surname": names}).write_parquet(folder / "part-0.parquet")
    state = backfill("names", DAYS[0], DAYS[1], data_root=str(root), return_state=True)
    assert state.is_completed() and state.name == "Drift"
    assert f"drift alert on ['{DAYS[1]}']" in state.message
    assert [r["drift"] for r in state.result()] == ["ok", "alert"]

    plot = tmp_path / "trend.png"
    code = main(
        [
            "drift",
            "names",
            "--start",
            DAYS[0],
            "--end",
            DAYS[1],
            "--data-root",
            str(root),
            "--plot",
            str(plot),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and plot.stat().st_size > 1000
    assert DAYS[0] in out and DAYS[1] in out and "oov_psi" in out and "alert" in out
    args = ["drift", "names", "--start", DAYS[0], "--end", DAYS[1], "--data-root", str(root)]
    assert main(args) == 0  # a flow, whose plot goes under the data root by default
    assert (root / "reports" / f"drift-names-{DAYS[0]}-{DAYS[1]}.png").stat().st_size > 1000
    capsys.readouterr()
    assert (
        main(["drift", "names", "--start", "2026-01-01", "--end", "2026-01-02", "--data-root", str(root)])
        == 2
    )
    assert "no drift reports for names from 2026-01-01 to 2026-01-02" in capsys.readouterr().err
    assert (
        main(
            ["score", "names", "--input", "x.parquet", "--ds", "2026-11-01", "--drift-threshold", "nope=1,2"]
        )
        == 2
    )
    assert "drift threshold 'nope': unknown" in capsys.readouterr().err
