"""Features: bronze -> vocabularies, splits, length-bucketed token shards and a JSON manifest.

Rows with split `unsup` (unlabelled) are never trained on; explicit train rows without any val rows get
a val split carved out by text hash. `max_tokens` keeps the FIRST N tokens of a longer text.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import polars as pl

from pipeline import storage
from pipeline.buckets import assign_bucket, fit_boundaries, padding_stats
from pipeline.kinds import TextKind
from pipeline.layout import Layout
from pipeline.splits import DEFAULT_RATIOS, SPLITS, UNSUP, assign_splits, carve_split, check_ratios
from pipeline.text.vocab import TOKEN_SPECIALS, Vocabulary, token_counts

log = logging.getLogger("rnnflow.features")
WORD_PATTERN = r"[\w']+|[^\w\s]"  # words (with apostrophes) and single punctuation marks


@dataclass(frozen=True)
class FeatureConfig:
    split_ratios: tuple[float, float, float] = DEFAULT_RATIOS
    max_buckets: int = 32  # names: one bucket per exact length fits well within this
    min_freq: int = TextKind.min_freq  # tokens seen fewer times in train map to <unk> (a kind's default)
    max_vocab: int | None = None
    max_tokens: int | None = None  # longer sequences keep their first max_tokens tokens
    # the training batch the shards are cut for: the padding statistics in the manifest, and a floor of
    # 2 batches of rows per bucket on average (small batches cost as many steps as full ones)
    batch_size: int = 64

    @classmethod
    def for_kind(cls, kind: TextKind, **settings) -> FeatureConfig:
        """The kind's defaults (min_freq, max_tokens), with any non-None setting of this config on top
        (other families' settings, e.g. lookback, are not text settings and are left out)."""
        values = {"min_freq": kind.min_freq, "max_tokens": kind.max_tokens}
        names = {f.name for f in fields(cls)}
        values.update({k: v for k, v in settings.items() if v is not None and k in names})
        if "split_ratios" in values:
            values["split_ratios"] = tuple(values["split_ratios"])
        return cls(**values)

    def __post_init__(self) -> None:
        if self.max_buckets < 1:
            raise ValueError(f"max_buckets (--max-buckets) must be >= 1, got {self.max_buckets}")
        if self.min_freq < 1:
            raise ValueError(f"min_freq (--min-freq) must be >= 1, got {self.min_freq}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens (--max-tokens) must be >= 1, got {self.max_tokens}")
        check_ratios(tuple(self.split_ratios))


def bucket_count(rows: int, cfg: FeatureConfig) -> int:
    """At most max_buckets, and few enough that a bucket averages two batches: a GRU step costs
    nearly as much for 8 rows as for 64, so many thin buckets would be slower than padding."""
    return max(1, min(cfg.max_buckets, rows // (2 * cfg.batch_size)))


def tokenize(kind: TextKind) -> pl.Expr:
    text = pl.col(kind.text_col)
    if kind.tokenizer == "chars":
        return text.str.split("").alias("pieces")
    if kind.tokenizer == "words":
        return text.str.to_lowercase().str.extract_all(WORD_PATTERN).alias("pieces")
    raise ValueError(f"unknown tokenizer {kind.tokenizer!r} for kind {kind.name!r}")


def load_bronze(kind: TextKind, layout: Layout) -> pl.DataFrame:
    key = [kind.text_col, kind.label_col]
    return storage.read_bronze(layout, key, [*key, "split"])


@storage.one_build_at_a_time
def build_features(kind: TextKind, layout: Layout, cfg: FeatureConfig | None = None) -> dict:
    """Writes features/<kind>/<version>/ and points features/<kind>/LATEST at it; returns the manifest."""
    cfg = cfg or FeatureConfig.for_kind(kind)
    batches = storage.bronze_batches(layout)  # before reading: a batch landing meanwhile makes it stale
    bronze = load_bronze(kind, layout)
    unlabelled = bronze.filter(pl.col("split") == UNSUP).height  # kept in bronze, never trained on
    rows = assign_splits(bronze.filter(pl.col("split").ne_missing(UNSUP)), kind.text_col, cfg.split_ratios)
    rows, val_from_train = carve_val_from_train(rows, kind, cfg)
    rows = rows.with_columns(tokenize(kind))
    train = rows.filter(pl.col("split") == "train")
    if train.is_empty():
        raise ValueError(f"kind {kind.name!r}: the train split is empty; check the split column")
    tokens = Vocabulary.from_counts(
        token_counts(train.lazy(), "pieces"), TOKEN_SPECIALS, cfg.min_freq, cfg.max_vocab
    )
    labels = Vocabulary(sorted(train.get_column(kind.label_col).unique().to_list()))

    known = pl.col(kind.label_col).is_in(labels.tokens)
    unknown_label = dict(rows.filter(~known).group_by("split").len().iter_rows())
    pieces = pl.col("pieces")
    if cfg.max_tokens:
        pieces = pieces.list.head(cfg.max_tokens)
    encoded = (
        rows.filter(known)
        .select(
            kind.text_col,
            kind.label_col,
            "split",
            pieces.list.eval(
                pl.element().replace_strict(tokens.index, default=tokens.unk_id, return_dtype=pl.Int32)
            ).alias("tokens"),
            pl.col(kind.label_col).replace_strict(labels.index, return_dtype=pl.Int32).alias("label_id"),
        )
        .with_columns(pl.col("tokens").list.len().cast(pl.Int32).alias("length"))
    )
    encoded = encoded.filter(pl.col("length") > 0)

    lengths = encoded.get_column("length").to_numpy()
    bounds = fit_boundaries(lengths, bucket_count(len(lengths), cfg))
    encoded = encoded.with_columns(pl.Series("bucket", assign_bucket(lengths, bounds)))

    data_hash = storage.fingerprint(rows.select(kind.text_col, kind.label_col, "split"))
    version, out, created = storage.new_feature_version(layout, data_hash)
    counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    files = []
    for (split, bucket), part in encoded.group_by(["split", "bucket"]):
        name = f"shards/split={split}/bucket={bucket:03d}.parquet"
        storage.write_shard(part.drop("split", "bucket"), out / name)
        counts[split][str(bucket)] = part.height
        files.append(name)
    storage.write_text(tokens.to_json(), out / "vocab_tokens.json")
    storage.write_text(labels.to_json(), out / "vocab_labels.json")

    train_lengths = encoded.filter(pl.col("split") == "train").get_column("length").to_numpy()
    manifest = {
        "kind": kind.name,
        "version": version,
        "created_at": created.isoformat(),
        "dataset_fingerprint": data_hash,
        "text_col": kind.text_col,
        "label_col": kind.label_col,
        "tokenizer": kind.tokenizer,
        "config": asdict(cfg),
        "vocab": {
            "tokens": {"file": "vocab_tokens.json", "size": len(tokens), "sha256": tokens.sha256()},
            "labels": {"file": "vocab_labels.json", "size": len(labels), "sha256": labels.sha256()},
        },
        "bucket_upper_bounds": bounds,
        "counts": {s: dict(sorted(c.items(), key=lambda kv: int(kv[0]))) for s, c in counts.items()},
        "rows": {s: int(sum(c.values())) for s, c in counts.items()},
        "rows_unknown_label": {s: int(n) for s, n in unknown_label.items()},
        "rows_unlabelled": unlabelled,
        "val_from_train": val_from_train,
        "label_counts_train": dict(train.group_by(kind.label_col).len().sort(kind.label_col).iter_rows()),
        "padding": padding_stats(train_lengths, bounds, cfg.batch_size),
        "files": sorted(files),
        "bronze_batches": batches,
    }
    manifest = storage.publish_features(layout, manifest)  # shards and vocabularies first, then LATEST
    log.info(
        "features %s: %s rows, %d buckets, padding %.1f%% (pad-to-longest %.1f%%)",
        version,
        f"{encoded.height:,}",
        len(bounds),
        100 * manifest["padding"]["bucketed"],
        100 * manifest["padding"]["pad_to_longest"],
    )
    return manifest


def carve_val_from_train(rows: pl.DataFrame, kind: TextKind, cfg: FeatureConfig) -> tuple[pl.DataFrame, bool]:
    """Data with train rows but no val rows at all (aclImdb: train/test only) -> val carved from train.

    The share is val / (train + val) of the split ratios (0.15 / 0.85 by default), by the same stable
    text hash as the other splits, so the same data always gives the same val rows.
    """
    split, present = pl.col("split"), set(rows.get_column("split").unique().to_list())
    train_ratio, val_ratio, _ = cfg.split_ratios
    if "train" not in present or "val" in present or val_ratio <= 0:
        return rows, False
    share = val_ratio / (train_ratio + val_ratio)
    carved = carve_split(rows, kind.text_col, share)
    moved = carved.filter(split == "val").height
    log.info(
        "kind %s: no val rows, so %s of %s train rows (share %.3f, by text hash) became the val split",
        kind.name,
        f"{moved:,}",
        f"{rows.filter(split == 'train').height:,}",
        share,
    )
    return carved, moved > 0


def load_split(folder: Path, manifest: dict, split: str) -> list[dict[str, np.ndarray]]:
    """One split as a list of buckets of padded arrays (see storage.read_shard_arrays)."""
    return [storage.read_shard_arrays(path) for path in storage.split_files(folder, manifest, split)]


def sample_texts(folder: Path, manifest: dict, n: int = 3) -> list[str]:
    """A few real texts (for a model's input example)."""
    first = folder / manifest["files"][0]
    return storage.read_shard(first, columns=[manifest["text_col"]]).head(n).to_series().to_list()


def split_texts(folder: Path, manifest: dict, split: str) -> pl.DataFrame:
    """One split's texts and labels (text_col, label_col), as stored in its shards."""
    names = storage.split_files(folder, manifest, split)
    columns = [manifest["text_col"], manifest["label_col"]]
    if not names:
        return pl.DataFrame(schema={c: pl.String for c in columns})
    return pl.concat([storage.read_shard(n, columns=columns) for n in names])


def export_split_days(layout: Layout, split: str, days: list[str]) -> dict[str, int]:
    """One split's texts, unlabelled with an `id`, dealt out to incoming/<kind>/ds=<day>/holdout.parquet
    for each day (the demo's daily inputs to score); -> rows per day."""
    folder, manifest = storage.latest_features(layout)
    texts = split_texts(folder, manifest, split).select(manifest["text_col"])
    frame = texts.sort(manifest["text_col"]).with_row_index("id", offset=1)
    counts = {}
    with storage.Commit(layout.root, f"incoming-{layout.kind}") as days_in:  # all days appear at once
        for i, day in enumerate(days):
            part = frame.filter((pl.col("id") - 1) % len(days) == i)
            days_in.write_parquet(part, layout.incoming / f"ds={day}" / "holdout.parquet")
            counts[day] = part.height
        days_in.apply()
    return counts
