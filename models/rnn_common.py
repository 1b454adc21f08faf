"""What the recurrent models share: the cell chosen by name and the checks on their configs."""

from __future__ import annotations

from torch import nn

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def check_config(config, positive: tuple[str, ...]) -> None:
    """ValueError naming the field: sizes >= 1, dropout in [0, 1), a known cell."""
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}, got {config.cell!r}")
