"""Ingest: sources -> validated, de-duplicated bronze Parquet batch + quarantine batch + report.

One ingest of a kind commits at a time (a lock on the data root), so the duplicate rule holds across
concurrent runs; a batch (bronze, quarantine, its record under batches/) appears whole or not at all,
and sources already committed are not ingested twice: the re-run reports the committed batch."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline import commit, locks, objectstore, storage
from pipeline.families import family_of
from pipeline.kinds import Kind
from pipeline.layout import Layout
from pipeline.sources import LINEAGE, MALFORMED, SourceError

log = logging.getLogger("rnnflow.ingest")


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


def check_sources(
    sources: list[str], kind: Kind, text_col: str | None = None, label_col: str | None = None
) -> None:
    """Everything about the sources that can be known without reading their rows (they exist, their
    format and options, their columns): a SourceError naming the source and the fix, before any work."""
    if not sources:
        raise ValueError("ingest needs at least one SOURCE (file, folder or special source name)")
    family = family_of(kind)
    for source in sources:
        name = re.split(r"[:?]", source, maxsplit=1)[0]
        if (kind.name, name) in family.special_checks:
            family.special_checks[(kind.name, name)](source)
        elif objectstore.is_url(source):  # its rows are read from a copy; here: it exists
            remote = objectstore.open_path(source)
            objectstore.check(remote)
            if not remote.exists():
                raise SourceError(f"{source}: no such object or prefix")
        else:
            family.check_source(Path(source), kind, text_col, label_col)


def load_sources(
    sources: list[str], kind: Kind, text_col: str | None = None, label_col: str | None = None
) -> pl.DataFrame:
    """Every source as raw string rows with lineage; special names (e.g. names-dataset) dispatch."""
    family = family_of(kind)
    frames = []
    for source in sources:
        name = re.split(r"[:?]", source, maxsplit=1)[0]
        if (kind.name, name) in family.special_sources:
            frames.append(family.special_sources[(kind.name, name)](source, kind))
        elif objectstore.is_url(source):  # read from a local copy; lineage keeps the object's address
            with objectstore.local_copy(source) as local:
                try:
                    frame = family.read_source(local, kind, text_col, label_col)
                except SourceError as err:  # name the object, not the temporary copy
                    raise SourceError(str(err).replace(str(local), source.rstrip("/"))) from None
            frames.append(
                frame.with_columns(
                    pl.col("source_file").str.replace(str(local), source.rstrip("/"), literal=True)
                )
            )
        else:
            frames.append(family.read_source(Path(source), kind, text_col, label_col))
        log.info("read %s rows from %s", f"{frames[-1].height:,}", source)
    extras = getattr(kind, "extra_columns", ())  # e.g. reviews' rating: null where a source has none
    frames = [
        f.with_columns(pl.lit(None, pl.String).alias(c) for c in extras if c not in f.columns) for f in frames
    ]
    if any(MALFORMED in f.columns for f in frames):  # a file with malformed rows was read record by record
        frames = [
            f if MALFORMED in f.columns else f.with_columns(pl.lit(False).alias(MALFORMED)) for f in frames
        ]
    return pl.concat(frames, how="vertical_relaxed")


def validate(raw: pl.DataFrame, kind: Kind) -> pl.LazyFrame:
    """The kind's rules, after the format's: a malformed row (extra field, open quote) is malformed_row."""
    checked = kind.validate(raw.lazy())
    if MALFORMED not in raw.columns:
        return checked
    return checked.with_columns(
        pl.when(pl.col(MALFORMED)).then(pl.lit(MALFORMED)).otherwise("reason").alias("reason")
    ).drop(MALFORMED)


def read_valid(sources: list[str], kind: Kind) -> tuple[pl.DataFrame, int]:
    """Sources -> their good rows (cleaned, typed) and how many were bad; nothing is written."""
    checked = validate(load_sources(sources, kind), kind).collect()
    good = checked.filter(pl.col("reason").is_null()).select(kind.good_columns())
    return good, checked.height - good.height


def fingerprint(
    sources: list[str], raw: pl.DataFrame, kind: Kind, text_col: str | None, label_col: str | None
) -> str:
    """What makes two ingests the same batch: the kind, the column options and the sources' content:
    each local file's path and bytes (fast), else every raw row with its lineage."""
    digest = hashlib.sha256(json.dumps([kind.name, text_col, label_col, raw.columns]).encode())
    files = [Path(s) for s in sources if not objectstore.is_url(s) and Path(s).is_file()]
    if len(files) == len(sources):
        for file in files:
            digest.update(str(file.resolve()).encode() + b"\0")
            with file.open("rb") as fh:
                digest.update(hashlib.file_digest(fh, "sha256").digest())
        return digest.hexdigest()
    for chunk in raw.iter_slices(500_000):
        digest.update(chunk.write_csv(include_header=False).encode())
    return digest.hexdigest()


