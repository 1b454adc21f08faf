"""The prices family: daily OHLCV bars per ticker: rules, sources, window features; its Family, which
pipeline/registry.py registers."""

from pipeline.families import Family
from pipeline.prices import features, packaged, rules, sources

FAMILY = Family(
    name="prices",
    read_source=lambda path, kind, text_col=None, label_col=None: sources.read_price_source(path, kind),
    validate=rules.validate,
    feature_config=features.PriceFeatureConfig.for_kind,
    build_features=features.build_price_features,
    summary_keys=("version", "rows", "split_dates", "lookback", "tickers_too_short"),
    check_scoring_input=sources.check_scoring_input,
    check_source=lambda path, kind, text_col=None, label_col=None: sources.check_price_source(path, kind),
    special_sources=packaged.SPECIAL_SOURCES,
    special_checks=packaged.SPECIAL_CHECKS,
)
