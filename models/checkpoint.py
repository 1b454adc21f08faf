"""Per-epoch training checkpoints (model, optimizer, scheduler, sampler epoch, RNG states, history).

Each is written whole through pipeline.storage (aside + rename locally, one PUT on S3), so a crash
mid-write never corrupts the last good one; they load with torch.load(weights_only=True), so a
checkpoint can never run code.
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import numpy as np
import torch

from pipeline import storage

NAME = re.compile(r"^epoch-(\d{4})\.pt$")
KEEP = 2  # the newest two, in case the newest is from a run that changed its mind


def rng_state() -> dict:
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss},
        "numpy_cached": float(cached),
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], state["numpy_cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(state: dict, folder: Path, epoch: int) -> Path:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = storage.write_bytes_atomic(buffer.getvalue(), folder / f"epoch-{epoch:04d}.pt")
    for old in all_checkpoints(folder)[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def all_checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if NAME.match(p.name))


def latest(folder: Path) -> Path | None:
    found = all_checkpoints(folder)
    return found[-1] if found else None


def torch_error(err: BaseException) -> str:
    """torch.load's error in a few words, without its advice to load with weights_only=False (which
    would let a file run code: never the fix here)."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if "weights only" in text.lower() or "weights_only" in text.lower():
        return f"{type(err).__name__}: not a file of tensors only, refused"
    return text[:160]


def load(path: Path) -> dict:
    data = storage.read_bytes(path)  # an I/O error stays one (and may be retried)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # truncated (zip) or not a checkpoint; never torch's weights_only=False advice
        fix = "delete it to resume from the one before, or train without --resume"
        raise storage.corrupt(path, "checkpoint", torch_error(err), fix) from None


def clear(folder: Path) -> None:
    """A new (not resumed) training starts without the last one's checkpoints."""
    for path in all_checkpoints(folder):
        path.unlink(missing_ok=True)
