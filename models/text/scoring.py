"""Text scoring: a text pyfunc's outputs for a column of texts as typed polars columns, and the family's
Scorer (check the input, read it, score it into a partition)."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pandas as pd
import polars as pl
import pyarrow as pa

from models.scoring import NO_REFERENCE, Scorer, drift_reference
from models.text.pyfunc import OUTPUT_COLUMNS, POSITIVE_COLUMN
from pipeline import objectstore
from pipeline.kinds import TextKind
from pipeline.layout import Layout
from pipeline.predictions import RowSample, assemble
from pipeline.text import profile
from pipeline.text.rules import scoring_status
from pipeline.text.sources import scan_scoring_input

log = logging.getLogger("rnnflow.score")

EMPTY_SCHEMA = {
    "predicted_label": pl.String,
    "probability": pl.Float64,
    "top_labels": pl.List(pl.String),
    "top_probs": pl.List(pl.Float64),
    POSITIVE_COLUMN: pl.Float64,  # only from models of binary kinds
}


def output_columns(model) -> list[str]:
    """OUTPUT_COLUMNS, plus positive_probability when the model's signature has it (binary kinds)."""
    schema = model.metadata.get_output_schema() if getattr(model, "metadata", None) else None
    names = schema.input_names() if schema is not None else []
    return [*OUTPUT_COLUMNS, POSITIVE_COLUMN] if POSITIVE_COLUMN in names else list(OUTPUT_COLUMNS)


def predict(model, texts: pl.Series, text_col: str) -> pl.DataFrame:
    """Model outputs for each text, in input order; empty or null texts get null predictions."""
    if texts.is_empty():
        return pl.DataFrame(schema={c: EMPTY_SCHEMA[c] for c in output_columns(model)})
    frame = pd.DataFrame({text_col: texts.fill_null("").to_list()})
    out = model.predict(frame)
    scored = pl.DataFrame(
        {
            "predicted_label": pl.from_arrow(
                pa.array(out["predicted_label"].tolist(), pa.large_string(), from_pandas=True)
            ),
            "probability": pl.Series(out["probability"].tolist(), dtype=pl.Float64).fill_nan(None),
            # pyarrow converts lists of Python lists in C++, ~10x faster than polars' constructor
            "top_labels": pl.from_arrow(
                pa.array(out["top_labels"].tolist(), pa.large_list(pa.large_string()))
            ),
            "top_probs": pl.from_arrow(pa.array(out["top_probs"].tolist(), pa.large_list(pa.float64()))),
        }
    ).select(OUTPUT_COLUMNS)
    if POSITIVE_COLUMN not in out.columns:
        return scored
    positive = pl.Series(POSITIVE_COLUMN, out[POSITIVE_COLUMN].tolist(), dtype=pl.Float64).fill_nan(None)
    return scored.with_columns(positive)


# ---------------------------------------------------------------- the text family's scorer


CHUNK_ROWS = 100_000  # rows scored at a time: memory stays bounded whatever the input's size
SHARD_ROWS = 20_000  # rows a shard scored on a Ray actor: a day spreads over the cluster's CPUs
DRIFT_SAMPLE = 100_000  # a day scored in chunks keeps a uniform sample this big for its drift report


def read(kind: TextKind, input_path: str, layout: Layout) -> tuple[pl.LazyFrame, int]:
    """The texts to score (with `id` when given), lazily: scoring reads them in chunks; and how many
    input rows were rejected (none: a row that breaks a text rule is kept, with its reason)."""
    aliases = kind.column_aliases.get(kind.text_col, ())
    return scan_scoring_input(objectstore.as_path(input_path), kind.text_col, aliases), 0


