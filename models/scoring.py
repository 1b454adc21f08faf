"""Batch scoring with a registered pyfunc: resolve the URI to a pinned version, load, predict."""

from __future__ import annotations

import logging

import mlflow
import pandas as pd
import polars as pl

from models import tracking
from models.packaging import OUTPUT_COLUMNS

log = logging.getLogger("rnnflow.score")
EMPTY_SCHEMA = {
    "predicted_label": pl.String,
    "probability": pl.Float64,
    "top_labels": pl.List(pl.String),
    "top_probs": pl.List(pl.Float64),
}


def load(uri: str):
    """-> (ResolvedModel, pyfunc model); the alias is resolved once, so every row gets one version."""
    resolved = tracking.resolve(uri)
    model = mlflow.pyfunc.load_model(resolved.uri)
    log.info("loaded %s (from %s), run %s", resolved.uri, uri, resolved.run_id)
    return resolved, model


def predict(model, texts: pl.Series, text_col: str) -> pl.DataFrame:
    """Model outputs for each text, in input order; empty or null texts get null predictions."""
    if texts.is_empty():
        return pl.DataFrame(schema=EMPTY_SCHEMA)
    frame = pd.DataFrame({text_col: texts.fill_null("").to_list()})
    out = model.predict(frame)
    return pl.DataFrame(
        {
            "predicted_label": pl.Series(
                [None if pd.isna(v) else v for v in out["predicted_label"]], dtype=pl.String
            ),
            "probability": pl.Series(out["probability"].tolist(), dtype=pl.Float64).fill_nan(None),
            "top_labels": pl.Series(out["top_labels"].tolist(), dtype=pl.List(pl.String)),
            "top_probs": pl.Series(out["top_probs"].tolist(), dtype=pl.List(pl.Float64)),
        }
    ).select(OUTPUT_COLUMNS)
