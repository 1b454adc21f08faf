"""MLflow pyfunc for the price forecaster: daily bars in, one next-close forecast per ticker out.

It carries the weights, the model config and the training-period scaler, so scoring needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from models import packaging
from models.packaging import load_weights, read_json
from models.prices.rnn import RNNRegressor, RNNRegressorConfig
from pipeline.prices.features import BARS, decode_target, scale_inputs

INPUT_COLUMNS = ["ticker", "date", *BARS]
OUTPUT_COLUMNS = ["ticker", "as_of_date", "history_days", "last_close", "forecast_close", "status"]


class PriceForecasterPyfunc(mlflow.pyfunc.PythonModel):
    """Input: bars (ticker, date, open, high, low, close, volume). Output: one row per ticker."""

    def load_context(self, context) -> None:
        self.load(read_json(context, "spec"), load_weights(context))
        has_reference = "drift_reference" in context.artifacts  # not: packaged before drift reports
        self.drift_reference = read_json(context, "drift_reference") if has_reference else None

    def load(self, spec: dict, state: dict) -> None:
        self.lookback, self.scaler = int(spec["lookback"]), spec["scaler"]
        self.model = RNNRegressor(RNNRegressorConfig(**spec["model"]))
        self.model.load_state_dict(state)
        self.model.eval()

    @torch.inference_mode()
    def forecast_windows(self, raw: np.ndarray) -> np.ndarray:
        """Raw bars (N, L, 5), L >= lookback -> forecast close (N,) from each window's last lookback days."""
        raw = raw[:, -self.lookback :]
        x = torch.from_numpy(scale_inputs(raw, self.scaler))  # (N, L, F)
        lengths = torch.full((len(raw),), self.lookback, dtype=torch.long)
        y, _ = self.model(x, lengths)  # (N,) scaled
        y = y.double().numpy() * self.scaler["y_std"] + self.scaler["y_mean"]
        return decode_target(raw, y, self.scaler["target"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        bars = model_input.assign(date=pd.to_datetime(model_input["date"])).sort_values(["ticker", "date"])
        rows, windows = [], []
        for ticker, part in bars.groupby("ticker", sort=True):
            last = part.tail(self.lookback)
            ok = len(part) >= self.lookback
            rows.append(
                {
                    "ticker": str(ticker),
                    "as_of_date": last["date"].iloc[-1].date().isoformat(),
                    "history_days": len(part),
                    "last_close": float(last["close"].iloc[-1]),
                    "forecast_close": np.nan,
                    "status": "ok" if ok else f"insufficient_history: {len(part)} of {self.lookback} days",
                }
            )
            if ok:
                windows.append((len(rows) - 1, last[list(BARS)].to_numpy(dtype=np.float64)))
        out = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
        if windows:
            forecast = self.forecast_windows(np.stack([w for _, w in windows]))
            out.loc[[i for i, _ in windows], "forecast_close"] = forecast
        return out


def signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema(
            [ColSpec("string", "ticker"), ColSpec("string", "date")] + [ColSpec("double", c) for c in BARS]
        ),
        outputs=Schema(
            [
                ColSpec("string", "ticker"),
                ColSpec("string", "as_of_date"),
                ColSpec("long", "history_days"),
                ColSpec("double", "last_close"),
                ColSpec("double", "forecast_close"),
                ColSpec("string", "status"),
            ]
        ),
    )


ENTRY = Path(__file__).with_name("rnnflow_price_model.py")  # the models-from-code file MLflow stores
packaging.register_entry("prices", ENTRY, PriceForecasterPyfunc)
