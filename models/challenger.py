"""The challenger's verdict: champion and challenger compared on the same labelled rows of the days both
scored (the champion's partition and the challenger's shadow), by a paired test (McNemar,
Diebold-Mariano); after a window of labelled days the challenger is promoted when it is better, and
demoted otherwise. The decision names both numbers, the test and its p-value; it is in the history."""

from __future__ import annotations

import numpy as np
import polars as pl

from models import metrics, promotion, tracking
from pipeline import labels, realised
from pipeline.kinds import Kind
from pipeline.layout import Layout


def paired_rows(
    layout: Layout, kind: Kind, start: str, end: str, champion: int, challenger: int
) -> pl.DataFrame:
    """The labelled rows both versions scored: the champion's prediction beside the challenger's."""
    key, _ = labels.key_of(kind)
    value = "forecast_close" if kind.family == "prices" else "predicted_label"
    served = realised.joined(layout, kind, start, end)
    shadow = realised.joined(layout, kind, start, end, folder=layout.shadow)
    if served.is_empty() or shadow.is_empty():
        return pl.DataFrame()
    keep = ["ds", key, value, "truth"] + (["last_close"] if kind.family == "prices" else [])
    ours = served.filter((pl.col("model_version") == champion) & pl.col("truth").is_not_null()).select(keep)
    theirs = shadow.filter(pl.col("model_version") == challenger).select(
        "ds", key, pl.col(value).alias("challenger")
    )
    return ours.rename({value: "champion"}).join(theirs, on=["ds", key], how="inner")


def paired_test(rows: pl.DataFrame, kind: Kind) -> dict:
    """The tests the training's gate uses (models/metrics.py): McNemar on the rows only one version got
    right (text), Diebold-Mariano on the paired differences of squared error (prices)."""
    truth = rows["truth"].to_numpy()
    ours, theirs = (rows[c].to_numpy() for c in ("champion", "challenger"))
    if kind.family == "prices":
        gain = float((((ours - truth) ** 2) - ((theirs - truth) ** 2)).mean())  # > 0: challenger closer
        numbers = {"champion_rmse": float(np.sqrt(((ours - truth) ** 2).mean()))}
        numbers["challenger_rmse"] = float(np.sqrt(((theirs - truth) ** 2).mean()))
        p = metrics.diebold_mariano(truth, theirs, ours)
        return numbers | {"test": "Diebold-Mariano", "p_value": p, "better": gain > 0}
    right, theirs_right = ours == truth, theirs == truth
    numbers = {"champion_accuracy": float(right.mean()), "challenger_accuracy": float(theirs_right.mean())}
    numbers |= {"only_champion_right": int((right & ~theirs_right).sum())}
    numbers |= {"only_challenger_right": int((theirs_right & ~right).sum())}
    better = numbers["only_challenger_right"] > numbers["only_champion_right"]
    return numbers | {"test": "McNemar", "p_value": metrics.mcnemar(truth, theirs, ours), "better": better}


def decide(layout: Layout, kind: Kind, start: str, end: str, window: int, alpha: float) -> dict | None:
    """Promote or demote the challenger once `window` labelled days compare them; -> the decision
    (None: no challenger; decision "waiting" before the window is full)."""
    champion = promotion.alias_version(kind.model_name, tracking.CHAMPION)
    challenger = promotion.alias_version(kind.model_name, tracking.CHALLENGER)
    if challenger is None or champion is None:
        return None
    rows = paired_rows(layout, kind, start, end, champion, challenger)
    days = rows["ds"].n_unique() if rows.height else 0
    out = {"champion": champion, "challenger": challenger, "labelled_days": days, "rows": rows.height}
    if days < window:
        return out | {"decision": "waiting", "window": window}
    verdict = paired_test(rows, kind)
    won = bool(verdict.pop("better")) and verdict["p_value"] < alpha
    shown = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in verdict.items() if k != "test"
    )
    verb = "beats" if won else "does not beat"
    why = (
        f"challenger v{challenger} {verb} champion v{champion} on {rows.height} labelled rows over {days} "
        f"days: {shown} ({verdict['test']}, alpha {alpha})"
    )
    evidence = verdict | {"rows": rows.height, "days": days, "alpha": alpha}
    common = {"reason": why, "evidence": evidence, "actor": "monitor"}
    if won:
        promotion.move(layout, kind.model_name, challenger, action="promote", **common)
    promotion.move(
        layout,
        kind.model_name,
        None,
        alias=tracking.CHALLENGER,
        action="promote" if won else "demote",
        **common,
    )
    return out | {"decision": "promoted" if won else "demoted", "reason": why, **verdict}
