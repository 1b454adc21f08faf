"""A day scored across a Ray cluster: one actor per CPU loads the model version once and scores the
shards the driver hands it; shards come back in input order, a shard whose node died is scored again
on another actor, and a day whose shards cannot all be scored fails naming the shard."""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import polars as pl

log = logging.getLogger("rnnflow.score")
ADDRESS_ENV = "RNNFLOW_RAY_ADDRESS"
ATTEMPTS = 3  # a shard is tried on this many actors before the day fails


class ClusterError(RuntimeError):
    """The cluster cannot be reached, or a shard could not be scored on any of its actors."""


def address(given: str | None = None) -> str | None:
    """--ray ADDRESS, else $RNNFLOW_RAY_ADDRESS; None (or empty): score in this process."""
    return (given or os.environ.get(ADDRESS_ENV) or "").strip() or None


def check_address(value: str, source: str = ADDRESS_ENV) -> None:
    """ValueError in one line, before any work, when nothing answers at a Ray head's host:port."""
    fix = f"start one with `make ray`, or unset {ADDRESS_ENV} (and leave --ray out) to score in one process"
    host, _, port = value.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{source}={value!r} is not a Ray address; give HOST:PORT of the head node; {fix}")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as err:
        raise ValueError(f"{source}={value!r}: no Ray cluster answers there ({err}); {fix}") from None


def connect(value: str) -> dict:
    """Join the cluster as a driver; -> its CPUs per node id."""
    import ray

    check_address(value)
    if not ray.is_initialized():
        ray.init(address=value, logging_level=logging.WARNING, log_to_driver=False)
    cpus = {n["NodeID"]: int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]}
    log.info("scoring on the Ray cluster at %s: %d node(s), %d CPU(s)", value, len(cpus), sum(cpus.values()))
    return cpus


def sharded(value: str, resolved, family: str) -> tuple[Callable, dict]:
    """-> the `shards=` a family's scorer takes to score on the cluster at `value` (one actor per CPU,
    each loading the resolved version once), and the partition's manifest it fills in."""
    import functools

    import mlflow

    from models import scoring

    cpus = connect(value)
    manifest = {"engine": "ray", "address": value, "shards": []}
    registry = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    load = functools.partial(scoring.load_version, *registry, resolved.uri, family)
    actors = max(1, sum(cpus.values()))
    run = functools.partial(score_shards, load=load, actors=actors, report=manifest["shards"])
    return run, manifest


@dataclass
class Shard:
    index: int
    rows: pl.DataFrame
    attempts: int = 0


class ShardScorer:
    """A Ray actor: the model version loaded once, then shards scored with the family's chunk scorer."""

    def __init__(self, load: Callable, threads: int = 1):
        from models import threads as torch_threads

        torch_threads.apply(threads)  # one CPU an actor
        self.model = load()

    def score(self, score_chunk: Callable, rows: pl.DataFrame) -> tuple[pl.DataFrame, str]:
        import ray

        return score_chunk(self.model, rows), ray.get_runtime_context().get_node_id()


def score_shards(
    chunks: Iterable[pl.DataFrame], score_chunk: Callable, load: Callable, actors: int, report: list
) -> Iterator[pl.DataFrame]:
    """Each chunk scored by one of `actors` actors, yielded in input order (memory: a shard per actor
    plus those finished ahead of the next one due). `report` gets a line per shard: index, rows,
    the node that scored it, attempts."""
    import ray

    remote = ray.remote(num_cpus=1, max_restarts=0)(ShardScorer)
    pool = [remote.options(scheduling_strategy="SPREAD").remote(load) for _ in range(actors)]
    try:
        yield from _in_order(pool, chunks, score_chunk, report)
    finally:  # a failed day leaves no actor holding a CPU
        for actor in pool:
            ray.kill(actor)


def _in_order(pool: list, chunks: Iterable[pl.DataFrame], score_chunk: Callable, report: list):
    """The shards scored on the pool's actors, yielded in input order; a dead actor's shard retried."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    idle, running, done, waiting = deque(pool), {}, {}, deque()
    source, next_due, exhausted = enumerate(chunks), 0, False
    while True:
        while idle and (waiting or not exhausted):
            if not waiting:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                waiting.append(Shard(*item))
            shard, actor = waiting.popleft(), idle.popleft()
            shard.attempts += 1
            running[actor.score.remote(score_chunk, shard.rows)] = (actor, shard)
        if not running:
            if waiting:  # every actor has died: the rest of the day cannot be scored
                shard = waiting[0]
                raise ClusterError(f"shard {shard.index}: no Ray actor is left to score it; re-run the day")
            break
        ready, _ = ray.wait(list(running), num_returns=1)
        actor, shard = running.pop(ready[0])
        try:
            scored, node = ray.get(ready[0])
        except RayActorError as err:  # its node or worker died: the shard goes to another actor
            log.warning("shard %d: its Ray actor died (%s); scoring it again elsewhere", shard.index, err)
            if shard.attempts >= ATTEMPTS:
                raise ClusterError(
                    f"shard {shard.index}: failed on {shard.attempts} actors; re-run"
                ) from None
            waiting.appendleft(shard)
            continue
        except RayTaskError as err:  # the scoring code failed: the same on every node
            raise err.as_instanceof_cause() from None
        idle.append(actor)
        report.append({"shard": shard.index, "rows": scored.height, "node": node, "attempts": shard.attempts})
        done[shard.index] = scored
        while next_due in done:
            yield done.pop(next_due)
            next_due += 1
