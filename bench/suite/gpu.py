"""GPU (when CUDA is present): names and reviews training with AMP on and off, and scoring, on CUDA;
on a CPU-only machine the section says it was skipped."""

from __future__ import annotations

import time

import torch

from bench.suite.common import Bench


def run(bench: Bench) -> dict:
    if not torch.cuda.is_available():
        return {
            "title": "GPU",
            "skipped": "no CUDA device: the GPU rows were skipped",
            "rows": [],
            "goals": [],
        }
    from models.batching import BucketBatches
    from models.text.rnn import RNNClassifier, RNNClassifierConfig
    from pipeline.kinds import get_kind
    from pipeline.layout import Layout
    from pipeline.storage import latest_features
    from pipeline.text.features import load_split

    device, rows = torch.device("cuda"), []
    for kind in ("names", "reviews"):
        folder, manifest = latest_features(Layout.of(kind, bench.root))
        batches = BucketBatches(load_split(folder, manifest, "train"), 256, True, seed=0)
        cfg = RNNClassifierConfig(
            vocab_size=manifest["vocab"]["tokens"]["size"],
            num_classes=manifest["vocab"]["labels"]["size"],
            num_layers=get_kind(kind).rnn_layers,
        )
        for amp in (False, True):
            model = RNNClassifier(cfg).to(device)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            samples, began = 0, time.perf_counter()
            for tokens, lengths, y in batches.epoch(0):
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                    _, loss = model(tokens.to(device), lengths.to(device), y.to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                samples += len(y)
            torch.cuda.synchronize()
            train_s = time.perf_counter() - began
            model.eval()
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                began = time.perf_counter()
                for tokens, lengths, _ in batches.epoch(1):
                    model(tokens.to(device), lengths.to(device))
                torch.cuda.synchronize()
            rows.append(
                {
                    "kind": kind,
                    "amp": amp,
                    "train_samples_per_s": samples / train_s,
                    "score_samples_per_s": samples / (time.perf_counter() - began),
                }
            )
    return {"title": "GPU", "device": torch.cuda.get_device_name(0), "rows": rows, "goals": []}
