"""Runs killed mid-way (kill -9, a lost machine) end Crashed instead of Running forever: every flow run
the CLI starts carries its process as a tag, and the next CLI command marks the runs whose process is
gone. (Flow runs of a worker are the worker's: it reports a crashed run itself.)"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from pipeline.owner import Owner

log = logging.getLogger("rnnflow.recovery")
CLI_TAG = "rnnflow-cli"
OWNER_TAG = "rnnflow-owner:"


@contextlib.contextmanager
def owned_runs() -> Iterator[None]:
    """Flow runs started in the block carry this process as their owner."""
    from prefect import tags

    with tags(CLI_TAG, OWNER_TAG + Owner.me().token):
        yield


def mark_crashed_flow_runs() -> list[str]:
    """Set Crashed on the CLI's Running flow runs whose process is gone; -> their names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    running = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[CLI_TAG]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])),
    )
    marked = []
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=running, limit=200):
            owner = next(
                (Owner.parse(t.removeprefix(OWNER_TAG)) for t in run.tags if t.startswith(OWNER_TAG)), None
            )
            if owner is None or owner.alive() is not False:
                continue
            message = (
                f"its process ({owner.token}) stopped before the run ended; marked by {Owner.me().token}"
            )
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            marked.append(run.name)
    if marked:
        log.warning("marked %d flow run(s) Crashed whose process had stopped: %s", len(marked), marked)
    return marked
