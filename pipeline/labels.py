"""Ground truth that arrives after scoring: labels for rows scored earlier, keyed by the scored row's id
(text kinds) or by ticker and the forecast's date (prices: the realised next close). Bad rows go to a
quarantine with one reason each (rows in = rows ok + rows quarantined); batches may come late and in
pieces, and the same file twice is one batch."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import polars as pl

from pipeline import locks, objectstore
from pipeline.families import family_of
from pipeline.kinds import Kind
from pipeline.layout import Layout
from pipeline.storage import latest_features, read_json, read_parquet, write_json_atomic, write_parquet_atomic

REASONS = (
    "empty_file",  # a file with no rows (reported; no row to keep)
    "missing_columns",  # the file lacks the key or label column
    "bad_date",  # ds is not YYYY-MM-DD
    "day_not_scored",  # no prediction partition for that day
    "unknown_id",  # the day's partition has no row with that id
    "unknown_ticker",  # prices: the day's forecasts hold no such ticker
    "missing_label",  # empty label (text) or close (prices)
    "unknown_label",  # a label the model does not know
    "bad_close",  # prices: the close is not a positive number
    "duplicate",  # the same key twice in the batch, or labelled by an earlier batch
)


def key_of(kind: Kind) -> tuple[str, str]:
    """(the key column besides ds, the label column) of a kind's labels."""
    return ("ticker", "close") if kind.family == "prices" else ("id", kind.label_col)


def read_sources(sources: list[str], kind: Kind, ds: str | None) -> tuple[pl.DataFrame, list[dict]]:
    """Every source's rows as strings (ds from the file, else the given one), and file-level notes."""
    key, label = key_of(kind)
    frames, notes = [], []
    for source in sources:
        path = objectstore.as_path(source)
        if not path.exists():
            raise FileNotFoundError(f"labels: {source}: no such file")
        if str(source).endswith(".parquet"):
            frame = pl.read_parquet(str(path)).cast(pl.String)
        else:
            frame = pl.read_csv(str(path), infer_schema=False) if path.stat().st_size else pl.DataFrame()
        if frame.height == 0:
            notes.append({"source": str(source), "reason": "empty_file", "rows": 0})
            continue
        if "label" in frame.columns and label not in frame.columns:
            frame = frame.rename({"label": label})
        missing = [c for c in (key, label) if c not in frame.columns]
        if ds is None and "ds" not in frame.columns:
            missing.append("ds (or --ds)")
        frame = frame.with_columns(
            [pl.lit(None, pl.String).alias(c) for c in (key, label, "ds") if c not in frame.columns]
        )
        if ds is not None:
            frame = frame.with_columns(pl.col("ds").fill_null(ds))
        reason = pl.lit("missing_columns" if missing else None, pl.String)
        if missing:
            notes.append({"source": str(source), "reason": "missing_columns", "missing": missing})
        frames.append(
            frame.select(
                pl.col("ds").str.strip_chars(),
                pl.col(key).str.strip_chars(),
                pl.col(label).str.strip_chars(),
                pl.lit(str(source)).alias("source_file"),
                reason.alias("reason"),
            )
        )
    schema = {
        "ds": pl.String,
        key: pl.String,
        label: pl.String,
        "source_file": pl.String,
        "reason": pl.String,
    }
    return (pl.concat(frames) if frames else pl.DataFrame(schema=schema)), notes


def scored_keys(layout: Layout, kind: Kind, days: list[str]) -> pl.DataFrame:
    """(ds, key) of every row the given days' partitions hold."""
    key = key_of(kind)[0]
    frames = []
    for ds in days:
        part = objectstore.as_path(str(layout.prediction_partition(ds)))
        if part.is_dir() and any(part.glob("*.parquet")):
            keys = pl.read_parquet(str(part / "*.parquet"), columns=[key]).cast(pl.String)
            frames.append(keys.with_columns(pl.lit(ds).alias("ds")).select("ds", key))
    return pl.concat(frames) if frames else pl.DataFrame(schema={"ds": pl.String, key: pl.String})


def known_labels(layout: Layout, kind: Kind) -> set[str] | None:
    if kind.family == "prices":
        return None
    if kind.labels is not None:
        return set(kind.labels)
    return set(latest_features(layout)[1]["label_counts_train"])