def split_good_bad(
    raw: pl.DataFrame, kind: Kind, layout: Layout, batch_id: str, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    lineage = [
        pl.lit(batch_id).alias("ingest_batch_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
    ]
    seen = storage.scan_parquet_dir(layout.bronze)
    checked = mark_duplicates(validate(raw, kind), list(kind.key_columns), seen).with_columns(lineage)
    checked = storage.collect_named(
        checked, lambda: sorted(layout.bronze.rglob("*.parquet")), storage.bronze_fix(layout)
    )
    batch = [*LINEAGE, "ingest_batch_id", "ingested_at"]
    good = checked.filter(pl.col("reason").is_null()).select(*kind.good_columns(), *batch)
    bad = checked.filter(pl.col("reason").is_not_null()).select(*kind.bad_columns(), "reason", *batch)
    return good, bad


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
    raw = load_sources(sources, kind, text_col, label_col)
    key = fingerprint(sources, raw, kind, text_col, label_col)
    lock = f"ingest-{kind.name}"
    with locks.hold(layout.root, lock):  # one ingest of a kind at a time: duplicates are checked
        commit.finish_abandoned(layout.root, lock)  # against every batch committed before this one
        done = committed_batch(layout, key)
        if done is not None:
            log.info("batch %s: these sources were ingested already; nothing new", done.batch_id)
            return done
        now = now or datetime.now(UTC)
        batch_id = batch_id or new_batch_id(now)
        good, bad = split_good_bad(raw, kind, layout, batch_id, now)
        report = IngestReport(
            kind=kind.name,
            batch_id=batch_id,
            rows_in=raw.height,
            rows_ok=good.height,
            rows_quarantined=bad.height,
            reasons=dict(bad.group_by("reason").len().sort("reason").iter_rows()),
            per_source=_per_source(good, bad),
        )
        assert report.rows_in == report.rows_ok + report.rows_quarantined, "row conservation broken"
        with commit.Commit(layout.root, lock) as batch:
            if good.height:
                batch.write_parquet(good, layout.bronze / f"{batch_id}.parquet")
            if bad.height:
                batch.write_parquet(bad, layout.quarantine / f"{batch_id}.parquet")
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
    bronze, quarantine = (f / f"{report.batch_id}.parquet" for f in (layout.bronze, layout.quarantine))
    report.bronze_path = str(bronze) if report.rows_ok else None
    report.quarantine_path = str(quarantine) if report.rows_quarantined else None
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
    if report.rows_ok and not (layout.bronze / f"{report.batch_id}.parquet").exists():
        return None  # its bronze batch was removed: ingest the sources anew
    report.already_ingested = True
    return _with_paths(report, layout)


def _per_source(good: pl.DataFrame, bad: pl.DataFrame) -> dict[str, dict[str, int]]:
    counts = pl.concat(
        [
            good.group_by("source_file").len().with_columns(pl.lit("ok").alias("status")),
            bad.group_by("source_file").len().with_columns(pl.lit("quarantined").alias("status")),
        ]
    )
    out: dict[str, dict[str, int]] = {}
    for source, status, n in counts.select("source_file", "status", "len").iter_rows():
        out.setdefault(source, {"ok": 0, "quarantined": 0})[status] = n
    return out


def mark_duplicates(rows: pl.LazyFrame, key: list[str], seen: pl.LazyFrame | None) -> pl.LazyFrame:
    """Good rows repeating an earlier key (e.g. text+label, ticker+date) in this batch or in bronze
    get reason=duplicate: the first one seen wins."""
    good = pl.col("reason").is_null()
    first_in_batch = pl.struct(key).is_first_distinct().over(good)
    rows = rows.with_columns(
        pl.when(good & ~first_in_batch).then(pl.lit("duplicate")).otherwise("reason").alias("reason")
    )
    if seen is None:
        return rows
    seen_keys = seen.select(key).unique().with_columns(pl.lit(True).alias("_seen"))
    return (
        rows.join(seen_keys, on=key, how="left", nulls_equal=True, maintain_order="left")
        .with_columns(
            pl.when(pl.col("reason").is_null() & pl.col("_seen").fill_null(False))
            .then(pl.lit("duplicate"))
            .otherwise("reason")
            .alias("reason")
        )
        .drop("_seen")
    )
