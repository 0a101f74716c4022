"""The wheel installs ONE import package, ``jaxrl`` (envs/, agents/ and scripts/ as
``jaxrl.envs``, ``jaxrl.agents``, ``jaxrl.scripts``), beside PyPI's own ``envs``.

Building the wheel and installing PyPI's ``envs`` need the package index (CI has it).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FOLDERS = PYPROJECT["tool"]["setuptools"]["package-dir"]
_PYCACHE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _pip(*args: str, python: str = sys.executable) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "--disable-pip-version-check",
    ]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_package_folder_is_listed():
    """A folder with an ``__init__.py`` that pyproject does not list would be left
    out of the wheel silently."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set()
    for package, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *rel.parts]))
    assert found == listed
    assert PYPROJECT["project"]["scripts"]["jaxrl"] == "jaxrl.scripts.cli:main"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    # Build from a copy: setuptools writes build/ and *.egg-info/ into the source.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", *FOLDERS.values()):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(
            ROOT / name,
            src / name,
            **({"ignore": _PYCACHE} if copy is shutil.copytree else {}),
        )
    out = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "-q", "-w", str(out), str(src))
    (path,) = out.glob("jaxrl-*.whl")
    return path


def test_wheel_holds_only_jaxrl(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if ".dist-info/" not in n}
    assert tops == {"jaxrl"}
    for module in (
        "jaxrl/__main__.py",
        "jaxrl/envs/__init__.py",
        "jaxrl/agents/ppo/train.py",
        "jaxrl/scripts/cli.py",
    ):
        assert module in names


@pytest.mark.heavy
def test_installs_beside_pypi_envs(wheel, tmp_path):
    """In a venv that already has PyPI's ``envs``: both import, and removing
    ``envs`` again leaves ours whole."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # jaxrl's dependencies come from this environment (not downloaded again).
    deps = [p for p in site.getsitepackages() if os.path.isdir(p)]
    pathlib.Path(purelib, "deps.pth").write_text("\n".join(deps) + "\n")
    _pip("install", "-q", "--no-deps", "envs==1.4", python=python)
    _pip("install", "-q", "--no-deps", str(wheel), python=python)

    check = (
        "import envs, jaxrl.envs, jaxrl.agents, jaxrl.scripts.cli; "
        "assert callable(envs.env), envs.__file__; "
        "assert jaxrl.envs.make('CartPole-v1')[0].name == 'CartPole-v1'; "
        "assert 'dqn' in jaxrl.agents.AGENTS; "
        "print(envs.__file__); print(jaxrl.envs.__file__)"
    )
    run = lambda code: subprocess.run(  # noqa: E731
        [python, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    proc = run(check)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ours, theirs = proc.stdout.split()[1], proc.stdout.split()[0]
    assert ours.startswith(purelib) and ours.endswith("jaxrl/envs/__init__.py")
    assert theirs.startswith(purelib) and theirs.endswith("envs/__init__.py")

    _pip("uninstall", "-q", "-y", "envs", python=python)
    proc = run("import jaxrl.envs; print(jaxrl.envs.make('Chain-v0')[0].name)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = subprocess.run(
        [python, "-m", "jaxrl", "--help"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: jaxrl")
