"""What users see: Prefect artifacts of every flow run, MLflow model descriptions and version tags."""

from __future__ import annotations

import json

import mlflow
import polars as pl
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.kind_flows import features_flow, ingest_flow, train_flow
from flows.score_flows import score_flow
from tests.conftest import make_surnames


def artifact_of(state, key: str):
    """The artifact `key` that this flow run (its final state) published; the session's others ignored."""
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])), limit=50
        )
    mine = [a for a in found if a.key == key]
    assert len(mine) == 1, f"flow run {run_id}: {len(mine)} artifacts with key {key!r}"
    return json.loads(mine[0].data) if mine[0].type == "table" else mine[0].data


def test_each_flow_publishes_a_table_and_the_registry_describes_the_model(tmp_path, prefect_api, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("RNNFLOW_DATA_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    csv = tmp_path / "surnames.csv"
    rows = make_surnames(20)
    csv.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in rows) + ",Russian\n")
    state = ingest_flow("names", [str(csv)], str(root), return_state=True)
    ingested = {r["source"]: r for r in artifact_of(state, "ingest-names")}
    assert ingested[str(csv)]["rows_ok"] == len(rows) and ingested[str(csv)]["rows_quarantined"] == 1

    state = features_flow("names", str(root), features={"max_buckets": 4}, return_state=True)
    assert {r["split"] for r in artifact_of(state, "features-names")} == {"train", "val", "test"}

    options = {"hidden_size": 8, "embed_dim": 4}
    state = train_flow("names", str(root), train={"epochs": 1}, model=options, return_state=True)
    report = state.result()
    trained = {r["item"]: r["value"] for r in artifact_of(state, "train-names")}
    assert trained["registered model"] == f"names-nationality v{report['version']}"
    assert report["run_id"] in trained["MLflow run"] and "best_val_accuracy" in trained
    assert "reference_val_accuracy" in trained and "reference_test_accuracy" in trained

    to_score = tmp_path / "in.parquet"
    pl.DataFrame({"surname": ["Ivanov", "Tanaka"]}).write_parquet(to_score)
    # pinned: a 1-epoch model may lose to its reference, and then there is no champion to score with
    pinned = f"models:/names-nationality/{report['version']}"
    state = score_flow("names", str(to_score), "2026-11-01", pinned, data_root=str(root), return_state=True)
    scored = {r["item"]: r["value"] for r in artifact_of(state, "score-names")}
    assert scored["rows scored"] == 2 and scored["model"] == f"names-nationality v{report['version']}"
    assert scored["read"] == str(to_score) and scored["wrote"].endswith("ds=2026-11-01/part-0.parquet")

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    client = MlflowClient()
    model = client.get_registered_model("names-nationality")
    assert "Score:" in model.description and "best_val_accuracy" in model.description
    version = client.get_model_version("names-nationality", str(report["version"]))
    assert version.description.startswith("best_val_accuracy")
    assert {
        "kind",
        "dataset_fingerprint",
        "git_commit",
        "features_manifest_sha256",
        "best_val_accuracy",
    } <= set(version.tags)
