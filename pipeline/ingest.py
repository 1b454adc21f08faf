"""Ingest: sources -> validated, de-duplicated bronze Parquet batch + quarantine batch + report.

A batch of any size is read in chunks, checked, spilled to key buckets and de-duplicated bucket by
bucket (pipeline/dedup.py), so memory does not grow with it. One ingest of a kind commits at a time (a
lock on the data root), so the duplicate rule holds across concurrent runs; a batch (bronze, quarantine,
its record under batches/) appears whole or not at all, and sources already committed are not ingested
twice: the re-run reports the committed batch."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline import commit, dedup, locks, objectstore, storage
from pipeline.kinds import Kind
from pipeline.layout import Layout
from pipeline.reading import _local, check_sources, load_sources, raw_chunks, read_valid, validate
from pipeline.sources import LINEAGE, MALFORMED, MalformedBlock

__all__ = ["IngestReport", "check_sources", "ingest", "load_sources", "read_valid"]
log = logging.getLogger("rnnflow.ingest")
QUARANTINE_ROWS = 500_000  # bad rows buffered before a quarantine part is written
SPILL = ".spill"  # a batch's key buckets, under its staging folder (local roots) or a temporary folder


@dataclass
class IngestReport:
    kind: str
    batch_id: str
    rows_in: int
    rows_ok: int
    rows_quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)
    bronze_path: str | None = None
    quarantine_path: str | None = None
    already_ingested: bool = False  # these sources were committed before: this is that batch's report

    def as_dict(self) -> dict:
        return asdict(self)


def new_batch_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class Tally:
    """What a batch's rows came to, counted chunk by chunk."""

    rows_in: int = 0
    reasons: Counter = field(default_factory=Counter)
    per_source: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, frame: pl.DataFrame, status: str) -> None:
        if status == "quarantined":
            self.reasons.update(dict(frame.group_by("reason").len().iter_rows()))
        for source, n in frame.group_by("source_file").len().iter_rows():
            self.per_source.setdefault(source, {"ok": 0, "quarantined": 0})[status] += n


