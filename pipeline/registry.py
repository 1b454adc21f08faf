"""The one place the data families are named: each family's package (pipeline/text, pipeline/prices)
declares its Family (reader, rules, feature builder, packaged sources); this module imports them and is
the only shared module that may (tests/test_layout.py). pipeline.families.family_of looks kinds up here.

A new family is one more import and one more entry below (docs/adding-a-family.md)."""

from __future__ import annotations

from pipeline import prices, text
from pipeline.families import Family

FAMILIES: dict[str, Family] = {family.name: family for family in (text.FAMILY, prices.FAMILY)}
