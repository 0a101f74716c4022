"""Tests for jaxrl.ops.tsallis against NumPy/SciPy references and identities."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import optimize

from jaxrl.errors import ConfigError
from jaxrl.ops import regularized, tsallis

Q_VALUES = (1.0, 1.5, 2.0, 3.0)

# ----------------------------------------------------------------------------- references


def _np_log_q(x, q):
    x = np.asarray(x, np.float64)
    if q == 1.0:
        return np.log(x)
    return (x ** (q - 1.0) - 1.0) / (q - 1.0)


def _np_exp_q(x, q):
    x = np.asarray(x, np.float64)
    if q == 1.0:
        return np.exp(x)
    base = np.maximum(1.0 + (q - 1.0) * x, 0.0)
    return base ** (1.0 / (q - 1.0))


def _np_threshold(z, q):
    """Root of sum_a exp_q(z_a - psi) = 1 by Brent's method (independent of the op)."""
    z = np.asarray(z, np.float64)
    if q == 1.0:
        m = z.max()
        return m + np.log(np.exp(z - m).sum())

    def f(psi):
        return _np_exp_q(z - psi, q).sum() - 1.0

    return optimize.brentq(f, z.max(), z.max() + 1.0 / (q - 1.0), xtol=1e-14)


def _np_policy(qv, tau, q):
    z = np.asarray(qv, np.float64) / tau
    return _np_exp_q(z - _np_threshold(z, q), q)


def _np_value(qv, tau, q):
    """sum_a pi (qv - tau ln_q pi) with ln_q 0 = -1/(q-1) (times pi = 0)."""
    pi = _np_policy(qv, tau, q)
    safe = np.where(pi > 0, pi, 1.0)
    return float(np.sum(np.where(pi > 0, pi * (qv - tau * _np_log_q(safe, q)), 0.0)))


def _np_projection(z):
    """Euclidean projection onto the simplex, by a generic QP solver."""
    n = len(z)
    res = optimize.minimize(
        lambda p: np.sum((p - z) ** 2),
        np.full(n, 1.0 / n),
        jac=lambda p: 2 * (p - z),
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return res.x


def _np_regularized_argmax(qv, tau, q):
    """argmax_pi <pi, qv> + (tau / q) S_q(pi) over the simplex, by SLSQP."""
    n = len(qv)

    def neg(p):
        p = np.clip(p, 0.0, 1.0)
        ent = (1.0 - np.sum(p**q)) / (q - 1.0)
        return -(p @ qv + tau / q * ent)

    res = optimize.minimize(
        neg,
        np.full(n, 1.0 / n),
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return res.x


def _values(seed, b=6, a=5, scale=2.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=(b, a))).astype(np.float32)


# ----------------------------------------------------------------------------- q-log / q-exp


class LogExpQTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"q{q}", q) for q in (*Q_VALUES, 1.2, 4.0)])
    def test_match_numpy(self, q):
        x = np.linspace(0.05, 3.0, 17).astype(np.float32)
        np.testing.assert_allclose(
            self.variant(tsallis.log_q)(x, q), _np_log_q(x, q), rtol=1e-5, atol=1e-6
        )
        y = np.linspace(-2.0, 2.0, 17).astype(np.float32)
        np.testing.assert_allclose(
            self.variant(tsallis.exp_q)(y, q), _np_exp_q(y, q), rtol=1e-5, atol=1e-6
        )

    @parameterized.named_parameters(*[(f"q{q}", q) for q in (*Q_VALUES, 1.001, 2.5)])
    def test_exp_q_inverts_log_q(self, q):
        # ln_q x approaches -1/(q-1) as x -> 0, so exp_q(ln_q x) loses relative
        # precision like eps / x^(q-1): keep x^(q-1) >= 1e-2 in float32.
        low = max(1e-3, 1e-2 ** (1.0 / max(q - 1.0, 1e-9)))
        x = np.geomspace(low, 1e2, 25).astype(np.float32)
        np.testing.assert_allclose(tsallis.exp_q(tsallis.log_q(x, q), q), x, rtol=2e-5)

    @parameterized.named_parameters(("q1_5", 1.5), ("q2", 2.0), ("q3", 3.0))
    def test_pseudo_additivity(self, q):
        """ln_q(xy) = ln_q x + ln_q y + (q-1) ln_q x ln_q y."""
        x, y = np.float32(0.7), np.float32(2.3)
        lx, ly = tsallis.log_q(x, q), tsallis.log_q(y, q)
        np.testing.assert_allclose(
            tsallis.log_q(x * y, q), lx + ly + (q - 1) * lx * ly, rtol=1e-5
        )

    def test_q_near_one_matches_q_one(self):
        x = np.linspace(0.1, 5.0, 11).astype(np.float32)
        y = np.linspace(-3.0, 3.0, 11).astype(np.float32)
        q = np.float32(1.0 + 1e-6)
        np.testing.assert_allclose(tsallis.log_q(x, q), np.log(x), atol=1e-5)
        np.testing.assert_allclose(tsallis.exp_q(y, q), np.exp(y), rtol=1e-4)

    def test_log_q_of_zero_is_finite_for_q_above_one(self):
        np.testing.assert_allclose(tsallis.log_q(0.0, 3.0), -0.5)
        self.assertEqual(float(tsallis.exp_q(-0.5, 3.0)), 0.0)

    def test_no_nan_gradients_at_q_one(self):
        for fn, x in ((tsallis.log_q, 0.5), (tsallis.exp_q, 0.5)):
            gx, gq = jax.grad(fn, argnums=(0, 1))(jnp.float32(x), jnp.float32(1.0))
            self.assertTrue(np.isfinite(gx) and np.isfinite(gq))
        # d/dq at q = 1 is the exact derivative: (ln x)^2 / 2 and -e^x x^2 / 2.
        np.testing.assert_allclose(
            jax.grad(tsallis.log_q, 1)(0.5, 1.0), np.log(0.5) ** 2 / 2, rtol=1e-5
        )
        np.testing.assert_allclose(
            jax.grad(tsallis.exp_q, 1)(0.5, 1.0), -np.exp(0.5) * 0.125, rtol=1e-5
        )


class EntropyAndKLTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"q{q}", q) for q in Q_VALUES])
    def test_entropy_matches_closed_form(self, q):
        pi = np.array([0.5, 0.3, 0.2, 0.0], np.float32)
        got = self.variant(tsallis.tsallis_entropy)(pi, q)
        nz = pi[pi > 0].astype(np.float64)
        want = -np.sum(nz * np.log(nz)) if q == 1 else (1 - np.sum(nz**q)) / (q - 1)
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_kl_special_cases(self):
        pi = np.array([0.6, 0.4, 0.0], np.float32)
        mu = np.array([0.2, 0.5, 0.3], np.float32)
        nz = pi > 0
        np.testing.assert_allclose(
            tsallis.tsallis_kl(pi, mu, 1.0),
            np.sum(pi[nz] * np.log(pi[nz] / mu[nz])),
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            tsallis.tsallis_kl(pi, mu, 2.0), np.sum(pi**2 / mu) - 1.0, rtol=1e-5
        )
        self.assertAlmostEqual(float(tsallis.tsallis_kl(mu, mu, 2.5)), 0.0, places=6)


# ----------------------------------------------------------------------------- normalizer


class SparsemaxTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("seed0", 0), ("seed1", 1), ("seed2", 2))
    def test_is_euclidean_projection(self, seed):
        z = _values(seed)
        got = self.variant(jax.vmap(tsallis.sparsemax))(z)
        for row, p in zip(z, np.asarray(got), strict=True):
            np.testing.assert_allclose(p, _np_projection(row), atol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(1, 2, 3, 4, 5)
    def test_sort_network_orders_like_numpy(self, num):
        rng = np.random.default_rng(num)
        z = rng.normal(size=(300, num)).astype(np.float32)
        z[100:200] = np.round(z[100:200])  # ties
        got = self.variant(jax.vmap(tsallis._sort_descending))(z)
        np.testing.assert_array_equal(got, -np.sort(-z, axis=1))
        # Up to 3 actions no sort op is traced; from 4 on the sort is kept.
        jaxpr = str(jax.make_jaxpr(tsallis._sort_descending)(z[0]))
        self.assertEqual("sort[" in jaxpr, num > tsallis._SORT_NETWORK_MAX)

    @parameterized.parameters(1, 2, 3)
    def test_threshold_bitwise_equals_sorted_formula(self, num):
        # The threshold written with XLA's sort (Martins and Astudillo, Prop. 1):
        # the sort network must not change a bit of it for A <= 3.
        def with_sort(z):
            zs = z - jnp.max(z)
            z_sorted = -jnp.sort(-zs)
            k = jnp.arange(1, num + 1, dtype=zs.dtype)
            support = 1.0 + k * z_sorted > jnp.cumsum(z_sorted)
            total = jnp.sum(jnp.where(support, z_sorted, 0.0))
            return jnp.max(z) + (1.0 + (total - 1.0) / jnp.sum(support))

        rng = np.random.default_rng(10 + num)
        z = rng.normal(size=(500, num)).astype(np.float32)
        z *= 10.0 ** rng.uniform(-3, 2, size=(500, 1)).astype(np.float32)
        z[:100] = np.round(z[:100])  # ties
        got = jax.jit(jax.vmap(tsallis.sparsemax_threshold))(z)
        np.testing.assert_array_equal(got, jax.jit(jax.vmap(with_sort))(z))
        for row, psi in zip(z[:20], np.asarray(got)[:20], strict=True):
            p = np.maximum(1.0 + row - psi, 0.0)  # the projection sums to one
            np.testing.assert_allclose(p, _np_projection(row), atol=1e-5)

    def test_policy_at_q_two_is_sparsemax(self):
        qv, tau = _values(3), 0.7
        pi = jax.vmap(tsallis.tsallis_policy, (0, None, None))(qv, tau, 2.0)
        np.testing.assert_allclose(pi, jax.vmap(tsallis.sparsemax)(qv / tau), atol=1e-6)
        self.assertTrue(bool(jnp.any(pi == 0.0)))  # actually sparse


class ThresholdTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"q{q}", q) for q in (*Q_VALUES, 1.2, 5.0)])
    def test_matches_brent(self, q):
        z = _values(4, scale=3.0)
        got = self.variant(jax.vmap(tsallis.tsallis_threshold, (0, None)))(z, q)
        want = [_np_threshold(row, q) for row in z]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def test_bisection_equals_closed_form_at_q_two(self):
        z = _values(5, scale=3.0)
        q_bisect = np.nextafter(np.float32(2.0), np.float32(3.0))  # not == 2
        bisect = jax.vmap(tsallis.tsallis_threshold, (0, None))(z, q_bisect)
        closed = jax.vmap(tsallis.sparsemax_threshold)(z)
        np.testing.assert_allclose(bisect, closed, rtol=1e-5, atol=1e-5)

    def test_gradient_is_implicit_function_gradient(self):
        z = jnp.asarray(_values(6)[0])
        for q in (1.0, 1.5, 2.0, 3.0):
            grad = jax.grad(tsallis.tsallis_threshold)(z, q)
            pi = np.asarray(tsallis.tsallis_policy(z, 1.0, q), np.float64)
            w = np.where(pi > 0, np.where(pi > 0, pi, 1.0) ** (2 - q), 0.0)
            np.testing.assert_allclose(grad, w / w.sum(), atol=1e-5)


