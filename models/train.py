"""Training loop for the sequence classifiers: seeded, early-stopped on validation accuracy."""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from models.batching import BucketBatches
from models.rnn_classifier import RNNClassifier

log = logging.getLogger("rnnflow.train")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    patience: int = 3  # epochs without a better validation accuracy before stopping
    class_weighting: bool = False  # weight the loss by inverse training-class frequency
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = -1.0
    best_state: dict | None = None
    stopped_early: bool = False
    samples_per_s: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device cuda was asked for, but torch {torch.__version__} sees no CUDA device; "
            "use --device auto or --device cpu"
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


@torch.inference_mode()
def predict(model: RNNClassifier, batches: BucketBatches, device: torch.device):
    """Probabilities (N, C), true labels (N,) and mean loss, in the batches' fixed order."""
    model.eval()
    probs, labels, loss_sum = [], [], 0.0
    for tokens, lengths, y in batches.epoch(0):
        logits, loss = model(tokens.to(device), lengths.to(device), y.to(device))
        probs.append(torch.softmax(logits.float(), dim=-1).cpu())
        labels.append(y)
        loss_sum += float(loss) * len(y)
    n = max(batches.num_rows, 1)
    if not probs:
        return np.zeros((0, model.config.num_classes)), np.zeros(0, dtype=np.int64), 0.0
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), loss_sum / n


def fit(
    model: RNNClassifier,
    train: BucketBatches,
    val: BucketBatches,
    cfg: TrainConfig,
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train; keep the state with the best validation accuracy (ties: earlier epoch)."""
    device = resolve_device(cfg.device)
    model.to(device)
    weights = None
    if cfg.class_weighting:
        weights = class_weights(train.labels(), model.config.num_classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result, seen, started = FitResult(), 0, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0, loss_sum, correct = time.perf_counter(), 0.0, 0
        for tokens, lengths, y in train.epoch(epoch):
            tokens, lengths, y = tokens.to(device), lengths.to(device), y.to(device)
            logits, loss = model(tokens, lengths, y, class_weights=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(-1) == y).sum())
        seen += train.num_rows
        probs, y_val, val_loss = predict(model, val, device)
        row = {
            "epoch": epoch,
            "train_loss": loss_sum / max(train.num_rows, 1),
            "train_accuracy": correct / max(train.num_rows, 1),
            "val_loss": val_loss,
            "val_accuracy": float((probs.argmax(-1) == y_val).mean()) if len(y_val) else 0.0,
            "epoch_seconds": time.perf_counter() - t0,
        }
        result.history.append(row)
        log.info(
            "epoch %d/%d  train loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1fs",
            epoch,
            cfg.epochs,
            row["train_loss"],
            row["train_accuracy"],
            row["val_loss"],
            row["val_accuracy"],
            row["epoch_seconds"],
        )
        if on_epoch:
            on_epoch(row)
        if row["val_accuracy"] > result.best_val_accuracy:
            result.best_epoch, result.best_val_accuracy = epoch, row["val_accuracy"]
            result.best_state = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
        elif epoch - result.best_epoch >= cfg.patience:
            result.stopped_early = True
            log.info("early stop: no better validation accuracy for %d epochs", cfg.patience)
            break
    result.samples_per_s = seen / max(time.perf_counter() - started, 1e-9)
    if result.best_state is not None:
        model.load_state_dict(result.best_state)
    return result
