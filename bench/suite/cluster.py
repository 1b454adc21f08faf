"""A day scored across Ray: names/s in one process, on a cluster of one worker and of two (Ray's own
test cluster: a head and one more node, one CPU each, as `make ray` starts), side by side on the same
input; then a 20M-row day on two workers with the peak RSS of each actor and of the driver."""

from __future__ import annotations

from bench.suite.common import Bench, child, goal
from bench.suite.scoring import names_input


def run(bench: Bench) -> dict:
    try:
        from ray.cluster_utils import Cluster
    except ImportError:
        skipped = "ray is not installed (pip install 'rnnflow[ray]')"
        return {"title": "Ray scoring", "rows": [], "goals": [], "skipped": skipped}
    rows_day = 60_000 if bench.quick else 200_000  # 3 shards at least: both workers get some
    rows_big = 200_000 if bench.quick else 20_000_000
    path = names_input(bench, rows_day)
    rows, days = [], iter(range(1, 32))

    def measure(engine: str, model: str, source, address: str | None = None, size: int = rows_day) -> dict:
        out = child(
            "score",
            root=bench.root,
            kind="names",
            model_uri=bench.models[model],
            input_path=str(source),
            ds=f"2026-09-{next(days):02d}",
            ray=address,
        )
        row = {
            "engine": engine,
            "model": "default" if model == "names" else "tiny",
            "rows": out["rows"],
            "seconds": out["seconds"],
            "names_per_s": out["rows"] / out["seconds"],
            "nodes": out.get("nodes", 1),
            "driver_peak_rss_mb": out["peak_rss_mb"],
            "actor_peak_rss_mb": out.get("actor_peak_rss_mb", 0.0),
        }
        print(f"  {engine} ({row['model']}): {row['names_per_s']:,.0f} names/s on {size:,} rows", flush=True)
        rows.append(row)
        return row

    alone = measure("1 process", "names", path)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        one = measure("Ray, 1 worker", "names", path, cluster.address)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        two = measure("Ray, 2 workers", "names", path, cluster.address)
        path.unlink()
        big_path = names_input(bench, rows_big)
        big = measure("Ray, 2 workers", "names-tiny", big_path, cluster.address, rows_big)
        big_path.unlink()
    finally:
        cluster.shutdown()
    goals = [
        goal(
            "names/s scored on 2 Ray workers over 1 worker (default model)",
            two["names_per_s"] / one["names_per_s"],
            1.7,
            "x",
            note=f"1 process {alone['names_per_s']:,.0f}/s, 1 worker {one['names_per_s']:,.0f}/s, "
            f"2 workers {two['names_per_s']:,.0f}/s; the driver shares the 2 cores",
        ),
        goal(
            f"peak RSS of one Ray actor scoring a {rows_big:,}-row day",
            big["actor_peak_rss_mb"],
            0,
            "MB",
            note=f"driver {big['driver_peak_rss_mb']:.0f} MB; tiny model",
        )
        | {"met": None},
    ]
    return {"title": "Ray scoring", "rows": rows, "goals": goals}
