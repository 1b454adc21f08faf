"""Contention: training throughput alone vs beside two CPU-bound neighbours, the project's thread
setting vs torch's default (bench/bench_contention.py does the measuring)."""

from __future__ import annotations

from bench.bench_contention import compare
from bench.suite.common import Bench, goal

NEIGHBOURS = 2


def run(bench: Bench) -> dict:
    from models.threads import available_cpus

    cpus = available_cpus()
    fair = (cpus + NEIGHBOURS) / cpus if cpus <= NEIGHBOURS else 1.0  # its CPU share beside them
    rows, goals = [], []
    for kind in ("names",) if bench.quick else ("names", "reviews"):
        for setting, r in compare(bench.root, kind, bench.seconds).items():
            rows.append({"kind": kind, "setting": setting, **r})
            if setting == "project":
                goals.append(
                    goal(
                        f"{kind}: slowdown beside {NEIGHBOURS} CPU-bound neighbours",
                        r["slowdown"],
                        round(fair * 1.5, 1),
                        "x",
                        higher=False,
                        note=f"a fair CPU share gives {fair:.1f}x on {cpus} CPUs",
                    )
                )
    return {"title": "Contention", "rows": rows, "goals": goals}
