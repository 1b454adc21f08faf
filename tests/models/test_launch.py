"""torchrun is refused up front when --nproc asks for more GPUs than the node has."""

from __future__ import annotations

import pytest
import torch

from models import launch


def test_more_processes_than_gpus_is_refused_before_any_process_starts(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    started = []
    monkeypatch.setattr(launch, "_run", lambda *a, **k: started.append(a))
    with pytest.raises(ValueError, match="--nproc 2 on CUDA needs 2 GPUs, this node has 1"):
        launch.torchrun({"kind": "names", "train": {"device": "auto"}}, nproc=2)
    assert not started
    launch.check_gpus("cpu", 2)  # CPU training: gloo, any number of processes
