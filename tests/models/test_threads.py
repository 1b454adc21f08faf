"""The torch thread setting: --threads / $RNNFLOW_THREADS win; by default the CPUs this process may use,
shared by the processes running at once, and 1 on a machine of 2 CPUs or fewer."""

from __future__ import annotations

import pytest
import torch

from models import threads


def test_the_default_shares_the_cpus_among_the_processes_running_at_once(monkeypatch):
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: 16)
    assert threads.default_threads() == 16
    assert threads.default_threads(processes=4) == 4  # four DDP ranks on the node
    monkeypatch.setenv(threads.CONCURRENCY_ENV, "3")  # a worker running 3 flow runs at once
    assert threads.default_threads() == 5 and threads.default_threads(processes=8) == 1
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    assert threads.default_threads() == 1  # a neighbour always takes a whole core here


def test_an_explicit_setting_wins_and_bad_ones_are_one_line(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    try:
        assert threads.resolve() == 3 and threads.resolve(2) == 2
        assert threads.apply() == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv(threads.THREADS_ENV, "many")
    with pytest.raises(ValueError, match=r"\$RNNFLOW_THREADS='many': expected a whole number"):
        threads.resolve()
    with pytest.raises(ValueError, match=r"--threads 0: give 1 or more"):
        threads.resolve(0)
    monkeypatch.setenv(threads.CONCURRENCY_ENV, "x")
    monkeypatch.delenv(threads.THREADS_ENV)
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    with pytest.raises(ValueError, match=r"\$RNNFLOW_CONCURRENCY='x'"):
        threads.default_threads()
