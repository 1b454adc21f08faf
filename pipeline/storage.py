"""Everything under the data root, local or s3://: atomic Parquet/JSON writes, bronze scans, feature-set
versions (folder, manifest, `LATEST`, pruning), shards and prediction partitions. Locally a file is
written aside and renamed; on S3 (no rename) each file is one object written by one PUT."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pipeline import objectstore
from pipeline.layout import Layout

STALE_TMP_SECONDS = 3600
KEEP_VERSIONS = 3  # feature-set versions kept per kind; older ones are pruned after a switch-over
PART_FILE = "part-0.parquet"  # one file per prediction partition, so replacing it is a single rename


# ---------------------------------------------------------------- atomic files


def _aside_name(path: Path) -> Path:
    """A fresh temporary name beside `path` (its folder made); crashed writers' old ones are removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now - stale.stat().st_mtime > STALE_TMP_SECONDS:  # a crashed writer's, not a live one's
                stale.unlink()
    return path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"


@contextlib.contextmanager
def _aside(path: Path) -> Iterator[Path]:
    """A temporary file beside `path`, renamed onto it when the block ends without error."""
    tmp = _aside_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(data: bytes, path: Path) -> Path:
    """Readers see the old file or the new, never half: aside + rename locally, one PUT on S3."""
    if objectstore.is_remote(path):
        objectstore.put_bytes(path, data)
    else:
        with _aside(path) as tmp:
            tmp.write_bytes(data)
    return path


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> Path:
    if objectstore.is_remote(path):
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        return write_bytes_atomic(buffer.getvalue(), path)
    with _aside(path) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
    return path


def write_json_atomic(obj: object, path: Path) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return write_bytes_atomic(text.encode(), path)


def write_text(text: str, path: Path) -> Path:
    return write_bytes_atomic(text.encode(), path)


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def read_text(path: Path) -> str:
    return path.read_text()


def read_json(path: Path) -> dict:
    return json.loads(read_text(path))