def chunks(inputs: pl.DataFrame | pl.LazyFrame, size: int) -> Iterator[pl.DataFrame]:
    """The inputs `size` rows at a time, in order; an empty input gives one empty chunk. A lazy input
    is read one slice per chunk when the scorer asks for it (Parquet skips to the row groups
    holding it), so nothing is read ahead of the model: memory holds one chunk, whatever the input."""
    if isinstance(inputs, pl.DataFrame):
        yield from inputs.iter_slices(size) if inputs.height else [inputs]
        return
    offset = 0
    while True:
        chunk = inputs.slice(offset, size).collect()
        if chunk.height or not offset:
            yield chunk
        if chunk.height < size:
            return
        offset += size


def score(
    model,
    inputs,
    kind: TextKind,
    ds: str,
    resolved,
    sink: Callable | None = None,
    shards: Callable | None = None,
) -> tuple[pl.DataFrame, dict]:
    """-> the partition's rows (inputs, outputs, `status`, lineage) and the counts the run reports.
    A row that breaks a text rule gets null outputs and its reason in `status`, never a label.

    With a sink, each chunk's rows go to sink(frame) as they are scored and the frame returned is a
    uniform sample of at most DRIFT_SAMPLE rows (the columns drift reads): memory is bounded by the
    chunk size, not the input.

    shards: (chunks, score_chunk) -> the scored chunks in order, e.g. on a Ray cluster
    (models/cluster.py); each row is scored as in this process, so the rows and the sample are the same."""
    scored_at = datetime.now(UTC)
    kept = RowSample(DRIFT_SAMPLE) if sink else None
    frames, reasons, rows, unscored = [], Counter(), 0, 0
    one = functools.partial(score_chunk, kind=kind, resolved=resolved, scored_at=scored_at)
    if shards is None:
        scored = (one(model, chunk) for chunk in chunks(inputs, CHUNK_ROWS))
    else:
        scored = shards(chunks(inputs, SHARD_ROWS), one)
    for frame in scored:
        if rows:
            log.info("scored %d rows so far", rows)
        status = frame["status"]
        reasons.update(dict(status.filter(status != "ok").value_counts(name="n").iter_rows()))
        rows, unscored = rows + frame.height, unscored + frame["predicted_label"].null_count()
        if sink is None:
            frames.append(frame)
        else:
            sink(frame)
            kept.add(frame.select(kind.text_col, "predicted_label", "probability"))  # what drift reads
    reasons = dict(reasons.most_common())
    log.info(
        "scored %d rows (%d unscored%s) with %s v%d",
        rows,
        unscored,
        f": {reasons}" if reasons else "",
        resolved.name,
        resolved.version,
    )
    result = kept.frame if kept else pl.concat(frames)
    return result, {"rows": rows, "rows_unscored": unscored, "unscored_reasons": reasons}


def score_chunk(model, inputs: pl.DataFrame, kind: TextKind, resolved, scored_at) -> pl.DataFrame:
    if "status" not in inputs.columns:
        inputs = inputs.with_columns(scoring_status(inputs, kind))
    status = inputs["status"]
    texts = inputs.select(
        pl.when(pl.col("status") == "ok").then(pl.col(kind.text_col)).otherwise(pl.lit("")).alias("t")
    )["t"]
    scored = predict(model, texts, kind.text_col)
    frame = assemble(
        inputs.drop("status"),
        scored,
        kind.text_col,
        resolved.name,
        resolved.version,
        resolved.run_id,
        scored_at,
    )
    return frame.insert_column(inputs.width - 1 + scored.width, status)  # after the outputs


def drift(model, inputs: pl.DataFrame, frame: pl.DataFrame, kind: TextKind, ds: str, limits: dict) -> dict:
    """The day's scored texts against the distributions packaged with the model."""
    reference = drift_reference(model)
    if reference is None:
        return {"verdict": "n/a", "rows": frame.height, "metrics": {}, "note": NO_REFERENCE}
    tokens = model.unwrap_python_model().tokens
    return profile.compare(reference, kind, tokens, frame, limits)


SCORER = Scorer(read=read, score=score, input_label=lambda path: path, drift=drift, shardable=True)
