"""Price features: per-ticker windows of `lookback` days -> next close, split by date with no window
crossing a boundary, and a scaler fitted on the training period only (stored in the manifest).

A window's inputs are OHLC relative to its first close and log volume relative to its first volume,
so one model serves every ticker whatever its price level.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np
import polars as pl

from pipeline import storage
from pipeline.kinds import PriceKind
from pipeline.layout import Layout
from pipeline.splits import DEFAULT_RATIOS, SPLITS, check_ratios

log = logging.getLogger("rnnflow.features")
BARS = ("open", "high", "low", "close", "volume")  # per-day inputs, in this order
CLOSE = BARS.index("close")
TARGETS = ("close", "log_return")


@dataclass(frozen=True)
class PriceFeatureConfig:
    lookback: int = PriceKind.lookback  # trading days per input window (the kind's default)
    target: str = (
        PriceKind.target
    )  # log(next / last close): 0 is persistence; "close": next / first close - 1
    split_ratios: tuple[float, float, float] = DEFAULT_RATIOS  # shares of the trading dates, in order

    @classmethod
    def for_kind(
        cls, kind: PriceKind, lookback=None, target=None, split_ratios=None, **_text
    ) -> PriceFeatureConfig:
        """The kind's defaults (lookback, target), with any given setting on top (text settings ignored)."""
        ratios = tuple(split_ratios) if split_ratios is not None else cls.split_ratios
        return cls(lookback=lookback or kind.lookback, target=target or kind.target, split_ratios=ratios)

    def __post_init__(self) -> None:
        if self.lookback < 2:
            raise ValueError(f"lookback (--lookback) must be >= 2 trading days, got {self.lookback}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        check_ratios(tuple(self.split_ratios))


# ---------------------------------------------------------------- window maths (shared with the pyfunc)


def window_inputs(raw: np.ndarray) -> np.ndarray:
    """Raw bars (N, L, 5) -> model inputs (N, L, 5): prices / first close - 1, log1p(volume) - first."""
    first_close = raw[:, :1, CLOSE : CLOSE + 1]  # (N, 1, 1)
    prices = raw[:, :, :4] / first_close - 1.0
    volume = np.log1p(raw[:, :, 4:5]) - np.log1p(raw[:, :1, 4:5])
    return np.concatenate([prices, volume], axis=2)


def encode_target(raw: np.ndarray, next_close: np.ndarray, target: str) -> np.ndarray:
    if target == "close":
        return next_close / raw[:, 0, CLOSE] - 1.0
    return np.log(next_close / raw[:, -1, CLOSE])


def decode_target(raw: np.ndarray, y: np.ndarray, target: str) -> np.ndarray:
    """Model output (unscaled) -> forecast close in price units."""
    if target == "close":
        return raw[:, 0, CLOSE] * (1.0 + y)
    return raw[:, -1, CLOSE] * np.exp(y)


def fit_scaler(raw: np.ndarray, next_close: np.ndarray, target: str) -> dict:
    """Mean/std of inputs per feature and of the target, from training windows only."""
    x = window_inputs(raw).reshape(-1, len(BARS))
    y = encode_target(raw, next_close, target)
    return {
        "x_mean": x.mean(axis=0).tolist(),
        "x_std": np.maximum(x.std(axis=0), 1e-8).tolist(),
        "y_mean": float(y.mean()),
        "y_std": float(max(y.std(), 1e-8)),
        "target": target,
    }


def scale_inputs(raw: np.ndarray, scaler: dict) -> np.ndarray:
    x = (window_inputs(raw) - np.array(scaler["x_mean"])) / np.array(scaler["x_std"])
    return x.astype(np.float32)


# ---------------------------------------------------------------- build


def load_bars(layout: Layout) -> pl.DataFrame:
    """Every ingested bar, the first ingested copy of each (ticker, date), in ticker/date order."""
    return storage.read_bronze(layout, ["ticker", "date"], ["ticker", "date", *BARS]).sort("ticker", "date")


def split_dates(dates: pl.Series, ratios: tuple[float, float, float]) -> tuple[date, date]:
    """First date of val and of test: cut the distinct trading dates (all tickers) in order."""
    unique = dates.unique().sort()
    if unique.len() < 3:
        raise ValueError(f"prices: need at least 3 trading dates to split, found {unique.len()}")
    n = unique.len()
    val_at = min(max(int(n * ratios[0]), 1), n - 2)
    test_at = min(max(int(n * (ratios[0] + ratios[1])), val_at + 1), n - 1)
    return unique[val_at], unique[test_at]


def make_windows(bars: pl.DataFrame, lookback: int, val_start: date, test_start: date) -> pl.DataFrame:
    """Every window of `lookback` days whose inputs and target day lie in one split (by target date).

    Per ticker, the target is row t and the inputs rows t-lookback .. t-1; `window` lists their bars
    day by day. A window whose first input day is in another split would cross a boundary: dropped.
    """
    split = (
        pl.when(pl.col("date") < val_start)
        .then(pl.lit("train"))
        .when(pl.col("date") < test_start)
        .then(pl.lit("val"))
        .otherwise(pl.lit("test"))
    )
    back = lambda expr, k: expr.shift(k).over("ticker")  # noqa: E731  (k days before, same ticker)
    window = [back(pl.col(c), lookback - day).cast(pl.Float64) for day in range(lookback) for c in BARS]
    return (
        bars.lazy()
        .sort("ticker", "date")
        .with_columns(split.alias("split"))
        .select(
            "ticker",
            back(pl.col("date"), lookback).alias("start_date"),  # first input day
            back(pl.col("date"), 1).alias("as_of_date"),  # last input day
            pl.col("date").alias("target_date"),
            "split",
            back(pl.col("split"), lookback).alias("start_split"),
            pl.concat_list(window).alias("window"),
            back(pl.col("close"), 1).alias("last_close"),
            pl.col("close").alias("target_close"),
        )
        .filter(pl.col("start_split") == pl.col("split"))  # also drops the first `lookback` rows
        .drop("start_split")
        .collect()
    )


def window_arrays(frame: pl.DataFrame, lookback: int) -> np.ndarray:
    """`window` lists -> raw bars (N, lookback, 5)."""
    flat = frame["window"].explode().to_numpy().astype(np.float64)
    return flat.reshape(frame.height, lookback, len(BARS))


@storage.one_build_at_a_time
def build_price_features(kind: PriceKind, layout: Layout, cfg: PriceFeatureConfig | None = None) -> dict:
    """Writes features/prices/<version>/ (window shards + manifest with scaler) and moves LATEST."""
    cfg = cfg or PriceFeatureConfig(lookback=kind.lookback, target=kind.target)
    batches = storage.bronze_batches(layout)
    bars = load_bars(layout)
    val_start, test_start = split_dates(bars["date"], cfg.split_ratios)
    windows = make_windows(bars, cfg.lookback, val_start, test_start)
    train = windows.filter(pl.col("split") == "train")
    if train.is_empty():
        raise ValueError(
            f"prices: no training windows (lookback {cfg.lookback}, training period before {val_start}); "
            "ingest more history or lower --lookback"
        )
    scaler = fit_scaler(window_arrays(train, cfg.lookback), train["target_close"].to_numpy(), cfg.target)

    data_hash = storage.fingerprint(bars)
    version, out, created = storage.new_feature_version(layout, data_hash)
    files = []
    for split in SPLITS:
        part = windows.filter(pl.col("split") == split).drop("split")
        name = f"shards/split={split}/bucket=000.parquet"  # one length: one bucket
        storage.write_shard(part, out / name)
        files.append(name)
    per_ticker = bars.group_by("ticker").agg(
        pl.len().alias("days"), pl.col("date").min().alias("first"), pl.col("date").max().alias("last")
    )
    counts = windows.group_by("ticker", "split").len()
    tickers = {}
    for ticker, days, first, last in per_ticker.sort("ticker").iter_rows():
        mine = dict(counts.filter(pl.col("ticker") == ticker).select("split", "len").iter_rows())
        tickers[ticker] = {
            "days": days,
            "first": str(first),
            "last": str(last),
            "windows": {s: int(mine.get(s, 0)) for s in SPLITS},
        }
    manifest = {
        "kind": kind.name,
        "family": kind.family,
        "version": version,
        "created_at": created.isoformat(),
        "dataset_fingerprint": data_hash,
        "config": asdict(cfg),
        "lookback": cfg.lookback,
        "inputs": list(BARS),
        "split_dates": {"val_start": str(val_start), "test_start": str(test_start)},
        "scaler": scaler,
        "rows": {s: int(windows.filter(pl.col("split") == s).height) for s in SPLITS},
        "tickers": tickers,
        "tickers_too_short": sorted(t for t, v in tickers.items() if v["days"] <= cfg.lookback),
        "files": files,
        "bronze_batches": batches,
    }
    manifest = storage.publish_features(layout, manifest)  # shards first, then LATEST
    log.info(
        "features %s: %s windows of %d days %s; val from %s, test from %s",
        version,
        f"{windows.height:,}",
        cfg.lookback,
        manifest["rows"],
        val_start,
        test_start,
    )
    if manifest["tickers_too_short"]:
        short = manifest["tickers_too_short"]
        shown = [t if len(t) <= 20 else t[:20] + "..." for t in short[:20]]
        log.warning("%d ticker(s) with too little history for one window: %s", len(short), shown)
    return manifest


def load_windows(folder, manifest: dict, split: str) -> pl.DataFrame:
    names = storage.split_files(folder, manifest, split)
    return pl.concat([storage.read_shard(n) for n in names]) if names else pl.DataFrame()
