"""Price bars read from a PyPI package (`rnnflow[demo]`): `bokeh-stocks` (daily OHLCV of AAPL, FB, GOOG,
IBM, MSFT to 2013, public domain)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import polars as pl

from pipeline.kinds import PriceKind
from pipeline.prices.sources import read_price_file
from pipeline.sources import SourceError, package_file

TICKERS = ("AAPL", "FB", "GOOG", "IBM", "MSFT")  # what the package holds


def bokeh_stocks_options(source: str) -> dict:
    """`bokeh-stocks[?tickers=AAPL,IBM]` -> its options; SourceError for a bad one or a missing package."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(source).query).items()}
    if set(query) - {"tickers"}:
        raise SourceError(f"{source}: unknown option(s) {sorted(set(query) - {'tickers'})}; use tickers=")
    wanted = [t.strip().upper() for t in query.get("tickers", ",".join(TICKERS)).split(",")]
    if set(wanted) - set(TICKERS):
        unknown = sorted(set(wanted) - set(TICKERS))
        raise SourceError(f"{source}: unknown ticker(s) {unknown}; the package has {', '.join(TICKERS)}")
    stocks_path()
    return query


def stocks_path() -> Path:
    return package_file("bokeh-stocks", "bokeh_sampledata", "bokeh-sampledata", "_data", "stocks.csv.gz")


def read_bokeh_stocks(source: str, kind: PriceKind) -> pl.DataFrame:
    """`bokeh-stocks[?tickers=AAPL,IBM]` -> raw bars, read like any long CSV with a ticker column."""
    query = bokeh_stocks_options(source)
    path = stocks_path()
    with gzip.open(path, "rb") as fh:
        frame = pl.read_csv(io.BytesIO(fh.read()), infer_schema=False)
    plain = path.parent / ".stocks.csv"  # never written: read_price_file only needs a name for lineage
    rows = read_price_file(plain, kind, frame=frame).with_columns(
        pl.lit(f"bokeh-stocks:{path.name}").alias("source_file")
    )
    if "tickers" in query:
        wanted = [t.strip().upper() for t in query["tickers"].split(",")]
        rows = rows.filter(pl.col("ticker").is_in(wanted))
    return rows


SPECIAL_SOURCES = {("prices", "bokeh-stocks"): read_bokeh_stocks}
SPECIAL_CHECKS = {("prices", "bokeh-stocks"): bokeh_stocks_options}
