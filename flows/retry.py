"""Retry policy of the I/O tasks: transient failures (network, a busy server, a flaky disk) are retried;
a deterministic one (a missing file or column, a bad date, an unknown model) fails at once, once."""

from __future__ import annotations

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
