"""The model-selection bench's own logic (its trainings take hours: not run here): the capped split it
builds, and how it ranks configurations and picks the one best on average."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from bench.model_selection import CAP, capped_names, markdown, summarize


def test_the_capped_names_are_deduplicated_capped_and_split_by_class(tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    (folder / "Russian.txt").write_text("".join(f"Ivanov{i}\nIvanov{i}\n" for i in range(400)))  # twice each
    for language in ("Japanese", "Greek", "Italian", "Czech"):
        (folder / f"{language}.txt").write_text("".join(f"{language}{i}\n" for i in range(30)) + "\n")
    (folder / "Polish.txt").write_text("".join(f"Kowalski{i}\n" for i in range(30)) + "Ivanov1\n")
    rows = list(csv.DictReader(capped_names(folder, tmp_path / "capped.csv").open()))

    pairs = [(r["surname"], r["nationality"]) for r in rows]
    assert len(pairs) == len(set(pairs))  # each (surname, label) once; a name under two labels stays
    counts = Counter(r["nationality"] for r in rows)
    assert counts["Japanese"] == 30 and counts["Polish"] == 31
    assert max(counts.values()) / len(rows) <= CAP and counts["Russian"] == int(CAP * 151 / (1 - CAP))
    for label, n in counts.items():  # 70/15/15 within each class
        splits = Counter(r["split"] for r in rows if r["nationality"] == label)
        assert splits["train"] == int(0.7 * n) and splits["val"] == int(0.85 * n) - int(0.7 * n)
    again = list(csv.DictReader(capped_names(folder, tmp_path / "again.csv").open()))
    assert again == rows  # seeded: the same split every run


def run(dataset, config, seed, served, reference=0.80, by="model"):
    return {
        "dataset": dataset,
        "config": config,
        "seed": seed,
        "served_accuracy": served,
        "served_macro_f1": served - 0.1,
        "served": by,
        "gru_accuracy": served - 0.01,
        "gru_macro_f1": 0.5,
        "blend_accuracy": served,
        "blend_macro_f1": 0.6,
        "reference_accuracy": reference,
        "reference_macro_f1": 0.4,
        "seconds": 60.0,
    }


BASELINES = {
    name: {
        "tfidf_lr_accuracy": 0.79,
        "tfidf_lr_macro_f1": 0.5,
        "majority_accuracy": 0.3,
        "majority_macro_f1": 0.02,
        "rows": {"train": 70, "val": 15, "test": 15},
    }
    for name in ("a", "b")
}


def test_the_best_configuration_is_the_best_mean_rank_and_a_tie_goes_to_the_higher_mean_accuracy():
    """Ranked by the model each configuration trains (here the blend is what serves)."""
    runs = [run("a", "x", s, v) for s, v in ((0, 0.82), (1, 0.84))]  # x first on a, by a hair on average
    runs += [run("a", "y", s, 0.80, by="reference") for s in (0, 1)]
    runs += [run("b", "x", s, 0.70) for s in (0, 1)]
    runs += [run("b", "y", s, 0.72) for s in (0, 1)]  # y first on b: both mean rank 1.5
    runs += [run("a", "z", 0, 0.99)]  # ran on one dataset only: not ranked, never best
    summary = summarize(runs, BASELINES)
    cell = summary["cells"]["a|x"]
    assert cell["served_accuracy"] == pytest.approx(0.83) and cell["seeds"] == 2
    assert cell["served_accuracy_sd"] == pytest.approx(0.01414, abs=1e-4)  # over the seeds
    assert cell["gap_to_tfidf_lr"] == pytest.approx(0.04)
    assert summary["cells"]["a|y"]["served_by_reference"] == 2
    assert summary["blend_mean_rank"] == {"x": 1.5, "y": 1.5} == summary["served_mean_rank"]
    assert summary["best"] == "x"  # mean 0.765 against 0.76
    text = markdown({"date": "2026-12-07", "seeds": 2, "baselines": BASELINES, "summary": summary})
    assert "| x | 0.800 ± 0.000 / 0.400 | 0.820 ± 0.014 / 0.500 |" in text
    assert "| 2/2 | +1.0 |" in text  # y on a: served by the reference both times, 1 point above
    assert "| x | 1.50 | 0.765 | 1.50 | 0.765 |" in text
    assert text.rstrip().endswith("a tie by its mean accuracy): **x**.")


def test_configurations_that_tie_on_a_dataset_share_their_places():
    runs = [run(d, c, 0, v) for d, c, v in (("a", "x", 0.8), ("a", "y", 0.8), ("a", "w", 0.7))]
    runs += [run("b", c, 0, v) for c, v in (("x", 0.6), ("y", 0.7), ("w", 0.8))]
    summary = summarize(runs, BASELINES)
    assert summary["blend_mean_rank"] == {"w": 2.0, "x": 2.25, "y": 1.75}
    assert summary["best"] == "y"


def test_the_blend_ranks_the_configurations_where_the_reference_serves_for_all():
    """Where the gate serves the reference for every configuration, served ranks are ties; the
    configurations' own models decide."""
    runs = []
    for dataset in ("a", "b"):
        for config, blend in (("x", 0.78), ("y", 0.79)):
            row = run(dataset, config, 0, 0.80, by="reference")
            runs.append(row | {"blend_accuracy": blend})
    summary = summarize(runs, BASELINES)
    assert summary["served_mean_rank"] == {"x": 1.5, "y": 1.5}
    assert summary["blend_mean_rank"] == {"x": 2.0, "y": 1.0} and summary["best"] == "y"
