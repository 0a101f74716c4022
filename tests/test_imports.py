"""Public API imports, ``__all__`` completeness and the one-way dependency rule."""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("jaxrl", "jaxrl.envs", "jaxrl.agents", "jaxrl.scripts")
# The repo folder behind each installed subpackage (pyproject's package-dir).
FOLDERS = {"jaxrl": "jaxrl", "jaxrl.envs": "envs", "jaxrl.agents": "agents", "jaxrl.scripts": "scripts"}


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        names.append(info.name)
    return names


ALL_MODULES = sorted({m for p in PACKAGES for m in _modules(p)})
SUBPACKAGES = ("jaxrl.envs", "jaxrl.agents", "jaxrl.scripts")


@pytest.mark.parametrize("name", ALL_MODULES)
def test_module_imports_and_all_names_exist(name):
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", ()):
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr!r}"


def _is_core(name: str) -> bool:
    return not any(name == p or name.startswith(p + ".") for p in SUBPACKAGES)


@pytest.mark.parametrize("name", [m for m in ALL_MODULES if _is_core(m)])
def test_core_modules_declare_all(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"


@pytest.mark.parametrize(
    "name", [m for m in ALL_MODULES if m.startswith("jaxrl.") and _is_core(m)]
)
def test_top_level_package_reexports_every_core_module(name):
    import jaxrl

    top = name.split(".")[1]
    if top in ("testing", "__main__"):  # imported explicitly / the command line
        return
    assert top in jaxrl.__all__, f"jaxrl.__all__ lacks module {top!r}"


# jaxrl (core) <- jaxrl.envs <- jaxrl.agents <- jaxrl.scripts
LAYERS = {
    "jaxrl": set(),
    "jaxrl.envs": {"jaxrl"},
    "jaxrl.agents": {"jaxrl", "jaxrl.envs"},
    "jaxrl.scripts": {"jaxrl", "jaxrl.envs", "jaxrl.agents"},
}
BARE = ("envs", "agents", "scripts")


def _layer(module: str) -> str | None:
    """The layer a dotted module name belongs to (None: not ours)."""
    for sub in SUBPACKAGES:
        if module == sub or module.startswith(sub + "."):
            return sub
    return "jaxrl" if module.split(".")[0] == "jaxrl" else None


def _imports(path: pathlib.Path):
    """Yield every absolute module name ``path`` imports (``from jaxrl import envs``
    counts as ``jaxrl.envs``)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            if node.module == "jaxrl":
                yield from (f"jaxrl.{a.name}" for a in node.names)


def _python_files(*folders: str):
    for folder in folders:
        yield from (ROOT / folder).rglob("*.py")


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_dependency_direction(package):
    """jaxrl <- envs <- agents <- scripts: no import goes against the arrow."""
    allowed = LAYERS[package] | {package}
    for path in _python_files(FOLDERS[package]):
        if path == ROOT / "jaxrl" / "__main__.py":  # `python -m jaxrl`: the command line
            continue
        for name in _imports(path):
            layer = _layer(name)
            assert layer is None or layer in allowed, (
                f"{path.relative_to(ROOT)} imports {name} against the dependency direction"
            )


def test_no_bare_top_level_imports():
    """Code, tests and docs import jaxrl.envs / jaxrl.agents / jaxrl.scripts, never
    the bare folder names (which would load a second copy of the modules)."""
    folders = ("jaxrl", "envs", "agents", "scripts", "tests")
    for path in _python_files(*folders):
        for name in _imports(path):
            assert name.split(".")[0] not in BARE, f"{path.relative_to(ROOT)} imports {name}"
    pattern = re.compile(
        r"^\s*(>>> |\.\.\. )?(from (envs|agents|scripts)\b|import [^#\n]*(?<![\w.])(envs|agents|scripts)\b)",
        re.M,
    )
    for path in [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *_python_files(*folders)]:
        hit = pattern.search(path.read_text())
        assert hit is None, f"{path.relative_to(ROOT)}: {hit.group(0).strip()!r}"


@pytest.mark.parametrize("name", BARE)
def test_bare_folder_import_fails_with_one_line(name):
    """From the repo root ``import envs`` finds the folder: it must refuse to load
    (a second copy of the modules) and say what to import instead."""
    code = f"import {name}"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and f"from jaxrl import {name}" in last


def test_only_command_line_tests_import_scripts():
    """Library code is tested where it lives: only the command-line tests
    (tests/scripts/, and the cross-cutting bad-input table that covers the
    command line beside the API) import jaxrl.scripts."""
    for path in _python_files("tests"):
        if path.is_relative_to(ROOT / "tests" / "scripts"):
            continue
        if path == ROOT / "tests" / "test_bad_input.py":
            continue
        for name in _imports(path):
            assert _layer(name) != "jaxrl.scripts", f"{path.relative_to(ROOT)} imports {name}"
