"""`rnnflow labels`, `monitor`, `history` and `rollback`: the loop's commands (parsers, the checks
before any flow, and the flows they run: flows/loop_flows.py)."""

from __future__ import annotations

import argparse

from flows import checks, settings
from pipeline import objectstore
from pipeline.predictions import parse_ds

COMMANDS = ("labels", "monitor", "history", "rollback")


def add_parsers(sub, common: argparse.ArgumentParser, kinds: list[str]) -> None:
    p = sub.add_parser(
        "labels",
        parents=[common],
        help="ground truth for rows scored earlier (late, in pieces)",
        description="Read labels for rows scored earlier: text kinds `ds,id,<label>` (or `label`), keyed by "
        "the scored row's id; prices `ds,ticker,close`, the close that followed the forecast made on ds. "
        "CSV or Parquet; --ds for files without a ds column. Bad rows go to label-quarantine/<kind>/ with "
        "one reason each (unknown_id, unknown_label, duplicate, day_not_scored, bad_date, ...).",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--ds", default=None, help="the day of rows whose file has no ds column, YYYY-MM-DD")

    p = sub.add_parser(
        "monitor",
        parents=[common],
        help="realised performance per scored day and model version (table and PNG)",
        description="Join the days scored from START to END with the labels known so far: per day and "
        "version, rows labelled, accuracy (95% interval) and macro-F1 (text) or RMSE beside persistence "
        "and directional accuracy (prices); logged to MLflow (realised-<kind>-v<N>) and drawn as a PNG.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
    p.add_argument("--plot", default=None, help="PNG to write (default <data-root>/reports/realised-...)")
    settings.add_section(p.add_argument_group("monitor"), "monitor")

    p = sub.add_parser(
        "history",
        parents=[common],
        help="every champion move of a kind: when, from which version to which, why",
        description="Print the promotion history of KIND (history/<kind>/ under the data root): every move "
        "of its champion alias, by training, rollback or outside rnnflow, with the reason and evidence.",
    )
    p.add_argument("kind", choices=kinds)

    p = sub.add_parser(
        "rollback",
        parents=[common],
        help="move the champion back to a version that served before",
        description="Move KIND's champion alias back to VERSION, which must have served before, and record "
        "it with REASON in the promotion history and on the versions' MLflow tags.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--to", dest="to_version", type=int, required=True, metavar="VERSION")
    p.add_argument("--reason", required=True, help="why (kept in the history)")


def check(args: argparse.Namespace, target) -> None:
    """What can be known before a flow starts: one line naming the bad value."""
    if args.command == "rollback":
        checks.check_rollback(target, args.to_version, args.reason)
    elif args.command == "labels":
        for source in args.sources:
            if not objectstore.as_path(source).exists():
                raise FileNotFoundError(f"{source}: no such file")
        if args.ds is not None:
            parse_ds(args.ds)
    elif args.command == "monitor":
        parse_ds(args.start), parse_ds(args.end)
        checks.MonitorSettings(**settings.from_args(args, "monitor"))


def run(args: argparse.Namespace, root: str | None):
    from flows import loop_flows
    from flows.kind_flows import of_kind

    if args.command == "labels":
        return of_kind(loop_flows.labels_flow, args.kind)(args.kind, args.sources, args.ds, root)
    if args.command == "monitor":
        flow = of_kind(loop_flows.monitor_flow, args.kind)
        given = settings.from_args(args, "monitor")
        result = flow(args.kind, args.start, args.end, root, args.plot, monitor=given)
        print_rows(result["rows"])
        print(f"plot: {result['plot']}")
        return result
    if args.command == "history":
        rows = of_kind(loop_flows.history_flow, args.kind)(args.kind, root)
        if not rows:
            print(f"no promotion history for {args.kind} yet: a training that crowns a champion starts it")
        else:
            print_rows(rows)
        return rows
    flow = of_kind(loop_flows.rollback_flow, args.kind)
    return flow(args.kind, args.to_version, args.reason, root)


def print_rows(rows: list[dict]) -> None:
    import polars as pl

    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=90):
        print(pl.DataFrame(rows))
