"""Tests for jaxrl.ops.dual against NumPy/SciPy references and closed forms.

References written here: the generators and value losses as NumPy formulas;
conjugates and optimal ratios by a numerical supremum (scipy
``minimize_scalar``); value-loss minimisers by ``minimize_scalar`` on the NumPy
loss, ``numpy.quantile(method="inverted_cdf")`` (total variation), a NumPy
bisection (expectile) and population formulas for N(0, 1) (ALGORITHMS.md 3.7);
divergences by ``scipy.stats.entropy`` and textbook sums; the ReCOIL dual
objective against the primal f-divergence of the visitation mixtures, minimised
over Q with L-BFGS.
"""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest, parameterized
from scipy import optimize, special, stats

from jaxrl import testing
from jaxrl.errors import ConfigError
from jaxrl.ops import dual

F_NAMES = dual.F_DIVERGENCES

# ------------------------------------------------------------------------ references


def np_generator(t, f):
    t = np.asarray(t, np.float64)
    if f == "chi_square":
        return (t - 1.0) ** 2
    if f == "total_variation":
        return 0.5 * np.abs(t - 1.0)
    if f == "reverse_kl":
        return special.xlogy(t, t)
    with np.errstate(divide="ignore"):
        return -np.log(t)


def np_sup(y, f, positive=True, bound=60.0):
    """Numerical sup_t (t y - f(t)) and its argmax (t >= 0, or all reals)."""
    lo = 1e-12 if f == "forward_kl" else (0.0 if positive else -bound)
    res = optimize.minimize_scalar(
        lambda t: -(t * y - float(np_generator(t, f))),
        bounds=(lo, bound),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return -res.fun, res.x


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


# ------------------------------------------------------------------------ f-divergences


class GeneratorTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f, f) for f in F_NAMES])
    def test_matches_numpy_and_vanishes_at_one(self, f):
        t = np.array([0.0, 0.3, 1.0, 2.5, 7.0], np.float32)
        got = self.variant(lambda t: dual.f_generator(t, f))(t)
        np.testing.assert_allclose(got, np_generator(t, f), rtol=1e-6)
        self.assertEqual(float(got[2]), 0.0)

    def test_unknown_name(self):
        with self.assertRaisesRegex(ConfigError, "f must be one of"):
            dual.f_generator(1.0, "hellinger")


class ConjugateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f, f) for f in F_NAMES])
    def test_positive_conjugate_and_ratio_are_the_numerical_sup(self, f):
        ys = np.array([-5.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.45, 1.0, 2.0], np.float32)
        conj = self.variant(lambda y: dual.f_conjugate_positive(y, f))(ys)
        ratio = self.variant(lambda y: dual.f_optimal_ratio(y, f))(ys)
        for y, c, t in zip(ys, np.asarray(conj), np.asarray(ratio), strict=True):
            infinite = (f == "total_variation" and y > 0.5) or (
                f == "forward_kl" and y >= 0
            )
            if infinite:
                self.assertEqual(c, np.inf)
                self.assertEqual(t, np.inf)
                continue
            want, t_star = np_sup(float(y), f)
            np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-6, err_msg=f"y={y}")
            # Fenchel-Young equality at the returned ratio (kinks included)
            value_at_t = t * y - np_generator(t, f)
            np.testing.assert_allclose(value_at_t, want, rtol=1e-5, atol=1e-5)
            if f in ("chi_square", "reverse_kl", "forward_kl"):  # unique maximiser
                np.testing.assert_allclose(t, t_star, rtol=1e-4, atol=1e-4)

    @parameterized.named_parameters(
        ("chi_square", "chi_square"), ("tv", "total_variation")
    )
    def test_unconstrained_conjugate_is_the_sup_over_reals(self, f):
        ys = np.array([-3.0, -0.5, -0.2, 0.1, 0.5, 1.5], np.float32)
        got = np.asarray(dual.f_conjugate(ys, f))
        for y, c in zip(ys, got, strict=True):
            if f == "total_variation" and abs(y) > 0.5:
                self.assertEqual(c, np.inf)
                continue
            want, _ = np_sup(float(y), f, positive=False)
            np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-6)

    def test_kl_conjugates_need_no_constraint(self):
        y = jnp.array([-2.0, -0.5, 0.3])
        for f in ("reverse_kl", "forward_kl"):
            chex.assert_trees_all_equal(
                dual.f_conjugate(y, f), dual.f_conjugate_positive(y, f)
            )

    def test_positive_conjugate_vs_dvl_code_form(self):
        """Textbook f*_p vs the code's max(y + y^2/4, 0): equal exactly for y >= 0."""
        y = np.linspace(-6, 3, 91).astype(np.float32)
        textbook = np.asarray(dual.f_conjugate_positive(y, "chi_square"))
        code = np.maximum(y + y**2 / 4, 0)
        np.testing.assert_allclose(textbook[y >= 0], code[y >= 0], rtol=1e-6)
        self.assertTrue(np.all(textbook[y < -2] == -1.0))
        self.assertTrue(np.all(textbook[y < 0] < code[y < 0]))

    def test_no_nan_gradients(self):
        for f in F_NAMES:
            g = jax.grad(lambda y, f=f: jnp.sum(dual.f_conjugate_positive(y, f)))(
                jnp.array([-3.0, -1.0, 0.2])
            )
            self.assertFalse(bool(jnp.any(jnp.isnan(g))), f)


class FDivergenceTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_textbook_sums(self):
        rng = np.random.default_rng(0)
        p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
        fn = self.variant(dual.f_divergence, static_argnums=2)
        np.testing.assert_allclose(
            fn(p, q, "reverse_kl"), stats.entropy(p, q), rtol=1e-5
        )
        np.testing.assert_allclose(
            fn(p, q, "forward_kl"), stats.entropy(q, p), rtol=1e-5
        )
        np.testing.assert_allclose(
            fn(p, q, "total_variation"), 0.5 * np.abs(p - q).sum(), rtol=1e-5
        )
        np.testing.assert_allclose(
            fn(p, q, "chi_square"), np.sum((p - q) ** 2 / q), rtol=1e-5
        )

    def test_disjoint_supports(self):
        p, q = jnp.array([0.5, 0.5, 0.0]), jnp.array([0.0, 0.5, 0.5])
        self.assertEqual(float(dual.f_divergence(p, q, "chi_square")), np.inf)
        self.assertEqual(float(dual.f_divergence(p, q, "reverse_kl")), np.inf)
        self.assertEqual(float(dual.f_divergence(p, q, "forward_kl")), np.inf)
        np.testing.assert_allclose(dual.f_divergence(p, q, "total_variation"), 0.5)
        self.assertEqual(float(dual.f_divergence(q, q, "chi_square")), 0.0)


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
        got = self.variant(lambda x, p: dual.value_loss(x, p, name))(x, param)
        np.testing.assert_allclose(got, ref(x, param), rtol=2e-5, atol=1e-6)

    def test_gumbel_clip_freezes_large_residuals(self):
        x = jnp.array([1.0, 12.0, 30.0])
        loss = dual.gumbel_loss(x, 2.0, max_clip=5.0)
        np.testing.assert_allclose(loss, np_gumbel([1.0, 10.0, 10.0], 2.0), rtol=1e-6)
        grad = jax.grad(lambda x: jnp.sum(dual.gumbel_loss(x, 2.0, 5.0)))(x)
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
            dual.value_loss(jnp.zeros(3), param, name)

    def test_unknown_loss(self):
        with self.assertRaisesRegex(ConfigError, "value loss must be one of"):
            dual.value_loss(jnp.zeros(3), 0.5, "huber")


class GumbelStabilisersTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("no_clip", math.inf), ("clip_7", 7.0), ("clip_1", 1.0)
    )
    def test_rescaled_loss_is_scaled_gumbel_loss(self, clip):
        x = _samples(0, n=64, scale=3.0)
        beta = 1.3
        got = self.variant(dual.gumbel_rescale_loss)(x, beta, clip)
        z = np.minimum(x.astype(np.float64) / beta, clip)
        m = max(z.max(), -1.0)
        want = np.exp(-m) * np.mean(np.expm1(z) - z)
        np.testing.assert_allclose(got, want, rtol=1e-4)

    def test_rescaled_gradient_vanishes_at_the_closed_form(self):
        q = _samples(1, n=500)
        beta = 2.0
        v_star = dual.gumbel_value(q, beta)
        scaled = jax.jit(jax.grad(lambda v: dual.gumbel_rescale_loss(q - v, beta)))
        np.testing.assert_allclose(scaled(v_star), 0.0, atol=1e-5)
        # the rescaling is a positive, gradient-free factor: same descent direction
        plain = jax.jit(jax.grad(lambda v: jnp.mean(dual.gumbel_loss(q - v, beta))))
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
        got = self.variant(jax.grad(dual.gumbel_log_loss), static_argnums=())(
            jnp.asarray(x), beta, clip
        )
        z = np.minimum(x.astype(np.float64) / beta, clip)
        j = np.mean(np.expm1(z) - z)
        want = (np.expm1(z) / (j + 1.0)) / beta / len(x)
        np.testing.assert_allclose(got, want, rtol=1e-4)
        if math.isinf(clip):  # = d/dx log(1 + J)
            h = jax.grad(lambda x: jnp.log1p(jnp.mean(dual.gumbel_loss(x, beta))))(x)
            np.testing.assert_allclose(got, h, rtol=1e-4)

    def test_huge_residuals_stay_finite_with_rescaling(self):
        x = jnp.array([0.0, 50.0, 80.0])
        self.assertTrue(bool(jnp.isfinite(dual.gumbel_rescale_loss(x, 1.0))))
        g = jax.grad(lambda x: dual.gumbel_rescale_loss(x, 1.0))(x)
        self.assertTrue(bool(jnp.all(jnp.isfinite(g))))


# ------------------------------------------------------------------------ minimisers


class GumbelValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("beta_small", 0.3), ("beta_one", 1.0), ("beta_big", 8.0)
    )
    def test_is_the_minimiser_of_the_sample_loss(self, beta):
        q = _samples(3)
        got = float(self.variant(dual.gumbel_value)(q, beta))
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
            got = float(dual.gumbel_value(x, beta))
            np.testing.assert_allclose(got, np_logmeanexp(x, beta), atol=1e-4)
            np.testing.assert_allclose(got, mu + sigma**2 / (2 * beta), atol=1e-2)

    @chex.variants(with_jit=True, without_jit=True)
    def test_weighted_equals_repeated_samples(self):
        q, counts = _integer_weights(5)
        got = self.variant(dual.gumbel_value)(q, 0.7, counts.astype(np.float32))
        np.testing.assert_allclose(
            got, np_logmeanexp(np.repeat(q, counts), 0.7), rtol=1e-5
        )

    def test_limits(self):
        q = jnp.array([0.3, -1.0, 2.0, 5.0])
        probs = jnp.array([0.2, 0.3, 0.5, 0.0])  # 5.0 is out of the data
        hard_max = 2.0
        mean = float(np.dot([0.2, 0.3, 0.5], [0.3, -1.0, 2.0]))
        self.assertEqual(float(dual.gumbel_value(q, 0.0, probs)), hard_max)
        np.testing.assert_allclose(
            dual.gumbel_value(q, math.inf, probs), mean, rtol=1e-6
        )
        errs = [
            float(dual.gumbel_value(q, b, probs)) - hard_max for b in (1e-1, 1e-2, 1e-3)
        ]
        # beta -> 0: 0 <= V - max <= ... V in [max + beta log p(argmax), max]
        for b, e in zip((1e-1, 1e-2, 1e-3), errs, strict=True):
            self.assertLessEqual(e, 1e-6)
            self.assertGreaterEqual(e, b * math.log(0.5) - 1e-6)
        # beta -> inf: approaches the behaviour mean at rate O(1/beta)
        gaps = [
            abs(float(dual.gumbel_value(q, b, probs)) - mean)
            for b in (10.0, 100.0, 1e4)
        ]
        self.assertLess(gaps[2], gaps[1])
        self.assertLess(gaps[1], gaps[0])
        self.assertLess(gaps[2], 1e-3)

    def test_vmap_over_beta_equals_separate_calls(self):
        q = _samples(6, n=50)
        betas = jnp.array([0.0, 0.1, 1.0, 10.0, jnp.inf])
        got = jax.vmap(dual.gumbel_value, (None, 0))(q, betas)
        single = jax.jit(dual.gumbel_value)
        want = [float(single(q, b)) for b in betas]
        np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_gradient_is_the_softmax(self):
        q = jnp.array([0.1, 1.0, -0.5])
        g = jax.grad(dual.gumbel_value)(q, 0.5)
        np.testing.assert_allclose(g, special.softmax(np.asarray(q) / 0.5), rtol=1e-5)

    def test_bad_beta(self):
        with self.assertRaisesRegex(ConfigError, "beta"):
            dual.gumbel_value(jnp.zeros(3), -0.1)


class QuantileExpectileChiSquareValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lam_0.6", 0.6), ("lam_0.8", 0.8), ("lam_0.95", 0.95), ("lam_1", 1.0)
    )
    def test_total_variation_is_the_stated_quantile(self, lam):
        q = _samples(7, n=1001)
        got = float(self.variant(dual.total_variation_value)(q, lam))
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
        got = dual.total_variation_value(q, 0.8, counts.astype(np.float32))
        want = np.quantile(np.repeat(q, counts), 0.75, method="inverted_cdf")
        self.assertEqual(float(got), float(want))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("tau_0.1", 0.1), ("tau_0.5", 0.5), ("tau_0.9", 0.9)
    )
    def test_expectile_matches_bisection_and_minimises(self, tau):
        q = _samples(9, n=777)
        got = float(self.variant(dual.expectile_value)(q, tau))
        np.testing.assert_allclose(got, np_expectile(q, tau), atol=2e-5)
        np.testing.assert_allclose(
            got, np_minimize(lambda x: np_expectile_loss(x, tau), q), atol=1e-4
        )
        if tau == 0.5:
            np.testing.assert_allclose(got, q.astype(np.float64).mean(), atol=2e-5)

    def test_expectile_weighted_and_ties(self):
        q, counts = _integer_weights(10)
        q[3] = q[4]  # a tie
        got = dual.expectile_value(q, 0.7, counts.astype(np.float32))
        np.testing.assert_allclose(
            got, np_expectile(np.repeat(q, counts), 0.7), atol=2e-5
        )
        self.assertEqual(float(dual.expectile_value(jnp.array([2.0]), 0.3)), 2.0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lam_0.2", 0.2), ("lam_0.5", 0.5), ("lam_0.9", 0.9), ("lam_1", 1.0)
    )
    def test_chi_square_matches_scalar_minimisation(self, lam):
        q = _samples(11, n=999, scale=3.0)
        got = float(self.variant(dual.chi_square_value)(q, lam))
        want = np_minimize(lambda x: np_chi2(x, lam), q)
        loss = lambda v: np.mean(np_chi2(q.astype(np.float64) - v, lam))  # noqa: E731
        self.assertLessEqual(loss(got), loss(want) + 1e-6)
        if lam < 1:  # unique minimiser
            np.testing.assert_allclose(got, want, atol=2e-4)

    def test_chi_square_weighted_equals_repeated(self):
        q, counts = _integer_weights(12)
        got = dual.chi_square_value(q, 0.6, counts.astype(np.float32))
        want = dual.chi_square_value(np.repeat(q, counts), 0.6)
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

        expectile = jax.jit(dual.expectile_value)
        chi_square = jax.jit(dual.chi_square_value)
        for tau, quoted in ((0.7, 0.3375), (0.9, 0.8618)):
            got = float(expectile(x, tau))
            np.testing.assert_allclose(expectile_pop(tau), quoted, atol=1e-3)
            np.testing.assert_allclose(got, quoted, atol=1e-2)
        for lam, quoted in ((0.5, -0.442), (0.7, 0.460), (0.9, 1.318)):
            np.testing.assert_allclose(chi_square(x, lam), quoted, atol=1e-2)
        np.testing.assert_allclose(
            dual.total_variation_value(x, 0.8), norm.ppf(0.75), atol=1e-2
        )

    def test_dispatch_and_vmap_over_parameter(self):
        q = _samples(14, n=40)
        for name, params in (
            ("gumbel", [0.5, 2.0]),
            ("chi_square", [0.3, 0.8]),
            ("total_variation", [0.6, 0.9]),
            ("expectile", [0.2, 0.8]),
        ):
            got = jax.vmap(lambda p, name=name: dual.value_minimizer(q, p, name))(
                jnp.array(params)
            )
            single = jax.jit(lambda p, name=name: dual.value_minimizer(q, p, name))
            want = [float(single(p)) for p in params]
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)

    def test_gradient_of_mean_loss_vanishes_at_minimiser(self):
        q = _samples(15, n=300)
        for name, p in (("gumbel", 1.2), ("chi_square", 0.7), ("expectile", 0.8)):

            @jax.jit
            def slope(q, p=p, name=name):
                v = dual.value_minimizer(q, p, name)
                return jax.grad(lambda v: jnp.mean(dual.value_loss(q - v, p, name)))(v)

            np.testing.assert_allclose(slope(q), 0.0, atol=1e-4, err_msg=name)

    @parameterized.named_parameters(
        ("tv_lam", dual.total_variation_value, 0.3, "lam"),
        ("chi_lam", dual.chi_square_value, 1.5, "lam"),
        ("expectile", dual.expectile_value, 0.0, "expectile"),
    )
    def test_bad_parameters(self, fn, param, field):
        with self.assertRaisesRegex(ConfigError, field):
            fn(jnp.zeros(3), param)


