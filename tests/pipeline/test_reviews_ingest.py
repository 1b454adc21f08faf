"""Reviews through the shared ingest: HTML and cp1252 clean-up, label rules, quarantine reasons."""

from __future__ import annotations

import polars as pl

from pipeline.ingest import ingest
from pipeline.kinds import REVIEWS
from pipeline.layout import Layout
from pipeline.text.features import FeatureConfig, build_features


def test_reviews_cleaning_labels_and_quarantine(tmp_path, data_root):
    csv = tmp_path / "reviews.csv"
    rows = [
        b"review,sentiment",
        b'"Great<br /><br />film \x96 <i>loved</i> it!",Positive',  # raw byte 0x96: not UTF-8
        "A fine film \u0096 really,pos".encode(),  # C1 code point: repaired to an en dash
        b'"<b></b>  ",negative',  # only markup: empty
        b"Dull,meh",  # not a known label
        b'"' + b"word " * 5000 + b'",negative',  # over the 20,000-character cap
        b"Terrible acting,neg",
    ]
    csv.write_bytes(b"\n".join(rows) + b"\n")
    report = ingest([str(csv)], REVIEWS, Layout.of("reviews", data_root))
    assert report.rows_in == 6 == report.rows_ok + report.rows_quarantined
    assert report.reasons == {"empty": 1, "too_long": 1, "undecodable_bytes": 1, "unknown_label": 1}
    bronze = pl.read_parquet(report.bronze_path)
    assert bronze.select("review", "sentiment").rows() == [
        ("a fine film – really", "positive"),
        ("terrible acting", "negative"),
    ]


def test_reviews_features_use_kind_defaults(tmp_path, data_root):
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    lines = ["review,sentiment"]
    for i in range(60):
        label = "positive" if i % 2 else "negative"
        body = " ".join(words[(i % 2) * 3 + j % 3] for j in range(5 + i % 7))
        lines.append(f"{body} movie{i},{label}")
    csv = tmp_path / "r.csv"
    csv.write_text("\n".join(lines) + "\n")
    layout = Layout.of("reviews", data_root)
    ingest([str(csv)], REVIEWS, layout)
    manifest = build_features(REVIEWS, layout)
    assert manifest["config"]["min_freq"] == 5 and manifest["config"]["max_tokens"] == 400
    tokens = manifest["vocab"]["tokens"]["size"]
    assert tokens == 4 + 6  # specials + the six frequent words; each rare "movieN" -> <unk>
    capped = build_features(REVIEWS, layout, FeatureConfig.for_kind(REVIEWS, max_tokens=3))
    assert max(capped["bucket_upper_bounds"]) == 3
