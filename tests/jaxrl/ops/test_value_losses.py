"""Tests for jaxrl.ops.value_losses against NumPy/SciPy references and closed forms.

References written here: the value losses as NumPy formulas; their minimisers by
``minimize_scalar`` on the NumPy loss, ``numpy.quantile(method="inverted_cdf")``
(total variation), a NumPy bisection (expectile) and population formulas for
N(0, 1) (ALGORITHMS.md 3.7).
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import optimize, special, stats

from jaxrl.errors import ConfigError
from jaxrl.ops import value_losses

# ------------------------------------------------------------------------ references


def np_gumbel(x, beta):
    z = np.asarray(x, np.float64) / beta
    return np.expm1(z) - z


def np_chi2(x, lam):
    x = np.asarray(x, np.float64)
    return lam * np.maximum(x + x**2 / 4.0, 0.0) - (1.0 - lam) * x


def np_tv(x, lam):
    x = np.asarray(x, np.float64)
    return lam * np.maximum(x, 0.0) - (1.0 - lam) * x


def np_expectile_loss(x, tau):
    x = np.asarray(x, np.float64)
    return np.where(x < 0, 1.0 - tau, tau) * x**2


def np_minimize(loss, q, w=None):
    """argmin_v sum_i w_i loss(q_i - v) by bounded scalar minimisation."""
    q = np.asarray(q, np.float64)
    w = np.full(q.shape, 1.0 / q.size) if w is None else np.asarray(w) / np.sum(w)
    lo, hi = q.min() - 10.0, q.max() + 10.0
    res = optimize.minimize_scalar(
        lambda v: float(np.sum(w * loss(q - v))),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return res.x


def np_expectile(q, tau, w=None):
    """The tau-expectile by bisection on the first-order condition (float64)."""
    q = np.asarray(q, np.float64)
    w = np.full(q.shape, 1.0 / q.size) if w is None else np.asarray(w) / np.sum(w)
    lo, hi = q.min(), q.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        foc = np.sum(w * np.where(q < mid, 1.0 - tau, tau) * (q - mid))
        lo, hi = (mid, hi) if foc > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def np_logmeanexp(q, beta, w=None):
    q = np.asarray(q, np.float64)
    w = np.full(q.shape, 1.0 / q.size) if w is None else np.asarray(w) / np.sum(w)
    return beta * special.logsumexp(q / beta, b=w)


def _samples(seed, n=2000, scale=1.5):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=n) + 0.3).astype(np.float32)


def _integer_weights(seed, n=12):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=n).astype(np.float32) * 2.0
    counts = rng.integers(0, 5, size=n)
    counts[0] = max(counts[0], 1)
    return q, counts


# ------------------------------------------------------------------------ value losses


class ElementwiseLossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("gumbel", "gumbel", 1.7, np_gumbel),
        ("chi_square", "chi_square", 0.7, np_chi2),
        ("total_variation", "total_variation", 0.8, np_tv),
        ("expectile", "expectile", 0.9, np_expectile_loss),
    )
    def test_matches_numpy(self, name, param, ref):
        x = np.linspace(-6, 4, 41).astype(np.float32)
        got = self.variant(lambda x, p: value_losses.value_loss(x, p, name))(x, param)
        np.testing.assert_allclose(got, ref(x, param), rtol=2e-5, atol=1e-6)

    def test_gumbel_clip_freezes_large_residuals(self):
        x = jnp.array([1.0, 12.0, 30.0])
        loss = value_losses.gumbel_loss(x, 2.0, max_clip=5.0)
        np.testing.assert_allclose(loss, np_gumbel([1.0, 10.0, 10.0], 2.0), rtol=1e-6)
        grad = jax.grad(lambda x: jnp.sum(value_losses.gumbel_loss(x, 2.0, 5.0)))(x)
        np.testing.assert_allclose(grad, [np.expm1(0.5) / 2.0, 0.0, 0.0], rtol=1e-6)

    @parameterized.named_parameters(
        ("gumbel_beta_zero", "gumbel", 0.0, "beta"),
        ("gumbel_beta_negative", "gumbel", -1.0, "beta"),
        ("chi_square_lam_zero", "chi_square", 0.0, "lam"),
        ("tv_lam_below_half", "total_variation", 0.4, "lam"),
        ("expectile_one", "expectile", 1.0, "expectile"),
    )
    def test_bad_parameters(self, name, param, field):
        with self.assertRaisesRegex(ConfigError, field):
            value_losses.value_loss(jnp.zeros(3), param, name)

    def test_unknown_loss(self):
        with self.assertRaisesRegex(ConfigError, "value loss must be one of"):
            value_losses.value_loss(jnp.zeros(3), 0.5, "huber")


class GumbelStabilisersTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("no_clip", math.inf), ("clip_7", 7.0), ("clip_1", 1.0)
    )
    def test_rescaled_loss_is_scaled_gumbel_loss(self, clip):
        x = _samples(0, n=64, scale=3.0)
        beta = 1.3
        got = self.variant(value_losses.gumbel_rescale_loss)(x, beta, clip)
        z = np.minimum(x.astype(np.float64) / beta, clip)
        m = max(z.max(), -1.0)
        want = np.exp(-m) * np.mean(np.expm1(z) - z)
        np.testing.assert_allclose(got, want, rtol=1e-4)

    def test_rescaled_gradient_vanishes_at_the_closed_form(self):
        q = _samples(1, n=500)
        beta = 2.0
        v_star = value_losses.gumbel_value(q, beta)
        scaled = jax.jit(
            jax.grad(lambda v: value_losses.gumbel_rescale_loss(q - v, beta))
        )
        np.testing.assert_allclose(scaled(v_star), 0.0, atol=1e-5)
        # the rescaling is a positive, gradient-free factor: same descent direction
        plain = jax.jit(
            jax.grad(lambda v: jnp.mean(value_losses.gumbel_loss(q - v, beta)))
        )
        g_plain, g_scaled = plain(0.0), scaled(0.0)
        z = q.astype(np.float64) / beta
        np.testing.assert_allclose(
            g_scaled, np.exp(-max(z.max(), -1.0)) * g_plain, rtol=1e-4
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("no_clip", math.inf), ("clip_2", 2.0))
    def test_log_loss_gradient(self, clip):
        x = _samples(2, n=32, scale=2.0)
        beta = 1.5
        got = self.variant(jax.grad(value_losses.gumbel_log_loss), static_argnums=())(
            jnp.asarray(x), beta, clip
        )
        z = np.minimum(x.astype(np.float64) / beta, clip)
        j = np.mean(np.expm1(z) - z)
        want = (np.expm1(z) / (j + 1.0)) / beta / len(x)
        np.testing.assert_allclose(got, want, rtol=1e-4)
        if math.isinf(clip):  # = d/dx log(1 + J)
            h = jax.grad(
                lambda x: jnp.log1p(jnp.mean(value_losses.gumbel_loss(x, beta)))
            )(x)
            np.testing.assert_allclose(got, h, rtol=1e-4)

    def test_huge_residuals_stay_finite_with_rescaling(self):
        x = jnp.array([0.0, 50.0, 80.0])
        self.assertTrue(bool(jnp.isfinite(value_losses.gumbel_rescale_loss(x, 1.0))))
        g = jax.grad(lambda x: value_losses.gumbel_rescale_loss(x, 1.0))(x)
        self.assertTrue(bool(jnp.all(jnp.isfinite(g))))


# ------------------------------------------------------------------------ minimisers


class GumbelValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("beta_small", 0.3), ("beta_one", 1.0), ("beta_big", 8.0)
    )
    def test_is_the_minimiser_of_the_sample_loss(self, beta):
        q = _samples(3)
        got = float(self.variant(value_losses.gumbel_value)(q, beta))
        np.testing.assert_allclose(got, np_logmeanexp(q, beta), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            got, np_minimize(lambda x: np_gumbel(x, beta), q), atol=1e-4
        )

    def test_normal_samples(self):
        """200k N(mu, sigma^2) samples: logmeanexp to 4 decimals, ~mu + s^2/(2 beta)."""
        rng = np.random.default_rng(4)
        mu, sigma = 0.5, 1.2
        x = (mu + sigma * rng.normal(size=200_000)).astype(np.float32)
        for beta in (2.0, 5.0):
            got = float(value_losses.gumbel_value(x, beta))
            np.testing.assert_allclose(got, np_logmeanexp(x, beta), atol=1e-4)
            np.testing.assert_allclose(got, mu + sigma**2 / (2 * beta), atol=1e-2)

    @chex.variants(with_jit=True, without_jit=True)
    def test_weighted_equals_repeated_samples(self):
        q, counts = _integer_weights(5)
        got = self.variant(value_losses.gumbel_value)(q, 0.7, counts.astype(np.float32))
        np.testing.assert_allclose(
            got, np_logmeanexp(np.repeat(q, counts), 0.7), rtol=1e-5
        )

    def test_limits(self):
        q = jnp.array([0.3, -1.0, 2.0, 5.0])
        probs = jnp.array([0.2, 0.3, 0.5, 0.0])  # 5.0 is out of the data
        hard_max = 2.0
        mean = float(np.dot([0.2, 0.3, 0.5], [0.3, -1.0, 2.0]))
        self.assertEqual(float(value_losses.gumbel_value(q, 0.0, probs)), hard_max)
        np.testing.assert_allclose(
            value_losses.gumbel_value(q, math.inf, probs), mean, rtol=1e-6
        )
        errs = [
            float(value_losses.gumbel_value(q, b, probs)) - hard_max
            for b in (1e-1, 1e-2, 1e-3)
        ]
        # beta -> 0: 0 <= V - max <= ... V in [max + beta log p(argmax), max]
        for b, e in zip((1e-1, 1e-2, 1e-3), errs, strict=True):
            self.assertLessEqual(e, 1e-6)
            self.assertGreaterEqual(e, b * math.log(0.5) - 1e-6)
        # beta -> inf: approaches the behaviour mean at rate O(1/beta)
        gaps = [
            abs(float(value_losses.gumbel_value(q, b, probs)) - mean)
            for b in (10.0, 100.0, 1e4)
        ]
        self.assertLess(gaps[2], gaps[1])
        self.assertLess(gaps[1], gaps[0])
        self.assertLess(gaps[2], 1e-3)

    def test_vmap_over_beta_equals_separate_calls(self):
        q = _samples(6, n=50)
        betas = jnp.array([0.0, 0.1, 1.0, 10.0, jnp.inf])
        got = jax.vmap(value_losses.gumbel_value, (None, 0))(q, betas)
        single = jax.jit(value_losses.gumbel_value)
        want = [float(single(q, b)) for b in betas]
        np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_gradient_is_the_softmax(self):
        q = jnp.array([0.1, 1.0, -0.5])
        g = jax.grad(value_losses.gumbel_value)(q, 0.5)
        np.testing.assert_allclose(g, special.softmax(np.asarray(q) / 0.5), rtol=1e-5)

    def test_bad_beta(self):
        with self.assertRaisesRegex(ConfigError, "beta"):
            value_losses.gumbel_value(jnp.zeros(3), -0.1)


class QuantileExpectileChiSquareValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lam_0.6", 0.6), ("lam_0.8", 0.8), ("lam_0.95", 0.95), ("lam_1", 1.0)
    )
    def test_total_variation_is_the_stated_quantile(self, lam):
        q = _samples(7, n=1001)
        got = float(self.variant(value_losses.total_variation_value)(q, lam))
        level = 1.0 - (1.0 - lam) / lam
        self.assertEqual(got, float(np.quantile(q, level, method="inverted_cdf")))
        # it minimises the loss (the minimiser set is an interval of quantiles)
        loss = lambda v: np.mean(np_tv(q.astype(np.float64) - v, lam))  # noqa: E731
        best = loss(np_minimize(lambda x: np_tv(x, lam), q))
        self.assertLessEqual(loss(got), best + 1e-9)
        # P(Q > V) <= (1 - lam) / lam <= P(Q >= V)
        self.assertLessEqual(np.mean(q > got), (1 - lam) / lam + 1e-9)
        self.assertGreaterEqual(np.mean(q >= got), (1 - lam) / lam - 1e-9)

    def test_total_variation_lam_08_is_75th_percentile_and_weighted(self):
        q, counts = _integer_weights(8, n=15)
        got = value_losses.total_variation_value(q, 0.8, counts.astype(np.float32))
        want = np.quantile(np.repeat(q, counts), 0.75, method="inverted_cdf")
        self.assertEqual(float(got), float(want))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("tau_0.1", 0.1), ("tau_0.5", 0.5), ("tau_0.9", 0.9)
    )
    def test_expectile_matches_bisection_and_minimises(self, tau):
        q = _samples(9, n=777)
        got = float(self.variant(value_losses.expectile_value)(q, tau))
        np.testing.assert_allclose(got, np_expectile(q, tau), atol=2e-5)
        np.testing.assert_allclose(
            got, np_minimize(lambda x: np_expectile_loss(x, tau), q), atol=1e-4
        )
        if tau == 0.5:
            np.testing.assert_allclose(got, q.astype(np.float64).mean(), atol=2e-5)

    def test_expectile_weighted_and_ties(self):
        q, counts = _integer_weights(10)
        q[3] = q[4]  # a tie
        got = value_losses.expectile_value(q, 0.7, counts.astype(np.float32))
        np.testing.assert_allclose(
            got, np_expectile(np.repeat(q, counts), 0.7), atol=2e-5
        )
        self.assertEqual(
            float(value_losses.expectile_value(jnp.array([2.0]), 0.3)), 2.0
        )

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lam_0.2", 0.2), ("lam_0.5", 0.5), ("lam_0.9", 0.9), ("lam_1", 1.0)
    )
    def test_chi_square_matches_scalar_minimisation(self, lam):
        q = _samples(11, n=999, scale=3.0)
        got = float(self.variant(value_losses.chi_square_value)(q, lam))
        want = np_minimize(lambda x: np_chi2(x, lam), q)
        loss = lambda v: np.mean(np_chi2(q.astype(np.float64) - v, lam))  # noqa: E731
        self.assertLessEqual(loss(got), loss(want) + 1e-6)
        if lam < 1:  # unique minimiser
            np.testing.assert_allclose(got, want, atol=2e-4)

    def test_chi_square_weighted_equals_repeated(self):
        q, counts = _integer_weights(12)
        got = value_losses.chi_square_value(q, 0.6, counts.astype(np.float32))
        want = value_losses.chi_square_value(np.repeat(q, counts), 0.6)
        np.testing.assert_allclose(got, want, atol=1e-5)

    def test_population_values_on_normal_samples(self):
        """ALGORITHMS.md 3.7: N(0, 1) expectiles, chi^2 statistics, TV quantile."""
        x = np.random.default_rng(13).normal(size=200_000).astype(np.float32)
        norm = stats.norm

        def expectile_pop(tau):
            foc = lambda v: (  # noqa: E731
                tau * (norm.pdf(v) - v * norm.sf(v))
                - (1 - tau) * (v * norm.cdf(v) + norm.pdf(v))
            )
            return optimize.brentq(foc, -5, 5)

        expectile = jax.jit(value_losses.expectile_value)
        chi_square = jax.jit(value_losses.chi_square_value)
        for tau, quoted in ((0.7, 0.3375), (0.9, 0.8618)):
            got = float(expectile(x, tau))
            np.testing.assert_allclose(expectile_pop(tau), quoted, atol=1e-3)
            np.testing.assert_allclose(got, quoted, atol=1e-2)
        for lam, quoted in ((0.5, -0.442), (0.7, 0.460), (0.9, 1.318)):
            np.testing.assert_allclose(chi_square(x, lam), quoted, atol=1e-2)
        np.testing.assert_allclose(
            value_losses.total_variation_value(x, 0.8), norm.ppf(0.75), atol=1e-2
        )

    def test_dispatch_and_vmap_over_parameter(self):
        q = _samples(14, n=40)
        for name, params in (
            ("gumbel", [0.5, 2.0]),
            ("chi_square", [0.3, 0.8]),
            ("total_variation", [0.6, 0.9]),
            ("expectile", [0.2, 0.8]),
        ):
            got = jax.vmap(
                lambda p, name=name: value_losses.value_minimizer(q, p, name)
            )(jnp.array(params))
            single = jax.jit(
                lambda p, name=name: value_losses.value_minimizer(q, p, name)
            )
            want = [float(single(p)) for p in params]
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)

    def test_gradient_of_mean_loss_vanishes_at_minimiser(self):
        q = _samples(15, n=300)
        for name, p in (("gumbel", 1.2), ("chi_square", 0.7), ("expectile", 0.8)):

            @jax.jit
            def slope(q, p=p, name=name):
                v = value_losses.value_minimizer(q, p, name)
                return jax.grad(
                    lambda v: jnp.mean(value_losses.value_loss(q - v, p, name))
                )(v)

            np.testing.assert_allclose(slope(q), 0.0, atol=1e-4, err_msg=name)

    @parameterized.named_parameters(
        ("tv_lam", value_losses.total_variation_value, 0.3, "lam"),
        ("chi_lam", value_losses.chi_square_value, 1.5, "lam"),
        ("expectile", value_losses.expectile_value, 0.0, "expectile"),
    )
    def test_bad_parameters(self, fn, param, field):
        with self.assertRaisesRegex(ConfigError, field):
            fn(jnp.zeros(3), param)


if __name__ == "__main__":
    absltest.main()