def validate(rows: pl.DataFrame, layout: Layout, kind: Kind, before: pl.DataFrame) -> pl.DataFrame:
    """Each row its first failing reason (None: good); the label normalised as ingest does."""
    key, label = key_of(kind)
    dated = rows.with_columns(pl.col("ds").str.to_date("%Y-%m-%d", strict=False).alias("_day"))
    days = sorted({d.isoformat() for d in dated["_day"].drop_nulls().to_list()})
    scored = scored_keys(layout, kind, days).with_columns(pl.lit(True).alias("_scored"))
    scored_days = set(scored["ds"].to_list())
    dated = dated.with_columns(pl.col("_day").dt.strftime("%Y-%m-%d").alias("ds"))
    dated = dated.join(scored, on=["ds", key], how="left", nulls_equal=False)
    if kind.family == "prices":
        value = pl.col(label).cast(pl.Float64, strict=False)
        bad_value = value.is_null() | (value <= 0)
        unknown_key, bad_label = "unknown_ticker", pl.when(bad_value).then(pl.lit("bad_close"))
    else:
        dated = dated.with_columns(family_of(kind).clean_label(kind).alias(label))  # as ingest does
        allowed = known_labels(layout, kind)
        unknown_key = "unknown_id"
        bad_label = pl.when(~pl.col(label).is_in(sorted(allowed))).then(pl.lit("unknown_label"))
    earlier = before.select("ds", key).with_columns(pl.lit(True).alias("_earlier"))
    dated = dated.join(earlier, on=["ds", key], how="left")
    first = pl.int_range(pl.len()).over(["ds", key]) == 0
    reason = (
        pl.when(pl.col("reason").is_not_null())
        .then(pl.col("reason"))
        .when(pl.col("_day").is_null())
        .then(pl.lit("bad_date"))
        .when(~pl.col("ds").is_in(sorted(scored_days)))
        .then(pl.lit("day_not_scored"))
        .when(pl.col("_scored").is_null())
        .then(pl.lit(unknown_key))
        .when(pl.col(label).is_null() | (pl.col(label) == ""))
        .then(pl.lit("missing_label"))
        .otherwise(bad_label.otherwise(None))
    )
    dated = dated.with_columns(reason.alias("reason"))
    duplicate = pl.col("reason").is_null() & (pl.col("_earlier").is_not_null() | ~first)
    dated = dated.with_columns(
        pl.when(duplicate).then(pl.lit("duplicate")).otherwise(pl.col("reason")).alias("reason")
    )
    return dated.drop("_day", "_scored", "_earlier")


def stored(layout: Layout, excluding: str | None = None) -> pl.DataFrame | None:
    """Every label kept so far (but the batch `excluding`: a re-run of a batch a kill interrupted)."""
    folder = objectstore.as_path(str(layout.labels))
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    files = [f for f in files if f.stem != excluding]
    return pl.concat([read_parquet(f) for f in files], how="diagonal_relaxed") if files else None


def ingest_labels(sources: list[str], kind: Kind, layout: Layout, ds: str | None = None) -> dict:
    """One labels batch: good rows to labels/<kind>/, bad ones to label-quarantine/<kind>/ with their
    reason, under the kind's labels lock (two writers cannot both take a key); -> the batch's report."""
    key, label = key_of(kind)
    rows, notes = read_sources(sources, kind, ds)
    digest = hashlib.sha256(rows.sort(rows.columns).write_csv().encode()).hexdigest()[:16]
    with locks.hold(layout.root, f"labels-{kind.name}"):
        done = objectstore.as_path(str(layout.labels / f"{digest}.json"))
        if done.exists():
            return read_json(done) | {"already_ingested": True}
        before = stored(layout, excluding=digest)  # a kill may have left this batch's rows, not its report
        before = before if before is not None else pl.DataFrame(schema={"ds": pl.String, key: pl.String})
        checked = validate(rows, layout, kind, before.select("ds", key))
        now = datetime.now(UTC)
        good = checked.filter(pl.col("reason").is_null()).drop("reason")
        if kind.family == "prices":
            good = good.with_columns(pl.col(label).cast(pl.Float64))
        bad = checked.filter(pl.col("reason").is_not_null())
        stamp = pl.lit(now).alias("ingested_at")
        write_parquet_atomic(bad.with_columns(stamp), layout.label_quarantine / f"{digest}.parquet")
        write_parquet_atomic(good.with_columns(stamp), layout.labels / f"{digest}.parquet")
        counts = bad["reason"].value_counts().sort("reason")
        report = {
            "kind": kind.name,
            "batch": digest,
            "rows_in": rows.height,
            "rows_ok": good.height,
            "rows_quarantined": bad.height,
            "reasons": dict(counts.iter_rows()),
            "files": notes,
            "days": sorted(set(good["ds"].to_list())),
        }
        write_json_atomic(report, layout.labels / f"{digest}.json")  # last: the batch is done
    return report
