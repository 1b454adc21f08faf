"""The dependency rule, read from the imports: flows -> models -> pipeline; models and pipeline never
import prefect; shared code never imports a family, and families never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("text", "prices")


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from pipeline import text`
    return found


def family(module: str) -> str | None:
    parts = module.split(".")
    return (
        parts[1] if len(parts) > 1 and parts[0] in ("pipeline", "models") and parts[1] in FAMILIES else None
    )


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["pipeline", "models"])
def test_the_lower_layers_never_import_upward_or_prefect(package):
    upward = ("flows", "prefect", "deployments") + (("models",) if package == "pipeline" else ())
    bad = {
        str(f.relative_to(ROOT)): sorted(m for m in imports(f) if m.split(".")[0] in upward)
        for f in files(package)
    }
    assert not {f: m for f, m in bad.items() if m}


@pytest.mark.parametrize("package", ["pipeline", "models"])
def test_shared_code_never_imports_a_family_and_families_never_import_each_other(package):
    bad = {}
    for f in files(package):
        mine = family(".".join(f.relative_to(ROOT).with_suffix("").parts))
        wrong = sorted(m for m in imports(f) if family(m) is not None and family(m) != mine)
        if wrong:
            bad[str(f.relative_to(ROOT))] = wrong
    assert not bad


def test_bench_never_imports_the_tests():
    """bench/ runs from a checkout without pytest's helpers: shared helpers live in the packages
    (e.g. deployments/s3_server.py), not under tests/."""
    bad = {
        str(f.relative_to(ROOT)): sorted(m for m in imports(f) if m.split(".")[0] == "tests")
        for f in files("bench")
    }
    assert not {f: m for f, m in bad.items() if m}


def test_each_family_has_its_sub_package_on_both_sides():
    for package in ("pipeline", "models"):
        for name in FAMILIES:
            assert (ROOT / package / name / "__init__.py").exists()
