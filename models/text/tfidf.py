"""The text reference: TF-IDF n-grams (names: characters 1-4; reviews: words 1-2 and characters 2-5) into a
logistic regression whose regularisation is picked on the validation split (scikit-learn), the textbook
baseline. Stored as plain arrays and JSON (vocabularies, idf, coefficients): loading unpickles nothing."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

# One TF-IDF block per entry (their l2-normalised rows side by side, as a FeatureUnion gives them).
BLOCKS = {
    "chars": [{"analyzer": "char_wb", "ngram_range": [1, 4], "min_df": 1, "lowercase": False}],
    "words": [
        {"analyzer": "word", "ngram_range": [1, 2], "min_df": 2, "lowercase": True},
        {"analyzer": "char_wb", "ngram_range": [2, 5], "min_df": 2, "lowercase": True},
    ],
}
C_GRID = (0.5, 2.0, 8.0, 32.0)  # inverse regularisation strengths tried; the best on val is kept


@dataclass
class TfidfConfig:
    """The TF-IDF model's settings (what MLflow shows as its params): the blocks and the C grid."""

    tokenizer: str
    c_grid: tuple[float, ...] = C_GRID

    def to_dict(self) -> dict:
        return {
            "tokenizer": self.tokenizer,
            "blocks": json.dumps(BLOCKS[self.tokenizer]),
            "c_grid": list(self.c_grid),
        }


