"""Per-epoch checkpoints: atomic files, resume continues where training stopped, and refuses a mismatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import checkpoint
from models.batching import BucketBatches
from models.run_scope import resumed_run_id
from models.text.rnn import RNNClassifier, RNNClassifierConfig
from models.train import Objective, TrainConfig, fit, seed_everything


def data(seed: int = 0) -> BucketBatches:
    rng = np.random.default_rng(seed)
    bucket = {
        "tokens": rng.integers(1, 9, size=(40, 5)),
        "lengths": np.full(40, 5),
        "labels": rng.integers(0, 2, 40),
    }
    return BucketBatches([bucket], batch_size=8, shuffle=True, seed=seed)


def flat() -> Objective:
    """Never improves after epoch 1: training stops early after `patience` more epochs."""
    return Objective("val_score", True, lambda model, batches, device: {"val_score": 0.5})


def model() -> RNNClassifier:
    seed_everything(0)
    return RNNClassifier(RNNClassifierConfig(vocab_size=10, num_classes=2, embed_dim=4, hidden_size=8))


def test_a_resume_after_an_early_stop_stays_stopped(tmp_path):
    cfg = TrainConfig(epochs=8, patience=2, device="cpu")
    first = fit(model(), data(), data(1), cfg, flat(), checkpoints=tmp_path)
    assert first.stopped_early and len(first.history) == 3
    assert [p.name for p in checkpoint.all_checkpoints(tmp_path)] == ["epoch-0002.pt", "epoch-0003.pt"]
    assert not list(tmp_path.glob("*.tmp"))
    resumed = fit(model(), data(), data(1), cfg, flat(), checkpoints=tmp_path, resume=True)
    assert resumed.stopped_early and resumed.history == first.history and resumed.best_epoch == 1


def test_resume_continues_from_the_next_epoch_with_the_saved_weights(tmp_path):
    cfg = TrainConfig(epochs=2, patience=5, device="cpu")
    m = model()
    fit(m, data(), data(1), cfg, flat(), checkpoints=tmp_path)
    saved = checkpoint.load(checkpoint.latest(tmp_path))
    assert saved["epoch"] == 2 and saved["stopped_early"] is False
    more = TrainConfig(epochs=3, patience=5, device="cpu")
    resumed = fit(model(), data(), data(1), more, flat(), checkpoints=tmp_path, resume=True)
    assert resumed.resumed_from_epoch == 2 and [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_resume_without_checkpoints_or_with_other_features_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(model(), data(), data(1), TrainConfig(device="cpu"), flat(), checkpoints=tmp_path, resume=True)
    state = {"extra": {"mlflow_run_id": "abc", "features_version": "v1", "params": {"model.hidden_size": 8}}}
    checkpoint.save(state, tmp_path, 1)
    assert resumed_run_id(tmp_path, "v1", {"model.hidden_size": 8, "train.epochs": 9}) == "abc"
    with pytest.raises(ValueError, match="trained on features v1, the latest features are v2"):
        resumed_run_id(tmp_path, "v2", {})
    with pytest.raises(ValueError, match=r"other settings: \['model.hidden_size'\]"):
        resumed_run_id(tmp_path, "v1", {"model.hidden_size": 16})


def test_checkpoint_round_trips_rng_state(tmp_path):
    torch.manual_seed(3)
    np.random.seed(3)
    checkpoint.save({"rng": checkpoint.rng_state()}, tmp_path, 1)
    expected = (torch.rand(2), np.random.rand(2))
    checkpoint.set_rng_state(checkpoint.load(checkpoint.latest(tmp_path))["rng"])
    torch.testing.assert_close(torch.rand(2), expected[0])
    np.testing.assert_allclose(np.random.rand(2), expected[1])


def test_a_one_cycle_schedule_resumes_where_it_stopped(tmp_path):
    cfg = TrainConfig(epochs=3, patience=5, device="cpu", schedule="onecycle")
    whole = fit(model(), data(), data(1), cfg, flat())
    fit(model(), data(), data(1), cfg, flat(), checkpoints=tmp_path)
    (tmp_path / "epoch-0003.pt").unlink()  # as if killed during epoch 3: resume from epoch 2
    assert checkpoint.load(tmp_path / "epoch-0002.pt")["scheduler"] is not None
    resumed = fit(model(), data(), data(1), cfg, flat(), checkpoints=tmp_path, resume=True)
    assert [round(h["train_loss"], 6) for h in resumed.history] == [
        round(h["train_loss"], 6) for h in whole.history
    ]
