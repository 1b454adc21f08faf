"""MLflow plumbing: embedded defaults under the data root, experiments, registry and the champion rule."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models import upkeep
from pipeline import objectstore

CHAMPION = "champion"
CHALLENGER = "challenger"  # passed the gate, scored in the shadow until the monitor decides
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # a logged model's registered versions, as the UI reads them
EXACT_TAG = "champion_value"  # a version's champion metric, exact (the metric's own tag is rounded)
# Registry answers that mean "no such model, version or alias" (anything else may be an outage).
NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


# rnnflow's MLflow settings, where the user set none (mlflow_defaults): no telemetry calls (offline
# machines), no INFO chatter, and no pickles: rnnflow loads models with models.packaging.load, and any
# other load through MLflow refuses pickles too.
MLFLOW_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_LOGGING_LEVEL": "ERROR",
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
}
_DEFAULTS_APPLIED = False


def mlflow_defaults() -> None:
    """Install MLFLOW_DEFAULTS where unset (once per process; children inherit them), and apply the two
    that mlflow reads at its import, telemetry and the log level, to the mlflow imported already."""
    global _DEFAULTS_APPLIED
    if _DEFAULTS_APPLIED:
        return
    _DEFAULTS_APPLIED = True
    for name, value in MLFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)
    from mlflow.telemetry import set_telemetry_client
    from mlflow.telemetry.utils import is_telemetry_disabled

    if is_telemetry_disabled():
        set_telemetry_client()  # drops the client mlflow's import made (it sends nothing before a record)
    level = os.environ["MLFLOW_LOGGING_LEVEL"].upper()
    logging.getLogger("mlflow").setLevel(level)  # as mlflow's import sets it from MLFLOW_LOGGING_LEVEL
    if level in ("WARNING", "ERROR", "CRITICAL"):  # the migrations' loggers: WARNING at least
        for name in ("alembic", "huey"):
            logging.getLogger(name).setLevel(level)


# What we installed last; mlflow copies both into os.environ, where they would pass for user settings.
_DEFAULT_SET: str | None = None
_REGISTRY_SET: str | None = None


def configure(mlflow_db: Path, artifacts: Path) -> str:
    """Use $MLFLOW_TRACKING_URI when the user set it, else SQLite + a local artifact folder in the data root.

    mlflow.set_tracking_uri() writes MLFLOW_TRACKING_URI into os.environ, so a value equal to the
    default we installed earlier is ours, not the user's: another data root must get its own store.
    """
    global _DEFAULT_SET, _REGISTRY_SET
    mlflow_defaults()
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and env != _DEFAULT_SET:
        uri = env
    elif not isinstance(mlflow_db, Path):  # an s3:// data root: SQLite needs a local disk
        raise ValueError(objectstore.no_sqlite(mlflow_db.parent))
    else:
        mlflow_db.parent.mkdir(parents=True, exist_ok=True)
        upkeep.relocate(mlflow_db, artifacts)
        uri = _DEFAULT_SET = f"sqlite:///{mlflow_db}"
    mlflow.set_tracking_uri(uri)
    registry = os.environ.get("MLFLOW_REGISTRY_URI")
    if not registry or registry == _REGISTRY_SET:
        registry = _REGISTRY_SET = uri
    mlflow.set_registry_uri(registry)
    if uri not in _SWEPT:  # once per store and process
        _SWEPT.add(uri)
        upkeep.close_crashed_runs()
    return uri


_SWEPT: set[str] = set()


def default_tracking_uri() -> str | None:
    """The SQLite default configure() last installed (mlflow copies it into os.environ)."""
    return _DEFAULT_SET


def default_registry_uri() -> str | None:
    """The registry URI configure() last installed (the tracking store's, unless the user set one)."""
    return _REGISTRY_SET


def experiment_id(name: str, artifacts: Path) -> str:
    """Get or create; new experiments keep artifacts under the data root (local or s3://) unless a
    server decides (MLflow writes s3:// artifacts with boto3, which reads the same AWS_* settings)."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None  # a server decides
    if not _is_remote(mlflow.get_tracking_uri()):  # beside the data: <root>/mlartifacts, or in its bucket
        where = artifacts / name
        location = where.as_uri() if isinstance(where, Path) else str(where)
    return mlflow.create_experiment(name, artifact_location=location)


def _is_remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "databricks"))


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def feature_tags(kind: str, manifest: dict) -> dict[str, str]:
    """Tags a user can filter runs and versions on: kind, data and features identity, code commit."""
    from pipeline.storage import manifest_sha256

    return {
        "kind": kind,
        "dataset_fingerprint": manifest["dataset_fingerprint"],
        "features_manifest_sha256": manifest_sha256(manifest),
        "features_version": manifest["version"],
        "git_commit": git_commit(),
    }


def register(
    model_name: str,
    model_uri: str,
    run_id: str,
    model_id: str | None,
    tags: dict,
    description: str | None = None,
    version_description: str | None = None,
) -> int:
    """Create the registered model if new, then a version; quiet (the fluent API prints to stderr).

    `description` (what the model is, its data, features, metrics, how to score it) is what the MLflow
    UI shows on the model's page; it is refreshed on every registration.
    """
    client = MlflowClient()
    try:
        client.create_registered_model(model_name, description=description)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        if description:
            client.update_registered_model(model_name, description=description)
    if "kind" in tags:  # what the registry list can filter on
        client.set_registered_model_tag(model_name, "kind", tags["kind"])
    version = client.create_model_version(
        model_name,
        source=model_uri,
        run_id=run_id,
        model_id=model_id,
        tags=tags,
        description=version_description,
    )
    if model_id:  # the logged model's page lists the versions made of it (mlflow.register_model does so)
        link = client.get_logged_model(model_id).tags.get(MODEL_VERSIONS_TAG)
        versions = [*json.loads(link or "[]"), {"name": model_name, "version": version.version}]
        client.set_logged_model_tags(model_id, {MODEL_VERSIONS_TAG: json.dumps(versions)})
    return int(version.version)


class Reference(NamedTuple):
    """The obvious baseline a candidate is held to, on the same metric and split."""

    name: str
    value: float
    strict: bool = False  # True: a tie is a loss (a blend holding the reference must add to it)
    verdict: bool | None = None  # decided by the caller (e.g. a test that the difference is not noise)
    note: str = ""  # how it was decided, for the decision's text


@dataclass
class ChampionDecision:
    promoted: bool
    version: int
    previous_version: int | None
    metric: str
    value: float
    previous_value: float | None
    note: str = ""
    reference: Reference | None = None
    beats_reference: bool = True
    challenger: bool = False  # passed the gate, a champion exists: challenger, the monitor decides

    @property
    def message(self) -> str:
        head = f"v{self.version} {self.metric}={self.value:.4f}"
        if self.reference is not None:
            name, value, strict, decided, how = self.reference
            lost = "LOSES TO" if decided is None else "does not beat"  # decided: a test, not the values alone
            verb = ("beats" if strict else "holds its own against") if self.beats_reference else lost
            head += f" {verb} {name} ({value:.4f}{'; ' + how if how else ''})"
        if not self.beats_reference:
            if self.previous_version is None:
                return f"{head}: registered, NOT champion (there is no champion yet)"
            return f"{head}: registered, not champion; champion stays v{self.previous_version}"
        if self.previous_version is None:
            return f"{head}; first champion"
        if self.challenger:
            against = "" if self.previous_value is None else f" (its val {self.previous_value:.4f})"
            return (
                f"{head}; challenger to champion v{self.previous_version}{against}{self.note}: scored in the "
                "shadow, the monitor promotes or demotes it on labelled days"
            )
        if self.previous_value is None:  # the champion could not be re-scored
            return f"{head}; champion v{self.previous_version} could not be scored, champion moved"
        verb = "beats" if self.promoted else "does not beat"
        tail = ("; champion moved" if self.promoted else "; champion stays") + self.note
        return f"{head}; {verb} champion v{self.previous_version} ({self.previous_value:.4f}){tail}"


def promote_if_better(
    model_name: str,
    version: int,
    metric: str,
    value: float,
    features_version: str,
    rescore: Callable[[int], float | None],
    higher_is_better: bool = True,
    reference: tuple | None = None,
    move: Callable[[int, str, dict, str], None] | None = None,
    challenger_first: bool = False,
) -> ChampionDecision:
    """Move `champion` to `version` only if it strictly beats the current champion on the same data
    and, when given, the run's reference (the obvious baseline) on the same metric and split.
    challenger_first: once a champion exists, a version that passes the reference gate gets the
    `challenger` alias instead (the monitor compares them on labelled days). move(version, reason,
    evidence, alias) makes the move (models/promotion.py: recorded in the history); None: the alias alone.

    A champion trained on other features was validated on another split, so its stored metric is not
    comparable: `rescore(champion_version)` measures it on this training's validation split instead.
    """
    client = MlflowClient()
    previous = champion_version(model_name)
    previous_value, note = None, ""
    if previous is not None:
        champion = client.get_model_version(model_name, str(previous))
        if champion.tags.get("features_version") == features_version:
            # the version's own value (a run may register two versions: its model and its reference)
            exact = champion.tags.get(EXACT_TAG)
            previous_value = (
                float(exact) if exact else client.get_run(champion.run_id).data.metrics.get(metric)
            )
        else:
            previous_value = rescore(previous)
            note = f" (champion re-scored on features {features_version})"

    def beats(a: float, b: float) -> bool:
        return a > b if higher_is_better else a < b

    # The reference must not win: a tie with the obvious baseline is not a loss to it, unless the
    # model contains the reference (a blend), which must then add something to it.
    reference = Reference(*reference) if reference is not None else None
    if reference is None:
        beats_reference = True
    elif reference.verdict is not None:
        beats_reference = reference.verdict
    elif reference.strict:
        beats_reference = beats(value, reference.value)
    else:
        beats_reference = not beats(reference.value, value)
    challenger = challenger_first and previous is not None and beats_reference
    better = beats_reference and (previous_value is None or beats(value, previous_value)) and not challenger
    decision = ChampionDecision(
        better, version, previous, metric, value, previous_value, note, reference, beats_reference, challenger
    )
    alias = CHALLENGER if challenger else CHAMPION
    if (better or challenger) and move is not None:
        evidence = {"metric": metric, "value": value, "champion": previous, "champion_value": previous_value}
        if reference is not None:
            evidence |= {"reference": reference.name, "reference_value": reference.value}
        move(version, decision.message, evidence, alias)
    elif better or challenger:
        client.set_registered_model_alias(model_name, alias, str(version))
    client.set_model_version_tag(model_name, str(version), "champion_decision", decision.message)
    return decision


@dataclass
class RegisteredRun:
    """What every training job reports: its MLflow run, the registered version, the champion decision."""

    kind: str
    model_name: str
    version: int
    run_id: str
    experiment_id: str
    tracking_uri: str
    promoted: bool
    champion_version: int | None
    champion_decision: str
    beats_reference: bool
    reference_version: int | None  # the reference registered in its own right (it beat the served model)
    challenger_version: int | None  # the version that became challenger (None: none did)

    def as_dict(self) -> dict:
        return asdict(self)


def register_and_promote(
    model_name: str,
    model_info,
    run_id: str,
    tags: dict,
    metric: str,
    value: float,
    features_version: str,
    rescore: Callable[[int], float | None],
    higher_is_better: bool = True,
    descriptions: tuple[str, str] | None = None,
    reference: tuple | None = None,
    move: Callable[[int, str, dict, str], None] | None = None,
    challenger_first: bool = False,
) -> dict:
    """Register the logged model, apply the champion rule, tag the active run; -> report fields.

    descriptions: (the registered model's, this version's), shown in the MLflow UI.
    """
    model_text, version_text = descriptions or (None, None)
    version = register(
        model_name,
        model_info.model_uri,
        run_id,
        model_info.model_id,
        {**tags, metric: f"{value:.6f}", EXACT_TAG: repr(float(value))},  # the rule reads the exact one
        model_text,
        version_text,
    )
    decision = promote_if_better(
        model_name,
        version,
        metric,
        value,
        features_version,
        rescore,
        higher_is_better,
        reference,
        move,
        challenger_first,
    )
    mlflow.set_tags({"registered_version": version, "champion_decision": decision.message})
    return {
        "version": version,
        "promoted": decision.promoted,
        "champion_version": version if decision.promoted else decision.previous_version,
        "champion_decision": decision.message,
        "beats_reference": decision.beats_reference,
        "challenger_version": version if decision.challenger else None,
    }


def champion_version(model_name: str) -> int | None:
    try:
        return int(MlflowClient().get_model_version_by_alias(model_name, CHAMPION).version)
    except MlflowException:
        return None


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: int
    run_id: str
    uri: str  # pinned to the version, so a moving alias cannot change it mid-run
    requested: str = ""  # what was asked for, e.g. models:/names-nationality@champion
    experiment_id: str = ""  # the training run's
    tracking_uri: str = ""


def resolve(uri: str) -> ResolvedModel:
    """`models:/<name>@<alias>` or `models:/<name>/<version>` -> a pinned version, clear errors."""
    if not uri.startswith("models:/"):
        raise ValueError(f"--model {uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>")
    body = uri.removeprefix("models:/")
    client = MlflowClient()
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif "/" in body:
            name, version = body.rsplit("/", 1)
            mv = client.get_model_version(name, version)
        else:
            raise ValueError(f"--model {uri!r}: name a version (/3) or an alias (@champion)")
    except MlflowException as err:
        if err.error_code not in NOT_FOUND:  # a server that is down or busy: transient, let it raise
            raise
        raise LookupError(
            f"model {uri!r} not found in the registry at {mlflow.get_registry_uri()}: {err.message}. "
            "Train one first (`rnnflow train ...`) or pass --model models:/<name>/<version>"
        ) from None
    experiment = client.get_run(mv.run_id).info.experiment_id if mv.run_id else ""
    pinned = f"models:/{mv.name}/{mv.version}"
    return ResolvedModel(
        mv.name, int(mv.version), mv.run_id, pinned, uri, experiment, mlflow.get_tracking_uri()
    )
