"""Row rules for daily price bars: parse dates and numbers, then give each bad row exactly one `reason`."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import polars as pl

from pipeline.kinds import PriceKind

# Accepted date spellings, tried in order; day-first dates (31/12/2020) are not guessed at.
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%m/%d/%Y", "%d-%b-%Y", "%b %d, %Y")
PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_NUMBERS = (*PRICE_COLUMNS, "volume")


def parse_date(col: str) -> pl.Expr:
    text = pl.col(col).str.strip_chars()
    # "2000-03-01 00:00:00" and "2000-03-01T00:00:00Z" keep their date part
    text = pl.when(text.str.contains(r"^\d{4}-\d{2}-\d{2}[ T]")).then(text.str.slice(0, 10)).otherwise(text)
    return pl.coalesce([text.str.strptime(pl.Date, fmt, strict=False) for fmt in DATE_FORMATS])


# Upper-case letters, digits and . - = ^ (BRK-B, BRK.B, ^GSPC, EURUSD=X), at most 20: no path separators,
# no control or replacement characters, nothing that cannot be a file name.
TICKER = r"^[A-Z0-9^][A-Z0-9.=^-]{0,19}$"
GROUPED = r"^\d{1,3}(,\d{3})+(\.\d+)?$"  # 1,234,567.5: commas only as whole thousands groups


def parse_number(col: str) -> pl.Expr:
    """'1,234.5' / ' $12.30 ' -> float; anything else ('12,5', '1,2345', 'NaN', 'inf') -> null, so the
    raw value goes to quarantine as unparseable_number."""
    text = pl.col(col).str.strip_chars().str.replace(r"^\$", "")
    text = pl.when(text.str.contains(GROUPED)).then(text.str.replace_all(",", "")).otherwise(text)
    number = text.cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number).otherwise(pl.lit(None, dtype=pl.Float64))


def _blank(col: str) -> pl.Expr:
    return pl.col(f"raw_{col}").is_null() | (pl.col(f"raw_{col}").str.strip_chars() == "")


def safe_name(ticker: str) -> str:
    """A ticker as part of a file name (plots): bronze from before the ticker rule may hold anything."""
    return re.sub(r"[^A-Za-z0-9.=^-]", "_", ticker)[:40] or "_"


def reason(today: date) -> pl.Expr:
    """The first rule a bar breaks, or null for a good bar (the order is the order of checks)."""
    h, low, c, v = (pl.col(x) for x in ("high", "low", "close", "volume"))
    unparseable = pl.any_horizontal(
        [pl.col(x).is_null() & ~_blank(x) for x in (*REQUIRED_NUMBERS, "adj_close")]
    )
    return (
        pl.when(pl.col("ticker").is_null() | (pl.col("ticker") == ""))
        .then(pl.lit("missing_ticker"))
        .when(~pl.col("ticker").str.contains(TICKER))
        .then(pl.lit("invalid_ticker"))
        .when(_blank("date"))
        .then(pl.lit("missing_date"))
        .when(pl.col("date").is_null())
        .then(pl.lit("unparseable_date"))
        .when(pl.col("date") > today)
        .then(pl.lit("future_date"))
        .when(pl.any_horizontal([_blank(x) for x in REQUIRED_NUMBERS]))
        .then(pl.lit("missing_value"))
        .when(unparseable)
        .then(pl.lit("unparseable_number"))
        .when(pl.any_horizontal([pl.col(x) <= 0 for x in PRICE_COLUMNS]))
        .then(pl.lit("non_positive_price"))
        .when(h < low)
        .then(pl.lit("high_below_low"))
        .when((c < low) | (c > h))
        .then(pl.lit("close_outside_range"))
        .when((pl.col("open") < low) | (pl.col("open") > h))
        .then(pl.lit("open_outside_range"))
        .when(v < 0)
        .then(pl.lit("negative_volume"))
        .otherwise(pl.lit(None, dtype=pl.String))
        .alias("reason")
    )


def validate(raw: pl.LazyFrame, kind: PriceKind, today: date | None = None) -> pl.LazyFrame:
    """Raw string bars -> typed bars (ticker upper-cased) + raw_* copies + `reason`; nothing dropped.
    A bar dated after `today` (UTC, by default) is a future_date: no market has closed it yet."""
    today = today or datetime.now(UTC).date()
    columns = ("ticker", "date", *kind.numeric_columns)
    return (
        raw.with_columns(pl.col(c).alias(f"raw_{c}") for c in columns)
        .with_columns(
            pl.col("ticker").str.strip_chars().str.to_uppercase(),
            parse_date("date").alias("date"),
            *(parse_number(c).alias(c) for c in kind.numeric_columns),
        )
        .with_columns(reason(today))
    )
