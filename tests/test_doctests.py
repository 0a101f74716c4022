"""Run the examples in the public docstrings (they are part of the documentation)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "jaxrl.ops.bellman",
    "jaxrl.ops.distributional",
    "jaxrl.ops.risk",
    "jaxrl.ops.stock",
    # Their examples run whole return-law DP sweeps (about 22 s and 8 s of
    # compiling on 2 cores): heavy, so CI runs them in its second pass.
    pytest.param("jaxrl.ops.distributional_dp", marks=pytest.mark.heavy),
    pytest.param("jaxrl.ops.split_dp", marks=pytest.mark.heavy),
    "jaxrl.ops.divergences",
    "jaxrl.ops.value_losses",
    "jaxrl.ops.awr",
    "jaxrl.ops.recoil",
    "jaxrl.ops.lagrangian",
    "jaxrl.ops.gae",
    "jaxrl.ops.policy_gradient",
    "jaxrl.ops.sac",
    "jaxrl.ops.sampling",
    "jaxrl.ops.exact_dp",
    "jaxrl.ops.losses",
    "jaxrl.ops.regularized",
    "jaxrl.ops.mirror_descent",
    "jaxrl.ops.terminations",
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
    "jaxrl.envs.offline.collect",
    "jaxrl.envs.offline.controllers",
    "jaxrl.envs.offline.dataset",
    "jaxrl.envs.offline.storage",
    "jaxrl.envs.offline.interop",
    "jaxrl.envs.finite_mdp",
    "jaxrl.envs.mdp_generators",
    "jaxrl.agents.cmdp_tabular",
    "jaxrl.agents.cmdp_tabular.exact",
    "jaxrl.agents.cmdp_tabular.lp",
    "jaxrl.agents.cmdp_tabular.train",
    "jaxrl.agents.distributional_dp",
    "jaxrl.agents.ppo_lagrangian.losses",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"no examples found in {name}"
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
