"""Ingest and features under faults and bad input: concurrent ingests, kill -9 at every step of a
commit, malformed rows, the ticker/date/label/rating rules, a killed features build, pointer files
that point elsewhere and damaged files, which must fail in one line naming the file (a ValueError:
deterministic, so never retried)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipeline import storage
from pipeline.ingest import ingest
from pipeline.kinds import NAMES, PRICES, REVIEWS
from pipeline.layout import Layout
from pipeline.text.features import FeatureConfig, build_features

ROOT = Path(__file__).resolve().parents[2]


def surnames(path: Path, first: int, last: int) -> Path:
    """Distinct (surname, nationality) rows first..last-1: files with overlapping ranges share rows."""
    labels = ("Irish", "Polish", "Japanese")
    path.write_text(
        "surname,nationality\n" + "".join(f"N{i:07d}x,{labels[i % 3]}\n" for i in range(first, last))
    )
    return path


def start_ingest(root: Path, source: Path, go: Path, before: str = "") -> subprocess.Popen:
    """A process that ingests `source` into `root` as soon as `go` exists (`before`: code run first)."""
    code = (
        f"import pathlib, time\n{before}\nfrom pipeline.ingest import ingest\n"
        "from pipeline.kinds import NAMES\nfrom pipeline.layout import Layout\n"
        f"go = pathlib.Path({str(go)!r})\nwhile not go.exists():\n    time.sleep(0.005)\n"
        f"ingest([{str(source)!r}], NAMES, Layout.of('names', {str(root)!r}))\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True)


def bronze_and_duplicates(root: Path) -> tuple[pl.DataFrame, int]:
    bronze = pl.read_parquet(root / "bronze" / "names")
    quarantine = root / "quarantine" / "names"
    bad = pl.read_parquet(quarantine) if quarantine.exists() else pl.DataFrame({"reason": []})
    return bronze, bad.filter(pl.col("reason") == "duplicate").height


def test_two_ingests_at_once_keep_every_key_once_and_quarantine_the_shared_rows_once(tmp_path):
    a = surnames(tmp_path / "a.csv", 0, 120_000)
    b = surnames(tmp_path / "b.csv", 80_000, 200_000)  # 40,000 rows in common
    for trial in range(5):
        root, go = tmp_path / f"root{trial}", tmp_path / f"go{trial}"
        procs = [start_ingest(root, src, go) for src in (a, b)]
        time.sleep(1.5)  # both have imported polars and wait at the start line
        go.touch()
        for proc in procs:
            assert proc.wait(timeout=300) == 0, proc.stderr.read()
        bronze, duplicates = bronze_and_duplicates(root)
        assert bronze.height == 200_000, f"trial {trial}"
        assert bronze.select("surname", "nationality").n_unique() == 200_000
        assert duplicates == 40_000, f"trial {trial}"


KILL_AFTER_COMMIT = (  # the batch is in place; the process dies before it reports
    "import os, signal\nimport pipeline.ingest as m\nreal = m.ingest\n"
    "def ingest(*a, **k):\n    real(*a, **k)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    "m.ingest = ingest\n"
)
KILL_MID_COMMIT = (  # after the first file (the bronze batch) is in place, before the quarantine
    "import os, signal\nfrom pipeline import commit\nreal, moved = os.replace, [0]\n"
    "def replace(a, b):\n    real(a, b)\n    if not str(b).endswith('.commit'):\n"
    "        moved[0] += 1\n        if moved[0] == 1: os.kill(os.getpid(), signal.SIGKILL)\n"
    "commit.os.replace = replace\n"
)


@pytest.mark.parametrize("kill", [KILL_MID_COMMIT, KILL_AFTER_COMMIT], ids=["mid-commit", "after-commit"])
def test_an_ingest_run_again_after_a_kill_reports_what_an_uninterrupted_run_does(tmp_path, kill):
    source = tmp_path / "names.csv"
    source.write_text("surname,nationality\nSmith,English\nSmith,English\n,Irish\nNowak,Polish\n")
    clean = ingest([str(source)], NAMES, Layout.of("names", tmp_path / "clean"))
    root, go = tmp_path / "killed", tmp_path / "go"
    go.touch()
    assert start_ingest(root, source, go, before=kill).wait(timeout=120) == -9
    again = ingest([str(source)], NAMES, Layout.of("names", root))
    assert (again.rows_ok, again.rows_quarantined, again.reasons) == (2, 2, {"duplicate": 1, "empty": 1})
    assert (again.rows_ok, again.rows_quarantined) == (clean.rows_ok, clean.rows_quarantined)
    assert pl.read_parquet(root / "bronze" / "names").height == 2
    assert pl.read_parquet(root / "quarantine" / "names").height == 2  # not quarantined twice
    assert list((root / ".staging").iterdir()) == []


def test_a_malformed_row_is_quarantined_with_its_line_and_the_rest_of_the_file_is_ingested(tmp_path):
    source = tmp_path / "names.csv"
    source.write_text(
        "surname,nationality\nSmith,English\nJones,Welsh,EXTRA\nBrown,Scottish\n"
        '"Dunne,Irish\nNowak,Polish\nSato,"Japanese\n'
    )
    report = ingest([str(source)], NAMES, Layout.of("names", tmp_path / "data"))
    assert (report.rows_in, report.rows_ok) == (6, 3)
    assert report.reasons == {"malformed_row": 3}
    bad = pl.read_parquet(report.quarantine_path).sort("source_row")
    assert bad["source_row"].to_list() == [2, 4, 6]  # data rows = file lines 3, 5 and 7
    assert bad["surname"].to_list() == ["Jones", "Dunne,Irish", "Sato"]
    good = pl.read_parquet(report.bronze_path)
    assert good["surname"].to_list() == ["Smith", "Brown", "Nowak"]


def test_bars_from_the_future_and_tickers_that_are_no_tickers_are_quarantined(tmp_path):
    rows = [
        ("AAPL", "2024-01-02"),  # ok
        ("BRK-B", "2024-01-02"),  # ok
        ("AAPL", "2099-01-01"),  # future_date
        ("BRK/B", "2024-01-02"),  # invalid_ticker: a path separator
        ("../X", "2024-01-02"),
        ("A\x00B", "2024-01-02"),
        ("A\ufffdB", "2024-01-02"),
        ("X" * 100_000, "2024-01-02"),
    ]
    source = tmp_path / "bars.parquet"
    pl.DataFrame(
        {"ticker": [t for t, _ in rows], "date": [d for _, d in rows]}
        | {c: ["10"] * len(rows) for c in ("open", "high", "low", "close", "volume")}
    ).write_parquet(source)
    report = ingest([str(source)], PRICES, Layout.of("prices", tmp_path / "data"))
    assert report.reasons == {"future_date": 1, "invalid_ticker": 5}
    assert sorted(pl.read_parquet(report.bronze_path)["ticker"].to_list()) == ["AAPL", "BRK-B"]


def test_labels_follow_the_text_rules_and_one_case_and_ratings_are_never_nulled_silently(tmp_path):
    names = tmp_path / "names.csv"
    names.write_text("surname,nationality\nDunne, irish \nByrne,Irish\nKeane,IRISH\nWalsh,Ir\x01ish\n")
    report = ingest([str(names)], NAMES, Layout.of("names", tmp_path / "data"))
    assert report.reasons == {"control_characters": 1}
    assert set(pl.read_parquet(report.bronze_path)["nationality"]) == {"Irish"}
    reviews = tmp_path / "reviews.csv"
    reviews.write_text(
        "review,sentiment,rating\ngood film,pos,7\nbad film,neg,\nfine film,pos,ten\n"
        "odd film,pos,7.5\nhuge film,pos,99999999999999999999\nzero film,neg,0\n"
    )
    report = ingest([str(reviews)], REVIEWS, Layout.of("reviews", tmp_path / "data"))
    assert report.reasons == {"invalid_rating": 4}
    assert pl.read_parquet(report.bronze_path)["rating"].to_list() == [7, None]


def test_a_killed_features_build_is_removed_and_never_counted_among_the_versions_kept(tmp_path):
    root = tmp_path / "data"
    layout = Layout.of("names", root)
    ingest([str(surnames(tmp_path / "a.csv", 0, 600))], NAMES, layout)
    kept = [build_features(NAMES, layout, FeatureConfig(max_buckets=2))["version"] for _ in range(2)]
    code = (
        "import os, signal\nfrom pipeline import storage\nfrom pipeline.kinds import NAMES\n"
        "from pipeline.layout import Layout\n"
        "from pipeline.text.features import FeatureConfig, build_features\n"
        "def die(frame, path):\n    storage.write_parquet_atomic(frame, path)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "storage.write_shard = die\n"
        f"build_features(NAMES, Layout.of('names', {str(root)!r}), FeatureConfig(max_buckets=2))\n"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == -9
    unpublished = [p for p in layout.features.iterdir() if p.is_dir() and not (p / "manifest.json").exists()]
    assert len(unpublished) == 1  # what the kill left
    kept.append(build_features(NAMES, layout, FeatureConfig(max_buckets=2))["version"])
    folders = sorted(p.name for p in layout.features.iterdir() if p.is_dir())
    assert folders == sorted(kept)  # the orphan is gone; the three published versions all stay


def test_latest_must_name_a_version_of_its_own_folder(tmp_path):
    layout = Layout.of("names", tmp_path / "data")
    ingest([str(surnames(tmp_path / "a.csv", 0, 300))], NAMES, layout)
    build_features(NAMES, layout, FeatureConfig(max_buckets=2))
    pointer = layout.features / "LATEST"
    (tmp_path / "data" / "bronze" / "names" / "manifest.json").write_text('{"version": "x", "files": []}')
    for text, expected in (
        ('{"version": "../../bronze/names"}', "not a feature-set version"),
        ("garbage", "not a readable JSON file"),
    ):
        pointer.write_text(text)
        with pytest.raises(ValueError) as err:
            storage.latest_features(layout)
        message = str(err.value)
        assert str(pointer) in message and expected in message and "rnnflow features names" in message
        assert "\n" not in message


def test_a_damaged_bronze_batch_fails_features_naming_it(tmp_path):
    layout = Layout.of("names", tmp_path / "data")
    first = ingest([str(surnames(tmp_path / "a.csv", 0, 300))], NAMES, layout)
    ingest([str(surnames(tmp_path / "b.csv", 300, 600))], NAMES, layout)
    path = Path(first.bronze_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError) as err:
        build_features(NAMES, layout, FeatureConfig(max_buckets=2))
    message = str(err.value)
    assert message.startswith(f"{path}: not a readable Parquet file") and "\n" not in message
    with pytest.raises(ValueError, match=str(path)):  # and so does the next ingest's check
        ingest([str(surnames(tmp_path / "c.csv", 600, 700))], NAMES, layout)


def test_a_damaged_drift_report_is_named(tmp_path):
    layout = Layout.of("names", tmp_path / "data")
    layout.drift_report("2026-11-01").parent.mkdir(parents=True)
    layout.drift_report("2026-11-01").write_text("{not json")
    with pytest.raises(ValueError) as err:
        storage.read_drift(layout, "2026-11-01")
    assert str(layout.drift_report("2026-11-01")) in str(err.value) and "re-score" in str(err.value)
    json.dumps(str(err.value))


def test_a_damaged_shard_fails_naming_it_and_how_to_rebuild(tmp_path):
    from pipeline.text.features import load_split

    layout = Layout.of("names", tmp_path / "data")
    ingest([str(surnames(tmp_path / "a.csv", 0, 300))], NAMES, layout)
    build_features(NAMES, layout, FeatureConfig(max_buckets=2))
    folder, manifest = storage.latest_features(layout)
    shard = storage.split_files(folder, manifest, "train")[0]
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(ValueError) as err:
        load_split(folder, manifest, "train")
    message = str(err.value)
    assert message.startswith(f"{shard}: not a readable Parquet file") and "\n" not in message
    assert message.endswith("rebuild the feature set: rnnflow features names")
