"""The text pyfunc: state_dict + config + vocabularies, text in, label, probability and top-3 out."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import sklearn
import torch
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

from models import packaging
from models.packaging import REREGISTER, load_weights, log_pyfunc, read_json
from models.text import blend
from models.text.ngram import NgramClassifier, NgramConfig, ngram_ids
from models.text.rnn import RNNClassifier, RNNClassifierConfig
from models.text.tfidf import TfidfModel
from pipeline import storage
from pipeline.kinds import TextKind
from pipeline.storage import CorruptFile
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
        self.model_type = spec.get("model_type", "rnn")
        self.model = None  # the sequence model (rnn, or a legacy hashed n-gram model); none for tfidf
        if self.model_type == "tfidf":
            self.tfidf = load_tfidf(context, "tfidf")
        else:
            config = NgramConfig(**spec["model"]) if self.model_type == "ngram" else None
            self.model = (
                NgramClassifier(config) if config else RNNClassifier(RNNClassifierConfig(**spec["model"]))
            )
            self.model.load_state_dict(load_weights(context))
            self.model.eval()
        self.blend = None  # (the reference, its share): the RNN blended with its reference
        if spec.get("blend"):
            share = float(spec["blend"]["share"])
            if spec["blend"].get("type") == "tfidf":
                self.blend = (load_tfidf(context, "blend_tfidf"), share)
            else:  # versions from before the TF-IDF reference: a hashed n-gram model
                ngram = NgramClassifier(NgramConfig(**spec["blend"]["model"]))
                ngram.load_state_dict(load_weights(context, "blend_weights"))
                self.blend = (ngram.eval(), share)
        self.batch_size = int(spec.get("score_batch_size", 512))
        has_reference = "drift_reference" in context.artifacts  # not: packaged before drift reports
        self.drift_reference = read_json(context, "drift_reference") if has_reference else None

    def encode(self, texts: pd.Series) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
        """-> every text's token ids end to end (flat), each text's count of them, the cleaned texts."""
        frame = pl.DataFrame({self.kind.text_col: pl.Series(texts.tolist(), dtype=pl.String)})
        cleaned = frame.select(clean_text(self.kind))
        if isinstance(self.model, NgramClassifier):  # hashed n-grams of the cleaned text, as in training
            return (*flatten(ngram_ids(cleaned[self.kind.text_col].to_list(), self.model.config)), cleaned)
        pieces = cleaned.select(tokenize(self.kind))["pieces"]
        if self.max_tokens:
            pieces = pieces.list.head(self.max_tokens)
        ids = pieces.list.eval(
            pl.element().replace_strict(self.tokens.index, default=self.tokens.unk_id, return_dtype=pl.Int64)
        )
        lengths = ids.list.len().fill_null(0).to_numpy().astype(np.int64)
        return ids.explode().drop_nulls().to_numpy().astype(np.int64), lengths, cleaned

    def probabilities(self, texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """-> (N, C) class probabilities and each text's token count (0: an empty text, no prediction)."""
        flat, lengths, cleaned = self.encode(texts)
        clean = cleaned[self.kind.text_col].to_list()
        if self.model is None:  # the TF-IDF model alone
            probs = self.tfidf.predict_proba(clean)
        else:
            probs = score_sequences(self.model, flat, lengths, self.model.config.pad_id, self.batch_size)
        if self.blend is not None:
            reference, share = self.blend
            if isinstance(reference, NgramClassifier):
                grams = flatten(ngram_ids(clean, reference.config))
                other = score_sequences(reference, *grams, reference.config.pad_id, self.batch_size)
            else:
                other = reference.predict_proba(clean)
            probs = blend.mix(probs, other, share)
        return probs, lengths

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        probs, lengths = self.probabilities(model_input[self.kind.text_col])  # (N, C), (N,)
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


def load_tfidf(context, name: str) -> TfidfModel:
    """A TF-IDF model from its two artifacts (plain arrays, JSON); a damaged one fails naming the file."""
    arrays, vocab = context.artifacts[f"{name}_arrays"], context.artifacts[f"{name}_vocab"]
    try:
        return TfidfModel.load(arrays, vocab)
    except (ValueError, KeyError, OSError, EOFError) as err:
        raise CorruptFile(
            f"{Path(arrays).name}: not a readable TF-IDF model ({str(err)[:120]}); {REREGISTER}"
        ) from None


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
    model: RNNClassifier | TfidfModel,
    features_dir: Path,
    manifest: dict,
    examples: list[str],
    name: str = "model",
    blend_with: tuple[TfidfModel, float] | None = None,
    reference_texts: pl.Series | None = None,
    params: dict | None = None,
):
    """Log a text classifier (the RNN, the TF-IDF model, or the RNN blended with the TF-IDF model at a
    share) with its vocabularies; returns MLflow's ModelInfo."""
    tfidf = isinstance(model, TfidfModel)
    spec = {
        "kind": {k: v for k, v in kind.__dict__.items()},
        "model_type": "tfidf" if tfidf else "rnn",
        "model": model.config() if tfidf else model.config.to_dict(),
        "max_tokens": manifest["config"].get("max_tokens"),
        "features_version": manifest["version"],
        "sklearn": sklearn.__version__,  # the TF-IDF analyzers' version (its features at scoring time)
    }
    artifacts = model.save(workdir / f"{name}_files", "tfidf") if tfidf else {}
    for which in ("tokens", "labels"):  # copied beside the weights: the feature set may be on S3
        copy = workdir / f"{name}_vocab_{which}.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(storage.read_text(features_dir / manifest["vocab"][which]["file"]))
        artifacts[f"vocab_{which}"] = str(copy)
    if blend_with is not None:
        reference, share = blend_with
        spec["blend"] = {"type": "tfidf", "share": share}
        artifacts |= reference.save(workdir / f"{name}_blend", "blend_tfidf")
    example = pd.DataFrame({kind.text_col: examples})

    def drift_reference(loaded: TextClassifierPyfunc) -> dict:  # the held-out texts as scoring sees them
        out = loaded.predict(None, pd.DataFrame({kind.text_col: reference_texts.to_list()}))
        predicted = pl.Series(out["predicted_label"].tolist(), dtype=pl.String)
        probability = pl.Series(out["probability"].tolist(), dtype=pl.Float64)
        return profile.build_reference(kind, loaded.tokens, reference_texts, predicted, probability)

    reference = drift_reference if reference_texts is not None and reference_texts.len() else None
    return log_pyfunc(
        workdir,
        ENTRY,
        None if tfidf else model,
        spec,
        artifacts,
        signature(kind),
        example,
        name,
        reference,
        params,
    )


ENTRY = Path(__file__).with_name("rnnflow_text_model.py")  # the models-from-code file MLflow stores
packaging.register_entry("text", ENTRY, TextClassifierPyfunc)
