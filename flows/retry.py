"""Retry policy of the I/O tasks: transient failures (network, a busy server, a flaky disk) are retried;
a deterministic one (a missing file or column, a bad date, an unknown model) fails at once, once, and a
flow it ends fails with its one line as the state message."""

from __future__ import annotations

import functools
from collections.abc import Callable

# What the same call would raise again: retrying only delays the error the user has to fix.
DETERMINISTIC = (
    ValueError,  # includes pipeline.sources.SourceError (bad format, missing column)
    LookupError,  # unknown model, version or alias
    TypeError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)

IO_RETRIES = {"retries": 2, "retry_delay_seconds": 5}


def transient_only(task, task_run, state) -> bool:
    """Prefect `retry_condition_fn`: retry unless the task raised a deterministic error."""
    return not isinstance(state.data, DETERMINISTIC)


def io_task_options() -> dict:
    """@task(**io_task_options()): retries for transient I/O only."""
    return {**IO_RETRIES, "retry_condition_fn": transient_only}


# Errors a user can fix (a bad value, a missing file, model or feature set): their message is the answer.
USER_ERRORS = tuple(e for e in DETERMINISTIC if e is not TypeError)


def fails_in_one_line(fn: Callable) -> Callable:
    """Under @flow: a user's error ends the run Failed with its one line as the state message (Prefect's
    own says "Flow run encountered an exception: ValueError: ..."); calling the flow still raises it."""
    from prefect.states import Failed

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            return Failed(message=(str(err).splitlines() or [type(err).__name__])[0], data=err)

    return run
