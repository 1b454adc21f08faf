"""Training figures as PNG files: loss and metric curves, a confusion matrix, forecast versus actual."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workers have no display
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np


def loss_curves(
    history: list[dict],
    path: Path,
    metric: str = "val_accuracy",
    model: str = "model",
    served: tuple[str, float] | None = None,
) -> Path:
    """Train/validation loss per epoch, and the validation metric that picks the best epoch (and its
    train counterpart when logged), of `model`; `served`: (what, value) of a served model that is not
    that one (a blend), drawn as a line so the plot shows the headline figure too."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"Loss of the {model}")
    train_metric = metric.replace("val_", "train_", 1)
    if all(train_metric in h for h in history):
        ax_acc.plot(epochs, [h[train_metric] for h in history], marker="o", label=f"{model}, train")
    ax_acc.plot(epochs, [h[metric] for h in history], marker="o", label=f"{model}, validation")
    if served is not None:
        ax_acc.axhline(served[1], color="green", linestyle="--", label=f"{served[0]}: {served[1]:.4f}")
    ax_acc.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def confusion_matrix(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> Path:
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = max(5.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                color = "white" if share[i, j] > 0.5 else "black"
                ax.text(j, i, matrix[i, j], ha="center", va="center", fontsize=6, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def forecast_vs_actual(ticker: str, dates, actual, forecast, persistence, path: Path) -> Path:
    """One ticker's test period: actual close, the model's forecast and the persistence forecast."""
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(dates, actual, label="actual close", color="black", linewidth=1.2)
    ax.plot(dates, forecast, label="model forecast", linewidth=1.0)
    ax.plot(dates, persistence, label="persistence (last close)", linewidth=0.8, linestyle="--")
    ax.set(xlabel="date", ylabel="close", title=f"{ticker}: next-day close, test period")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def drift_trend(frame, kind: str, path: Path) -> Path:
    """One panel per drift metric: the daily value, and its warn and alert thresholds."""
    metrics = sorted(set(frame["metric"].to_list()))
    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 2.0 * len(metrics)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], metrics, strict=True):
        part = frame.filter(frame["metric"] == name).sort("ds")
        days, values = part["ds"].to_list(), part["value"].to_list()
        ax.plot(days, values, marker="o", label=name)
        ax.axhline(part["warn"][0], color="orange", linestyle="--", linewidth=1, label="warn")
        ax.axhline(part["alert"][0], color="red", linestyle="--", linewidth=1, label="alert")
        ax.set_ylabel(name, fontsize=8)
        ax.legend(loc="upper left", fontsize=7)
    span = (max(frame["ds"]) - min(frame["ds"])).days + 1
    axes[-1, 0].xaxis.set_major_locator(mdates.DayLocator(interval=max(1, span // 12)))  # daily points
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    axes[0, 0].set_title(f"{kind}: drift against the training distributions, per scored day")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def realised_trend(frame, kind: str, path: Path) -> Path:
    """The realised headline metric per day, one line per model version (with persistence for prices)."""
    metric = "rmse" if "rmse" in frame.columns else "accuracy"
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for version in sorted(set(frame["model_version"].to_list())):
        part = frame.filter((frame["model_version"] == version) & frame[metric].is_not_null()).sort("ds")
        ax.plot(part["ds"].to_list(), part[metric].to_list(), marker="o", label=f"v{version}")
        if metric == "rmse":
            ax.plot(
                part["ds"].to_list(),
                part["persistence_rmse"].to_list(),
                "--",
                label=f"persistence (v{version} days)",
            )
    ax.set_ylabel(f"realised {metric}")
    ax.set_title(f"{kind}: realised {metric} per scored day, as labels arrive")
    ax.legend(loc="best", fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
