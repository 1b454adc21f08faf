"""The reference every training is held to: a text model that does not beat its TF-IDF reference is
registered but not crowned, and the reference is registered beside it and crowned when it beats the
incumbent (a training leaves a servable champion); a price model that loses to persistence is never
champion; `--model tfidf` is a model."""

from __future__ import annotations

import mlflow
import pandas as pd
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from flows.kind_flows import features_flow, ingest_flow, train_flow
from flows.score_flows import score_flow
from models import packaging
from models.text.blend import SHARES
from pipeline.layout import Layout
from pipeline.storage import latest_features
from pipeline.text.features import split_texts
from tests.conftest import make_surnames

# the champion rule itself (promote_to=champion), not the challenger path
CHAMPION_RULE = {"promote_to": "champion"}
LOSER = {
    "train": {"epochs": 1, "lr": 1e-4, "blend": False} | CHAMPION_RULE,
    "model": {"hidden_size": 8, "embed_dim": 4},
}
TINY_RNN = {"hidden_size": 16, "embed_dim": 8, "dropout": 0.0}


@pytest.fixture(scope="module")
def names_root(tmp_path_factory, prefect_api):
    root = tmp_path_factory.mktemp("gate") / "data"
    csv = root.parent / "surnames.csv"
    csv.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in make_surnames()))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        ingest_flow("names", [str(csv)], str(root))
        features_flow("names", str(root), features={"max_buckets": 8})
        yield root


def registry(root) -> MlflowClient:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_a_text_model_that_does_not_beat_its_reference_leaves_the_reference_as_champion(names_root, tmp_path):
    report = train_flow("names", str(names_root), **LOSER)
    assert report["reference_val_accuracy"] > report["best_val_accuracy"]  # the premise (GRU alone)
    assert (report["version"], report["reference_version"]) == (1, 2)
    assert (report["promoted"], report["champion_version"], report["beats_reference"]) == (True, 2, False)
    decision = report["champion_decision"]
    assert f"best_val_accuracy={report['best_val_accuracy']:.4f}" in decision
    assert f"does not beat its TF-IDF reference ({report['reference_val_accuracy']:.4f}; McNemar" in decision
    assert "its TF-IDF reference registered as v2: v2 best_val_accuracy=" in decision
    assert decision.endswith("first champion")
    client = registry(names_root)
    assert client.get_registered_model("names-nationality").aliases == {"champion": 2}
    reference = client.get_model_version("names-nationality", "2")
    assert (reference.tags["model_role"], reference.tags["reference_of_version"]) == ("reference", "1")
    run = client.get_run(report["run_id"])
    for key in ("reference_val_accuracy", "reference_test_accuracy", "reference_test_macro_f1"):
        assert key in run.data.metrics

    # the champion is the reference, a complete pyfunc: it scores like any other, loading plain arrays
    tracking_uri = f"sqlite:///{names_root / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri="models:/names-nationality/2", dst_path=str(tmp_path)
    )
    files = {p.suffix for p in __import__("pathlib").Path(local).rglob("*") if p.is_file()}
    assert ".npz" in files and ".pkl" not in files and ".pt" not in files
    loaded = packaging.load("models:/names-nationality/2")
    assert loaded.predict(pd.DataFrame({"surname": ["Belmoto"]}))["predicted_label"][0] == "Japanese"
    to_score = tmp_path / "in.csv"
    to_score.write_text("surname\nBelmoto\nCarski\n")
    out = score_flow("names", str(to_score), "2026-11-02", data_root=str(names_root))
    assert pl.read_parquet(out["path"])["model_version"].to_list() == [2, 2]

    again = train_flow("names", str(names_root), **LOSER)  # a champion is there: never left worse
    assert (again["version"], again["reference_version"]) == (3, 4)
    assert again["champion_version"] == 2 and not again["promoted"]
    assert client.get_registered_model("names-nationality").aliases == {"champion": 2}


def test_the_reference_learns_on_exactly_the_models_splits(names_root, monkeypatch):
    """It is fitted on the model's train split, its regularisation picked on the model's val split."""
    from models.text import reference as classifier_job

    seen, real = {}, classifier_job.fit_tfidf

    def recording(tokenizer, train, val, num_classes, seed=0):
        seen["train"], seen["val"] = set(train[0]), set(val[0])
        return real(tokenizer, train, val, num_classes, seed)

    monkeypatch.setattr(classifier_job, "fit_tfidf", recording)
    train_flow("names", str(names_root), **LOSER)
    folder, manifest = latest_features(Layout.of("names", names_root))
    split = {s: set(split_texts(folder, manifest, s)["surname"].to_list()) for s in ("train", "val", "test")}
    assert seen["train"] == split["train"] and seen["val"] == split["val"]
    assert not (seen["train"] | seen["val"]) & split["test"]