# ----------------------------------------------------------------------------- policy


class TsallisPolicyTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"q{q}", q) for q in (*Q_VALUES, 1.2, 4.0)])
    def test_matches_numpy_and_sums_to_one(self, q):
        qv, tau = _values(7), 0.8
        got = self.variant(jax.vmap(tsallis.tsallis_policy, (0, None, None)))(
            qv, tau, q
        )
        want = np.stack([_np_policy(row, tau, q) for row in qv])
        # A probability p needs 1 + (q-1)(z - psi) = p^(q-1) resolved in float32,
        # so for large q tiny probabilities are only accurate to ~eps^(1/(q-1)).
        atol = 2e-5 if q <= 3 else 3e-3
        np.testing.assert_allclose(got, want, atol=atol)
        np.testing.assert_allclose(jnp.sum(got, -1), 1.0, atol=1e-6)

    @parameterized.named_parameters(("q1_5", 1.5), ("q2_5", 2.5), ("q3", 3.0))
    def test_is_regularized_argmax(self, q):
        """exp_q(Q/tau - psi) maximizes <pi, Q> + (tau/q) S_q(pi) (generic solver)."""
        qv, tau = _values(8, b=3)[:, :4].astype(np.float64), 1.3
        for row in qv:
            got = tsallis.tsallis_policy(row.astype(np.float32), tau, q)
            np.testing.assert_allclose(
                got, _np_regularized_argmax(row, tau, q), atol=2e-4
            )

    def test_q_one_is_softmax_and_near_one_is_close(self):
        qv, tau = _values(9), 0.5
        soft = jax.vmap(regularized.softmax_policy, (0, None))(qv, tau)
        at_one = jax.vmap(tsallis.tsallis_policy, (0, None, None))(qv, tau, 1.0)
        near = jax.vmap(tsallis.tsallis_policy, (0, None, None))(qv, tau, 1.0 + 1e-4)
        np.testing.assert_allclose(at_one, soft, atol=1e-6)
        np.testing.assert_allclose(near, soft, atol=1e-3)

    @parameterized.named_parameters(*[(f"q{q}", q) for q in Q_VALUES])
    def test_temperature_limits(self, q):
        qv = jnp.array([0.3, 1.0, -0.5, 0.9])
        np.testing.assert_allclose(
            tsallis.tsallis_policy(qv, 1e5, q), np.full(4, 0.25), atol=1e-4
        )
        np.testing.assert_allclose(
            tsallis.tsallis_policy(qv, 1e-4, q), [0.0, 1.0, 0.0, 0.0], atol=1e-5
        )
        np.testing.assert_allclose(
            tsallis.tsallis_policy(qv, 0.0, q), [0.0, 1.0, 0.0, 0.0], atol=0
        )

    def test_traced_q_vmaps_without_retracing(self):
        qv = jnp.asarray(_values(10)[0])
        qs = jnp.array(Q_VALUES + (1.7,), jnp.float32)

        @jax.jit
        @chex.assert_max_traces(n=1)
        def policies(q_batch):
            return jax.vmap(tsallis.tsallis_policy, (None, None, 0))(qv, 0.6, q_batch)

        got = policies(qs)
        policies(qs + 0.1)
        for i, q in enumerate(np.asarray(qs)):
            np.testing.assert_allclose(
                got[i], _np_policy(np.asarray(qv), 0.6, q), atol=2e-5
            )

    def test_no_nan_gradients(self):
        qv = jnp.asarray(_values(11)[0])
        for q in (1.0, 1.5, 2.0, 3.0):
            for tau in (0.0, 0.5):
                grads = jax.grad(
                    lambda v, t, qq: tsallis.tsallis_value(v, t, qq), argnums=(0, 1, 2)
                )(qv, jnp.float32(tau), jnp.float32(q))
                for g in grads:
                    self.assertTrue(bool(jnp.all(jnp.isfinite(g))), (q, tau))


class ScaledLogAndValueTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*[(f"q{q}", q) for q in Q_VALUES])
    def test_value_matches_numpy(self, q):
        qv, tau = _values(12), 0.4
        got = self.variant(jax.vmap(tsallis.tsallis_value, (0, None, None)))(qv, tau, q)
        want = [_np_value(row.astype(np.float64), tau, q) for row in qv]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    @parameterized.named_parameters(("q1_5", 1.5), ("q2", 2.0), ("q3", 3.0))
    def test_scaled_log_is_bounded_and_exact_off_support(self, q):
        qv, tau = _values(13, scale=4.0), 0.3
        log_pi = jax.vmap(tsallis.scaled_log_q_policy, (0, None, None))(qv, tau, q)
        pi = jax.vmap(tsallis.tsallis_policy, (0, None, None))(qv, tau, q)
        self.assertTrue(bool(jnp.all(log_pi <= 0.0)))
        self.assertTrue(bool(jnp.all(log_pi >= -tau / (q - 1) - 1e-6)))
        off = np.asarray(pi) == 0
        self.assertTrue(off.any())
        np.testing.assert_allclose(np.asarray(log_pi)[off], -tau / (q - 1), rtol=1e-6)
        on = ~off
        want = tau * _np_log_q(np.where(on, np.asarray(pi, np.float64), 1.0), q)
        np.testing.assert_allclose(np.asarray(log_pi)[on], want[on], atol=1e-4)

    def test_q_one_equals_regularized_ops(self):
        qv, tau = _values(14), 0.25
        np.testing.assert_allclose(
            jax.vmap(tsallis.scaled_log_q_policy, (0, None, None))(qv, tau, 1.0),
            jax.vmap(regularized.scaled_log_softmax, (0, None))(qv, tau),
            atol=1e-5,
        )
        np.testing.assert_allclose(
            jax.vmap(tsallis.tsallis_value, (0, None, None))(qv, tau, 1.0),
            jax.vmap(regularized.soft_value, (0, None))(qv, tau),
            rtol=1e-5,
        )

    def test_tau_zero_limits(self):
        qv = jnp.array([0.3, 1.0, -0.5])
        np.testing.assert_allclose(tsallis.tsallis_value(qv, 0.0, 2.0), 1.0)
        np.testing.assert_allclose(
            tsallis.scaled_log_q_policy(qv, 0.0, 1.0), qv - 1.0, atol=1e-7
        )
        np.testing.assert_allclose(tsallis.scaled_log_q_policy(qv, 0.0, 2.0), 0.0)


