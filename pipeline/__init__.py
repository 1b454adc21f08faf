"""Data logic for rnnflow: sources -> bronze Parquet -> vocabularies and length-bucketed shards.

Dependencies point flows -> models -> pipeline; pipeline never imports models, flows or prefect. One
sub-package per family (text/, prices/) beside the shared machinery; shared modules never import a
family (they look it up in families.py) and families never import each other (tests/test_layout.py).
"""
