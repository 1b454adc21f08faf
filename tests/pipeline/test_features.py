"""Features: hash splits, train-only vocabularies, bucket boundaries, shards and manifest."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.buckets import assign_bucket, fit_boundaries, padding_stats
from pipeline.ingest import ingest
from pipeline.kinds import NAMES
from pipeline.layout import Layout
from pipeline.splits import assign_splits
from pipeline.storage import latest_features
from pipeline.text.features import FeatureConfig, build_features, load_split
from pipeline.text.vocab import TOKEN_SPECIALS, Vocabulary


def test_hash_split_is_deterministic_case_insensitive_and_keeps_given_splits():
    rows = pl.DataFrame(
        {
            "surname": [f"Name{i}" for i in range(3000)] + ["SMITH", "smith", "Given"],
            "split": [None] * 3002 + ["test"],
        },
        schema={"surname": pl.String, "split": pl.String},
    )
    a = assign_splits(rows, "surname")
    assert_frame_equal(a, assign_splits(rows.reverse(), "surname").reverse())
    shares = a.head(3000)["split"].value_counts(normalize=True).sort("split")
    assert dict(shares.iter_rows()) == pytest.approx({"test": 0.15, "train": 0.7, "val": 0.15}, abs=0.03)
    assert a.filter(pl.col("surname").str.to_lowercase() == "smith")["split"].n_unique() == 1
    assert a["split"][-1] == "test"


def test_vocab_round_trip_and_unknowns():
    vocab = Vocabulary([*TOKEN_SPECIALS, "a", "b"], TOKEN_SPECIALS)
    again = Vocabulary.from_json(vocab.to_json())
    assert again.tokens == vocab.tokens and again.sha256() == vocab.sha256()
    assert vocab.encode("abz") == [4, 5, vocab.unk_id]
    assert vocab.decode([4, 5]) == ["a", "b"]
    counts = pl.DataFrame({"token": ["x", "y", "z"], "count": [5, 1, 5]})
    assert Vocabulary.from_counts(counts, TOKEN_SPECIALS, min_freq=2).tokens[4:] == ["x", "z"]


def brute_force_padding(lengths, k):
    values = np.unique(lengths)
    best = None
    for cut in itertools.combinations(values[:-1], k - 1):
        bounds = np.array(sorted([*cut, values[-1]]))
        pad = int((bounds[assign_bucket(lengths, list(bounds))] - lengths).sum())
        best = pad if best is None else min(best, pad)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_bucket_boundaries_minimise_padding(seed):
    lengths = np.random.default_rng(seed).integers(1, 14, size=40)
    for k in (2, 3, 4):
        bounds = fit_boundaries(lengths, k)
        assert len(bounds) == min(k, len(np.unique(lengths)))
        pad = int((np.array(bounds)[assign_bucket(lengths, bounds)] - lengths).sum())
        assert pad == brute_force_padding(lengths, k)


def test_few_distinct_lengths_get_one_bucket_each_and_no_padding():
    lengths = np.array([3, 5, 5, 7, 3, 9])
    assert fit_boundaries(lengths, 8) == [3, 5, 7, 9]
    stats = padding_stats(lengths, [3, 5, 7, 9], batch_size=2)
    assert stats["bucketed"] == 0.0
    assert stats["pad_to_longest"] == pytest.approx(1 - 32 / 54, abs=1e-6)


def test_build_features_writes_shards_vocab_and_manifest(surnames_csv, data_root):
    layout = Layout.of("names", data_root)
    ingest([str(surnames_csv)], NAMES, layout)
    manifest = build_features(NAMES, layout, FeatureConfig(max_buckets=4))
    folder, again = latest_features(layout)
    assert again == manifest
    assert sum(manifest["rows"].values()) == 180
    assert len(manifest["bucket_upper_bounds"]) <= 4
    for split, per_bucket in manifest["counts"].items():
        buckets = load_split(folder, manifest, split)
        assert sum(len(b["lengths"]) for b in buckets) == manifest["rows"][split]
        assert [len(b["lengths"]) for b in buckets] == list(per_bucket.values())
    # vocabularies come from the training split only
    train = pl.read_parquet(folder / "shards" / "split=train" / "*.parquet")
    train_chars = set("".join(train["surname"].to_list()))
    tokens = Vocabulary.from_json((folder / "vocab_tokens.json").read_text())
    assert set(tokens.tokens) == train_chars | set(TOKEN_SPECIALS)
    assert manifest["vocab"]["tokens"]["sha256"] == tokens.sha256()
    # a shard row decodes back to its surname, and its bucket bound holds its length
    row = train.row(0, named=True)
    assert "".join(tokens.decode(row["tokens"])) == row["surname"]
    assert 0 <= manifest["padding"]["bucketed"] <= manifest["padding"]["pad_to_longest"]


def test_features_without_bronze_says_what_to_run(data_root):
    with pytest.raises(FileNotFoundError, match="rnnflow ingest names"):
        build_features(NAMES, Layout.of("names", data_root))


def test_buckets_average_two_batches_of_rows_at_least():
    from pipeline.text.features import bucket_count

    assert bucket_count(2_500, FeatureConfig()) == 19  # the IMDB reviews: 2500 // (2 * 64)
    assert bucket_count(100_000, FeatureConfig()) == 32  # large data: max_buckets decides
    assert bucket_count(100_000, FeatureConfig(max_buckets=4)) == 4
    assert bucket_count(10, FeatureConfig()) == 1
    assert bucket_count(1_000, FeatureConfig(batch_size=16)) == 31
