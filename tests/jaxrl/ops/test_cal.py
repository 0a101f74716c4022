"""Tests for jaxrl.ops.cal vs NumPy references, closed forms and finite differences."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jaxrl.ops import cal

# ------------------------------------------------------------------------ references


def _np_ucb(q, k):
    q = np.asarray(q, np.float64)
    mean = q.sum() / q.size
    std = np.sqrt(sum((x - mean) ** 2 for x in q) / q.size)
    return mean + k * std


def _np_penalty(g, lam, c):
    """(1 / 2c) (max(0, lam + c g)^2 - lam^2), in the first form; lam g at c = 0."""
    if c == 0.0:
        return lam * g
    return (max(0.0, lam + c * g) ** 2 - lam**2) / (2.0 * c)


def _np_q_budget(b, gamma, horizon, gamma_c):
    steps = lambda g: sum(g**t for t in range(int(horizon)))
    return b * steps(gamma) / steps(gamma_c)


class EnsembleUcbTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("one_member", 1, 1.0),
        ("two_k0", 2, 0.0),
        ("five_k1", 5, 1.0),
        ("six_k2", 6, 2.5),
    )
    def test_matches_numpy(self, e, k):
        q = np.random.default_rng(e).normal(size=e).astype(np.float32)
        got = self.variant(cal.ensemble_ucb)(q, k)
        np.testing.assert_allclose(got, _np_ucb(q, k), rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_vmapped_batch(self):
        q = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
        got = self.variant(jax.vmap(cal.ensemble_ucb, in_axes=(0, None)))(q, 0.7)
        np.testing.assert_allclose(got, [_np_ucb(r, 0.7) for r in q], rtol=1e-5)

    def test_gradient_matches_finite_differences(self):
        q = np.array([0.3, -1.2, 2.0, 0.5], np.float64)
        grad = np.asarray(jax.grad(cal.ensemble_ucb)(jnp.asarray(q, jnp.float32), 1.5))
        eps = 1e-6
        fd = [
            (
                _np_ucb(q + eps * np.eye(4)[i], 1.5)
                - _np_ucb(q - eps * np.eye(4)[i], 1.5)
            )
            / (2 * eps)
            for i in range(4)
        ]
        np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-5)

    def test_gradient_finite_when_members_agree(self):
        for q in (jnp.ones(3), jnp.ones(1)):
            grad = jax.grad(cal.ensemble_ucb)(q, 2.0)
            # sigma contributes nothing where it is 0: the mean's gradient.
            np.testing.assert_allclose(grad, np.full(q.shape, 1.0 / q.size), rtol=1e-6)

    def test_rank_checked(self):
        with self.assertRaises(AssertionError):
            cal.ensemble_ucb(jnp.ones((2, 2)), 1.0)


class AugmentedLagrangianPenaltyTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("active_violated", 2.0, 1.0, 0.5),
        ("active_slack", -1.0, 1.0, 0.5),
        ("inactive_slack", -4.0, 1.0, 0.5),
        ("zero_lambda_violated", 3.0, 0.0, 2.0),
        ("zero_lambda_slack", -3.0, 0.0, 2.0),
        ("lagrangian_c0", -2.5, 1.5, 0.0),
        ("big_c", 0.3, 0.2, 40.0),
    )
    def test_matches_numpy(self, g, lam, c):
        got = self.variant(cal.augmented_lagrangian_penalty)(g, lam, c)
        np.testing.assert_allclose(got, _np_penalty(g, lam, c), rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_vmapped_batch(self):
        rng = np.random.default_rng(1)
        g = rng.normal(scale=3.0, size=20).astype(np.float32)
        lam = rng.uniform(0, 2, size=20).astype(np.float32)
        c = rng.choice([0.0, 0.5, 3.0], size=20).astype(np.float32)
        got = self.variant(jax.vmap(cal.augmented_lagrangian_penalty))(g, lam, c)
        want = [
            _np_penalty(float(a), float(b), float(d))
            for a, b, d in zip(g, lam, c, strict=True)
        ]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    @parameterized.named_parameters(
        ("active", 2.0, 1.0, 0.5),
        ("inactive", -4.0, 1.0, 0.5),
        ("c0", -2.5, 1.5, 0.0),
        ("near_kink", -1.9, 1.0, 0.5),
    )
    def test_slope_is_the_rectified_multiplier(self, g, lam, c):
        slope = jax.grad(cal.augmented_lagrangian_penalty)(g, lam, c)
        want = max(0.0, lam + c * g)  # closed form of d P / d g
        np.testing.assert_allclose(slope, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            cal.rectified_multiplier(g, lam, c), want, rtol=1e-6, atol=1e-7
        )
        eps = 1e-4
        fd = (_np_penalty(g + eps, lam, c) - _np_penalty(g - eps, lam, c)) / (2 * eps)
        np.testing.assert_allclose(slope, fd, rtol=1e-3, atol=1e-4)

    def test_continuous_at_the_kink(self):
        lam, c = 1.0, 0.5
        g0 = -lam / c
        for eps in (1e-3, -1e-3):
            np.testing.assert_allclose(
                cal.augmented_lagrangian_penalty(g0 + eps, lam, c),
                _np_penalty(g0 + eps, lam, c),
                atol=1e-5,
            )

    def test_no_constraint(self):
        inf = float("-inf")
        self.assertEqual(float(cal.augmented_lagrangian_penalty(inf, 0.0, 0.0)), 0.0)
        self.assertEqual(float(cal.augmented_lagrangian_penalty(inf, 1.0, 2.0)), -0.25)
        self.assertEqual(float(cal.rectified_multiplier(inf, 1.0, 2.0)), 0.0)
        # The slope in the violation (what a policy gradient sees) stays finite:
        # lam at c = 0, 0 for c > 0.
        grad = jax.grad(cal.augmented_lagrangian_penalty)
        for args, want in (((inf, 0.0, 0.0), 0.0), ((inf, 1.5, 0.0), 1.5),
                           ((inf, 1.0, 2.0), 0.0)):  # fmt: skip
            self.assertEqual(float(grad(*args)), want, args)


class RectifiedMultiplierTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("raised", 2.0, 1.0, 0.5, 2.0),
        ("clipped", -4.0, 1.0, 0.5, 0.0),
        ("c0", -4.0, 1.5, 0.0, 1.5),
    )
    def test_hand_values(self, g, lam, c, want):
        got = self.variant(cal.rectified_multiplier)(g, lam, c)
        np.testing.assert_allclose(got, want, rtol=1e-6)


class QBudgetTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("pendulum", 5.0, 0.99, 200, 1.0),
        ("undiscounted", 20.0, 1.0, 200, 1.0),
        ("discounted_budget", 3.0, 0.99, 50, 0.9),
        ("short", 1.0, 0.5, 1, 1.0),
    )
    def test_matches_numpy_sum(self, b, gamma, horizon, gamma_c):
        got = self.variant(cal.q_budget)(b, gamma, horizon, gamma_c)
        want = _np_q_budget(b, gamma, horizon, gamma_c)
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_constant_cost_at_the_budget_rate_has_value_xi(self):
        # An episode spending b evenly (b / T per step) has discounted sum xi.
        b, gamma, horizon = 8.0, 0.95, 40
        per_step = b / horizon
        value = sum(gamma**t * per_step for t in range(horizon))
        np.testing.assert_allclose(cal.q_budget(b, gamma, horizon), value, rtol=1e-5)

    def test_no_constraint(self):
        self.assertEqual(float(cal.q_budget(float("inf"), 0.99, 200)), float("inf"))


if __name__ == "__main__":
    absltest.main()
