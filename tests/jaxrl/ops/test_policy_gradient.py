"""Tests for jaxrl.ops.policy_gradient against NumPy references and closed forms."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jaxrl.ops import policy_gradient as pg

# ------------------------------------------------------------------------- references


def _np_log_softmax(logits):
    x = np.asarray(logits, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _np_surrogate(log_pi, log_mu, adv, eps):
    out = np.zeros(len(adv))
    for i in range(len(adv)):
        rho = math.exp(float(log_pi[i]) - float(log_mu[i]))
        clipped = min(max(rho, 1.0 - eps), 1.0 + eps)
        out[i] = -min(rho * adv[i], clipped * adv[i])
    return out


def _np_value_loss(v, v_old, target, eps):
    out = np.zeros(len(v))
    for i in range(len(v)):
        change = min(max(v[i] - v_old[i], -eps), eps)
        out[i] = 0.5 * max(
            (v[i] - target[i]) ** 2, (v_old[i] + change - target[i]) ** 2
        )
    return out


def _batch(seed, b=16, a=4):
    rng = np.random.default_rng(seed)
    logits = (2.0 * rng.normal(size=(b, a))).astype(np.float32)
    actions = rng.integers(0, a, size=b).astype(np.int32)
    log_mu = _np_log_softmax(logits)[np.arange(b), actions].astype(np.float32)
    log_pi = (log_mu + 0.4 * rng.normal(size=b)).astype(np.float32)  # ratios ~ e^±0.4
    adv = rng.normal(size=b).astype(np.float32)
    return logits, actions, log_pi, log_mu, adv


# ------------------------------------------------------------------------------ tests


class CategoricalLogProbTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy(self):
        logits, actions, *_ = _batch(0)
        got = self.variant(jax.vmap(pg.categorical_log_prob))(logits, actions)
        want = _np_log_softmax(logits)[np.arange(len(actions)), actions]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_invariant_to_logit_shift_and_stable(self):
        logits = jnp.array([1000.0, 999.0, -1000.0])
        got = pg.categorical_log_prob(logits, 1)
        np.testing.assert_allclose(got, -np.log1p(np.e), rtol=1e-5)
        np.testing.assert_allclose(
            pg.categorical_log_prob(logits - 1000.0, 1), got, rtol=1e-6
        )


class CategoricalEntropyTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy(self):
        logits = _batch(1)[0]
        got = self.variant(jax.vmap(pg.categorical_entropy))(logits)
        log_p = _np_log_softmax(logits)
        want = -(np.exp(log_p) * log_p).sum(-1)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_bounds(self):
        np.testing.assert_allclose(pg.categorical_entropy(jnp.zeros(5)), np.log(5))
        deterministic = jnp.array([0.0, -jnp.inf, -jnp.inf])
        self.assertEqual(float(pg.categorical_entropy(deterministic)), 0.0)
        grad = jax.grad(pg.categorical_entropy)(jnp.array([2.0, -jnp.inf, 0.0]))
        self.assertTrue(bool(jnp.all(jnp.isfinite(grad))))

    def test_gradient_matches_numpy(self):
        """d H / d z_a = -p_a (log p_a + H)."""
        z = jnp.array([0.3, -1.0, 2.0, 0.0])
        grad = jax.grad(pg.categorical_entropy)(z)
        log_p = _np_log_softmax(np.asarray(z))
        p = np.exp(log_p)
        h = -(p * log_p).sum()
        np.testing.assert_allclose(grad, -p * (log_p + h), rtol=1e-5, atol=1e-6)


class ImportanceRatioTest(absltest.TestCase):
    def test_matches_numpy(self):
        _, _, log_pi, log_mu, _ = _batch(2)
        got = jax.vmap(pg.importance_ratio)(log_pi, log_mu)
        np.testing.assert_allclose(got, np.exp(log_pi - log_mu), rtol=1e-5)


class PolicyGradientLossTest(absltest.TestCase):
    def test_value_and_gradient(self):
        _, _, log_pi, _, adv = _batch(3)
        got = jax.vmap(pg.policy_gradient_loss)(log_pi, adv)
        np.testing.assert_allclose(got, -adv * log_pi, rtol=1e-6)
        g_pi, g_adv = jax.grad(pg.policy_gradient_loss, argnums=(0, 1))(-0.5, 2.0)
        self.assertEqual(float(g_pi), -2.0)
        self.assertEqual(float(g_adv), 0.0)


class ClippedSurrogateLossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("eps_small", 0.05), ("eps_default", 0.2), ("eps_large", 0.8)
    )
    def test_matches_numpy(self, eps):
        _, _, log_pi, log_mu, adv = _batch(4)
        got = self.variant(jax.vmap(pg.clipped_surrogate_loss, (0, 0, 0, None)))(
            log_pi, log_mu, adv, eps
        )
        want = _np_surrogate(log_pi, log_mu, adv, eps)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_traced_epsilon(self):
        _, _, log_pi, log_mu, adv = _batch(5)
        f = jax.jit(
            jax.vmap(
                lambda e: jax.vmap(pg.clipped_surrogate_loss, (0, 0, 0, None))(
                    log_pi, log_mu, adv, e
                )
            )
        )
        got = f(jnp.array([0.1, 0.3]))
        for i, eps in enumerate([0.1, 0.3]):
            np.testing.assert_allclose(
                got[i], _np_surrogate(log_pi, log_mu, adv, eps), rtol=1e-5, atol=1e-6
            )

    def test_gradient_regions(self):
        """Gradient w.r.t. log pi: -rho A inside the trust region, 0 once clipped."""
        grad = jax.grad(pg.clipped_surrogate_loss)
        eps = 0.2
        cases = [  # (rho, adv, expected d loss / d log_pi)
            (1.0, 2.0, -2.0),  # on-policy: the policy-gradient gradient
            (1.1, 2.0, -2.2),  # inside, A > 0
            (1.5, 2.0, 0.0),  # too likely, A > 0: clipped
            (0.5, 2.0, -1.0),  # too unlikely, A > 0: unclipped (pessimistic min)
            (0.5, -2.0, 0.0),  # too unlikely, A < 0: clipped
            (1.5, -2.0, 3.0),  # too likely, A < 0: unclipped
        ]
        for rho, adv, want in cases:
            got = grad(math.log(rho), 0.0, adv, eps)
            self.assertAlmostEqual(float(got), want, places=5, msg=(rho, adv))
        g_adv = jax.grad(pg.clipped_surrogate_loss, argnums=2)(0.1, 0.0, 1.0, eps)
        self.assertEqual(float(g_adv), 0.0)

    def test_equals_policy_gradient_at_ratio_one(self):
        """At pi == mu both losses have the same gradient w.r.t. the logits."""
        logits, actions, _, _, adv = _batch(6)

        def ppo(z):
            log_pi = jax.vmap(pg.categorical_log_prob)(z, actions)
            mu = jax.lax.stop_gradient(log_pi)
            f = jax.vmap(pg.clipped_surrogate_loss, (0, 0, 0, None))
            return jnp.sum(f(log_pi, mu, adv, 0.2))

        def vanilla(z):
            log_pi = jax.vmap(pg.categorical_log_prob)(z, actions)
            return jnp.sum(jax.vmap(pg.policy_gradient_loss)(log_pi, adv))

        np.testing.assert_allclose(
            jax.grad(ppo)(logits), jax.grad(vanilla)(logits), rtol=1e-5, atol=1e-6
        )


class ClippedValueLossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("eps_small", 0.1), ("eps", 0.5), ("inf", np.inf))
    def test_matches_numpy(self, eps):
        rng = np.random.default_rng(7)
        v, v_old, target = (rng.normal(size=(3, 20)) * 2).astype(np.float32)
        got = self.variant(jax.vmap(pg.clipped_value_loss, (0, 0, 0, None)))(
            v, v_old, target, eps
        )
        np.testing.assert_allclose(
            got, _np_value_loss(v, v_old, target, eps), rtol=1e-5, atol=1e-6
        )

    def test_infinite_radius_is_squared_error_and_gradients(self):
        g = jax.grad(pg.clipped_value_loss, argnums=(0, 1, 2))(3.0, 1.0, 2.0, np.inf)
        np.testing.assert_allclose([float(x) for x in g], [1.0, 0.0, 0.0])
        self.assertEqual(float(pg.clipped_value_loss(3.0, 1.0, 2.0, np.inf)), 0.5)
        # clipped branch active: v moved beyond v_old + eps, away from the target
        grad = jax.grad(pg.clipped_value_loss)(3.0, 1.0, 4.0, 0.5)
        self.assertEqual(float(grad), 0.0)


class ApproxKlTest(absltest.TestCase):
    def test_expectation_under_mu_is_exact_kl(self):
        """sum_a mu(a) k3(a) = KL(mu || pi), exactly (no sampling)."""
        rng = np.random.default_rng(8)
        for _ in range(5):
            z_mu, z_pi = rng.normal(size=(2, 6)) * 1.5
            log_mu, log_pi = _np_log_softmax(z_mu), _np_log_softmax(z_pi)
            k3 = jax.vmap(pg.approx_kl)(
                jnp.asarray(log_pi, jnp.float32), jnp.asarray(log_mu, jnp.float32)
            )
            mu = np.exp(log_mu)
            want = float(np.sum(mu * (log_mu - log_pi)))
            np.testing.assert_allclose(np.sum(mu * np.asarray(k3)), want, rtol=1e-4)

    def test_nonnegative(self):
        x = jnp.linspace(-5.0, 5.0, 41)
        got = jax.vmap(pg.approx_kl)(x, jnp.zeros_like(x))
        self.assertTrue(bool(jnp.all(got >= 0.0)))
        np.testing.assert_allclose(got, np.expm1(x) - x, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    absltest.main()
