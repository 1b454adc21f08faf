"""Price sources: daily OHLCV bars from CSV/TSV/Parquet, one file per ticker or one long file, as strings.

Every value stays a string here (nothing is dropped or coerced), so validation can quarantine a bad
number or date with its reason; the ticker comes from a `ticker`/`symbol` column, else the file name.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from pipeline import objectstore
from pipeline.kinds import PriceKind
from pipeline.sources import MALFORMED, SourceError, read_delimited

SUFFIXES = (".csv", ".tsv", ".parquet")
OUTPUT = ("ticker", "date", "open", "high", "low", "close", "volume", "adj_close")


def read_price_source(path: Path, kind: PriceKind) -> pl.DataFrame:
    """A file, or a folder of files (one per ticker, e.g. AAPL.csv), -> OUTPUT strings + lineage."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise SourceError(f"{path}: directory holds no .csv/.tsv/.parquet price files")
        return pl.concat([read_price_file(f, kind) for f in files], how="vertical")
    return read_price_file(path, kind)


def check_price_source(path: Path, kind: PriceKind) -> None:
    """What read_price_source would refuse, found from the files' headers alone."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise SourceError(f"{path}: directory holds no .csv/.tsv/.parquet price files")
    for file in files:
        if file.suffix.lower() not in SUFFIXES:
            suffix = file.suffix.lower()
            raise SourceError(
                f"{file}: unsupported price source {suffix!r}; use .csv, .tsv, .parquet or a folder"
            )
        if file.stat().st_size == 0:
            raise SourceError(f"{file}: file is empty; expected a header Date,Open,High,Low,Close,Volume")
        try:
            if file.suffix.lower() == ".parquet":
                header = pl.DataFrame(schema=pl.read_parquet_schema(str(file)))
            else:
                header = read_delimited(file, n_rows=0)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise SourceError(f"{file}: cannot be read: {err}".splitlines()[0]) from None
        read_price_file(file, kind, frame=header)  # the column checks, on no rows


def read_price_file(path: Path, kind: PriceKind, frame: pl.DataFrame | None = None) -> pl.DataFrame:
    """One file (or an already read `frame`, named by `path`) -> OUTPUT strings + lineage."""
    suffix = path.suffix.lower()
    if frame is None:
        if suffix not in SUFFIXES:
            raise SourceError(
                f"{path}: unsupported price source {suffix!r}; use .csv, .tsv, .parquet or a folder"
            )
        try:
            frame = read_delimited(path) if suffix != ".parquet" else _as_strings(pl.read_parquet(path))
        except pl.exceptions.PolarsError as err:
            raise SourceError(f"{path}: cannot be read as {suffix[1:]}: {err}".splitlines()[0]) from None
    if frame.width == 0:
        raise SourceError(f"{path}: file is empty; expected a header Date,Open,High,Low,Close,Volume")
    by_name = {_norm(c): c for c in frame.columns}
    chosen: dict[str, str] = {}
    for want in OUTPUT:
        for candidate in (want, *kind.column_aliases.get(want, ())):
            if _norm(candidate) in by_name:
                chosen[want] = by_name[_norm(candidate)]
                break
    missing = [c for c in kind.required_columns if c not in chosen]
    if missing:
        raise SourceError(
            f"{path}: missing column(s) {missing}; found columns {frame.columns}; expected "
            "Date,Open,High,Low,Close,Volume[,Adj Close] (one file per ticker, ticker = file name) "
            "or the same with a Ticker/Symbol column"
        )
    ticker = pl.col(chosen["ticker"]) if "ticker" in chosen else pl.lit(path.stem.upper())
    exprs = [ticker.cast(pl.String).alias("ticker")]
    exprs += [
        pl.col(chosen[c]).cast(pl.String).alias(c) if c in chosen else pl.lit(None, pl.String).alias(c)
        for c in OUTPUT[1:]
    ]
    if MALFORMED in frame.columns:
        exprs.append(pl.col(MALFORMED))
    return frame.select(exprs).with_columns(
        pl.lit(str(path)).alias("source_file"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("source_row"),
    )


def _norm(name: str) -> str:
    """'Adj Close' / 'adj_close' / ' ADJ-CLOSE ' -> 'adj_close'."""
    return re.sub(r"[\s\-_]+", "_", name.strip().lower())


def _as_strings(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed Parquet columns -> strings; dates and timestamps as YYYY-MM-DD."""
    return frame.select(
        pl.col(c).dt.strftime("%Y-%m-%d")
        if dtype in (pl.Date,) or isinstance(dtype, pl.Datetime)
        else pl.col(c).cast(pl.String)
        for c, dtype in frame.schema.items()
    )


def check_scoring_input(kind: PriceKind, input_path: str | None) -> None:
    if input_path is not None and not objectstore.as_path(input_path).exists():
        raise ValueError(
            f"{input_path}: no such file or directory; pass bars as .csv/.parquet or omit --input"
        )
