"""Batch scoring with a registered pyfunc: resolve the URI to a pinned version, then load it."""

from __future__ import annotations

import logging

import mlflow

from models import tracking

log = logging.getLogger("rnnflow.score")


def load(uri: str):
    """-> (ResolvedModel, pyfunc model); the alias is resolved once, so every row gets one version."""
    resolved = tracking.resolve(uri)
    model = mlflow.pyfunc.load_model(resolved.uri)
    log.info("loaded %s (from %s), run %s", resolved.uri, uri, resolved.run_id)
    return resolved, model
