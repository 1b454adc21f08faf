"""The family table: each family (pipeline/text, pipeline/prices) registers its reader, rules, feature
builder and packaged sources once; shared code looks a kind's family up here instead of testing names.

Families are found by package name (FAMILY_PACKAGES), so no shared module imports one."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

FAMILY_PACKAGES = {"text": "pipeline.text", "prices": "pipeline.prices"}


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


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    _FAMILIES[family.name] = family
    return family


def family_of(kind) -> Family:
    """The registered family serving a kind (by its `family` attribute), imported on first use."""
    if kind.family not in _FAMILIES:
        if kind.family not in FAMILY_PACKAGES:
            known = sorted(FAMILY_PACKAGES)
            raise ValueError(f"kind {kind.name!r}: unknown family {kind.family!r}; choose from {known}")
        importlib.import_module(FAMILY_PACKAGES[kind.family])
    return _FAMILIES[kind.family]
