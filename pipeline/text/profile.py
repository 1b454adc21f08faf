"""What a text model saw at training and what a scored day looks like: token lengths, the out-of-vocabulary
rate, the top-token profile, predicted-label shares and probabilities; their drift is the day's report."""

from __future__ import annotations

import polars as pl

from pipeline import drift
from pipeline.kinds import TextKind
from pipeline.text.features import tokenize
from pipeline.text.rules import clean_text
from pipeline.text.vocab import Vocabulary

OOV_EDGES = [0.0, 0.05, 0.1, 0.2, 0.35, 0.5]  # per-text share of unknown tokens; bin 0 is exactly 0
TOP_TOKENS = 30
OTHER = "<other>"


def token_stats(kind: TextKind, vocab: Vocabulary, texts: pl.Series) -> pl.DataFrame:
    """Per text: its cleaned tokens, how many (before truncation), and the share not in the vocabulary."""
    known = [t for t in vocab.tokens if t not in vocab.specials]
    frame = pl.DataFrame({kind.text_col: texts.cast(pl.String)}).select(clean_text(kind))
    return frame.select(tokenize(kind)).select(
        "pieces",
        pl.col("pieces").list.len().fill_null(0).alias("length"),
        (1 - pl.col("pieces").list.eval(pl.element().is_in(known)).list.mean()).alias("oov_rate"),
    )


def top_tokens(pieces: pl.Series, keep: list[str] | None = None) -> dict[str, float]:
    """Share of all tokens for the most frequent ones (or those in `keep`), the rest as OTHER."""
    counts = pieces.explode().drop_nulls().value_counts(sort=True, name="n")
    total = int(counts["n"].sum()) if counts.height else 0
    if total == 0:
        return {}
    column = counts.columns[0]
    if keep is None:
        keep = counts[column].head(TOP_TOKENS).to_list()
    chosen = counts.filter(pl.col(column).is_in(keep))
    shares = {str(t): n / total for t, n in chosen.iter_rows()}
    shares[OTHER] = 1.0 - sum(shares.values())
    return shares


def label_shares(labels: pl.Series) -> dict[str, float]:
    labels = labels.drop_nulls()
    if labels.len() == 0:
        return {}
    return {str(k): n / labels.len() for k, n in labels.value_counts(name="n").iter_rows()}


def build_reference(
    kind: TextKind, vocab: Vocabulary, texts: pl.Series, predicted: pl.Series, probability: pl.Series
) -> dict:
    """The validation split's distributions, with the bins a scored day is compared in."""
    stats = token_stats(kind, vocab, texts)
    length_edges = drift.quantile_edges(stats["length"].to_numpy())
    probs = probability.drop_nulls().drop_nans().to_numpy()
    prob_edges = drift.quantile_edges(probs)
    oov = stats["oov_rate"].drop_nulls().to_numpy()
    return {
        "family": "text",
        "rows": texts.len(),
        "length": {"edges": length_edges, "shares": drift.shares(stats["length"].to_numpy(), length_edges)},
        "oov": {"edges": OOV_EDGES, "shares": drift.shares(oov, OOV_EDGES), "mean": float(oov.mean())},
        "tokens": top_tokens(stats["pieces"]),
        "labels": label_shares(predicted),
        "probability": {"edges": prob_edges, "shares": drift.shares(probs, prob_edges)},
    }


def compare(reference: dict, kind: TextKind, vocab: Vocabulary, scored: pl.DataFrame, limits: dict) -> dict:
    """A scored day's rows (text, predicted_label, probability; null predictions: not scored) against
    the model's reference -> the drift report."""
    rows = scored.filter(pl.col("predicted_label").is_not_null())
    stats = token_stats(kind, vocab, rows[kind.text_col])
    lengths = stats["length"].to_numpy()
    oov = stats["oov_rate"].drop_nulls().to_numpy()
    probs = rows["probability"].drop_nulls().drop_nans().to_numpy()
    ref_tokens = reference["tokens"]
    metrics = {
        "length_psi": drift.psi(
            reference["length"]["shares"], drift.shares(lengths, reference["length"]["edges"])
        ),
        "oov_psi": drift.psi(reference["oov"]["shares"], drift.shares(oov, reference["oov"]["edges"])),
        "token_tvd": drift.tvd(
            ref_tokens, top_tokens(stats["pieces"], [t for t in ref_tokens if t != OTHER])
        ),
        "label_tvd": drift.tvd(reference["labels"], label_shares(rows["predicted_label"])),
        "probability_psi": drift.psi(
            reference["probability"]["shares"], drift.shares(probs, reference["probability"]["edges"])
        ),
    }
    summary = {
        "mean_length": float(lengths.mean()) if lengths.size else None,
        "reference_mean_oov": reference["oov"]["mean"],
        "mean_oov": float(oov.mean()) if oov.size else None,
    }
    return drift.report(metrics, limits, rows.height, {"summary": summary})
