"""The demo's closing summary: numbers for people, a plain verdict against persistence that does not
call noise a win, commands that run."""

from __future__ import annotations

from flows.demo import demo_days, summary

INGEST = {
    "rows_in": 1200,
    "rows_ok": 1100,
    "rows_quarantined": 100,
    "reasons": {"too_long": 60, "duplicate": 40},
}


def results(root, model_rmse: float, verdict: str | None = None) -> dict:
    days = demo_days()
    part = f"{root}/predictions/names/ds={days[-1]}/part-0.parquet"
    names = {
        "ingest": INGEST,
        "features": {
            "rows": {"train": 16786, "val": 3600, "test": 3614},
            "padding": {"bucketed": 0.0, "random_batches": 0.2, "pad_to_longest": 0.4},
        },
        "train": {
            "model_name": "names-nationality",
            "version": 2,
            "champion_version": 2,
            "champion_decision": "v2 best_val_accuracy=0.8000 beats its TF-IDF reference",
            "test_accuracy": 0.8,
            "baseline_accuracy": 0.1,
            "test_macro_f1": 0.7,
            "baseline_macro_f1": 0.01,
        },
        "score": [{"ds": d, "status": "scored", "rows": 10, "detail": part} for d in days],
    }
    prices = {
        "ingest": {**INGEST, "reasons": {}},
        "features": {
            "rows": {"train": 8006, "val": 1932, "test": 2125},
            "lookback": 7,
            "split_dates": {"val_start": "2009-04-08", "test_start": "2011-03-18"},
        },
        "train": {
            "model_name": "prices-next-close",
            "version": 1,
            "champion_version": None,
            "champion_decision": "v1 best_val_rmse=6.9 LOSES TO persistence (6.7): registered, NOT champion",
            "test": {
                "rmse": model_rmse,
                "mae": 3.7,
                "mape": 1.28,
                "directional_accuracy": 0.509,
                "directional_ci95": (0.488, 0.530),
            },
            "persistence": {"rmse": 6.717, "mae": 3.58, "mape": 1.24},
            "always_up_directional_accuracy": 0.499,
            "verdict": verdict
            or f"WORSE than persistence on test RMSE ({model_rmse:.4f} vs 6.7170, p=0.001)",
        },
        "score": {"rows": 5, "rows_unscored": 0, "path": f"{root}/predictions/prices/ds=2013-03-01"},
    }
    return {"names": names, "prices": prices}


def test_summary_formats_numbers_and_prints_runnable_commands(tmp_path):
    text = summary(results(tmp_path, 6.899), str(tmp_path))
    assert "{" not in text and "'" not in text  # no raw dicts
    assert "16,786 train, 3,600 val, 3,614 test" in text
    assert "100 quarantined (60 too_long, 40 duplicate)" in text
    assert "30 held-out rows over 3 days" in text
    assert f".venv/bin/rnnflow score names --data-root {tmp_path} --ds {demo_days()[-1]}" in text
    assert f"make mlflow-ui DATA_ROOT={tmp_path}" in text
    assert "mlflow ui --backend-store-uri" not in text
    assert "prices -> prices-next-close v1 (champion none)" in text
    assert "decision    v1 best_val_rmse=6.9 LOSES TO persistence (6.7): registered, NOT champion" in text


def test_summary_says_plainly_when_the_price_model_loses_to_persistence_or_ties_it(tmp_path):
    worse = summary(results(tmp_path, 6.899), str(tmp_path))
    assert "verdict     WORSE than persistence on test RMSE (6.8990 vs 6.7170, p=0.001)" in worse
    assert "prefer the naive forecast" in worse
    tie = "no better than persistence on test RMSE (6.7160 vs 6.7170, p=0.900: a difference within noise)"
    tied = summary(results(tmp_path, 6.716, tie), str(tmp_path))
    assert tie in tied and "verdict     beats" not in tied
    assert "0.509 of test days right (95% 0.488-0.530), no better than always-up (0.499)" in tied
    better = summary(results(tmp_path, 6.5, "beats persistence on test RMSE (...)"), str(tmp_path))
    assert "beats persistence" in better and "prefer the naive" not in better


def test_summary_names_the_reference_that_serves_when_the_rnn_does_not_beat_it(tmp_path):
    data = results(tmp_path, 6.5)
    data["names"]["train"] |= {
        "champion_version": 3,
        "reference_version": 3,
        "reference_test_accuracy": 0.83,
        "reference_test_macro_f1": 0.54,
        "reference_seconds": 4.0,
        "champion_decision": "v2 ... does not beat ...; its TF-IDF reference registered as v3: ...",
    }
    text = summary(data, str(tmp_path))
    assert "names -> names-nationality v2 (champion v3)" in text
    assert "instead     its TF-IDF reference, registered as v3: test accuracy 0.830, macro-F1 0.540" in text


def test_summary_says_which_version_is_challenger(tmp_path):
    data = results(tmp_path, 6.5)
    data["names"]["train"] |= {"version": 4, "champion_version": 3, "challenger_version": 4}
    assert "names -> names-nationality v4 (champion v3, challenger v4)" in summary(data, str(tmp_path))
