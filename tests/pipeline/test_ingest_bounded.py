"""Ingest in bounded memory: a batch read in blocks and de-duplicated in key buckets gives the rows of
one read whole; a killed large ingest leaves nothing of its batch visible and a re-run gives exactly the
rows of an uninterrupted one."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline import dedup, reading, storage
from pipeline.ingest import ingest
from pipeline.kinds import NAMES
from pipeline.layout import Layout

ROOT = Path(__file__).resolve().parents[2]
LABELS = ("Irish", "Polish", "Japanese", "Italian")


def generated(path: Path, rows: int, seed: int = 0) -> Path:
    """Surnames with repeats (about 1 in 8 rows repeats an earlier one) and some broken rows."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, int(rows * 0.9), rows)
    broken = rng.integers(0, 50, rows)
    frame = pl.DataFrame({"id": ids, "broken": broken}).select(
        pl.when(pl.col("broken") == 0)
        .then(pl.lit(""))
        .when(pl.col("broken") == 1)
        .then(pl.format("N{}\u0007", pl.col("id")))
        .otherwise(pl.format("N{}, ünï", pl.col("id")))
        .alias("surname"),
        pl.lit(np.array(LABELS)[ids % len(LABELS)]).alias("nationality"),
    )
    frame.write_csv(path)
    return path


def content(root: Path, folder: str) -> pl.DataFrame:
    """A kind's rows under bronze/ or quarantine/, without the batch's id and time, in a fixed order."""
    files = sorted((root / folder / "names").rglob("*.parquet"))
    if not files:
        return pl.DataFrame()
    frame = pl.read_parquet(files).drop("ingest_batch_id", "ingested_at")
    return frame.sort("source_file", "source_row")


def test_a_batch_read_in_blocks_and_buckets_holds_the_rows_of_one_read_whole(tmp_path, monkeypatch):
    first, second = generated(tmp_path / "a.csv", 3_000, seed=1), generated(tmp_path / "b.csv", 20_000)
    malformed = tmp_path / "c.csv"  # polars refuses it part-way: read record by record from there
    lines = [f"M{i},Irish" for i in range(2_000)]
    lines[1_500] = 'M1500,Irish,"extra'
    malformed.write_text("surname,nationality\n" + "\n".join(lines) + "\n")
    whole = tmp_path / "whole"
    ingest([str(first)], NAMES, Layout.of("names", whole))
    reference = ingest([str(second), str(malformed)], NAMES, Layout.of("names", whole))

    monkeypatch.setattr(reading, "BLOCK_BYTES", 8 << 10)  # about 400 rows a block
    monkeypatch.setattr(dedup, "BUCKET_BYTES", 16 << 10)  # a few dozen buckets
    small = tmp_path / "small"
    ingest([str(first)], NAMES, Layout.of("names", small))
    report = ingest([str(second), str(malformed)], NAMES, Layout.of("names", small))

    same = ("rows_in", "rows_ok", "rows_quarantined", "reasons", "per_source")
    assert {k: getattr(report, k) for k in same} == {k: getattr(reference, k) for k in same}
    assert report.reasons["duplicate"] > 2_000 and report.reasons["malformed_row"] == 1
    assert report.rows_in == report.rows_ok + report.rows_quarantined == 22_000
    for folder in ("bronze", "quarantine"):
        assert content(small, folder).equals(content(whole, folder)), folder
    parts = Path(report.bronze_path)
    assert parts.is_dir() and len(list(parts.glob("part-*.parquet"))) > 10  # several files, one batch
    assert pl.read_parquet(report.bronze_path).height == report.rows_ok
    bronze = storage.read_bronze(Layout.of("names", small), ["surname", "nationality"], ["surname"])
    assert bronze.height == content(whole, "bronze").height  # readers take the parts as one batch
    again = ingest([str(second), str(malformed)], NAMES, Layout.of("names", small))
    assert again.already_ingested and again.batch_id == report.batch_id


INGEST = (
    "import sys\nfrom pipeline.ingest import ingest\nfrom pipeline.kinds import NAMES\n"
    "from pipeline.layout import Layout\nprint('started', flush=True)\n"
    "ingest([sys.argv[1]], NAMES, Layout.of('names', sys.argv[2]))\n"
)


def visible(root: Path) -> list[str]:
    """Every file a reader could see (anything outside .staging/)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and ".staging" not in p.parts and p.suffix in (".parquet", ".json")
    )


@pytest.mark.parametrize("seed", [3, 11])
def test_an_ingest_killed_at_a_random_point_leaves_nothing_and_a_rerun_gives_the_rows(tmp_path, seed):
    source = generated(tmp_path / "big.csv", 2_500_000)
    clean = tmp_path / "clean"
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", INGEST, str(source), str(clean)], cwd=ROOT, check=True)
    seconds = time.perf_counter() - began
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", INGEST, str(source), str(killed)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "started"
    time.sleep(random.Random(seed).uniform(0.05, 0.9) * seconds)
    proc.kill()
    assert proc.wait(timeout=60) == -9
    seen = visible(killed)
    assert seen == [] or len(seen) == len(visible(clean)), seen  # nothing of the batch, or all of it
    report = ingest([str(source)], NAMES, Layout.of("names", killed))
    assert report.rows_in == report.rows_ok + report.rows_quarantined == 2_500_000
    for folder in ("bronze", "quarantine"):
        assert content(killed, folder).equals(content(clean, folder)), folder
    assert not any((killed / ".staging").iterdir())  # the killed run's spill and staging are gone
