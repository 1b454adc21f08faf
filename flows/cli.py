"""`rnnflow` command line: every command runs a Prefect flow, so every run shows up in Prefect."""

from __future__ import annotations

import argparse
import json
import os
import sys

from pipeline.kinds import KINDS

EPILOG = """Storage: --data-root DIR (default ./data, or $RNNFLOW_DATA_ROOT) holds bronze/, quarantine/,
features/, predictions/ and, unless $MLFLOW_TRACKING_URI is set, MLflow's mlflow.db and mlartifacts/.
Prefect runs on its ephemeral local API unless $PREFECT_API_URL points at a server."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-root",
        default=None,
        help="data folder (default: $RNNFLOW_DATA_ROOT or ./data)",
    )
    parser = argparse.ArgumentParser(
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
        description="Read SOURCES into a new bronze batch. Sources: .csv/.tsv/.parquet/.jsonl files with "
        "the kind's columns (names: surname, nationality[, split]; reviews: review, sentiment[, split, "
        "rating]), a folder of <Label>.txt files with one text per line, an aclImdb folder (train/ and "
        "test/ holding pos/, neg/ and unsup/ with one <id>_<rating>.txt review per file), or "
        "names-dataset[?countries=JP,DE&per_country=1500&min_share=0.5]. "
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
    p.add_argument("--max-buckets", type=int, default=32, help="at most this many length buckets (32)")
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
        "--split-ratios", default="0.7,0.15,0.15", help="train,val,test shares for rows without a split"
    )

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train, log to MLflow, register, maybe move champion",
        description="Train on the latest features, log params/metrics/plots/model to MLflow, register "
        "a version and move the alias 'champion' to it only if its validation accuracy is higher.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--epochs", type=int, default=8, help="maximum epochs (8); early stopping may end sooner")
    p.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: cuda if available"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for init, shuffling and dropout (0)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--patience", type=int, default=3, help="epochs without improvement before stopping")
    p.add_argument(
        "--class-weighting", action="store_true", help="weight the loss by inverse class frequency"
    )
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--cell", choices=["gru", "lstm"], default="gru")
    p.add_argument("--pack", action="store_true", help="packed sequences instead of exact-length buckets")

    p = sub.add_parser(
        "score",
        parents=[common],
        help="score a file into predictions/<kind>/ds=YYYY-MM-DD",
        description="Score a Parquet/CSV file of texts (optional `id` column is carried through) with "
        "the champion model, writing predictions/<kind>/ds=DS/part-0.parquet; re-running a ds replaces it.",
    )
    p.add_argument("kind", choices=kinds)
    p.add_argument("--input", required=True, help="Parquet or CSV file with the kind's text column")
    p.add_argument("--ds", required=True, help="partition date, YYYY-MM-DD")
    p.add_argument("--model", default=None, help="models:/<name>@<alias> or models:/<name>/<version>")

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="the whole names pipeline on real surnames",
        description="ingest (names-dataset package) -> features -> train -> score held-out names.",
    )
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--per-country", type=int, default=1500, help="surnames per country (1500)")
    return parser


def run(args: argparse.Namespace) -> dict:
    from flows import demo, text_flows  # imported late: `--help` stays fast

    root = args.data_root
    if args.command == "ingest":
        return text_flows.ingest_flow(args.kind, args.sources, root, args.text_col, args.label_col)
    if args.command == "features":
        ratios = tuple(float(x) for x in args.split_ratios.split(","))
        return text_flows.features_flow(
            args.kind, root, args.max_buckets, args.min_freq, args.max_tokens, ratios
        )
    if args.command == "train":
        model_options = {
            "hidden_size": args.hidden_size,
            "embed_dim": args.embed_dim,
            "num_layers": args.num_layers,
            "bidirectional": args.bidirectional,
            "dropout": args.dropout,
            "cell": args.cell,
            "pack": args.pack,
        }
        return text_flows.train_flow(
            args.kind,
            root,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            patience=args.patience,
            class_weighting=args.class_weighting,
            device=args.device,
            seed=args.seed,
            model_options=model_options,
        )
    if args.command == "score":
        return text_flows.score_flow(args.kind, args.input, args.ds, args.model, root)
    result = demo.demo_flow(root, epochs=args.epochs, per_country=args.per_country)
    print(demo.summary(result, root))
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data_root:
        os.environ["RNNFLOW_DATA_ROOT"] = args.data_root
    try:
        result = run(args)
    except (ValueError, LookupError, FileNotFoundError) as err:
        print(f"rnnflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    if args.command != "demo":
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
