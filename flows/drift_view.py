"""`rnnflow drift KIND --start --end`: the daily drift metrics of scored partitions as a table and a
PNG (a flow: drift_flow), and the parsing of `--drift-threshold METRIC=WARN,ALERT`."""

from __future__ import annotations

import argparse


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
    p.add_argument(
        "--plot",
        default=None,
        help="PNG to write (default <data-root>/reports/drift-<kind>-<start>-<end>.png)",
    )


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


def check(target, start: str, end: str) -> None:
    """Dates that are dates, in order, and at least one drift report between them: one line if not."""
    from pipeline import monitoring

    if monitoring.history(target.layout, start, end).is_empty():
        kind = target.kind
        raise LookupError(f"no drift reports for {kind} from {start} to {end}; score those days first")


def run(args: argparse.Namespace) -> dict:
    """The drift flow (its table on stdout, its plot under the data root or at --plot)."""
    from flows.kind_flows import of_kind
    from flows.score_flows import drift_flow

    result = of_kind(drift_flow, args.kind)(args.kind, args.start, args.end, args.data_root, args.plot)
    print(result.pop("table"))
    print(f"plot: {result['plot']}")
    return result
