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
from jaxrl.ops import risk, stock
from tests.jaxrl.ops.test_risk import P4, X4, _normal_grid, _np_lower_quantile

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


# ------------------------------------------------------------------------- re-exports


def test_reexports_risk_and_stock_names_as_the_same_objects():
    for module in (risk, stock):
        for name in module.__all__:
            assert name in dist.__all__, name
            assert getattr(dist, name) is getattr(module, name), name


if __name__ == "__main__":
    absltest.main()
