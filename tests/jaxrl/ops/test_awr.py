"""Tests for jaxrl.ops.awr against NumPy references and the tabular maximiser."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import special

from jaxrl.errors import ConfigError
from jaxrl.ops import awr


class AWRTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("beta_3", 3.0, 100.0), ("beta_0", 0.0, 100.0), ("no_clip", 1.0, np.inf)
    )
    def test_weights_match_numpy(self, beta, max_weight):
        adv = np.linspace(-5, 5, 21).astype(np.float32)
        got = self.variant(awr.awr_weights)(adv, beta, max_weight)
        want = np.minimum(np.exp(beta * adv.astype(np.float64)), max_weight)
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_clipped_exactly_at_100_without_overflow(self):
        w = awr.awr_weights(jnp.array([1e3, 1e30]), 3.0)
        chex.assert_trees_all_equal(w, jnp.array([100.0, 100.0]))
        g = jax.grad(lambda a: jnp.sum(awr.awr_weights(a, 3.0)))(jnp.array([1e3, 0.0]))
        np.testing.assert_allclose(g, [0.0, 3.0], rtol=1e-6)

    def test_loss_is_weighted_nll_without_critic_gradient(self):
        log_p = jnp.log(jnp.array([0.2, 0.5]))
        adv = jnp.array([0.5, -1.0])
        got = awr.awr_loss(log_p, adv, 2.0)
        want = -np.minimum(np.exp(2.0 * np.asarray(adv)), 100) * np.asarray(log_p)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        g_adv = jax.grad(lambda a: jnp.sum(awr.awr_loss(log_p, a, 2.0)))(adv)
        chex.assert_trees_all_equal(g_adv, jnp.zeros(2))
        g_logp = jax.grad(lambda lp: jnp.sum(awr.awr_loss(lp, adv, 0.0)))(log_p)
        np.testing.assert_allclose(g_logp, [-1.0, -1.0])  # beta = 0: behaviour cloning

    @chex.variants(with_jit=True, without_jit=True)
    def test_policy_maximises_weighted_likelihood(self):
        rng = np.random.default_rng(16)
        q = rng.normal(size=5).astype(np.float32) * 2
        mu = np.array([0.1, 0.0, 0.4, 0.3, 0.2], np.float32)
        v, beta = 0.4, 2.0
        got = np.asarray(self.variant(awr.awr_policy)(q, v, beta, mu))
        w = np.minimum(np.exp(beta * (q.astype(np.float64) - v)), 100.0)
        want = mu * w / np.sum(mu * w)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        self.assertEqual(got[1], 0.0)  # no mass outside the data

        def objective(pi):
            inside = mu > 0
            return np.sum(mu[inside] * w[inside] * np.log(pi[inside]))

        for _ in range(20):  # Gibbs: no other policy does better
            other = rng.dirichlet(np.ones(5))
            self.assertGreaterEqual(objective(got), objective(other))

    def test_policy_beta_zero_is_behaviour_cloning(self):
        mu = jnp.array([0.2, 0.5, 0.3])
        got = awr.awr_policy(jnp.array([10.0, -3.0, 0.0]), 0.0, 0.0, mu)
        np.testing.assert_allclose(got, mu, rtol=1e-6)

    def test_policy_handles_extreme_values(self):
        got = awr.awr_policy(jnp.array([-1e4, -1e4 + 1.0]), 0.0, 1.0)
        np.testing.assert_allclose(got, special.softmax([0.0, 1.0]), rtol=1e-5)

    def test_bad_parameters(self):
        with self.assertRaisesRegex(ConfigError, "beta"):
            awr.awr_weights(jnp.zeros(2), -1.0)
        with self.assertRaisesRegex(ConfigError, "max_weight"):
            awr.awr_weights(jnp.zeros(2), 1.0, 0.0)


if __name__ == "__main__":
    absltest.main()
