"""Prices end to end: ingest -> features -> train -> forecast partition, on real Prefect, MLflow, Parquet."""

from __future__ import annotations

import json
from datetime import date

import mlflow
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from flows.cli import main
from flows.kind_flows import features_flow, ingest_flow, train_flow
from flows.score_flows import score_flow
from tests.pipeline.test_prices import HEADER, bars, write_ticker_folder

TINY = {"hidden_size": 16}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prefect_api):
    """Three tickers with 120 days, one (NEW) with 3 days; two trainings (weak v1, then v2)."""
    base = tmp_path_factory.mktemp("prices")
    root, folder = base / "data", write_ticker_folder(base / "daily", ("AAA", "BBB", "CCC"), n=120)
    (folder / "NEW.csv").write_text("\n".join([HEADER, *bars(3, first=date(2020, 6, 1))]) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setenv("RNNFLOW_DATA_ROOT", str(root))
        ingested = ingest_flow("prices", [str(folder)], str(root))
        features = features_flow("prices", str(root), features={"lookback": 5})
        first = train_flow(
            "prices",
            str(root),
            train={"epochs": 1, "lr": 1e-4, "reference": False, "promote_to": "champion"},
            model=TINY,
        )
        second = train_flow(
            "prices",
            str(root),
            train={"epochs": 6, "lr": 3e-3, "reference": False, "promote_to": "champion"},
            model=TINY,
        )
        yield root, ingested, features, (first, second)


def test_training_logs_one_run_with_metrics_beside_persistence_and_plots(trained):
    root, ingested, features, (first, _) = trained
    assert ingested["rows_ok"] == 3 * 120 + 3
    assert features["tickers_too_short"] == ["NEW"]
    assert set(first["test"]) == {"rmse", "mae", "mape", "directional_accuracy", "directional_ci95"}
    low, high = first["test"]["directional_ci95"]
    assert 0 <= low <= first["test"]["directional_accuracy"] <= high <= 1
    assert first["persistence"]["rmse"] > 0 and first["test_windows"] > 0
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    client = MlflowClient()
    run = client.get_run(first["run_id"])
    assert {"best_val_rmse", "test_rmse", "persistence_test_rmse", "test_directional_accuracy"} <= set(
        run.data.metrics
    )
    plots = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert {"plots/forecast_AAA.png", "plots/forecast_BBB.png", "plots/forecast_CCC.png"} <= plots
    version = client.get_model_version("prices-next-close", str(first["version"]))
    assert version.tags["kind"] == "prices" and float(version.tags["best_val_rmse"]) > 0


def test_champion_is_the_lower_validation_rmse(trained):
    root, _, _, (first, second) = trained
    assert first["promoted"] and first["version"] == 1
    expected = 2 if second["best_val_rmse"] < first["best_val_rmse"] else 1  # lower is better
    assert second["champion_version"] == expected
    assert second["promoted"] == (expected == 2)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    alias = MlflowClient().get_model_version_by_alias("prices-next-close", "champion")
    assert int(alias.version) == expected


def test_score_forecasts_each_ticker_and_reports_short_history(trained):
    root = trained[0]
    report = score_flow("prices", None, "2020-04-15", data_root=str(root))
    frame = pl.read_parquet(report["path"])
    assert frame["ticker"].to_list() == ["AAA", "BBB", "CCC", "NEW"]
    ok = frame.filter(pl.col("status") == "ok")
    assert ok.height == 3 and ok["forecast_close"].null_count() == 0
    assert (ok["as_of_date"] <= date(2020, 4, 15)).all() and ok["history_days"].to_list() == [5, 5, 5]
    new = frame.filter(pl.col("ticker") == "NEW").row(0, named=True)
    assert new["forecast_close"] is None and new["status"].startswith("insufficient_history: 0 of 5")
    assert report["tickers_not_ok"] == {"NEW": new["status"]}
    assert frame["model_version"].unique().to_list() == [report["model_version"]]
    assert frame["model_name"].unique().to_list() == ["prices-next-close"]

    again = score_flow("prices", None, "2020-04-15", data_root=str(root))  # same ds: replaced
    assert pl.read_parquet(again["path"]).height == 4


def test_forecast_uses_only_bars_up_to_ds(trained):
    root = trained[0]
    late = pl.read_parquet(score_flow("prices", None, "2020-06-30", data_root=str(root))["path"])
    early = pl.read_parquet(score_flow("prices", None, "2020-03-02", data_root=str(root))["path"])
    assert (late.filter(pl.col("ticker") == "NEW")["status"].item()).startswith(
        "insufficient_history: 3 of 5"
    )
    assert early.filter(pl.col("ticker") == "AAA")["as_of_date"].item() <= date(2020, 3, 2)
    assert (
        early.filter(pl.col("ticker") == "AAA")["last_close"].item()
        != late.filter(pl.col("ticker") == "AAA")["last_close"].item()
    )


def test_cli_rejects_text_only_model_flags_for_prices(trained, capsys):
    root = trained[0]
    assert main(["train", "prices", "--data-root", str(root), "--embed-dim", "8", "--epochs", "1"]) == 2
    assert "--embed-dim" in capsys.readouterr().err


def test_cli_scores_prices_from_bronze_without_input(trained, capsys):
    root = trained[0]
    assert main(["score", "prices", "--data-root", str(root), "--ds", "2020-05-01"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] == 4 and result["path"].endswith("ds=2020-05-01/part-0.parquet")
    forecasts = pl.read_parquet(result["path"]).sort("ticker")
    long = forecasts.filter(pl.col("ticker") != "NEW")  # 120 days each: a real forecast for each
    assert long["ticker"].to_list() == ["AAA", "BBB", "CCC"] and set(long["status"]) == {"ok"}
    assert long["forecast_close"].null_count() == 0 and (long["forecast_close"] > 0).all()
    new = forecasts.filter(pl.col("ticker") == "NEW")  # its 3 days start after ds: no forecast, said so
    assert new["forecast_close"].to_list() == [None] and new["status"].item().startswith(
        "insufficient_history"
    )


def test_score_reads_an_input_file_and_counts_its_rejected_rows(trained, tmp_path):
    root = trained[0]
    path = tmp_path / "ZZZ.csv"
    good = bars(8, first=date(2021, 3, 1))
    path.write_text("\n".join([HEADER, *good, "2021-03-20,1,0.5,2,1,10,"]) + "\n")  # high < low
    report = score_flow("prices", str(path), "2021-03-12", data_root=str(root))  # last bar: 03-10
    frame = pl.read_parquet(report["path"])
    assert frame["ticker"].to_list() == ["ZZZ"] and frame["status"].to_list() == ["ok"]
    assert report["input_rows_rejected"] == 1
    assert frame["as_of_date"].item() == date.fromisoformat(good[-1].split(",")[0])
    stale = score_flow("prices", str(path), "2021-03-31", data_root=str(root))  # 21 days after it
    assert pl.read_parquet(stale["path"])["status"].to_list() == ["stale: last bar 2021-03-10"]
