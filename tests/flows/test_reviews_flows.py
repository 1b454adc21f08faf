"""Reviews end to end: aclImdb + renamed CSV columns via the CLI, binary metrics, positive probability."""

from __future__ import annotations

import json

import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from flows.cli import main
from flows.kind_flows import features_flow, train_flow
from flows.score_flows import score_flow
from tests.flows.test_names_flows import TINY, registry
from tests.pipeline.test_acl_imdb import write_acl_imdb


@pytest.fixture(scope="module")
def reviews_trained(tmp_path_factory, prefect_api):
    base = tmp_path_factory.mktemp("reviews")
    root = base / "data"
    acl = write_acl_imdb(base / "aclImdb")
    csv = base / "extra.csv"
    csv.write_text("Id,Text,Score\n1,A great and superb show,pos\n2,An awful and dull show,neg\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setenv("RNNFLOW_DATA_ROOT", str(root))
        assert main(["ingest", "reviews", str(acl), "--data-root", str(root)]) == 0
        args = ["ingest", "reviews", str(csv), "--text-col", "Text", "--label-col", "Score"]
        assert main([*args, "--data-root", str(root)]) == 0
        # 163 rows make one bucket (features keep two batches of rows per bucket): random-length
        # batches, which this tiny model needs 12 epochs for (8 sufficed with 4 buckets)
        features = features_flow("reviews", str(root), features={"max_buckets": 4})
        report = train_flow(
            "reviews",
            str(root),
            train={"epochs": 12, "lr": 0.02, "batch_size": 16, "patience": 12},
            model=TINY,
        )
        yield root, features, report


def test_cli_reads_renamed_columns_and_features_carve_val(reviews_trained):
    root, features, _ = reviews_trained
    bronze = pl.read_parquet(root / "bronze" / "reviews")
    assert bronze.filter(pl.col("source_file").str.ends_with("extra.csv"))["sentiment"].to_list() == [
        "positive",
        "negative",
    ]
    assert features["rows"]["val"] > 0 and features["rows"]["test"] == 81


def test_binary_metrics_are_logged_and_reported(reviews_trained):
    root, _, report = reviews_trained
    assert report["test_roc_auc"] > 0.9 and report["test_f1"] > 0.8
    assert report["baseline_test_roc_auc"] == 0.5
    assert report["baseline_test_f1"] in (0.0, pytest.approx(2 * 40 / (2 * 40 + 41)))
    run = registry(root).get_run(report["run_id"])
    for key in ("test_f1", "test_roc_auc", "baseline_test_f1", "baseline_test_roc_auc", "test_accuracy"):
        assert run.data.metrics[key] == pytest.approx(report[key])
    path = MlflowClient().download_artifacts(report["run_id"], "reports/classification_report.json")
    with open(path) as f:
        classification = json.load(f)
    assert classification["positive_label"] == "positive"
    assert classification["test"]["roc_auc"] == pytest.approx(report["test_roc_auc"])
    assert classification["majority_baseline"]["roc_auc"] == 0.5


def test_score_adds_the_positive_probability(reviews_trained, tmp_path):
    root, _, _ = reviews_trained
    inputs = tmp_path / "in.parquet"
    texts = ["A superb, wonderful film", "Dreadful and boring", "", "<br />"]
    pl.DataFrame({"id": [1, 2, 3, 4], "review": texts}).write_parquet(inputs)
    out = score_flow("reviews", str(inputs), "2026-11-05", data_root=str(root))
    frame = pl.read_parquet(out["path"])
    assert frame.columns[:7] == [
        "id",
        "review",
        "predicted_label",
        "probability",
        "top_labels",
        "top_probs",
        "positive_probability",
    ]
    assert frame.schema["positive_probability"] == pl.Float64
    assert frame["predicted_label"].to_list() == ["positive", "negative", None, None]
    positive = frame["positive_probability"].to_list()
    assert positive[0] > 0.5 > positive[1] and positive[2:] == [None, None]
    assert positive[0] == pytest.approx(frame["probability"][0])
    assert positive[1] == pytest.approx(1 - frame["probability"][1], abs=1e-6)  # float32 sums

    empty = tmp_path / "empty.csv"
    empty.write_text("id,review\n")
    out = score_flow("reviews", str(empty), "2026-11-06", data_root=str(root), allow_empty=True)
    assert "positive_probability" in pl.read_parquet(out["path"]).columns
