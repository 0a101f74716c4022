"""Tests for jaxrl.ops.mirror_descent (MD-VI) against NumPy references and closed forms."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jaxrl import testing
from jaxrl.agents import mvi_tabular
from jaxrl.errors import ConfigError
from jaxrl.ops import exact_dp, mirror_descent, regularized

# ----------------------------------------------------------------------------- references


def _np_md_policy(q, pi_prev, lam, tau):
    """pi ∝ pi_prev ** beta * exp(q / (lam + tau)), one state, float64 (no logs)."""
    q, pi_prev = np.asarray(q, np.float64), np.asarray(pi_prev, np.float64)
    beta = lam / (lam + tau)
    w = pi_prev**beta * np.exp((q - q.max()) / (lam + tau))
    return w / w.sum()


def _np_md_value(q, pi_prev, lam, tau):
    """<pi, q - lam ln(pi / pi_prev) - tau ln pi> at the greedy pi, one state."""
    pi = _np_md_policy(q, pi_prev, lam, tau)
    terms = [
        pi[a] * (q[a] - lam * np.log(pi[a] / pi_prev[a]) - tau * np.log(pi[a]))
        for a in range(len(q))
    ]
    return float(np.sum(terms))


def _np_md_vi(P, R, gamma, q0, pi0, lam, tau, noise):
    """MD-VI loop over sweeps, states and actions: (qs[K + 1], pis[K + 1])."""
    S, A = R.shape
    qs, pis = [np.array(q0, np.float64)], [np.array(pi0, np.float64)]
    for eps in noise:
        q, pi = qs[-1], pis[-1]
        v = np.array([_np_md_value(q[s], pi[s], lam, tau) for s in range(S)])
        pi_next = np.stack([_np_md_policy(q[s], pi[s], lam, tau) for s in range(S)])
        q_next = np.zeros((S, A))
        for s in range(S):
            for a in range(A):
                q_next[s, a] = R[s, a] + gamma * sum(
                    P[s, a, t] * v[t] for t in range(S)
                )
        qs.append(q_next + eps)
        pis.append(pi_next)
    return qs, pis


def _np_soft_optimal_q(P, R, gamma, tau, tol=1e-13):
    """q*_tau by soft value iteration to convergence (float64)."""
    q = np.zeros(R.shape)
    for _ in range(100_000):
        m = q.max(-1)
        v = m + tau * np.log(np.exp((q - m[:, None]) / tau).sum(-1))
        q_new = R + gamma * np.einsum("sat,t->sa", P, v)
        if np.max(np.abs(q_new - q)) < tol:
            return q_new
        q = q_new
    raise AssertionError("soft VI did not converge")


def _mdp(seed, S=6, A=3, gamma=0.9):
    return testing.random_mdp(np.random.default_rng(seed), S, A, gamma)


def _states(seed, b=7, a=4, scale=2.0):
    rng = np.random.default_rng(seed)
    q = (scale * rng.normal(size=(b, a))).astype(np.float32)
    pi_prev = rng.dirichlet(np.ones(a), size=b)
    return q, pi_prev, np.log(pi_prev).astype(np.float32)


# ----------------------------------------------------------------------------- per state


class MdLogPolicyTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("soft_only", 0.0, 0.3),
        ("kl_only", 0.5, 0.0),
        ("beta_half", 0.2, 0.2),
        ("beta_0_99", 0.99, 0.01),
        ("large", 5.0, 1.0),
    )
    def test_matches_numpy(self, lam, tau):
        q, pi_prev, log_pi_prev = _states(0)
        got = self.variant(jax.vmap(mirror_descent.md_log_policy, (0, 0, None, None)))(
            q, log_pi_prev, lam, tau
        )
        want = np.stack(
            [_np_md_policy(q[i], pi_prev[i], lam, tau) for i in range(len(q))]
        )
        np.testing.assert_allclose(np.exp(got), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            mirror_descent.md_policy(q[0], log_pi_prev[0], lam, tau),
            want[0],
            rtol=1e-5,
            atol=1e-6,
        )

    def test_maximises_the_regularised_objective(self):
        """No random policy beats pi_{k+1} on <pi, q> - lam KL(pi||pi_k) + tau H(pi)."""
        q, pi_prev, log_pi_prev = _states(1, b=1)
        lam, tau = 0.4, 0.1

        def objective(pi):
            return float(
                np.sum(pi * q[0])
                - lam * np.sum(pi * np.log(pi / pi_prev[0]))
                - tau * np.sum(pi * np.log(pi))
            )

        best = np.exp(
            np.asarray(mirror_descent.md_log_policy(q[0], log_pi_prev[0], lam, tau))
        ).astype(np.float64)
        best = best / best.sum()
        rng = np.random.default_rng(2)
        for pi in rng.dirichlet(np.ones(q.shape[-1]), size=500):
            self.assertLessEqual(objective(pi), objective(best) + 1e-6)
        # and the maximum is md_value
        np.testing.assert_allclose(
            mirror_descent.md_value(q[0], log_pi_prev[0], lam, tau),
            objective(best),
            rtol=1e-5,
        )

    def test_zero_probability_actions(self):
        """ln 0 = -inf stays at zero probability (lam > 0) or is ignored (lam = 0)."""
        log_pi_prev = jnp.log(jnp.array([0.0, 0.5, 0.5]))
        q = jnp.array([5.0, 0.0, 1.0])
        kept = mirror_descent.md_policy(q, log_pi_prev, 0.5, 0.5)
        np.testing.assert_allclose(kept, _np_md_policy(q, [0.0, 0.5, 0.5], 0.5, 0.5))
        self.assertEqual(float(kept[0]), 0.0)
        soft = mirror_descent.md_policy(q, log_pi_prev, 0.0, 0.5)
        np.testing.assert_allclose(soft, regularized.softmax_policy(q, 0.5), rtol=1e-6)
        self.assertTrue(
            bool(jnp.isfinite(mirror_descent.md_value(q, log_pi_prev, 0.0, 0.5)))
        )

    @parameterized.named_parameters(
        ("negative_kl", -0.1, 0.1, "kl_weight"),
        ("negative_entropy", 0.1, -0.1, "entropy_weight"),
        ("both_zero", 0.0, 0.0, "kl_weight + entropy_weight"),
    )
    def test_bad_weights_are_one_line_errors(self, lam, tau, needle):
        for fn in (mirror_descent.md_log_policy, mirror_descent.md_value):
            with self.assertRaises(ConfigError) as ctx:
                fn(jnp.zeros(2), jnp.log(jnp.full(2, 0.5)), lam, tau)
            self.assertIn(needle, str(ctx.exception))
            self.assertNotIn("\n", str(ctx.exception))


class MdValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("soft_only", 0.0, 0.3),
        ("kl_only", 0.5, 0.0),
        ("mixed", 0.3, 0.1),
    )
    def test_matches_expectation_form(self, lam, tau):
        q, pi_prev, log_pi_prev = _states(3)
        got = self.variant(jax.vmap(mirror_descent.md_value, (0, 0, None, None)))(
            q, log_pi_prev, lam, tau
        )
        want = [_np_md_value(q[i], pi_prev[i], lam, tau) for i in range(len(q))]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_no_kl_is_the_soft_value(self):
        q, _, log_pi_prev = _states(4)
        for i in range(len(q)):
            np.testing.assert_allclose(
                mirror_descent.md_value(q[i], log_pi_prev[i], 0.0, 0.2),
                regularized.soft_value(q[i], 0.2),
                rtol=1e-6,
            )


# ----------------------------------------------------------------------------- tabular


def _run_md(mdp, lam, tau, noise, q0=None, log_pi0=None):
    """K jax MD-VI iterations (lax.scan): stacked (q[K], log_pi[K])."""
    S, A = mdp.num_states, mdp.num_actions
    q0 = jnp.zeros((S, A)) if q0 is None else q0
    log_pi0 = jnp.full((S, A), -np.log(A)) if log_pi0 is None else log_pi0

    def body(carry, eps):
        q, log_pi = mirror_descent.md_vi_operator(mdp, *carry, lam, tau)
        # float64 weights or noise (JAX_ENABLE_X64) promote: keep the carry's dtype
        q = (q + eps).astype(carry[0].dtype)
        log_pi = log_pi.astype(carry[1].dtype)
        return (q, log_pi), (q, log_pi)

    _, (qs, log_pis) = jax.lax.scan(body, (q0, log_pi0), jnp.asarray(noise))
    return qs, log_pis


def _run_mvi(mdp, alpha, tau, noise, q0):
    """K M-VI iterations with the project's M-VI operator (mvi_tabular.backup)."""
    config = mvi_tabular.Config(alpha=alpha, tau=tau)

    def body(q, eps):
        # float64 weights or noise (JAX_ENABLE_X64) promote: keep the carry's dtype
        q = (mvi_tabular.backup(mdp, q, config) + eps).astype(q.dtype)
        return q, (q, jnp.log(mvi_tabular.policy(q, config)))

    _, (qs, log_pis_next) = jax.lax.scan(body, q0, jnp.asarray(noise))
    return qs, log_pis_next


class MdViOperatorTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("exact_mixed", 0.3, 0.1, 0.0),
        ("exact_kl_only", 0.5, 0.0, 0.0),
        ("noisy_mixed", 0.3, 0.1, 0.3),
        ("noisy_soft_only", 0.0, 0.2, 0.3),
    )
    def test_matches_numpy_loop(self, lam, tau, sigma):
        mdp = _mdp(5)
        P, R, _, gamma = testing.np_mdp(mdp)
        S, A = R.shape
        noise = sigma * np.random.default_rng(6).normal(size=(6, S, A))
        q0 = np.random.default_rng(7).normal(size=(S, A))
        pi0 = testing.random_policy(np.random.default_rng(8), S, A)
        want_q, want_pi = _np_md_vi(P, R, gamma, q0, pi0, lam, tau, noise)

        step = self.variant(mirror_descent.md_vi_operator)
        q = jnp.asarray(q0, jnp.float32)
        log_pi = jnp.asarray(np.log(pi0), jnp.float32)
        for k in range(len(noise)):
            q, log_pi = step(mdp, q, log_pi, lam, tau)
            q = q + jnp.asarray(noise[k], jnp.float32)
            np.testing.assert_allclose(q, want_q[k + 1], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(
                jnp.exp(log_pi), want_pi[k + 1], rtol=1e-4, atol=1e-5
            )

    def test_no_kl_is_soft_value_iteration(self):
        mdp = _mdp(9)
        q = jnp.asarray(np.random.default_rng(10).normal(size=(6, 3)), jnp.float32)
        log_pi = jnp.log(
            jnp.asarray(testing.random_policy(np.random.default_rng(1), 6, 3))
        )
        got, _ = mirror_descent.md_vi_operator(mdp, q, log_pi, 0.0, 0.25)
        np.testing.assert_allclose(
            got, exact_dp.soft_bellman_optimality(mdp, q, 0.25), rtol=1e-6, atol=1e-6
        )

    @parameterized.named_parameters(
        ("pure_kl_noisy", 0.2, 0.0, 0.3),
        ("beta_0_8_noisy", 0.2, 0.05, 0.3),
        ("beta_0_8_exact", 0.2, 0.05, 0.0),
    )
    def test_policy_is_softmax_of_discounted_sum_of_past_q(self, lam, tau, sigma):
        """ln pi_{k+1} = log_softmax(sum_j beta^{k-j} q_j / (lam + tau)) from a uniform pi_0."""
        mdp = _mdp(11)
        S, A = mdp.num_states, mdp.num_actions
        noise = sigma * np.random.default_rng(12).normal(size=(8, S, A))
        q0 = np.random.default_rng(13).normal(size=(S, A)).astype(np.float32)
        qs, log_pis = _run_md(mdp, lam, tau, noise, q0=jnp.asarray(q0))
        history = np.concatenate([q0[None], np.asarray(qs, np.float64)])  # q_0..q_K
        beta = lam / (lam + tau)
        for k in range(len(noise)):  # log_pis[k] is ln pi_{k+1}, from q_0..q_k
            weights = beta ** np.arange(k, -1, -1)
            psi = np.einsum("j,jsa->sa", weights, history[: k + 1]) / (lam + tau)
            want = np.exp(psi - psi.max(-1, keepdims=True))
            want /= want.sum(-1, keepdims=True)
            np.testing.assert_allclose(np.exp(log_pis[k]), want, rtol=1e-4, atol=1e-6)

    @parameterized.named_parameters(
        ("beta_half", 0.25, 0.25),
        ("beta_0_9", 0.9, 0.1),
        ("soft_only", 0.0, 0.3),
    )
    def test_converges_to_the_entropy_regularised_optimum(self, lam, tau):
        """Fixed point at tau > 0: q*_tau and softmax(q*_tau / tau) (KL term vanishes)."""
        mdp = _mdp(14, gamma=0.8)
        P, R, _, gamma = testing.np_mdp(mdp)
        q_star = _np_soft_optimal_q(P, R, gamma, tau)
        pi_star = np.exp((q_star - q_star.max(-1, keepdims=True)) / tau)
        pi_star /= pi_star.sum(-1, keepdims=True)
        S, A = R.shape
        qs, log_pis = jax.jit(_run_md)(mdp, lam, tau, jnp.zeros((400, S, A)))
        np.testing.assert_allclose(qs[-1], q_star, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(jnp.exp(log_pis[-1]), pi_star, atol=1e-4)
        # not the unregularised optimum (the test can tell them apart)
        q_opt = testing.np_policy_iteration(P, R, gamma)
        self.assertGreater(float(np.max(np.abs(np.asarray(qs[-1]) - q_opt))), 1e-3)


class MunchausenEquivalenceTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("alpha_0", 0.0, 0.1, 0.0),
        ("alpha_0_9_noisy", 0.9, 0.1, 0.5),
        ("alpha_0_99_noisy", 0.99, 0.3, 0.5),
        ("alpha_1_noisy", 1.0, 0.1, 0.5),
    )
    def test_md_vi_equals_m_vi(self, alpha, tau_m, sigma):
        """MD-VI(alpha tau_M, (1 - alpha) tau_M) and M-VI(alpha, tau_M) with the same
        noise draws give the same policies, and q' = q + lam ln pi (up to float)."""
        mdp = _mdp(15)
        S, A = mdp.num_states, mdp.num_actions
        noise = sigma * np.random.default_rng(16).normal(size=(25, S, A))
        lam, tau = mirror_descent.munchausen_to_md(alpha, tau_m)
        q0 = jnp.asarray(np.random.default_rng(17).normal(size=(S, A)), jnp.float32)
        log_pi0 = jnp.log(
            jnp.asarray(
                testing.random_policy(np.random.default_rng(18), S, A), jnp.float32
            )
        )
        q_md, log_pi_md = self.variant(_run_md)(mdp, lam, tau, noise, q0, log_pi0)
        q0_m = mirror_descent.md_to_munchausen_q(q0, log_pi0, lam)
        q_m, log_pi_m_next = self.variant(_run_mvi)(mdp, alpha, tau_m, noise, q0_m)
        # policies: M-VI's pi_{k+2} = softmax(q'_{k+1} / tau_M) vs MD-VI's from (q, pi)_{k+1}
        log_pi_md_next = jax.vmap(
            jax.vmap(mirror_descent.md_log_policy, (0, 0, None, None)),
            (0, 0, None, None),
        )(q_md, log_pi_md, lam, tau)
        np.testing.assert_allclose(
            jnp.exp(log_pi_md_next), jnp.exp(log_pi_m_next), atol=2e-5
        )
        np.testing.assert_allclose(
            mirror_descent.md_to_munchausen_q(q_md, log_pi_md, lam),
            q_m,
            rtol=1e-4,
            atol=2e-4,
        )
        # the exact values of the policies agree too
        v_md = exact_dp.policy_evaluation(mdp, jnp.exp(log_pi_md_next[-1]))
        v_m = exact_dp.policy_evaluation(mdp, jnp.exp(log_pi_m_next[-1]))
        np.testing.assert_allclose(v_md, v_m, rtol=1e-5, atol=1e-5)

    def test_parameter_maps_are_inverse(self):
        for alpha, tau_m in ((0.0, 0.1), (0.5, 0.2), (0.99, 0.03), (1.0, 1.0)):
            lam, tau = mirror_descent.munchausen_to_md(alpha, tau_m)
            np.testing.assert_allclose(
                [lam, tau], [alpha * tau_m, (1 - alpha) * tau_m], rtol=1e-5
            )
            back = mirror_descent.md_to_munchausen(lam, tau)
            np.testing.assert_allclose(back, (alpha, tau_m), rtol=1e-6)
        # vectorised (a stacked sweep)
        lam, tau = mirror_descent.munchausen_to_md(jnp.array([0.0, 0.9]), 0.1)
        np.testing.assert_allclose(lam, [0.0, 0.09], rtol=1e-6)
        np.testing.assert_allclose(tau, [0.1, 0.01], rtol=1e-5)

    @parameterized.named_parameters(
        ("alpha_above_one", lambda: mirror_descent.munchausen_to_md(1.5, 0.1), "alpha"),
        ("alpha_negative", lambda: mirror_descent.munchausen_to_md(-0.1, 0.1), "alpha"),
        ("tau_negative", lambda: mirror_descent.munchausen_to_md(0.5, -0.1), "tau"),
        ("no_weight", lambda: mirror_descent.md_to_munchausen(0.0, 0.0), "kl_weight"),
        (
            "operator_negative_kl",
            lambda: mirror_descent.md_vi_operator(
                _mdp(0), jnp.zeros((6, 3)), jnp.zeros((6, 3)), -1.0, 0.1
            ),
            "kl_weight",
        ),
    )
    def test_bad_input_is_one_line(self, call, needle):
        with self.assertRaises(ConfigError) as ctx:
            call()
        self.assertIn(needle, str(ctx.exception))
        self.assertNotIn("\n", str(ctx.exception))


if __name__ == "__main__":
    absltest.main()
