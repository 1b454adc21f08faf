"""The text pyfunc: state_dict + config + vocabularies, text in, label, probability and top-3 out."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import torch
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

from models import packaging
from models.packaging import load_weights, log_pyfunc, read_json
from models.text import blend
from models.text.ngram import NgramClassifier, NgramConfig, ngram_ids
from models.text.rnn import RNNClassifier, RNNClassifierConfig
from pipeline import storage
from pipeline.kinds import TextKind
from pipeline.text import profile
from pipeline.text.features import tokenize
from pipeline.text.rules import clean_text
from pipeline.text.vocab import Vocabulary

TOP_K = 3
OUTPUT_COLUMNS = ["predicted_label", "probability", "top_labels", "top_probs"]
POSITIVE_COLUMN = "positive_probability"  # binary kinds only (kind.positive_label), after OUTPUT_COLUMNS


class TextClassifierPyfunc(mlflow.pyfunc.PythonModel):
    """Input: DataFrame with the kind's text column. Output: label, probability, top-3 of each, and for
    binary kinds the positive class's probability (null for empty texts)."""

    def load_context(self, context) -> None:
        spec = read_json(context, "spec")
        known = {f.name for f in dataclasses.fields(TextKind)} - {"column_aliases"}  # fields may come/go
        self.kind = TextKind(**{k: v for k, v in spec["kind"].items() if k in known})
        self.max_tokens = spec.get("max_tokens")
        self.tokens = Vocabulary.from_dict(read_json(context, "vocab_tokens"))
        self.labels = Vocabulary.from_dict(read_json(context, "vocab_labels"))
        self.ngram = spec.get("model_type") == "ngram"
        if self.ngram:
            self.model = NgramClassifier(NgramConfig(**spec["model"]))
        else:
            self.model = RNNClassifier(RNNClassifierConfig(**spec["model"]))
        self.model.load_state_dict(load_weights(context))
        self.model.eval()
        self.blend = None  # (n-gram model, its share): the RNN blended with its n-gram reference
        if spec.get("blend"):
            ngram = NgramClassifier(NgramConfig(**spec["blend"]["model"]))
            ngram.load_state_dict(load_weights(context, "blend_weights"))
            self.blend = (ngram.eval(), float(spec["blend"]["share"]))
        self.batch_size = int(spec.get("score_batch_size", 512))
        has_reference = "drift_reference" in context.artifacts  # not: packaged before drift reports
        self.drift_reference = read_json(context, "drift_reference") if has_reference else None

    def encode(self, texts: pd.Series) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
        """-> every text's token ids end to end (flat), each text's count of them, the cleaned texts."""
        frame = pl.DataFrame({self.kind.text_col: pl.Series(texts.tolist(), dtype=pl.String)})
        cleaned = frame.select(clean_text(self.kind))
        if self.ngram:  # hashed n-grams of the cleaned text, as in training
            return (*flatten(ngram_ids(cleaned[self.kind.text_col].to_list(), self.model.config)), cleaned)
        pieces = cleaned.select(tokenize(self.kind))["pieces"]
        if self.max_tokens:
            pieces = pieces.list.head(self.max_tokens)
        ids = pieces.list.eval(
            pl.element().replace_strict(self.tokens.index, default=self.tokens.unk_id, return_dtype=pl.Int64)
        )
        lengths = ids.list.len().fill_null(0).to_numpy().astype(np.int64)
        return ids.explode().drop_nulls().to_numpy().astype(np.int64), lengths, cleaned

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        flat, lengths, cleaned = self.encode(model_input[self.kind.text_col])
        pad = self.model.config.pad_id
        probs = score_sequences(self.model, flat, lengths, pad, self.batch_size)  # (N, C)
        if self.blend is not None:
            ngram, share = self.blend
            grams = flatten(ngram_ids(cleaned[self.kind.text_col].to_list(), ngram.config))
            probs = blend.mix(
                probs, score_sequences(ngram, *grams, ngram.config.pad_id, self.batch_size), share
            )
        k = min(TOP_K, probs.shape[1])
        top = np.argsort(-probs, axis=1)[:, :k]  # (N, k)
        empty = lengths == 0
        labels = np.array(self.labels.tokens, dtype=object)
        top_labels = labels[top].tolist()
        top_probs = np.take_along_axis(probs, top, axis=1).astype(float).round(6).tolist()
        for i in np.flatnonzero(empty):
            top_labels[i], top_probs[i] = [], []
        out = pd.DataFrame(
            {
                "predicted_label": np.where(empty, None, labels[top[:, 0]]),
                "probability": np.where(empty, np.nan, probs[np.arange(len(lengths)), top[:, 0]]),
                "top_labels": top_labels,
                "top_probs": top_probs,
            }
        )
        if self.kind.positive_label is not None:
            positive = self.labels.index.get(self.kind.positive_label)
            p = probs[:, positive] if positive is not None else np.zeros(len(lengths))  # never predicted
            out[POSITIVE_COLUMN] = np.where(empty, np.nan, p).astype(np.float64)
        return out