# ------------------------------------------------------------------------ AWR


class AWRTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("beta_3", 3.0, 100.0), ("beta_0", 0.0, 100.0), ("no_clip", 1.0, np.inf)
    )
    def test_weights_match_numpy(self, beta, max_weight):
        adv = np.linspace(-5, 5, 21).astype(np.float32)
        got = self.variant(dual.awr_weights)(adv, beta, max_weight)
        want = np.minimum(np.exp(beta * adv.astype(np.float64)), max_weight)
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_clipped_exactly_at_100_without_overflow(self):
        w = dual.awr_weights(jnp.array([1e3, 1e30]), 3.0)
        chex.assert_trees_all_equal(w, jnp.array([100.0, 100.0]))
        g = jax.grad(lambda a: jnp.sum(dual.awr_weights(a, 3.0)))(jnp.array([1e3, 0.0]))
        np.testing.assert_allclose(g, [0.0, 3.0], rtol=1e-6)

    def test_loss_is_weighted_nll_without_critic_gradient(self):
        log_p = jnp.log(jnp.array([0.2, 0.5]))
        adv = jnp.array([0.5, -1.0])
        got = dual.awr_loss(log_p, adv, 2.0)
        want = -np.minimum(np.exp(2.0 * np.asarray(adv)), 100) * np.asarray(log_p)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        g_adv = jax.grad(lambda a: jnp.sum(dual.awr_loss(log_p, a, 2.0)))(adv)
        chex.assert_trees_all_equal(g_adv, jnp.zeros(2))
        g_logp = jax.grad(lambda lp: jnp.sum(dual.awr_loss(lp, adv, 0.0)))(log_p)
        np.testing.assert_allclose(g_logp, [-1.0, -1.0])  # beta = 0: behaviour cloning

    @chex.variants(with_jit=True, without_jit=True)
    def test_policy_maximises_weighted_likelihood(self):
        rng = np.random.default_rng(16)
        q = rng.normal(size=5).astype(np.float32) * 2
        mu = np.array([0.1, 0.0, 0.4, 0.3, 0.2], np.float32)
        v, beta = 0.4, 2.0
        got = np.asarray(self.variant(dual.awr_policy)(q, v, beta, mu))
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
        got = dual.awr_policy(jnp.array([10.0, -3.0, 0.0]), 0.0, 0.0, mu)
        np.testing.assert_allclose(got, mu, rtol=1e-6)

    def test_policy_handles_extreme_values(self):
        got = dual.awr_policy(jnp.array([-1e4, -1e4 + 1.0]), 0.0, 1.0)
        np.testing.assert_allclose(got, special.softmax([0.0, 1.0]), rtol=1e-5)

    def test_bad_parameters(self):
        with self.assertRaisesRegex(ConfigError, "beta"):
            dual.awr_weights(jnp.zeros(2), -1.0)
        with self.assertRaisesRegex(ConfigError, "max_weight"):
            dual.awr_weights(jnp.zeros(2), 1.0, 0.0)


