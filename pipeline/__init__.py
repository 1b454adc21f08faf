"""Data logic for rnnflow: sources -> bronze Parquet -> vocabularies and length-bucketed shards.

Dependencies point flows -> models -> pipeline; pipeline never imports models, flows or prefect. One
sub-package per family (text/, prices/) beside the shared machinery; shared modules never import a
family (they look it up with families.family_of; registry.py, the one exception, imports them all) and
families never import each other (tests/test_layout.py).
"""
