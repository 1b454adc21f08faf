"""One measured step in a fresh process, so its peak RSS is its own: `child.py TASK JSON` prints a JSON
line with seconds and peak_rss_mb. Tasks: score (stream or at once), ingest, polars_copy, demo,
server_start."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def score(
    root: str,
    kind: str,
    model_uri: str,
    input_path: str,
    ds: str,
    stream: bool = True,
    ray: str | None = None,
) -> dict:
    """What `rnnflow score` runs between the model load and the drift report: read -> pyfunc -> partition.
    ray: a cluster's address, to score in shards on its actors (their peak RSS is watched and reported)."""
    from models import cluster, jobs, scoring, threads, tracking
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.storage import PartitionWriter, score_commit, write_partition

    threads.apply()
    spec, layout = get_kind(kind), Layout.of(kind, root)
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    scorer = jobs.scorer_of(spec.family)  # the family's code, which the model is built from
    resolved, model = scoring.load(model_uri)
    began = time.perf_counter()
    inputs, _ = scorer.read(spec, input_path, layout)
    extra, watch = {}, None
    if ray:
        extra["shards"], manifest = cluster.sharded(ray, resolved, spec.family)
        watch = ActorMemory("ray::ShardScorer")
    if stream:
        day = score_commit(layout)
        writer = PartitionWriter(day, layout, ds)
        _, counts = scorer.score(model, inputs, spec, ds, resolved, writer.write, **extra)
        writer.finish()
        day.apply()
    else:  # everything in memory, then one write: what scoring did before it streamed
        frame, counts = scorer.score(model, inputs.collect(), spec, ds, resolved)
        write_partition(frame, layout, ds)
    result = {"seconds": time.perf_counter() - began, "rows": counts["rows"]}
    if watch:
        result |= {"actor_peak_rss_mb": watch.stop(), "nodes": len({s["node"] for s in manifest["shards"]})}
    return result


class ActorMemory:
    """The highest VmHWM of any process whose title starts with `title` (Ray names an actor's worker
    process ray::<Class>), polled twice a second while the day is scored: an actor's own peak RSS."""

    def __init__(self, title: str):
        import threading

        self.title, self.peaks, self._done = title.encode(), {}, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.5):
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    if (proc / "cmdline").read_bytes().startswith(self.title):
                        self.peaks[proc.name] = max(self.peaks.get(proc.name, 0.0), vm_hwm_mb(proc))
                except OSError:  # it ended meanwhile
                    continue

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return max(self.peaks.values(), default=0.0)


def vm_hwm_mb(proc: Path) -> float:
    for line in (proc / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ingest(root: str, kind: str, source: str) -> dict:
    from pipeline.ingest import ingest as run
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout

    began = time.perf_counter()
    report = run([source], get_kind(kind), Layout.of(kind, root))
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "rows_ok": report.rows_ok, "rows_quarantined": report.rows_quarantined}


def polars_copy(source: str, out: str) -> dict:
    """The baseline a user would write by hand: no rules, no quarantine, no lineage."""
    import polars as pl

    began = time.perf_counter()
    pl.scan_csv(source).sink_parquet(out)
    return {"seconds": time.perf_counter() - began}


def demo(root: str, per_country: int, reviews_source: str, epochs: int, kinds: list[str]) -> dict:
    """The demo flow on an ephemeral Prefect API (a fresh PREFECT_HOME: the server starts here), its
    wall time split into server start, time inside tasks (of it MLflow's calls) and the rest."""
    began = time.perf_counter()
    from bench.suite.orchestration import MlflowClock

    clock = MlflowClock()
    from prefect.client.orchestration import get_client

    from flows.demo import demo_flow

    imported = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.hello()  # the ephemeral server starts (and creates its database) on first use
    started = time.perf_counter()
    demo_flow(
        data_root=root,
        epochs=epochs,
        per_country=per_country,
        reviews_source=reviews_source,
        kinds=tuple(kinds),
    )
    ended = time.perf_counter()
    with get_client(sync_client=True) as client:
        runs, offset = [], 0
        while page := client.read_task_runs(limit=200, offset=offset):
            runs, offset = runs + page, offset + len(page)
        # a subflow call is also a task run of its parent flow, lasting the whole subflow: not work
        subflows = {f.parent_task_run_id for f in client.read_flow_runs(limit=200) if f.parent_task_run_id}
    runs = [r for r in runs if r.id not in subflows]
    in_tasks = sum(r.total_run_time.total_seconds() for r in runs)
    return {
        "imports_s": imported - began,
        "server_start_s": started - imported,
        "flows_s": ended - started,
        "in_tasks_s": in_tasks,
        "task_runs": len(runs),
        "mlflow_s": clock.seconds,
        "mlflow_calls": clock.calls,
    }


def server_start() -> dict:
    """The ephemeral Prefect API's start in $PREFECT_HOME (its database there already, or created)."""
    from prefect.client.orchestration import get_client

    began = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.hello()
    return {"seconds": time.perf_counter() - began}


def peak_rss_mb() -> float:
    """This process's high-water RSS. Not getrusage's ru_maxrss: Linux carries that over exec from
    the parent (the bench holds the names dataset), while VmHWM belongs to this address space."""
    if Path("/proc/self/status").exists():
        return vm_hwm_mb(Path("/proc/self"))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc (macOS): bytes there


def main() -> None:
    task, params = sys.argv[1], json.loads(sys.argv[2])
    result = {
        "score": score,
        "ingest": ingest,
        "polars_copy": polars_copy,
        "demo": demo,
        "server_start": server_start,
    }[task](**params)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