# ------------------------------------------------------------------------ ReCOIL


def _occupancy(P, mu0, pi, gamma):
    """Normalised discounted state-action occupancy (NumPy, float64)."""
    S = P.shape[0]
    p_pi = np.einsum("sa,sat->st", pi, P)
    d_s = (1 - gamma) * np.linalg.solve((np.eye(S) - gamma * p_pi).T, mu0)
    return d_s[:, None] * pi


@functools.lru_cache
def _recoil_fns(f):
    """Jitted value-and-grad of ReCOIL's tabular dual objective (one compile per f)."""

    def objective(x, logits, P, mu0, d_e, d_sub, beta, gamma):
        S, A = mu0.shape[0], d_e.shape[1]
        q = jnp.reshape(x, (S, A))
        pi = jax.nn.softmax(logits, axis=-1)
        v_next = jnp.einsum("sat,t->sa", P, jnp.sum(pi * q, axis=-1))
        disc = jnp.full(S * A, 1.0, q.dtype) * gamma
        return dual.recoil_objective(
            jnp.ravel(q),
            jnp.ravel(q),
            jnp.ravel(v_next),
            disc,
            jnp.ravel(q),
            jnp.ravel(v_next),
            disc,
            beta,
            gamma,
            f,
            weights_0=jnp.ravel(mu0[:, None] * pi),
            weights_mix=jnp.ravel(beta * d_e + (1 - beta) * d_sub),
            weights_sub=jnp.ravel(d_sub),
        )

    return jax.jit(jax.value_and_grad(objective)), jax.jit(
        jax.grad(objective, argnums=1)
    )


class _Tabular:
    """A tiny MDP with an expert (stochastic, full support) and arbitrary data."""

    def __init__(self, seed=0, S=3, A=2, gamma=0.8):
        rng = np.random.default_rng(seed)
        mdp = testing.random_mdp(rng, S, A, gamma=gamma)
        self.P = np.asarray(mdp.P, np.float64)
        self.mu0 = np.asarray(mdp.mu0, np.float64)
        self.gamma, self.S, self.A = gamma, S, A
        self.pi_e = rng.dirichlet(3 * np.ones(A), size=S)
        self.d_e = _occupancy(self.P, self.mu0, self.pi_e, gamma)
        self.d_s = _occupancy(
            self.P, self.mu0, rng.dirichlet(np.ones(A), size=S), gamma
        )

    def _args(self, d_sub, beta):
        return (self.P, self.mu0, self.d_e, d_sub, beta, self.gamma)

    def min_over_q(self, logits, d_sub, beta, f):
        """min_Q J(Q, softmax(logits)) by L-BFGS; returns (value, argmin)."""
        value_and_grad, _ = _recoil_fns(f)
        args = (np.asarray(logits, np.float64), *self._args(d_sub, beta))

        def fun(x):
            val, grad = value_and_grad(x, *args)
            return float(val), np.asarray(grad, np.float64)

        res = optimize.minimize(
            fun,
            np.zeros(self.S * self.A),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
        )
        return res.fun, res.x

    def policy_gradient(self, logits, q_star, d_sub, beta, f):
        """d/dlogits min_Q J(Q, pi) = dJ/dlogits at the minimiser (envelope theorem)."""
        _, grad = _recoil_fns(f)
        return np.asarray(grad(q_star, logits, *self._args(d_sub, beta)), np.float64)


