"""Ingest: rows/s and peak RSS of CSV -> bronze Parquet with the quarantine rules, against a plain
polars scan_csv -> sink_parquet of the same file, at sizes generated from the real names (1M, 10M and
50M rows: the peak must not grow with the batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from bench.suite.common import Bench, child, goal

BAD_SHARE = 0.02  # of the generated rows: empty, control characters, no label, too long (a quarter each)


def generate(bench: Bench, rows: int) -> Path:
    """Two real surnames joined by a hyphen (mostly unique rows, like a large export), the first one's
    nationality; BAD_SHARE of the rows broken in one of four ways the rules quarantine."""
    from pipeline.layout import Layout

    path = bench.work / f"ingest-{rows}.csv"
    if path.exists():
        return path
    bronze = pl.read_parquet(str(Layout.of("names", bench.root).bronze / "**" / "*.parquet"))
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, bronze.height, rows), rng.integers(0, bronze.height, rows)
    frame = pl.DataFrame(
        {
            "surname": bronze["surname"].gather(first) + "-" + bronze["surname"].gather(second),
            "nationality": bronze["nationality"].gather(first),
            "broken": pl.Series(rng.integers(0, int(4 / BAD_SHARE), rows)),  # 0..3: broken, in 4 ways
        }
    ).select(
        pl.when(pl.col("broken") == 0)
        .then(pl.lit(""))
        .when(pl.col("broken") == 1)
        .then(pl.col("surname") + "\u0007")
        .when(pl.col("broken") == 3)
        .then(pl.concat_str([pl.col("surname")] * 5))
        .otherwise(pl.col("surname"))
        .alias("surname"),
        pl.when(pl.col("broken") == 2).then(pl.lit(None)).otherwise("nationality").alias("nationality"),
    )
    frame.write_csv(path)
    return path


def run(bench: Bench) -> dict:
    rows_out, goals = [], []
    sizes = (100_000, 1_000_000) if bench.quick else (1_000_000, 10_000_000, 50_000_000)
    for n, size in enumerate(sizes):
        source = generate(bench, size)
        ours = child("ingest", root=str(bench.work / f"ingest-root-{n}"), kind="names", source=str(source))
        plain = child("polars_copy", source=str(source), out=str(bench.work / f"plain-{n}.parquet"))
        row = {
            "rows": size,
            "csv_mb": source.stat().st_size / 2**20,
            "rows_per_s": size / ours["seconds"],
            "peak_rss_mb": ours["peak_rss_mb"],
            "rows_quarantined": ours["rows_quarantined"],
            "plain_polars_rows_per_s": size / plain["seconds"],
            "plain_polars_peak_rss_mb": plain["peak_rss_mb"],
            "time_over_plain": ours["seconds"] / plain["seconds"],
        }
        assert ours["rows_ok"] + ours["rows_quarantined"] == size, "rows in != bronze + quarantine"
        rows_out.append(row)
        print(
            f"  ingested {size:,} rows: {row['rows_per_s']:,.0f} rows/s, {row['peak_rss_mb']:.0f} MB",
            flush=True,
        )
        source.unlink()
    small, large = rows_out[0], rows_out[-1]
    middle = rows_out[1]
    goals += [
        goal(f"names ingest rows/s at {middle['rows']:,} rows", middle["rows_per_s"], 2_000_000, "rows/s"),
        goal(
            f"names ingest time over a plain polars copy at {middle['rows']:,} rows",
            middle["time_over_plain"],
            2.5,
            "x",
            higher=False,
        ),
        goal(
            f"names ingest peak RSS at {large['rows']:,} rows", large["peak_rss_mb"], 600, "MB", higher=False
        ),
        goal(
            f"names ingest peak RSS at {large['rows']:,} over {small['rows']:,} rows",
            large["peak_rss_mb"] / small["peak_rss_mb"],
            1.3,
            "x",
            higher=False,
        ),
    ]
    return {"title": "Ingest", "rows": rows_out, "goals": goals}
