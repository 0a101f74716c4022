"""Tests for jaxrl.ops.divergences against NumPy/SciPy references and closed forms.

References written here: the generators as NumPy formulas; conjugates and
optimal ratios by a numerical supremum (scipy ``minimize_scalar``); divergences
by ``scipy.stats.entropy`` and textbook sums.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import optimize, special, stats

from jaxrl.errors import ConfigError
from jaxrl.ops import divergences

F_NAMES = divergences.F_DIVERGENCES

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


# ------------------------------------------------------------------------ f-divergences


class GeneratorTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f, f) for f in F_NAMES])
    def test_matches_numpy_and_vanishes_at_one(self, f):
        t = np.array([0.0, 0.3, 1.0, 2.5, 7.0], np.float32)
        got = self.variant(lambda t: divergences.f_generator(t, f))(t)
        np.testing.assert_allclose(got, np_generator(t, f), rtol=1e-6)
        self.assertEqual(float(got[2]), 0.0)

    def test_unknown_name(self):
        with self.assertRaisesRegex(ConfigError, "f must be one of"):
            divergences.f_generator(1.0, "hellinger")


class ConjugateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f, f) for f in F_NAMES])
    def test_positive_conjugate_and_ratio_are_the_numerical_sup(self, f):
        ys = np.array([-5.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.45, 1.0, 2.0], np.float32)
        conj = self.variant(lambda y: divergences.f_conjugate_positive(y, f))(ys)
        ratio = self.variant(lambda y: divergences.f_optimal_ratio(y, f))(ys)
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
        got = np.asarray(divergences.f_conjugate(ys, f))
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
                divergences.f_conjugate(y, f), divergences.f_conjugate_positive(y, f)
            )

    def test_positive_conjugate_vs_dvl_code_form(self):
        """Textbook f*_p vs the code's max(y + y^2/4, 0): equal exactly for y >= 0."""
        y = np.linspace(-6, 3, 91).astype(np.float32)
        textbook = np.asarray(divergences.f_conjugate_positive(y, "chi_square"))
        code = np.maximum(y + y**2 / 4, 0)
        np.testing.assert_allclose(textbook[y >= 0], code[y >= 0], rtol=1e-6)
        self.assertTrue(np.all(textbook[y < -2] == -1.0))
        self.assertTrue(np.all(textbook[y < 0] < code[y < 0]))

    def test_no_nan_gradients(self):
        for f in F_NAMES:
            g = jax.grad(
                lambda y, f=f: jnp.sum(divergences.f_conjugate_positive(y, f))
            )(jnp.array([-3.0, -1.0, 0.2]))
            self.assertFalse(bool(jnp.any(jnp.isnan(g))), f)


class FDivergenceTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_textbook_sums(self):
        rng = np.random.default_rng(0)
        p, q = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(5))
        fn = self.variant(divergences.f_divergence, static_argnums=2)
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
        self.assertEqual(float(divergences.f_divergence(p, q, "chi_square")), np.inf)
        self.assertEqual(float(divergences.f_divergence(p, q, "reverse_kl")), np.inf)
        self.assertEqual(float(divergences.f_divergence(p, q, "forward_kl")), np.inf)
        np.testing.assert_allclose(
            divergences.f_divergence(p, q, "total_variation"), 0.5
        )
        self.assertEqual(float(divergences.f_divergence(q, q, "chi_square")), 0.0)


if __name__ == "__main__":
    absltest.main()
