"""One training loop for every model: seeded, early-stopped on a validation metric the caller names."""

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
    patience: int = 3  # epochs without a better validation metric before stopping
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


@dataclass(frozen=True)
class Objective:
    """What picks the best epoch: `evaluate(model, batches, device)` -> metrics, one of them `metric`."""

    metric: str  # e.g. "val_accuracy" (classifiers) or "val_rmse" (prices)
    higher_is_better: bool
    evaluate: Callable[[torch.nn.Module, BucketBatches, torch.device], dict[str, float]]

    def better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best


@dataclass
class FitResult:
    metric: str
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None  # the objective's metric at best_epoch
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


def classification_objective() -> Objective:
    """Best epoch by validation accuracy (the names/reviews champion metric)."""

    def evaluate(model, batches, device) -> dict[str, float]:
        probs, y, loss = predict(model, batches, device)
        accuracy = float((probs.argmax(-1) == y).mean()) if len(y) else 0.0
        return {"val_loss": loss, "val_accuracy": accuracy}

    return Objective("val_accuracy", True, evaluate)


def fit(
    model: torch.nn.Module,
    train: BucketBatches,
    val: BucketBatches,
    cfg: TrainConfig,
    objective: Objective,
    on_epoch: Callable[[dict], None] | None = None,
    loss_kwargs: dict | None = None,
) -> FitResult:
    """Train; keep the state with the best validation metric (ties: the earlier epoch).

    The model's forward is `model(inputs, lengths, targets, **loss_kwargs) -> (outputs, loss)`.
    """
    device = resolve_device(cfg.device)
    model.to(device)
    loss_kwargs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in (loss_kwargs or {}).items()}
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result, seen, started = FitResult(objective.metric), 0, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0, loss_sum = time.perf_counter(), 0.0
        for inputs, lengths, y in train.epoch(epoch):
            inputs, lengths, y = inputs.to(device), lengths.to(device), y.to(device)
            _, loss = model(inputs, lengths, y, **loss_kwargs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
        seen += train.num_rows
        row = {"epoch": epoch, "train_loss": loss_sum / max(train.num_rows, 1)}
        row |= objective.evaluate(model, val, device)
        row["epoch_seconds"] = time.perf_counter() - t0
        result.history.append(row)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "epoch_seconds"))
        log.info("epoch %d/%d  %s | %.1fs", epoch, cfg.epochs, shown, row["epoch_seconds"])
        if on_epoch:
            on_epoch(row)
        if objective.better(row[objective.metric], result.best_value):
            result.best_epoch, result.best_value = epoch, row[objective.metric]
            result.best_state = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
        elif epoch - result.best_epoch >= cfg.patience:
            result.stopped_early = True
            log.info("early stop: no better %s for %d epochs", objective.metric, cfg.patience)
            break
    result.samples_per_s = seen / max(time.perf_counter() - started, 1e-9)
    if result.best_state is not None:
        model.load_state_dict(result.best_state)
    return result
