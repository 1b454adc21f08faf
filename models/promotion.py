"""Moving a kind's aliases with the evidence kept: each move is written to the promotion history first
(pipeline/history.py), then made in the registry, then mirrored as version tags, all under the kind's
champion lock; a move a kill interrupted is completed by the next one (reconcile). Also rollback."""

from __future__ import annotations

import logging

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models import tracking
from pipeline import history, locks
from pipeline.layout import Layout

log = logging.getLogger("rnnflow.promotion")
LOCK = "aliases-{kind}"


def alias_version(model_name: str, alias: str) -> int | None:
    try:
        return int(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def reconcile(layout: Layout, model_name: str, alias: str = "champion") -> None:
    """Make the registry and the history agree (call under the lock). A move whose history row was
    written but whose alias was not (a kill between the two) is completed; an alias moved outside
    rnnflow (the MLflow UI) is recorded as such."""
    last = history.last_move(layout, alias)
    now = alias_version(model_name, alias)
    wanted = last["to_version"] if last else None
    if now == wanted:
        return
    if last is not None and now == last["from_version"]:
        log.warning("%s: completing the interrupted move of %s to v%s", model_name, alias, wanted)
        _set(model_name, alias, wanted, last)
        return
    row = history.append(
        layout,
        {"model_name": model_name, "alias": alias, "action": "outside", "from_version": wanted}
        | {"to_version": now, "reason": "moved outside rnnflow (e.g. in the MLflow UI)", "actor": "rnnflow"},
    )
    _tag(model_name, row)


def move(
    layout: Layout,
    model_name: str,
    to_version: int | None,
    *,
    action: str,
    reason: str,
    alias: str = "champion",
    evidence: dict | None = None,
    features_version: str | None = None,
    dataset_fingerprint: str | None = None,
    actor: str = "training",
) -> dict:
    """Move `alias` to `to_version` (None: remove it), recorded; -> the history row."""
    with locks.hold(layout.root, LOCK.format(kind=layout.kind)):
        reconcile(layout, model_name, alias)
        event = {
            "model_name": model_name,
            "alias": alias,
            "action": action,
            "from_version": alias_version(model_name, alias),
            "to_version": to_version,
            "reason": reason,
            "evidence": evidence,
            "features_version": features_version,
            "dataset_fingerprint": dataset_fingerprint,
            "code_commit": tracking.git_commit(),
            "actor": actor,
        }
        row = history.append(layout, event)  # first: a kill after it is completed by the next move
        _set(model_name, alias, to_version, row)
    return row


def _set(model_name: str, alias: str, version: int | None, row: dict) -> None:
    client = MlflowClient()
    if version is None:
        client.delete_registered_model_alias(model_name, alias)
    else:
        client.set_registered_model_alias(model_name, alias, str(version))
    _tag(model_name, row)


def _tag(model_name: str, row: dict) -> None:
    """The move on the versions' pages: when it became (or stopped being) the alias, and why."""
    client, at = MlflowClient(), row["at"].isoformat()
    alias, why = row["alias"], f"{row['action']}: {row['reason']}"
    if row["to_version"] is not None:
        client.set_model_version_tag(model_name, str(row["to_version"]), f"{alias}_since", at)
        client.set_model_version_tag(model_name, str(row["to_version"]), f"{alias}_why", why[:5000])
    if row["from_version"] is not None and row["from_version"] != row["to_version"]:
        client.set_model_version_tag(model_name, str(row["from_version"]), f"{alias}_until", at)


def rollback(layout: Layout, model_name: str, to_version: int, reason: str, actor: str) -> dict:
    """Champion back to a version that served before; LookupError (changing nothing) if it never did."""
    check_rollback(layout, model_name, to_version, reason)
    return move(layout, model_name, to_version, action="rollback", reason=reason, actor=actor)


def check_rollback(layout: Layout, model_name: str, to_version: int, reason: str) -> None:
    """The version exists and served before, and a reason is given: one line naming what is wrong."""
    try:
        MlflowClient().get_model_version(model_name, str(to_version))
    except MlflowException:
        raise LookupError(f"rollback: {model_name} has no version {to_version}; nothing changed") from None
    before = history.served(layout)
    if to_version not in before:
        served = ", ".join(f"v{v}" for v in sorted(before)) or "none yet"
        raise LookupError(
            f"rollback: {model_name} v{to_version} never served (served: {served}); nothing changed"
        )
    if not reason.strip():
        raise ValueError("rollback: give --reason TEXT (it is kept in the history); nothing changed")
