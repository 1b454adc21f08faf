"""Row rules shared by every text kind: normalise, then give each bad row exactly one `reason`."""

from __future__ import annotations

import polars as pl

from pipeline.kinds import TextKind
from pipeline.splits import SPLIT_ALIASES, UNSUP

CONTROL_CHARS = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"  # C0, C1, line/paragraph separators
REPLACEMENT_CHAR = "\ufffd"  # what a lossy decode leaves where bytes were not UTF-8
# U+0080..U+009F read as the Windows-1252 characters they were meant to be (5 bytes stay undefined).
CP1252_C1 = {
    chr(b): bytes([b]).decode("cp1252") for b in range(0x80, 0xA0) if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}


def clean_text(kind: TextKind) -> pl.Expr:
    """The kind's text as ingest stores it and as the model sees it at scoring time."""
    text = pl.col(kind.text_col)
    if kind.repair_cp1252:
        text = text.str.replace_many(CP1252_C1)
    if kind.strip_html:
        text = text.str.replace_all(r"(?i)<br\s*/?>|<[^>]{0,200}>", " ").str.replace_all(r"\s+", " ")
    # invisible format characters (ZWSP, BOM, LRM/RLM, soft hyphen) would split duplicates and vocab;
    # ASCII text is its own NFKC form and holds none, so only the other rows pay for it (5x faster)
    unicode = pl.when(text.str.len_bytes() != text.str.len_chars()).then(text)
    text = pl.coalesce(unicode.str.normalize("NFKC").str.replace_all(r"\p{Cf}", ""), text).str.strip_chars()
    return text.str.to_lowercase() if kind.lowercase else text


def mapped(value: pl.Expr, mapping: dict[str, str], default: pl.Expr | str) -> pl.Expr:
    """`value` looked up in a small table, as a when-chain: polars' replace() is not streamed (a 10M-row
    ingest held every row at once, 1.2 GB)."""
    chain = pl
    for key, target in mapping.items():
        chain = chain.when(value == key).then(pl.lit(target, pl.String))
    default = pl.lit(default, pl.String) if isinstance(default, str) else default
    return default if chain is pl else chain.otherwise(default)


def clean_label(kind: TextKind) -> pl.Expr:
    """Stripped, inner runs of spaces made one; a free label set is cased by the kind's label_case
    (names: title, so ` irish `, `IRISH` and `Irish` are one class); a fixed set (reviews) is
    lower-cased, then its aliases applied."""
    label = pl.col(kind.label_col).str.strip_chars().str.replace_all(r" {2,}", " ")
    if kind.labels is not None:
        label = label.str.to_lowercase()
        return mapped(label, kind.label_aliases, default=label)
    cases = {"keep": label, "title": label.str.to_titlecase(), "lower": label.str.to_lowercase()}
    if kind.label_case not in cases:
        raise ValueError(f"kind {kind.name!r}: label_case {kind.label_case!r}; choose one of {sorted(cases)}")
    return cases[kind.label_case]


def extra_values(kind: TextKind) -> list[pl.Expr]:
    """Optional integer columns (reviews' rating): the raw value kept in raw_<col>, the number in <col>."""
    out = []
    for col in kind.extra_columns:
        raw = pl.col(col).cast(pl.String).str.strip_chars()
        out += [raw.alias(f"raw_{col}"), raw.cast(pl.Int64, strict=False).alias(col)]
    return out


def extra_rules(kind: TextKind) -> list[tuple[pl.Expr, str]]:
    """invalid_<col>: a given value that is not a whole number in the kind's range (never nulled silently)."""
    rules = []
    for col in kind.extra_columns:
        raw, value = pl.col(f"raw_{col}"), pl.col(col)
        low, high = kind.extra_ranges.get(col, (None, None))
        bad = value.is_null()
        if low is not None:
            bad = bad | (value < low) | (value > high)
        rules.append((raw.is_not_null() & (raw != "") & bad, f"invalid_{col}"))
    return rules


def normalise(kind: TextKind) -> list[pl.Expr]:
    """Clean text/label/split columns; the raw values stay in `raw_*` for quarantine."""
    return [
        pl.col(kind.text_col).alias(f"raw_{kind.text_col}"),
        clean_text(kind).alias(kind.text_col),
        clean_label(kind).alias(kind.label_col),
        pl.when(pl.col("split").is_null() | (pl.col("split").str.strip_chars() == ""))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(mapped(pl.col("split").str.strip_chars().str.to_lowercase(), SPLIT_ALIASES, "invalid"))
        .alias("split"),
        *extra_values(kind),
    ]


def text_rules(kind: TextKind) -> list[tuple[pl.Expr, str]]:
    """The checks of the text itself, in order: ingest quarantines such rows, scoring leaves them unscored."""
    text, raw = pl.col(kind.text_col), pl.col(f"raw_{kind.text_col}")
    return [
        (raw.str.contains(REPLACEMENT_CHAR, literal=True).fill_null(False), "undecodable_bytes"),
        (text.is_null() | (text == ""), "empty"),
        (text.str.contains(CONTROL_CHARS), "control_characters"),
        (text.str.len_chars() > kind.max_chars, "too_long"),
    ]


def first_broken(rules: list[tuple[pl.Expr, str]]) -> pl.Expr:
    """The name of the first rule that holds, or null."""
    chain = pl.when(rules[0][0]).then(pl.lit(rules[0][1]))
    for condition, name in rules[1:]:
        chain = chain.when(condition).then(pl.lit(name))
    return chain.otherwise(pl.lit(None, dtype=pl.String))


def reason(kind: TextKind) -> pl.Expr:
    """The first rule a row breaks, or null for a good row (the order is the order of checks)."""
    label = pl.col(kind.label_col)
    missing_label = label.is_null() | (label == "")
    labelled = (pl.col("split") != UNSUP).fill_null(True)
    unknown = pl.lit(kind.labels is not None) & ~missing_label & ~label.is_in(list(kind.labels or ()))
    label_rules = [
        (pl.lit(kind.label_required) & missing_label & labelled, "missing_label"),
        (label.str.contains(REPLACEMENT_CHAR, literal=True).fill_null(False), "undecodable_bytes"),
        (label.str.contains(CONTROL_CHARS).fill_null(False), "control_characters"),
        (unknown, "unknown_label"),
        (pl.col("split") == "invalid", "invalid_split"),
    ]
    return first_broken(text_rules(kind) + label_rules + extra_rules(kind)).alias("reason")


def scoring_status(texts: pl.DataFrame, kind: TextKind) -> pl.Series:
    """Per scoring input row: "ok", or the text rule it breaks, judged on the text as ingest cleans it."""
    raw = f"raw_{kind.text_col}"
    checked = texts.select(pl.col(kind.text_col).alias(raw), clean_text(kind).alias(kind.text_col))
    return checked.select(first_broken(text_rules(kind)).fill_null("ok").alias("status"))["status"]


def validate(raw: pl.LazyFrame, kind: TextKind) -> pl.LazyFrame:
    """Raw rows -> normalised rows with a `reason` (null = good); nothing is dropped here."""
    return raw.with_columns(normalise(kind)).with_columns(reason(kind))
