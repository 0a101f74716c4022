"""Tests for the agents registry (agents/__init__.py)."""

from __future__ import annotations

import pytest

from jaxrl import agents
from jaxrl.errors import ConfigError

CONTRACT = (
    "Config",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
)


def test_registered_names():
    assert {"dqn", "vi_tabular"} <= set(agents.AGENTS)
    assert agents.get("dqn") is agents.dqn
    assert agents.get("vi_tabular") is agents.vi_tabular


@pytest.mark.parametrize("name", sorted(agents.AGENTS))
def test_modules_expose_the_contract(name):
    module = agents.get(name)
    missing = [n for n in CONTRACT if not hasattr(module, n)]
    assert not missing, f"{name} lacks {missing}"


def test_unknown_name_lists_registered():
    with pytest.raises(ConfigError, match="dqn") as err:
        agents.get("nope")
    assert "nope" in str(err.value) and "vi_tabular" in str(err.value)
