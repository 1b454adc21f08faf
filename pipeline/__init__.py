"""Data logic for rnnflow: sources -> bronze Parquet -> vocabularies and length-bucketed shards.

Pure polars/pyarrow/numpy; never imports prefect.
"""
