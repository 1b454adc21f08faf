"""The prices family's training job: dated windows -> LSTM -> test metrics beside persistence; the steps
of models.job.Job."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import torch

from models import packaging, plots, tracking
from models.batching import BucketBatches
from models.config import check_model_options
from models.job import Job, run
from models.metrics import compared, diebold_mariano, regression_metrics, wilson_interval
from models.packaging import log_pyfunc
from models.prices.pyfunc import ENTRY, INPUT_COLUMNS, signature
from models.prices.rnn import RNNRegressor, RNNRegressorConfig
from models.run_scope import Launch, Scope
from models.train import FitResult, Objective, TrainConfig, fit
from pipeline.kinds import PriceKind
from pipeline.layout import Layout
from pipeline.prices import profile
from pipeline.prices.features import (
    BARS,
    decode_target,
    encode_target,
    load_windows,
    scale_inputs,
    window_arrays,
)
from pipeline.prices.rules import safe_name
from pipeline.splits import SPLITS

log = logging.getLogger("rnnflow.job")
EVAL_BATCH = 1024


@dataclass
class PriceTrainReport(tracking.RegisteredRun):
    best_val_rmse: float
    persistence_val_rmse: float  # the reference the champion gate holds the model to
    test: dict  # rmse, mae, mape, directional_accuracy of the model
    persistence: dict  # the same for tomorrow's close = today's, on the same windows
    always_up_directional_accuracy: float  # share of test days that closed up: the "always up" guess
    test_windows: int
    verdict: str  # against persistence, on test RMSE, with the Diebold-Mariano p-value
    dm_p_value: float
    best_epoch: int
    epochs_run: int
    device: str
    samples_per_s: float


class Windows:
    """One split: raw bars (N, L, 5), scaled model inputs/targets, and what metrics need."""

    def __init__(self, frame: pl.DataFrame, lookback: int, scaler: dict) -> None:
        self.frame, self.scaler = frame, scaler
        self.raw = window_arrays(frame, lookback) if frame.height else np.zeros((0, lookback, len(BARS)))
        self.actual = frame["target_close"].to_numpy() if frame.height else np.zeros(0)
        self.last = frame["last_close"].to_numpy() if frame.height else np.zeros(0)
        y = encode_target(self.raw, self.actual, scaler["target"])
        self.bucket = {
            "tokens": scale_inputs(self.raw, scaler),  # (N, L, F) float32
            "lengths": np.full(len(self.raw), lookback, dtype=np.int64),
            "labels": ((y - scaler["y_mean"]) / scaler["y_std"]).astype(np.float32),
        }

    def batches(self, batch_size: int, shuffle: bool, seed: int = 0) -> BucketBatches:
        return BucketBatches([self.bucket], batch_size, shuffle, seed)

    @torch.inference_mode()
    def forecast(self, model: RNNRegressor, device: torch.device) -> tuple[np.ndarray, float]:
        """Forecast close (N,) in price units, in row order, and the mean scaled loss."""
        model.eval()
        preds, loss_sum = [], 0.0
        for x, lengths, y in self.batches(EVAL_BATCH, shuffle=False).epoch(0):
            pred, loss = model(x.to(device), lengths.to(device), y.to(device))
            preds.append(pred.double().cpu())
            loss_sum += float(loss) * len(y)
        scaled = torch.cat(preds).numpy() if preds else np.zeros(0)
        y = scaled * self.scaler["y_std"] + self.scaler["y_mean"]
        return decode_target(self.raw, y, self.scaler["target"]), loss_sum / max(len(self.raw), 1)


def rmse_objective(val: Windows) -> Objective:
    def evaluate(model, _batches, device) -> dict[str, float]:
        forecast, loss = val.forecast(model, device)
        return {"val_loss": loss, "val_rmse": regression_metrics(val.actual, forecast, val.last)["rmse"]}

    return Objective("val_rmse", higher_is_better=False, evaluate=evaluate)


def train_price_forecaster(
    kind: PriceKind,
    layout: Layout,
    cfg: TrainConfig,
    model_options: dict | None = None,
    launch: Launch | None = None,
) -> PriceTrainReport | None:
    """-> the report on rank 0 (or without DDP); None on the other ranks."""
    return run(PriceJob(kind, layout, cfg, model_options, launch))


class PriceJob(Job):
    champion_metric = "best_val_rmse"
    higher_is_better = False

    def prepare(self, folder: Path, manifest: dict) -> None:
        self.lookback, self.scaler = manifest["lookback"], manifest["scaler"]
        self.train, self.val, self.test = (
            Windows(load_windows(folder, manifest, s), self.lookback, self.scaler) for s in SPLITS
        )
        if len(self.val.raw) == 0:
            raise ValueError(
                f"prices: features {manifest['version']} hold no validation windows; "
                "ingest more history or lower --lookback"
            )
        self.model_cfg = RNNRegressorConfig(
            input_size=len(BARS), **check_model_options("prices", self.options)
        )
        self.model = RNNRegressor(self.model_cfg)
        self.train_rows = len(self.train.raw)

    def split_frames(self) -> dict:
        return {
            s: (w.frame, "target_close")
            for s, w in zip(SPLITS, (self.train, self.val, self.test), strict=True)
        }

    def describe(self) -> str:
        return (
            f"training prices on {self.device}: {len(self.train.raw):,} / {len(self.val.raw):,} / "
            f"{len(self.test.raw):,} train/val/test windows of {self.lookback} days, "
            f"target {self.scaler['target']}"
        )

    def params(self) -> dict:
        return {"lookback": self.lookback, "target": self.scaler["target"], **self.manifest["split_dates"]}

    def fit(self, scope: Scope) -> FitResult:
        cfg = self.cfg
        return fit(
            self.model,
            self.train.batches(cfg.batch_size, shuffle=True, seed=cfg.seed),
            self.val.batches(EVAL_BATCH, shuffle=False),
            cfg,
            rmse_objective(self.val),
            **self.loop_options(scope),
        )

    def evaluate(self, result: FitResult) -> dict:
        test, val = self.test, self.val
        self.forecast, _ = test.forecast(self.model, self.device)
        self.ours = regression_metrics(test.actual, self.forecast, test.last)
        # persistence never moves, so its direction means nothing: always-up is the directional baseline
        self.naive = regression_metrics(test.actual, test.last, test.last)
        del self.naive["directional_accuracy"]
        self.naive_val = regression_metrics(val.actual, val.last, val.last)["rmse"]
        self.ours["directional_ci95"] = wilson_interval(self.ours["directional_accuracy"], len(test.actual))
        self.always_up = float(np.mean(test.actual > test.last)) if len(test.actual) else 0.0
        self.dm_p = diebold_mariano(test.actual, self.forecast, test.last)
        self.verdict = compared("RMSE", self.ours["rmse"], self.naive["rmse"], "persistence", self.dm_p, True)
        return (
            {f"test_{k}": v for k, v in self.ours.items() if not isinstance(v, tuple)}
            | {f"persistence_test_{k}": v for k, v in self.naive.items()}
            | {"persistence_val_rmse": self.naive_val, "test_dm_p_value_vs_persistence": self.dm_p}
            | {"always_up_test_directional_accuracy": self.always_up}
        )

    def log_model(self, work: Path, result: FitResult):
        spec = {
            "kind": self.kind.name,
            "model": self.model_cfg.to_dict(),
            "lookback": self.lookback,
            "scaler": self.scaler,
            "features_version": self.manifest["version"],
        }
        _log_reports(work, result.history, self.test, self.forecast, self.ours, self.naive, self.manifest)
        example = _example_bars(self.test, self.lookback)
        val_forecast, _ = self.val.forecast(self.model, torch.device("cpu"))  # run() moved it to the CPU
        reference = profile.build_reference(self.train.raw, val_forecast / self.val.last - 1)
        return log_pyfunc(
            work,
            ENTRY,
            self.model,
            spec,
            {},
            signature(),
            example,
            name=f"{self.model_cfg.cell}-forecaster",
            drift_reference=reference,
            params={f"model.{k}": v for k, v in self.model_cfg.to_dict().items()}
            | {"lookback": self.lookback, "target": self.scaler["target"]},
        )

    def rescore(self, version: int) -> float | None:
        return champion_rmse(self.kind, version, self.val)

    def reference(self) -> tuple | None:
        return ("persistence", self.naive_val) if self.cfg.reference else None

    def model_description(self) -> str:
        return model_description(self.kind, self.manifest)

    def headline(self) -> dict:
        return {
            "persistence_val_rmse": self.naive_val,
            "test_rmse": self.ours["rmse"],
            "persistence_test_rmse": self.naive["rmse"],
        }

    def report(self, common: dict, result: FitResult) -> PriceTrainReport:
        return PriceTrainReport(
            **common,
            best_val_rmse=result.best_value,
            persistence_val_rmse=self.naive_val,
            test=self.ours,
            persistence=self.naive,
            always_up_directional_accuracy=self.always_up,
            test_windows=len(self.test.raw),
            verdict=self.verdict,
            dm_p_value=self.dm_p,
        )


def model_description(kind: PriceKind, manifest: dict) -> str:
    dates = manifest["split_dates"]
    return "\n".join(
        [
            f"**{kind.model_name}**: daily OHLCV per ticker -> next trading day's close.",
            "",
            "- Data: bronze/prices/ bars, one per (ticker, date); bad bars are quarantined at ingest.",
            f"- Features: windows of {manifest['lookback']} trading days, prices relative to the window's "
            f"first close; split by date (val from {dates['val_start']}, test from {dates['test_start']}); "
            "scaler fitted on the training period only and packaged with the model.",
            "- Model: LSTM/GRU over the window -> linear head.",
            "- Metrics: best_val_rmse (picks the champion; lower is better); test RMSE, MAE, MAPE and "
            "directional accuracy beside the persistence forecast (tomorrow's close = today's).",
            "- Score: `rnnflow score prices --ds YYYY-MM-DD` (forecast per ticker from the bars up to ds), "
            f"or `mlflow.pyfunc.load_model('models:/{kind.model_name}@champion').predict(bars)`.",
        ]
    )


def champion_rmse(kind: PriceKind, version: int, val: Windows) -> float | None:
    """A registered version's RMSE on these validation windows (None: it cannot be loaded or applied)."""
    try:
        pyfunc = packaging.load(f"models:/{kind.model_name}/{version}").unwrap_python_model()
        if pyfunc.lookback > val.raw.shape[1]:
            raise ValueError(f"its lookback {pyfunc.lookback} exceeds these windows' {val.raw.shape[1]}")
        forecast = pyfunc.forecast_windows(val.raw)
    except Exception as err:  # an old or broken version must not block a new one
        log.warning("champion v%d could not be re-scored (%s); it will be replaced", version, err)
        return None
    return regression_metrics(val.actual, forecast, val.last)["rmse"]


