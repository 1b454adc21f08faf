"""Prefect 3 flows and thin tasks over pipeline/ and models/, plus the `rnnflow` CLI."""

import os

# Before prefect is imported anywhere: offline-safe defaults, and our library loggers in Prefect's logs.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "rnnflow")
# pipeline/models functions called outside a flow (plain Python use) log locally without a warning.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import logging

# Prefect attaches its handlers to the extra loggers but leaves their level at the root's WARNING.
logging.getLogger("rnnflow").setLevel(os.environ.get("RNNFLOW_LOG_LEVEL", "INFO"))


def route_library_logs() -> None:
    """Give the `rnnflow` loggers Prefect's API handler, so their lines land in the run's Prefect log.

    PREFECT_LOGGING_EXTRA_LOGGERS above only counts when it is set before prefect sets up logging; a
    worker's flow-run process imports prefect first, so the handler is attached here as well.
    """
    extra, ours = logging.getLogger("prefect.extra"), logging.getLogger("rnnflow")
    for handler in extra.handlers:
        if handler not in ours.handlers:
            ours.addHandler(handler)