class BatchReader:
    """Pass one: every source's chunks validated, bad rows to the quarantine sink, good ones to their key
    bucket; the batch's fingerprint (what makes two ingests the same batch) computed on the way."""

    def __init__(self, kind: Kind, text_col: str | None, label_col: str | None, lineage: list[pl.Expr]):
        self.kind, self.text_col, self.label_col, self.lineage = kind, text_col, label_col, lineage
        self.columns: list[str] | None = None  # the raw columns, as the fingerprint has always named them
        self.malformed = False

    def read(self, sources, locals_, buckets: dedup.Buckets, bad: dedup.Parts, tally: Tally) -> str:
        files = [p for p in locals_ if p is not None and p.is_file()]
        by_bytes = len(files) == len(sources)  # each local file's path and bytes (fast), else its rows
        rows = hashlib.sha256()
        seq = 0
        for source, local in zip(sources, locals_, strict=True):
            for raw in self._chunks(source, local):
                if not by_bytes:
                    rows.update(raw.write_csv(include_header=False).encode())
                checked = validate(raw, self.kind).collect()
                order = pl.int_range(seq, seq + pl.len(), dtype=pl.Int64).alias(dedup.SEQ)
                checked = checked.with_columns(order)
                seq += checked.height
                tally.rows_in += checked.height
                broken = checked.filter(pl.col("reason").is_not_null())
                tally.count(broken, "quarantined")
                bad.write(
                    broken.with_columns(self.lineage).select(*self.kind.bad_columns(), "reason", *BATCH)
                )
                buckets.add(checked.filter(pl.col("reason").is_null()).drop("reason"))
        columns = list(self.columns or [])
        if self.malformed and MALFORMED not in columns:
            columns.append(MALFORMED)
        digest = hashlib.sha256(json.dumps([self.kind.name, self.text_col, self.label_col, columns]).encode())
        if not by_bytes:
            digest.update(rows.digest())
            return digest.hexdigest()
        for source, file in zip(sources, files, strict=True):
            name = source.rstrip("/") if objectstore.is_url(source) else str(file.resolve())
            digest.update(name.encode() + b"\0")
            with file.open("rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        return digest.hexdigest()

    def _chunks(self, source: str, local: Path | None):
        """The source in chunks; a CSV that polars refuses part-way is read whole, record by record
        (its chunks so far are not yielded twice: they are skipped by row count)."""
        done = 0
        try:
            for raw in raw_chunks(source, local, self.kind, self.text_col, self.label_col):
                done += raw.height
                yield self._note(raw)
        except MalformedBlock:
            whole = next(raw_chunks(source, local, self.kind, self.text_col, self.label_col, whole=True))
            yield self._note(whole.slice(done))

    def _note(self, raw: pl.DataFrame) -> pl.DataFrame:
        if self.columns is None:
            self.columns = raw.columns
        self.malformed |= MALFORMED in raw.columns
        return raw


BATCH = [*LINEAGE, "ingest_batch_id", "ingested_at"]


def split_good_bad(
    kind: Kind, rows: dedup.Buckets, seen: dedup.Buckets, lineage: list[pl.Expr], good, bad, tally: Tally
) -> None:
    """Pass two, bucket by bucket: a key's first copy in the batch goes to bronze unless an earlier
    batch holds it; every other copy to quarantine as a duplicate."""
    key = list(kind.key_columns)
    for bucket in rows:
        batch = rows.read(bucket)
        if batch is None:
            continue
        repeat = ~dedup.first_copies(batch, key) | dedup.seen_before(batch, key, seen.read(bucket))
        ok = batch.filter(~repeat).with_columns(lineage)
        repeated = batch.filter(repeat).with_columns(*lineage, pl.lit("duplicate").alias("reason"))
        tally.count(ok, "ok")
        tally.count(repeated, "quarantined")
        good.write(ok.select(*kind.good_columns(), *BATCH))
        bad.write(repeated.select(*kind.bad_columns(), "reason", *BATCH))


def spill_bronze_keys(layout: Layout, key: list[str], seen: dedup.Buckets) -> None:
    """Every earlier batch's keys into `seen`'s buckets, a record batch at a time."""
    files = sorted(layout.bronze.rglob("*.parquet")) if layout.bronze.exists() else []
    for file in files:
        try:
            for chunk in pl.scan_parquet(str(file)).select(key).collect_batches(chunk_size=500_000):
                seen.add(chunk)
        except pl.exceptions.ComputeError as err:
            raise storage.corrupt(file, "Parquet file", err, storage.bronze_fix(layout)) from None


def _source_bytes(local: Path | None) -> int:
    if local is None or not local.exists():
        return 0
    if local.is_file():
        return local.stat().st_size
    return sum(p.stat().st_size for p in local.rglob("*") if p.is_file())


def _bronze_bytes(layout: Layout) -> int:
    if not layout.bronze.exists():
        return 0
    return sum(p.stat().st_size for p in layout.bronze.rglob("*.parquet"))


def _stage(batch: commit.Commit, parts: list[Path], folder, batch_id: str) -> None:
    """A batch's rows as <batch_id>.parquet, or as <batch_id>/part-*.parquet when they came to several
    files (a large batch: a part per key bucket); readers read every Parquet file under the folder."""
    if len(parts) == 1:
        batch.add_file(parts[0], folder / f"{batch_id}.parquet")
        return
    for part in parts:
        batch.add_file(part, folder / batch_id / part.name)


def batch_path(folder, batch_id: str):
    """Where a committed batch's rows are under `folder` (bronze or quarantine), or None."""
    for path in (folder / f"{batch_id}.parquet", folder / batch_id):
        if path.exists():
            return path
    return None


@contextlib.contextmanager
def _spill_folder(batch: commit.Commit):
    """Local disk for the buckets: the batch's own staging (a killed run's is removed by the next), or a
    temporary folder when the data root is on an object store."""
    if not objectstore.is_remote(batch.folder):
        folder = batch.folder / SPILL
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="rnnflow-ingest-") as tmp:
        yield Path(tmp)


