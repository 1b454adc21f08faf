"""`rnnflow drift KIND --start --end`: the daily drift metrics of scored partitions as a table and a
PNG, and the parsing of `--drift-threshold METRIC=WARN,ALERT`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub, common: argparse.ArgumentParser, kinds: list[str]) -> None:
    p = sub.add_parser(
        "drift",
        parents=[common],
        help="the daily drift metrics of a range of scored partitions (table and PNG)",
        description="Read drift/<kind>/ds=*.json from START to END: one row per day, one "
        "column per metric (value, and its verdict when not ok); --plot writes the trend as a PNG.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    p.add_argument("--plot", default=None, help="PNG to write (default drift-<kind>-<start>-<end>.png)")


def parse_thresholds(given: list[str]) -> dict | None:
    """["length_psi=0.2,0.4", ...] -> {"length_psi": (0.2, 0.4)}, checked against the known metrics."""
    from pipeline import drift

    out = {}
    for item in given:
        name, _, limits = item.partition("=")
        try:
            warn, alert = (float(x) for x in limits.split(","))
        except ValueError:
            raise ValueError(
                f"--drift-threshold {item!r}: expected METRIC=WARN,ALERT, e.g. length_psi=0.2,0.4"
            ) from None
        out[name.strip()] = (warn, alert)
    drift.thresholds(None, out)  # unknown names and bad orders: one line
    return out or None


def run(args: argparse.Namespace) -> dict:
    from models.plots import drift_trend
    from pipeline import monitoring
    from pipeline.layout import Layout

    frame = monitoring.history(Layout.of(args.kind, args.data_root), args.start, args.end)
    if frame.is_empty():
        raise LookupError(
            f"no drift reports for {args.kind} from {args.start} to {args.end}; score those days first"
        )
    import polars as pl

    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        print(monitoring.wide(frame))
    plot = drift_trend(frame, args.kind, Path(args.plot or f"drift-{args.kind}-{args.start}-{args.end}.png"))
    days = frame.select("ds", "day_verdict").unique().sort("ds")
    print(f"plot: {plot}")
    return {"kind": args.kind, "days": {str(d): v for d, v in days.iter_rows()}, "plot": str(plot)}
