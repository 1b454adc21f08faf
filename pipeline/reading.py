"""What ingest reads: sources checked from their headers, then read with lineage, in chunks of about
BLOCK_BYTES where the format allows (a CSV in blocks of text, Parquet by record batches), and validated."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from pipeline import objectstore
from pipeline.families import family_of
from pipeline.kinds import Kind
from pipeline.sources import MALFORMED, SourceError

log = logging.getLogger("rnnflow.ingest")
BLOCK_BYTES = 8 << 20  # of source text per chunk read (about 330k surnames)


def check_sources(
    sources: list[str], kind: Kind, text_col: str | None = None, label_col: str | None = None
) -> None:
    """Everything about the sources that can be known without reading their rows (they exist, their
    format and options, their columns): a SourceError naming the source and the fix, before any work."""
    if not sources:
        raise ValueError("ingest needs at least one SOURCE (file, folder or special source name)")
    family = family_of(kind)
    for source in sources:
        name = _special(source)
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
    """Every source as raw string rows with lineage, in memory (ingest reads them in chunks instead)."""
    with contextlib.ExitStack() as stack:
        frames = [
            frame
            for source in sources
            for frame in raw_chunks(source, _local(source, kind, stack), kind, text_col, label_col, True)
        ]
    if any(MALFORMED in f.columns for f in frames):  # a file with malformed rows was read record by record
        frames = [
            f if MALFORMED in f.columns else f.with_columns(pl.lit(False).alias(MALFORMED)) for f in frames
        ]
    return pl.concat(frames, how="vertical_relaxed")


def _local(source: str, kind: Kind, stack: contextlib.ExitStack) -> Path | None:
    """Where a source's files are read: the path, a local copy of an object-store source (kept while the
    stack is open), or None for a special source name (e.g. names-dataset)."""
    if (kind.name, _special(source)) in family_of(kind).special_sources:
        return None
    if objectstore.is_url(source):
        return stack.enter_context(objectstore.local_copy(source))
    return Path(source)


def _special(source: str) -> str:
    """The name a special source is looked up by: `names-dataset:US?top=100` -> `names-dataset`."""
    return re.split(r"[:?]", source, maxsplit=1)[0]


def raw_chunks(
    source: str,
    local: Path | None,
    kind: Kind,
    text_col: str | None,
    label_col: str | None,
    whole: bool = False,
) -> Iterator[pl.DataFrame]:
    """One source's raw string rows with lineage, in chunks of about BLOCK_BYTES where its family reads
    its format so (whole: one frame); special names dispatch; lineage names an object, not its copy."""
    family, name = family_of(kind), _special(source)
    extras = getattr(kind, "extra_columns", ())  # e.g. reviews' rating: null where a source has none
    if (kind.name, name) in family.special_sources:
        chunks = iter([family.special_sources[(kind.name, name)](source, kind)])
    elif whole or family.read_chunks is None:
        chunks = iter([family.read_source(local, kind, text_col, label_col)])
    else:
        chunks = family.read_chunks(local, kind, BLOCK_BYTES, text_col, label_col)
    rows = 0
    try:
        for frame in chunks:
            if objectstore.is_url(source):
                frame = frame.with_columns(
                    pl.col("source_file").str.replace(str(local), source.rstrip("/"), literal=True)
                )
            rows += frame.height
            missing = [c for c in extras if c not in frame.columns]
            yield frame.with_columns(pl.lit(None, pl.String).alias(c) for c in missing)
    except SourceError as err:  # name the object, not the temporary copy
        if not objectstore.is_url(source):
            raise
        raise SourceError(str(err).replace(str(local), source.rstrip("/"))) from None
    log.info("read %s rows from %s", f"{rows:,}", source)


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
