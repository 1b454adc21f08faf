"""What a price model saw at training and what a scored day's recent bars look like: daily returns,
volume changes and the model's forecast returns; their drift is the day's report."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from pipeline import drift
from pipeline.prices.features import BARS

WINDOW = 20  # a scored day is judged on each ticker's last 20 bars up to it
CLOSE, VOLUME = BARS.index("close"), BARS.index("volume")


def window_changes(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bars (N, L, 5) -> every daily close return and log volume change inside the windows."""
    close, volume = raw[:, :, CLOSE], raw[:, :, VOLUME]
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = close[:, 1:] / close[:, :-1] - 1
        volumes = np.log(volume[:, 1:] / volume[:, :-1])
    return returns.ravel(), volumes.ravel()


def build_reference(train_raw: np.ndarray, forecast_returns: np.ndarray) -> dict:
    """Training windows' returns and volume changes, validation forecasts' returns (samples for KS)."""
    returns, volumes = window_changes(train_raw)
    finite = returns[np.isfinite(returns)]
    return {
        "family": "prices",
        "returns": drift.sample(returns),
        "max_abs_return": float(np.abs(finite).max()) if finite.size else None,
        "volume_changes": drift.sample(volumes),
        "forecast_returns": drift.sample(forecast_returns),
    }


def recent_changes(bars: pl.DataFrame, ds: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Each ticker's last WINDOW bars up to ds -> their daily returns, log volume changes, tickers."""
    day = date.fromisoformat(ds)
    recent = (  # 20 trading days fit in 45 calendar days: sort only those, not all history
        bars.filter(pl.col("date").is_between(day - timedelta(days=WINDOW * 9 // 4), day))
        .sort("ticker", "date")
        .group_by("ticker", maintain_order=True)
        .tail(WINDOW)
        .with_columns(
            (pl.col("close") / pl.col("close").shift(1) - 1).over("ticker").alias("ret"),
            (pl.col("volume") / pl.col("volume").shift(1)).log().over("ticker").alias("vol"),
        )
    )
    return (
        recent["ret"].drop_nulls().to_numpy(),
        recent["vol"].drop_nulls().to_numpy(),
        recent["ticker"].n_unique(),
    )


def compare(reference: dict, bars: pl.DataFrame, forecasts: pl.DataFrame, ds: str, limits: dict) -> dict:
    returns, volumes, tickers = recent_changes(bars, ds)
    finite = returns[np.isfinite(returns)]
    forecast = forecasts["forecast_return"].drop_nulls().drop_nans().to_numpy()
    largest = float(np.abs(finite).max()) if finite.size else None
    top = reference.get("max_abs_return")
    metrics = {
        "returns_ks": drift.ks(np.array(reference["returns"]), returns),
        "volume_ks": drift.ks(np.array(reference["volume_changes"]), volumes),
        # a handful of tickers is too few forecasts for KS to mean anything
        "forecast_ks": drift.ks(np.array(reference["forecast_returns"]), forecast)
        if forecast.size >= drift.MIN_ROWS
        else None,
        "max_abs_return_ratio": largest / top if largest is not None and top else None,
    }
    summary = {"tickers": tickers, "largest_abs_return": largest, "reference_max_abs_return": top}
    return drift.report(metrics, limits, len(returns), {"summary": summary})
