"""Run the examples in the public docstrings (they are part of the documentation)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "jaxrl.ops.bellman",
    "jaxrl.ops.distributional",
    "jaxrl.ops.distributional_dp",
    "jaxrl.ops.dual",
    "jaxrl.ops.lagrangian",
    "jaxrl.ops.gae",
    "jaxrl.ops.policy_gradient",
    "jaxrl.ops.sac",
    "jaxrl.ops.exact_dp",
    "jaxrl.ops.losses",
    "jaxrl.ops.regularized",
    "jaxrl.ops.tsallis",
    "jaxrl.loop",
    "jaxrl.mdp",
    "jaxrl.config",
    "jaxrl.metrics",
    "jaxrl.envs",
    "jaxrl.envs.constrained",
    "jaxrl.envs.stock",
    "jaxrl.envs.risk",
    "jaxrl.envs.offline",
    "jaxrl.scripts.make_datasets",
    "jaxrl.envs.finite_mdp",
    "jaxrl.agents.cmdp_tabular",
    "jaxrl.agents.cmdp_tabular.exact",
    "jaxrl.agents.cmdp_tabular.train",
    "jaxrl.agents.distributional_dp",
    "jaxrl.agents.ppo_lagrangian.networks",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"no examples found in {name}"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
