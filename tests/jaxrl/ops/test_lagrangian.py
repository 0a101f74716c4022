"""Tests for jaxrl.ops.lagrangian against NumPy references, optax and closed forms."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl.testing import absltest, parameterized

from jaxrl import testing
from jaxrl.ops import exact_dp, lagrangian

# ------------------------------------------------------------------------- references


def _np_lagrangian_reward(r, c, lam):
    r, c, lam = (np.asarray(x, np.float64) for x in (r, c, lam))
    if lam.ndim == 0:
        return r - lam * c
    out = np.array(r, copy=True)
    for i in range(lam.shape[0]):
        out = out - lam[i] * c[..., i]
    return out


def _np_pid(costs, budget, kp, ki, kd, lam0=0.0):
    """Stooke et al. (2020), Algorithm 2, with a plain Python loop."""
    integral = lam0 / ki if ki > 0 else 0.0
    prev = costs[0]
    lams = []
    for j_c in costs:
        delta = j_c - budget
        derivative = max(j_c - prev, 0.0)
        integral = max(integral + delta, 0.0)
        lams.append(max(kp * delta + ki * integral + kd * derivative, 0.0))
        prev = j_c
    return np.array(lams)


# -------------------------------------------------------------------------- operators


class LagrangianRewardTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("zero", 0.0), ("small", 0.3), ("large", 7.5))
    def test_scalar_multiplier_matches_numpy(self, lam):
        rng = np.random.default_rng(0)
        r = rng.normal(size=(5, 3)).astype(np.float32)
        c = rng.uniform(size=(5, 3)).astype(np.float32)
        got = self.variant(lagrangian.lagrangian_reward)(r, c, lam)
        np.testing.assert_allclose(got, _np_lagrangian_reward(r, c, lam), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_several_constraints_match_numpy(self):
        rng = np.random.default_rng(1)
        r = rng.normal(size=(7,)).astype(np.float32)
        c = rng.uniform(size=(7, 3)).astype(np.float32)
        lam = np.array([0.5, 0.0, 2.0], np.float32)
        got = self.variant(jax.vmap(lagrangian.lagrangian_reward, (0, 0, None)))(
            r, c, lam
        )
        np.testing.assert_allclose(
            got, _np_lagrangian_reward(r, c, lam), rtol=1e-5, atol=1e-6
        )

    def test_zero_multiplier_is_the_reward(self):
        r = jnp.array([1.0, -2.0, 3.5])
        np.testing.assert_array_equal(
            lagrangian.lagrangian_reward(r, jnp.array([9.0, 9.0, 9.0]), 0.0), r
        )

    def test_values_are_linear_in_the_reward(self):
        """Q^pi of r - lam c equals Q^pi_r - lam Q^pi_c (numpy solves)."""
        mdp = testing.random_mdp(np.random.default_rng(2), 4, 3, with_cost=True)
        P, R, _, g = testing.np_mdp(mdp)
        C = np.asarray(mdp.C)
        pi = testing.random_policy(np.random.default_rng(3), 4, 3)
        lam = 1.7
        want = testing.np_policy_q(P, R - lam * C, g, pi)
        q_r = exact_dp.policy_q(mdp, pi)
        q_c = exact_dp.policy_q(mdp, pi, mdp.C)
        got = lagrangian.lagrangian_reward(q_r, q_c, lam)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    def test_shape_mismatch_fails_at_trace_time(self):
        with self.assertRaises(AssertionError):
            lagrangian.lagrangian_reward(jnp.zeros(3), jnp.zeros(4), 1.0)
        with self.assertRaises(AssertionError):
            lagrangian.lagrangian_reward(jnp.zeros(3), jnp.zeros((3, 2)), jnp.ones(3))


class LagrangianTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("slack", 0.5, 2.0), ("violated", 1.5, 0.7))
    def test_matches_closed_form(self, lam, budget):
        got = self.variant(lagrangian.lagrangian)(3.0, 1.2, lam, budget)
        np.testing.assert_allclose(got, 3.0 - lam * (1.2 - budget), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_several_constraints(self):
        j_c = np.array([1.0, 2.0, 0.5], np.float32)
        lam = np.array([0.1, 0.0, 4.0], np.float32)
        b = np.array([0.5, 3.0, 0.5], np.float32)
        got = self.variant(lagrangian.lagrangian)(2.0, j_c, lam, b)
        want = 2.0 - sum(lam[i] * (j_c[i] - b[i]) for i in range(3))
        np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_gradient_in_lambda_is_minus_the_violation(self):
        grad = jax.grad(lagrangian.lagrangian, argnums=2)(3.0, 1.25, 0.4, 1.0)
        np.testing.assert_allclose(grad, -0.25, rtol=1e-6)


class ProjectedMultiplierUpdateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("unbounded", math.inf), ("bounded", 2.0), ("tight", 0.25)
    )
    def test_matches_numpy(self, lam_max):
        rng = np.random.default_rng(4)
        lam = rng.uniform(0.0, 3.0, size=50).astype(np.float32)
        violation = rng.normal(scale=2.0, size=50).astype(np.float32)
        eta = 0.3
        fn = jax.vmap(lagrangian.projected_multiplier_update, (0, 0, None, None))
        got = self.variant(fn)(lam, violation, eta, lam_max)
        want = np.clip(lam + eta * violation.astype(np.float64), 0.0, lam_max)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        self.assertTrue(bool(jnp.all(got >= 0.0)))
        self.assertTrue(bool(jnp.all(got <= lam_max)))

    def test_zero_step_keeps_the_multiplier(self):
        self.assertEqual(
            float(lagrangian.projected_multiplier_update(1.5, 9.0, 0.0)), 1.5
        )

    def test_several_constraints(self):
        got = lagrangian.projected_multiplier_update(
            jnp.array([0.0, 1.0]), jnp.array([-1.0, 1.0]), 0.5
        )
        np.testing.assert_allclose(got, [0.0, 1.5])


class OptimisticGradientTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("reload", 1.0, 1.0), ("plain", 1.0, 0.0), ("general", 0.5, 2.0)
    )
    def test_matches_numpy_on_a_pytree(self, alpha, beta):
        rng = np.random.default_rng(5)
        g = {"logits": rng.normal(size=(3, 2)), "lam": np.float64(rng.normal())}
        g_prev = {"logits": rng.normal(size=(3, 2)), "lam": np.float64(rng.normal())}
        g = jax.tree.map(lambda x: np.asarray(x, np.float32), g)
        g_prev = jax.tree.map(lambda x: np.asarray(x, np.float32), g_prev)
        got = self.variant(lagrangian.optimistic_gradient)(g, g_prev, alpha, beta)
        for name in g:
            want = (alpha + beta) * g[name].astype(np.float64) - beta * g_prev[name]
            np.testing.assert_allclose(got[name], want, rtol=1e-5, atol=1e-6)

    def test_equal_gradients_give_the_gradient(self):
        g = jnp.array([1.5, -2.0])
        np.testing.assert_allclose(lagrangian.optimistic_gradient(g, g), g)

    def test_matches_optax_scale_by_optimistic_gradient(self):
        """After its first step, optax's update is (alpha + beta) g_t - beta g_{t-1}."""
        rng = np.random.default_rng(6)
        grads = [jnp.asarray(rng.normal(size=4), jnp.float32) for _ in range(4)]
        alpha, beta = 0.7, 1.3
        tx = optax.scale_by_optimistic_gradient(alpha=alpha, beta=beta)
        state = tx.init(grads[0])
        for t, g in enumerate(grads):
            update, state = tx.update(g, state)
            if t > 0:
                want = lagrangian.optimistic_gradient(g, grads[t - 1], alpha, beta)
                np.testing.assert_allclose(update, want, rtol=1e-5, atol=1e-6)


class PIDMultiplierUpdateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("pid", 0.5, 0.1, 1.0, 0.0),
        ("integral_only", 0.0, 0.2, 0.0, 1.0),
        ("proportional_derivative", 1.0, 0.0, 2.0, 0.0),
    )
    def test_matches_numpy_loop(self, kp, ki, kd, lam0):
        costs = np.array([2.0, 1.5, 1.7, 0.4, 0.2, 0.9, 1.3, 0.1], np.float32)
        budget = 0.8

        def run(costs):
            state = lagrangian.pid_init(costs[0], lam0, ki)

            def body(state, j_c):
                lam, state = lagrangian.pid_multiplier_update(
                    state, j_c, budget, kp, ki, kd
                )
                return state, lam

            return jax.lax.scan(body, state, costs)[1]

        got = self.variant(run)(costs)
        want = _np_pid(costs.astype(np.float64), budget, kp, ki, kd, lam0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_integral_only_is_the_projected_update(self):
        """kp = kd = 0: lam_k = [lam_{k-1} + ki (J_c - b)]_+ from lam_0 = lam0."""
        costs = np.array([0.3, 2.0, 0.1, 0.0, 0.0, 1.2])
        ki, budget = 0.4, 0.9
        state = lagrangian.pid_init(jnp.float32(costs[0]), 1.0, ki)
        lam_proj = jnp.float32(1.0)
        for j_c in costs:
            lam, state = lagrangian.pid_multiplier_update(
                state, jnp.float32(j_c), budget, 0.0, ki, 0.0
            )
            lam_proj = lagrangian.projected_multiplier_update(
                lam_proj, jnp.float32(j_c - budget), ki
            )
            np.testing.assert_allclose(lam, lam_proj, rtol=1e-5, atol=1e-6)

    def test_derivative_term_ignores_cost_decreases(self):
        state = lagrangian.pid_init(jnp.float32(2.0))
        lam, _ = lagrangian.pid_multiplier_update(state, 1.0, 0.0, 0.0, 0.0, 5.0)
        self.assertEqual(float(lam), 0.0)


class InfiniteBudgetTest(parameterized.TestCase):
    """``budget = inf`` (no constraint): 0 * inf is 0, nothing becomes NaN."""

    def test_lagrangian_is_the_return_at_zero_multiplier(self):
        fn = jax.jit(jax.value_and_grad(lagrangian.lagrangian, argnums=(0, 1, 2)))
        value, grads = fn(3.0, 2.0, 0.0, math.inf)
        self.assertEqual(float(value), 3.0)
        self.assertTrue(all(np.isfinite(float(g)) for g in grads))
        self.assertEqual(float(grads[0]), 1.0)
        self.assertEqual(float(lagrangian.lagrangian(3.0, 2.0, 0.5, math.inf)), np.inf)
        # K constraints, one of them unconstrained
        got = lagrangian.lagrangian(
            3.0, jnp.array([2.0, 5.0]), jnp.array([0.0, 0.5]), jnp.array([np.inf, 1.0])
        )
        self.assertEqual(float(got), 1.0)  # 3 - 0.5 (5 - 1)

    def test_multiplier_steps_go_to_zero(self):
        step = jax.jit(lagrangian.projected_multiplier_update)
        lam = jnp.array([0.0, 0.7, 3.0])
        g = jnp.full((3,), -np.inf)
        np.testing.assert_array_equal(step(lam, g, 0.1, 5.0), 0.0)
        np.testing.assert_array_equal(step(lam, g, 0.0, 5.0), lam)  # eta 0: kept
        # ReLOAD's direction 2 g_k - g_{k-1} of two -inf violations is -inf
        direction = lagrangian.optimistic_gradient(g, g)
        np.testing.assert_array_equal(direction, -np.inf)
        np.testing.assert_array_equal(step(lam, direction, 0.1, 5.0), 0.0)
        state = lagrangian.pid_init(jnp.ones(3))  # no cost increase: no D term
        for kp in (0.0, 0.5):
            pid, new = lagrangian.pid_multiplier_update(
                state, jnp.ones(3), jnp.full((3,), np.inf), kp, 0.1, 1.0
            )
            np.testing.assert_array_equal(pid, 0.0)
            np.testing.assert_array_equal(new.integral, 0.0)

    @parameterized.parameters(True, False)
    def test_saturate_clips_to_the_float_range(self, use_jit):
        fn = jax.jit(lagrangian.saturate) if use_jit else lagrangian.saturate
        x = np.array([-np.inf, -2.5, 0.0, 3e38, np.inf, np.nan], np.float32)
        big = np.finfo(np.float32).max
        np.testing.assert_array_equal(fn(x), np.clip(x, -big, big))  # NaN kept
        self.assertTrue(np.isnan(float(fn(x)[-1])))
        # the multiplier steps from a saturated -inf are those from -inf
        g = jnp.full((3,), -np.inf)
        lam = jnp.array([0.0, 0.7, 3.0])
        for prev in (g, fn(g)):
            direction = lagrangian.optimistic_gradient(g, prev)
            np.testing.assert_array_equal(direction, -np.inf)
            np.testing.assert_array_equal(
                lagrangian.projected_multiplier_update(lam, direction, 0.1, 5.0), 0.0
            )

    def test_finite_inputs_are_unchanged(self):
        """The guards select the plain formulas bitwise for finite values."""
        rng = np.random.default_rng(0)
        lam = jnp.asarray(rng.uniform(0, 2, 16), jnp.float32).at[:4].set(0.0)
        g = jnp.asarray(rng.normal(size=16), jnp.float32)
        g_prev = jnp.asarray(rng.normal(size=16), jnp.float32).at[8:].set(g[8:])
        eta = jnp.float32(0.3)
        np.testing.assert_array_equal(
            lagrangian.projected_multiplier_update(lam, g, eta, 1.5),
            jnp.clip(lam + eta * g, 0.0, 1.5),
        )
        np.testing.assert_array_equal(
            lagrangian.optimistic_gradient(g, g_prev), 2.0 * g - g_prev
        )
        np.testing.assert_array_equal(
            lagrangian.lagrangian(jnp.float32(1.0), g, lam, 0.25),
            1.0 - jnp.sum(lam * (g - 0.25)),
        )
        grad = jax.grad(lagrangian.lagrangian, argnums=2)(1.0, g, lam, 0.25)
        np.testing.assert_array_equal(grad, -(g - 0.25))  # also at lam = 0


if __name__ == "__main__":
    absltest.main()
