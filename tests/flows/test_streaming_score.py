"""Scoring in chunks: the same partition as scoring at once, one file put in place whole, a bounded
drift sample, and nothing replaced when a chunk fails."""

from __future__ import annotations

import json

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from flows.score_flows import score_flow
from models.text import scoring as text_scoring
from pipeline.predictions import RowSample
from tests.conftest import make_surnames

DS = "2026-11-05"


@pytest.fixture(scope="module")
def root(tiny_names_root, prefect_api):
    """A data root with one tiny names model, champion."""
    return tiny_names_root


@pytest.fixture
def day(tmp_path):
    """330 names to score, 3 of them breaking a text rule."""
    names = [*[s for s, _ in make_surnames(110, seed=1)][:327], "", "x" * 500, "Bad\x07Name"]
    path = tmp_path / "day.parquet"
    pl.DataFrame({"id": range(len(names)), "surname": names}).write_parquet(path)
    return path


def test_chunked_scoring_writes_what_scoring_at_once_does(root, day, monkeypatch):
    whole = score_flow("names", str(day), DS, data_root=str(root))
    part = root / "predictions" / "names" / f"ds={DS}" / "part-0.parquet"
    at_once = pl.read_parquet(part)
    assert pq.ParquetFile(part).num_row_groups == 1

    monkeypatch.setattr(text_scoring, "CHUNK_ROWS", 50)
    monkeypatch.setattr(text_scoring, "DRIFT_SAMPLE", 60)
    chunked = score_flow("names", str(day), DS, data_root=str(root))
    assert pq.ParquetFile(part).num_row_groups == 7  # 330 rows, 50 at a time
    assert_frame_equal(pl.read_parquet(part).drop("scored_at"), at_once.drop("scored_at"))
    assert (chunked["rows"], chunked["rows_unscored"]) == (whole["rows"], whole["rows_unscored"]) == (330, 3)
    assert chunked["unscored_reasons"] == whole["unscored_reasons"]
    assert sorted(chunked["unscored_reasons"]) == ["control_characters", "empty", "too_long"]
    assert [p.name for p in part.parent.iterdir()] == ["part-0.parquet"]

    report = json.loads((root / "drift" / "names" / f"ds={DS}.json").read_text())
    assert (report["rows_scored"], report["rows_sampled"]) == (330, 60)
    assert report["verdict"] in ("ok", "warn", "alert")  # 60 rows are enough for a verdict


def test_a_failing_chunk_leaves_the_previous_partition(root, day, monkeypatch):
    score_flow("names", str(day), DS, data_root=str(root))
    part = root / "predictions" / "names" / f"ds={DS}"
    before = pl.read_parquet(part / "part-0.parquet")

    monkeypatch.setattr(text_scoring, "CHUNK_ROWS", 100)
    real, calls = text_scoring.predict, []

    def third_chunk_fails(model, texts, text_col):
        calls.append(len(texts))
        if len(calls) == 3:
            raise RuntimeError("out of memory on chunk 3")
        return real(model, texts, text_col)

    monkeypatch.setattr(text_scoring, "predict", third_chunk_fails)
    new_day = day.parent / "other.parquet"
    pl.read_parquet(day).head(300).write_parquet(new_day)
    with pytest.raises(RuntimeError, match="chunk 3"):
        score_flow("names", str(new_day), DS, data_root=str(root))
    assert calls == [100, 100, 100]
    assert_frame_equal(pl.read_parquet(part / "part-0.parquet"), before)
    assert [p.name for p in part.iterdir()] == ["part-0.parquet"]  # the staged file was removed


def test_the_sample_is_bounded_and_uniform_over_chunks():
    sample = RowSample(500, seed=3)
    for chunk in range(10):
        sample.add(pl.DataFrame({"chunk": [chunk] * 1000, "row": range(chunk * 1000, (chunk + 1) * 1000)}))
    kept = sample.frame
    assert (sample.seen, kept.height, kept["row"].n_unique()) == (10_000, 500, 500)
    per_chunk = kept["chunk"].value_counts()["count"]
    assert per_chunk.len() == 10 and per_chunk.min() >= 25 and per_chunk.max() <= 80  # about 50 each
    assert kept.columns == ["chunk", "row"]
