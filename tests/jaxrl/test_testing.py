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


# ----------------------------------------------------------------------------- numpy_mvi_sweeps


def _loop_mvi_sweep(P, R, gamma, q, alpha, tau, l0):
    """One M-VI sweep with explicit Python loops over s, a, s' (float64)."""
    import math

    num_states, num_actions = R.shape
    v = np.zeros(num_states)
    log_pi = np.zeros((num_states, num_actions))
    for s in range(num_states):
        z = [q[s, a] / tau for a in range(num_actions)]
        top = max(z)
        lse = top + math.log(sum(math.exp(x - top) for x in z))
        for a in range(num_actions):
            log_pi[s, a] = q[s, a] - tau * lse
        v[s] = sum(
            math.exp(log_pi[s, a] / tau) * (q[s, a] - log_pi[s, a])
            for a in range(num_actions)
        )
    out = np.zeros((num_states, num_actions))
    for s in range(num_states):
        for a in range(num_actions):
            nxt = sum(P[s, a, t] * v[t] for t in range(num_states))
            out[s, a] = R[s, a] + alpha * min(max(log_pi[s, a], l0), 0.0) + gamma * nxt
    return out


def _mvi_garnet():
    mdp = testing.random_mdp(np.random.default_rng(3), 9, 4, 0.9, dtype=np.float32)
    return np.asarray(mdp.P), np.asarray(mdp.R), float(mdp.gamma)