def _example_bars(test: Windows, lookback: int) -> pd.DataFrame:
    """One real window as daily bars: the model's input example."""
    row = test.frame.row(0, named=True) if test.frame.height else None
    raw = test.raw[0] if row else np.ones((lookback, len(BARS)))
    dates = pd.bdate_range(end=row["as_of_date"] if row else "2013-01-02", periods=lookback)
    frame = pd.DataFrame(raw, columns=list(BARS))
    frame.insert(0, "date", [d.date().isoformat() for d in dates])
    frame.insert(0, "ticker", row["ticker"] if row else "DEMO")
    return frame[INPUT_COLUMNS]


def _log_reports(work, history, test: Windows, forecast, ours, naive, manifest) -> None:
    report = {"test": ours, "persistence": naive, "test_windows": len(test.raw), "per_ticker": {}}
    frame = test.frame.with_columns(pl.Series("forecast_close", forecast))
    for (ticker,), part in frame.sort("target_date").group_by("ticker", maintain_order=True):
        actual, last, fc = (part[c].to_numpy() for c in ("target_close", "last_close", "forecast_close"))
        report["per_ticker"][ticker] = {
            "model": regression_metrics(actual, fc, last),
            "persistence": regression_metrics(actual, last, last),
        }
        name = f"forecast_{safe_name(ticker)}.png"
        plots.forecast_vs_actual(ticker, part["target_date"].to_list(), actual, fc, last, work / name)
        mlflow.log_artifact(str(work / name), artifact_path="plots")
    (work / "regression_report.json").write_text(json.dumps(report, indent=2))
    (work / "features_manifest.json").write_text(json.dumps(manifest, indent=2))
    (work / "history.json").write_text(json.dumps(history, indent=2))
    plots.loss_curves(history, work / "loss_curves.png", metric="val_rmse")
    for name in ("regression_report.json", "features_manifest.json", "history.json"):
        mlflow.log_artifact(str(work / name), artifact_path="reports")
    mlflow.log_artifact(str(work / "loss_curves.png"), artifact_path="plots")
