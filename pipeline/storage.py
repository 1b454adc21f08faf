"""Everything under the data root, local or s3://: atomic Parquet/JSON writes, bronze scans, feature-set
versions (folder, manifest, `LATEST`, pruning), shards and prediction partitions. Files readers glob
(bronze, quarantine, predictions, drift) are published by pipeline.commit; a single file elsewhere is
written aside and renamed locally, one PUT on S3. A file that cannot be read fails naming it (CorruptFile)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pipeline import locks, objectstore
from pipeline.commit import Commit, recover
from pipeline.layout import Layout
from pipeline.owner import Owner

STALE_TMP_SECONDS = 3600
KEEP_VERSIONS = 3  # feature-set versions kept per kind; older ones are pruned after a switch-over
PART_FILE = "part-0.parquet"  # one file per prediction partition, so replacing it is a single rename
VERSION = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")  # a feature-set version, as new_feature_version names it


class CorruptFile(ValueError):
    """A file of the data root or of a model that exists but cannot be read; says which and what to do."""


def corrupt(path, what: str, err: BaseException | str, fix: str) -> CorruptFile:
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CorruptFile(f"{path}: not a readable {what} ({detail[:200]}); {fix}")


# ---------------------------------------------------------------- atomic files


def _aside_name(path: Path) -> Path:
    """A fresh temporary name beside `path` (its folder made), naming its writer; what crashed writers
    left beside it is removed (a live writer's is not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        owner = Owner.parse(stale.name.removesuffix(".tmp").rsplit(".", 1)[-1].rsplit("-", 1)[0])
        gone = owner.alive() is False if owner else False
        with contextlib.suppress(FileNotFoundError):
            if gone or now - stale.stat().st_mtime > STALE_TMP_SECONDS:
                stale.unlink()
    return path.parent / f".{path.name}.{Owner.me().token}-{uuid.uuid4().hex[:12]}.tmp"


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


DAMAGED = "it is damaged: restore it, or delete it and re-create it"


def read_json(path: Path, fix: str = DAMAGED) -> dict:
    try:
        data = json.loads(read_text(path))
    except (ValueError, UnicodeDecodeError) as err:
        raise corrupt(path, "JSON file", err, fix) from None
    if not isinstance(data, dict):
        raise corrupt(path, "JSON object", f"found a {type(data).__name__}", fix)
    return data


def read_parquet(path: Path, columns: list[str] | None = None, fix: str = DAMAGED) -> pl.DataFrame:
    try:
        return pl.read_parquet(str(path), columns=columns)  # polars reads s3:// itself (AWS_* settings)
    except pl.exceptions.ComputeError as err:  # the file's content (an I/O error stays one, and retryable)
        raise corrupt(path, "Parquet file", err, fix) from None


def collect_named(frame: pl.LazyFrame, files: Callable[[], list], fix: str) -> pl.DataFrame:
    """Collect a scan of several Parquet files; a damaged one fails naming it (polars does not). Any
    other failure is raised as it is."""
    try:
        return frame.collect()
    except pl.exceptions.ComputeError:
        for path in files():
            try:
                pq.read_metadata(str(path) if not objectstore.is_remote(path) else path.open("rb"))
            except (OSError, ValueError) as bad:  # the first unreadable file is the one to name
                if isinstance(bad, FileNotFoundError):
                    continue
                raise corrupt(path, "Parquet file", bad, fix) from None
        raise


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


def bronze_fix(layout: Layout) -> str:
    return (
        f"move that batch out of {layout.bronze} (its rows are then no longer ingested) and ingest its "
        "source again"
    )


def read_bronze(layout: Layout, key: list[str], columns: list[str]) -> pl.DataFrame:
    """All bronze batches of a kind, the first ingested copy of each key, in ingest order."""
    bronze = scan_parquet_dir(layout.bronze)
    if bronze is None:
        raise FileNotFoundError(
            f"no bronze data for kind {layout.kind!r} under {layout.bronze}; "
            f"run `rnnflow ingest {layout.kind} SOURCE...` first"
        )
    scan = (
        bronze.sort(["ingested_at", "ingest_batch_id", "source_file", "source_row"])
        .unique(key, keep="first", maintain_order=True)
        .select(columns)
    )
    return collect_named(scan, lambda: sorted(layout.bronze.rglob("*.parquet")), bronze_fix(layout))


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


def one_build_at_a_time(build: Callable) -> Callable:
    """For a family's build_features(kind, layout, cfg): one build of a kind at a time (a lock on the
    data root), and what a crashed build left (a version folder without its manifest) removed first."""

    @functools.wraps(build)
    def locked(kind, layout: Layout, cfg=None) -> dict:
        recover(layout.root)  # and what other killed runs left under the data root's .staging/
        with locks.hold(layout.root, f"features-{layout.kind}"):
            for orphan in unpublished_versions(layout.features):
                objectstore.remove_tree(orphan)
            return build(kind, layout, cfg)

    return locked


def publish_features(layout: Layout, manifest: dict) -> dict:
    """Write the manifest into its version folder, then switch LATEST to it, then prune old versions:
    a reader following LATEST never sees a half-written feature set. -> the manifest as read back."""
    manifest = json.loads(json.dumps(manifest))  # as readers will see it (tuples -> lists)
    write_json_atomic(manifest, layout.features / manifest["version"] / "manifest.json")
    write_json_atomic({"version": manifest["version"]}, layout.features / "LATEST")  # the switch-over
    prune_versions(layout.features, KEEP_VERSIONS)
    return manifest


def _version_folders(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if VERSION.match(p.name) and p.is_dir())


def unpublished_versions(folder: Path) -> list[Path]:
    """Version folders without a manifest: a build that stopped before publishing (call under the
    kind's features lock, so that none of them is being built)."""
    return [p for p in _version_folders(folder) if not (p / "manifest.json").exists()]


def prune_versions(folder: Path, keep: int) -> None:
    """Keep the newest `keep` published versions (a folder without a manifest never counts)."""
    published = [p for p in _version_folders(folder) if (p / "manifest.json").exists()]
    for old in published[:-keep]:
        objectstore.remove_tree(old)


def features_fix(layout: Layout) -> str:
    return f"re-run `rnnflow features {layout.kind}`"


def latest_features(layout: Layout) -> tuple[Path, dict]:
    """The current feature set's folder and manifest; LATEST must name a version of this folder."""
    pointer = layout.features / "LATEST"
    if not pointer.exists():
        raise FileNotFoundError(
            f"no features for kind {layout.kind!r} under {layout.features}; "
            f"run `rnnflow features {layout.kind}` first"
        )
    version = read_json(pointer, features_fix(layout)).get("version")
    if not isinstance(version, str) or not VERSION.match(version):
        raise CorruptFile(
            f"{pointer}: names {str(version)[:80]!r}, which is not a feature-set version of "
            f"{layout.features} (like 20261207T101500123456Z-1a2b3c4d); {features_fix(layout)}"
        )
    folder = layout.features / version
    manifest = folder / "manifest.json"
    if not manifest.exists():
        raise CorruptFile(f"{pointer}: names {version}, which has no {manifest}; {features_fix(layout)}")
    return folder, read_json(manifest, features_fix(layout))


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


def shard_fix(path: Path) -> str:
    """A damaged shard: its feature set is rebuilt (features/<kind>/<version>/shards/split=*/<file>)."""
    return f"rebuild the feature set: rnnflow features {Path(str(path)).parents[3].name}"


def read_shard(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    return read_parquet(path, columns=columns, fix=shard_fix(path))


def read_shard_arrays(path: Path, pad_id: int = 0) -> dict[str, np.ndarray]:
    """One bucket shard -> tokens (N, T_max) int64 padded with pad_id, lengths (N,), label ids (N,)."""
    frame = read_shard(path, columns=["tokens", "length", "label_id"])
    lengths = frame["length"].to_numpy().astype(np.int64)
    flat = frame["tokens"].explode().to_numpy().astype(np.int64)
    tokens = np.full((len(lengths), int(lengths.max(initial=0))), pad_id, dtype=np.int64)
    rows = np.repeat(np.arange(len(lengths)), lengths)  # row of each flat token
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # its position
    tokens[rows, cols] = flat
    return {"tokens": tokens, "lengths": lengths, "labels": frame["label_id"].to_numpy()}


def score_commit(layout: Layout) -> Commit:
    """A day's partition and its drift report, published together (one publish of a kind at a time)."""
    return Commit(layout.root, lock=f"predictions-{layout.kind}")


def write_partition(frame: pl.DataFrame, layout: Layout, ds: str) -> Path:
    """predictions/<kind>/ds=<ds>/part-0.parquet, replaced whole (one file, one rename or copy)."""
    path = layout.prediction_partition(ds) / PART_FILE
    with score_commit(layout) as commit:
        commit.write_parquet(frame, path)
        commit.apply()
    return path


class PartitionWriter:
    """Writes a day's partition chunk by chunk (one row group each) into one file staged by `commit`
    (under the data root's .staging/, never in the partition's folder); commit.apply() publishes it."""

    def __init__(self, commit: Commit, layout: Layout, ds: str, folder: Path | None = None):
        """folder: where the day's ds=<ds>/ goes (default predictions/<kind>/; shadow/<kind>/ for a
        challenger's scores)."""
        self.commit = commit
        self.path = (folder / f"ds={ds}" if folder else layout.prediction_partition(ds)) / PART_FILE
        if objectstore.is_remote(self.path):  # written locally, uploaded to the bucket's staging at finish
            handle, name = tempfile.mkstemp(prefix="rnnflow-partition-", suffix=".parquet")
            os.close(handle)
            self.staged = Path(name)
        else:
            self.staged = commit.path(self.path)
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.staged, table.schema, compression="zstd")
        self._writer.write_table(table)
        self.rows += frame.height

    def finish(self) -> int:
        """-> rows written; the file is staged, complete (uploaded to the bucket's staging on S3)."""
        if self._writer is None:
            raise ValueError(f"{self.path}: nothing was written; write at least one (empty) frame")
        self._writer.close()
        if objectstore.is_remote(self.path):
            self.commit.add_file(self.staged, self.path)
        return self.rows

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if objectstore.is_remote(self.path):
            self.staged.unlink(missing_ok=True)
        self.commit.discard()


def partition_rows(layout: Layout, ds: str) -> int | None:
    """Rows in a day's prediction partition (None: not written)."""
    path = layout.prediction_partition(ds) / PART_FILE
    if not path.exists():
        return None
    try:
        return pl.scan_parquet(str(path)).select(pl.len()).collect().item()
    except pl.exceptions.ComputeError as err:
        fix = f"re-score that day: rnnflow score {layout.kind} --ds {ds}"
        raise corrupt(path, "Parquet file", err, fix) from None


def write_drift(report: dict, layout: Layout, ds: str) -> Path:
    with score_commit(layout) as commit:
        commit.write_json(report, layout.drift_report(ds))
        commit.apply()
    return layout.drift_report(ds)


def read_drift(layout: Layout, ds: str) -> dict | None:
    path = layout.drift_report(ds)
    fix = f"re-score that day: rnnflow score {layout.kind} --ds {ds} ..."
    return read_json(path, fix) if path.exists() else None
