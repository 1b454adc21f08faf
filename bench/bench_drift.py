"""The cost of the drift report next to the scoring it judges, on the demo's data and partitions: per
day, scoring (read -> pyfunc -> partition) vs the drift report (profile -> metrics -> its JSON) vs
the MLflow monitoring run, side by side in one run. Goal: the report under 10% of scoring.

Usage: python bench/bench_drift.py [--per-country 1500] [--repeat 5] [--kinds names,reviews,prices]
Models use each kind's default configuration, trained 1 epoch (scoring cost does not depend on it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from bench_storage import DAYS, sources  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-country", type=int, default=1500, help="names per country (the demo's)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per day (median)")
    parser.add_argument("--kinds", default="names,reviews,prices")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        rows = [bench_kind(kind, Path(tmp), args) for kind in args.kinds.split(",")]
    print(f"\n{'kind':<8} {'rows/day':>9} {'score s':>8} {'drift s':>8} {'share':>7} {'mlflow s':>9}")
    for r in rows:
        print(
            f"{r['kind']:<8} {r['rows_per_day']:>9,} {r['score_s']:8.3f} {r['drift_s']:8.3f} "
            f"{r['drift_share']:7.1%} {r['mlflow_s']:9.3f}"
        )
    out = ROOT / "bench" / "results" / f"drift-{datetime.now(UTC):%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpus": os.cpu_count(), "repeat": args.repeat, "results": rows}, indent=2))
    print(f"\nwrote {out}")
    return 0


def bench_kind(kind: str, work: Path, args) -> dict:
    from models import jobs, monitoring, scoring, tracking
    from models.train import train_config
    from pipeline import drift, storage
    from pipeline.families import family_of
    from pipeline.ingest import ingest
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.text.features import export_split_days

    spec, layout = get_kind(kind), Layout.of(kind, work / kind)
    family, scorer = family_of(spec), jobs.scorer_of(spec.family)
    files, _ = sources(kind, work, args.per_country)
    ingest(files, spec, layout)
    family.build_features(spec, layout, family.feature_config(spec))
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    report = jobs.train(kind, str(layout.root), train_config(spec.family, epochs=1), {})
    resolved, model = scoring.load(f"models:/{spec.model_name}/{report['version']}")
    days = export_split_days(layout, "test", DAYS) if spec.family == "text" else dict.fromkeys(DAYS, 0)
    limits = drift.thresholds(spec.drift_thresholds)
    timings: dict[str, list[float]] = {"score": [], "drift": [], "mlflow": []}
    for _ in range(args.repeat):
        for ds in DAYS:
            source = str(layout.incoming / f"ds={ds}") if spec.family == "text" else None
            began = time.perf_counter()
            inputs, _ = scorer.read(spec, source, layout)
            frame, _ = scorer.score(model, inputs, spec, ds, resolved)
            storage.write_partition(frame, layout, ds)
            scored = time.perf_counter()
            judged = scorer.drift(model, inputs, frame, spec, ds, limits)
            storage.write_drift(judged, layout, ds)
            reported = time.perf_counter()
            monitoring.log_drift(kind, resolved, ds, judged, layout)
            timings["score"].append(scored - began)
            timings["drift"].append(reported - scored)
            timings["mlflow"].append(time.perf_counter() - reported)
    score_s, drift_s = statistics.median(timings["score"]), statistics.median(timings["drift"])
    return {
        "kind": kind,
        "rows_per_day": int(statistics.mean(days.values())) if spec.family == "text" else frame.height,
        "score_s": score_s,
        "drift_s": drift_s,
        "drift_share": drift_s / score_s,
        "mlflow_s": statistics.median(timings["mlflow"]),
        "verdicts": judged["verdict"],
    }


if __name__ == "__main__":
    sys.exit(main())