def flatten(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token-id lists -> (all ids end to end, each list's length)."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


@torch.inference_mode()
def score_sequences(
    model: RNNClassifier | NgramClassifier,
    flat: np.ndarray,
    lengths: np.ndarray,
    pad_id: int,
    batch_size: int,
) -> np.ndarray:
    """Probabilities for texts given as flat token ids + lengths, run in length-sorted batches (little
    padding), input order kept; empty texts get the uniform distribution."""
    n, classes = len(lengths), model.config.num_classes
    probs = np.full((n, classes), 1.0 / classes, dtype=np.float32)
    starts = np.cumsum(lengths) - lengths  # where each text's ids begin in flat
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    for begin in range(0, len(order), batch_size):
        rows = order[begin : begin + batch_size]
        lens = lengths[rows]
        tokens = np.full((len(rows), int(lens.max())), pad_id, dtype=np.int64)  # (B, T)
        row = np.repeat(np.arange(len(rows)), lens)
        col = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        tokens[row, col] = flat[np.repeat(starts[rows], lens) + col]
        logits, _ = model(torch.from_numpy(tokens), torch.from_numpy(lens))
        probs[rows] = torch.softmax(logits, dim=-1).numpy()
    return probs


def signature(kind: TextKind) -> ModelSignature:
    outputs = [
        ColSpec("string", "predicted_label"),
        ColSpec("double", "probability"),
        ColSpec(Array("string"), "top_labels"),
        ColSpec(Array("double"), "top_probs"),
    ]
    if kind.positive_label is not None:
        outputs.append(ColSpec("double", POSITIVE_COLUMN))
    return ModelSignature(inputs=Schema([ColSpec("string", kind.text_col)]), outputs=Schema(outputs))


def log_text_classifier(
    workdir: Path,
    kind: TextKind,
    model: RNNClassifier | NgramClassifier,
    features_dir: Path,
    manifest: dict,
    examples: list[str],
    name: str = "model",
    blend_with: tuple[NgramClassifier, float] | None = None,
    reference_texts: pl.Series | None = None,
    params: dict | None = None,
):
    """Log a text classifier (RNN or n-gram, or an RNN blended with an n-gram model at a share) with its
    vocabularies; returns MLflow's ModelInfo."""
    spec = {
        "kind": {k: v for k, v in kind.__dict__.items()},
        "model_type": "ngram" if isinstance(model, NgramClassifier) else "rnn",
        "model": model.config.to_dict(),
        "max_tokens": manifest["config"].get("max_tokens"),
        "features_version": manifest["version"],
    }
    artifacts = {}
    for which in ("tokens", "labels"):  # copied beside the weights: the feature set may be on S3
        copy = workdir / f"{name}_vocab_{which}.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(storage.read_text(features_dir / manifest["vocab"][which]["file"]))
        artifacts[f"vocab_{which}"] = str(copy)
    if blend_with is not None:
        ngram, share = blend_with
        spec["blend"] = {"model": ngram.config.to_dict(), "share": share}
        weights = workdir / f"{name}_blend_weights.pt"
        weights.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in ngram.state_dict().items()}, weights)
        artifacts["blend_weights"] = str(weights)
    example = pd.DataFrame({kind.text_col: examples})

    def drift_reference(loaded: TextClassifierPyfunc) -> dict:  # the held-out texts as scoring sees them
        out = loaded.predict(None, pd.DataFrame({kind.text_col: reference_texts.to_list()}))
        predicted = pl.Series(out["predicted_label"].tolist(), dtype=pl.String)
        probability = pl.Series(out["probability"].tolist(), dtype=pl.Float64)
        return profile.build_reference(kind, loaded.tokens, reference_texts, predicted, probability)

    reference = drift_reference if reference_texts is not None and reference_texts.len() else None
    return log_pyfunc(
        workdir, ENTRY, model, spec, artifacts, signature(kind), example, name, reference, params
    )


ENTRY = Path(__file__).with_name("rnnflow_text_model.py")  # the models-from-code file MLflow stores
packaging.register_entry("text", ENTRY, TextClassifierPyfunc)
