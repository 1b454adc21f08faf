"""Training settings: TrainConfig and each model family's departures from it, the one source of the
defaults that the CLI, the flows and the deployments show and use. Light: no torch here."""

from __future__ import annotations

from dataclasses import asdict, dataclass

DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("constant", "onecycle")


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
    amp: bool = True  # CUDA only: autocast to bf16 where supported, else fp16 with a grad scaler
    pin_memory: bool = True  # CUDA only: page-locked batches, copied without blocking
    # Train the obvious baseline beside the model (text: the TF-IDF reference; prices: persistence is
    # always measured) and refuse `champion` to a model that loses to it on validation. False: the
    # champion rule compares with the incumbent only (a deliberate opt-out, recorded in the run).
    reference: bool = True
    schedule: str = "constant"  # "onecycle": warm up to lr, then anneal, over all epochs' steps
    # Text kinds: the packaged model averages the RNN's probabilities with its TF-IDF reference's, the
    # reference's share (0.2-0.8) picked on validation; False ships the RNN alone. Needs `reference`.
    blend: bool = True
    # torch intra-op threads per process (each DDP rank); None: models/threads.py's default, the CPUs
    # this process may use shared by the processes running at once (1 on a machine of 2 CPUs or fewer)
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} (--{name.replace('_', '-')}) must be >= 1, got {getattr(self, name)}"
                )
        if self.lr <= 0:
            raise ValueError(f"lr (--lr) must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay (--weight-decay) must be >= 0, got {self.weight_decay}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or None for the default), got {self.threads}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# What differs from TrainConfig's defaults per model family: the text RNNs train longer, on a one-cycle
# schedule with weight decay (measured in issue 11: +3-11 points of test accuracy over constant lr).
FAMILY_DEFAULTS = {"text": {"epochs": 12, "schedule": "onecycle", "weight_decay": 0.05}, "prices": {}}


# Model options a family's training uses unless given, over its model config's own defaults (which older
# packaged versions load with): text trains three RNN members, averaged (bench/model_selection.py: the
# best of six configurations on average over five datasets, at about 2.4x the training time of one).
MODEL_DEFAULTS = {"text": {"members": 3}, "prices": {}}


# TrainConfig settings a family's training does not use (left out of its MLflow params).
FAMILY_UNUSED = {"prices": ("blend", "class_weighting")}


def train_params(family: str, cfg: TrainConfig) -> dict:
    """The settings a family's training uses, as its MLflow params show them."""
    return {k: v for k, v in cfg.to_dict().items() if k not in FAMILY_UNUSED.get(family, ())}


def train_config(family: str, **given) -> TrainConfig:
    """The TrainConfig for a family: given values (None = not given) over the family's defaults."""
    values = FAMILY_DEFAULTS[family] | {k: v for k, v in given.items() if v is not None}
    return TrainConfig(**values)


# The model options each family's model takes (the CLI's --hidden-size etc., a deployment's model_options).
MODEL_OPTIONS = {
    "text": {"hidden_size", "embed_dim", "num_layers", "bidirectional", "dropout", "cell", "pack", "pooling"}
    | {"members", "model"},
    "prices": {"hidden_size", "num_layers", "dropout", "cell"},
}


def check_model_options(family: str, options: dict) -> dict:
    """ValueError naming the option (as its CLI flag) a family's model does not take or cannot use."""
    flag = {name: "--" + name.replace("_", "-") for name in options}
    wrong = sorted(set(options) - MODEL_OPTIONS.get(family, set(options)))
    if wrong:
        takes = ", ".join("--" + n.replace("_", "-") for n in sorted(MODEL_OPTIONS[family] - {"model"}))
        flags = ", ".join(flag[w] for w in wrong)
        raise ValueError(f"{family}: {flags} do(es) not apply to the {family} model; it takes {takes}")
    for name in ("hidden_size", "embed_dim", "num_layers", "members"):
        if name in options and options[name] < 1:
            raise ValueError(f"{flag[name]} {options[name]}: give 1 or more")
    if "dropout" in options and not 0.0 <= options["dropout"] < 1.0:
        raise ValueError(f"--dropout {options['dropout']}: give a share in [0, 1)")
    return options
