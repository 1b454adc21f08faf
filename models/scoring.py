"""Batch scoring with a registered pyfunc: resolve the URI to a pinned version, load, predict/forecast."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import mlflow
import pandas as pd
import polars as pl

from models import tracking
from models.packaging import OUTPUT_COLUMNS, POSITIVE_COLUMN

log = logging.getLogger("rnnflow.score")
EMPTY_SCHEMA = {
    "predicted_label": pl.String,
    "probability": pl.Float64,
    "top_labels": pl.List(pl.String),
    "top_probs": pl.List(pl.Float64),
    POSITIVE_COLUMN: pl.Float64,  # only from models of binary kinds
}


def load(uri: str):
    """-> (ResolvedModel, pyfunc model); the alias is resolved once, so every row gets one version."""
    resolved = tracking.resolve(uri)
    model = mlflow.pyfunc.load_model(resolved.uri)
    log.info("loaded %s (from %s), run %s", resolved.uri, uri, resolved.run_id)
    return resolved, model


def output_columns(model) -> list[str]:
    """OUTPUT_COLUMNS, plus positive_probability when the model's signature has it (binary kinds)."""
    schema = model.metadata.get_output_schema() if getattr(model, "metadata", None) else None
    names = schema.input_names() if schema is not None else []
    return [*OUTPUT_COLUMNS, POSITIVE_COLUMN] if POSITIVE_COLUMN in names else list(OUTPUT_COLUMNS)


def predict(model, texts: pl.Series, text_col: str) -> pl.DataFrame:
    """Model outputs for each text, in input order; empty or null texts get null predictions."""
    if texts.is_empty():
        return pl.DataFrame(schema={c: EMPTY_SCHEMA[c] for c in output_columns(model)})
    frame = pd.DataFrame({text_col: texts.fill_null("").to_list()})
    out = model.predict(frame)
    scored = pl.DataFrame(
        {
            "predicted_label": pl.Series(
                [None if pd.isna(v) else v for v in out["predicted_label"]], dtype=pl.String
            ),
            "probability": pl.Series(out["probability"].tolist(), dtype=pl.Float64).fill_nan(None),
            "top_labels": pl.Series(out["top_labels"].tolist(), dtype=pl.List(pl.String)),
            "top_probs": pl.Series(out["top_probs"].tolist(), dtype=pl.List(pl.Float64)),
        }
    ).select(OUTPUT_COLUMNS)
    if POSITIVE_COLUMN not in out.columns:
        return scored
    positive = pl.Series(POSITIVE_COLUMN, out[POSITIVE_COLUMN].tolist(), dtype=pl.Float64).fill_nan(None)
    return scored.with_columns(positive)


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
