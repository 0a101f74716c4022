"""Shared pytest fixtures and options.

* ``--slow`` runs tests marked ``slow`` (long learning runs); without it they are skipped.
* ``--heavy`` runs tests marked ``heavy`` (compile-heavy integration tests: whole tables,
  dataset generation, subprocesses and multi-device runs, the agent contract's
  ``jit(vmap(train))`` sweep, whole-run equivalences whose pieces have default tests);
  the default run skips them to stay under 10 minutes on 2 cores, CI runs them in a
  second pass, and ``--slow`` includes them.
* Typed-key reuse checking is on for the whole suite (``jax_debug_key_reuse``).
* The command line's persistent compilation cache is off (``JAXRL_NO_COMPILE_CACHE``),
  so in-process CLI runs write nothing under ``~/.cache``; its tests turn it on.
* The command line's one-JAX-CPU-device-per-core default is off (``JAXRL_CPU_DEVICES=1``),
  so CLI runs, in-process or in subprocesses, keep one device; its tests turn it on.
* Instead the suite compiles through JAX's persistent compilation cache in its own
  temporary directory (one per pytest-xdist worker, so two processes never write and
  read one entry at once): many tests build the same small programs (an agent's test
  module and its contract case, for instance), and a repeated program is loaded, not
  compiled again. A loaded executable is the compiled one, so results are the same.
* The default run compiles at XLA backend optimisation level 1 (``pytest_configure``).
"""

from __future__ import annotations

import os

import jax
import pytest

jax.config.update("jax_debug_key_reuse", True)
os.environ.setdefault("JAXRL_NO_COMPILE_CACHE", "1")
# The command line's default of one JAX CPU device per core is off too (one
# device, in-process and in the suite's subprocesses); its tests turn it on.
os.environ.setdefault("JAXRL_CPU_DEVICES", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow", action="store_true", default=False, help="run slow learning tests"
    )
    parser.addoption(
        "--heavy",
        action="store_true",
        default=False,
        help="run the compile-heavy integration tests (marked heavy; CI runs them)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Compile the default run at XLA's backend optimisation level 1.

    Most of the suite's time is compilation of small programs that then run for
    milliseconds; level 1 compiles them markedly faster than the default level.
    ``--slow`` (long learning runs, where run time dominates) and
    ``JAXRL_TEST_FULL_XLA=1`` keep XLA's defaults, and so does an ``XLA_FLAGS``
    that already sets the level. XLA reads ``XLA_FLAGS`` when the backend starts,
    which is after this hook (pytest-xdist workers run it too). Level 0 is not
    used: there XLA's CPU code generation can round one fused expression
    differently in two fusions, which breaks exact ties such as ``q == max(q)``
    (docs/decisions.md, D23).
    """
    if config.getoption("--slow") or os.environ.get("JAXRL_TEST_FULL_XLA") == "1":
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        level = "--xla_backend_optimization_level=1"
        os.environ["XLA_FLAGS"] = f"{flags} {level}".strip()


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    slow = config.getoption("--slow")
    heavy = slow or config.getoption("--heavy")
    skip_slow = pytest.mark.skip(reason="slow learning test: run with --slow")
    skip_heavy = pytest.mark.skip(reason="heavy integration test: run with --heavy")
    for item in items:
        if "slow" in item.keywords and not slow:
            item.add_marker(skip_slow)
        elif "heavy" in item.keywords and not heavy:
            item.add_marker(skip_heavy)


@pytest.fixture(scope="session", autouse=True)
def _suite_compile_cache(tmp_path_factory: pytest.TempPathFactory):
    """Every compile of the session goes through a per-worker persistent cache."""
    from jax.experimental.compilation_cache import compilation_cache as jcc

    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    previous = {name: getattr(jax.config, name) for name in names}
    path = tmp_path_factory.getbasetemp() / "jax-compilation-cache"
    path.mkdir(exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jcc.reset_cache()
    yield path
    for name, value in previous.items():
        jax.config.update(name, value)
    jcc.reset_cache()


@pytest.fixture
def key() -> jax.Array:
    """A fresh typed key for each test."""
    return jax.random.key(0)
