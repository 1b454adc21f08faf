"""Sequence regressor for price windows: LSTM/GRU over (B, T, F) daily features -> last real step -> linear.

Windows have one length (the lookback), but the last step is still taken by length so that a shorter
window, if one ever comes, is read at its own end and never at a padding position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.config import MODEL_DEFAULTS
from models.rnn_common import CELLS, check_config

PRICES = MODEL_DEFAULTS["prices"]


@dataclass
class RNNRegressorConfig:
    input_size: int = 5  # features per day (OHLC relative to the first close, log volume)
    hidden_size: int = PRICES["hidden_size"]  # models/config.py's MODEL_DEFAULTS: one place
    num_layers: int = PRICES["num_layers"]
    dropout: float = PRICES["dropout"]
    cell: str = PRICES["cell"]

    def __post_init__(self) -> None:
        check_config(self, ("input_size", "hidden_size", "num_layers"))

    def to_dict(self) -> dict:
        return asdict(self)


class RNNRegressor(nn.Module):
    def __init__(self, config: RNNRegressorConfig) -> None:
        super().__init__()
        self.config = c = config
        inter = c.dropout if c.num_layers > 1 else 0.0  # between stacked layers only
        self.rnn = CELLS[c.cell](c.input_size, c.hidden_size, c.num_layers, batch_first=True, dropout=inter)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size, 1)
        # Starts at the mean target: with the log_return target that is persistence plus the average
        # drift, so training only has to learn a correction and "do nothing" is the easy floor.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, F) float, lengths (B,) -> prediction (B,) in scaled target units, MSE loss if targets."""
        out, _ = self.rnn(x)  # (B, T, H), causal
        rows = torch.arange(x.size(0), device=x.device)
        h = out[rows, (lengths - 1).clamp(min=0).to(x.device)]  # (B, H) at the last real step
        pred = self.head(self.drop(h)).squeeze(-1)  # (B,)
        loss = F.mse_loss(pred, targets) if targets is not None else None
        return pred, loss
