"""Descriptions the MLflow registry shows for each model and version: data, features, metrics, scoring."""

from __future__ import annotations

from pipeline.kinds import PriceKind, TextKind


def text_model(kind: TextKind, manifest: dict) -> str:
    vocab = manifest["vocab"]
    return "\n".join(
        [
            f"**{kind.model_name}**: {kind.text_col} -> {kind.label_col} ({kind.name} kind of rnnflow).",
            "",
            f"- Data: bronze/{kind.name}/ batches, de-duplicated on ({kind.text_col}, {kind.label_col}); "
            "bad rows are quarantined at ingest with a reason.",
            f"- Features: {kind.tokenizer} tokens, vocabulary from the train split (min_freq "
            f"{manifest['config']['min_freq']}, {vocab['tokens']['size']} tokens), first "
            f"{manifest['config'].get('max_tokens') or 'all'} tokens kept, length-bucketed shards; "
            f"{vocab['labels']['size']} labels.",
            "- Model: embedding -> GRU/LSTM -> last real step -> linear (see each version's params).",
            "- Metrics: best_val_accuracy (picks the champion; higher is better), test_accuracy and "
            "test_macro_f1 beside the majority baseline"
            + (", test_f1 and test_roc_auc for the positive class." if kind.positive_label else "."),
            f"- Score: `rnnflow score {kind.name} --input FILE --ds YYYY-MM-DD`, or "
            f"`mlflow.pyfunc.load_model('models:/{kind.model_name}@champion').predict(df)` with a "
            f"`{kind.text_col}` column.",
        ]
    )


def price_model(kind: PriceKind, manifest: dict) -> str:
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


def version(metric: str, value: float, manifest: dict, headline: dict[str, float]) -> str:
    shown = ", ".join(f"{k} {v:.4f}" for k, v in headline.items() if v is not None)
    return (
        f"{metric} {value:.4f}; {shown}. Features {manifest['version']} "
        f"(dataset {manifest['dataset_fingerprint'][:12]})."
    )
