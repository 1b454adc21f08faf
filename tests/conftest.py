"""Shared fixtures: an isolated data root per test, tiny labelled surname data, a real Prefect API."""

from __future__ import annotations

import os
import random
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# pipeline/models called outside a flow (as in the unit tests) log locally; pytest-xdist workers may
# load Prefect's settings before flows/__init__.py sets this.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
# Flow logs stay on the console here: no test but the e2e file (which turns it back on for its server,
# worker and runs) reads them from the API, and shipping every line costs the session's server CPU.
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# One intra-op thread for torch here and in every child (CLI runs, torchrun ranks, workers): tiny
# models gain nothing from more, and beside another busy process 2 threads on 2 cores run ~30x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# torchrun ranks start through the tests' entry point, which installs the trace and fault hooks
os.environ.setdefault("RNNFLOW_DDP_WORKER", "tests.ddp_hooks")

import pytest

# Label is decided by the suffix, so a tiny GRU learns it in a few epochs.
SUFFIXES = {"Russian": "ov", "Polish": "ski", "Japanese": "moto"}
STEMS = ["Ab", "Bel", "Car", "Dor", "Em", "Fal", "Gor", "Hin", "Ir", "Jas", "Kal", "Lom", "Mar", "Nor"]


def make_surnames(n_per_label: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows, seen = [], set()
    for label, suffix in SUFFIXES.items():
        while sum(1 for _, lab in rows if lab == label) < n_per_label:
            name = "".join(rng.choice(STEMS) for _ in range(rng.randint(1, 3))) + suffix
            if name not in seen:
                seen.add(name)
                rows.append((name, label))
    return rows


@pytest.fixture(scope="session", autouse=True)
def migrated_mlflow_template(tmp_path_factory):
    """Every data root's MLflow store starts as a copy of one migrated empty store (tests/mlflow_store.py),
    here and in torchrun ranks (tests/ddp_hooks.py installs it there)."""
    from tests import mlflow_store, prefect_store

    template = mlflow_store.template(prefect_store.shared_folder(tmp_path_factory))
    os.environ[mlflow_store.ENV] = str(template)
    mlflow_store.install()
    yield template
    os.environ.pop(mlflow_store.ENV, None)


@pytest.fixture(autouse=True)
def no_leaked_mlflow_uri(monkeypatch):
    """mlflow.set_tracking_uri() writes MLFLOW_TRACKING_URI into os.environ; start each test without it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("RNNFLOW_DATA_ROOT", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return root


@pytest.fixture
def surnames_csv(tmp_path):
    path = tmp_path / "surnames.csv"
    lines = ["surname,nationality"] + [f"{s},{n}" for s, n in make_surnames()]
    path.write_text("\n".join(lines) + "\n")
    return path


def prefect_template(tmp_path_factory) -> Path:
    """One migrated Prefect database for the whole run (tests/prefect_store.py)."""
    from tests import prefect_store

    return prefect_store.template(prefect_store.shared_folder(tmp_path_factory))


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """One real (temporary, SQLite-backed) Prefect API for the whole session; yields its URL, which
    child processes (CLI runs, nodes) get as PREFECT_API_URL instead of starting servers of their own."""
    from prefect.settings import PREFECT_API_URL

    from tests import prefect_store

    with prefect_store.seeded_harness(prefect_template(tmp_path_factory), timeout=180):
        yield PREFECT_API_URL.value()


def processes_tagged(tag: str) -> list[int]:
    """PIDs of live processes whose environment holds RNNFLOW_TEST_TAG=<tag>: this test's own children
    and grandchildren, orphaned or not, and nobody else's."""
    needle = f"RNNFLOW_TEST_TAG={tag}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture(scope="module")
def tiny_names_root(tmp_path_factory) -> Path:
    """A data root with one tiny names model, v1 and champion (train_tiny_names), for one test module."""
    root = tmp_path_factory.mktemp("tiny-names") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        train_tiny_names(root)
    return root


def train_tiny_names(root: Path) -> None:
    """Ingest make_surnames(), build features and register a tiny names model (v1, champion: no
    reference gate) under root, without any Prefect run."""
    from models.text.job import train_text_classifier
    from models.train import TrainConfig
    from pipeline.ingest import ingest
    from pipeline.kinds import NAMES as KIND
    from pipeline.layout import Layout
    from pipeline.text.features import FeatureConfig, build_features

    layout = Layout.of("names", root)
    csv = root.parent / "surnames.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("surname,nationality\n" + "".join(f"{s},{n}\n" for s, n in make_surnames()))
    ingest([str(csv)], KIND, layout)
    build_features(KIND, layout, FeatureConfig(max_buckets=8))
    train_text_classifier(
        KIND, layout, TrainConfig(epochs=1, reference=False), {"hidden_size": 16, "embed_dim": 8}
    )
