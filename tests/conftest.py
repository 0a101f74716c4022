"""Shared pytest fixtures and options.

* ``--slow`` runs tests marked ``slow`` (long learning runs); without it they are skipped.
* Typed-key reuse checking is on for the whole suite (``jax_debug_key_reuse``).
* The command line's persistent compilation cache is off (``JAXRL_NO_COMPILE_CACHE``),
  so in-process CLI runs write nothing under ``~/.cache``; its tests turn it on.
"""

from __future__ import annotations

import os

import jax
import pytest

jax.config.update("jax_debug_key_reuse", True)
os.environ.setdefault("JAXRL_NO_COMPILE_CACHE", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", default=False, help="run slow learning tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow learning test: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def key() -> jax.Array:
    """A fresh typed key for each test."""
    return jax.random.key(0)
