"""Tests for jaxrl.ops.bellman and jaxrl.ops.losses against NumPy references."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jaxrl.ops import bellman, losses

# ----------------------------------------------------------------------------- references


def _np_q_learning(q_tm1, a_tm1, r_t, d_t, q_t):
    return r_t + d_t * q_t.max(-1) - q_tm1[np.arange(len(a_tm1)), a_tm1]


def _np_double_q(q_tm1, a_tm1, r_t, d_t, q_t_value, q_t_sel):
    idx = np.arange(len(a_tm1))
    best = q_t_sel.argmax(-1)
    return r_t + d_t * q_t_value[idx, best] - q_tm1[idx, a_tm1]


def _np_lambda_returns(r, d, v, lam, end):
    """Backward loop; at an episode end or the last step bootstrap from v."""
    T = len(r)
    g = np.zeros(T)
    for t in reversed(range(T)):
        if t == T - 1 or end[t]:
            g[t] = r[t] + d[t] * v[t]
        else:
            g[t] = r[t] + d[t] * ((1 - lam) * v[t] + lam * g[t + 1])
    return g


def _np_n_step(r, d, v, n, end):
    """Forward sum over a window cut at episode ends and the trajectory end."""
    T = len(r)
    out = np.zeros(T)
    for t in range(T):
        total, disc = 0.0, 1.0
        k = t
        while True:
            total += disc * r[k]
            disc *= d[k]
            if k - t + 1 == n or end[k] or k == T - 1:
                break
            k += 1
        out[t] = total + disc * v[k]
    return out


def _np_huber(x, delta):
    a = np.abs(x)
    return np.where(a <= delta, 0.5 * x**2, delta * (a - 0.5 * delta))


def _batch(seed, b=7, a=3):
    rng = np.random.default_rng(seed)
    q_tm1 = rng.normal(size=(b, a)).astype(np.float32)
    q_t = rng.normal(size=(b, a)).astype(np.float32)
    q_t2 = rng.normal(size=(b, a)).astype(np.float32)
    a_tm1 = rng.integers(0, a, size=b).astype(np.int32)
    r_t = rng.normal(size=b).astype(np.float32)
    terminated = rng.random(b) < 0.3
    d_t = (0.9 * (1 - terminated)).astype(np.float32)
    return q_tm1, a_tm1, r_t, d_t, q_t, q_t2


# ----------------------------------------------------------------------------- one-step


class QLearningTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("seed0", 0), ("seed1", 1))
    def test_matches_numpy(self, seed):
        q_tm1, a_tm1, r_t, d_t, q_t, _ = _batch(seed)
        got = self.variant(jax.vmap(bellman.q_learning))(q_tm1, a_tm1, r_t, d_t, q_t)
        np.testing.assert_allclose(
            got, _np_q_learning(q_tm1, a_tm1, r_t, d_t, q_t), rtol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_hand_computed(self):
        td = self.variant(bellman.q_learning)(
            jnp.array([1.0, 2.0]), jnp.int32(1), 0.5, 0.0, jnp.array([10.0, 20.0])
        )
        self.assertAlmostEqual(float(td), -1.5)  # terminal: target is the reward only

    def test_gradient_only_through_q_tm1(self):
        q_tm1, q_t = jnp.array([1.0, 2.0]), jnp.array([3.0, 4.0])
        g_tm1, g_t = jax.grad(
            lambda a, b: bellman.q_learning(a, jnp.int32(0), 1.0, 0.9, b),
            argnums=(0, 1),
        )(q_tm1, q_t)
        np.testing.assert_allclose(g_tm1, [-1.0, 0.0])
        np.testing.assert_allclose(g_t, [0.0, 0.0])

    def test_rejects_batched_input(self):
        with self.assertRaises(AssertionError):
            bellman.q_learning(
                jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), 0.0, 1.0, jnp.zeros(3)
            )


class DoubleQLearningTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("seed0", 0), ("seed1", 1))
    def test_matches_numpy(self, seed):
        q_tm1, a_tm1, r_t, d_t, q_t, q_sel = _batch(seed)
        got = self.variant(jax.vmap(bellman.double_q_learning))(
            q_tm1, a_tm1, r_t, d_t, q_t, q_sel
        )
        want = _np_double_q(q_tm1, a_tm1, r_t, d_t, q_t, q_sel)
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_same_selector_equals_q_learning(self):
        q_tm1, a_tm1, r_t, d_t, q_t, _ = _batch(3)
        dq = jax.vmap(bellman.double_q_learning)(q_tm1, a_tm1, r_t, d_t, q_t, q_t)
        ql = jax.vmap(bellman.q_learning)(q_tm1, a_tm1, r_t, d_t, q_t)
        np.testing.assert_allclose(dq, ql, rtol=1e-6)


class ExpectedSarsaTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy(self):
        q_tm1, a_tm1, r_t, d_t, q_t, logits = _batch(4)
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        got = self.variant(jax.vmap(bellman.expected_sarsa))(
            q_tm1, a_tm1, r_t, d_t, q_t, probs
        )
        want = r_t + d_t * (probs * q_t).sum(-1) - q_tm1[np.arange(len(a_tm1)), a_tm1]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_greedy_policy_equals_q_learning(self):
        q_tm1, a_tm1, r_t, d_t, q_t, _ = _batch(5)
        greedy = jax.nn.one_hot(q_t.argmax(-1), q_t.shape[-1])
        es = jax.vmap(bellman.expected_sarsa)(q_tm1, a_tm1, r_t, d_t, q_t, greedy)
        ql = jax.vmap(bellman.q_learning)(q_tm1, a_tm1, r_t, d_t, q_t)
        np.testing.assert_allclose(es, ql, rtol=1e-6)


class SoftStateValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("tau_small", 0.1), ("tau_one", 1.0), ("tau_big", 5.0)
    )
    def test_matches_numpy(self, tau):
        q = np.array([0.3, -1.2, 2.0, 0.5], np.float32)
        got = self.variant(bellman.soft_state_value)(q, tau)
        want = tau * np.log(np.sum(np.exp(q / tau)))
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_tau_zero_is_max_with_finite_grad(self):
        q = jnp.array([0.3, 2.0, 0.5])
        self.assertEqual(float(bellman.soft_state_value(q, 0.0)), 2.0)
        g = jax.grad(bellman.soft_state_value, argnums=(0, 1))(q, 0.0)
        self.assertTrue(all(bool(jnp.all(jnp.isfinite(x))) for x in g))

    def test_tends_to_max(self):
        q = jnp.array([0.3, 2.0, 0.5])
        self.assertAlmostEqual(float(bellman.soft_state_value(q, 1e-3)), 2.0, places=4)

    def test_expected_state_value(self):
        got = bellman.expected_state_value(
            jnp.array([1.0, 2.0, 4.0]), jnp.array([0.5, 0.25, 0.25])
        )
        self.assertAlmostEqual(float(got), 2.0)


# ----------------------------------------------------------------------------- returns


def _trajectory(seed, T=9):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=T).astype(np.float32)
    v = rng.normal(size=T).astype(np.float32)
    terminated = np.zeros(T, bool)
    truncated = np.zeros(T, bool)
    terminated[2] = True  # a true end: no bootstrap
    truncated[5] = True  # a time limit: bootstrap from v[5] (pre-reset next obs)
    d = (0.9 * (1 - terminated)).astype(np.float32)
    return r, d, v, terminated | truncated


class LambdaReturnsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lambda0", 0.0), ("lambda_half", 0.5), ("lambda1", 1.0)
    )
    def test_matches_numpy(self, lam):
        r, d, v, end = _trajectory(0)
        got = self.variant(bellman.lambda_returns)(r, d, v, lam, end)
        np.testing.assert_allclose(
            got, _np_lambda_returns(r, d, v, lam, end), rtol=1e-5, atol=1e-6
        )

    def test_lambda_zero_is_one_step(self):
        r, d, v, end = _trajectory(1)
        np.testing.assert_allclose(
            bellman.lambda_returns(r, d, v, 0.0, end), r + d * v, rtol=1e-5, atol=1e-6
        )

    def test_termination_and_truncation(self):
        r, d, v, end = _trajectory(2)
        g = np.asarray(bellman.discounted_returns(r, d, v, end))
        self.assertAlmostEqual(g[2], r[2], places=5)  # terminated: no bootstrap
        self.assertAlmostEqual(
            g[5], r[5] + 0.9 * v[5], places=5
        )  # truncated: bootstrap
        self.assertAlmostEqual(g[4], r[4] + 0.9 * g[5], places=5)

    def test_vmap_over_envs(self):
        trajs = [_trajectory(s) for s in range(3)]
        r, d, v, end = (np.stack(x, axis=1) for x in zip(*trajs, strict=True))  # [T, E]
        got = jax.vmap(bellman.lambda_returns, in_axes=(1, 1, 1, None, 1), out_axes=1)(
            r, d, v, 0.7, end
        )
        for e in range(3):
            want = _np_lambda_returns(r[:, e], d[:, e], v[:, e], 0.7, end[:, e])
            np.testing.assert_allclose(got[:, e], want, rtol=1e-5, atol=1e-6)


class DiscountedReturnsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy(self):
        r, d, v, end = _trajectory(3)
        got = self.variant(bellman.discounted_returns)(r, d, v, end)
        np.testing.assert_allclose(
            got, _np_lambda_returns(r, d, v, 1.0, end), rtol=1e-5, atol=1e-6
        )

    def test_monte_carlo_without_boundaries(self):
        r = np.array([1.0, 2.0, 3.0], np.float32)
        d = np.array([0.5, 0.5, 0.0], np.float32)
        got = bellman.discounted_returns(r, d, np.zeros(3, np.float32))
        np.testing.assert_allclose(got, [1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3.0])


class NStepReturnsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("n1", 1), ("n3", 3), ("n20", 20))
    def test_matches_numpy(self, n):
        r, d, v, end = _trajectory(4)
        got = self.variant(lambda *a: bellman.n_step_returns(*a[:3], n, a[3]))(
            r, d, v, end
        )
        np.testing.assert_allclose(
            got, _np_n_step(r, d, v, n, end), rtol=1e-5, atol=1e-6
        )

    def test_long_n_equals_discounted_returns(self):
        r, d, v, end = _trajectory(5)
        np.testing.assert_allclose(
            bellman.n_step_returns(r, d, v, len(r), end),
            bellman.discounted_returns(r, d, v, end),
            rtol=1e-5,
            atol=1e-6,
        )

    def test_bad_n(self):
        with self.assertRaises(ValueError):
            bellman.n_step_returns(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), 0)


# ----------------------------------------------------------------------------- losses


class HuberLossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("delta_half", 0.5), ("delta_one", 1.0), ("delta_big", 10.0)
    )
    def test_matches_numpy(self, delta):
        x = np.linspace(-4, 4, 17).astype(np.float32)
        got = self.variant(losses.huber_loss)(x, delta)
        np.testing.assert_allclose(got, _np_huber(x, delta), rtol=1e-6)

    def test_gradient_is_clipped_error(self):
        x = jnp.array([-3.0, -0.5, 0.2, 2.0])
        g = jax.grad(lambda x: jnp.sum(losses.huber_loss(x, 1.0)))(x)
        np.testing.assert_allclose(g, np.clip(np.asarray(x), -1, 1))

    def test_l2(self):
        np.testing.assert_allclose(losses.l2_loss(jnp.array([1.0, -2.0])), [0.5, 2.0])


if __name__ == "__main__":
    absltest.main()
