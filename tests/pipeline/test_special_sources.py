"""The names-dataset adapter, on a tiny pickle this test writes (no package data needed)."""

from __future__ import annotations

import gzip
import pickle

from pipeline.ingest import ingest
from pipeline.kinds import NAMES
from pipeline.layout import Layout


def test_names_dataset_labelling_rule(tmp_path, data_root):
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
    source = f"names-dataset?countries=JP,KR&per_country=2&path={path}"
    report = ingest([source], NAMES, Layout.of("names", data_root))
    import polars as pl

    bronze = pl.read_parquet(report.bronze_path)
    # Japan: the two best-ranked of three; Korea: Kim only (Lee has no majority)
    assert sorted(bronze.select("surname", "nationality").rows()) == [
        ("Kim", "South Korea"),
        ("Sato", "Japan"),
        ("Tanaka", "Japan"),
    ]
