"""The names-dataset adapter, on a tiny pickle this test writes (no package data needed)."""

from __future__ import annotations

import gzip
import os
import pickle

import pytest

from pipeline.ingest import ingest
from pipeline.kinds import NAMES
from pipeline.layout import Layout
from pipeline.sources import SourceError
from pipeline.text import packaged


def test_names_dataset_labelling_rule(tmp_path, data_root, monkeypatch):
    table = {
        "Tanaka": {"country": {"JP": 0.9, "US": 0.1}, "rank": {"JP": 5}},
        "Sato": {"country": {"JP": 0.8, "BR": 0.2}, "rank": {"JP": 1}},
        "Smith": {"country": {"GB": 0.4, "US": 0.6}, "rank": {"US": 1}},  # top country not chosen
        "Lee": {"country": {"KR": 0.45, "CN": 0.3, "US": 0.25}, "rank": {"KR": 2}},  # no majority
        "Kim": {"country": {"KR": 0.7, "US": 0.3}, "rank": {}},
        "Suzuki": {"country": {"JP": 0.95}, "rank": {"JP": 9}},
    }
    path = tmp_path / "last_names.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump(table, fh)
    monkeypatch.setattr(packaged, "names_dataset_path", lambda: path)
    source = "names-dataset?countries=JP,KR&per_country=2"
    report = ingest([source], NAMES, Layout.of("names", data_root))
    import polars as pl

    bronze = pl.read_parquet(report.bronze_path)
    # Japan: the two best-ranked of three; Korea: Kim only (Lee has no majority)
    assert sorted(bronze.select("surname", "nationality").rows()) == [
        ("Kim", "South Korea"),
        ("Sato", "Japan"),
        ("Tanaka", "Japan"),
    ]


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_that_would_run_code_is_refused_and_no_path_is_taken_from_the_user(
    tmp_path, data_root, monkeypatch
):
    path = tmp_path / "last_names.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump({"Tanaka": Payload()}, fh)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(packaged, "names_dataset_path", lambda: path)
    with pytest.raises(SourceError, match="refused: the pickle names"):
        ingest(["names-dataset"], NAMES, Layout.of("names", data_root))
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(SourceError, match=r"unknown option\(s\) \['path'\]"):
        ingest([f"names-dataset?path={path}"], NAMES, Layout.of("names", data_root))
    assert not (tmp_path / "PWNED").exists()
