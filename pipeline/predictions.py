"""Prediction partitions: assemble scored rows with model lineage, replace `ds=YYYY-MM-DD` atomically."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl


def parse_ds(ds: str | date) -> str:
    """Validate a partition date; returns it as YYYY-MM-DD."""
    if isinstance(ds, date):
        return ds.isoformat()
    try:
        return date.fromisoformat(str(ds)).isoformat()
    except ValueError:
        raise ValueError(f"ds {ds!r} is not a date; expected YYYY-MM-DD, e.g. 2026-11-01") from None


def assemble(
    inputs: pl.DataFrame,
    scored: pl.DataFrame,
    text_col: str,
    model_name: str,
    model_version: int,
    run_id: str,
    scored_at: datetime,
) -> pl.DataFrame:
    """Input rows (id if given, text) + model outputs + lineage, one output row per input row."""
    if inputs.height != scored.height:
        raise ValueError(f"model returned {scored.height} rows for {inputs.height} inputs")
    return with_lineage(
        pl.concat([inputs, scored], how="horizontal"), model_name, model_version, run_id, scored_at
    )


def with_lineage(
    frame: pl.DataFrame, model_name: str, model_version: int, run_id: str, scored_at: datetime
) -> pl.DataFrame:
    """The model's name, version and run on every row, and when it scored them."""
    return frame.with_columns(
        pl.lit(model_name).alias("model_name"),
        pl.lit(model_version, dtype=pl.Int32).alias("model_version"),
        pl.lit(run_id).alias("model_run_id"),
        pl.lit(scored_at).cast(pl.Datetime("us", "UTC")).alias("scored_at"),
    )
