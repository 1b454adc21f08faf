"""End to end on real components: Prefect API (test harness), MLflow on SQLite, Parquet in tmp_path."""

from __future__ import annotations

import mlflow
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from flows.cli import main
from flows.kind_flows import features_flow, ingest_flow, train_flow
from flows.score_flows import score_flow

TINY = {"hidden_size": 24, "embed_dim": 12, "dropout": 0.0}
# Registry-decision tests compare versions with each other: the TF-IDF reference (which the gate tests
# in test_reference_gate.py exercise) is switched off, as `rnnflow train --no-reference` does.
# the champion rule itself (train.promote_to=champion), not the challenger path
WEAK = {"train": {"epochs": 1, "lr": 1e-4, "reference": False, "promote_to": "champion"}, "model": TINY}
STRONG = {
    "train": {
        "epochs": 10,
        "lr": 0.02,
        "patience": 10,
        "batch_size": 16,
        "reference": False,
        "promote_to": "champion",
    },
    "model": TINY,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prefect_api):
    """A data root with ingested data, features and two trained versions (weak v1, strong v2)."""
    root = tmp_path_factory.mktemp("trained") / "data"
    from tests.conftest import make_surnames

    csv = root.parent / "surnames.csv"
    csv.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in make_surnames()))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setenv("RNNFLOW_DATA_ROOT", str(root))
        ingest_flow("names", [str(csv)], str(root))
        features_flow("names", str(root), features={"max_buckets": 8})
        reports = [train_flow("names", str(root), **WEAK), train_flow("names", str(root), **STRONG)]
        yield root, reports


def registry(root):
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    return MlflowClient()


def test_champion_moves_only_on_improvement(trained):
    root, (weak, strong) = trained
    assert strong["best_val_accuracy"] > weak["best_val_accuracy"]
    assert (weak["version"], weak["promoted"]) == (1, True)
    assert (strong["version"], strong["promoted"]) == (2, True)
    assert strong["test_accuracy"] > strong["baseline_accuracy"]
    assert strong["test_f1"] is None and strong["test_roc_auc"] is None  # binary kinds only

    worse = train_flow("names", str(root), **WEAK)  # same weak recipe again: must not take over
    assert (worse["version"], worse["promoted"], worse["champion_version"]) == (3, False, 2)
    client = registry(root)
    assert int(client.get_model_version_by_alias("names-nationality", "champion").version) == 2
    v3 = client.get_model_version("names-nationality", "3")
    assert "champion stays" in v3.tags["champion_decision"]
    for key in ("dataset_fingerprint", "features_manifest_sha256", "git_commit", "kind"):
        assert v3.tags[key]
    run = client.get_run(v3.run_id)
    assert "does not beat" in run.data.tags["champion_decision"]
    assert {"test_accuracy", "test_macro_f1", "baseline_test_accuracy", "best_val_accuracy"} <= set(
        run.data.metrics
    )
    artifacts = {a.path for a in client.list_artifacts(v3.run_id, "plots")}
    assert artifacts == {"plots/confusion_matrix.png", "plots/loss_curves.png"}
    history = client.get_metric_history(v3.run_id, "val_accuracy")
    assert [m.step for m in history] == [1]


def test_score_writes_a_partition_with_model_version_on_every_row(trained, tmp_path):
    root, (_, strong) = trained
    inputs = tmp_path / "incoming.parquet"
    names = ["Carmarov", "Belski", "Dormoto", "", "Xyzzy"]
    pl.DataFrame({"id": [10, 20, 30, 40, 50], "surname": names}).write_parquet(inputs)

    first = score_flow("names", str(inputs), "2026-11-01", data_root=str(root))
    part = root / "predictions" / "names" / "ds=2026-11-01"
    table = pq.read_table(part / "part-0.parquet")
    # polars writes Arrow's large (64-bit offset) variants; readers see plain strings and lists
    assert table.schema.field("top_labels").type == pa.large_list(pa.large_string())
    assert table.schema.field("top_probs").type == pa.large_list(pa.float64())
    assert table.schema.field("predicted_label").type == pa.large_string()
    assert table.schema.field("probability").type == pa.float64()
    assert table.schema.field("model_version").type == pa.int32()
    assert table.schema.field("scored_at").type == pa.timestamp("us", tz="UTC")
    frame = pl.read_parquet(part)
    assert frame.columns == [
        "id",
        "surname",
        "predicted_label",
        "probability",
        "top_labels",
        "top_probs",
        "status",  # "ok", or the text rule the row breaks (then no prediction)
        "model_name",
        "model_version",
        "model_run_id",
        "scored_at",
    ]
    assert frame["id"].to_list() == ["10", "20", "30", "40", "50"]  # carried as strings, in input order
    assert frame["model_version"].to_list() == [strong["champion_version"]] * 5
    assert frame["model_run_id"].unique().to_list() == [strong["run_id"]]
    assert frame["predicted_label"].to_list()[:3] == ["Russian", "Polish", "Japanese"]
    assert frame.filter(pl.col("surname") == "")["predicted_label"].to_list() == [None]
    assert frame.filter(pl.col("surname") == "")["status"].to_list() == ["empty"]
    assert frame.filter(pl.col("surname") != "")["top_labels"].list.len().to_list() == [3] * 4
    assert first["rows"] == 5 and first["rows_unscored"] == 1

    again = score_flow("names", str(inputs), "2026-11-01", data_root=str(root))
    assert again["rows"] == 5
    assert pl.read_parquet(part).height == 5  # replaced, not appended
    assert [p.name for p in part.iterdir()] == ["part-0.parquet"]  # no temp files left behind
    hive = pl.scan_parquet(root / "predictions" / "names" / "**" / "*.parquet", hive_partitioning=True)
    assert hive.select(pl.col("ds").cast(pl.String).unique()).collect().item() == "2026-11-01"


