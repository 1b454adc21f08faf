"""Realised performance: each scored day's predictions joined with the labels known so far, per day and
model version. Text: rows labelled, accuracy (Wilson 95% interval) and macro-F1; prices: RMSE of the
forecast and of persistence (bootstrap 95% interval) and directional accuracy."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl

from pipeline import labels, objectstore
from pipeline.kinds import Kind
from pipeline.layout import Layout

Z95 = 1.959964


def wilson(hits: int, n: int) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p, z2 = hits / n, Z95**2
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return centre - half / (1 + z2 / n), centre + half / (1 + z2 / n)


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    scores = []
    for label in sorted(set(truth) | set(predicted)):
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores)) if scores else float("nan")


def rmse_interval(errors: np.ndarray, seed: int = 0, draws: int = 500) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(errors), size=(draws, len(errors)))
    values = np.sqrt((errors[picks] ** 2).mean(axis=1))
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


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


def per_day(rows: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """One row per (ds, model_version): what is known so far of how that version did that day."""
    out = []
    if rows.is_empty():
        return pl.DataFrame()
    if "role" not in rows.columns:
        rows = rows.with_columns(pl.lit("served").alias("role"))
    for (ds, version, role), part in rows.group_by(["ds", "model_version", "role"], maintain_order=True):
        labelled = part.filter(pl.col("truth").is_not_null())
        row = {"ds": ds, "model_version": version, "role": role, "rows_scored": part.height}
        row["rows_labelled"] = labelled.height
        if kind.family == "prices":
            row |= price_metrics(labelled)
        else:
            row |= text_metrics(labelled)
        out.append(row)
    return pl.DataFrame(out).sort("ds", "model_version", "role")


def text_metrics(labelled: pl.DataFrame) -> dict:
    truth, predicted = labelled["truth"].to_list(), labelled["predicted_label"].to_list()
    hits = sum(t == p for t, p in zip(truth, predicted, strict=True))
    low, high = wilson(hits, len(truth))
    accuracy = hits / len(truth) if truth else None
    f1 = macro_f1(truth, predicted) if truth else None
    return {"accuracy": accuracy, "accuracy_ci95_low": low, "accuracy_ci95_high": high, "macro_f1": f1}


def price_metrics(labelled: pl.DataFrame) -> dict:
    labelled = labelled.filter(pl.col("forecast_close").is_not_null())
    if labelled.is_empty():
        return {"rmse": None, "rmse_ci95_low": None, "rmse_ci95_high": None, "persistence_rmse": None}
    truth, forecast = labelled["truth"].to_numpy(), labelled["forecast_close"].to_numpy()
    last = labelled["last_close"].to_numpy()
    errors = forecast - truth
    low, high = rmse_interval(errors)
    right = int(((forecast - last) * (truth - last) > 0).sum())
    d_low, d_high = wilson(right, len(truth))
    return {
        "rmse": float(np.sqrt((errors**2).mean())),
        "rmse_ci95_low": low,
        "rmse_ci95_high": high,
        "persistence_rmse": float(np.sqrt(((last - truth) ** 2).mean())),
        "directional_accuracy": right / len(truth),
        "directional_ci95_low": d_low,
        "directional_ci95_high": d_high,
    }
