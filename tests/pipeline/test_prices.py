"""Price sources, quarantine rules, and the no-look-ahead properties of the dated split and the scaler."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.ingest import ingest
from pipeline.kinds import PRICES
from pipeline.layout import Layout
from pipeline.prices.features import (
    PriceFeatureConfig,
    build_price_features,
    decode_target,
    encode_target,
    load_windows,
)
from pipeline.sources import SourceError

HEADER = "Date,Open,High,Low,Close,Volume,Adj Close"


def bars(n: int, start: float = 100.0, seed: int = 0, first: date = date(2020, 1, 1)) -> list[str]:
    """n weekday bars of a random walk, as CSV lines (oldest first)."""
    rng = np.random.default_rng(seed)
    day, close, lines = first, start, []
    while len(lines) < n:
        if day.weekday() < 5:
            close = close * float(np.exp(rng.normal(0, 0.01)))
            lines.append(
                f"{day},{close:.4f},{close * 1.01:.4f},{close * 0.99:.4f},{close:.4f},{1000 + len(lines)},"
            )
        day += timedelta(days=1)
    return lines


def write_ticker_folder(folder, tickers=("AAPL", "MSFT"), n=60):
    folder.mkdir(parents=True, exist_ok=True)
    for i, ticker in enumerate(tickers):
        (folder / f"{ticker}.csv").write_text("\n".join([HEADER, *bars(n, seed=i)]) + "\n")
    return folder


def test_one_file_per_ticker_folder_takes_the_ticker_from_the_file_name(tmp_path, data_root):
    folder = write_ticker_folder(tmp_path / "daily")
    report = ingest([str(folder)], PRICES, Layout.of("prices"))
    assert (report.rows_in, report.rows_ok, report.rows_quarantined) == (120, 120, 0)
    bronze = pl.read_parquet(report.bronze_path)
    assert bronze.group_by("ticker").len().sort("ticker").rows() == [("AAPL", 60), ("MSFT", 60)]
    assert bronze.schema["date"] == pl.Date and bronze.schema["close"] == pl.Float64
    assert bronze["adj_close"].null_count() == 120  # empty Adj Close is allowed


def test_long_csv_with_ticker_column_and_typed_parquet(tmp_path, data_root):
    long_csv = tmp_path / "long.csv"
    lines = ["Symbol,Date,Open,High,Low,Close,Volume"]
    lines += [f"ibm,{line.rsplit(',', 2)[0]},{line.rsplit(',', 2)[1]}" for line in bars(10)]
    long_csv.write_text("\n".join(lines) + "\n")
    typed = pl.DataFrame(
        {
            "ticker": ["GOOG", "GOOG"],
            "date": [date(2021, 1, 4), date(2021, 1, 5)],
            "open": [10.0, 11.0],
            "high": [12.0, 12.0],
            "low": [9.0, 10.0],
            "close": [11.0, 11.5],
            "volume": [100, 200],
        }
    )
    typed.write_parquet(tmp_path / "goog.parquet")
    report = ingest([str(long_csv), str(tmp_path / "goog.parquet")], PRICES, Layout.of("prices"))
    assert report.rows_ok == 12
    bronze = pl.read_parquet(report.bronze_path)
    assert sorted(bronze["ticker"].unique()) == ["GOOG", "IBM"]  # upper-cased
    assert bronze.filter(pl.col("ticker") == "GOOG")["date"].to_list() == [date(2021, 1, 4), date(2021, 1, 5)]


def test_each_bad_bar_is_quarantined_with_its_reason_and_rows_are_conserved(tmp_path, data_root):
    rows = [
        "2021-01-04,10,12,9,11,100,",  # ok
        "2021-01-05,10,12,9,11,100,",  # ok
        "2021-01-05,10,12,9,11,100,",  # duplicate (ticker, date)
        "not-a-date,10,12,9,11,100,",  # unparseable_date
        "2021-01-06,ten,12,9,11,100,",  # unparseable_number
        "2021-01-07,10,12,9,,100,",  # missing_value
        "2021-01-08,0,12,9,11,100,",  # non_positive_price
        "2021-01-11,10,8,9,8.5,100,",  # high_below_low
        "2021-01-12,10,12,9,13,100,",  # close_outside_range
        "2021-01-13,10,12,9,11,-5,",  # negative_volume
        '01/14/2021,10,12,9,11,"1,200",',  # ok: US date, thousands separator
        "2021-01-15,10,12,9,11,NaN,",  # unparseable_number: not a finite number
        "2021-01-18,inf,12,9,11,100,",  # unparseable_number
        '2021-01-19,"1,2345",12,9,11,100,',  # unparseable_number: not thousands groups
        "2021-01-20,13,12,9,11,100,",  # open_outside_range
    ]
    path = tmp_path / "XYZ.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    layout = Layout.of("prices")
    report = ingest([str(path)], PRICES, layout)
    assert report.rows_in == len(rows) == report.rows_ok + report.rows_quarantined
    assert report.reasons == {
        "close_outside_range": 1,
        "duplicate": 1,
        "high_below_low": 1,
        "missing_value": 1,
        "negative_volume": 1,
        "non_positive_price": 1,
        "open_outside_range": 1,
        "unparseable_date": 1,
        "unparseable_number": 4,
    }
    bad = pl.read_parquet(report.quarantine_path)
    assert bad.filter(pl.col("reason") == "unparseable_number")["open"].to_list() == [
        "ten",
        "10",
        "inf",
        "1,2345",
    ]
    assert bad.filter(pl.col("reason") == "duplicate")["source_row"].to_list() == [3]
    good = pl.read_parquet(report.bronze_path)
    assert good.filter(pl.col("date") == date(2021, 1, 14))["volume"].to_list() == [1200.0]
    copy = tmp_path / "again" / path.name  # another file (same ticker): not the committed batch
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    again = ingest([str(copy)], PRICES, layout)  # the same bars again: the 3 good ones are in bronze
    assert again.rows_ok == 0 and again.reasons["duplicate"] == 3 + 1


def test_missing_columns_name_the_file_and_the_expected_layout(tmp_path, data_root):
    path = tmp_path / "AAPL.csv"
    path.write_text("Date,Close\n2021-01-04,10\n")
    with pytest.raises(
        SourceError, match=r"AAPL.csv: missing column\(s\) \['open', 'high', 'low', 'volume'\]"
    ):
        ingest([str(path)], PRICES, Layout.of("prices"))


def _features(tmp_path, data_root, scale_after: date | None = None, lookback: int = 5):
    folder = write_ticker_folder(tmp_path / f"daily-{scale_after}", n=100)
    if scale_after is not None:  # change every bar from `scale_after` on: the future
        for file in folder.iterdir():
            frame = pl.read_csv(file, infer_schema=False)
            later = pl.col("Date").str.to_date() >= scale_after
            frame = frame.with_columns(
                pl.when(later).then(pl.col(c).cast(pl.Float64) * 3).otherwise(pl.col(c).cast(pl.Float64))
                for c in ("Open", "High", "Low", "Close")
            )
            frame.write_csv(file)
    layout = Layout.of("prices", data_root / str(scale_after))
    ingest([str(folder)], PRICES, layout)
    manifest = build_price_features(PRICES, layout, PriceFeatureConfig(lookback=lookback))
    folder = layout.features / manifest["version"]
    return manifest, {s: load_windows(folder, manifest, s) for s in ("train", "val", "test")}


def test_no_window_crosses_a_split_boundary(tmp_path, data_root):
    manifest, windows = _features(tmp_path, data_root)
    val_start = date.fromisoformat(manifest["split_dates"]["val_start"])
    test_start = date.fromisoformat(manifest["split_dates"]["test_start"])
    assert windows["train"]["target_date"].max() < val_start
    assert (
        windows["val"]["start_date"].min() >= val_start and windows["val"]["target_date"].max() < test_start
    )
    assert windows["test"]["start_date"].min() >= test_start
    # 2 tickers x 100 days, lookback 5: each boundary drops the 5 windows that would straddle it
    assert sum(manifest["rows"].values()) == 2 * (100 - 5 - 2 * 5)


def test_scaler_and_training_windows_ignore_the_future(tmp_path, data_root):
    """Tripling every price from the validation period on changes nothing the model is fitted on."""
    manifest, windows = _features(tmp_path, data_root)
    val_start = date.fromisoformat(manifest["split_dates"]["val_start"])
    changed, changed_windows = _features(tmp_path, data_root, scale_after=val_start)
    assert changed["split_dates"] == manifest["split_dates"]
    assert changed["scaler"] == manifest["scaler"]
    assert_frame_equal(changed_windows["train"], windows["train"])
    assert not changed_windows["val"]["target_close"].equals(windows["val"]["target_close"])


@pytest.mark.parametrize("target", ["close", "log_return"])
def test_target_encoding_round_trips_to_the_close(target):
    rng = np.random.default_rng(0)
    raw = rng.uniform(50, 150, size=(4, 7, 5))
    raw[:, :, 4] = rng.integers(1, 10_000, size=(4, 7))
    next_close = rng.uniform(50, 150, size=4)
    y = encode_target(raw, next_close, target)
    np.testing.assert_allclose(decode_target(raw, y, target), next_close)


def test_features_reject_too_short_a_history(tmp_path, data_root):
    folder = write_ticker_folder(tmp_path / "short", n=6)
    layout = Layout.of("prices")
    ingest([str(folder)], PRICES, layout)
    with pytest.raises(ValueError, match="no training windows"):
        build_price_features(PRICES, layout, PriceFeatureConfig(lookback=7))
