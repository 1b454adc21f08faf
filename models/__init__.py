"""Recurrent models for rnnflow: modules, training loop, metrics and MLflow packaging.

Imports pipeline, never flows or prefect. One sub-package per family (text/, prices/) beside the shared
machinery; shared modules never import a family (jobs.py looks it up) and families never import each
other (tests/test_layout.py).
"""

import os

# Set before mlflow is first imported: no telemetry calls (offline machines), no INFO chatter.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
