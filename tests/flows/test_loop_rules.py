"""The monitor's event rule: the latest labelled day below the kind's threshold emits realised.low."""

from __future__ import annotations

from flows.loop_flows import below_threshold
from models.config import MonitorSettings

DAYS = [
    {"ds": "2026-11-01", "model_version": 1, "rows_labelled": 50, "accuracy": 0.70},
    {"ds": "2026-11-02", "model_version": 1, "rows_labelled": 40, "accuracy": 0.55},
    {"ds": "2026-11-03", "model_version": 1, "rows_labelled": 0, "accuracy": None},
]


def test_the_latest_labelled_day_decides_and_no_threshold_means_no_event():
    assert below_threshold(DAYS, MonitorSettings()) is None
    low = below_threshold(DAYS, MonitorSettings(min_accuracy=0.6))
    assert low["ds"] == "2026-11-02" and low["threshold"] == "accuracy < 0.6"
    assert below_threshold(DAYS, MonitorSettings(min_accuracy=0.5)) is None


def test_prices_compare_their_rmse_with_persistence():
    day = [{"ds": "2026-11-01", "model_version": 1, "rows_labelled": 5, "rmse": 1.3, "persistence_rmse": 1.0}]
    assert below_threshold(day, MonitorSettings(max_rmse_ratio=1.5)) is None
    assert (
        "RMSE / persistence 1.300 > 1.2"
        in below_threshold(day, MonitorSettings(max_rmse_ratio=1.2))["threshold"]
    )
