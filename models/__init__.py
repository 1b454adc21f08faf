"""Recurrent models for rnnflow: modules, training loop, metrics and MLflow packaging.

Imports pipeline, never flows or prefect. One sub-package per family (text/, prices/) beside the shared
machinery; shared modules never import a family (jobs.py looks it up; registry.py, the one exception,
imports them all) and families never import each other (tests/test_layout.py).

Importing it changes nothing in the environment: rnnflow's MLflow settings are installed where a store is
first used (models.tracking.mlflow_defaults, from tracking.configure).
"""
