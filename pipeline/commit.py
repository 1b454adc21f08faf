"""Files that appear together or not at all (a bronze batch and its quarantine, a day's partition and its
drift report): each is written under <root>/.staging/<txid>/, then, holding the commit's lock, a journal
naming them is written and each is put in place (a rename locally, a server-side copy on S3).

A run killed before its journal leaves only staging, which the next run removes; one killed after it
is rolled forward by the next run (or the next commit under the same lock). Readers never look under
.staging/, so they see every file of a commit or none of them, and never a temporary file.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline import locks, objectstore
from pipeline.owner import Owner

log = logging.getLogger("rnnflow.commit")
STAGING = ".staging"  # under the data root; no reader globs it
JOURNAL = ".commit"
REMOTE_STALE_SECONDS = 3600  # another host's staging (its writer cannot be asked) is removed after this


class Commit:
    """Stage files (path(), write_*()), then apply() puts them all in place; discard() drops them."""

    def __init__(self, root, lock: str):
        self.root, self.lock = root, lock
        self.txid = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{Owner.me().token}-{uuid.uuid4().hex[:8]}"
        self.folder = root / STAGING / self.txid
        self.files: list[str] = []  # paths relative to the root, in the order they are put in place

    def path(self, final) -> Path:
        """Where to write the staged copy of `final` (its folder made, locally)."""
        rel = relative(self.root, final)
        if rel not in self.files:
            self.files.append(rel)
        staged = self.folder / rel
        if not objectstore.is_remote(staged):
            staged.parent.mkdir(parents=True, exist_ok=True)
        return staged

    def write_bytes(self, data: bytes, final) -> None:
        staged = self.path(final)
        if objectstore.is_remote(staged):
            objectstore.put_bytes(staged, data)
        else:
            staged.write_bytes(data)

    def write_parquet(self, frame: pl.DataFrame, final) -> None:
        staged = self.path(final)
        if objectstore.is_remote(staged):
            buffer = io.BytesIO()
            frame.write_parquet(buffer, compression="zstd", statistics=True)
            objectstore.put_bytes(staged, buffer.getvalue())
        else:
            frame.write_parquet(staged, compression="zstd", statistics=True)

    def write_json(self, obj: object, final) -> None:
        self.write_bytes((json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode(), final)

    def add_file(self, local: Path, final) -> None:
        """A finished local file (e.g. a partition written chunk by chunk) as the staged `final`."""
        staged = self.path(final)
        if objectstore.is_remote(staged):
            objectstore.put_file(staged, local)
            local.unlink(missing_ok=True)
        elif Path(local) != staged:
            os.replace(local, staged)

    def apply(self, held: bool = False) -> None:
        """Put every staged file in place; a crash from here on is rolled forward by the next run.
        held: the caller holds the commit's lock already (e.g. an ingest, for its whole batch)."""
        with contextlib.nullcontext() if held else locks.hold(self.root, self.lock):
            finish_crashed(self.root, self.lock)  # a crashed commit under this lock goes first
            _write_journal(self.root, self.txid, {"lock": self.lock, "files": self.files})
            _apply(self.root, self.txid, self.files)

    def discard(self) -> None:
        objectstore.remove_tree(self.folder)

    def __enter__(self) -> Commit:
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is not None:
            self.discard()


def relative(root, path) -> str:
    base, full = str(root).rstrip("/"), str(path)
    if not full.startswith(base + "/"):
        raise ValueError(f"{path} is not under the data root {root}")
    return full[len(base) + 1 :]


def _write_journal(root, txid: str, data: dict) -> None:
    journal, text = root / STAGING / f"{txid}{JOURNAL}", json.dumps(data).encode()
    if objectstore.is_remote(journal):
        objectstore.put_bytes(journal, text)
        return
    tmp = journal.with_name(f"{journal.name}.tmp")
    tmp.write_bytes(text)
    os.replace(tmp, journal)


def _apply(root, txid: str, files: list[str]) -> None:
    """Idempotent: a file already moved is skipped, so a roll-forward may repeat a crashed apply."""
    folder = root / STAGING / txid
    for rel in files:
        staged, final = folder / rel, root / rel
        if objectstore.is_remote(root):
            if staged.exists():
                objectstore.copy(staged, final)
            continue
        final.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # moved already
            os.replace(staged, final)
    journal = root / STAGING / f"{txid}{JOURNAL}"
    if objectstore.is_remote(root):
        with contextlib.suppress(FileNotFoundError):
            journal.unlink()
    else:
        journal.unlink(missing_ok=True)
    objectstore.remove_tree(folder)


def _owner_gone(txid: str) -> bool:
    """The writer of a staging folder or journal has stopped (crashed); a live one's are left alone."""
    parts = txid.split("-")
    owner = Owner.parse("-".join(parts[1:4])) if len(parts) >= 5 else None
    alive = owner.alive() if owner is not None else None
    if alive is not None:
        return not alive
    try:  # another host's (or an unknown) writer: gone once its staging is old
        started = datetime.strptime(parts[0], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return False
    return time.time() - started > REMOTE_STALE_SECONDS


def _journals(root) -> dict[str, dict]:
    staging = root / STAGING
    found = {}
    if not staging.exists():
        return found
    for entry in staging.iterdir():
        if entry.name.endswith(JOURNAL):
            try:
                found[entry.name.removesuffix(JOURNAL)] = json.loads(entry.read_bytes())
            except (ValueError, FileNotFoundError):
                continue  # written whole, so unreadable means gone meanwhile
    return found


def finish_crashed(root, lock: str) -> list[str]:
    """Finish the crashed commits made under `lock`, which the caller holds."""
    return _roll_forward(root, lock)


def _roll_forward(root, lock: str | None = None) -> list[str]:
    """Finish the crashed commits (under `lock` only, when given: the caller holds it)."""
    done = []
    for txid, data in _journals(root).items():
        if (lock is not None and data.get("lock") != lock) or not _owner_gone(txid):
            continue
        if lock is None:
            with locks.hold(root, data["lock"]):
                if txid in _journals(root):
                    _apply(root, txid, data["files"])
        else:
            _apply(root, txid, data["files"])
        log.warning("finished the commit of a run that stopped mid-way: %s", ", ".join(data["files"]))
        done.append(txid)
    return done


def recover(root) -> None:
    """What the next run does first: roll crashed commits forward, remove crashed writers' staging."""
    staging = root / STAGING
    if not staging.exists():
        return
    _roll_forward(root)
    journals = _journals(root)
    for entry in staging.iterdir():
        txid = entry.name.removesuffix(".tmp").removesuffix(JOURNAL)
        if txid in journals or not _owner_gone(txid):
            continue
        objectstore.remove_tree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
        log.info("removed what a stopped run left in %s: %s", STAGING, entry.name)
