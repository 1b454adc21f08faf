"""Price scoring: a price pyfunc's next-close forecast per ticker as of a day, and the family's Scorer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import polars as pl

from models.scoring import NO_REFERENCE, Scorer, drift_reference
from pipeline.ingest import read_valid
from pipeline.kinds import PriceKind
from pipeline.layout import Layout
from pipeline.predictions import with_lineage
from pipeline.prices import profile
from pipeline.prices.features import load_bars

log = logging.getLogger("rnnflow.score")

FORECAST_SCHEMA = {
    "ticker": pl.String,
    "as_of_date": pl.Date,
    "history_days": pl.Int64,
    "last_close": pl.Float64,
    "forecast_close": pl.Float64,
    "forecast_return": pl.Float64,
    "status": pl.String,
}
STALE_DAYS = 5  # a ticker whose last bar is older than this (calendar days before ds) is flagged


def forecast(model, bars: pl.DataFrame, ds: str, lookback: int) -> pl.DataFrame:
    """For each ticker in `bars`, the next-close forecast from its last `lookback` bars up to `ds`.

    Tickers with fewer bars up to ds get a row with a null forecast and status insufficient_history.
    """
    day = date.fromisoformat(ds)
    history = (
        bars.select("ticker", "date", "open", "high", "low", "close", "volume")
        .filter(pl.col("date") <= day)
        .sort("ticker", "date")
        .group_by("ticker", maintain_order=True)
        .tail(lookback)
    )
    rows = pl.DataFrame(schema=FORECAST_SCHEMA)
    if history.height:
        frame = history.with_columns(pl.col("date").dt.strftime("%Y-%m-%d")).to_pandas()
        out = model.predict(frame)
        rows = pl.from_pandas(out).with_columns(
            pl.col("as_of_date").str.to_date(),
            pl.col("history_days").cast(pl.Int64),
            pl.col("forecast_close").fill_nan(None),
        )
        rows = rows.with_columns(
            (pl.col("forecast_close") / pl.col("last_close") - 1).alias("forecast_return"),
            pl.when((pl.col("status") == "ok") & (pl.col("as_of_date") < day - timedelta(days=STALE_DAYS)))
            .then(pl.lit("stale: last bar ") + pl.col("as_of_date").cast(pl.String))
            .otherwise("status")
            .alias("status"),
        ).select(list(FORECAST_SCHEMA))
    missing = sorted(set(bars["ticker"].unique()) - set(rows["ticker"]))
    if missing:  # every bar is after ds: reported, not skipped
        none = pl.DataFrame(
            {
                "ticker": missing,
                "history_days": [0] * len(missing),
                "status": [f"insufficient_history: 0 of {lookback} days"] * len(missing),
            }
        )
        rows = pl.concat([rows, none], how="diagonal_relaxed").select(list(FORECAST_SCHEMA))
    return rows.sort("ticker")


# ---------------------------------------------------------------- the prices family's scorer


def read(kind: PriceKind, input_path: str | None, layout: Layout) -> tuple[pl.DataFrame, int]:
    """Daily bars to forecast from: the input's valid rows, or everything ingested so far; and how many
    input rows failed the price rules."""
    if input_path is None:
        return load_bars(layout), 0
    return read_valid([input_path], kind)


def score(
    model, bars: pl.DataFrame, kind: PriceKind, ds: str, resolved, sink: Callable | None = None
) -> tuple[pl.DataFrame, dict]:
    """-> one forecast row per ticker (a day's partition is small: written to sink in one go)."""
    rows = forecast(model, bars, ds, model.unwrap_python_model().lookback)
    frame = with_lineage(rows, resolved.name, resolved.version, resolved.run_id, datetime.now(UTC))
    not_ok = dict(frame.filter(pl.col("status") != "ok").select("ticker", "status").iter_rows())
    log.info("forecast %d tickers as of %s with %s v%d", frame.height, ds, resolved.name, resolved.version)
    if not_ok:
        log.warning("tickers without a clean forecast: %s", not_ok)
    report = {
        "rows": frame.height,
        "rows_unscored": int(frame["forecast_close"].null_count()),
        "tickers_not_ok": not_ok,
    }
    if sink is not None:
        sink(frame)
    return frame, report


def drift(model, bars: pl.DataFrame, frame: pl.DataFrame, kind: PriceKind, ds: str, limits: dict) -> dict:
    """The tickers' last bars up to ds, and the day's forecasts, against the training distributions."""
    reference = drift_reference(model)
    if reference is None:
        return {"verdict": "n/a", "rows": frame.height, "metrics": {}, "note": NO_REFERENCE}
    return profile.compare(reference, bars, frame, ds, limits)


SCORER = Scorer(read=read, score=score, input_label=lambda path: path or "all ingested bars", drift=drift)
