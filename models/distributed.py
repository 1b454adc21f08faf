"""What a training process knows about its DDP world, and the few collectives the training loop needs.

With world_size 1 (the default, no torchrun) every helper is a no-op, so one code path serves both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:  # rank 0 alone talks to MLflow and writes checkpoints
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> DistInfo:
        """RANK / WORLD_SIZE / LOCAL_RANK as torchrun sets them (absent: a single process)."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def backend(device: str = "auto") -> str:
    """nccl when the training runs on CUDA, gloo on CPU (also on a GPU host told --device cpu)."""
    return "nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"


def sum_across(values: list[float], info: DistInfo) -> list[float]:
    """Element-wise sum over ranks (float64 on CPU under gloo, on the GPU under nccl)."""
    if not info.active:
        return values
    device = torch.device("cuda", info.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def gather_across(value: float, info: DistInfo) -> list[float]:
    """Every rank's value, in rank order."""
    if not info.active:
        return [value]
    parts = [0.0] * info.world_size
    parts[info.rank] = value
    return sum_across(parts, info)


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()
