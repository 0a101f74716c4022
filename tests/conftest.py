"""Shared pytest fixtures and options.

* ``--slow`` runs tests marked ``slow`` (long learning runs); without it they are skipped.
* Typed-key reuse checking is on for the whole suite (``jax_debug_key_reuse``).
* XLA compiles with its cheap backend settings (``--xla_backend_optimization_level=0``,
  ``--xla_llvm_disable_expensive_passes``), appended to any ``XLA_FLAGS`` given: the
  suite's programs are tiny and compile-bound, so this halves its wall time. Results
  are compared with tolerances or against runs compiled the same way.
  ``JAXRL_TEST_FULL_OPT=1`` keeps XLA's default optimisation.
"""

from __future__ import annotations

import os

if os.environ.get("JAXRL_TEST_FULL_OPT", "0") in ("", "0"):  # before jax starts XLA
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_backend_optimization_level=0"
        + " --xla_llvm_disable_expensive_passes=true"
    ).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_debug_key_reuse", True)


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
