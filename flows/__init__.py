"""Prefect 3 flows and thin tasks over pipeline/ and models/, plus the `rnnflow` CLI."""

import logging
import os

# Offline-safe Prefect (and MLflow) defaults, and our library loggers in Prefect's logs: the CLI applies
# them before prefect is imported; the Makefile exports them for servers, workers and deploy.py.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "rnnflow",
    # pipeline/models functions called outside a flow (plain Python use) log locally without a warning
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "MLFLOW_DISABLE_TELEMETRY": "true",  # before mlflow's import creates its telemetry client
}


def prefect_defaults() -> None:
    """Set PREFECT_DEFAULTS where the environment does not: called by entry points, never on import."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)


def route_library_logs() -> None:
    """Give the `rnnflow` loggers Prefect's API handler, so their lines land in the run's Prefect log,
    at $RNNFLOW_LOG_LEVEL (INFO; Prefect leaves extra loggers at the root's WARNING).

    PREFECT_LOGGING_EXTRA_LOGGERS only counts when it is set before prefect sets up logging; a worker's
    flow-run process imports prefect first, so the handler is attached here as well.
    """
    extra, ours = logging.getLogger("prefect.extra"), logging.getLogger("rnnflow")
    ours.setLevel(os.environ.get("RNNFLOW_LOG_LEVEL", "INFO"))
    for handler in extra.handlers:
        if handler not in ours.handlers:
            ours.addHandler(handler)
