"""Recurrent models for rnnflow: modules, training loop, metrics and MLflow packaging.

Never imports prefect.
"""

import os

# Set before mlflow is first imported: no telemetry calls (offline machines), no INFO chatter.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
