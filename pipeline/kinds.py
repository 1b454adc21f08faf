"""Declarative description of each data kind: names and reviews (text -> label), prices (OHLCV -> close).

A kind says which columns it reads, how rows are cleaned and validated, its de-duplication key and what
model it registers; ingest, quarantine, bucketing, training, packaging and the scoring writer are shared.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

from pipeline.families import family_of


@dataclass(frozen=True)
class TextKind:
    name: str  # data kind, e.g. "names"; also the folder name under bronze/, features/, ...
    text_col: str  # column holding the input text, e.g. "surname"
    label_col: str  # column holding the class label, e.g. "nationality"
    model_name: str  # registered MLflow model name
    tokenizer: str = "chars"  # "chars" (one token per character) or "words"
    max_chars: int = 64  # longer texts are quarantined as too_long
    label_required: bool = True  # a labelled source row without a label is quarantined
    lowercase: bool = False  # lower-case text during normalisation
    strip_html: bool = False  # replace HTML line breaks and tags with spaces
    repair_cp1252: bool = False  # C1 code points that are Windows-1252 punctuation -> that punctuation
    labels: tuple[str, ...] | None = None  # allowed labels (others: unknown_label); None = any
    label_aliases: dict[str, str] = field(default_factory=dict)  # e.g. pos -> positive
    label_case: str = "keep"  # free label sets: "keep", "title" (` irish ` -> Irish) or "lower"
    positive_label: str | None = None  # binary kinds: scoring adds this class's probability
    min_freq: int = 1  # feature default: rarer tokens map to <unk>
    max_tokens: int | None = None  # feature default: longer texts keep their first max_tokens
    rnn_layers: int = 1  # model default: stacked recurrent layers
    column_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extra_columns: tuple[str, ...] = ()  # optional integer columns kept in bronze (null when absent)
    extra_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # others: invalid_<column>
    drift_thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)  # over pipeline/drift.py's

    family = "text"  # which feature builder, model and scorer serve this kind
    daily_input = True  # scoring reads incoming/<kind>/ds=<ds>/ (the daily deployment skips a day without it)
    score_days_back = 0  # the daily run scores its scheduled date

    @property
    def required_columns(self) -> tuple[str, str]:
        return (self.text_col, self.label_col)

    @property
    def key_columns(self) -> tuple[str, ...]:  # a repeat of these is a duplicate
        return (self.text_col, self.label_col)

    def validate(self, raw):  # LazyFrame of raw strings -> cleaned columns + raw_* + `reason`
        return family_of(self).validate(raw, self)

    def good_columns(self) -> list:  # what bronze keeps of a good row (before lineage)
        return [self.text_col, self.label_col, "split", *self.extra_columns]

    def bad_columns(self) -> list:  # what quarantine keeps of a bad row: the text as it came in
        import polars as pl

        raw_text = pl.col(f"raw_{self.text_col}").alias(self.text_col)
        return [raw_text, self.label_col, "split", *self.extra_columns]


NAMES = TextKind(
    name="names",
    text_col="surname",
    label_col="nationality",
    model_name="names-nationality",
    tokenizer="chars",
    max_chars=64,
    rnn_layers=2,  # short texts: a second layer costs little (+0.6 points test accuracy, issue 11)
    label_case="title",  # nationalities and countries: ` irish `, `IRISH` and `Irish` are one class
    column_aliases={"surname": ("name", "last_name"), "nationality": ("label", "language")},
)

REVIEWS = TextKind(
    name="reviews",
    text_col="review",
    label_col="sentiment",
    model_name="reviews-sentiment",
    tokenizer="words",
    max_chars=20_000,
    lowercase=True,
    strip_html=True,
    repair_cp1252=True,  # IMDB text holds \x96 (en dash), \x85 (ellipsis), ...
    labels=("negative", "positive"),
    label_aliases={"neg": "negative", "pos": "positive", "0": "negative", "1": "positive"},
    positive_label="positive",
    min_freq=5,  # as in the classic recipe
    max_tokens=400,  # the first 400 tokens: reviews state their verdict early and often
    column_aliases={"review": ("text",), "sentiment": ("label",)},
    extra_columns=("rating",),  # aclImdb's 1-10 star rating, from the file name
    extra_ranges={"rating": (1, 10)},
)


@dataclass(frozen=True)
class PriceKind:
    """Daily OHLCV bars per ticker; the model forecasts the next trading day's close."""

    name: str = "prices"
    model_name: str = "prices-next-close"
    lookback: int = 7  # feature default: trading days in each input window
    target: str = "log_return"  # feature default: next log return (a correction to persistence) or "close"
    column_aliases: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "ticker": ("symbol", "name"),
            "date": ("timestamp", "day", "datetime"),
            "adj_close": ("adj close", "adjclose", "adjusted_close", "adjusted close"),
        }
    )
    drift_thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)  # over pipeline/drift.py's
    family = "prices"
    daily_input = False  # scoring reads the ingested bars, no incoming partition
    score_days_back = 1  # a 06:00 run forecasts today from yesterday's close
    required_columns = ("date", "open", "high", "low", "close", "volume")  # ticker: column or file name
    numeric_columns = ("open", "high", "low", "close", "volume", "adj_close")
    key_columns = ("ticker", "date")

    def validate(self, raw):
        return family_of(self).validate(raw, self)

    def good_columns(self) -> list:
        return ["ticker", "date", *self.numeric_columns]

    def bad_columns(self) -> list:
        import polars as pl

        return [pl.col(f"raw_{c}").alias(c) for c in ("ticker", "date", *self.numeric_columns)]


PRICES = PriceKind()
Kind = TextKind | PriceKind
KINDS: dict[str, Kind] = {k.name: k for k in (NAMES, REVIEWS, PRICES)}
KIND_MODULES_ENV = "RNNFLOW_KINDS"  # comma-separated modules that declare more kinds (register_kind)


def register_kind(kind: Kind) -> Kind:
    """Add a kind: its declaration is all a new kind of a known family needs (CLI, flows, deployments
    and the family's ingest, features, training and scoring all read KINDS)."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"kind {kind.name!r} is already declared differently; choose another name")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown data kind {name!r}; choose one of: {', '.join(KINDS)}") from None


def _load_declared_kinds() -> None:
    """Import the modules named in $RNNFLOW_KINDS (e.g. `mykinds`), so every process (CLI, worker,
    deploy.py) knows the same kinds."""
    for module in filter(None, (m.strip() for m in os.environ.get(KIND_MODULES_ENV, "").split(","))):
        importlib.import_module(module)


_load_declared_kinds()
