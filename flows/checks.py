"""Deterministic checks of a request before any work starts (no Prefect, no torch): the CLI runs them
before it starts a flow, so a bad source, column, setting, date, missing features or model is one line
at once; flows run them first too, so a deployment run fails with that line as its state message.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from flows.target import Target
from models.config import LaunchSettings, MonitorSettings  # noqa: F401 (the CLI's checks use both)
from pipeline import objectstore, storage
from pipeline.ingest import check_sources
from pipeline.kinds import KINDS
from pipeline.layout import resolve_data_root
from pipeline.predictions import parse_ds
from pipeline.settings import FeatureSettings


def check_ingest(target: Target, sources: list[str], text_col: str | None, label_col: str | None) -> None:
    """The sources exist, their format, options and columns are right (read from their headers)."""
    check_sources(sources, target.spec, text_col, label_col)


def check_features(target: Target, features: dict):
    """-> the feature config (its settings checked); there is bronze to build from."""
    cfg = target.family.feature_config(target.spec, **FeatureSettings(**features).given())
    if not storage.bronze_batches(target.layout):
        fix = f"run `rnnflow ingest {target.kind} SOURCE...` first"
        raise FileNotFoundError(
            f"no bronze data for kind {target.kind!r} under {target.layout.bronze}; {fix}"
        )
    return cfg


def check_train(target: Target, train: dict, model: dict, launch: LaunchSettings):
    """-> the TrainConfig (settings and model options checked); the features (or, with refresh_features,
    bronze) and, with resume, a checkpoint are there; the DDP settings fit together."""
    from models.config import check_model_options, train_config  # torch-free

    cfg = train_config(target.spec.family, **train)
    check_model_options(target.spec.family, model)
    nnodes, rank, endpoint = launch.nnodes, launch.node_rank, launch.rdzv_endpoint
    if not 0 <= rank < nnodes:
        raise ValueError(f"--nnodes {nnodes}, --node-rank {rank}: need 0 <= node rank < nodes")
    if nnodes > 1 and (not endpoint or ":" not in endpoint):
        raise ValueError(
            f"--rdzv-endpoint {endpoint!r}: a training on several nodes needs HOST:PORT of node 0"
        )
    layout = target.layout
    if launch.resume and not any(layout.checkpoints.glob("epoch-*.pt")):
        raise FileNotFoundError(
            f"--resume: no checkpoint under {layout.checkpoints}; start the training without --resume"
        )
    if launch.refresh_features and not launch.resume and nnodes == 1:
        check_features(target, {})  # features are built first, from bronze
    else:
        storage.latest_features(layout)
    return cfg


def check_kinds(kinds: tuple[str, ...]) -> None:
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ValueError(
            f"--kinds {','.join(kinds)!r}: unknown kind(s) {unknown}; choose from {sorted(KINDS)}"
        )


def check_score(target: Target, input_path: str | None, ds: str, model_uri: str | None):
    """-> (ds as YYYY-MM-DD, the pinned model); raises ValueError/LookupError naming the bad value."""
    ds = parse_ds(ds)
    target.family.check_scoring_input(target.spec, input_path)
    return ds, check_model(target, model_uri or target.champion)


def user_tracking_uri() -> str | None:
    """$MLFLOW_TRACKING_URI when the user set it; not the SQLite default models.tracking put there."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if not env:
        return None
    from models import tracking

    return None if env == tracking.default_tracking_uri() else env


def check_model(target: Target, model_uri: str):
    """The registered version `model_uri` names, pinned (models:/<name>/<version>)."""
    layout = target.layout
    if not model_uri.startswith("models:/"):
        raise ValueError(
            f"--model {model_uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>"
        )
    if not user_tracking_uri() and layout.remote:
        raise ValueError(objectstore.no_sqlite(layout.root))
    if not user_tracking_uri() and not layout.mlflow_db.exists():
        raise LookupError(
            f"model {model_uri!r} not found: no MLflow registry at {layout.mlflow_db} yet; "
            f"train one first: rnnflow train {target.kind} --data-root {layout.root}"
        )
    from models import tracking  # mlflow: imported only once the cheaper checks passed

    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return tracking.resolve(model_uri)


def check_rollback(target: Target, to_version: int, reason: str) -> None:
    """The version exists, served before, and a reason is given; nothing is changed here."""
    from models import promotion, tracking

    tracking.configure(target.layout.mlflow_db, target.layout.mlflow_artifacts)
    promotion.check_rollback(target.layout, target.spec.model_name, to_version, reason)


def as_served(target: Target, ds: str) -> str:
    """models:/<name>/<version> of the champion that served `ds` (from the promotion history)."""
    from pipeline import history

    version = history.served_on(target.layout, parse_ds(ds))
    if version is None:
        raise LookupError(
            f"--as-served: no {target.kind} champion had served by {ds} (see `rnnflow history {target.kind}`)"
        )
    return f"models:/{target.spec.model_name}/{version}"


def check_data_root(command: str, data_root: str | None) -> None:
    """An s3:// data root's bucket answers with these credentials (resolving the root reaches it), and
    a command that needs MLflow has a server to use (SQLite cannot live in a bucket); one line if not."""
    root = resolve_data_root(data_root)
    if command in NEEDS_MLFLOW and objectstore.is_remote(root) and not user_tracking_uri():
        raise ValueError(objectstore.no_sqlite(root))


class ServerUnreachable(ConnectionError):
    """A Prefect or MLflow server the environment names does not answer."""


NEEDS_MLFLOW = {"train", "score", "evaluate", "demo", "repackage"}


def check_servers(command: str, timeout: float = 5.0) -> None:
    """The servers $PREFECT_API_URL and $MLFLOW_TRACKING_URI name answer their health check; unset, the
    embedded ones are used and there is nothing to check. One line naming the variable and the fix."""
    prefect = os.environ.get("PREFECT_API_URL")
    if prefect:
        _health(
            "Prefect", "PREFECT_API_URL", prefect, prefect.rstrip("/") + "/health", timeout, "make server"
        )
    mlflow = os.environ.get("MLFLOW_TRACKING_URI", "")
    if command in NEEDS_MLFLOW and mlflow.startswith(("http://", "https://")):
        _health(
            "MLflow", "MLFLOW_TRACKING_URI", mlflow, mlflow.rstrip("/") + "/health", timeout, "make stack"
        )


def _health(name: str, variable: str, url: str, health: str, timeout: float, start: str) -> None:
    try:
        with urllib.request.urlopen(health, timeout=timeout) as response:
            if response.status == 200:
                return
            why = f"its health check answered HTTP {response.status}"
    except urllib.error.HTTPError as err:
        why = f"its health check answered HTTP {err.code}"
    except (OSError, ValueError) as err:  # refused, timed out, no such host, not a URL
        why = str(getattr(err, "reason", None) or err)
    raise ServerUnreachable(
        f"the {name} server at ${variable}={url} does not answer ({why}); start it ({start}) "
        f"or unset {variable} to use the embedded one"
    )


def check_ray(given: str | None) -> str | None:
    """The Ray address to score on (--ray, else $RNNFLOW_RAY_ADDRESS; None: this process), checked to
    answer before any work: ValueError in one line naming where it came from and the fix."""
    from models import cluster  # ray itself is imported only to join a cluster

    value = cluster.address(given)
    if value is not None:
        cluster.check_address(value, "--ray" if given else cluster.ADDRESS_ENV)
    return value