# ----------------------------------------------------------------------------- MVI(q)


def _batch(seed, b=8, a=4):
    rng = np.random.default_rng(seed)
    q_tm1 = (2 * rng.normal(size=(b, a))).astype(np.float32)
    q_tm1_t = (2 * rng.normal(size=(b, a))).astype(np.float32)
    q_t_t = (2 * rng.normal(size=(b, a))).astype(np.float32)
    a_tm1 = rng.integers(0, a, size=b).astype(np.int32)
    r_t = rng.normal(size=b).astype(np.float32)
    d_t = (0.9 * (rng.random(b) > 0.3)).astype(np.float32)
    return q_tm1, a_tm1, r_t, d_t, q_tm1_t, q_t_t


_TD_AXES = (0, 0, 0, 0, 0, 0, None, None, None, None)


class MviqTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("q1_5", 1.5, -1.0), ("q2", 2.0, -1.0), ("q3_noclip", 3.0, -np.inf)
    )
    def test_target_matches_numpy(self, q, l0):
        q_tm1, a, r, d, qtm1_t, qt_t = _batch(0)
        tau, alpha = 0.5, 0.9
        got = self.variant(
            jax.vmap(tsallis.mviq_target, (0, 0, 0, 0, 0, None, None, None, None))
        )(qtm1_t, a, r, d, qt_t, tau, alpha, q, l0)
        want = []
        for i in range(len(a)):
            pi = _np_policy(qtm1_t[i].astype(np.float64), tau, q)
            log_pi = tau * (
                _np_log_q(pi[a[i]], q) if pi[a[i]] > 0 else -1.0 / (q - 1.0)
            )
            bonus = alpha * np.clip(log_pi, l0, 0.0)
            want.append(
                r[i] + bonus + d[i] * _np_value(qt_t[i].astype(np.float64), tau, q)
            )
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    def test_q_one_equals_munchausen(self):
        batch = _batch(1)
        got = jax.vmap(tsallis.mviq_q_learning, _TD_AXES)(*batch, 0.03, 0.9, 1.0, -1.0)
        want = jax.vmap(
            regularized.munchausen_q_learning, (0, 0, 0, 0, 0, 0, None, None, None)
        )(*batch, 0.03, 0.9, -1.0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    @parameterized.named_parameters(("q1_5", 1.5), ("q2", 2.0), ("q3", 3.0))
    def test_bonus_range(self, q):
        _, a, _, _, qtm1_t, _ = _batch(2)
        tau, alpha = 0.7, 0.8
        bonus = jax.vmap(tsallis.mviq_bonus, (0, 0, None, None, None, None))(
            qtm1_t, a, tau, alpha, q, -np.inf
        )
        self.assertTrue(bool(jnp.all(bonus <= 0.0)))
        self.assertTrue(bool(jnp.all(bonus >= -alpha * tau / (q - 1) - 1e-6)))

    def test_alpha_zero_tau_zero_is_q_learning_target(self):
        q_tm1, a, r, d, qtm1_t, qt_t = _batch(3)
        for q in (1.0, 2.0, 1.5):
            td = jax.vmap(tsallis.mviq_q_learning, _TD_AXES)(
                q_tm1, a, r, d, qtm1_t, qt_t, 0.0, 0.0, q, -1.0
            )
            want = r + d * qt_t.max(-1) - q_tm1[np.arange(len(a)), a]
            np.testing.assert_allclose(td, want, rtol=1e-6, atol=1e-6)

    def test_traced_hyperparameters_vmap_equals_loop(self):
        batch = _batch(4)
        qs = jnp.array([1.0, 1.5, 2.0, 3.0])

        @jax.jit
        @chex.assert_max_traces(n=1)
        def sweep(q_batch, tau):
            per_q = lambda q: jax.vmap(tsallis.mviq_q_learning, _TD_AXES)(
                *batch, tau, 0.9, q, -1.0
            )
            return jax.vmap(per_q)(q_batch)

        got = sweep(qs, jnp.float32(0.1))
        sweep(qs, jnp.float32(0.2))
        for i, q in enumerate(np.asarray(qs)):
            one = jax.vmap(tsallis.mviq_q_learning, _TD_AXES)(*batch, 0.1, 0.9, q, -1.0)
            np.testing.assert_allclose(got[i], one, rtol=1e-5, atol=1e-5)


_QV = jnp.array([1.0, 2.0, 0.5])
_INF = float("inf")


def _mviq_target(tau=0.1, alpha=0.9, q=2.0, l0=-1.0):
    return tsallis.mviq_target(_QV, 1, 1.0, 0.9, _QV, tau, alpha, q, l0)


def _mviq_q_learning(tau=0.1, alpha=0.9, q=2.0, l0=-1.0):
    return tsallis.mviq_q_learning(_QV, 1, 1.0, 0.9, _QV, _QV, tau, alpha, q, l0)


class EagerArgumentChecksTest(parameterized.TestCase):
    """Concrete out-of-domain hyperparameters raise; traced ones are not checked."""

    @parameterized.named_parameters(
        (
            "q_below_one",
            lambda: tsallis.log_q(_QV, 0.5),
            r"q must lie in \[1.0, inf\], got 0.5",
        ),
        ("q_inf_exp", lambda: tsallis.exp_q(_QV, _INF), "q must be finite, got inf"),
        (
            "q_nan_entropy",
            lambda: tsallis.tsallis_entropy(_QV / 3.5, np.nan),
            "q must be finite, got nan",
        ),
        (
            "q_below_one_kl",
            lambda: tsallis.tsallis_kl(_QV / 3.5, _QV / 3.5, 0.0),
            "q must lie in",
        ),
        (
            "q_below_one_threshold",
            lambda: tsallis.tsallis_threshold(_QV, 0.9),
            "q must lie in",
        ),
        (
            "tau_negative_policy",
            lambda: tsallis.tsallis_policy(_QV, -1.0, 2.0),
            r"tau must lie in \[0.0, inf\], got -1",
        ),
        (
            "q_below_one_policy",
            lambda: tsallis.tsallis_policy(_QV, 0.1, 0.5),
            "q must lie in",
        ),
        (
            "tau_negative_scaled_log",
            lambda: tsallis.scaled_log_q_policy(_QV, -0.5, 2.0),
            "tau must lie in",
        ),
        (
            "tau_inf_value",
            lambda: tsallis.tsallis_value(_QV, _INF, 2.0),
            "tau must be finite, got inf",
        ),
        (
            "alpha_above_one_bonus",
            lambda: tsallis.mviq_bonus(_QV, 1, 0.1, 1.5, 2.0, -1.0),
            r"alpha must lie in \[0.0, 1.0\], got 1.5",
        ),
        (
            "l0_positive_target",
            lambda: _mviq_target(l0=0.5),
            r"l0 must lie in \[-inf, 0.0\], got 0.5",
        ),
        ("l0_plus_inf_target", lambda: _mviq_target(l0=_INF), "l0 must lie in"),
        ("q_below_one_q_learning", lambda: _mviq_q_learning(q=0.5), "q must lie in"),
        (
            "tau_negative_q_learning",
            lambda: _mviq_q_learning(tau=-1.0),
            "tau must lie in",
        ),
    )
    def test_invalid_concrete_argument_raises(self, call, match):
        with self.assertRaisesRegex(ConfigError, "^" + match):
            call()

    def test_documented_edges_pass(self):
        tsallis.log_q(_QV, 1.0)  # q = 1: the natural logarithm
        tsallis.tsallis_policy(_QV, 0.0, 2.0)  # tau = 0: the greedy policy
        free = _mviq_target(l0=-_INF)  # l0 = -inf: no clipping
        np.testing.assert_allclose(free, _mviq_target(l0=-1e30), rtol=1e-6)

    def test_traced_invalid_values_compile_once_and_run(self):
        traces = []

        @jax.jit
        def policy(tau, q):
            traces.append(None)
            return tsallis.tsallis_policy(_QV, tau, q)

        policy(0.1, 2.0)
        out = policy(-1.0, 0.5)  # traced: not checked, no error, no retrace
        self.assertLen(traces, 1)
        self.assertEqual(out.shape, (3,))
        vmapped = jax.vmap(lambda q: tsallis.log_q(_QV, q))(jnp.array([0.5, 2.0]))
        np.testing.assert_allclose(
            vmapped[1], _np_log_q(np.asarray(_QV), 2.0), rtol=1e-6
        )


# ----------------------------------------------------------------------------- static q


def _static_outputs(qv, q):
    """Every public op at one q (a Python number: static path; an array: generic)."""
    pi = tsallis.tsallis_policy(qv, 0.6, q)
    return {
        "exp_q": tsallis.exp_q(qv, q),
        "threshold": tsallis.tsallis_threshold(qv, q),
        "policy": pi,
        "log_q": tsallis.log_q(jnp.maximum(pi, 0.05), q),
        "entropy": tsallis.tsallis_entropy(pi, q),
        "kl": tsallis.tsallis_kl(pi, jnp.full_like(pi, 1.0 / pi.shape[0]), q),
        "target": tsallis.mviq_target(qv, 1, 0.5, 0.9, qv[::-1], 0.6, 0.9, q, -1.0),
        # tau = 0: the hard-max limits.
        "greedy": tsallis.tsallis_policy(qv, 0.0, q),
        "greedy_log": tsallis.scaled_log_q_policy(qv, 0.0, q),
    }


def _branches(fn, *args):
    """``(sorts, loops)``: does ``fn``'s jaxpr hold a sort / a bisection loop?"""
    jaxpr = str(jax.make_jaxpr(fn)(*args))
    return "sort[" in jaxpr, "scan[" in jaxpr or "while[" in jaxpr


class StaticQTest(parameterized.TestCase):
    """A Python-number q traces only its normaliser branch, with the same results."""

    @parameterized.parameters(*Q_VALUES)
    def test_static_equals_generic_bitwise(self, q):
        qv = jnp.asarray(_values(21)[0])
        static = jax.jit(functools.partial(_static_outputs, q=q))(qv)
        generic = jax.jit(_static_outputs)(qv, jnp.float32(q))
        for name in static:
            np.testing.assert_array_equal(static[name], generic[name], err_msg=name)
        np.testing.assert_allclose(
            static["policy"], _np_policy(np.asarray(qv), 0.6, q), atol=2e-5
        )
        # Without jit (op by op) too: the policy and its scaled log.
        for fn in (tsallis.tsallis_policy, tsallis.scaled_log_q_policy):
            np.testing.assert_array_equal(
                fn(qv, 0.6, q), fn(qv, 0.6, jnp.float32(q)), err_msg=fn.__name__
            )

    @parameterized.parameters(1.0, 2.0, 2, 1.5, np.float32(3.0))
    def test_static_q_traces_only_its_branch(self, q):
        qv = jnp.asarray(_values(22)[0])
        sorts, loops = _branches(lambda v: tsallis.tsallis_policy(v, 0.6, q), qv)
        self.assertEqual(sorts, float(q) == 2.0)  # sparsemax threshold
        self.assertEqual(loops, float(q) not in (1.0, 2.0))  # bisection

    def test_array_q_keeps_the_generic_operator(self):
        qv = jnp.asarray(_values(23)[0])
        for q in (jnp.float32(1.0), np.array(2.0)):  # concrete arrays: generic
            fn = functools.partial(tsallis.tsallis_policy, tau=0.6, q=q)
            self.assertEqual(_branches(fn, qv), (True, True))
            # The bisection loop sits in a cond on q in {1, 2} (skipped there).
            self.assertIn("cond[", str(jax.make_jaxpr(fn)(qv)))


if __name__ == "__main__":
    absltest.main()
