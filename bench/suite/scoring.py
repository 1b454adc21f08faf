"""Scoring: the pipeline (read Parquet -> pyfunc -> partition file) vs a bare torch loop over the same
pre-tokenised tensors in inference_mode, same model; and peak RSS against input size, streamed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from bench.suite.common import Bench, child, goal, timed


def names_input(bench: Bench, rows: int) -> Path:
    """`rows` surnames drawn with replacement from the ingested names-dataset names."""
    from pipeline.layout import Layout

    path = bench.work / f"names-{rows}.parquet"
    if not path.exists():
        bronze = pl.read_parquet(str(Layout.of("names", bench.root).bronze / "**" / "*.parquet"))
        drawn = bronze["surname"].sample(rows, with_replacement=True, seed=0)
        pl.DataFrame({"id": np.arange(rows), "surname": drawn}).write_parquet(path)
    return path


def reviews_input(bench: Bench) -> Path:
    from pipeline.layout import Layout

    path = bench.work / "reviews-score.parquet"
    bronze = pl.read_parquet(str(Layout.of("reviews", bench.root).bronze / "**" / "*.parquet"))
    bronze.select("review").write_parquet(path)  # the reviews kind's text column
    return path


@torch.inference_mode()
def bare_torch(pyfunc, texts: list[str]) -> tuple[float, int]:
    """-> (seconds, real tokens) of the model alone over pre-built, length-sorted padded batches."""
    import pandas as pd

    flat, lengths, _ = pyfunc.encode(pd.Series(texts))
    starts = np.cumsum(lengths) - lengths
    order = [i for i in np.argsort(lengths, kind="stable") if lengths[i] > 0]
    batches, pad = [], pyfunc.model.config.pad_id
    for start in range(0, len(order), pyfunc.batch_size):
        rows = order[start : start + pyfunc.batch_size]
        tokens = torch.full((len(rows), int(lengths[rows].max())), pad, dtype=torch.long)  # (B, T)
        for r, i in enumerate(rows):
            tokens[r, : lengths[i]] = torch.from_numpy(flat[starts[i] : starts[i] + lengths[i]])
        batches.append((tokens, torch.from_numpy(lengths[rows])))
    began = time.perf_counter()
    for tokens, lens in batches:
        logits, _ = pyfunc.model(tokens, lens)
        torch.softmax(logits, dim=-1)
    return time.perf_counter() - began, int(lengths.sum())


def pipeline_vs_bare(bench: Bench, kind: str, path: Path, model_key: str | None = None) -> dict:
    from models import scoring, tracking
    from models.jobs import scorer_of
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.storage import PartitionWriter, score_commit

    spec, layout = get_kind(kind), Layout.of(kind, bench.root)
    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    scorer = scorer_of(spec.family)  # the family's code, which the model is built from
    load_s, (resolved, model) = timed(scoring.load, bench.models[model_key or kind])

    def pipeline() -> dict:
        inputs, _ = scorer.read(spec, str(path), layout)
        day = score_commit(layout)
        writer = PartitionWriter(day, layout, "2026-11-01")
        _, counts = scorer.score(model, inputs, spec, "2026-11-01", resolved, writer.write)
        writer.finish()
        day.apply()
        return counts

    seconds, counts = timed(pipeline)
    texts = pl.read_parquet(path)[spec.text_col].to_list()
    bare_s, tokens = bare_torch(model.unwrap_python_model(), texts)
    return {
        "kind": kind,
        "model": "tiny" if model_key else "default",
        "rows": counts["rows"],
        "tokens": tokens,
        "pipeline_s": seconds,
        "bare_s": bare_s,
        "rows_per_s": counts["rows"] / seconds,
        "tokens_per_s": tokens / seconds,
        "bare_rows_per_s": counts["rows"] / bare_s,
        "pipeline_over_bare": seconds / bare_s,
        "model_load_s": load_s,
    }


def run(bench: Bench) -> dict:
    names_path = names_input(bench, 20_000 if bench.quick else 100_000)
    names = pipeline_vs_bare(bench, "names", names_path)
    tiny = pipeline_vs_bare(bench, "names", names_path, "names-tiny")
    reviews = pipeline_vs_bare(bench, "reviews", reviews_input(bench))
    cause = f"bare torch itself: {names['bare_rows_per_s']:,.0f}/s with the default 2-layer bidirectional GRU"
    goals = [
        goal(
            "names scored per second (pipeline, default model)",
            names["rows_per_s"],
            60_000,
            "names/s",
            note=cause if names["bare_rows_per_s"] < 60_000 else "",
        ),
        goal("names scored per second (pipeline, tiny model)", tiny["rows_per_s"], 60_000, "names/s"),
        goal(
            "review tokens scored per second (pipeline)",
            reviews["tokens_per_s"],
            120_000,
            "tokens/s",
            note=f"bare torch: {reviews['tokens'] / reviews['bare_s']:,.0f} tokens/s",
        ),
    ]
    for r in (names, tiny, reviews):
        goals.append(
            goal(
                f"{r['kind']} ({r['model']} model): pipeline time over bare torch",
                r["pipeline_over_bare"],
                1.5,
                "x",
                higher=False,
            )
        )
    memory = []
    sizes = (50_000, 200_000) if bench.quick else (1_000_000, 10_000_000)
    for rows in sizes:
        path = names_input(bench, rows)
        for stream in (True, False) if rows == sizes[0] else (True,):
            out = child(
                "score",
                root=bench.root,
                kind="names",
                model_uri=bench.models["names-tiny"],
                input_path=str(path),
                ds=f"2026-10-{1 + len(memory):02d}",
                stream=stream,
            )
            memory.append(
                {
                    "rows": rows,
                    "input_mb": path.stat().st_size / 2**20,
                    "mode": "streamed" if stream else "all at once",
                    **out,
                }
            )
            print(
                f"  scored {rows:,} names ({memory[-1]['mode']}): peak {out['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        path.unlink()
    small, large = memory[0]["peak_rss_mb"], memory[-1]["peak_rss_mb"]
    goals.append(
        goal(
            f"names: peak RSS at {sizes[1]:,} over {sizes[0]:,} rows, streamed",
            large / small,
            1.5,
            "x",
            higher=False,
            note=f"{small:.0f} MB -> {large:.0f} MB for {sizes[1] // sizes[0]}x the rows; tiny model",
        )
    )
    return {"title": "Scoring", "rows": [names, tiny, reviews], "memory": memory, "goals": goals}
