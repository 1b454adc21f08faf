"""Prediction partitions: scored rows with model lineage for `ds=YYYY-MM-DD`, and a bounded uniform sample
of a day scored in chunks (what its drift report is computed on)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
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


class RowSample:
    """A uniform sample of at most `size` of the rows seen so far, over frames given one at a time:
    each row draws a random key and the `size` smallest keys stay (so memory is bounded by `size`)."""

    KEY = "__sample_key"

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seen, self._kept = size, 0, None
        self._rng = np.random.default_rng(seed)

    def add(self, frame: pl.DataFrame) -> None:
        keyed = frame.with_columns(pl.Series(self.KEY, self._rng.random(frame.height)))
        kept = keyed if self._kept is None else pl.concat([self._kept, keyed])
        self._kept = kept if kept.height <= self.size else kept.sort(self.KEY).head(self.size)
        self.seen += frame.height

    @property
    def frame(self) -> pl.DataFrame | None:
        return None if self._kept is None else self._kept.drop(self.KEY)
