"""The text family: surnames and reviews (text -> label): rules, sources, vocabulary, features; its Family,
which pipeline/registry.py registers."""

from pipeline.families import Family
from pipeline.text import features, packaged, rules, sources

FAMILY = Family(
    name="text",
    read_source=sources.read_source,
    validate=rules.validate,
    feature_config=features.FeatureConfig.for_kind,
    build_features=features.build_features,
    summary_keys=("version", "rows", "bucket_upper_bounds", "padding", "vocab"),
    check_scoring_input=sources.check_scoring_input,
    check_source=sources.check_source,
    special_sources=packaged.SPECIAL_SOURCES,
    special_checks=packaged.SPECIAL_CHECKS,
    read_chunks=sources.read_source_chunks,
    clean_label=rules.clean_label,
)
