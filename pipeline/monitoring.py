"""The drift reports of a range of scored partitions as one long table (ds, metric, value, verdict),
for `rnnflow drift` and anyone who wants the trend."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from pipeline import storage
from pipeline.layout import Layout
from pipeline.predictions import parse_ds

SCHEMA = {
    "ds": pl.Date,
    "metric": pl.String,
    "value": pl.Float64,
    "warn": pl.Float64,
    "alert": pl.Float64,
    "verdict": pl.String,
    "day_verdict": pl.String,
    "rows": pl.Int64,
    "model_version": pl.Int64,
}


def history(layout: Layout, start: str, end: str) -> pl.DataFrame:
    """One row per (day, metric) of every partition with a drift report from start to end (inclusive)."""
    first, last = date.fromisoformat(parse_ds(start)), date.fromisoformat(parse_ds(end))
    if last < first:
        raise ValueError(f"--end {end!r} is before --start {start!r}")
    rows = []
    for offset in range((last - first).days + 1):
        ds = first + timedelta(days=offset)
        report = storage.read_drift(layout, ds.isoformat())
        if report is None:
            continue
        for name, m in report.get("metrics", {}).items():
            rows.append(
                {
                    "ds": ds,
                    "metric": name,
                    "value": m["value"],
                    "warn": m["warn"],
                    "alert": m["alert"],
                    "verdict": m["verdict"],
                    "day_verdict": report["verdict"],
                    "rows": report["rows"],
                    "model_version": report.get("model_version"),
                }
            )
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def wide(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per day, one column per metric (value, with its verdict when not ok)."""
    if frame.is_empty():
        return frame
    shown = frame.with_columns(
        pl.when(pl.col("verdict").is_in(["ok", "n/a"]))
        .then(pl.col("value").round(4).cast(pl.String))
        .otherwise(pl.col("value").round(4).cast(pl.String) + " " + pl.col("verdict"))
        .alias("shown")
    )
    days = shown.select("ds", "day_verdict", "rows", "model_version").unique("ds").sort("ds")
    return days.join(shown.pivot("metric", index="ds", values="shown"), on="ds").sort("ds")
