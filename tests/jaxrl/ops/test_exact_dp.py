"""Tests for jaxrl.ops.exact_dp against NumPy loops, np.linalg.solve, closed forms."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized

from jaxrl import testing
from jaxrl.mdp import default_float_dtype
from jaxrl.ops import exact_dp

S, A = 5, 3
RTOL = 1e-4 if default_float_dtype() == jnp.float32 else 1e-10


def _setup(seed: int = 0, gamma: float = 0.9, with_cost: bool = False):
    rng = np.random.default_rng(seed)
    mdp = testing.random_mdp(rng, S, A, gamma=gamma, with_cost=with_cost)
    pi = testing.random_policy(rng, S, A)
    q = rng.normal(size=(S, A))
    return mdp, pi, q, testing.np_mdp(mdp)


def _close(x, y, scale: float = 1.0):
    np.testing.assert_allclose(
        np.asarray(x, np.float64), y, rtol=RTOL, atol=RTOL * scale
    )


class PolicyModelTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_reward_and_transition_match_loops(self):
        mdp, pi, _, (P, R, _, _) = _setup()
        r_pi = np.zeros(S)
        P_pi = np.zeros((S, S))
        for s in range(S):
            for a in range(A):
                r_pi[s] += pi[s, a] * R[s, a]
                for t in range(S):
                    P_pi[s, t] += pi[s, a] * P[s, a, t]
        _close(self.variant(exact_dp.policy_reward)(mdp, pi), r_pi)
        _close(self.variant(exact_dp.policy_transition)(mdp, pi), P_pi)
        np.testing.assert_allclose(
            exact_dp.policy_transition(mdp, pi).sum(-1), 1.0, rtol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_cost_override(self):
        mdp, pi, _, _ = _setup(with_cost=True)
        C = np.asarray(mdp.C, np.float64)
        _close(self.variant(exact_dp.policy_reward)(mdp, pi, mdp.C), (pi * C).sum(-1))


class PolicyEvaluationTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("gamma_0", 0.0), ("gamma_0_5", 0.5), ("gamma_0_95", 0.95)
    )
    def test_matches_linalg_solve(self, gamma):
        mdp, pi, _, (P, R, _, g) = _setup(1, gamma)
        v = self.variant(exact_dp.policy_evaluation)(mdp, pi)
        v_ref = testing.np_policy_evaluation(P, R, g, pi)
        _close(v, v_ref, scale=1.0 / (1.0 - gamma))

    @chex.variants(with_jit=True, without_jit=True)
    def test_q_is_fixed_point_of_expectation_backup(self):
        mdp, pi, _, (P, R, _, g) = _setup(2)
        q_pi = self.variant(exact_dp.policy_q)(mdp, pi)
        _close(q_pi, testing.np_policy_q(P, R, g, pi), scale=10.0)
        _close(
            exact_dp.bellman_expectation(mdp, q_pi, pi), np.asarray(q_pi), scale=10.0
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_cost_value(self):
        mdp, pi, _, (P, _, _, g) = _setup(3, with_cost=True)
        C = np.asarray(mdp.C, np.float64)
        v_c = self.variant(exact_dp.policy_evaluation)(mdp, pi, mdp.C)
        _close(v_c, testing.np_policy_evaluation(P, C, g, pi), scale=10.0)


class QFromVTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_loop(self):
        mdp, _, _, (P, R, _, g) = _setup(4)
        v = np.linspace(-1.0, 2.0, S)
        ref = np.zeros((S, A))
        for s in range(S):
            for a in range(A):
                ref[s, a] = R[s, a] + g * sum(P[s, a, t] * v[t] for t in range(S))
        _close(self.variant(exact_dp.q_from_v)(mdp, v), ref, scale=3.0)


class BellmanBackupTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_optimality_matches_loop(self):
        mdp, _, q, (P, R, _, g) = _setup(5)
        _close(
            self.variant(exact_dp.bellman_optimality)(mdp, q),
            testing.np_bellman_optimality(P, R, g, q),
            scale=3.0,
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_expectation_matches_loop(self):
        mdp, pi, q, (P, R, _, g) = _setup(6)
        ref = np.zeros((S, A))
        for s in range(S):
            for a in range(A):
                ref[s, a] = R[s, a] + g * sum(
                    P[s, a, t] * sum(pi[t, b] * q[t, b] for b in range(A))
                    for t in range(S)
                )
        _close(self.variant(exact_dp.bellman_expectation)(mdp, q, pi), ref, scale=3.0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_residual(self):
        mdp, _, q, (P, R, _, g) = _setup(7)
        ref = np.max(np.abs(testing.np_bellman_optimality(P, R, g, q) - q))
        _close(self.variant(exact_dp.bellman_residual)(mdp, q), ref, scale=3.0)

    def test_expectation_of_greedy_equals_optimality(self):
        mdp, _, q, _ = _setup(8)
        np.testing.assert_allclose(
            exact_dp.bellman_expectation(mdp, q, exact_dp.greedy_policy(q)),
            exact_dp.bellman_optimality(mdp, q),
            rtol=1e-6,
        )


class PolicyImprovementTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_greedy_ties_lowest_index(self):
        q = jnp.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [-1.0, -3.0, -0.5]])
        want = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
        got = self.variant(exact_dp.greedy_policy)(q)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, testing.np_greedy(np.asarray(q)))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("cold", 0.1), ("warm", 1.0), ("hot", 10.0))
    def test_softmax_and_soft_value(self, tau):
        _, _, q, _ = _setup(9)
        z = np.exp(q / tau - (q / tau).max(-1, keepdims=True))
        pi_ref = z / z.sum(-1, keepdims=True)
        v_ref = tau * np.log(np.exp(q / tau).sum(-1))
        _close(self.variant(exact_dp.softmax_policy)(q, tau), pi_ref)
        _close(self.variant(exact_dp.soft_value)(q, tau), v_ref, scale=5.0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_soft_backup_matches_loop_and_tends_to_hard(self):
        mdp, _, q, (P, R, _, g) = _setup(10)
        tau = 0.5
        v = tau * np.log(np.exp(q / tau).sum(-1))
        ref = R + g * np.einsum("sat,t->sa", P, v)
        _close(
            self.variant(exact_dp.soft_bellman_optimality)(mdp, q, tau), ref, scale=5.0
        )
        cold = exact_dp.soft_bellman_optimality(mdp, q, 1e-3)
        hard = testing.np_bellman_optimality(P, R, g, q)
        # 0 <= soft - hard <= gamma * tau * log(A)
        diff = np.asarray(cold, np.float64) - hard
        assert np.all(diff >= -1e-5) and np.all(diff <= g * 1e-3 * np.log(A) + 1e-5)

    def test_traced_tau_no_retrace(self):
        _, _, q, _ = _setup(11)
        f = jax.jit(chex.assert_max_traces(exact_dp.softmax_policy, n=1))
        for tau in (0.1, 0.2, 0.3):
            f(q, jnp.float32(tau))


class ValueIterationTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy_loop(self):
        mdp, _, q0, (P, R, _, g) = _setup(12)
        vi = self.variant(functools.partial(exact_dp.value_iteration, num_iters=15))
        q, res = vi(mdp, q0=q0)
        q_ref, res_ref = testing.np_value_iteration(P, R, g, 15, q0)
        _close(q, q_ref, scale=10.0)
        _close(res, res_ref, scale=10.0)
        assert res.shape == (15,)

    def test_converges_to_linear_solve_value_of_its_greedy_policy(self):
        mdp, _, _, (P, R, _, g) = _setup(13, gamma=0.8)
        q, res = jax.jit(exact_dp.value_iteration, static_argnums=1)(mdp, 150)
        pi = exact_dp.greedy_policy(q)
        v_pi = testing.np_policy_evaluation(P, R, g, np.asarray(pi, np.float64))
        _close(np.max(np.asarray(q), -1), v_pi, scale=10.0)
        _close(q, testing.np_policy_iteration(P, R, g), scale=10.0)
        # contraction: residuals shrink at least geometrically with rate gamma
        res = np.asarray(res, np.float64)
        assert np.all(res[1:20] <= g * res[:19] + 1e-6)


PROBES = (
    ("bandit", lambda g: testing.one_step_bandit((0.3, -1.0, 0.7), g)),
    ("two_state", testing.two_state),
    ("chain", lambda g: testing.discounting_chain(6, g)),
)


def _solve_all(mdp):
    """All solvers in one compiled function (one compile per MDP shape)."""
    return {
        "optimal_q": exact_dp.optimal_q(mdp),
        "vi": exact_dp.value_iteration(mdp, 80)[0],
        "pi": exact_dp.policy_iteration(mdp, 8),
        "j_star": exact_dp.optimal_performance(mdp),
    }


class SolversOnProbesTest(parameterized.TestCase):
    @chex.variants(with_jit=True)
    @parameterized.named_parameters(*[(n, f) for n, f in PROBES])
    def test_closed_forms(self, make_probe):
        probe = make_probe(0.7)
        qs = probe.q_star
        scale = np.abs(qs).max() + 1.0
        out = self.variant(_solve_all)(probe.mdp)
        _close(out["optimal_q"], qs, scale=scale)
        _close(out["vi"], qs, scale=scale)
        q_pi, res = out["pi"]
        _close(q_pi, qs, scale=scale)
        assert float(res[-1]) < 1e-4 * scale
        j_star = float(np.asarray(probe.mdp.mu0, np.float64) @ probe.v_star)
        _close(out["j_star"], j_star, scale=scale)

    @chex.variants(with_jit=True)
    def test_matches_numpy_policy_iteration(self):
        mdp, _, _, (P, R, _, g) = _setup(14, gamma=0.95)
        out = self.variant(_solve_all)(mdp)
        q_ref = testing.np_policy_iteration(P, R, g)
        _close(out["pi"][0], q_ref, scale=20.0)
        _close(out["optimal_q"], q_ref, scale=20.0)
        assert float(out["pi"][1][-1]) < 1e-3


class PerformanceTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_performance_suboptimality_gap(self):
        mdp, pi, _, (P, R, mu0, g) = _setup(15)
        q_star = testing.np_policy_iteration(P, R, g)
        v_pi = testing.np_policy_evaluation(P, R, g, pi)
        j_pi = mu0 @ v_pi
        j_star = mu0 @ q_star.max(-1)
        _close(self.variant(exact_dp.performance)(mdp, pi), j_pi, scale=10.0)
        _close(
            self.variant(exact_dp.suboptimality)(mdp, pi, q_star),
            j_star - j_pi,
            scale=10.0,
        )
        gap = self.variant(exact_dp.value_gap)(mdp, pi, q_star)
        _close(gap, q_star.max(-1) - v_pi, scale=10.0)
        assert np.all(np.asarray(gap) >= -1e-4)
        opt = exact_dp.suboptimality(mdp, exact_dp.greedy_policy(q_star), q_star)
        assert abs(float(opt)) < 1e-4


class BatchedTest(parameterized.TestCase):
    def test_vmap_over_mdps_equals_loop(self):
        rng = np.random.default_rng(16)
        mdps = [testing.random_mdp(rng, S, A, gamma=g) for g in (0.3, 0.6, 0.9)]
        batch = jax.tree.map(lambda *x: jnp.stack(x), *mdps)
        got = jax.jit(jax.vmap(exact_dp.optimal_q))(batch)
        vi_q, _ = jax.vmap(lambda m: exact_dp.value_iteration(m, 10))(batch)
        for i, m in enumerate(mdps):
            P, R, _, g = testing.np_mdp(m)
            _close(got[i], testing.np_policy_iteration(P, R, g), scale=10.0)
            _close(vi_q[i], testing.np_value_iteration(P, R, g, 10)[0], scale=10.0)

    def test_dtype_follows_mdp(self):
        mdp, pi, _, _ = _setup(17)
        assert exact_dp.policy_evaluation(mdp, pi).dtype == default_float_dtype()
        assert exact_dp.value_iteration(mdp, 2)[1].dtype == default_float_dtype()