def ingest(
    sources: list[str],
    kind: Kind,
    layout: Layout,
    batch_id: str | None = None,
    now: datetime | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
) -> IngestReport:
    """Read, validate and write one batch; bad rows go to quarantine, never stop the run.

    text_col/label_col: source columns holding the text and label (bronze keeps the kind's names).
    """
    check_sources(sources, kind, text_col, label_col)
    commit.recover(layout.root)  # what a killed run left: its commit finished, or its staging removed
    now = now or datetime.now(UTC)
    batch_id = batch_id or new_batch_id(now)
    lineage = [
        pl.lit(batch_id).alias("ingest_batch_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
    ]
    lock, key_columns, tally = f"ingest-{kind.name}", list(kind.key_columns), Tally()
    with contextlib.ExitStack() as stack:
        batch = stack.enter_context(commit.Commit(layout.root, lock))
        spill = stack.enter_context(_spill_folder(batch))
        locals_ = [_local(source, kind, stack) for source in sources]
        count = dedup.bucket_count(sum(map(_source_bytes, locals_)) + 3 * _bronze_bytes(layout))
        rows = dedup.Buckets(spill / "rows", count, key_columns)
        good = dedup.Parts(spill / "bronze")  # a part per bucket
        bad = dedup.Parts(spill / "quarantine", flush_rows=QUARANTINE_ROWS)
        reader = BatchReader(kind, text_col, label_col, lineage)
        key = reader.read(sources, locals_, rows, bad, tally)
        rows.close()
        with locks.hold(layout.root, lock):  # one ingest of a kind at a time: duplicates are checked
            commit.finish_abandoned(layout.root, lock)  # against every batch committed before this one
            done = committed_batch(layout, key)
            if done is not None:
                batch.discard()
                log.info("batch %s: these sources were ingested already; nothing new", done.batch_id)
                return done
            seen = dedup.Buckets(spill / "seen", count, key_columns)
            spill_bronze_keys(layout, key_columns, seen)
            seen.close()
            split_good_bad(kind, rows, seen, lineage, good, bad, tally)
            report = IngestReport(
                kind=kind.name,
                batch_id=batch_id,
                rows_in=tally.rows_in,
                rows_ok=good.rows,
                rows_quarantined=bad.rows,
                reasons=dict(sorted(tally.reasons.items())),
                per_source=tally.per_source,
            )
            assert report.rows_in == report.rows_ok + report.rows_quarantined, "row conservation broken"
            assert sum(report.reasons.values()) == report.rows_quarantined, "a bad row without one reason"
            _stage(batch, good.close(), layout.bronze, batch_id)
            _stage(batch, bad.close(), layout.quarantine, batch_id)
            batch.write_json(
                {"fingerprint": key, "report": report.as_dict()}, layout.batches / f"{key[:32]}.json"
            )
            batch.apply(held=True)
    report = _with_paths(report, layout)
    log.info(
        "batch %s: %s in, %s ok, %s quarantined %s",
        batch_id,
        f"{report.rows_in:,}",
        f"{report.rows_ok:,}",
        f"{report.rows_quarantined:,}",
        report.reasons or "",
    )
    return report


def _with_paths(report: IngestReport, layout: Layout) -> IngestReport:
    """Where the batch's files are under this data root (a copied root reports its own)."""
    bronze, quarantine = (batch_path(f, report.batch_id) for f in (layout.bronze, layout.quarantine))
    report.bronze_path = str(bronze) if report.rows_ok and bronze else None
    report.quarantine_path = str(quarantine) if report.rows_quarantined and quarantine else None
    return report


def committed_batch(layout: Layout, key: str) -> IngestReport | None:
    """The report of the batch these sources were committed as, while its bronze is still there."""
    record = layout.batches / f"{key[:32]}.json"
    if not record.exists():
        return None
    data = storage.read_json(record, "delete it; the sources are then ingested as a new batch")
    if data.get("fingerprint") != key:
        return None
    report = IngestReport(**data["report"])
    if report.rows_ok and batch_path(layout.bronze, report.batch_id) is None:
        return None  # its bronze batch was removed: ingest the sources anew
    report.already_ingested = True
    return _with_paths(report, layout)
