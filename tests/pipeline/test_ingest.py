"""Ingest: every source format, quarantine reasons, row conservation, duplicates, schema errors."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipeline.ingest import ingest
from pipeline.kinds import NAMES
from pipeline.layout import Layout
from pipeline.sources import SourceError

BRONZE_COLUMNS = [
    "surname",
    "nationality",
    "split",
    "source_file",
    "source_row",
    "ingest_batch_id",
    "ingested_at",
]


def layout(root):
    return Layout.of("names", root)


def test_book_format_csv_keeps_splits_and_ignores_extra_columns(tmp_path, data_root):
    csv = tmp_path / "surnames_with_splits.csv"
    csv.write_text(
        "surname,nationality,nationality_index,split\n"
        "Woodford,English,1,train\nCoté,French,2,val\nKitagawa,Japanese,3,test\nZiemniak,Polish,4,train\n"
    )
    report = ingest([str(csv)], NAMES, layout(data_root))
    assert (report.rows_in, report.rows_ok, report.rows_quarantined) == (4, 4, 0)
    bronze = pl.read_parquet(report.bronze_path)
    assert bronze.columns == BRONZE_COLUMNS
    assert bronze.select("surname", "nationality", "split").rows() == [
        ("Woodford", "English", "train"),
        ("Coté", "French", "val"),
        ("Kitagawa", "Japanese", "test"),
        ("Ziemniak", "Polish", "train"),
    ]
    assert bronze["source_row"].to_list() == [1, 2, 3, 4]
    assert bronze["ingest_batch_id"].unique().to_list() == [report.batch_id]


def test_tutorial_directory_labels_from_file_names(tmp_path, data_root):
    names = tmp_path / "names"
    names.mkdir()
    (names / "Irish.txt").write_text("O'Brien\nMurphy\n")
    (names / "Korean.txt").write_text("Park\nKim\nChoi\n")
    report = ingest([str(names)], NAMES, layout(data_root))
    assert report.rows_ok == 5
    bronze = pl.read_parquet(report.bronze_path).sort("surname")
    assert dict(bronze.select("surname", "nationality").iter_rows()) == {
        "Choi": "Korean",
        "Kim": "Korean",
        "Murphy": "Irish",
        "O'Brien": "Irish",
        "Park": "Korean",
    }
    assert bronze["split"].null_count() == 5  # assigned later by hash, in features


def test_parquet_and_jsonl_sources(tmp_path, data_root):
    pq = tmp_path / "a.parquet"
    pl.DataFrame({"Surname": ["Rossi"], "Nationality": ["Italian"], "extra": [1]}).write_parquet(pq)
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text(json.dumps({"surname": "Schmidt", "nationality": "German"}) + "\n")
    report = ingest([str(pq), str(jsonl)], NAMES, layout(data_root))
    assert report.rows_ok == 2
    assert set(report.per_source) == {str(pq), str(jsonl)}


def test_jsonl_source_row_is_the_line_number_even_after_blank_lines(tmp_path, data_root):
    jsonl = tmp_path / "gaps.jsonl"
    records = [{"surname": "Schmidt", "nationality": "German"}, {"surname": "", "nationality": "German"}]
    jsonl.write_text("\n" + json.dumps(records[0]) + "\n\n\n" + json.dumps(records[1]) + "\n")
    report = ingest([str(jsonl)], NAMES, layout(data_root))
    assert pl.read_parquet(report.bronze_path)["source_row"].to_list() == [2]
    assert pl.read_parquet(report.quarantine_path)["source_row"].to_list() == [5]  # the empty surname


def test_bad_rows_are_quarantined_with_reasons_and_rows_are_conserved(tmp_path, data_root):
    csv = tmp_path / "bad.csv"
    rows = [
        b"surname,nationality,split",
        b"Good,English,train",
        b"   ,English,train",  # whitespace only
        b",English,",  # empty
        b"A" * 80 + b",English,",  # over the 64-character cap
        b"Bad\x01Name,English,",  # control character
        b"M\xfcller,German,",  # Latin-1 byte: not UTF-8
        b"NoLabel,,",  # missing label
        b"Weird,English,holdout",  # unknown split
        b"Good,English,train",  # exact duplicate
        b"  Good ,English,train",  # duplicate after normalisation
    ]
    csv.write_bytes(b"\n".join(rows) + b"\n")
    report = ingest([str(csv)], NAMES, layout(data_root))
    assert report.rows_in == 10
    assert report.rows_in == report.rows_ok + report.rows_quarantined
    assert report.rows_ok == 1
    assert report.reasons == {
        "control_characters": 1,
        "duplicate": 2,
        "empty": 2,
        "invalid_split": 1,
        "missing_label": 1,
        "too_long": 1,
        "undecodable_bytes": 1,
    }
    quarantine = pl.read_parquet(report.quarantine_path)
    assert quarantine.height == report.rows_quarantined
    assert {"surname", "nationality", "split", "reason", "source_file", "source_row"} <= set(
        quarantine.columns
    )
    assert quarantine.filter(pl.col("reason") == "control_characters")["source_row"].to_list() == [5]
    assert quarantine.filter(pl.col("reason") == "invalid_split")["split"].to_list() == ["invalid"]


def test_the_same_rows_from_another_file_are_quarantined_as_duplicates_not_doubled(
    surnames_csv, tmp_path, data_root
):
    copy = tmp_path / "copy.csv"
    copy.write_bytes(surnames_csv.read_bytes())
    first = ingest([str(surnames_csv)], NAMES, layout(data_root))
    second = ingest([str(copy)], NAMES, layout(data_root))
    assert first.rows_ok == first.rows_in > 0
    assert second.rows_ok == 0
    assert second.reasons == {"duplicate": second.rows_in}
    assert second.bronze_path is None
    total = pl.scan_parquet(layout(data_root).bronze / "*.parquet").select(pl.len()).collect().item()
    assert total == first.rows_ok


def test_ingesting_the_same_sources_again_reports_the_committed_batch(surnames_csv, data_root):
    first = ingest([str(surnames_csv)], NAMES, layout(data_root))
    again = ingest([str(surnames_csv)], NAMES, layout(data_root))
    assert again.already_ingested and not first.already_ingested
    assert (again.batch_id, again.rows_ok, again.rows_quarantined) == (
        first.batch_id,
        first.rows_ok,
        first.rows_quarantined,
    )
    assert len(list(layout(data_root).bronze.glob("*.parquet"))) == 1


def test_wrong_columns_name_file_found_and_expected(tmp_path, data_root):
    csv = tmp_path / "wrong.csv"
    csv.write_text("name_x,country\nSmith,England\n")
    with pytest.raises(SourceError) as err:
        ingest([str(csv)], NAMES, layout(data_root))
    message = str(err.value)
    assert str(csv) in message
    assert "['name_x', 'country']" in message
    assert "['surname', 'nationality']" in message


def test_missing_path_and_unknown_format_fail_clearly(tmp_path, data_root):
    with pytest.raises(SourceError, match="no such file"):
        ingest([str(tmp_path / "nope.csv")], NAMES, layout(data_root))
    odd = tmp_path / "names.xlsx"
    odd.write_text("x")
    with pytest.raises(SourceError, match="unsupported source format"):
        ingest([str(odd)], NAMES, layout(data_root))


def test_label_files_with_bom_crlf_odd_separators_and_upper_case_suffix(tmp_path, data_root):
    names = tmp_path / "names"
    names.mkdir()
    (names / "Arabic.txt").write_bytes(b"\xef\xbb\xbfAbbas\r\nNahas\r\n")
    (names / "Greek.TXT").write_bytes("Pappas\nSmi\u2028th\n".encode())
    report = ingest([str(names)], NAMES, layout(data_root))
    assert report.rows_in == 4  # one row per \n-terminated line, nothing split on U+2028
    assert report.reasons == {"control_characters": 1}
    bronze = pl.read_parquet(report.bronze_path)
    assert sorted(bronze["surname"].to_list()) == ["Abbas", "Nahas", "Pappas"]


def test_invisible_format_characters_are_removed_so_duplicates_match(tmp_path, data_root):
    csv = tmp_path / "n.csv"
    csv.write_text("surname,nationality\nSmith,English\nSmith\u200b,English\n\ufeffSmith,English\n")
    report = ingest([str(csv)], NAMES, layout(data_root))
    assert (report.rows_ok, report.reasons) == (1, {"duplicate": 2})


def test_unreadable_or_non_text_sources_fail_with_the_file_named(tmp_path, data_root):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    numeric = tmp_path / "numeric.parquet"
    pl.DataFrame({"surname": [1.0, 2.5], "nationality": ["A", "B"]}).write_parquet(numeric)
    for path, expected in ((empty, "empty"), (numeric, "holds Float64, not text")):
        with pytest.raises(SourceError) as err:
            ingest([str(path)], NAMES, layout(data_root))
        assert str(path) in str(err.value) and expected in str(err.value)
