"""Batch scoring with a registered pyfunc: resolve the URI to a pinned version, then load it (with
models.packaging.load: nothing stored is executed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import mlflow

from models import packaging, threads, tracking

log = logging.getLogger("rnnflow.score")


# Loaded versions, by (registry, version, run): a version never changes, so a backfill or a worker that
# scores many days loads each one once. A few entries at most: the champion, and a pinned version or two.
_LOADED: dict[tuple[str, str, str], object] = {}
KEEP_LOADED = 4


def load(uri: str):
    """-> (ResolvedModel, pyfunc model); the alias is resolved once, so every row gets one version."""
    threads.apply()  # --threads / $RNNFLOW_THREADS, else the CPUs shared by the worker's runs
    resolved = tracking.resolve(uri)
    key = (mlflow.get_registry_uri(), resolved.uri, resolved.run_id)
    model = _LOADED.get(key)
    if model is None:
        model = packaging.load(resolved.uri)  # the installed code + the version's data files
        while len(_LOADED) >= KEEP_LOADED:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = model
        log.info("loaded %s (from %s), run %s", resolved.uri, uri, resolved.run_id)
    return resolved, model


def load_version(tracking_uri: str, registry_uri: str, uri: str, family: str):
    """The pyfunc of a pinned version (models:/<name>/<version>), in a process of its own (a Ray actor):
    the driver's tracking and registry stores, the family's code imported first."""
    from models import jobs

    tracking.mlflow_defaults()  # as tracking.configure() installs them in the driver
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    jobs.scorer_of(family)  # the family's code, which the loader builds the model from
    return load(uri)[1]


def drift_reference(model) -> dict | None:
    """The training-time distributions packaged with a version (None: packaged before drift reports)."""
    return getattr(model.unwrap_python_model(), "drift_reference", None)


NO_REFERENCE = "the model carries no drift reference (packaged before drift reports); retrain it"


@dataclass(frozen=True)
class Scorer:
    """How a family scores a day; registered once per family (models/registry.py)."""

    read: Callable  # (kind, input_path, layout) -> (inputs, input rows rejected by the rules)
    # (model, inputs, kind, ds, resolved, sink=None) -> (partition rows with lineage, counts); with a
    # sink the rows go to sink(frame) chunk by chunk and the frame returned is a sample of them
    score: Callable
    input_label: Callable  # input_path -> what the run says it read
    evaluate: Callable | None = None  # (kind, layout, labelled file, model_uri) -> report; None: not yet
    drift: Callable | None = None  # (model, inputs, partition rows, kind, ds, limits) -> drift report
    shardable: bool = False  # score(..., shards=) spreads a day over a Ray cluster (models/cluster.py)