@dataclass
class TfidfModel:
    """TF-IDF blocks (each: analyzer, ngram_range, lowercase, vocabulary, idf) and a softmax layer."""

    blocks: list[dict]
    coef: np.ndarray  # (C, F)
    intercept: np.ndarray  # (C,)
    settings: dict = field(default_factory=dict)  # C, tokenizer: what was chosen, for params
    _counters: list = field(default_factory=list, repr=False)  # built once, on first use

    @property
    def num_classes(self) -> int:
        return int(self.coef.shape[0])

    def counters(self) -> list[CountVectorizer]:
        """One CountVectorizer per block over its fixed vocabulary (sklearn copies a vocabulary when it
        first checks it: once per model, not once per call)."""
        if not self._counters:
            for block in self.blocks:
                counter = CountVectorizer(
                    analyzer=block["analyzer"],
                    ngram_range=tuple(block["ngram_range"]),
                    lowercase=block["lowercase"],
                    vocabulary=block["vocabulary"],
                    dtype=np.float64,
                )
                counter.transform([""])  # checks the vocabulary now
                self._counters.append(counter)
        return self._counters

    def features(self, texts: list[str | None]) -> sparse.csr_matrix:
        texts = [t or "" for t in texts]
        parts = []
        for block, counter in zip(self.blocks, self.counters(), strict=True):
            counts = counter.transform(texts)
            counts.data = 1.0 + np.log(counts.data)  # sublinear tf, as fitted
            parts.append(normalize(counts.multiply(block["idf"]).tocsr()))
        return sparse.hstack(parts, format="csr")

    def predict_proba(self, texts: list[str | None]) -> np.ndarray:
        return self.probabilities(self.features(texts))

    def probabilities(self, features: sparse.csr_matrix) -> np.ndarray:
        logits = np.asarray(features @ self.coef.T) + self.intercept  # (N, C)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)

    def config(self) -> dict:
        """What the MLflow params of the model show."""
        shown = [{k: v for k, v in b.items() if k not in ("vocabulary", "idf")} for b in self.blocks]
        return {**self.settings, "blocks": json.dumps(shown), "features": int(self.coef.shape[1])}

    def save(self, folder: Path, name: str) -> dict[str, str]:
        """-> the two artifact files: arrays (.npz, no objects) and vocabularies (.json)."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"coef": self.coef, "intercept": self.intercept}
        arrays |= {f"idf_{i}": np.asarray(b["idf"]) for i, b in enumerate(self.blocks)}
        np.savez_compressed(folder / f"{name}.npz", **arrays)
        terms = [sorted(b["vocabulary"], key=b["vocabulary"].get) for b in self.blocks]  # by column
        meta = {
            "blocks": [{k: v for k, v in b.items() if k not in ("idf", "vocabulary")} for b in self.blocks]
        }
        meta["terms"] = terms
        (folder / f"{name}.json").write_text(json.dumps(meta | {"settings": self.settings}))
        return {f"{name}_arrays": str(folder / f"{name}.npz"), f"{name}_vocab": str(folder / f"{name}.json")}

    @classmethod
    def load(cls, arrays: str, vocab: str) -> TfidfModel:
        with np.load(arrays, allow_pickle=False) as data:  # plain arrays only: nothing to unpickle
            values = {k: data[k] for k in data.files}
        meta = json.loads(Path(vocab).read_text())
        blocks = [
            b | {"idf": values[f"idf_{i}"], "vocabulary": {t: j for j, t in enumerate(meta["terms"][i])}}
            for i, b in enumerate(meta["blocks"])
        ]
        return cls(blocks, values["coef"], values["intercept"], meta.get("settings", {}))


@dataclass
class TfidfFit:
    model: TfidfModel
    val_accuracy: float
    seconds: float
    history: list[dict]  # per C tried: val_accuracy
    val_probs: np.ndarray  # (N_val, C), for the blend and the gate


def fit_tfidf(
    tokenizer: str,
    train: tuple[list[str], np.ndarray],
    val: tuple[list[str], np.ndarray],
    num_classes: int,
    seed: int = 0,
) -> TfidfFit:
    """Vectorizers fitted on train; for each C of C_GRID a logistic regression; the best val accuracy
    kept (a tie: the stronger regularisation). ValueError when train holds fewer than two classes."""
    if len(set(np.asarray(train[1]).tolist())) < 2:
        raise ValueError("the train split holds fewer than two classes: no classifier to fit")
    started = time.perf_counter()
    blocks, parts = [], []
    for spec in BLOCKS[tokenizer]:
        vectorizer = TfidfVectorizer(
            analyzer=spec["analyzer"],
            ngram_range=tuple(spec["ngram_range"]),
            lowercase=spec["lowercase"],
            min_df=spec["min_df"] if len(train[0]) >= 50 else 1,
            sublinear_tf=True,
        )
        parts.append(vectorizer.fit_transform(train[0]))
        vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        blocks.append({**spec, "vocabulary": vocabulary, "idf": vectorizer.idf_})
    x_train = sparse.hstack(parts, format="csr")
    x_val = TfidfModel(blocks, np.zeros((num_classes, x_train.shape[1])), np.zeros(num_classes)).features(
        val[0]
    )
    best, history = None, []
    for c in C_GRID:
        fitted = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x_train, train[1])
        model = TfidfModel(blocks, *_full(fitted, num_classes), {"C": c, "tokenizer": tokenizer})
        probs = model.probabilities(x_val)
        accuracy = float((probs.argmax(-1) == val[1]).mean()) if len(val[1]) else 0.0
        history.append({"C": c, "val_accuracy": accuracy})
        if best is None or accuracy > best[1]:
            best = (model, accuracy, probs)
    model, accuracy, probs = best
    return TfidfFit(model, accuracy, time.perf_counter() - started, history, probs)


def _full(fitted: LogisticRegression, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's coefficients as (num_classes, F) softmax weights: a binary fit has one row (the logit of
    its second class), and classes absent from train get no row: they get -inf-like biases."""
    classes = fitted.classes_.astype(int)
    coef, intercept = fitted.coef_, fitted.intercept_
    if len(classes) == 2 and coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    full = np.zeros((num_classes, coef.shape[1]))
    bias = np.full(num_classes, -1e9)
    full[classes], bias[classes] = coef, intercept
    return full, bias
