"""Bounded-memory de-duplication for ingest: rows are spilled to local Arrow IPC files by a hash of their
key (a bucket), so every copy of a key meets the others, and the earlier batches' keys, in one bucket
that is small however large the batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa

BUCKET_BYTES = 8 << 20  # about this much source text per bucket (a 1M-row names CSV is 25 MB)
MAX_BUCKETS = 4096
SEQ = "_seq"  # a row's place in the batch: the first copy of a key wins
HASH = "_hash"  # of a spilled row's key
_BUCKET = "_bucket"
_SEED = 0x5EED


class Parts:
    """Frames written as numbered Parquet files in a folder, buffered to `flush_rows` rows a file (0:
    a file per frame), so memory holds one buffer; no file when no row is written."""

    def __init__(self, folder: Path, flush_rows: int = 0):
        self.folder, self.flush_rows = Path(folder), flush_rows
        self.files: list[Path] = []
        self.rows = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        self.rows += frame.height
        if self.flush_rows == 0:
            self._write(frame)
            return
        # a filtered frame's strings are views into its whole source chunk: the buffer keeps a copy
        # of its own bytes instead, or every chunk read so far would stay in memory
        self._buffer.append(frame.to_arrow(compat_level=pl.CompatLevel.oldest()))
        self._buffered += frame.height
        if self._buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            tables, self._buffer, self._buffered = self._buffer, [], 0
            self._write(pl.from_arrow(pa.concat_tables(tables, promote_options="permissive")))

    def _write(self, frame: pl.DataFrame) -> None:
        path = self.folder / f"part-{len(self.files):05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        # zstd level 1: 2x faster than polars' default level, files 5% larger
        frame.write_parquet(path, compression="zstd", compression_level=1, statistics=True)
        self.files.append(path)

    def close(self) -> list[Path]:
        self.flush()
        return self.files


def bucket_count(size_bytes: int) -> int:
    """Buckets for a batch of about `size_bytes` of source text (and earlier keys)."""
    return max(1, min(MAX_BUCKETS, -(-size_bytes // BUCKET_BYTES)))


class Buckets:
    """Frames spilled to `count` Arrow IPC streams (appended to frame by frame, read once) by the hash
    of their `key` columns, which they keep in HASH."""

    def __init__(self, folder: Path, count: int, key: list[str]):
        self.folder, self.count, self.key = Path(folder), count, key
        self._writers: dict[int, tuple] = {}  # bucket -> (file, writer, schema)

    def _write(self, number: int, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if number not in self._writers:
            self.folder.mkdir(parents=True, exist_ok=True)
            sink = pa.OSFile(str(self.folder / f"bucket-{number:05d}.arrows"), "wb")
            writer = pa.ipc.new_stream(sink, table.schema)
            self._writers[number] = (sink, writer, table.schema)
        _, writer, schema = self._writers[number]
        if table.schema != schema:  # e.g. a column all null in one frame
            table = table.cast(schema)
        writer.write_table(table)

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        # the hash of the key's values alone, so a batch's rows and bronze's keys agree on the bucket
        frame = frame.with_columns(pl.struct(self.key).hash(_SEED).alias(HASH))
        if self.count == 1:
            self._write(0, frame)
            return
        bucket = (pl.col(HASH) % self.count).alias(_BUCKET)
        parts = frame.with_columns(bucket).partition_by(_BUCKET, as_dict=True, include_key=False)
        for (number,), part in parts.items():
            self._write(int(number), part)

    def close(self) -> None:
        for sink, writer, _ in self._writers.values():
            writer.close()
            sink.close()

    def read(self, bucket: int) -> pl.DataFrame | None:
        """A bucket's rows in the order they were added; None when it holds none."""
        if bucket not in self._writers:
            return None
        with pa.OSFile(str(self.folder / f"bucket-{bucket:05d}.arrows"), "rb") as source:
            return pl.from_arrow(pa.ipc.open_stream(source).read_all())

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.count))


def first_copies(rows: pl.DataFrame, key: list[str]) -> pl.Series:
    """True for the first row of each key (spilled rows): found by their HASH, then checked on the keys of the
    few rows whose hash repeats (so a collision never makes a duplicate)."""
    hashed = rows.select(pl.col(HASH).is_duplicated().alias("repeat"))["repeat"]
    first = pl.Series("first", [True] * rows.height)
    if not hashed.any():
        return first
    repeats = rows.select(key).with_row_index("_at").filter(hashed)
    later = repeats.filter(~pl.struct(key).is_first_distinct())["_at"]
    return first.scatter(later, False)


def seen_before(rows: pl.DataFrame, key: list[str], seen: pl.DataFrame | None) -> pl.Series:
    """True for the rows whose key an earlier batch holds."""
    if seen is None:
        return pl.Series("seen", [False] * rows.height)
    candidates = rows.select(pl.col(HASH).is_in(seen[HASH].implode()).alias("seen"))["seen"]
    if not candidates.any():  # no key hash an earlier batch holds: nothing to compare
        return candidates
    earlier = seen.select(pl.struct(key).alias("_key")).unique()["_key"].implode()
    return rows.select(pl.struct(key).is_in(earlier, nulls_equal=True).alias("seen"))["seen"]
