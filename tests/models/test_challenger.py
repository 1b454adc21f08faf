"""The challenger's paired tests: McNemar on the rows only one version got right (text), Diebold-Mariano
on paired differences of squared error (prices); both name their numbers."""

from __future__ import annotations

import polars as pl

from models.challenger import paired_test
from pipeline.kinds import NAMES, PRICES


def test_mcnemar_counts_only_the_rows_the_two_disagree_on():
    rows = pl.DataFrame(
        {
            "truth": ["a"] * 40,
            "champion": ["a"] * 20 + ["b"] * 20,  # right on 20
            "challenger": ["a"] * 38
            + ["b"] * 2,  # right on 38: 18 rows only it got right, none only the champion
        }
    )
    verdict = paired_test(rows, NAMES)
    assert (verdict["only_champion_right"], verdict["only_challenger_right"]) == (0, 18)
    assert verdict["better"] and verdict["p_value"] < 1e-4 and verdict["test"] == "McNemar"
    tie = paired_test(rows.with_columns(pl.col("champion").alias("challenger")), NAMES)
    assert not tie["better"] and tie["p_value"] == 1.0


def test_prices_compare_paired_squared_errors():
    truth = [100.0 + i for i in range(30)]
    rows = pl.DataFrame(
        {
            "truth": truth,
            "champion": [t + (2.0 if i % 2 else -2.0) for i, t in enumerate(truth)],
            "challenger": [t + (0.5 if i % 2 else -0.5) for i, t in enumerate(truth)],
        }
    )
    verdict = paired_test(rows, PRICES)
    assert verdict["champion_rmse"] == 2.0 and verdict["challenger_rmse"] == 0.5
    assert verdict["better"] and verdict["p_value"] == 0.0  # every row gains the same: certain
    noisy = rows.with_columns(
        (pl.col("challenger") + pl.Series([0.1 * (i % 3) for i in range(30)])).alias("challenger")
    )
    verdict = paired_test(noisy, PRICES)
    assert verdict["better"] and verdict["p_value"] < 1e-6