def test_an_input_with_no_rows_fails_and_keeps_the_day_unless_allow_empty(trained, tmp_path):
    root, _ = trained
    full, empty = tmp_path / "full.csv", tmp_path / "empty.csv"
    full.write_text("id,surname\n1,Carmarov\n2,Belski\n")
    empty.write_text("id,surname\n")
    path = score_flow("names", str(full), "2026-11-04", data_root=str(root))["path"]
    with pytest.raises(ValueError, match=r"nothing to score .* left as it was .*--allow-empty"):
        score_flow("names", str(empty), "2026-11-04", data_root=str(root))
    assert pl.read_parquet(path)["id"].to_list() == ["1", "2"]  # the day's partition is untouched
    out = score_flow("names", str(empty), "2026-11-04", data_root=str(root), allow_empty=True)
    assert out["rows"] == 0
    assert pl.read_parquet(out["path"]).columns[:3] == ["id", "surname", "predicted_label"]


def test_score_pinned_version_from_csv(trained, tmp_path):
    root, _ = trained
    csv = tmp_path / "in.csv"
    csv.write_text("surname\nCarmarov\n")
    out = score_flow("names", str(csv), "2026-11-02", "models:/names-nationality/1", str(root))
    frame = pl.read_parquet(out["path"])
    assert frame.columns[0] == "surname"  # no id column given, none invented
    assert frame["model_version"].to_list() == [1]


def test_cli_errors_are_one_line_and_exit_2(trained, tmp_path, capsys):
    root, _ = trained
    csv = tmp_path / "in.csv"
    csv.write_text("surname\nCarmarov\n")
    assert main(["score", "names", "--input", str(csv), "--ds", "2026-13-01", "--data-root", str(root)]) == 2
    assert "ds '2026-13-01' is not a date" in capsys.readouterr().err
    code = main(
        [
            "score",
            "names",
            "--input",
            str(csv),
            "--ds",
            "2026-11-03",
            "--data-root",
            str(root),
            "--model",
            "models:/names-nationality@nope",
        ]
    )
    assert code == 2
    assert "not found in the registry" in capsys.readouterr().err


def test_cli_ingest_reports_counts(tmp_path, prefect_api, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    names = tmp_path / "names"
    names.mkdir()
    (names / "Irish.txt").write_text("Murphy\n\nKelly\n")
    assert main(["ingest", "names", str(names), "--data-root", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert '"rows_in": 3' in out and '"rows_quarantined": 1' in out and '"empty": 1' in out


def test_champion_from_other_features_is_rescored_on_the_new_validation_split(
    tmp_path, prefect_api, monkeypatch
):
    """An easy 2-class champion must not block a model trained on harder 3-class data."""
    from tests.conftest import make_surnames

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = str(tmp_path / "data")
    rows = make_surnames()
    two = tmp_path / "two.csv"
    two.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in rows if n != "Japanese"))
    three = tmp_path / "three.csv"
    three.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in rows if n == "Japanese"))
    ingest_flow("names", [str(two)], root)
    features_flow("names", root, features={"max_buckets": 8})
    first = train_flow("names", root, **STRONG)
    ingest_flow("names", [str(three)], root)
    features_flow("names", root, features={"max_buckets": 8})
    second = train_flow("names", root, **STRONG)
    # v1's stored 2-class metric would block v2; re-scored, v1 misses every Japanese name
    assert first["best_val_accuracy"] >= second["best_val_accuracy"]
    assert second["promoted"] is True, second["champion_decision"]
    assert "re-scored on features" in second["champion_decision"]


def test_a_model_of_several_members_is_packaged_and_scores_as_it_was_judged(trained, tmp_path):
    """--members 2: two RNNs in one state_dict; the registered pyfunc averages them as training did."""
    from models import packaging
    from pipeline.layout import Layout
    from pipeline.storage import latest_features
    from pipeline.text.features import split_texts

    root, _ = trained
    settings = {"train": STRONG["train"] | {"epochs": 3}, "model": TINY | {"members": 2}}
    report = train_flow("names", str(root), **settings)
    uri = f"models:/names-nationality/{report['version']}"
    registry(root)
    loaded = packaging.load(uri)
    assert loaded.unwrap_python_model().model.config.members == 2
    folder, manifest = latest_features(Layout.of("names", root))
    val = split_texts(folder, manifest, "val")
    predicted = loaded.predict(val.select("surname").to_pandas())["predicted_label"].to_numpy()
    assert (predicted == val["nationality"].to_numpy()).mean() == pytest.approx(report["best_val_accuracy"])
    csv = tmp_path / "in.csv"
    csv.write_text("surname\nCarmarov\n")
    out = score_flow("names", str(csv), "2026-11-03", uri, str(root))
    assert pl.read_parquet(out["path"])["model_version"].to_list() == [report["version"]]
