"""The promotion history of a kind: every move of its aliases (champion, challenger), why and on what
evidence, appended as one Parquet file per move under history/<kind>/ (written atomically, never
rewritten: two writers cannot lose each other's rows), read back in order."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from pipeline import objectstore
from pipeline.layout import Layout
from pipeline.storage import read_parquet, write_parquet_atomic

ACTIONS = ("promote", "challenger", "demote", "rollback", "outside")  # outside: moved in the MLflow UI
SCHEMA = {
    "at": pl.Datetime("us", "UTC"),
    "kind": pl.String,
    "model_name": pl.String,
    "alias": pl.String,
    "action": pl.String,
    "from_version": pl.Int32,
    "to_version": pl.Int32,
    "reason": pl.String,
    "evidence": pl.String,  # JSON: the gate's or the monitor's numbers
    "features_version": pl.String,
    "dataset_fingerprint": pl.String,
    "code_commit": pl.String,
    "actor": pl.String,  # training, monitor, a person's name, rnnflow (reconciled)
}


def append(layout: Layout, event: dict) -> dict:
    """One move, as its own file; -> the row written (with its time)."""
    if event["action"] not in ACTIONS:
        raise ValueError(f"history: unknown action {event['action']!r}; one of {ACTIONS}")
    row = {name: event.get(name) for name in SCHEMA} | {"kind": layout.kind}
    row["at"] = row["at"] or datetime.now(UTC)
    row["evidence"] = json.dumps(event.get("evidence") or {}, sort_keys=True, default=str)
    name = f"{row['at']:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
    write_parquet_atomic(pl.DataFrame([row], schema=SCHEMA), layout.history / name)
    return row


def read(layout: Layout) -> pl.DataFrame:
    """Every move of the kind, oldest first (empty with the schema when there is none)."""
    folder = objectstore.as_path(str(layout.history))
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    fix = f"move the damaged file out of {folder} (each file is one move)"
    frames = [read_parquet(f, fix=fix).cast(SCHEMA) for f in files]
    return pl.concat(frames).sort("at", maintain_order=True) if frames else pl.DataFrame(schema=SCHEMA)


def last_move(layout: Layout, alias: str) -> dict | None:
    """The latest move of `alias` (its to_version is where the alias should be), or None."""
    moves = read(layout).filter(pl.col("alias") == alias)
    return moves.row(-1, named=True) if moves.height else None


def served(layout: Layout) -> set[int]:
    """Every version that has been champion."""
    moves = read(layout).filter((pl.col("alias") == "champion") & pl.col("to_version").is_not_null())
    return set(moves["to_version"].to_list())


def served_on(layout: Layout, day: str) -> int | None:
    """The version that served `day` (YYYY-MM-DD): the champion when the day's partition was scored,
    or, for a day not scored (or its partition gone), the champion at the end of that date (UTC)."""
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), tzinfo=UTC)
    part = objectstore.as_path(str(layout.prediction_partition(day)))
    if part.is_dir() and any(part.glob("*.parquet")):
        end = pl.read_parquet(str(part / "*.parquet"), columns=["scored_at"])["scored_at"].min()
    moves = read(layout).filter((pl.col("alias") == "champion") & (pl.col("at") <= end))
    return moves["to_version"][-1] if moves.height else None


def claim_trigger(layout: Layout, trigger: str, cooldown_hours: float) -> str | None:
    """A training started by an event takes the kind's cool-down: None (go on; recorded) unless another
    did less than cooldown_hours ago, then the reason to skip. Under a lock, so two at once take one."""
    from pipeline import locks
    from pipeline.storage import read_json, write_json_atomic

    path = objectstore.as_path(str(layout.root / "triggers" / f"{layout.kind}.json"))
    now = datetime.now(UTC)
    with locks.hold(layout.root, f"trigger-{layout.kind}"):
        last = read_json(path) if path.exists() else None
        if last is not None:
            since = now - datetime.fromisoformat(last["at"])
            if since < timedelta(hours=cooldown_hours):
                ago = f"{since.total_seconds() / 3600:.1f} h ago"
                began = f"a training started by {last['trigger']!r} began {ago}"
                return f"cool-down: {began} (< {cooldown_hours:g} h)"
        write_json_atomic({"at": now.isoformat(), "trigger": trigger}, path)
    return None