class TestNumpyMviSweeps:
    def test_matches_explicit_loops(self):
        P, R, gamma = _mvi_garnet()
        rng = np.random.default_rng(0)
        q0 = rng.normal(size=(2, *R.shape)).astype(np.float32)
        q, residuals = testing.numpy_mvi_sweeps(
            P, R, gamma, q0, alpha=0.9, tau=0.3, l0=-1.0, num_sweeps=2
        )
        for n in range(2):
            ref = q0[n].astype(np.float64)
            res_ref = []
            for _ in range(2):
                nxt = _loop_mvi_sweep(
                    P.astype(np.float64), R, gamma, ref, 0.9, 0.3, -1.0
                )
                res_ref.append(np.abs(nxt - ref).max())
                ref = nxt
            np.testing.assert_allclose(q[n], ref, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(residuals[n], res_ref, rtol=1e-5, atol=1e-5)

    def test_noise_is_added_after_the_backup(self):
        P, R, gamma = _mvi_garnet()
        q0 = np.zeros((1, *R.shape), np.float32)
        kw = {"alpha": 0.9, "tau": 0.1, "l0": -1.0, "num_sweeps": 1}
        clean, _ = testing.numpy_mvi_sweeps(P, R, gamma, q0, **kw)
        noisy, _ = testing.numpy_mvi_sweeps(
            P, R, gamma, q0, noise_std=0.5, rng=np.random.default_rng(7), **kw
        )
        eps = np.random.default_rng(7).standard_normal(R.shape, dtype=np.float32)
        np.testing.assert_allclose(noisy[0] - clean[0], 0.5 * eps, atol=1e-6)

    def test_rejects_zero_temperature(self):
        P, R, gamma = _mvi_garnet()
        with pytest.raises(ValueError, match="tau > 0"):
            testing.numpy_mvi_sweeps(
                P, R, gamma, np.zeros((1, *R.shape), np.float32),
                alpha=0.9, tau=0.0, l0=-1.0, num_sweeps=1,
            )  # fmt: skip


# ----------------------------------------------------------------------------- numpy_mvi_sweeps_batched


def _loop_mviq_sweep(P, R, gamma, q_table, alpha, tau, l0, q):
    """One MVI(q) sweep, float64 loops; the normaliser psi by Brent's method."""
    from scipy import optimize

    num_states, num_actions = R.shape
    v = np.zeros(num_states)
    log_pi = np.zeros((num_states, num_actions))
    for s in range(num_states):
        z = q_table[s] / tau

        def exp_q(x):
            if q == 1.0:
                return np.exp(x)
            return np.maximum(1.0 + (q - 1.0) * x, 0.0) ** (1.0 / (q - 1.0))

        psi = optimize.brentq(
            lambda p, z=z: exp_q(z - p).sum() - 1.0, z.max() - 50.0, z.max() + 50.0,
            xtol=1e-14,
        )  # fmt: skip
        pi = exp_q(z - psi)
        pi = pi / pi.sum()
        floor = -np.inf if q == 1.0 else -1.0 / (q - 1.0)
        log_pi[s] = tau * np.maximum(z - psi, floor)
        v[s] = pi @ (q_table[s] - log_pi[s])
    bonus = alpha * np.clip(log_pi, l0, 0.0)
    return R + bonus + gamma * np.einsum("sat,t->sa", P, v)


class TestNumpyMviSweepsBatched:
    @pytest.mark.parametrize("q", [1.0, 1.5, 2.0, 3.0])
    def test_matches_explicit_loops(self, q):
        P, R, gamma = _mvi_garnet()
        q0 = np.random.default_rng(1).normal(size=(3, *R.shape)).astype(np.float32)
        kw = {"alpha": 0.9, "tau": 0.3, "l0": -1.0, "num_sweeps": 2}
        out, residuals = testing.numpy_mvi_sweeps_batched(P, R, gamma, q0, q=q, **kw)
        assert out.dtype == np.float32 and residuals.shape == (3, 2)
        for n in range(3):
            ref, res_ref = q0[n].astype(np.float64), []
            for _ in range(2):
                nxt = _loop_mviq_sweep(
                    P.astype(np.float64), R, gamma, ref, 0.9, 0.3, -1.0, q
                )
                res_ref.append(np.abs(nxt - ref).max())
                ref = nxt
            np.testing.assert_allclose(out[n], ref, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(residuals[n], res_ref, rtol=1e-5, atol=1e-5)

    def test_q_one_equals_the_seed_loop(self):
        P, R, gamma = _mvi_garnet()
        q0 = np.random.default_rng(2).normal(size=(4, *R.shape)).astype(np.float32)
        kw = {"alpha": 0.9, "tau": 0.1, "l0": -1.0, "num_sweeps": 3}
        batched = testing.numpy_mvi_sweeps_batched(P, R, gamma, q0, **kw)
        looped = testing.numpy_mvi_sweeps(P, R, gamma, q0, **kw)
        for got, want in zip(batched, looped, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

    def test_noise_is_one_draw_per_sweep_for_all_seeds(self):
        P, R, gamma = _mvi_garnet()
        q0 = np.zeros((2, *R.shape), np.float32)
        kw = {"alpha": 0.9, "tau": 0.1, "l0": -1.0, "num_sweeps": 1}
        clean, _ = testing.numpy_mvi_sweeps_batched(P, R, gamma, q0, **kw)
        noisy, _ = testing.numpy_mvi_sweeps_batched(
            P, R, gamma, q0, noise_std=0.5, rng=np.random.default_rng(7), **kw
        )
        eps = np.random.default_rng(7).standard_normal(q0.shape, dtype=np.float32)
        np.testing.assert_allclose(noisy - clean, 0.5 * eps, atol=1e-6)

    @pytest.mark.parametrize(
        ("tau", "q", "match"), [(0.0, 1.0, "tau > 0"), (0.1, 0.5, "q >= 1")]
    )
    def test_rejects_bad_arguments(self, tau, q, match):
        P, R, gamma = _mvi_garnet()
        with pytest.raises(ValueError, match=match):
            testing.numpy_mvi_sweeps_batched(
                P, R, gamma, np.zeros((1, *R.shape), np.float32),
                alpha=0.9, tau=tau, q=q, l0=-1.0, num_sweeps=1,
            )  # fmt: skip
