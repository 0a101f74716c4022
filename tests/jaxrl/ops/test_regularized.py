"""Tests for jaxrl.ops.regularized against NumPy references and closed forms."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jaxrl.errors import ConfigError
from jaxrl.ops import bellman, regularized

# ----------------------------------------------------------------------------- references


def _np_lse(x):
    m = x.max(-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]


def _np_scaled_log_softmax(q, tau):
    q = np.asarray(q, np.float64)
    if tau == 0:
        return q - q.max(-1, keepdims=True)
    return q - tau * _np_lse(q / tau)[..., None]


def _np_softmax(q, tau):
    q = np.asarray(q, np.float64)
    if tau == 0:
        ties = (q == q.max(-1, keepdims=True)).astype(np.float64)
        return ties / ties.sum(-1, keepdims=True)
    e = np.exp((q - q.max(-1, keepdims=True)) / tau)
    return e / e.sum(-1, keepdims=True)


def _np_munchausen_targets(q_tm1_t, a, r, d, q_t_t, tau, alpha, l0):
    """Loop over the batch: r + alpha*clip(tau ln pi(a|s)) + d * sum pi (q - tau ln pi)."""
    out = np.zeros(len(a))
    for i in range(len(a)):
        log_pi_s = _np_scaled_log_softmax(q_tm1_t[i], tau)
        bonus = alpha * min(max(log_pi_s[a[i]], l0), 0.0)
        pi_next = _np_softmax(q_t_t[i], tau)
        log_pi_next = _np_scaled_log_softmax(q_t_t[i], tau)
        value = float(np.sum(pi_next * (q_t_t[i] - log_pi_next)))
        out[i] = r[i] + bonus + d[i] * value
    return out


def _batch(seed, b=9, a=4, scale=3.0):
    rng = np.random.default_rng(seed)
    q_tm1 = (scale * rng.normal(size=(b, a))).astype(np.float32)
    q_tm1_target = (scale * rng.normal(size=(b, a))).astype(np.float32)
    q_t_target = (scale * rng.normal(size=(b, a))).astype(np.float32)
    a_tm1 = rng.integers(0, a, size=b).astype(np.int32)
    r_t = rng.normal(size=b).astype(np.float32)
    terminated = rng.random(b) < 0.3
    d_t = (0.99 * (1 - terminated)).astype(np.float32)
    return q_tm1, a_tm1, r_t, d_t, q_tm1_target, q_t_target


# ----------------------------------------------------------------------------- policy, value


class ScaledLogSoftmaxTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("tau_zero", 0.0), ("tau_small", 0.03), ("tau_one", 1.0), ("tau_big", 50.0)
    )
    def test_matches_numpy(self, tau):
        q = _batch(0)[0]
        got = self.variant(jax.vmap(regularized.scaled_log_softmax, (0, None)))(q, tau)
        np.testing.assert_allclose(
            got, _np_scaled_log_softmax(q, tau), rtol=1e-5, atol=1e-5
        )

    def test_stable_for_tiny_temperature_and_large_values(self):
        q = jnp.array([1000.0, 999.0, -1000.0])
        got = regularized.scaled_log_softmax(q, 1e-4)
        self.assertTrue(bool(jnp.all(jnp.isfinite(got))))
        np.testing.assert_allclose(got, [0.0, -1.0, -2000.0], atol=1e-3)

    def test_no_nan_gradient_at_tau_zero(self):
        grad_q, grad_tau = jax.grad(
            lambda q, t: jnp.sum(regularized.scaled_log_softmax(q, t)), argnums=(0, 1)
        )(jnp.array([1.0, 2.0, 2.0]), 0.0)
        self.assertTrue(bool(jnp.all(jnp.isfinite(grad_q))))
        self.assertTrue(bool(jnp.isfinite(grad_tau)))


class SoftmaxPolicyTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("tau_zero", 0.0), ("tau_small", 0.1), ("tau", 2.0))
    def test_matches_numpy(self, tau):
        q = _batch(1)[0]
        q[0] = [1.0, 1.0, 0.0, -1.0]  # a tie for the tau = 0 limit
        got = self.variant(jax.vmap(regularized.softmax_policy, (0, None)))(q, tau)
        np.testing.assert_allclose(got, _np_softmax(q, tau), rtol=1e-5, atol=1e-6)

    def test_large_temperature_is_uniform(self):
        pi = regularized.softmax_policy(jnp.array([1.0, -2.0, 3.0]), 1e6)
        np.testing.assert_allclose(pi, np.full(3, 1 / 3), atol=1e-5)


class SoftValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("tau_zero", 0.0), ("tau_small", 0.03), ("tau", 1.5)
    )
    def test_equals_expectation_form(self, tau):
        """sum_a pi (q - tau ln pi) == tau logsumexp(q / tau) (ALGORITHMS 1.5 check 5)."""
        q = _batch(2)[0]
        got = self.variant(jax.vmap(regularized.soft_value, (0, None)))(q, tau)
        pi, log_pi = _np_softmax(q, tau), _np_scaled_log_softmax(q, tau)
        want = np.sum(pi * (q - log_pi), -1)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_bounds(self):
        q = jnp.array([0.5, 1.0, -3.0, 0.9])
        for tau in (0.01, 0.3, 2.0):
            v = float(regularized.soft_value(q, tau))
            self.assertGreaterEqual(v, 1.0 - 1e-6)
            self.assertLessEqual(v, 1.0 + tau * np.log(4) + 1e-6)


# ----------------------------------------------------------------------------- Munchausen


class MunchausenBonusTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("paper_defaults", 0.03, 0.9, -1.0),
        ("no_clip", 0.5, 0.7, -np.inf),
        ("alpha_zero", 0.5, 0.0, -1.0),
    )
    def test_matches_numpy_and_range(self, tau, alpha, l0):
        q, a = _batch(3)[4], _batch(3)[1]
        got = self.variant(
            jax.vmap(regularized.munchausen_bonus, (0, 0, None, None, None))
        )(q, a, tau, alpha, l0)
        log_pi = _np_scaled_log_softmax(q, tau)[np.arange(len(a)), a]
        want = alpha * np.clip(log_pi, l0, 0.0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        self.assertTrue(bool(jnp.all(got <= 0.0)))
        if np.isfinite(l0):
            self.assertTrue(bool(jnp.all(got >= alpha * l0 - 1e-6)))

    def test_clip_binds_only_for_unlikely_actions(self):
        q = jnp.array([0.0, -0.01, -10.0])
        bonus = jax.vmap(lambda a: regularized.munchausen_bonus(q, a, 0.03, 0.9, -1.0))(
            jnp.arange(3)
        )
        self.assertLess(float(bonus[0]), 0.0)
        self.assertGreater(float(bonus[0]), -0.9)  # likely action: unclipped
        np.testing.assert_allclose(bonus[2], -0.9, rtol=1e-6)  # clipped at alpha*l0


class MunchausenTargetTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("paper_defaults", 0.03, 0.9, -1.0),
        ("large_tau", 1.0, 0.5, -2.0),
        ("soft_q", 0.3, 0.0, -1.0),
    )
    def test_matches_numpy(self, tau, alpha, l0):
        _, a, r, d, qtm1_t, qt_t = _batch(4)
        got = self.variant(
            jax.vmap(regularized.munchausen_target, (0, 0, 0, 0, 0, None, None, None))
        )(qtm1_t, a, r, d, qt_t, tau, alpha, l0)
        want = _np_munchausen_targets(qtm1_t, a, r, d, qt_t, tau, alpha, l0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_terminal_transition_has_no_bootstrap(self):
        q = jnp.array([1.0, 5.0])
        y = regularized.munchausen_target(q, 1, 2.0, 0.0, q * 100, 0.1, 0.9, -1.0)
        bonus = regularized.munchausen_bonus(q, 1, 0.1, 0.9, -1.0)
        np.testing.assert_allclose(y, 2.0 + bonus, rtol=1e-6)


class MunchausenQLearningTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_alpha_zero_tau_zero_is_q_learning(self):
        q_tm1, a, r, d, qtm1_t, qt_t = _batch(5)
        got = self.variant(
            jax.vmap(
                regularized.munchausen_q_learning,
                (0, 0, 0, 0, 0, 0, None, None, None),
            )
        )(q_tm1, a, r, d, qtm1_t, qt_t, 0.0, 0.0, -1.0)
        want = jax.vmap(bellman.q_learning)(q_tm1, a, r, d, qt_t)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # XLA may fuse

    def test_small_tau_tends_to_advantage_learning(self):
        """tau -> 0: r - alpha (max q(s) - q(s, a)) + d max q(s') (ALGORITHMS 1.5 check 4)."""
        q_tm1, a, r, d, qtm1_t, qt_t = _batch(6)
        alpha = 0.9
        got = jax.vmap(
            regularized.munchausen_q_learning, (0, 0, 0, 0, 0, 0, None, None, None)
        )(q_tm1, a, r, d, qtm1_t, qt_t, 1e-4, alpha, -np.inf)
        idx = np.arange(len(a))
        gap = qtm1_t.max(-1) - qtm1_t[idx, a]
        want = r - alpha * gap + d * qt_t.max(-1) - q_tm1[idx, a]
        np.testing.assert_allclose(got, want, atol=2e-3)

    def test_matches_numpy_td(self):
        q_tm1, a, r, d, qtm1_t, qt_t = _batch(7)
        got = jax.vmap(
            regularized.munchausen_q_learning, (0, 0, 0, 0, 0, 0, None, None, None)
        )(q_tm1, a, r, d, qtm1_t, qt_t, 0.03, 0.9, -1.0)
        want = _np_munchausen_targets(qtm1_t, a, r, d, qt_t, 0.03, 0.9, -1.0)
        want = want - q_tm1[np.arange(len(a)), a]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_gradient_only_through_online_values(self):
        q_tm1, q_tar = jnp.array([1.0, 2.0]), jnp.array([0.5, 0.0])

        def td(online, target):
            return regularized.munchausen_q_learning(
                online, jnp.int32(1), 1.0, 0.9, target, target, 0.03, 0.9, -1.0
            )

        g_online, g_target = jax.grad(td, argnums=(0, 1))(q_tm1, q_tar)
        np.testing.assert_allclose(g_online, [0.0, -1.0])
        np.testing.assert_allclose(g_target, [0.0, 0.0])

    def test_traced_hyperparameters_do_not_retrace(self):
        q_tm1, a, r, d, qtm1_t, qt_t = _batch(8)

        @jax.jit
        @chex.assert_max_traces(n=1)
        def batch_td(tau, alpha, l0):
            return jax.vmap(
                regularized.munchausen_q_learning, (0, 0, 0, 0, 0, 0, None, None, None)
            )(q_tm1, a, r, d, qtm1_t, qt_t, tau, alpha, l0)

        for tau, alpha in ((0.03, 0.9), (0.1, 0.5), (0.0, 0.0)):
            batch_td(jnp.float32(tau), jnp.float32(alpha), jnp.float32(-1.0))


_Q = jnp.array([1.0, 2.0, 0.5])


def _m_target(tau=0.1, alpha=0.9, l0=-1.0):
    return regularized.munchausen_target(_Q, 1, 1.0, 0.9, _Q, tau, alpha, l0)


def _m_q_learning(tau=0.1, alpha=0.9, l0=-1.0):
    return regularized.munchausen_q_learning(_Q, 1, 1.0, 0.9, _Q, _Q, tau, alpha, l0)


class EagerArgumentChecksTest(parameterized.TestCase):
    """Concrete out-of-domain hyperparameters raise; traced ones are not checked."""

    @parameterized.named_parameters(
        (
            "tau_negative_log_softmax",
            lambda: regularized.scaled_log_softmax(_Q, -1.0),
            r"tau must lie in \[0.0, inf\], got -1",
        ),
        (
            "tau_negative_policy",
            lambda: regularized.softmax_policy(_Q, -0.1),
            "tau must lie in",
        ),
        (
            "tau_nan_value",
            lambda: regularized.soft_value(_Q, np.nan),
            "tau must be finite, got nan",
        ),
        (
            "tau_negative_soft_state_value",
            lambda: bellman.soft_state_value(_Q, -1.0),
            "tau must lie in",
        ),
        (
            "alpha_above_one_bonus",
            lambda: regularized.munchausen_bonus(_Q, 1, 0.1, 1.5, -1.0),
            r"alpha must lie in \[0.0, 1.0\], got 1.5",
        ),
        ("alpha_negative_target", lambda: _m_target(alpha=-0.1), "alpha must lie in"),
        (
            "l0_positive_target",
            lambda: _m_target(l0=0.5),
            r"l0 must lie in \[-inf, 0.0\], got 0.5",
        ),
        (
            "tau_inf_q_learning",
            lambda: _m_q_learning(tau=float("inf")),
            "tau must be finite, got inf",
        ),
        (
            "l0_nan_q_learning",
            lambda: _m_q_learning(l0=np.nan),
            "l0 must be finite, got nan",
        ),
    )
    def test_invalid_concrete_argument_raises(self, call, match):
        with self.assertRaisesRegex(ConfigError, "^" + match):
            call()

    def test_documented_edges_pass(self):
        np.testing.assert_allclose(regularized.soft_value(_Q, 0.0), 2.0)  # hard max
        free = _m_target(l0=-float("inf"))  # l0 = -inf: no clipping
        np.testing.assert_allclose(free, _m_target(l0=-1e30), rtol=1e-6)

    def test_traced_invalid_values_compile_once_and_run(self):
        traces = []

        @jax.jit
        def target(tau, alpha, l0):
            traces.append(None)
            return _m_target(tau, alpha, l0)

        target(0.1, 0.9, -1.0)
        out = target(0.2, 1.5, 0.5)  # traced: not checked, no error, no retrace
        self.assertLen(traces, 1)
        self.assertEqual(out.shape, ())


if __name__ == "__main__":
    absltest.main()
