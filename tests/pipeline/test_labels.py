"""Labels that arrive after scoring: matched to scored rows by id (text) or ticker and day (prices),
every bad row quarantined with one reason, rows conserved; and the realised metrics they give."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

import polars as pl
import pytest

from models import realised as realised_metrics
from pipeline import labels, realised
from pipeline.kinds import PRICES, REVIEWS
from pipeline.layout import Layout
from pipeline.storage import read_parquet, write_parquet_atomic

DAYS = ("2026-11-01", "2026-11-02")


def scored_reviews(root) -> Layout:
    """Two scored days of reviews as the scorer writes them: ids r0..r9, version 1."""
    layout = Layout.of("reviews", root)
    for n, ds in enumerate(DAYS):
        rows = pl.DataFrame(
            {
                "id": [f"r{i}" for i in range(10)],
                "predicted_label": ["positive" if (i + n) % 3 else "negative" for i in range(10)],
                "model_version": [1] * 10,
                "scored_at": [datetime.now(UTC)] * 10,
            }
        ).with_columns(pl.col("model_version").cast(pl.Int32))
        write_parquet_atomic(rows, layout.prediction_partition(ds) / "part-0.parquet")
    return layout


def scored_prices(root) -> Layout:
    layout = Layout.of("prices", root)
    rows = pl.DataFrame(
        {
            "ticker": ["AAPL", "IBM"],
            "as_of_date": [date(2026, 11, 1)] * 2,
            "last_close": [100.0, 50.0],
            "forecast_close": [101.0, 49.0],
            "model_version": [1, 1],
        }
    ).with_columns(pl.col("model_version").cast(pl.Int32))
    write_parquet_atomic(rows, layout.prediction_partition(DAYS[0]) / "part-0.parquet")
    return layout


def csv(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_every_kind_of_bad_text_label_is_quarantined_with_its_reason(tmp_path):
    layout = scored_reviews(tmp_path / "data")
    good = "".join(f"{DAYS[0]},r{i},{'positive' if i % 3 else 'negative'}\n" for i in range(6))
    bad = (
        f"{DAYS[0]},r99,positive\n"  # unknown id
        f"{DAYS[0]},r6,great\n"  # unknown label
        f"{DAYS[0]},r0,positive\n"  # duplicate id (r0 above)
        "2026-10-01,r1,positive\n"  # a day never scored
        "2026-11-31,r1,positive\n"  # a malformed date
        f"{DAYS[0]},r7,\n"  # no label
    )
    first = csv(tmp_path / "a.csv", "ds,id,sentiment\n" + good + bad)
    empty = csv(tmp_path / "empty.csv", "")
    wrong = csv(tmp_path / "wrong.csv", "who,what\nx,y\nz,w\n")
    report = labels.ingest_labels([first, empty, wrong], REVIEWS, layout)
    assert report["rows_in"] == 14 == report["rows_ok"] + report["rows_quarantined"]
    assert report["rows_ok"] == 6
    assert report["reasons"] == {
        "bad_date": 1,
        "day_not_scored": 1,
        "duplicate": 1,
        "missing_columns": 2,
        "missing_label": 1,
        "unknown_id": 1,
        "unknown_label": 1,
    }
    assert [f["reason"] for f in report["files"]] == ["empty_file", "missing_columns"]
    quarantined = read_parquet(layout.label_quarantine / f"{report['batch']}.parquet")
    assert quarantined.height == 8 and quarantined["source_file"].null_count() == 0

    again = labels.ingest_labels([first, empty, wrong], REVIEWS, layout)  # the same batch: nothing twice
    assert again["already_ingested"] and labels.stored(layout).height == 6
    # a late second piece, for the other day, with --ds; a label given before is a duplicate
    late = csv(tmp_path / "late.csv", "id,label\nr1,positive\nr2,negative\n")
    piece = labels.ingest_labels([late], REVIEWS, layout, ds=DAYS[1])
    assert piece["rows_ok"] == 2 and piece["days"] == [DAYS[1]]
    assert labels.ingest_labels(
        [csv(tmp_path / "x.csv", f"ds,id,label\n{DAYS[0]},r1,negative\n")], REVIEWS, layout
    )["reasons"] == {"duplicate": 1}


def test_realised_accuracy_per_day_and_version_counts_only_labelled_rows(tmp_path):
    layout = scored_reviews(tmp_path / "data")
    rows = "".join(f"{DAYS[0]},r{i},positive\n" for i in range(10))
    labels.ingest_labels([csv(tmp_path / "l.csv", "ds,id,label\n" + rows)], REVIEWS, layout)
    daily = realised_metrics.per_day(realised.joined(layout, REVIEWS, *DAYS), REVIEWS)
    first, second = daily.to_dicts()
    assert (first["rows_scored"], first["rows_labelled"], first["accuracy"]) == (10, 10, 0.6)
    assert first["accuracy_ci95_low"] < 0.6 < first["accuracy_ci95_high"]
    assert second["rows_labelled"] == 0 and second["accuracy"] is None


def test_price_labels_are_realised_closes_by_ticker_and_day(tmp_path):
    layout = scored_prices(tmp_path / "data")
    source = csv(
        tmp_path / "closes.csv",
        f"ds,ticker,close\n{DAYS[0]},AAPL,102\n{DAYS[0]},IBM,49.5\n{DAYS[0]},ZZZ,10\n{DAYS[0]},IBM,-3\n",
    )
    report = labels.ingest_labels([source], PRICES, layout)
    assert report["rows_ok"] == 2 and report["reasons"] == {"bad_close": 1, "unknown_ticker": 1}
    (day,) = realised_metrics.per_day(realised.joined(layout, PRICES, DAYS[0], DAYS[0]), PRICES).to_dicts()
    assert day["rmse"] == pytest.approx(((1**2 + 0.5**2) / 2) ** 0.5)
    assert day["persistence_rmse"] == pytest.approx(((2**2 + 0.5**2) / 2) ** 0.5)
    assert day["directional_accuracy"] == 1.0


WRITER = """
import sys
from pipeline import labels
from pipeline.kinds import REVIEWS
from pipeline.layout import Layout
print(labels.ingest_labels([sys.argv[2]], REVIEWS, Layout.of("reviews", sys.argv[1])))
"""


def test_two_writers_of_the_same_keys_label_each_row_once(tmp_path):
    layout = scored_reviews(tmp_path / "data")
    sources = []
    for who in ("a", "b"):
        label = "positive" if who == "a" else "negative"
        rows = "".join(f"{DAYS[0]},r{i},{label}\n" for i in range(10))
        sources.append(
            csv(tmp_path / f"{who}.csv", f"ds,id,label,who\n{rows.replace(chr(10), f',{who}' + chr(10))}")
        )
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(layout.root), s]) for s in sources]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    stored = labels.stored(layout)
    assert (
        stored.height == 10 and stored["id"].n_unique() == 10
    )  # one writer took them, the other: duplicates
    quarantined = pl.concat([read_parquet(f) for f in layout.label_quarantine.glob("*.parquet")])
    assert quarantined.height == 10 and set(quarantined["reason"]) == {"duplicate"}


def test_a_batch_killed_before_its_report_is_redone_whole(tmp_path, monkeypatch):
    layout = scored_reviews(tmp_path / "data")
    rows = "".join(f"{DAYS[0]},r{i},positive\n" for i in range(4))
    source = csv(tmp_path / "l.csv", "ds,id,label\n" + rows)
    real = labels.write_json_atomic
    monkeypatch.setattr(labels, "write_json_atomic", lambda *a: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        labels.ingest_labels([source], REVIEWS, layout)  # rows written, the report (the batch's end) not
    monkeypatch.setattr(labels, "write_json_atomic", real)
    again = labels.ingest_labels([source], REVIEWS, layout)
    assert not again.get("already_ingested") and again["rows_ok"] == 4 and again["reasons"] == {}
    assert labels.stored(layout).height == 4
