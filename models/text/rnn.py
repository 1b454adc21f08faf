"""Sequence classifier: embedding -> GRU/LSTM (layers, bidirectional) -> mean+max or last real step -> linear.

Padding never reaches a real position: the forward direction is causal and we read it at length-1;
the backward direction runs over each sequence reversed within its own length, so it starts at the
last real token (or, with pack=True, cuDNN-style packed sequences do the same).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.config import MODEL_DEFAULTS
from models.rnn_common import CELLS, check_config

TEXT = MODEL_DEFAULTS["text"]

POOLINGS = ("last", "meanmax")


@dataclass
class RNNClassifierConfig:
    vocab_size: int
    num_classes: int
    # what training uses unless told otherwise is models/config.py's MODEL_DEFAULTS; these defaults are
    # what a packaged version's stored config lacks (a field added since) loads with
    embed_dim: int = TEXT["embed_dim"]
    hidden_size: int = TEXT["hidden_size"]
    num_layers: int = 1  # a kind may default to more (TextKind.rnn_layers: names 2)
    bidirectional: bool = TEXT["bidirectional"]
    dropout: float = TEXT["dropout"]
    cell: str = TEXT["cell"]
    pad_id: int = 0
    pack: bool = TEXT["pack"]  # packed sequences; slower than exact-length buckets on CPU (bench/)
    pooling: str = TEXT["pooling"]  # mean and max over the real steps; "last": the last real step's state
    # independently initialised copies trained side by side on the same batches, each on its own loss;
    # the model's prediction is the mean of their probabilities (a deep ensemble in one module)
    members: int = 1

    def __post_init__(self) -> None:
        check_config(self, ("vocab_size", "num_classes", "embed_dim", "hidden_size", "num_layers", "members"))
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class RNNClassifier(nn.Module):
    def __init__(self, config: RNNClassifierConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.members > 1:
            self.ensemble = nn.ModuleList(RNNClassifier(replace(c, members=1)) for _ in range(c.members))
            return
        rnn = CELLS[c.cell]
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=c.pad_id)
        self.drop = nn.Dropout(c.dropout)
        if c.pack:  # one multi-layer module; packing keeps padding out of both directions
            inter = c.dropout if c.num_layers > 1 else 0.0
            self.rnn = rnn(
                c.embed_dim,
                c.hidden_size,
                c.num_layers,
                batch_first=True,
                bidirectional=c.bidirectional,
                dropout=inter,
            )
        else:  # per layer and direction, so the backward pass can start at each sequence's end
            dirs = 2 if c.bidirectional else 1
            self.layers = nn.ModuleList(
                nn.ModuleList(
                    rnn(
                        c.embed_dim if i == 0 else c.hidden_size * dirs,
                        c.hidden_size,
                        batch_first=True,
                    )
                    for _ in range(dirs)
                )
                for i in range(c.num_layers)
            )
        width = c.hidden_size * (2 if c.bidirectional else 1)
        self.head = nn.Linear(width * (2 if c.pooling == "meanmax" else 1), c.num_classes)

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor | None = None,
        class_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """tokens (B, T) long, lengths (B,) >= 1 -> logits (B, C), loss when targets (B,) given."""
        if self.config.members > 1:
            return self._ensemble(tokens, lengths, targets, class_weights)
        x = self.drop(self.embed(tokens))  # (B, T, E)
        h = self._encode_packed(x, lengths) if self.config.pack else self._encode(x, lengths)
        logits = self.head(self.drop(h))  # (B, C)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits, targets, weight=class_weights)
        return logits, loss

    def _ensemble(self, tokens, lengths, targets, class_weights) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The members' mean probability as log-probabilities (B, C); in training, the mean of their own
        losses (each member learns alone), else the ensemble's loss."""
        outs = [member(tokens, lengths, targets, class_weights) for member in self.ensemble]
        log_probs = torch.stack([F.log_softmax(logits, dim=-1) for logits, _ in outs])  # (K, B, C)
        logits = torch.logsumexp(log_probs, dim=0) - math.log(len(outs))  # (B, C)
        loss = None
        if targets is not None:
            loss = (
                torch.stack([m_loss for _, m_loss in outs]).mean()
                if self.training
                else F.cross_entropy(logits, targets, weight=class_weights)
            )
        return logits, loss

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        last = (lengths - 1).clamp(min=0).to(x.device)  # (B,) index of the last real step
        rows = torch.arange(x.size(0), device=x.device)
        for i, directions in enumerate(self.layers):
            out_f, _ = directions[0](x)  # (B, T, H), causal: real steps never see padding
            outs = [out_f]
            if len(directions) == 2:
                rev = reverse_within_length(x, lengths)  # (B, T, ·), real tokens first
                out_b, _ = directions[1](rev)
                outs.append(reverse_within_length(out_b, lengths))  # back to input order
            x = torch.cat(outs, dim=-1)  # (B, T, H * dirs)
            if i < len(self.layers) - 1:
                x = self.drop(x)
        if self.config.pooling == "meanmax":
            return mean_max(x, lengths)  # (B, 2 * H * dirs)
        h_f = x[rows, last, : self.config.hidden_size]  # forward state after the last real token
        if not self.config.bidirectional:
            return h_f  # (B, H)
        h_b = x[:, 0, self.config.hidden_size :]  # backward state after reading the whole sequence
        return torch.cat([h_f, h_b], dim=-1)  # (B, 2H)

    def _encode_packed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True)  # (B, T', H * dirs)
        if self.config.pooling == "meanmax":
            return mean_max(out, lengths)
        rows = torch.arange(x.size(0), device=x.device)
        h_f = out[rows, (lengths - 1).to(x.device), : self.config.hidden_size]
        if not self.config.bidirectional:
            return h_f
        return torch.cat([h_f, out[:, 0, self.config.hidden_size :]], dim=-1)


def mean_max(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean and max over each row's real steps only. x (B, T, D), lengths (B,) -> (B, 2D)."""
    real = torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.to(x.device).unsqueeze(1)
    real = real.unsqueeze(-1)  # (B, T, 1)
    mean = (x * real).sum(dim=1) / lengths.to(x.device).clamp(min=1).unsqueeze(1).to(x.dtype)
    top = x.masked_fill(~real, torch.finfo(x.dtype).min).amax(dim=1)
    return torch.cat([mean, top], dim=-1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first `length` steps, leave its padding in place. x: (B, T, ...)."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)
