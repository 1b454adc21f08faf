"""The dependency rule, read from the imports: flows -> models -> pipeline; models and pipeline never
import prefect; shared code never imports a family (but each layer's registry, which imports them all),
and families never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("text", "prices")
REGISTRIES = {"pipeline": "pipeline/registry.py", "models": "models/registry.py"}  # the one place per layer


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
        if str(f.relative_to(ROOT)) == REGISTRIES[package]:
            continue  # test_only_the_registry_imports_the_families
        mine = family(".".join(f.relative_to(ROOT).with_suffix("").parts))
        wrong = sorted(m for m in imports(f) if family(m) is not None and family(m) != mine)
        if wrong:
            bad[str(f.relative_to(ROOT))] = wrong
    assert not bad


@pytest.mark.parametrize("package", ["pipeline", "models"])
def test_only_the_registry_imports_the_families_and_it_imports_each_one(package):
    """Families are registered by explicit imports in one module per layer, of that layer's families
    only, and at any depth (a function-level import in another shared module would be a second place)."""
    registry = imports(ROOT / REGISTRIES[package])
    named = {family(m) for m in registry if family(m) is not None and m.split(".")[0] == package}
    assert named == set(FAMILIES)
    other_layer = sorted(m for m in registry if family(m) is not None and m.split(".")[0] != package)
    assert not other_layer
    assert not any("importlib" in m or m == "__import__" for m in registry)


def test_no_module_is_imported_by_name_but_the_declared_kinds():
    """Modules are found by import statements; importlib.import_module only loads $RNNFLOW_KINDS."""
    users = {
        str(f.relative_to(ROOT))
        for package in ("pipeline", "models")
        for f in files(package)
        if "import_module" in f.read_text() or "__import__" in f.read_text()
    }
    assert users == {"pipeline/kinds.py"}


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
