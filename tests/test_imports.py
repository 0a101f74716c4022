"""Public API imports, ``__all__`` completeness and the one-way dependency rule."""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("jaxrl", "envs", "agents", "scripts")


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        names.append(info.name)
    return names


ALL_MODULES = [m for p in PACKAGES for m in _modules(p)]


@pytest.mark.parametrize("name", ALL_MODULES)
def test_module_imports_and_all_names_exist(name):
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", ()):
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


@pytest.mark.parametrize("name", [m for m in ALL_MODULES if m.startswith("jaxrl")])
def test_core_modules_declare_all(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"


@pytest.mark.parametrize("name", [m for m in ALL_MODULES if m.startswith("jaxrl.")])
def test_top_level_package_reexports_every_core_module(name):
    import jaxrl

    top = name.split(".")[1]
    if top in ("testing",):  # test utilities are imported explicitly
        return
    assert top in jaxrl.__all__, f"jaxrl.__all__ lacks module {top!r}"


LAYERS = {"jaxrl": set(), "envs": {"jaxrl"}, "agents": {"jaxrl", "envs"}}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_dependency_direction(package):
    """jaxrl <- envs <- agents <- scripts: no import goes against the arrow."""
    forbidden = set(PACKAGES) - LAYERS[package] - {package}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            bad = forbidden.intersection(tops)
            assert not bad, f"{path.relative_to(ROOT)} imports {bad} against the dependency direction"
