"""The sections of `bench/run.py`: each measures one goal side by side and returns rows and verdicts."""
