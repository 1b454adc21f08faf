"""How many intra-op threads torch gets in this process: a setting (--threads, $RNNFLOW_THREADS), by
default the CPUs this process may use shared among the processes that run at once.

torch's own default, one thread per core, spins threads that wait on each other: with any other
CPU-bound process beside it (a second flow run on the worker, a DDP rank, a neighbour) a step stalls
whenever one of its threads is descheduled, and training ran 30x slower (bench/run.py, contention).
"""

from __future__ import annotations

import os

THREADS_ENV = "RNNFLOW_THREADS"  # an explicit count for every rnnflow process started with it
CONCURRENCY_ENV = "RNNFLOW_CONCURRENCY"  # flow runs a worker runs at once (its --limit); default 1
SMALL_MACHINE = 2  # on this many CPUs or fewer, one thread: a neighbour always takes a whole core


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def concurrency() -> int:
    raw = os.environ.get(CONCURRENCY_ENV, "1")
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValueError(f"${CONCURRENCY_ENV}={raw!r}: expected a whole number of runs at once") from None


def default_threads(processes: int = 1) -> int:
    """The CPUs shared by `processes` of ours (DDP ranks on this node) times the worker's concurrency."""
    cpus = available_cpus()
    if cpus <= SMALL_MACHINE:
        return 1
    return max(1, cpus // (max(1, processes) * concurrency()))


def resolve(threads: int | None = None, processes: int = 1) -> int:
    """--threads wins, then $RNNFLOW_THREADS, then default_threads()."""
    if threads is None and os.environ.get(THREADS_ENV):
        raw = os.environ[THREADS_ENV]
        if not raw.isdigit():
            raise ValueError(f"${THREADS_ENV}={raw!r}: expected a whole number of threads, e.g. 1")
        threads = int(raw)
    if threads is not None and threads < 1:
        raise ValueError(f"--threads {threads}: give 1 or more (or leave it out for the default)")
    return threads if threads is not None else default_threads(processes)


def apply(threads: int | None = None, processes: int = 1) -> int:
    """Set torch's intra-op threads for this process (and OMP's, for libraries and children); -> n."""
    import torch

    n = resolve(threads, processes)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    return n
