"""The challenger's verdict: champion and challenger compared on the same labelled rows of the days both
scored (the champion's partition and the challenger's shadow), by a paired test; after a window of
labelled days the challenger is promoted when it is better, and demoted otherwise. The decision names
both numbers, the test and its p-value, and is recorded in the promotion history."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

from models import promotion, tracking
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
    """McNemar's exact test (text) or a t-test on the paired differences of squared error (prices)."""
    if kind.family == "prices":
        truth = rows["truth"].to_numpy()
        ours, theirs = (rows[c].to_numpy() for c in ("champion", "challenger"))
        gain = (ours - truth) ** 2 - (theirs - truth) ** 2  # > 0: the challenger is closer
        if len(gain) > 1 and gain.std() > 0:
            p = float(stats.ttest_1samp(gain, 0.0).pvalue)
        else:  # every row gains the same: certain when it is not zero (and there are rows)
            p = 0.0 if len(gain) > 1 and gain.mean() != 0 else 1.0
        numbers = {"champion_rmse": float(np.sqrt(((ours - truth) ** 2).mean()))}
        numbers["challenger_rmse"] = float(np.sqrt(((theirs - truth) ** 2).mean()))
        return numbers | {"test": "paired t-test on squared errors", "p_value": p, "better": gain.mean() > 0}
    ours = rows["champion"] == rows["truth"]
    theirs = rows["challenger"] == rows["truth"]
    only_ours, only_theirs = int((ours & ~theirs).sum()), int((theirs & ~ours).sum())
    n = only_ours + only_theirs
    p = float(stats.binomtest(min(only_ours, only_theirs), n, 0.5).pvalue) if n else 1.0
    numbers = {"champion_accuracy": float(ours.mean()), "challenger_accuracy": float(theirs.mean())}
    numbers |= {"only_champion_right": only_ours, "only_challenger_right": only_theirs}
    return numbers | {"test": "McNemar (exact)", "p_value": p, "better": only_theirs > only_ours}


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
