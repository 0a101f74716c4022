"""Tests for jaxrl.testing: the probes' closed forms and the NumPy references agree."""

from __future__ import annotations

import numpy as np
import pytest

from jaxrl import testing
from jaxrl.errors import ConfigError

PROBES = {
    "bandit": lambda g: testing.one_step_bandit((1.0, -2.0, 0.5), g),
    "two_state": testing.two_state,
    "chain": lambda g: testing.discounting_chain(5, g, reward=2.0),
}


@pytest.mark.parametrize("name", sorted(PROBES))
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.99])
def test_closed_form_is_bellman_fixed_point(name, gamma):
    probe = PROBES[name](gamma)
    P, R, _, g = testing.np_mdp(probe.mdp)
    q = probe.q_star
    np.testing.assert_allclose(
        testing.np_bellman_optimality(P, R, g, q), q, atol=1e-4 * (1 + q.max())
    )
    np.testing.assert_allclose(probe.v_star, q.max(-1))
    # the closed form agrees with NumPy policy iteration (linear solves)
    np.testing.assert_allclose(
        testing.np_policy_iteration(P, R, g), q, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("name", sorted(PROBES))
def test_terminal_states_absorbing_with_zero_reward(name):
    probe = PROBES[name](0.9)
    P, R, mu0, _ = testing.np_mdp(probe.mdp)
    for t in np.nonzero(probe.terminal)[0]:
        np.testing.assert_allclose(P[t, :, t], 1.0)
        np.testing.assert_allclose(R[t], 0.0)
    assert mu0[probe.terminal].sum() == 0.0


def test_two_state_hand_values():
    probe = testing.two_state(0.5)
    np.testing.assert_allclose(probe.q_star, [[1.5, 3.0], [4.0, 1.5]])


def test_discounting_chain_values_and_errors():
    probe = testing.discounting_chain(4, gamma=0.5)
    np.testing.assert_allclose(probe.q_star[:, 0], [0.25, 0.5, 1.0, 0.0])
    with pytest.raises(ConfigError, match="num_states must be >= 2"):
        testing.discounting_chain(1)


def test_numpy_value_iteration_converges_to_policy_iteration():
    rng = np.random.default_rng(0)
    P, R, _, g = testing.np_mdp(testing.random_mdp(rng, 4, 2, gamma=0.6))
    q, res = testing.np_value_iteration(P, R, g, 60)
    np.testing.assert_allclose(q, testing.np_policy_iteration(P, R, g), atol=1e-5)
    assert res.shape == (60,) and res[-1] < 1e-6


def test_numpy_greedy_ties_lowest_index():
    np.testing.assert_array_equal(
        testing.np_greedy(np.array([[2.0, 2.0, 1.0]])), [[1, 0, 0]]
    )
