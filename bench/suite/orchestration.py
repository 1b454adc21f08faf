"""Orchestration overhead: the demo's wall time split into Prefect (server start, flow and task
bookkeeping), MLflow's calls and the work itself, from one demo run in a fresh process."""

from __future__ import annotations

import functools
import inspect
import os
import time

from bench.suite.common import Bench, child, goal

KINDS = ("names", "reviews", "prices")  # the demo's; --quick runs names only


class MlflowClock:
    """Times every public call into mlflow (fluent API, pyfunc load/log, datasets, MlflowClient), the
    outermost only: a fluent call that goes through MlflowClient is counted once."""

    def __init__(self) -> None:
        import mlflow
        import mlflow.data
        import mlflow.pyfunc
        from mlflow.tracking import MlflowClient

        self.seconds, self.calls, self._depth = 0.0, 0, 0
        for module in (mlflow, mlflow.pyfunc, mlflow.data):
            for name, fn in list(vars(module).items()):
                if inspect.isfunction(fn) and not name.startswith("_") and fn.__module__.startswith("mlflow"):
                    setattr(module, name, self.wrap(fn))
        for name, fn in list(vars(MlflowClient).items()):
            if inspect.isfunction(fn) and not name.startswith("_"):
                setattr(MlflowClient, name, self.wrap(fn))

    def wrap(self, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth, began = 1, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
                self.calls, self._depth = self.calls + 1, 0

        return timed


def run(bench: Bench) -> dict:
    from bench.suite.common import reviews_source

    kinds = list(KINDS[: 1 if bench.quick else 3])
    home = bench.work / "prefect-home"
    os.environ["PREFECT_HOME"] = str(home)  # a fresh ephemeral API, as on a new machine
    os.environ.pop("PREFECT_API_URL", None)
    # creating the database takes ~15 s on 2 idle cores; Prefect gives up after 20 s by default
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    began = time.perf_counter()
    out = child(
        "demo",
        root=str(bench.work / "demo-data"),
        per_country=bench.per_country,
        reviews_source=reviews_source(bench),
        epochs=1,
        kinds=kinds,
    )
    wall = time.perf_counter() - began
    prefect = out["server_start_s"] + out["flows_s"] - out["in_tasks_s"]
    work = out["in_tasks_s"] - out["mlflow_s"]
    rows = [
        {"part": "python start and imports", "seconds": wall - out["server_start_s"] - out["flows_s"]},
        {"part": "Prefect: ephemeral server start (new database)", "seconds": out["server_start_s"]},
        {
            "part": "Prefect: flow and task bookkeeping, artifacts",
            "seconds": out["flows_s"] - out["in_tasks_s"],
        },
        {"part": f"MLflow: {out['mlflow_calls']} calls", "seconds": out["mlflow_s"]},
        {"part": f"the work ({out['task_runs']} task runs, less MLflow)", "seconds": work},
    ]
    for row in rows:
        row["share"] = row["seconds"] / wall
    again = child("server_start")["seconds"]  # the same PREFECT_HOME: its database exists now
    rows.append(
        {
            "part": "(not in the wall) Prefect: server start, database already there",
            "seconds": again,
            "share": again / wall,
        }
    )
    goals = [
        goal(
            "Prefect's share of the demo's wall time",
            prefect / wall * 100,
            10.0,
            "%",
            higher=False,
            note=f"demo of {', '.join(kinds)}: wall {wall:.0f} s, 1 epoch per model; "
            f"MLflow {out['mlflow_s'] / wall:.0%} more; server start {out['server_start_s']:.0f} s creating "
            f"its database, {again:.0f} s once it exists",
        ),
    ]
    return {"title": "Orchestration overhead", "rows": rows, "wall_s": wall, "goals": goals}
