"""Flows over the promotion history: `rnnflow history` (every alias move of a kind, why and on what
evidence) and `rnnflow rollback` (the champion back to a version that served before, with a reason)."""

import getpass

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import route_library_logs
from flows.retry import fails_in_one_line, io_task_options
from flows.target import Target, resolve
from pipeline import history

route_library_logs()
SHOWN = ("at", "alias", "action", "from_version", "to_version", "reason", "actor", "features_version")


def history_table(target: Target) -> list[dict]:
    rows = history.read(target.layout).select(SHOWN).with_columns(pl.col("at").dt.strftime("%F %T"))
    return rows.to_dicts()


@flow(name="history", flow_run_name="history-{kind}", log_prints=True)
@fails_in_one_line
def history_flow(kind: str, data_root: str | None = None) -> list[dict]:
    """The kind's promotion history, oldest first: every move of champion (and challenger), when, from
    which version to which, why, by whom, on which features and code."""
    rows = history_table(resolve(kind, data_root))
    if rows:
        create_table_artifact(key=f"history-{kind}", table=rows, description=f"{kind}: alias moves")
    return rows


@task(cache_policy=NO_CACHE, **io_task_options())  # the registry may be a remote server
def move_back(target: Target, to_version: int, reason: str, actor: str) -> dict:
    from models import promotion, tracking

    tracking.configure(target.layout.mlflow_db, target.layout.mlflow_artifacts)
    return promotion.rollback(target.layout, target.spec.model_name, to_version, reason, actor)


@flow(name="rollback", flow_run_name="rollback-{kind}-v{to_version}", log_prints=True)
@fails_in_one_line
def rollback_flow(
    kind: str, to_version: int, reason: str, data_root: str | None = None, actor: str | None = None
) -> dict:
    """Move the champion back to `to_version`, a version that served before, and record it (with the
    reason and who asked) in the history and on the versions' tags. A version that does not exist or
    never served is one line, and nothing changes."""
    target = resolve(kind, data_root)
    row = move_back(target, to_version, reason, actor or getpass.getuser())
    get_run_logger().info(
        "%s: champion v%s -> v%s (%s)", kind, row["from_version"], row["to_version"], reason
    )
    return {k: (str(v) if k == "at" else v) for k, v in row.items()}
