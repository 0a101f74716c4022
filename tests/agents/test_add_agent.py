"""The "How to add an agent" example of docs/api.md: built from the loops, it works.

The toy agent is the ``python`` code block of that section, executed here as a
module; it is checked against a NumPy loop and run through the agent contract
tests exactly as a registered agent would be.
"""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from jaxrl import agents, envs, testing
from tests import test_agent_contract as contract
from tests.doc_examples import DOC, doc_module

NAME = "toy"
ENV = ("Garnet-v0", {"num_states": 5, "num_actions": 3, "branching": 2})
# The contract case, as it would stand in tests/test_agent_contract.py CASES.
CASE = (*ENV, {"noise_std": 0.1}, {"step_size": 0.9, "noise_std": 0.2})


def _doc_code() -> str:
    text = DOC.read_text()
    section = text.split("### How to add an agent", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/api.md's 'How to add an agent' lacks its python block"
    return match.group(1)


@pytest.fixture(scope="module")
def toy():
    with doc_module("jaxrl_doc_toy_agent", _doc_code()) as module:
        yield module


@pytest.fixture
def registered(toy, monkeypatch):
    monkeypatch.setitem(agents.AGENTS, NAME, toy)
    monkeypatch.setitem(contract.CASES, NAME, CASE)
    return NAME


def test_matches_numpy_relaxed_value_iteration(toy):
    env, env_params = envs.make(ENV[0], **ENV[1])
    config = toy.Config(num_chunks=2, iters_per_chunk=6, step_size=0.7)
    state, metrics = jax.jit(toy.make_train(config, env, env_params))(jax.random.key(0))
    mdp = env_params.mdp
    P, R, g = (np.asarray(x, np.float64) for x in (mdp.P, mdp.R, mdp.gamma))
    q = np.zeros_like(R)
    residuals = []
    for _ in range(12):
        backup = R + g * P @ q.max(-1)
        residuals.append(np.abs(q - backup).max())
        q = 0.3 * q + 0.7 * backup
    np.testing.assert_allclose(state.params, q, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(metrics["dp/residual"], residuals, rtol=1e-5, atol=1e-5)
    assert int(state.step) == 12
    # w = 1 is value iteration (the library's NumPy oracle).
    vi = toy.Config(num_chunks=1, iters_per_chunk=12, step_size=1.0)
    state, _ = jax.jit(toy.make_train(vi, env, env_params))(jax.random.key(0))
    q_vi, _ = testing.np_value_iteration(P, R, g, 12)
    np.testing.assert_allclose(state.params, q_vi, rtol=1e-5, atol=1e-5)


def test_satisfies_the_agent_contract(registered):
    contract.test_module_exposes_the_contract(registered)
    contract.test_train_shapes_run_keeps_state_and_equals_train(registered)
    contract.test_traced_hyperparameters_and_vmapped_seeds(registered)
