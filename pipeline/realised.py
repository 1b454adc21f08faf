"""Realised performance's data: each scored day's predictions (served and shadow) joined with the labels
known so far; the metrics per day and version are models/realised.py's."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from pipeline import labels, objectstore
from pipeline.kinds import Kind
from pipeline.layout import Layout


def day_rows(folder, kind: Kind, ds: str) -> pl.DataFrame | None:
    """A day's scored rows (predictions/ or shadow/), or None when the day has none."""
    part = objectstore.as_path(str(folder / f"ds={ds}"))
    if not (part.is_dir() and any(part.glob("*.parquet"))):
        return None
    return pl.read_parquet(str(part / "*.parquet")).with_columns(pl.lit(ds).alias("ds"))


def joined(layout: Layout, kind: Kind, start: str, end: str, folder=None) -> pl.DataFrame:
    """Every scored row of the days from start to end with its label (null: not known yet)."""
    key, label = labels.key_of(kind)
    known = labels.stored(layout)
    days = [(date.fromisoformat(start) + timedelta(n)).isoformat() for n in range(_span(start, end))]
    frames = [f for ds in days if (f := day_rows(folder or layout.predictions, kind, ds)) is not None]
    if not frames:
        return pl.DataFrame()
    scored = pl.concat(frames, how="diagonal_relaxed").with_columns(pl.col(key).cast(pl.String))
    truth = (
        known.select("ds", key, pl.col(label).alias("truth"))
        if known is not None
        else pl.DataFrame(
            schema={"ds": pl.String, key: pl.String, "truth": pl.Float64 if key == "ticker" else pl.String}
        )
    )
    return scored.join(truth, on=["ds", key], how="left")


def served_and_shadow(layout: Layout, kind: Kind, start: str, end: str) -> pl.DataFrame:
    """joined() of the served partitions and of the challenger's shadow ones, with a `role` column."""
    served = joined(layout, kind, start, end)
    served = served.with_columns(pl.lit("served").alias("role")) if not served.is_empty() else served
    shadow = joined(layout, kind, start, end, folder=layout.shadow)
    if not shadow.is_empty():
        shadow = shadow.with_columns(pl.lit("shadow").alias("role"))
        served = pl.concat([served, shadow], how="diagonal_relaxed") if not served.is_empty() else shadow
    return served


def _span(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
