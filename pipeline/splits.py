"""Deterministic train/val/test assignment from a stable hash of the normalised text."""

from __future__ import annotations

import hashlib

import polars as pl

DEFAULT_RATIOS = (0.7, 0.15, 0.15)  # train, val, test: every family's feature default
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "unsup": "unsup",  # unlabelled rows (aclImdb's unsup/): a missing label is fine, never trained on
    "unlabelled": "unsup",
    "unlabeled": "unsup",
}
SPLITS = ("train", "val", "test")  # the splits features writes; `unsup` rows stay in bronze only
UNSUP = "unsup"


def _fraction(key: str) -> float:
    """A stable number in [0, 1) for a key (blake2b, unlike polars' hash, never changes)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def check_ratios(ratios: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(
            f"split_ratios (--split-ratios) must be three non-negative shares summing to 1, e.g. "
            f"0.7,0.15,0.15; got {','.join(str(r) for r in ratios)}"
        )
    return ratios


def assign_splits(rows: pl.DataFrame, text_col: str, ratios=DEFAULT_RATIOS) -> pl.DataFrame:
    """Fill null `split` values from a hash of the case-folded text, so one text never spans two splits."""
    train, val, _ = check_ratios(tuple(ratios))
    keys = rows.filter(pl.col("split").is_null()).get_column(text_col).str.to_lowercase().unique()
    if keys.is_empty():
        return rows
    table = _hash_table(keys).with_columns(
        pl.when(pl.col("_f") < train)
        .then(pl.lit(SPLITS[0]))
        .when(pl.col("_f") < train + val)
        .then(pl.lit(SPLITS[1]))
        .otherwise(pl.lit(SPLITS[2]))
        .alias("_hash_split")
    )
    filled = pl.coalesce("split", "_hash_split")
    return _join_keys(rows, text_col, table).with_columns(filled.alias("split")).drop("_key", "_hash_split")


def carve_split(
    rows: pl.DataFrame, text_col: str, share: float, source="train", target="val"
) -> pl.DataFrame:
    """Move about `share` of the `source` rows to `target`, by the same stable hash of the text."""
    keys = rows.filter(pl.col("split") == source).get_column(text_col).str.to_lowercase().unique()
    if keys.is_empty() or share <= 0:
        return rows
    table = _hash_table(keys).with_columns(
        pl.when(pl.col("_f") < share).then(pl.lit(target)).alias("_hash_split")
    )
    moved = (pl.col("split") == source) & pl.col("_hash_split").is_not_null()
    carved = pl.when(moved).then("_hash_split").otherwise("split")
    return _join_keys(rows, text_col, table).with_columns(carved.alias("split")).drop("_key", "_hash_split")


def _hash_table(keys: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"_key": keys, "_f": [_fraction(k) for k in keys.to_list()]})


def _join_keys(rows: pl.DataFrame, text_col: str, table: pl.DataFrame) -> pl.DataFrame:
    """rows + helper columns `_key` (case-folded text) and the table's `_hash_split` for it."""
    return rows.with_columns(pl.col(text_col).str.to_lowercase().alias("_key")).join(
        table.select("_key", "_hash_split"), on="_key", how="left", maintain_order="left"
    )
