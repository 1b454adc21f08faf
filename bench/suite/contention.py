"""Contention: training throughput alone vs beside two CPU-bound neighbours, the project's thread
setting vs torch's default (bench/bench_contention.py does the measuring)."""

from __future__ import annotations

from bench.bench_contention import compare
from bench.suite.common import Bench, goal

NEIGHBOURS = 2


def run(bench: Bench) -> dict:
    from models.threads import available_cpus

    cpus = available_cpus()
    rows, goals = [], []
    for kind in ("names",) if bench.quick else ("names", "reviews"):
        for setting, r in compare(bench.root, kind, bench.seconds).items():
            rows.append({"kind": kind, "setting": setting, **r})
            # in proportion to its CPU share: its threads and the neighbours' share the CPUs evenly
            fair = max(1.0, (r["threads"] + NEIGHBOURS) / cpus)
            rows[-1]["fair_slowdown"] = fair
            if setting == "project":
                goals.append(
                    goal(
                        f"{kind}: slowdown beside {NEIGHBOURS} CPU-bound neighbours",
                        r["slowdown"],
                        2 * fair,  # the "about 3x" for 1 thread on 2 cores, "not 50x"
                        "x",
                        higher=False,
                        note=f"its CPU share alone would give {fair:.1f}x on {cpus} CPUs",
                    )
                )
    return {"title": "Contention", "rows": rows, "goals": goals}
