"""fastText-style linear classifier: hashed n-grams (characters 1-4 of "<text>" or words 1-2) -> mean
EmbeddingBag -> linear. The text reference before the TF-IDF one (models/text/tfidf.py): kept so that the
versions it is part of (as a blend or a model of its own) still load and score."""

from __future__ import annotations

import re
import zlib
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.text.features import WORD_PATTERN

WORDS = re.compile(WORD_PATTERN)  # the word tokenizer of the features, so both models see one split


@dataclass
class NgramConfig:
    num_classes: int
    tokenizer: str = "chars"  # "chars": character n-grams of "<text>"; "words": word n-grams
    min_n: int = 1
    max_n: int = 4  # chars 1-4, words 1-2 (see for_tokenizer)
    buckets: int = 2**18  # hashed n-gram ids 1..buckets-1 (0 pads)
    dim: int = 64
    max_tokens: int | None = None  # words: n-grams of the first max_tokens words
    pad_id: int = 0

    def __post_init__(self) -> None:
        if self.tokenizer not in ("chars", "words"):
            raise ValueError(f"tokenizer must be 'chars' or 'words', got {self.tokenizer!r}")
        if not 1 <= self.min_n <= self.max_n:
            raise ValueError(f"need 1 <= min_n <= max_n, got {self.min_n}..{self.max_n}")
        for name in ("num_classes", "dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.buckets < 2:
            raise ValueError(f"buckets must be >= 2, got {self.buckets}")

    @classmethod
    def for_tokenizer(cls, tokenizer: str, num_classes: int, **overrides) -> NgramConfig:
        n = {"chars": (1, 4), "words": (1, 2)}.get(tokenizer, (1, 1))
        return cls(num_classes=num_classes, tokenizer=tokenizer, min_n=n[0], max_n=n[1], **overrides)

    def to_dict(self) -> dict:
        return asdict(self)


def ngrams(text: str, cfg: NgramConfig) -> list[str]:
    chars = cfg.tokenizer == "chars"
    pieces = list(f"<{text}>") if chars else WORDS.findall(text.lower())[: cfg.max_tokens]
    joiner = "" if chars else " "
    return [
        joiner.join(pieces[i : i + n])
        for n in range(cfg.min_n, cfg.max_n + 1)
        for i in range(len(pieces) - n + 1)
    ]


def ngram_ids(texts: list[str | None], cfg: NgramConfig) -> list[list[int]]:
    """Stable hashed ids (crc32, the same in every process and version); [] for an empty text."""
    mod = cfg.buckets - 1
    return [[zlib.crc32(g.encode()) % mod + 1 for g in ngrams(t, cfg)] if t else [] for t in texts]


class NgramClassifier(nn.Module):
    def __init__(self, config: NgramConfig) -> None:
        super().__init__()
        self.config = c = config
        self.bag = nn.EmbeddingBag(c.buckets, c.dim, mode="mean", padding_idx=c.pad_id, sparse=True)
        self.head = nn.Linear(c.dim, c.num_classes)

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        class_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """tokens (B, T) hashed n-gram ids padded with pad_id -> logits (B, C), loss when targets."""
        logits = self.head(self.bag(tokens))  # (B, D) -> (B, C)
        loss = F.cross_entropy(logits, targets, weight=class_weights) if targets is not None else None
        return logits, loss
