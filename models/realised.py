"""Realised performance per day, model version and role (served or shadow), from pipeline/realised.py's
joined rows. Text: rows labelled, accuracy (Wilson 95% interval) and macro-F1; prices: RMSE of the
forecast and of persistence (bootstrap 95% interval) and directional accuracy (Wilson)."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.metrics import classification_metrics, wilson_interval
from pipeline.kinds import Kind


def rmse_interval(errors: np.ndarray, seed: int = 0, draws: int = 500) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(errors), size=(draws, len(errors)))  # (draws, N) resampled rows
    values = np.sqrt((errors[picks] ** 2).mean(axis=1))
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


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
    if labelled.is_empty():
        return {"accuracy": None, "accuracy_ci95_low": None, "accuracy_ci95_high": None, "macro_f1": None}
    classes = sorted(set(labelled["truth"]) | set(labelled["predicted_label"]))
    code = {label: i for i, label in enumerate(classes)}
    truth = labelled["truth"].replace_strict(code, return_dtype=pl.Int64).to_numpy()
    predicted = labelled["predicted_label"].replace_strict(code, return_dtype=pl.Int64).to_numpy()
    scores = classification_metrics(truth, predicted, len(classes))
    low, high = wilson_interval(scores["accuracy"], len(truth))
    return {"accuracy": scores["accuracy"], "accuracy_ci95_low": low, "accuracy_ci95_high": high} | {
        "macro_f1": scores["macro_f1"]
    }


def price_metrics(labelled: pl.DataFrame) -> dict:
    labelled = labelled.filter(pl.col("forecast_close").is_not_null())
    if labelled.is_empty():
        return {"rmse": None, "rmse_ci95_low": None, "rmse_ci95_high": None, "persistence_rmse": None}
    truth, forecast = labelled["truth"].to_numpy(), labelled["forecast_close"].to_numpy()
    last = labelled["last_close"].to_numpy()
    errors = forecast - truth
    low, high = rmse_interval(errors)
    right = int(((forecast - last) * (truth - last) > 0).sum())
    d_low, d_high = wilson_interval(right / len(truth), len(truth))
    return {
        "rmse": float(np.sqrt((errors**2).mean())),
        "rmse_ci95_low": low,
        "rmse_ci95_high": high,
        "persistence_rmse": float(np.sqrt(((last - truth) ** 2).mean())),
        "directional_accuracy": right / len(truth),
        "directional_ci95_low": d_low,
        "directional_ci95_high": d_high,
    }
