"""Tests for jaxrl.ops.risk against NumPy loops and closed forms."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import stats

from jaxrl.errors import ConfigError
from jaxrl.ops import risk

# The discrete law of ALGORITHMS.md section 4.7 (mean 0.8).
X4 = np.array([-2.0, 0.0, 1.0, 3.0], np.float32)
P4 = np.array([0.1, 0.3, 0.4, 0.2], np.float32)
# Standard normal CVaR_alpha = -phi(Phi^-1(alpha)) / alpha (ALGORITHMS.md 4.7).
NORMAL_CVAR = {0.05: -2.0627, 0.1: -1.7550, 0.25: -1.2711, 0.5: -0.7979}

# -------------------------------------------------------------------------- references


def _np_sorted(x, p):
    order = np.argsort(x, kind="stable")
    return np.asarray(x, np.float64)[order], np.asarray(p, np.float64)[order]


def _np_cvar_tail(x, p, alpha):
    """Walk up the sorted atoms, taking mass until alpha is used up."""
    x, p = _np_sorted(x, p)
    left, acc = alpha, 0.0
    for xi, pi in zip(x, p, strict=True):
        take = min(pi, left)
        acc += take * xi
        left -= take
        if left <= 0:
            break
    return acc / alpha


def _np_cvar_ru(x, p, alpha):
    """Rockafellar-Uryasev max_b {b - E(b - X)_+ / alpha}; concave piecewise
    linear in b with kinks at the atoms, so the max is attained at an atom."""
    x, p = np.asarray(x, np.float64), np.asarray(p, np.float64)
    return max(b - np.sum(p * np.maximum(b - x, 0.0)) / alpha for b in x)


def _np_lower_quantile(x, p, level):
    x, p = _np_sorted(x, p)
    cdf = 0.0
    for xi, pi in zip(x, p, strict=True):
        cdf += pi
        if cdf >= level - 1e-9:
            return xi
    return x[-1]


def _normal_grid(m):
    """N(0, 1) on a fine quantile grid: Phi^-1 at the m midpoints."""
    return stats.norm.ppf((2 * np.arange(m) + 1) / (2 * m)).astype(np.float32)


def _random_law(rng, n, scale=3.0):
    x = (scale * rng.normal(size=n)).astype(np.float32)
    p = rng.dirichlet(np.ones(n)).astype(np.float32)
    return x, p


# ------------------------------------------------------------------------- functionals


class MomentsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_mean_and_variance(self):
        rng = np.random.default_rng(30)
        x, p = _random_law(rng, 12)
        x64, p64 = x.astype(np.float64), p.astype(np.float64)
        mu = np.sum(p64 * x64)
        np.testing.assert_allclose(self.variant(risk.return_mean)(x, p), mu, rtol=1e-5)
        np.testing.assert_allclose(
            self.variant(risk.return_variance)(x, p),
            np.sum(p64 * (x64 - mu) ** 2),
            rtol=1e-5,
        )
        # Quantile representation: equal weights.
        np.testing.assert_allclose(
            self.variant(risk.return_mean)(x), x64.mean(), rtol=1e-5
        )
        np.testing.assert_allclose(
            self.variant(risk.return_variance)(x, None), x64.var(), rtol=1e-5
        )
        np.testing.assert_allclose(risk.return_mean(X4, P4), 0.8, rtol=1e-6)


class CvarTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("a0_1", 0.1, -2.0),
        ("a0_25", 0.25, -0.8),
        ("a0_5", 0.5, -0.2),
        ("a1", 1.0, 0.8),
    )
    def test_discrete_closed_form(self, alpha, want):
        got = self.variant(risk.cvar)(X4, P4, alpha)
        np.testing.assert_allclose(got, want, atol=1e-6)
        np.testing.assert_allclose(_np_cvar_ru(X4, P4, alpha), want, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"a{a}", a) for a in NORMAL_CVAR])
    def test_normal_closed_form(self, alpha):
        # Midpoint rule for (1/alpha) int_0^alpha Phi^-1(u) du on M cells; the
        # error is dominated by the first cell (log singularity), well below 1e-3.
        grid = _normal_grid(20_000)
        got = self.variant(risk.cvar)(grid, None, alpha)
        exact = -stats.norm.pdf(stats.norm.ppf(alpha)) / alpha
        np.testing.assert_allclose(got, exact, atol=1e-3)
        np.testing.assert_allclose(got, NORMAL_CVAR[alpha], atol=1e-3)
        np.testing.assert_allclose(exact, NORMAL_CVAR[alpha], atol=5e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("seed0", 0), ("seed1", 1), ("seed2", 2))
    def test_tail_form_equals_rockafellar_uryasev(self, seed):
        rng = np.random.default_rng(40 + seed)
        x, p = _random_law(rng, 10)
        alphas = np.array([0.01, 0.07, 0.2, 0.333, 0.5, 0.9, 1.0], np.float32)
        got = self.variant(jax.vmap(risk.cvar, (None, None, 0)))(x, p, alphas)
        for a, g in zip(alphas, np.asarray(got), strict=True):
            np.testing.assert_allclose(g, _np_cvar_ru(x, p, float(a)), atol=2e-5)
            np.testing.assert_allclose(g, _np_cvar_tail(x, p, float(a)), atol=2e-5)
        np.testing.assert_allclose(got[-1], risk.return_mean(x, p), atol=1e-5)
        # VaR maximizes the Rockafellar-Uryasev objective.
        for a in alphas:
            b = float(risk.value_at_risk(x, p, a))
            ru_b = b - np.sum(p * np.maximum(b - x, 0.0)) / a
            np.testing.assert_allclose(ru_b, float(risk.cvar(x, p, a)), atol=2e-5)

    def test_small_alpha_tends_to_minimum_and_gradient_finite(self):
        x, p = jnp.asarray(X4), jnp.asarray(P4)
        np.testing.assert_allclose(risk.cvar(x, p, 1e-6), -2.0, atol=1e-5)
        gx, gp, ga = jax.jit(jax.grad(risk.cvar, argnums=(0, 1, 2)))(x, p, 0.25)
        # d/dx_i = taken_i / alpha: 0.1/0.25 on -2 and 0.15/0.25 on 0.
        np.testing.assert_allclose(gx, [0.4, 0.6, 0.0, 0.0], atol=1e-6)
        self.assertTrue(bool(jnp.all(jnp.isfinite(gp))) and bool(jnp.isfinite(ga)))

    def test_traced_alpha_vmaps_without_retracing(self):
        @jax.jit
        @chex.assert_max_traces(n=1)
        def cvars(alphas):
            return jax.vmap(risk.cvar, (None, None, 0))(X4, P4, alphas)

        got = cvars(jnp.array([0.1, 0.25]))
        cvars(jnp.array([0.5, 1.0]))
        np.testing.assert_allclose(got, [-2.0, -0.8], atol=1e-6)

    @parameterized.named_parameters(("zero", 0.0), ("negative", -0.1), ("above", 1.5))
    def test_bad_alpha_raises_when_concrete(self, alpha):
        for fn in (risk.cvar, risk.value_at_risk):
            with self.assertRaisesRegex(ConfigError, "alpha"):
                fn(X4, P4, alpha)
        # Traced values are not checked (documented).
        self.assertTrue(np.isfinite(float(jax.jit(risk.cvar)(X4, P4, 0.5))))


class VarAndExceedanceTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("a0_05", 0.05, -2.0),
        ("a0_1", 0.1, -2.0),  # exactly on the first CDF jump
        ("a0_3", 0.3, 0.0),
        ("a0_8", 0.8, 1.0),
        ("a0_81", 0.81, 3.0),
        ("a1", 1.0, 3.0),
    )
    def test_var_discrete(self, alpha, want):
        self.assertEqual(float(self.variant(risk.value_at_risk)(X4, P4, alpha)), want)

    @chex.variants(with_jit=True, without_jit=True)
    def test_var_random_matches_numpy(self):
        rng = np.random.default_rng(50)
        x, p = _random_law(rng, 15)
        alphas = rng.uniform(0.01, 1.0, size=20).astype(np.float32)
        got = self.variant(jax.vmap(risk.value_at_risk, (None, None, 0)))(x, p, alphas)
        want = [_np_lower_quantile(x, p, float(a)) for a in alphas]
        np.testing.assert_allclose(got, want)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("below", -5.0, 1.0),
        ("at_atom", 0.0, 0.9),
        ("between", 0.5, 0.6),
        ("top", 3.5, 0.0),
    )
    def test_exceedance(self, b, want):
        got = self.variant(risk.exceedance_probability)(X4, P4, b)
        np.testing.assert_allclose(got, want, atol=1e-6)


class ExpectedUtilityTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("identity", "identity", lambda x: x),
        ("min_zero", "min_zero", lambda x: np.minimum(x, 0.0)),
        ("indicator", "indicator", lambda x: (x >= 0).astype(np.float64)),
        ("neg_abs", "neg_abs", lambda x: -np.abs(x)),
        ("neg_square", "neg_square", lambda x: -(x**2)),
    )
    def test_named_utilities(self, name, np_f):
        rng = np.random.default_rng(60)
        x, p = _random_law(rng, 9)
        x[0] = 0.0  # indicator counts 0 as reached
        fn = self.variant(functools.partial(risk.expected_utility, utility=name))
        want = np.sum(p.astype(np.float64) * np_f(x.astype(np.float64)))
        np.testing.assert_allclose(fn(x, p), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            fn(x, None), np.mean(np_f(x.astype(np.float64))), rtol=1e-5, atol=1e-6
        )

    def test_identities(self):
        x, p = jnp.asarray(X4), jnp.asarray(P4)
        # E min(X - b, 0) / alpha + b at b = VaR is the CVaR (Rockafellar-Uryasev).
        b = risk.value_at_risk(x, p, 0.25)
        ru = b + risk.expected_utility(x - b, p, "min_zero") / 0.25
        np.testing.assert_allclose(ru, -0.8, atol=1e-6)
        np.testing.assert_allclose(
            risk.expected_utility(x - 1.0, p, "indicator"),
            risk.exceedance_probability(x, p, 1.0),
        )
        np.testing.assert_allclose(
            risk.expected_utility(x, p, lambda v: jnp.exp(-v)),
            np.sum(P4 * np.exp(-X4)),
            rtol=1e-6,
        )

    def test_unknown_name_raises(self):
        with self.assertRaisesRegex(ConfigError, "utility"):
            risk.expected_utility(X4, P4, "sharpe")
        self.assertEqual(
            set(risk.UTILITY_NAMES),
            {"identity", "min_zero", "indicator", "neg_abs", "neg_square"},
        )


if __name__ == "__main__":
    absltest.main()
