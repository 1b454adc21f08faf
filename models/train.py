"""One training loop for every model: seeded, early-stopped on a validation metric the caller names."""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models import checkpoint
from models.batching import BucketBatches, RankBatches
from models.config import FAMILY_DEFAULTS, TrainConfig, train_config  # noqa: F401 (re-exported)
from models.distributed import DistInfo, barrier, gather_across, sum_across

log = logging.getLogger("rnnflow.train")


@dataclass(frozen=True)
class Objective:
    """What picks the best epoch: `evaluate(model, batches, device)` -> metrics, one of them `metric`."""

    metric: str  # e.g. "val_accuracy" (classifiers) or "val_rmse" (prices)
    higher_is_better: bool
    evaluate: Callable[[torch.nn.Module, BucketBatches, torch.device], dict[str, float]]
    # a training batch's (outputs, targets) -> rows right, for train_accuracy per epoch (None: no such metric)
    train_correct: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

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
    samples_per_s: float = 0.0  # all ranks together
    samples_per_s_per_rank: list[float] = field(default_factory=list)
    resumed_from_epoch: int | None = None


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto: CUDA if present; under DDP each process takes the GPU of its local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"--device cuda was asked for, but torch {torch.__version__} sees no CUDA device; "
            "use --device auto or --device cpu"
        )
    return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


@torch.inference_mode()
def predict(model: torch.nn.Module, batches: BucketBatches, device: torch.device):
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

    return Objective("val_accuracy", True, evaluate, lambda logits, y: (logits.argmax(-1) == y).sum())


def fit(
    model: torch.nn.Module,
    train: BucketBatches,
    val: BucketBatches,
    cfg: TrainConfig,
    objective: Objective,
    on_epoch: Callable[[dict], None] | None = None,
    loss_kwargs: dict | None = None,
    dist: DistInfo | None = None,
    checkpoints: Path | None = None,
    resume: bool = False,
    extra_state: dict | None = None,
) -> FitResult:
    """Train; keep the state with the best validation metric (ties: the earlier epoch).

    The model's forward is `model(inputs, lengths, targets, **loss_kwargs) -> (outputs, loss)`.
    Under DDP (dist.world_size > 1) each rank trains on its RankBatches share and the gradients are
    averaged; every rank evaluates the full validation split, so all reach the same early-stop decision;
    only rank 0 calls on_epoch and writes checkpoints. With `checkpoints`, each epoch is saved there,
    and `resume` continues from the newest one (extra_state is saved with it and returned in history).
    """
    dist = dist or DistInfo()
    device = resolve_device(cfg.device, dist.local_rank)
    model.to(device)
    net = _wrap(model, dist, device)
    batches = RankBatches(train, dist.rank, dist.world_size) if dist.active else train
    loss_kwargs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in (loss_kwargs or {}).items()}
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = None
    if cfg.schedule == "onecycle":  # stepped per batch; every rank takes the same number of steps
        steps = max(len(batches), 1) * cfg.epochs
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    amp = Amp(cfg, device)
    result, first = FitResult(objective.metric), 1
    if resume:
        first = _restore(checkpoints, model, opt, amp, result, sched)
    seen, busy = 0, 0.0
    for epoch in range(first, cfg.epochs + 1):
        _call_hooks("epoch_start", batches=batches, dist=dist, epoch=epoch)
        net.train()
        t0, loss_sum, rows, correct = time.perf_counter(), 0.0, 0, 0.0
        for inputs, lengths, y in batches.epoch(epoch):
            inputs, lengths, y = (_to(t, device, cfg.pin_memory) for t in (inputs, lengths, y))
            with amp.autocast():
                outputs, loss = net(inputs, lengths, y, **loss_kwargs)
            if objective.train_correct is not None:
                correct += float(objective.train_correct(outputs.detach(), y))
            opt.zero_grad(set_to_none=True)
            amp.backward_and_step(loss, opt, model.parameters(), cfg.grad_clip)
            if sched is not None:
                sched.step()
            loss_sum += float(loss.detach()) * len(y)
            rows += len(y)
        train_seconds = time.perf_counter() - t0
        loss_sum, all_rows, correct = sum_across([loss_sum, rows, correct], dist)
        seen, busy = seen + all_rows, busy + train_seconds
        rank_rates = gather_across(rows / max(train_seconds, 1e-9), dist)
        row = {"epoch": epoch, "train_loss": loss_sum / max(all_rows, 1)}
        if objective.train_correct is not None:  # as the weights moved during the epoch, with dropout
            row["train_accuracy"] = correct / max(all_rows, 1)
        row |= objective.evaluate(model, val, device)
        row["epoch_seconds"] = time.perf_counter() - t0
        row["train_samples_per_s"] = all_rows / max(train_seconds, 1e-9)
        result.history.append(row)
        result.samples_per_s_per_rank = rank_rates
        shown = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "epoch_seconds"))
        log.info("epoch %d/%d  %s | %.1fs", epoch, cfg.epochs, shown, row["epoch_seconds"])
        if on_epoch and dist.is_main:
            on_epoch(row)
        improved = objective.better(row[objective.metric], result.best_value)
        if improved:
            result.best_epoch, result.best_value = epoch, row[objective.metric]
            result.best_state = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
        result.stopped_early = not improved and epoch - result.best_epoch >= cfg.patience
        if checkpoints is not None and dist.is_main:
            _save(checkpoints, epoch, model, opt, amp, result, extra_state, sched)
        barrier(dist)
        _call_hooks("epoch_end", batches=batches, dist=dist, epoch=epoch)
        if result.stopped_early:
            log.info("early stop: no better %s for %d epochs", objective.metric, cfg.patience)
            break
    result.samples_per_s = seen / max(busy, 1e-9)
    if result.best_state is not None:
        model.load_state_dict(result.best_state)
    return result


