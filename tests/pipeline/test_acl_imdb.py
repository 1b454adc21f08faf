"""Reviews from aclImdb folders: ratings, unsup rows, val carved from train; source column options."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.ingest import ingest
from pipeline.kinds import NAMES, REVIEWS
from pipeline.layout import Layout
from pipeline.text.features import build_features, split_texts
from pipeline.text.sources import SourceError, is_acl_imdb, read_source

GOOD = ["great", "superb", "wonderful", "moving"]
BAD = ["awful", "boring", "dreadful", "dull"]


def review(words: list[str], i: int) -> str:
    return f"A {words[i % 4]} film, truly {words[(i + 1) % 4]}.<br /><br />Take {i}"


def write_acl_imdb(root, n: int = 40):
    """train/{pos,neg}, test/{pos,neg} and train/unsup like the real archive, plus three odd files."""
    for split in ("train", "test"):
        for label, words, rating in (("pos", GOOD, 8), ("neg", BAD, 2)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}_{rating + i % 3}.txt").write_text(review(words, i) + f" {split}")
    unsup = root / "train" / "unsup"
    unsup.mkdir()
    for i in range(5):
        (unsup / f"{i}_0.txt").write_text(f"Unlabelled musings number {i} about cinema")
    (root / "train" / "pos" / "900_10.txt").write_bytes(b"Caf\xe9 scene was great \xff")  # cp1252/garbage
    (root / "train" / "neg" / "901_1.txt").write_bytes(b"")  # empty review
    (root / "test" / "neg" / "notes.txt").write_text("A dull one with no rating in its name")
    return root


def test_acl_imdb_layout_is_ingested_with_ratings_unsup_and_quarantine(tmp_path, data_root):
    acl = write_acl_imdb(tmp_path / "aclImdb")
    assert is_acl_imdb(acl) and is_acl_imdb(acl / "test") and not is_acl_imdb(acl / "train" / "pos")
    report = ingest([str(acl)], REVIEWS, Layout.of("reviews", data_root))
    assert report.rows_in == 4 * 40 + 5 + 3 == report.rows_ok + report.rows_quarantined
    assert report.reasons == {"empty": 1, "undecodable_bytes": 1}
    bronze = pl.read_parquet(report.bronze_path)
    assert bronze.columns[:4] == ["review", "sentiment", "split", "rating"]
    assert bronze.schema["rating"] == pl.Int64
    counts = bronze.group_by("split", "sentiment").len().sort("split", "sentiment")
    assert counts.rows() == [
        ("test", "negative", 41),
        ("test", "positive", 40),
        ("train", "negative", 40),
        ("train", "positive", 40),
        ("unsup", None, 5),
    ]
    by_file = {r["source_file"].split("aclImdb/")[1]: r for r in bronze.iter_rows(named=True)}
    assert by_file["train/pos/4_9.txt"]["rating"] == 9
    assert by_file["train/pos/4_9.txt"]["review"] == "a great film, truly superb. take 4 train"
    assert by_file["test/neg/notes.txt"]["rating"] is None  # name is not <id>_<rating>.txt
    assert by_file["train/unsup/3_0.txt"]["rating"] is None  # 0 = aclImdb's "unrated"
    assert set(bronze["source_row"]) == {1}
    quarantine = pl.read_parquet(report.quarantine_path)
    assert dict(quarantine.select("reason", "rating").iter_rows()) == {"undecodable_bytes": 10, "empty": 1}


def test_a_single_split_folder_reads_like_the_whole_archive(tmp_path):
    acl = write_acl_imdb(tmp_path / "aclImdb", n=3)
    frame = read_source(acl / "test", REVIEWS)
    assert frame.height == 7 and frame["split"].unique().to_list() == ["test"]
    assert frame.columns == ["review", "sentiment", "split", "rating", "source_file", "source_row"]


def test_unsup_split_accepts_missing_labels_and_keeps_given_ones(tmp_path, data_root):
    csv = tmp_path / "r.csv"
    csv.write_text(
        "review,sentiment,split,rating\n"
        "Loved it,pos,unsup, 9\nNo idea,,unlabelled,\nMeh,,train,x\nHated it,neg,Unlabeled,2\n"
    )
    report = ingest([str(csv)], REVIEWS, Layout.of("reviews", data_root))
    assert report.reasons == {"missing_label": 1}
    bronze = pl.read_parquet(report.bronze_path)
    expected = pl.DataFrame(
        {
            "review": ["loved it", "no idea", "hated it"],
            "sentiment": ["positive", None, "negative"],
            "split": ["unsup"] * 3,
            "rating": [9, None, 2],
        }
    )
    assert_frame_equal(bronze.select(expected.columns), expected)


def test_features_carve_val_from_train_and_never_train_on_unsup(tmp_path, data_root):
    layout = Layout.of("reviews", data_root)
    ingest([str(write_acl_imdb(tmp_path / "aclImdb"))], REVIEWS, layout)
    manifest = build_features(REVIEWS, layout)
    assert manifest["val_from_train"] is True
    assert manifest["rows_unlabelled"] == 5
    rows = manifest["rows"]
    assert rows["val"] > 0 and rows["train"] + rows["val"] == 80 and rows["test"] == 81
    folder = layout.features / manifest["version"]
    texts = pl.concat([split_texts(folder, manifest, s) for s in ("train", "val", "test")])
    assert texts.height == 161
    assert not texts["review"].str.contains("unlabelled").any()
    val = split_texts(folder, manifest, "val")["review"]
    assert val.str.ends_with(" train").all()  # carved out of train, never out of test
    again = build_features(REVIEWS, layout)
    assert again["rows"] == rows and again["dataset_fingerprint"] == manifest["dataset_fingerprint"]


def test_features_with_given_val_rows_do_not_carve(tmp_path, data_root):
    csv = tmp_path / "r.csv"
    lines = ["review,sentiment,split"]
    for i in range(20):
        label = "pos" if i % 2 else "neg"
        lines.append(f'"{review(GOOD if i % 2 else BAD, i)}",{label},train')
    lines += ["good good,pos,val", "bad bad,neg,val"]
    csv.write_text("\n".join(lines) + "\n")
    layout = Layout.of("reviews", data_root)
    ingest([str(csv)], REVIEWS, layout)
    manifest = build_features(REVIEWS, layout)
    assert manifest["val_from_train"] is False and manifest["rows_unlabelled"] == 0
    assert manifest["rows"]["val"] == 2 and manifest["rows"]["train"] == 20


def test_source_column_options_name_the_text_and_label_columns(tmp_path, data_root):
    csv = tmp_path / "other.csv"
    csv.write_text("Id,Text,Score,review\n1,Loved every minute,pos,ignored\n2,Fell asleep,neg,ignored\n")
    layout = Layout.of("reviews", data_root)
    report = ingest([str(csv)], REVIEWS, layout, text_col="Text", label_col="score")
    bronze = pl.read_parquet(report.bronze_path)
    assert bronze.select("review", "sentiment").rows() == [
        ("loved every minute", "positive"),
        ("fell asleep", "negative"),
    ]
    assert bronze["rating"].to_list() == [None, None]
    with pytest.raises(SourceError, match=r"'Body' given as text_col \(--text-col\).*'Text'"):
        ingest([str(csv)], REVIEWS, layout, text_col="Body", label_col="Score")
    with pytest.raises(SourceError, match=r"'Label' given as label_col"):
        ingest([str(csv)], REVIEWS, layout, text_col="Text", label_col="Label")


def test_names_folders_and_csvs_are_unchanged_by_the_reviews_columns(tmp_path):
    names = tmp_path / "names"
    names.mkdir()
    (names / "Irish.txt").write_text("Murphy\n")
    frame = read_source(names, NAMES)
    assert frame.columns == ["surname", "nationality", "split", "source_file", "source_row"]