def test_the_tfidf_model_trains_registers_and_scores_through_the_same_path(names_root, tmp_path):
    report = train_flow(
        "names", str(names_root), train={"epochs": 1} | CHAMPION_RULE, model={"model": "tfidf"}
    )
    assert report["model_type"] == "tfidf" and report["reference_version"] is None  # no gate: it is one
    assert report["best_val_accuracy"] == report["reference_val_accuracy"] >= 0.9
    to_score = tmp_path / "in.csv"
    to_score.write_text("surname\nBelmoto\nCarski\n\n")
    out = score_flow(
        "names",
        str(to_score),
        "2026-11-01",
        f"models:/names-nationality/{report['version']}",
        str(names_root),
    )
    frame = pl.read_parquet(out["path"])
    assert frame["predicted_label"].to_list()[:2] == ["Japanese", "Polish"]
    assert frame.columns[:5] == ["surname", "predicted_label", "probability", "top_labels", "top_probs"]
    assert frame["model_version"].to_list() == [report["version"]] * 3


def test_a_price_model_that_loses_to_persistence_is_not_crowned(tmp_path, prefect_api, monkeypatch):
    from tests.pipeline.test_prices import write_ticker_folder

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root, folder = tmp_path / "data", write_ticker_folder(tmp_path / "daily", ("AAA", "BBB"), n=120)
    ingest_flow("prices", [str(folder)], str(root))
    features_flow(
        "prices", str(root), features={"lookback": 5, "target": "close"}
    )  # no persistence floor built in
    report = train_flow(
        "prices", str(root), train={"epochs": 1, "lr": 1e-4} | CHAMPION_RULE, model={"hidden_size": 8}
    )
    assert report["best_val_rmse"] > report["persistence_val_rmse"]  # the premise
    assert not report["promoted"] and report["champion_version"] is None
    assert f"LOSES TO persistence ({report['persistence_val_rmse']:.4f})" in report["champion_decision"]
    assert not registry(root).get_registered_model("prices-next-close").aliases


def test_evaluate_logs_a_run_linked_to_the_version(names_root, tmp_path):
    from flows.cli import main

    report = train_flow(
        "names",
        str(names_root),
        train={"epochs": 20, "lr": 0.02, "batch_size": 16} | CHAMPION_RULE,
        model=TINY_RNN,
    )
    # the default model: the RNN blended with its reference at a share picked on val, packaged as such
    assert report["blend_reference_share"] in SHARES and report["rnn_val_accuracy"] is not None
    folder, manifest = latest_features(Layout.of("names", names_root))
    val = split_texts(folder, manifest, "val")
    served = mlflow.pyfunc.load_model(f"models:/names-nationality/{report['version']}")
    predicted = served.predict(val.select("surname").to_pandas())["predicted_label"]
    served_accuracy = float((predicted.to_numpy() == val["nationality"].to_numpy()).mean())
    assert served_accuracy == pytest.approx(report["best_val_accuracy"])
    labelled = tmp_path / "labelled.csv"
    unseen = [("Zanmoto", "Japanese"), ("Vorski", "Polish"), ("Tulov", "Russian"), ("Qelski", "Polish")]
    labelled.write_text(
        "surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in unseen) + "Bad\x01,Polish\n"
    )
    uri = f"models:/names-nationality/{report['version']}"
    args = ["evaluate", "names", "--input", str(labelled), "--model", uri, "--data-root", str(names_root)]
    assert main(args) == 0

    client = registry(names_root)
    version = client.get_model_version("names-nationality", str(report["version"]))
    run = client.get_run(version.tags["last_evaluation_run"])
    assert (
        run.data.tags["evaluated_model_uri"] == uri and run.data.tags["evaluated_run_id"] == report["run_id"]
    )
    metrics = run.data.metrics
    assert metrics["rows"] == 4 and metrics["rows_rejected"] == 1  # the ingest rules apply
    assert metrics["majority_accuracy"] == 0.5  # Polish, 2 of 4
    assert {"model_accuracy", "model_macro_f1", "reference_accuracy", "reference_macro_f1"} <= set(metrics)
    assert metrics["reference_accuracy"] == 1.0  # the suffix decides: the TF-IDF reference knows it
    paths = {a.path for d in ("reports", "plots") for a in client.list_artifacts(run.info.run_id, d)}
    assert {"reports/evaluation_report.json", "plots/confusion_matrix.png"} <= paths
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "rnnflow-names-evaluations"
