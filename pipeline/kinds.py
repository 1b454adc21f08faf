"""Declarative description of each text-classification data kind (names now; reviews slot in beside it).

A kind says which columns it reads, how its text is tokenised and validated, and what model it registers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    column_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def required_columns(self) -> tuple[str, str]:
        return (self.text_col, self.label_col)


NAMES = TextKind(
    name="names",
    text_col="surname",
    label_col="nationality",
    model_name="names-nationality",
    tokenizer="chars",
    max_chars=64,
    column_aliases={"surname": ("name", "last_name"), "nationality": ("label", "language")},
)

KINDS: dict[str, TextKind] = {k.name: k for k in (NAMES,)}


def get_kind(name: str) -> TextKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown data kind {name!r}; choose one of: {', '.join(KINDS)}") from None
