"""Ingest: sources -> validated, de-duplicated bronze Parquet batch + quarantine batch + report."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from pipeline import objectstore, storage
from pipeline.families import family_of
from pipeline.kinds import Kind
from pipeline.layout import Layout
from pipeline.sources import LINEAGE, SourceError

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

    def as_dict(self) -> dict:
        return asdict(self)


def new_batch_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


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
        f.with_columns(pl.lit(None, pl.Int64).alias(c) for c in extras if c not in f.columns) for f in frames
    ]
    return pl.concat(frames, how="vertical_relaxed")


def read_valid(sources: list[str], kind: Kind) -> tuple[pl.DataFrame, int]:
    """Sources -> their good rows (cleaned, typed) and how many were bad; nothing is written."""
    checked = kind.validate(load_sources(sources, kind).lazy()).collect()
    good = checked.filter(pl.col("reason").is_null()).select(kind.good_columns())
    return good, checked.height - good.height


def split_good_bad(
    raw: pl.DataFrame, kind: Kind, layout: Layout, batch_id: str, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    lineage = [
        pl.lit(batch_id).alias("ingest_batch_id"),
        pl.lit(now).cast(pl.Datetime("us", "UTC")).alias("ingested_at"),
    ]
    seen = storage.scan_parquet_dir(layout.bronze)
    checked = mark_duplicates(kind.validate(raw.lazy()), list(kind.key_columns), seen)
    checked = checked.with_columns(lineage).collect()
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
    if not sources:
        raise ValueError("ingest needs at least one SOURCE (file, folder or special source name)")
    now = now or datetime.now(UTC)
    batch_id = batch_id or new_batch_id(now)
    raw = load_sources(sources, kind, text_col, label_col)
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
    if good.height:
        path = storage.write_parquet_atomic(good, layout.bronze / f"{batch_id}.parquet")
        report.bronze_path = str(path)
    if bad.height:
        path = storage.write_parquet_atomic(bad, layout.quarantine / f"{batch_id}.parquet")
        report.quarantine_path = str(path)
    log.info(
        "batch %s: %s in, %s ok, %s quarantined %s",
        batch_id,
        f"{report.rows_in:,}",
        f"{report.rows_ok:,}",
        f"{report.rows_quarantined:,}",
        report.reasons or "",
    )
    return report


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
