"""Drift reports and input rules at scoring time, on real data and real (tiny) models: names from
names-dataset, the IMDB reviews, the bokeh stocks; each model carries its training-time reference."""

from __future__ import annotations

import random

import polars as pl
import pytest

from models import jobs, scoring, tracking
from models.train import TrainConfig
from pipeline import drift
from pipeline.families import family_of
from pipeline.ingest import ingest
from pipeline.kinds import get_kind
from pipeline.layout import Layout
from pipeline.storage import latest_features
from pipeline.text.features import split_texts

TEXT_MODEL = {"hidden_size": 32, "embed_dim": 16}


def trained(kind: str, root, sources: list[str], epochs: int = 2, options: dict | None = None):
    """Ingest real data, build features, train a tiny model (no reference gate): -> (model, resolved)."""
    spec = get_kind(kind)
    layout = Layout.of(kind, root)
    ingest(sources, spec, layout)
    family = family_of(spec)
    family.build_features(spec, layout, family.feature_config(spec))
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    cfg = TrainConfig(epochs=epochs, reference=False, seed=3)
    report = jobs.train(kind, str(root), cfg, options or {})
    resolved, model = scoring.load(f"models:/{spec.model_name}/{report['version']}")
    return model, resolved, layout


def score_and_judge(kind: str, model, resolved, inputs: pl.DataFrame, ds: str = "2026-11-02"):
    """-> (the partition's rows, the drift report), as the score flow makes them."""
    spec = get_kind(kind)
    scorer = jobs.scorer_of(spec.family)
    if spec.family == "text":
        from pipeline.text.rules import scoring_status

        inputs = inputs.with_columns(scoring_status(inputs, spec))
    frame, _ = scorer.score(model, inputs, spec, ds, resolved)
    return frame, scorer.drift(model, inputs, frame, spec, ds, drift.thresholds(spec.drift_thresholds))


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    root = tmp_path_factory.mktemp("names") / "data"
    model, resolved, layout = trained("names", root, ["names-dataset?per_country=1000"], 2, TEXT_MODEL)
    folder, manifest = latest_features(layout)
    held_out = split_texts(folder, manifest, "test").select("surname")
    return model, resolved, held_out


def verdicts(report: dict) -> dict[str, str]:
    return {name: m["verdict"] for name, m in report["metrics"].items()}


def test_held_out_names_from_the_training_data_are_all_ok(names):
    model, resolved, held_out = names
    _, report = score_and_judge("names", model, resolved, held_out)
    assert report["rows"] == held_out.height >= 1000
    assert set(verdicts(report).values()) == {"ok"}, report["metrics"]
    assert report["verdict"] == "ok"


def test_upper_cased_names_with_punctuation_shift_oov_and_label_shares(names):
    model, resolved, held_out = names
    rng = random.Random(0)

    def mangle(name: str) -> str:
        name = name.upper()
        for _ in range(2):
            at = rng.randrange(len(name) + 1)
            name = name[:at] + rng.choice("!?.,;#*") + name[at:]
        return name

    mangled = held_out.select(pl.col("surname").map_elements(mangle, return_dtype=pl.String))
    _, report = score_and_judge("names", model, resolved, mangled)
    judged = verdicts(report)
    assert judged["oov_psi"] in ("warn", "alert") and judged["label_tvd"] in ("warn", "alert"), report
    assert report["summary"]["mean_oov"] > 5 * report["summary"]["reference_mean_oov"]
    assert report["verdict"] == "alert"


def test_over_long_and_control_character_texts_get_no_prediction_and_their_reason(names):
    model, resolved, held_out = names
    texts = [*held_out["surname"].head(3).to_list(), "A" * 200, "Ab\x07c", "  ", "Tan\u2028aka"]
    inputs = pl.DataFrame({"id": [str(i) for i in range(len(texts))], "surname": texts})
    frame, report = score_and_judge("names", model, resolved, inputs)
    assert frame.height == inputs.height and frame["id"].to_list() == inputs["id"].to_list()  # conserved
    expected = ["ok", "ok", "ok", "too_long", "control_characters", "empty", "control_characters"]
    assert frame["status"].to_list() == expected
    bad = frame.filter(pl.col("status") != "ok")
    assert bad["predicted_label"].null_count() == bad.height == 4
    assert bad["probability"].null_count() == 4 and bad["top_labels"].to_list() == [[]] * 4
    assert frame.filter(pl.col("status") == "ok")["predicted_label"].null_count() == 0
    assert report["rows"] == 3 and report["verdict"] == "n/a"  # too few scored rows to judge


def reviews_source() -> str:
    from flows.demo import default_reviews_source

    return default_reviews_source()


def test_reviews_cut_to_their_first_three_words_alert_on_length(tmp_path):
    model, resolved, layout = trained("reviews", tmp_path / "data", [reviews_source()], 1, TEXT_MODEL)
    folder, manifest = latest_features(layout)
    held_out = split_texts(folder, manifest, "test").select("review")
    _, whole = score_and_judge("reviews", model, resolved, held_out)
    assert verdicts(whole)["length_psi"] == "ok", whole["metrics"]
    cut = held_out.select(pl.col("review").str.split(" ").list.head(3).list.join(" "))
    _, report = score_and_judge("reviews", model, resolved, cut)
    assert verdicts(report)["length_psi"] == "alert", report["metrics"]
    assert report["metrics"]["length_psi"]["value"] > 1.0 and report["verdict"] == "alert"


def test_a_ticker_multiplied_by_ten_from_a_date_on_alerts_on_returns(tmp_path):
    model, resolved, layout = trained("prices", tmp_path / "data", ["bokeh-stocks"], 1)
    from pipeline.prices.features import load_bars

    bars = load_bars(layout)
    last = bars["date"].max()
    ds = last.isoformat()
    _, plain = score_and_judge("prices", model, resolved, bars, ds)
    assert verdicts(plain)["max_abs_return_ratio"] == "ok", plain["metrics"]
    ticker = sorted(bars["ticker"].unique())[0]
    split_day = bars.filter(pl.col("ticker") == ticker)["date"].sort()[-5]  # 5 bars before ds
    scaled = pl.col("ticker").eq(ticker) & pl.col("date").ge(split_day)
    tenfold = bars.with_columns(
        *(
            pl.when(scaled).then(pl.col(c) * 10).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        )
    )
    _, report = score_and_judge("prices", model, resolved, tenfold, ds)
    assert verdicts(report)["max_abs_return_ratio"] == "alert", report["metrics"]
    assert report["summary"]["largest_abs_return"] == pytest.approx(9.0, rel=0.2)
    assert report["verdict"] == "alert"
