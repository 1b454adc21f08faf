"""Price bars read from a PyPI package (`rnnflow[demo]`): `bokeh-stocks` (daily OHLCV of AAPL, FB, GOOG,
IBM, MSFT to 2013, public domain)."""

from __future__ import annotations

import gzip
import io
from urllib.parse import parse_qs, urlsplit

import polars as pl

from pipeline.kinds import PriceKind
from pipeline.prices.sources import read_price_file
from pipeline.sources import SourceError, package_file


def read_bokeh_stocks(source: str, kind: PriceKind) -> pl.DataFrame:
    """`bokeh-stocks[?tickers=AAPL,IBM]` -> raw bars, read like any long CSV with a ticker column."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(source).query).items()}
    if set(query) - {"tickers"}:
        raise SourceError(f"{source}: unknown option(s) {sorted(set(query) - {'tickers'})}; use tickers=")
    path = package_file("bokeh-stocks", "bokeh_sampledata", "bokeh-sampledata", "_data", "stocks.csv.gz")
    with gzip.open(path, "rb") as fh:
        frame = pl.read_csv(io.BytesIO(fh.read()), infer_schema=False)
    plain = path.parent / ".stocks.csv"  # never written: read_price_file only needs a name for lineage
    rows = read_price_file(plain, kind, frame=frame).with_columns(
        pl.lit(f"bokeh-stocks:{path.name}").alias("source_file")
    )
    if "tickers" in query:
        wanted = [t.strip().upper() for t in query["tickers"].split(",")]
        unknown = set(wanted) - set(rows["ticker"].unique())
        if unknown:
            raise SourceError(
                f"{source}: unknown ticker(s) {sorted(unknown)}; the package has AAPL, FB, GOOG, IBM, MSFT"
            )
        rows = rows.filter(pl.col("ticker").is_in(wanted))
    return rows


SPECIAL_SOURCES = {("prices", "bokeh-stocks"): read_bokeh_stocks}
