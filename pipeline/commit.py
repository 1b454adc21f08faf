"""Files that appear together or not at all (a bronze batch and its quarantine, a day's partition and its
drift report): each is written under <root>/.staging/<txid>/, then, holding the commit's lock, a journal
naming them is written and each is put in place (a rename locally, a server-side copy on S3).

A journal exists only while a commit is being applied under its lock, so a journal found by whoever
holds that lock was left by a crashed (or failed) apply: it is finished first, oldest first. A run
killed before its journal leaves only staging, which the next run removes once its writer is gone.
Readers never look under .staging/, so they see every file of a commit or none of them.
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
        self.journaled = False  # from then on the commit is finished, by this run or the next

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
            finish_abandoned(self.root, self.lock, but=self.txid)
            if not self.journaled:
                missing = [rel for rel in self.files if not (self.folder / rel).exists()]
                if missing:  # removed by someone who took this writer for a dead one: publish nothing
                    raise StagingLost(f"staged files vanished before the commit: {missing}; run again")
                locks.check_held(self.root, self.lock)
                _write_journal(self.root, self.txid, {"lock": self.lock, "files": self.files})
                self.journaled = True
            _apply(self.root, self.txid, self.files)

    def discard(self) -> None:
        """Drop the staged files, unless the journal is written: then the commit is finished instead
        (by this run's retry or by the next run under the lock), never left half-applied."""
        if not self.journaled:
            objectstore.remove_tree(self.folder)

    def __enter__(self) -> Commit:
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is not None:
            self.discard()


class StagingLost(OSError):
    """A commit's staged files were removed before it was applied (nothing was published)."""


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


def _owner_gone(entry) -> bool:
    """The writer of a staging folder has stopped (crashed); a live one's are left alone. Another
    host's writer cannot be asked: its staging is gone once nothing was written to it for an hour."""
    parts = entry.name.removesuffix(".tmp").removesuffix(JOURNAL).split("-")
    owner = Owner.parse("-".join(parts[1:4])) if len(parts) >= 5 else None
    alive = owner.alive() if owner is not None else None
    if alive is not None:
        return not alive
    return time.time() - _last_written(entry) > REMOTE_STALE_SECONDS


def _last_written(entry) -> float:
    """When anything under `entry` (a file or folder, local or s3://) was last written."""
    if objectstore.is_remote(entry):
        found = entry.fs.find(entry.path, detail=True, withdirs=False).values()
        times = [info["LastModified"].timestamp() for info in found if info.get("LastModified")]
    else:
        times = [p.stat().st_mtime for p in (entry, *(entry.rglob("*") if entry.is_dir() else ()))]
    return max(times, default=0.0)


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


def finish_abandoned(root, lock: str, but: str | None = None) -> list[str]:
    """Finish, oldest first, the commits under `lock` (which the caller holds) that their writer left
    half-applied: a journal under a held lock is nobody's live apply. -> their txids."""
    done = []
    for txid, data in sorted(_journals(root).items()):
        if data.get("lock") != lock or txid == but:
            continue
        _apply(root, txid, data["files"])
        log.warning("finished the commit of a run that stopped mid-way: %s", ", ".join(data["files"]))
        done.append(txid)
    return done


def recover(root) -> None:
    """What the next run does first: finish the commits whose lock is free (a held one's holder finishes
    them), and remove the staging of writers that stopped before their commit."""
    staging = root / STAGING
    if not staging.exists():
        return
    for lock in sorted({data.get("lock") for data in _journals(root).values()} - {None}):
        try:
            with locks.hold(root, lock, timeout=0):
                finish_abandoned(root, lock)
        except locks.LockTimeout:
            continue
    journals = _journals(root)
    for entry in staging.iterdir():
        txid = entry.name.removesuffix(".tmp").removesuffix(JOURNAL)
        if txid in journals or not _owner_gone(entry):
            continue
        objectstore.remove_tree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
        log.info("removed what a stopped run left in %s: %s", STAGING, entry.name)
