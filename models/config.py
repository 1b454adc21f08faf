"""The settings tree: training, model and launch settings (features: pipeline/settings.py), each field's
default and help written once here; the CLI, the flows' parameters, deployments, settings files and
RNNFLOW_<SECTION>_<FIELD> variables all read these. Light: no torch here."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from pipeline.settings import Settings, overrides

DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("constant", "onecycle")


class TrainConfig(Settings):
    """Training: the loop, the optimiser and the champion rule's reference."""

    section: ClassVar[str] = "train"
    epochs: int = Field(8, ge=1, description="maximum epochs; early stopping may end sooner")
    batch_size: int = Field(64, ge=1, description="examples per optimiser step")
    lr: float = Field(3e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    grad_clip: float = Field(1.0, gt=0, description="clip the gradients' global norm to this")
    patience: int = Field(3, ge=1, description="epochs without a better validation metric before stopping")
    class_weighting: bool = Field(False, description="weight the loss by inverse training-class frequency")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when there is one")
    seed: int = Field(0, description="seed for initialisation, shuffling and dropout")
    amp: bool = Field(
        True, description="CUDA only: autocast to bf16 where supported, else fp16 with a grad scaler"
    )
    pin_memory: bool = Field(True, description="CUDA only: page-locked batches, copied without blocking")
    reference: bool = Field(
        True,
        description="train the obvious baseline beside the model (text: the TF-IDF reference; prices: "
        "persistence is always measured) and refuse champion to a model that loses to it; off: champion "
        "needs only to beat the incumbent",
    )
    schedule: Literal["constant", "onecycle"] = Field(
        "constant", description="learning rate: constant, or one-cycle up to lr and down over all epochs"
    )
    blend: bool = Field(
        True,
        description="text kinds: ship the RNN's probabilities averaged with its TF-IDF reference's (share "
        "picked on validation); off ships the RNN alone; needs reference",
    )
    promote_to: Literal["challenger", "champion"] = Field(
        "challenger",
        description="once a champion exists, a version that passes the reference gate becomes challenger "
        "(scored in the shadow; the monitor promotes or demotes it on labelled days), or champion at "
        "once when it also beats the incumbent on validation",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="torch threads per process (each DDP rank); unset: $RNNFLOW_THREADS, else the CPUs "
        "this process may use shared by $RNNFLOW_CONCURRENCY runs (1 on 2 CPUs or fewer)",
    )


TrainSettings = TrainConfig


class ModelSettings(Settings):
    """The recurrent model; unset fields take the family's defaults (MODEL_DEFAULTS) or the kind's."""

    section: ClassVar[str] = "model"
    model: Literal["rnn", "tfidf", "ngram"] | None = Field(
        None,
        description="text kinds: the recurrent model (rnn) or the TF-IDF logistic regression alone (tfidf; "
        "ngram is its former name)",
    )
    hidden_size: int | None = Field(None, ge=1, description="recurrent state size")
    embed_dim: int | None = Field(None, ge=1, description="text only: token embedding size")
    num_layers: int | None = Field(None, ge=1, description="stacked recurrent layers")
    bidirectional: bool | None = Field(None, description="text only: a backward direction as well")
    dropout: float | None = Field(None, ge=0, lt=1, description="dropout share")
    cell: Literal["gru", "lstm"] | None = Field(None, description="recurrent cell")
    pack: bool | None = Field(None, description="text only: packed sequences, not exact-length buckets")
    pooling: Literal["last", "meanmax"] | None = Field(
        None, description="text only: mean+max over the real steps, or the last real step"
    )
    members: int | None = Field(
        None,
        ge=1,
        description="text only: independently initialised RNNs trained side by side, their probabilities "
        "averaged (1 trains in about 40 percent of the time of 3)",
    )

    def options(self) -> dict:
        """The fields given, as the families' jobs take them (their model_options)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class MonitorSettings(Settings):
    """How the monitor judges realised performance and a challenger (rnnflow monitor, monitor-<kind>)."""

    section: ClassVar[str] = "monitor"
    window: int = Field(
        3, ge=1, description="labelled days both champion and challenger scored, before a decision"
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="significance of the paired test that decides")
    min_accuracy: float | None = Field(
        None,
        ge=0,
        le=1,
        description="text: a labelled day below this realised accuracy emits an event (none: off)",
    )
    max_rmse_ratio: float | None = Field(
        None,
        gt=0,
        description="prices: a labelled day whose RMSE over persistence's is above this emits an event",
    )


class LaunchSettings(Settings):
    """How a training runs: in this process, or torch DDP via torchrun on one or more nodes."""

    section: ClassVar[str] = "launch"
    nproc: int = Field(1, ge=1, description="processes on this node (1: train in-process)")
    nnodes: int = Field(1, ge=1, description="nodes in the training")
    node_rank: int = Field(0, ge=0, description="this node's rank, 0..nnodes-1")
    rdzv_endpoint: str | None = Field(None, description="HOST:PORT of node 0 (needed with nnodes > 1)")
    resume: bool = Field(False, description="continue from the last complete checkpoint")
    trigger: str | None = Field(
        None,
        description="what started the run, when not a person (an automation's event); kept in the run",
    )
    cooldown_hours: float = Field(
        24.0,
        ge=0,
        description="a run with a trigger is skipped when another triggered training of the kind started "
        "less than this many hours ago",
    )
    refresh_features: bool = Field(
        False,
        description="first rebuild the features (same settings) if bronze changed since they were built",
    )


# What differs from TrainConfig's defaults per model family: the text RNNs train longer, on a one-cycle
# schedule with weight decay (measured in issue 11: +3-11 points of test accuracy over constant lr).
FAMILY_DEFAULTS = {"text": {"epochs": 12, "schedule": "onecycle", "weight_decay": 0.05}, "prices": {}}


# The model each family trains unless told otherwise (num_layers: the kind's TextKind.rnn_layers, else 1;
# model: rnn). text trains three RNN members, averaged (bench/model_selection.py: the best of six
# configurations on average over five datasets, at about 2.4x the training time of one). The model
# configs' own defaults (models/*/rnn.py) are the packaged format's: what older versions load with.
MODEL_DEFAULTS = {
    "text": {"embed_dim": 128, "hidden_size": 128, "bidirectional": True, "dropout": 0.3, "cell": "gru"}
    | {"pack": False, "pooling": "meanmax", "members": 3},
    "prices": {"hidden_size": 64, "num_layers": 1, "dropout": 0.0, "cell": "lstm"},
}


# TrainConfig settings a family's training does not use (left out of its MLflow params).
FAMILY_UNUSED = {"prices": ("blend", "class_weighting")}

# The model options each family's model takes (ModelSettings' fields).
MODEL_OPTIONS = {
    "text": set(ModelSettings.model_fields),
    "prices": {"hidden_size", "num_layers", "dropout", "cell"},
}


def kind_model_defaults(kind) -> dict:
    """The model a kind trains unless told otherwise: its family's, with a text kind's own layers."""
    own = {"num_layers": kind.rnn_layers} if hasattr(kind, "rnn_layers") else {}
    return MODEL_DEFAULTS[kind.family] | own


def train_params(family: str, cfg: TrainConfig) -> dict:
    """The settings a family's training uses, as its MLflow params show them."""
    return {k: v for k, v in cfg.to_dict().items() if k not in FAMILY_UNUSED.get(family, ())}


def train_config(family: str, **given) -> TrainConfig:
    """The TrainConfig for a family: given values (None = not given) over the family's defaults."""
    values = FAMILY_DEFAULTS[family] | {k: v for k, v in given.items() if v is not None}
    return TrainConfig(**values)


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
    ModelSettings(**options)  # types and choices
    return options


# What the flows take as parameters: every field optional, no bounds (checked in one line by the run)
TrainOverrides = overrides(TrainConfig)
ModelOverrides = overrides(ModelSettings)
LaunchOverrides = overrides(LaunchSettings)
MonitorOverrides = overrides(MonitorSettings)
