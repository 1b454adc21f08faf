"""Drift statistics in plain numpy: quantile bins fitted at training, PSI, total-variation distance,
the two-sample KS statistic, and each metric's verdict (ok / warn / alert) against its thresholds."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

VERDICTS = ("ok", "warn", "alert", "n/a")  # n/a: too few rows, or no reference in the model
EPS = 1e-4  # an empty bin's share, so PSI stays finite
MIN_ROWS = 20  # fewer scored rows than this give n/a, not a verdict

# (warn, alert) per metric; a kind overrides some (pipeline/kinds.py), a run may override any.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "length_psi": (0.1, 0.25),  # the usual PSI reading: < 0.1 stable, > 0.25 shifted
    "oov_psi": (0.1, 0.25),
    "probability_psi": (0.1, 0.25),
    "label_tvd": (0.1, 0.2),  # share of predictions that would have to change label
    "token_tvd": (0.15, 0.3),  # the top-token profile
    "returns_ks": (0.2, 0.35),
    "volume_ks": (0.2, 0.35),
    "forecast_ks": (0.3, 0.5),
    "max_abs_return_ratio": (1.0, 2.0),  # the day's largest |return| over training's largest
}


def quantile_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    """Inner bin edges at the training values' quantiles (duplicates merged: lengths are integers)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return []
    inner = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return sorted({float(x) for x in inner})


def shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Share of values in each of len(edges)+1 bins: (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [0.0] * (len(edges) + 1)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return (counts / values.size).tolist()


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index between two binned distributions."""
    e = np.clip(np.asarray(expected, dtype=np.float64), EPS, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def tvd(expected: Mapping[str, float], actual: Mapping[str, float]) -> float:
    """Total-variation distance between two categorical distributions (0: same, 1: disjoint)."""
    keys = set(expected) | set(actual)
    return 0.5 * float(sum(abs(expected.get(k, 0.0) - actual.get(k, 0.0)) for k in keys))


def ks(reference: np.ndarray, sample: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a = np.sort(np.asarray(reference, dtype=np.float64)[np.isfinite(reference)])
    b = np.sort(np.asarray(sample, dtype=np.float64)[np.isfinite(sample)])
    if a.size == 0 or b.size == 0:
        return float("nan")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def sample(values: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    """A reproducible subsample (sorted) of finite values, small enough to ship inside a model."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size > n:
        values = np.random.default_rng(seed).choice(values, n, replace=False)
    return np.sort(values).round(8).tolist()


def verdict(value: float | None, limits: tuple[float, float]) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    warn, alert = limits
    return "alert" if value > alert else "warn" if value > warn else "ok"


def thresholds(kind_overrides: Mapping | None = None, run_overrides: Mapping | None = None) -> dict:
    """The defaults, then the kind's, then the run's (e.g. {"length_psi": [0.2, 0.4]})."""
    merged = dict(THRESHOLDS)
    for overrides in (kind_overrides or {}, run_overrides or {}):
        for name, limits in overrides.items():
            if name not in THRESHOLDS:
                raise ValueError(f"drift threshold {name!r}: unknown; choose from {sorted(THRESHOLDS)}")
            warn, alert = (float(x) for x in limits)
            if not 0 <= warn <= alert:
                raise ValueError(f"drift threshold {name!r}: need 0 <= warn <= alert, got {limits}")
            merged[name] = (warn, alert)
    return merged


def report(metrics: dict[str, float | None], limits: dict, rows: int, extra: dict | None = None) -> dict:
    """Each metric with its value, thresholds and verdict; the worst verdict is the report's."""
    entries = {}
    for name, value in metrics.items():
        shown = None if value is None or not np.isfinite(value) else round(float(value), 6)
        judged = "n/a" if rows < MIN_ROWS and name != "max_abs_return_ratio" else verdict(value, limits[name])
        entries[name] = {"value": shown, "warn": limits[name][0], "alert": limits[name][1], "verdict": judged}
    judged = [e["verdict"] for e in entries.values() if e["verdict"] != "n/a"]
    worst = max(judged, key=VERDICTS.index) if judged else "n/a"
    return {"verdict": worst, "rows": rows, "metrics": entries, **(extra or {})}