def _wrap(model: torch.nn.Module, dist: DistInfo, device: torch.device) -> torch.nn.Module:
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _to(t: torch.Tensor, device: torch.device, pin: bool) -> torch.Tensor:
    if device.type == "cuda" and pin:
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class Amp:
    """Mixed precision on CUDA (bf16 where supported, else fp16 + GradScaler); plain fp32 elsewhere."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.enabled = cfg.amp and device.type == "cuda"
        bf16 = self.enabled and torch.cuda.is_bf16_supported()
        self.dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled and not bf16)

    def autocast(self):
        return torch.autocast("cuda", dtype=self.dtype, enabled=self.enabled)

    def backward_and_step(self, loss, opt, params, grad_clip: float) -> None:
        self.scaler.scale(loss).backward()
        if grad_clip:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        self.scaler.step(opt)
        self.scaler.update()


def _save(folder, epoch, model, opt, amp, result: FitResult, extra_state, sched=None) -> None:
    state = {
        "epoch": epoch,  # the sampler's plan is a function of (seed, epoch): the next epoch is epoch + 1
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,  # None: constant learning rate
        "grad_scaler": amp.scaler.state_dict(),
        "rng": checkpoint.rng_state(),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_value": result.best_value,
        "best_state": result.best_state,
        "stopped_early": result.stopped_early,
        "extra": extra_state or {},
    }
    checkpoint.save(state, folder, epoch)


def _restore(folder, model, opt, amp, result: FitResult, sched=None) -> int:
    path = checkpoint.latest(folder) if folder is not None else None
    if path is None:
        raise FileNotFoundError(
            f"--resume: no checkpoint under {folder}; start the training without --resume"
        )
    state = checkpoint.load(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if sched is not None and state.get("scheduler"):
        sched.load_state_dict(state["scheduler"])
    if state["grad_scaler"] and amp.scaler.is_enabled():  # empty when saved without fp16 scaling
        amp.scaler.load_state_dict(state["grad_scaler"])
    checkpoint.set_rng_state(state["rng"])
    result.history = list(state["history"])
    result.best_epoch, result.best_value = state["best_epoch"], state["best_value"]
    result.best_state = state["best_state"]
    result.resumed_from_epoch = state["epoch"]
    result.stopped_early = bool(state.get("stopped_early"))
    log.info("resumed from %s (epoch %d done)", path, state["epoch"])
    return state["epoch"] + 1 if not result.stopped_early else 10**9  # an early stop stays stopped


# Callbacks the trainer calls around every epoch: hook(event, batches=..., dist=..., epoch=...), event
# "epoch_start" (before training it) or "epoch_end" (after its checkpoint and barrier). Tests install
# theirs here (tests/ddp_hooks.py: batch tracing, killing a rank); production installs none.
EPOCH_HOOKS: list[Callable[..., None]] = []


def _call_hooks(event: str, **context) -> None:
    for hook in EPOCH_HOOKS:
        hook(event, **context)
