"""Prefect events the loop runs on: a partition scored, a drift alert, labels landed, realised
performance below its threshold, a challenger decided. Each names the kind as its resource, so an
automation (deployments/automations.py) can match one kind's events."""

from __future__ import annotations

from prefect.events import emit_event

PREFIX = "rnnflow"
SCORED, DRIFT_ALERT = f"{PREFIX}.partition.scored", f"{PREFIX}.drift.alert"
LABELS, REALISED_LOW, DECIDED = (
    f"{PREFIX}.labels.landed",
    f"{PREFIX}.realised.low",
    f"{PREFIX}.challenger.decided",
)
RETRAIN_ON = (DRIFT_ALERT, REALISED_LOW)  # what starts a training, at most once per cool-down


def resource(kind: str) -> dict:
    return {
        "prefect.resource.id": f"{PREFIX}.kind.{kind}",
        "prefect.resource.name": kind,
        "rnnflow.kind": kind,
    }


def emit(kind: str, event: str, payload: dict) -> None:
    """Emit one event about a kind (a no-op where no Prefect API takes events)."""
    emit_event(event=event, resource=resource(kind), payload={"kind": kind, **payload})
