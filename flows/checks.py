"""Deterministic checks of a request before any work starts (no Prefect, no torch): the CLI runs them
before it starts a flow, so a bad date, path, column or model is one line at once; flows run them first.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from pipeline import objectstore
from pipeline.families import family_of
from pipeline.kinds import get_kind
from pipeline.layout import Layout
from pipeline.predictions import parse_ds


def check_score(kind: str, input_path: str | None, ds: str, model_uri: str | None, data_root: str | None):
    """-> (ds as YYYY-MM-DD, the pinned model); raises ValueError/LookupError naming the bad value."""
    spec = get_kind(kind)
    ds = parse_ds(ds)
    family_of(spec).check_scoring_input(spec, input_path)
    return ds, check_model(kind, model_uri or f"models:/{spec.model_name}@champion", data_root)


def user_tracking_uri() -> str | None:
    """$MLFLOW_TRACKING_URI when the user set it; not the SQLite default models.tracking put there."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if not env:
        return None
    from models import tracking

    return None if env == tracking.default_tracking_uri() else env


def check_model(kind: str, model_uri: str, data_root: str | None):
    """The registered version `model_uri` names, pinned (models:/<name>/<version>)."""
    layout = Layout.of(kind, data_root)
    if not model_uri.startswith("models:/"):
        raise ValueError(
            f"--model {model_uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>"
        )
    if not user_tracking_uri() and layout.remote:
        raise ValueError(objectstore.no_sqlite(layout.root))
    if not user_tracking_uri() and not layout.mlflow_db.exists():
        raise LookupError(
            f"model {model_uri!r} not found: no MLflow registry at {layout.mlflow_db} yet; "
            f"train one first: rnnflow train {kind} --data-root {layout.root}"
        )
    from models import tracking  # mlflow: imported only once the cheaper checks passed

    tracking.configure(layout.mlflow_db, layout.mlflow_artifacts)
    return tracking.resolve(model_uri)


def check_data_root(command: str, data_root: str | None) -> None:
    """An s3:// data root's bucket answers with these credentials (resolving the root reaches it), and
    a command that needs MLflow has a server to use (SQLite cannot live in a bucket); one line if not."""
    layout = Layout.of("names", data_root)
    if command in NEEDS_MLFLOW and layout.remote and not user_tracking_uri():
        raise ValueError(objectstore.no_sqlite(layout.root))


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