@pytest.fixture(scope="class")
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.usefixtures("x64")
class TestReCOILObjective:
    @pytest.mark.parametrize("f", ["chi_square", "reverse_kl"])
    @pytest.mark.parametrize("beta", [0.3, 1.0])
    def test_min_over_q_is_minus_the_mixture_divergence(self, f, beta):
        """Strong duality: min_Q J(Q, pi) = -D_f(mixture of d^pi || mixture of d^E)."""
        t = _Tabular(seed=1)
        logits = np.random.default_rng(2).normal(size=(t.S, t.A))
        d_pi = _occupancy(t.P, t.mu0, special.softmax(logits, axis=-1), t.gamma)
        mix_pi = beta * d_pi + (1 - beta) * t.d_s
        mix_e = beta * t.d_e + (1 - beta) * t.d_s
        primal = float(dual.f_divergence(mix_pi, mix_e, f))
        value, _ = t.min_over_q(logits, t.d_s, beta, f)
        np.testing.assert_allclose(value, -primal, atol=1e-7)

    def test_expert_only_data_gives_behaviour_cloning(self):
        """With d^S = d^E the ReCOIL-optimal policy is the empirical expert policy."""
        t = _Tabular(seed=3)
        beta, f = 0.5, "chi_square"
        bc = t.d_e / t.d_e.sum(-1, keepdims=True)  # empirical expert policy
        value, _ = t.min_over_q(np.log(bc), t.d_e, beta, f)
        np.testing.assert_allclose(value, 0.0, atol=1e-9)
        rng = np.random.default_rng(4)
        for _ in range(3):  # every other policy is strictly worse
            value, _ = t.min_over_q(rng.normal(size=(t.S, t.A)), t.d_e, beta, f)
            assert value < -1e-4

        def neg_value(flat):  # maximise over policies, gradient by the envelope theorem
            logits = np.reshape(flat, (t.S, t.A))
            value, q_star = t.min_over_q(logits, t.d_e, beta, f)
            return -value, -t.policy_gradient(logits, q_star, t.d_e, beta, f).ravel()

        res = optimize.minimize(
            neg_value,
            np.zeros(t.S * t.A),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-9},
        )
        pi_opt = special.softmax(np.reshape(res.x, (t.S, t.A)), axis=-1)
        np.testing.assert_allclose(pi_opt, bc, atol=1e-3)

    def test_minibatch_means_and_weights_agree(self):
        rng = np.random.default_rng(5)
        q0, qm, vm, qs, vs = (rng.normal(size=6) for _ in range(5))
        dm, ds = np.full(6, 0.9), np.where(rng.random(6) < 0.3, 0.0, 0.9)
        got = dual.recoil_objective(q0, qm, vm, dm, qs, vs, ds, 0.4, 0.9)
        ym, ys = dm * vm - qm, ds * vs - qs
        conj = np.where(ym >= -2, ym + ym**2 / 4, -1.0)
        want = 0.4 * 0.1 * q0.mean() + conj.mean() - 0.6 * ys.mean()
        np.testing.assert_allclose(got, want, rtol=1e-10)
        w = np.ones(6)
        got_w = dual.recoil_objective(
            q0,
            qm,
            vm,
            dm,
            qs,
            vs,
            ds,
            0.4,
            0.9,
            weights_0=w,
            weights_mix=w,
            weights_sub=w,
        )
        np.testing.assert_allclose(got_w, want, rtol=1e-10)

    def test_bad_mix_weight_and_f(self):
        one = jnp.ones(2)
        with pytest.raises(ConfigError, match="mix_weight"):
            dual.recoil_objective(one, one, one, one, one, one, one, 0.0, 0.9)
        with pytest.raises(ConfigError, match="f must be one of"):
            dual.recoil_objective(one, one, one, one, one, one, one, 0.5, 0.9, "js")


class ReCOILCriticTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("live", False), ("terminal", True))
    def test_td_target(self, terminated):
        got = self.variant(dual.recoil_td_target)(3.0, terminated, 0.99)
        want = -2.0 + 0.99 * (-200.0 if terminated else 3.0)
        np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_critic_loss_and_its_tabular_minimiser(self):
        """One expert and one mixture sample per pair: Q* = (Q_gap + y) / 2 on both."""
        q_e, q_m, y = 150.0, 1.0, -4.0
        want = 0.5 * (q_e - 200.0) ** 2 + 0.5 * (q_m - y) ** 2
        np.testing.assert_allclose(dual.recoil_critic_loss(q_m, y, q_e), want)
        # a state-action seen in both halves: the loss in q is minimised at the mean
        grad = jax.grad(lambda q: dual.recoil_critic_loss(q, y, q))((200.0 + y) / 2)
        np.testing.assert_allclose(grad, 0.0, atol=1e-4)
        g = jax.grad(dual.recoil_critic_loss, argnums=1)(1.0, 3.0, 198.0)
        self.assertEqual(float(g), 0.0)  # no gradient into the target


if __name__ == "__main__":
    absltest.main()
