"""A small token vocabulary with encode/decode and JSON round-trip, built with polars counts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import polars as pl

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
TOKEN_SPECIALS = (PAD, UNK, BOS, EOS)  # ids 0..3, in this order


@dataclass
class Vocabulary:
    tokens: list[str]
    specials: tuple[str, ...] = ()
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return self.index[PAD]

    @property
    def unk_id(self) -> int | None:
        return self.index.get(UNK)

    def encode(self, items: Iterable[str]) -> list[int]:
        unk = self.unk_id
        if unk is None:
            return [self.index[t] for t in items]  # label vocabularies: unknown is an error
        return [self.index.get(t, unk) for t in items]

    def decode(self, ids: Sequence[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens, "specials": list(self.specials)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, obj: dict) -> Vocabulary:
        return cls(tokens=obj["tokens"], specials=tuple(obj["specials"]))

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_counts(
        cls,
        counts: pl.DataFrame,
        specials: tuple[str, ...] = (),
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """counts: columns token, count. Most frequent first, ties by token, specials in front."""
        ranked = (
            counts.filter(pl.col("count") >= min_freq, ~pl.col("token").is_in(list(specials)))
            .sort(["count", "token"], descending=[True, False])
            .get_column("token")
            .to_list()
        )
        if max_size is not None:
            ranked = ranked[: max(0, max_size - len(specials))]
        return cls(tokens=[*specials, *ranked], specials=specials)


def token_counts(token_lists: pl.LazyFrame, column: str = "tokens") -> pl.DataFrame:
    """A list[str] column -> (token, count)."""
    return (
        token_lists.select(pl.col(column).explode().alias("token"))
        .drop_nulls()
        .group_by("token")
        .len(name="count")
        .collect()
    )
