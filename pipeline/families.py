"""What a data family is (Family: its reader, rules, feature builder and packaged sources) and the lookup
shared code uses instead of testing names: family_of(kind).

Each family's package declares its Family (pipeline/text/__init__.py, pipeline/prices/__init__.py);
pipeline/registry.py imports them, so that no other shared module imports a family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Family:
    name: str
    read_source: Callable  # (path, kind, text_col, label_col) -> raw string rows with lineage
    validate: Callable  # (raw LazyFrame, kind) -> cleaned columns + raw_* + `reason`
    feature_config: Callable  # (kind, **settings) -> the family's feature config (its defaults)
    build_features: Callable  # (kind, layout, config) -> manifest
    summary_keys: tuple[str, ...]  # what a features run reports of the manifest
    check_scoring_input: Callable  # (kind, input_path) -> None; ValueError naming the fix, before any flow
    check_source: Callable  # (path, kind, text_col, label_col) -> None: read_source's refusals, from headers
    special_sources: dict = field(default_factory=dict)  # (kind name, source name) -> reader
    special_checks: dict = field(default_factory=dict)  # (kind name, source name) -> check(source)
    read_chunks: Callable | None = None  # (path, kind, block_bytes, text_col, label_col) -> raw frames
    clean_label: Callable | None = None  # (kind) -> expression normalising the label column, as ingest does


def family_of(kind) -> Family:
    """The registered family serving a kind (by its `family` attribute)."""
    # Imported here, not above: the families' modules import pipeline.kinds, which imports this module.
    from pipeline.registry import FAMILIES

    if kind.family not in FAMILIES:
        known = sorted(FAMILIES)
        raise ValueError(f"kind {kind.name!r}: unknown family {kind.family!r}; choose from {known}")
    return FAMILIES[kind.family]
