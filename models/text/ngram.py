"""fastText-style linear classifier: hashed n-grams (characters 1-4 of "<text>" or words 1-2) -> mean
EmbeddingBag -> linear. The reference every text training is measured against, and a model of its own.
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import asdict, dataclass

import numpy as np
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


def padded(ids: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """-> tokens (N, T) padded, lengths (N,)."""
    lengths = torch.tensor([len(i) for i in ids], dtype=torch.long)
    width = max((len(i) for i in ids), default=0) or 1
    tokens = torch.full((len(ids), width), pad_id, dtype=torch.long)
    for r, i in enumerate(ids):
        tokens[r, : len(i)] = torch.tensor(i, dtype=torch.long)
    return tokens, lengths


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


@dataclass
class NgramFit:
    model: NgramClassifier
    best_epoch: int
    val_accuracy: float
    seconds: float
    history: list[dict]  # per epoch: train_loss, val_loss, val_accuracy


def fit_ngram(
    cfg: NgramConfig,
    train: tuple[list[str], np.ndarray],
    val: tuple[list[str], np.ndarray],
    seed: int = 0,
    epochs: int = 30,
    patience: int = 3,
    lr: float = 0.02,
    batch_size: int = 64,
) -> NgramFit:
    """SparseAdam on the bag, Adam on the head; the epoch with the best val accuracy is kept."""
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = NgramClassifier(cfg)
    x_train, _ = padded(ngram_ids(train[0], cfg))
    y_train = torch.as_tensor(train[1], dtype=torch.long)
    x_val, _ = padded(ngram_ids(val[0], cfg))
    y_val = torch.as_tensor(val[1], dtype=torch.long)
    sparse = torch.optim.SparseAdam(list(model.bag.parameters()), lr=lr)
    dense = torch.optim.Adam(model.head.parameters(), lr=lr)
    best, best_epoch, best_state, history = -1.0, 0, None, []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y_train), generator=generator)
        loss_sum = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            _, loss = model(x_train[rows], None, y_train[rows])
            sparse.zero_grad()
            dense.zero_grad()
            loss.backward()
            sparse.step()
            dense.step()
            loss_sum += float(loss.detach()) * len(rows)
        accuracy, val_loss = evaluate(model, x_val, y_val)
        history.append(
            {"epoch": epoch, "train_loss": loss_sum / max(len(order), 1), "val_loss": val_loss}
            | {"val_accuracy": accuracy}
        )
        if accuracy > best:
            best, best_epoch = accuracy, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    model.load_state_dict(best_state)
    model.eval()
    return NgramFit(model, best_epoch, best, time.perf_counter() - started, history)


@torch.inference_mode()
def evaluate(model: NgramClassifier, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean loss) on one split."""
    model.eval()
    if not len(y):
        return 0.0, 0.0
    logits, loss = model(x, None, y)
    return float((logits.argmax(-1) == y).float().mean()), float(loss)


@torch.inference_mode()
def predict_proba(model: NgramClassifier, texts: list[str | None], batch_size: int = 2048) -> np.ndarray:
    """(N, C) probabilities; uniform for empty texts."""
    model.eval()
    ids = ngram_ids(texts, model.config)
    c = model.config.num_classes
    probs = np.full((len(ids), c), 1.0 / c, dtype=np.float32)
    rows = [i for i, g in enumerate(ids) if g]
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        tokens, _ = padded([ids[i] for i in chunk])
        probs[chunk] = torch.softmax(model(tokens)[0], dim=-1).numpy()
    return probs
