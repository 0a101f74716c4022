"""Tests for jaxrl.ops.stock against NumPy loops and closed forms."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jaxrl.errors import ConfigError
from jaxrl.ops import stock

# ------------------------------------------------------------------------------- stock


class StockTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("g0_9", 0.9), ("g0_7", 0.7), ("g1", 1.0))
    def test_stock_identity_along_reward_sequences(self, gamma):
        """c_0 + G_0 = gamma^t (c_t + G_t) for every t."""
        rng = np.random.default_rng(70)
        t_len = 15
        rewards = rng.normal(size=(4, t_len)).astype(np.float32)
        c0 = rng.uniform(-3, 3, size=4).astype(np.float32)

        def stocks(c, r, g):
            def body(carry, r_t):
                nxt = stock.stock_update(carry, r_t, g)
                return nxt, nxt

            _, cs = jax.lax.scan(body, c, r)
            return jnp.concatenate([c[None], cs])

        got = self.variant(jax.vmap(stocks, (0, 0, None)))(c0, rewards, gamma)
        for b in range(4):
            r = rewards[b].astype(np.float64)
            lhs = c0[b] + sum(gamma**k * r[k] for k in range(t_len))
            for t in range(t_len + 1):
                g_t = sum(gamma ** (k - t) * r[k] for k in range(t, t_len))
                rhs = gamma**t * (float(got[b, t]) + g_t)
                np.testing.assert_allclose(rhs, lhs, rtol=1e-5, atol=1e-5)

    @parameterized.named_parameters(("zero", 0.0), ("above", 1.1))
    def test_bad_gamma_raises(self, gamma):
        with self.assertRaisesRegex(ConfigError, "gamma"):
            stock.stock_update(0.0, 1.0, gamma)

    @chex.variants(with_jit=True, without_jit=True)
    def test_identity_utility_ignores_stock(self):
        rng = np.random.default_rng(71)
        theta = rng.normal(size=(6, 5, 8)).astype(np.float32)  # [B, A, N]
        theta += 0.2 * np.arange(5, dtype=np.float32)[rng.permutation(5)][:, None]
        stocks = rng.uniform(-100, 100, size=6).astype(np.float32)
        act = self.variant(
            jax.vmap(functools.partial(stock.stock_greedy_action, utility="identity"))
        )
        got = act(theta, None, stocks)
        means = theta.astype(np.float64).mean(-1)
        np.testing.assert_array_equal(got, means.argmax(-1))
        # The same with a user callable f(x) = x (distinct means, no rounding tie).
        act_f = jax.vmap(
            functools.partial(stock.stock_greedy_action, utility=lambda x: x)
        )
        np.testing.assert_array_equal(act_f(theta, None, stocks), means.argmax(-1))
        values = jax.vmap(
            functools.partial(stock.stock_shifted_values, utility="identity")
        )(theta, None, stocks)
        np.testing.assert_allclose(
            values, stocks[:, None] + means, rtol=1e-5, atol=1e-4
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_indicator_maximizes_reaching_probability(self):
        safe_risky = jnp.array([[1.0, 1.0], [-10.0, 5.0]])  # quantiles [A, N]
        act = self.variant(
            functools.partial(stock.stock_greedy_action, utility="indicator")
        )
        self.assertEqual(int(act(safe_risky, None, -2.0)), 1)  # only risky can reach
        self.assertEqual(int(act(safe_risky, None, 0.0)), 0)  # safe reaches surely
        # Mean-greedy picks the safe action whatever the stock.
        mean_act = stock.stock_greedy_action(safe_risky, None, -2.0, "identity")
        self.assertEqual(int(mean_act), 0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("indicator", "indicator", lambda x: (x >= 0).astype(np.float64)),
        ("min_zero", "min_zero", lambda x: np.minimum(x, 0.0)),
        ("neg_square", "neg_square", lambda x: -(x**2)),
    )
    def test_categorical_random_matches_numpy(self, name, np_f):
        rng = np.random.default_rng(72)
        z = np.linspace(-5.0, 5.0, 11).astype(np.float32)
        probs = rng.dirichlet(np.ones(11), size=(8, 4)).astype(np.float32)
        stocks = rng.uniform(-4, 4, size=8).astype(np.float32)
        fn = functools.partial(stock.stock_greedy_action, utility=name)
        got = self.variant(jax.vmap(fn, (None, 0, 0)))(z, probs, stocks)
        values = jax.vmap(
            functools.partial(stock.stock_shifted_values, utility=name), (None, 0, 0)
        )(z, probs, stocks)
        for b in range(8):
            want = np.sum(
                probs[b].astype(np.float64)
                * np_f(stocks[b].astype(np.float64) + z.astype(np.float64)),
                -1,
            )
            np.testing.assert_allclose(values[b], want, rtol=1e-5, atol=1e-5)
            self.assertGreaterEqual(want[int(got[b])], want.max() - 1e-5)

    def test_rejects_bad_shapes(self):
        with self.assertRaises(AssertionError):  # quantiles need [A, N]
            stock.stock_greedy_action(jnp.zeros(5), None, 0.0, "indicator")
        with self.assertRaises(AssertionError):
            stock.stock_greedy_action(
                jnp.zeros((2, 5)), jnp.ones((2, 4)), 0.0, "identity"
            )


if __name__ == "__main__":
    absltest.main()