def read_parquet(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    return pl.read_parquet(str(path), columns=columns)  # polars reads s3:// itself (AWS_* settings)


# ---------------------------------------------------------------- bronze


def scan_parquet_dir(folder: Path) -> pl.LazyFrame | None:
    """Lazy scan of every Parquet file under a folder; None when there is none yet."""
    if not folder.exists() or not any(folder.rglob("*.parquet")):
        return None
    return pl.scan_parquet(str(folder / "**" / "*.parquet"))


def bronze_batches(layout: Layout) -> list[str]:
    """The kind's bronze batch files, by name (relative to bronze/<kind>/), sorted."""
    folder = layout.bronze
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet")) if folder.exists() else []


def read_bronze(layout: Layout, key: list[str], columns: list[str]) -> pl.DataFrame:
    """All bronze batches of a kind, the first ingested copy of each key, in ingest order."""
    bronze = scan_parquet_dir(layout.bronze)
    if bronze is None:
        raise FileNotFoundError(
            f"no bronze data for kind {layout.kind!r} under {layout.bronze}; "
            f"run `rnnflow ingest {layout.kind} SOURCE...` first"
        )
    return (
        bronze.sort(["ingested_at", "ingest_batch_id", "source_file", "source_row"])
        .unique(key, keep="first", maintain_order=True)
        .select(columns)
        .collect()
    )


# ---------------------------------------------------------------- feature-set versions


def fingerprint(rows: pl.DataFrame) -> str:
    """Content hash of the training data, independent of row order and of polars' hash functions."""
    data = rows.sort(rows.columns).write_csv().encode()
    return hashlib.sha256(data).hexdigest()


def new_feature_version(layout: Layout, data_hash: str) -> tuple[str, Path, datetime]:
    """-> (version, its folder, creation time) for a feature set about to be written."""
    created = datetime.now(UTC)
    version = f"{created:%Y%m%dT%H%M%S%fZ}-{data_hash[:8]}"
    return version, layout.features / version, created


def publish_features(layout: Layout, manifest: dict) -> dict:
    """Write the manifest into its version folder, then switch LATEST to it, then prune old versions:
    a reader following LATEST never sees a half-written feature set. -> the manifest as read back."""
    manifest = json.loads(json.dumps(manifest))  # as readers will see it (tuples -> lists)
    write_json_atomic(manifest, layout.features / manifest["version"] / "manifest.json")
    write_json_atomic({"version": manifest["version"]}, layout.features / "LATEST")  # the switch-over
    prune_versions(layout.features, KEEP_VERSIONS)
    return manifest


def prune_versions(folder: Path, keep: int) -> None:
    versions = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in versions[:-keep]:
        objectstore.remove_tree(old)


def latest_features(layout: Layout) -> tuple[Path, dict]:
    """The current feature set's folder and manifest."""
    pointer = layout.features / "LATEST"
    if not pointer.exists():
        raise FileNotFoundError(
            f"no features for kind {layout.kind!r} under {layout.features}; "
            f"run `rnnflow features {layout.kind}` first"
        )
    folder = layout.features / read_json(pointer)["version"]
    return folder, read_json(folder / "manifest.json")


def stale_reason(layout: Layout) -> str | None:
    """Why the current feature set no longer matches bronze (None: it does): new or removed batches."""
    try:
        _, manifest = latest_features(layout)
    except FileNotFoundError:
        return f"no feature set yet under {layout.features}"
    built, now = set(manifest.get("bronze_batches", [])), set(bronze_batches(layout))
    if "bronze_batches" not in manifest:  # built before batches were recorded: compare times
        created = datetime.fromisoformat(manifest["created_at"]).timestamp()
        newer = [b for b in now if (layout.bronze / b).stat().st_mtime > created]
        return f"{len(newer)} bronze batch(es) newer than features {manifest['version']}" if newer else None
    added, removed = sorted(now - built), sorted(built - now)
    if not added and not removed:
        return None
    parts = [f"{len(added)} new bronze batch(es) {added[:3]}" if added else ""]
    parts.append(f"{len(removed)} removed" if removed else "")
    return f"features {manifest['version']} predate bronze: " + ", ".join(p for p in parts if p)


def manifest_sha256(manifest: dict) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def split_files(folder: Path, manifest: dict, split: str) -> list[Path]:
    """One split's shard files of a feature set, in the manifest's order."""
    return [folder / f for f in manifest["files"] if f.startswith(f"shards/split={split}/")]


# ---------------------------------------------------------------- shards and partitions


def write_shard(frame: pl.DataFrame, path: Path) -> Path:
    """Shards live in a version folder no reader follows until LATEST names it: no need to write aside."""
    if objectstore.is_remote(path):
        return write_parquet_atomic(frame, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd")
    return path


def read_shard_arrays(path: Path, pad_id: int = 0) -> dict[str, np.ndarray]:
    """One bucket shard -> tokens (N, T_max) int64 padded with pad_id, lengths (N,), label ids (N,)."""
    frame = read_parquet(path, columns=["tokens", "length", "label_id"])
    lengths = frame["length"].to_numpy().astype(np.int64)
    flat = frame["tokens"].explode().to_numpy().astype(np.int64)
    tokens = np.full((len(lengths), int(lengths.max(initial=0))), pad_id, dtype=np.int64)
    rows = np.repeat(np.arange(len(lengths)), lengths)  # row of each flat token
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # its position
    tokens[rows, cols] = flat
    return {"tokens": tokens, "lengths": lengths, "labels": frame["label_id"].to_numpy()}


def write_partition(frame: pl.DataFrame, layout: Layout, ds: str) -> Path:
    """predictions/<kind>/ds=<ds>/part-0.parquet, replaced whole (one file, one rename or PUT)."""
    return write_parquet_atomic(frame, layout.prediction_partition(ds) / PART_FILE)


@dataclass(frozen=True)
class StagedPartition:
    """A day's partition written in full aside, not yet in place: commit_partition puts it there."""

    path: Path  # where it goes: predictions/<kind>/ds=<ds>/part-0.parquet
    staged: Path  # the local file holding it
    rows: int


class PartitionWriter:
    """Writes a day's partition chunk by chunk (one row group each) into one local file aside: beside
    the partition locally (so commit is a rename), in the temp folder for S3 (commit is one upload)."""

    def __init__(self, layout: Layout, ds: str):
        self.path = layout.prediction_partition(ds) / PART_FILE
        if objectstore.is_remote(self.path):
            handle, name = tempfile.mkstemp(prefix="rnnflow-partition-", suffix=".parquet")
            os.close(handle)
            self.staged = Path(name)
        else:
            self.staged = _aside_name(self.path)
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.staged, table.schema, compression="zstd")
        self._writer.write_table(table)
        self.rows += frame.height

    def finish(self) -> StagedPartition:
        if self._writer is None:
            raise ValueError(f"{self.path}: nothing was written; write at least one (empty) frame")
        self._writer.close()
        return StagedPartition(self.path, self.staged, self.rows)

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.staged.unlink(missing_ok=True)


def commit_partition(staged: StagedPartition) -> Path:
    """Put a staged partition in place whole: one rename locally, one upload (PUT) on S3."""
    if objectstore.is_remote(staged.path):
        objectstore.put_file(staged.path, staged.staged)
        staged.staged.unlink(missing_ok=True)
    else:
        os.replace(staged.staged, staged.path)
    return staged.path


def partition_rows(layout: Layout, ds: str) -> int | None:
    """Rows in a day's prediction partition (None: not written)."""
    path = layout.prediction_partition(ds) / PART_FILE
    return pl.scan_parquet(str(path)).select(pl.len()).collect().item() if path.exists() else None


def write_drift(report: dict, layout: Layout, ds: str) -> Path:
    return write_json_atomic(report, layout.drift_report(ds))


def read_drift(layout: Layout, ds: str) -> dict | None:
    path = layout.drift_report(ds)
    return read_json(path) if path.exists() else None
