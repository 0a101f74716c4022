"""Tests for jaxrl.ops.distributional against NumPy loops and closed forms."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import stats

from jaxrl.errors import ConfigError
from jaxrl.ops import distributional as dist

# The discrete law of ALGORITHMS.md section 4.7 (mean 0.8).
X4 = np.array([-2.0, 0.0, 1.0, 3.0], np.float32)
P4 = np.array([0.1, 0.3, 0.4, 0.2], np.float32)
# Standard normal CVaR_alpha = -phi(Phi^-1(alpha)) / alpha (ALGORITHMS.md 4.7).
NORMAL_CVAR = {0.05: -2.0627, 0.1: -1.7550, 0.25: -1.2711, 0.5: -0.7979}
NORMAL_QUANTILES_5 = np.array([-1.2816, -0.5244, 0.0, 0.5244, 1.2816])

# -------------------------------------------------------------------------- references


def _np_project(atoms, probs, support):
    """Bracket each atom between its two neighbouring support atoms (a loop)."""
    atoms, probs = np.asarray(atoms, np.float64), np.asarray(probs, np.float64)
    z = np.asarray(support, np.float64)
    m = np.zeros(len(z))
    for x, p in zip(atoms, probs, strict=True):
        if x <= z[0]:
            m[0] += p
            continue
        if x >= z[-1]:
            m[-1] += p
            continue
        i = 0
        while not z[i] <= x < z[i + 1]:
            i += 1
        frac = (x - z[i]) / (z[i + 1] - z[i])
        m[i] += p * (1.0 - frac)
        m[i + 1] += p * frac
    return m


def _np_quantile_huber(theta, target, kappa, tau):
    total = 0.0
    for i in range(len(theta)):
        acc = 0.0
        for j in range(len(target)):
            u = float(target[j]) - float(theta[i])
            if kappa == 0:
                rho = abs(u)
            elif abs(u) <= kappa:
                rho = 0.5 * u * u / kappa
            else:
                rho = abs(u) - 0.5 * kappa
            acc += abs(tau[i] - (1.0 if u < 0 else 0.0)) * rho
        total += acc / len(target)
    return total


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


# ------------------------------------------------------------------------- categorical


class CategoricalSupportTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_values(self):
        fn = self.variant(functools.partial(dist.categorical_support, num_atoms=51))
        z = fn(-10.0, 10.0)
        np.testing.assert_allclose(z, np.linspace(-10.0, 10.0, 51), atol=1e-5)
        self.assertEqual(float(z[0]), -10.0)
        self.assertEqual(float(z[-1]), 10.0)

    def test_traced_bounds_do_not_retrace(self):
        @jax.jit
        @chex.assert_max_traces(n=1)
        def supports(v_max):
            return jax.vmap(lambda v: dist.categorical_support(-v, v, 5))(v_max)

        got = supports(jnp.array([1.0, 2.0]))
        supports(jnp.array([3.0, 4.0]))
        np.testing.assert_allclose(got[1], [-2.0, -1.0, 0.0, 1.0, 2.0])

    @parameterized.named_parameters(
        ("equal", 1.0, 1.0, 5, "v_min"),
        ("reversed", 2.0, -2.0, 5, "v_min"),
        ("one_atom", -1.0, 1.0, 1, "num_atoms"),
        ("float_atoms", -1.0, 1.0, 5.0, "num_atoms"),
    )
    def test_bad_input_raises(self, v_min, v_max, n, field):
        with self.assertRaisesRegex(ConfigError, field):
            dist.categorical_support(v_min, v_max, n)


class ProjectCategoricalTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("even_seed0", 0, False), ("even_seed1", 1, False), ("uneven", 2, True)
    )
    def test_matches_numpy_loop(self, seed, uneven):
        rng = np.random.default_rng(seed)
        if uneven:
            support = np.sort(rng.uniform(-4, 4, size=9)).astype(np.float32)
        else:
            support = np.linspace(-4.0, 4.0, 11).astype(np.float32)
        atoms = rng.uniform(-6, 6, size=(5, 13)).astype(np.float32)  # some clipped
        probs = rng.dirichlet(np.ones(13), size=5).astype(np.float32)
        got = self.variant(jax.vmap(dist.project_categorical, (0, 0, None)))(
            atoms, probs, support
        )
        for b in range(5):
            np.testing.assert_allclose(
                got[b], _np_project(atoms[b], probs[b], support), atol=2e-6
            )

    def test_preserves_mass_always_and_mean_when_unclipped(self):
        rng = np.random.default_rng(3)
        b, n = 64, 21
        z = np.linspace(-5.0, 5.0, n).astype(np.float32)
        p_t = rng.dirichlet(np.ones(n), size=b).astype(np.float32)
        gamma = rng.uniform(0.5, 1.0, size=b).astype(np.float32)
        target = jax.jit(jax.vmap(dist.categorical_td_target, (0, 0, 0, None)))
        mean_t = np.sum(p_t.astype(np.float64) * z, -1)
        # Clipped: a large reward pushes mass past v_max; mass is still kept.
        r_big = rng.uniform(3.0, 8.0, size=b).astype(np.float32)
        m = np.asarray(target(r_big, gamma, p_t, z))
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-6)
        self.assertTrue(np.all(m >= 0))
        self.assertTrue(np.all(r_big + gamma * mean_t - m @ z > -1e-5))
        self.assertGreater(np.max(r_big + gamma * mean_t - m @ z), 0.1)
        # Unclipped: |r| + gamma * 5 <= 5 keeps every target atom inside.
        r = ((5.0 - 5.0 * gamma) * rng.uniform(-1, 1, size=b)).astype(np.float32)
        m = np.asarray(target(r, gamma, p_t, z))
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(m @ z, r + gamma * mean_t, atol=1e-5)
        # Arbitrary (unsorted, off-grid) atoms inside the support.
        x = rng.uniform(-5, 5, size=(b, 17)).astype(np.float32)
        q = rng.dirichlet(np.ones(17), size=b).astype(np.float32)
        m = np.asarray(
            jax.jit(jax.vmap(dist.project_categorical, (0, 0, None)))(x, q, z)
        )
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-6)
        np.testing.assert_allclose(m @ z, np.sum(q * x, -1), atol=1e-5)
        for i in range(4):
            np.testing.assert_allclose(m[i], _np_project(x[i], q[i], z), atol=2e-6)

    def test_support_atoms_are_fixed_points(self):
        z = dist.categorical_support(-1.0, 2.0, 7)
        p = jnp.array([0.1, 0.0, 0.2, 0.3, 0.05, 0.25, 0.1])
        np.testing.assert_allclose(dist.project_categorical(z, p, z), p, atol=1e-6)

    def test_rejects_bad_shapes(self):
        with self.assertRaises(AssertionError):
            dist.project_categorical(jnp.zeros(3), jnp.ones(4) / 4, jnp.arange(5.0))
        with self.assertRaisesRegex(ConfigError, "support"):
            dist.project_categorical(jnp.zeros(3), None, jnp.zeros(1))


class CategoricalTdTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("terminal", 0.0), ("nonterminal", 0.9))
    def test_target_and_loss_match_numpy(self, discount):
        rng = np.random.default_rng(6)
        b, a, n = 6, 3, 11
        z = np.linspace(-3.0, 3.0, n).astype(np.float32)
        logits_tm1 = rng.normal(size=(b, a, n)).astype(np.float32)
        a_tm1 = rng.integers(0, a, size=b).astype(np.int32)
        r_t = rng.normal(size=b).astype(np.float32)
        p_t = rng.dirichlet(np.ones(n), size=b).astype(np.float32)
        d_t = np.full(b, discount, np.float32)
        loss = self.variant(jax.vmap(dist.categorical_td_loss, (0, 0, 0, 0, 0, None)))(
            logits_tm1, a_tm1, r_t, d_t, p_t, z
        )
        for i in range(b):
            m = _np_project(r_t[i] + discount * z, p_t[i], z)
            lg = logits_tm1[i, a_tm1[i]].astype(np.float64)
            log_p = lg - lg.max() - np.log(np.sum(np.exp(lg - lg.max())))
            np.testing.assert_allclose(loss[i], -np.sum(m * log_p), rtol=1e-5)
            if discount == 0.0:  # all mass at r, split between two atoms
                self.assertLessEqual(int(np.sum(m > 1e-7)), 2)

    def test_gradient_is_softmax_minus_target(self):
        z = jnp.linspace(-2.0, 2.0, 5)
        logits = jnp.array([[0.3, -1.0, 0.2, 0.0, 1.0], [0.0] * 5])
        p_t = jnp.array([0.1, 0.2, 0.3, 0.2, 0.2])
        grad = jax.jit(jax.grad(dist.categorical_td_loss))(logits, 0, 0.5, 0.9, p_t, z)
        m = dist.categorical_td_target(0.5, 0.9, p_t, z)
        np.testing.assert_allclose(grad[0], jax.nn.softmax(logits[0]) - m, atol=1e-6)
        np.testing.assert_allclose(grad[1], 0.0)


# ---------------------------------------------------------------------------- quantile


class QuantileHuberLossTest(parameterized.TestCase):
    def test_midpoints(self):
        np.testing.assert_allclose(
            dist.quantile_midpoints(5), [0.1, 0.3, 0.5, 0.7, 0.9], rtol=1e-6
        )
        with self.assertRaisesRegex(ConfigError, "num_quantiles"):
            dist.quantile_midpoints(0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("pinball", 0.0), ("half", 0.5), ("kappa1", 1.0), ("kappa2", 2.0)
    )
    def test_matches_numpy_double_loop(self, kappa):
        rng = np.random.default_rng(7)
        theta = rng.normal(size=(4, 8)).astype(np.float32)
        target = (1.5 * rng.normal(size=(4, 6))).astype(np.float32)
        got = self.variant(jax.vmap(dist.quantile_huber_loss, (0, 0, None)))(
            theta, target, kappa
        )
        tau = (2 * np.arange(8) + 1) / 16
        want = [_np_quantile_huber(theta[b], target[b], kappa, tau) for b in range(4)]
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_custom_fractions_and_kappa_limit(self):
        rng = np.random.default_rng(8)
        theta, target = rng.normal(size=3), rng.normal(size=7)
        tau = np.array([0.05, 0.5, 0.8])
        got = dist.quantile_huber_loss(theta, target, 0.7, tau)
        np.testing.assert_allclose(
            got, _np_quantile_huber(theta, target, 0.7, tau), rtol=1e-5
        )
        small = dist.quantile_huber_loss(theta, target, 1e-6, tau)
        zero = dist.quantile_huber_loss(theta, target, 0.0, tau)
        np.testing.assert_allclose(small, zero, atol=1e-5)

    def test_gradients_finite_at_kappa_zero(self):
        theta, target = jnp.array([0.0, 1.0]), jnp.array([0.0, 2.0, -1.0])
        g_theta, g_kappa = jax.jit(jax.grad(dist.quantile_huber_loss, argnums=(0, 2)))(
            theta, target, 0.0
        )
        self.assertTrue(bool(jnp.all(jnp.isfinite(g_theta))))
        self.assertTrue(bool(jnp.isfinite(g_kappa)))

    def test_minimizer_is_normal_quantiles(self):
        """Gradient descent on the pinball loss lands on Phi^-1((2i-1)/10)."""
        target = jnp.asarray(_normal_grid(4000))
        grad = jax.grad(dist.quantile_huber_loss)

        @jax.jit
        def fit(theta0):
            def body(i, theta):
                lr = 2.0 / (1.0 + i / 100.0)
                return theta - lr * grad(theta, target, 0.0)

            return jax.lax.fori_loop(0, 600, body, theta0)

        theta = fit(jnp.zeros(5))
        np.testing.assert_allclose(theta, NORMAL_QUANTILES_5, atol=3e-3)
        np.testing.assert_allclose(
            theta, stats.norm.ppf([0.1, 0.3, 0.5, 0.7, 0.9]), atol=3e-3
        )

    def test_negative_kappa_raises(self):
        with self.assertRaisesRegex(ConfigError, "kappa"):
            dist.quantile_huber_loss(jnp.zeros(2), jnp.zeros(3), -1.0)


class QuantileTdTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_td_loss_is_huber_loss_on_shifted_target(self):
        rng = np.random.default_rng(9)
        theta_tm1 = rng.normal(size=(5, 3, 4)).astype(np.float32)
        a_tm1 = rng.integers(0, 3, size=5).astype(np.int32)
        r_t = rng.normal(size=5).astype(np.float32)
        d_t = np.array([0.9, 0.0, 0.9, 0.5, 0.9], np.float32)
        theta_t = rng.normal(size=(5, 6)).astype(np.float32)
        got = self.variant(jax.vmap(dist.quantile_td_loss, (0, 0, 0, 0, 0, None)))(
            theta_tm1, a_tm1, r_t, d_t, theta_t, 1.0
        )
        tau = (2 * np.arange(4) + 1) / 8
        for b in range(5):
            target = r_t[b] + d_t[b] * theta_t[b].astype(np.float64)
            want = _np_quantile_huber(theta_tm1[b, a_tm1[b]], target, 1.0, tau)
            np.testing.assert_allclose(got[b], want, rtol=1e-5)
        np.testing.assert_allclose(
            dist.quantile_td_target(1.0, 0.5, jnp.array([2.0, -4.0])), [2.0, -1.0]
        )

    def test_target_gradient_is_stopped(self):
        theta_tm1, theta_t = jnp.zeros((2, 3)), jnp.array([1.0, 2.0, 3.0])
        g = jax.jit(jax.grad(dist.quantile_td_loss, argnums=4))(
            theta_tm1, 0, 0.0, 0.9, theta_t
        )
        np.testing.assert_allclose(g, 0.0)
        g = jax.jit(
            jax.grad(
                functools.partial(dist.quantile_td_loss, stop_target_gradients=False),
                argnums=4,
            )
        )(theta_tm1, 0, 0.0, 0.9, theta_t)
        self.assertGreater(float(jnp.sum(jnp.abs(g))), 0.0)


# ------------------------------------------------------------------------- conversions


class ConversionTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("k1", 1), ("k4", 4), ("k7", 7))
    def test_categorical_to_quantiles_is_inverse_cdf(self, k):
        rng = np.random.default_rng(10 + k)
        fn = self.variant(
            jax.vmap(functools.partial(dist.categorical_to_quantiles, num_quantiles=k))
        )
        x = rng.normal(size=(6, 9)).astype(np.float32)
        p = rng.dirichlet(np.ones(9), size=6).astype(np.float32)
        got = fn(x, p)
        levels = (2 * np.arange(k) + 1) / (2 * k)
        for b in range(6):
            want = [_np_lower_quantile(x[b], p[b], lv) for lv in levels]
            np.testing.assert_allclose(got[b], want)

    def test_exact_cdf_jump(self):
        # P4's CDF is 0.1, 0.4, 0.8, 1.0; level 0.1 (K = 5) sits on the first jump.
        got = dist.categorical_to_quantiles(X4, P4, 5)
        np.testing.assert_allclose(got, [-2.0, 0.0, 1.0, 1.0, 3.0])

    def test_w1_projection_of_normal_gives_known_quantiles(self):
        grid = _normal_grid(100_000)
        got = dist.categorical_to_quantiles(grid, None, 5)
        np.testing.assert_allclose(got, NORMAL_QUANTILES_5, atol=2e-4)

    def test_round_trips(self):
        z = np.linspace(-4.0, 4.0, 41).astype(np.float32)
        delta = 0.2  # support spacing

        @jax.jit
        def via_quantiles(p):  # categorical -> 200 quantiles -> categorical
            theta = dist.categorical_to_quantiles(z, p, 200)
            return theta, dist.quantiles_to_categorical(theta, z)

        @jax.jit
        def via_categorical(theta):  # 16 quantiles -> categorical -> 16 quantiles
            cat = dist.quantiles_to_categorical(theta, z)
            return cat, dist.categorical_to_quantiles(z, cat, 16)

        rng = np.random.default_rng(20)
        for _ in range(3):
            p = rng.dirichlet(np.ones(41)).astype(np.float32)
            mean = np.sum(p * z)
            # Mass exact; the W1 projection moves the mean by less than delta,
            # and projecting back (no clipping) keeps the mean of the quantiles.
            theta, back = map(np.asarray, via_quantiles(p))
            np.testing.assert_allclose(back.sum(), 1.0, atol=1e-5)
            np.testing.assert_allclose(theta.mean(), mean, atol=delta)
            np.testing.assert_allclose(np.sum(back * z), theta.mean(), atol=1e-5)
            # Projection moves each atom's mass by <= delta (W_inf <= delta), so
            # the quantiles come back within delta; the mean is kept exactly.
            theta = np.sort(rng.uniform(-3.5, 3.5, size=16)).astype(np.float32)
            cat, theta2 = map(np.asarray, via_categorical(theta))
            np.testing.assert_allclose(cat.sum(), 1.0, atol=1e-5)
            np.testing.assert_allclose(np.sum(cat * z), theta.mean(), atol=1e-5)
            self.assertLessEqual(np.max(np.abs(theta2 - theta)), delta + 1e-5)


# ------------------------------------------------------------------------- functionals


class MomentsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_mean_and_variance(self):
        rng = np.random.default_rng(30)
        x, p = _random_law(rng, 12)
        x64, p64 = x.astype(np.float64), p.astype(np.float64)
        mu = np.sum(p64 * x64)
        np.testing.assert_allclose(self.variant(dist.return_mean)(x, p), mu, rtol=1e-5)
        np.testing.assert_allclose(
            self.variant(dist.return_variance)(x, p),
            np.sum(p64 * (x64 - mu) ** 2),
            rtol=1e-5,
        )
        # Quantile representation: equal weights.
        np.testing.assert_allclose(
            self.variant(dist.return_mean)(x), x64.mean(), rtol=1e-5
        )
        np.testing.assert_allclose(
            self.variant(dist.return_variance)(x, None), x64.var(), rtol=1e-5
        )
        np.testing.assert_allclose(dist.return_mean(X4, P4), 0.8, rtol=1e-6)


class CvarTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("a0_1", 0.1, -2.0),
        ("a0_25", 0.25, -0.8),
        ("a0_5", 0.5, -0.2),
        ("a1", 1.0, 0.8),
    )
    def test_discrete_closed_form(self, alpha, want):
        got = self.variant(dist.cvar)(X4, P4, alpha)
        np.testing.assert_allclose(got, want, atol=1e-6)
        np.testing.assert_allclose(_np_cvar_ru(X4, P4, alpha), want, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"a{a}", a) for a in NORMAL_CVAR])
    def test_normal_closed_form(self, alpha):
        # Midpoint rule for (1/alpha) int_0^alpha Phi^-1(u) du on M cells; the
        # error is dominated by the first cell (log singularity), well below 1e-3.
        grid = _normal_grid(20_000)
        got = self.variant(dist.cvar)(grid, None, alpha)
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
        got = self.variant(jax.vmap(dist.cvar, (None, None, 0)))(x, p, alphas)
        for a, g in zip(alphas, np.asarray(got), strict=True):
            np.testing.assert_allclose(g, _np_cvar_ru(x, p, float(a)), atol=2e-5)
            np.testing.assert_allclose(g, _np_cvar_tail(x, p, float(a)), atol=2e-5)
        np.testing.assert_allclose(got[-1], dist.return_mean(x, p), atol=1e-5)
        # VaR maximizes the Rockafellar-Uryasev objective.
        for a in alphas:
            b = float(dist.value_at_risk(x, p, a))
            ru_b = b - np.sum(p * np.maximum(b - x, 0.0)) / a
            np.testing.assert_allclose(ru_b, float(dist.cvar(x, p, a)), atol=2e-5)

    def test_small_alpha_tends_to_minimum_and_gradient_finite(self):
        x, p = jnp.asarray(X4), jnp.asarray(P4)
        np.testing.assert_allclose(dist.cvar(x, p, 1e-6), -2.0, atol=1e-5)
        gx, gp, ga = jax.jit(jax.grad(dist.cvar, argnums=(0, 1, 2)))(x, p, 0.25)
        # d/dx_i = taken_i / alpha: 0.1/0.25 on -2 and 0.15/0.25 on 0.
        np.testing.assert_allclose(gx, [0.4, 0.6, 0.0, 0.0], atol=1e-6)
        self.assertTrue(bool(jnp.all(jnp.isfinite(gp))) and bool(jnp.isfinite(ga)))

    def test_traced_alpha_vmaps_without_retracing(self):
        @jax.jit
        @chex.assert_max_traces(n=1)
        def cvars(alphas):
            return jax.vmap(dist.cvar, (None, None, 0))(X4, P4, alphas)

        got = cvars(jnp.array([0.1, 0.25]))
        cvars(jnp.array([0.5, 1.0]))
        np.testing.assert_allclose(got, [-2.0, -0.8], atol=1e-6)

    @parameterized.named_parameters(("zero", 0.0), ("negative", -0.1), ("above", 1.5))
    def test_bad_alpha_raises_when_concrete(self, alpha):
        for fn in (dist.cvar, dist.value_at_risk):
            with self.assertRaisesRegex(ConfigError, "alpha"):
                fn(X4, P4, alpha)
        # Traced values are not checked (documented).
        self.assertTrue(np.isfinite(float(jax.jit(dist.cvar)(X4, P4, 0.5))))


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
        self.assertEqual(float(self.variant(dist.value_at_risk)(X4, P4, alpha)), want)

    @chex.variants(with_jit=True, without_jit=True)
    def test_var_random_matches_numpy(self):
        rng = np.random.default_rng(50)
        x, p = _random_law(rng, 15)
        alphas = rng.uniform(0.01, 1.0, size=20).astype(np.float32)
        got = self.variant(jax.vmap(dist.value_at_risk, (None, None, 0)))(x, p, alphas)
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
        got = self.variant(dist.exceedance_probability)(X4, P4, b)
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
        fn = self.variant(functools.partial(dist.expected_utility, utility=name))
        want = np.sum(p.astype(np.float64) * np_f(x.astype(np.float64)))
        np.testing.assert_allclose(fn(x, p), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            fn(x, None), np.mean(np_f(x.astype(np.float64))), rtol=1e-5, atol=1e-6
        )

    def test_identities(self):
        x, p = jnp.asarray(X4), jnp.asarray(P4)
        # E min(X - b, 0) / alpha + b at b = VaR is the CVaR (Rockafellar-Uryasev).
        b = dist.value_at_risk(x, p, 0.25)
        ru = b + dist.expected_utility(x - b, p, "min_zero") / 0.25
        np.testing.assert_allclose(ru, -0.8, atol=1e-6)
        np.testing.assert_allclose(
            dist.expected_utility(x - 1.0, p, "indicator"),
            dist.exceedance_probability(x, p, 1.0),
        )
        np.testing.assert_allclose(
            dist.expected_utility(x, p, lambda v: jnp.exp(-v)),
            np.sum(P4 * np.exp(-X4)),
            rtol=1e-6,
        )

    def test_unknown_name_raises(self):
        with self.assertRaisesRegex(ConfigError, "utility"):
            dist.expected_utility(X4, P4, "sharpe")
        self.assertEqual(
            set(dist.UTILITY_NAMES),
            {"identity", "min_zero", "indicator", "neg_abs", "neg_square"},
        )


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
                nxt = dist.stock_update(carry, r_t, g)
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
            dist.stock_update(0.0, 1.0, gamma)

    @chex.variants(with_jit=True, without_jit=True)
    def test_identity_utility_ignores_stock(self):
        rng = np.random.default_rng(71)
        theta = rng.normal(size=(6, 5, 8)).astype(np.float32)  # [B, A, N]
        theta += 0.2 * np.arange(5, dtype=np.float32)[rng.permutation(5)][:, None]
        stocks = rng.uniform(-100, 100, size=6).astype(np.float32)
        act = self.variant(
            jax.vmap(functools.partial(dist.stock_greedy_action, utility="identity"))
        )
        got = act(theta, None, stocks)
        means = theta.astype(np.float64).mean(-1)
        np.testing.assert_array_equal(got, means.argmax(-1))
        # The same with a user callable f(x) = x (distinct means, no rounding tie).
        act_f = jax.vmap(
            functools.partial(dist.stock_greedy_action, utility=lambda x: x)
        )
        np.testing.assert_array_equal(act_f(theta, None, stocks), means.argmax(-1))
        values = jax.vmap(
            functools.partial(dist.stock_shifted_values, utility="identity")
        )(theta, None, stocks)
        np.testing.assert_allclose(
            values, stocks[:, None] + means, rtol=1e-5, atol=1e-4
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_indicator_maximizes_reaching_probability(self):
        safe_risky = jnp.array([[1.0, 1.0], [-10.0, 5.0]])  # quantiles [A, N]
        act = self.variant(
            functools.partial(dist.stock_greedy_action, utility="indicator")
        )
        self.assertEqual(int(act(safe_risky, None, -2.0)), 1)  # only risky can reach
        self.assertEqual(int(act(safe_risky, None, 0.0)), 0)  # safe reaches surely
        # Mean-greedy picks the safe action whatever the stock.
        mean_act = dist.stock_greedy_action(safe_risky, None, -2.0, "identity")
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
        fn = functools.partial(dist.stock_greedy_action, utility=name)
        got = self.variant(jax.vmap(fn, (None, 0, 0)))(z, probs, stocks)
        values = jax.vmap(
            functools.partial(dist.stock_shifted_values, utility=name), (None, 0, 0)
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
            dist.stock_greedy_action(jnp.zeros(5), None, 0.0, "indicator")
        with self.assertRaises(AssertionError):
            dist.stock_greedy_action(
                jnp.zeros((2, 5)), jnp.ones((2, 4)), 0.0, "identity"
            )


if __name__ == "__main__":
    absltest.main()
