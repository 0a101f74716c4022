"""Tests for jaxrl.ops.gae against NumPy references and closed forms."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized

from jaxrl.ops import bellman, gae

# ------------------------------------------------------------------------- references


def _np_gae(r, d, v_tm1, v_t, lam, end):
    """Forward sum A_t = sum_k (prod_{j<k} d_j lam_j) delta_k up to the episode end.

    Independent of the backward recursion in the operator: for each t it walks
    forward until the first episode end at or after t (inclusive) or the
    trajectory's end.
    """
    r, d, v_tm1, v_t = (np.asarray(x, np.float64) for x in (r, d, v_tm1, v_t))
    T = len(r)
    lam = np.broadcast_to(np.asarray(lam, np.float64), (T,))
    end = np.zeros(T, bool) if end is None else np.asarray(end, bool)
    delta = r + d * v_t - v_tm1
    out = np.zeros(T)
    for t in range(T):
        weight, total = 1.0, 0.0
        for k in range(t, T):
            total += weight * delta[k]
            if end[k]:
                break
            weight *= d[k] * lam[k]
        out[t] = total
    return out


def _trajectory(seed, T=12, gamma=0.9):
    """Random trajectory with a termination at t=3 and a truncation at t=7.

    ``v_t[t] == v_tm1[t+1]`` inside episodes (one value function), as in a
    real rollout; at episode ends ``v_t`` is the value of the pre-reset next
    observation, unrelated to the next entry's ``v_tm1``.
    """
    rng = np.random.default_rng(seed)
    r = rng.normal(size=T).astype(np.float32)
    term = np.zeros(T, bool)
    trunc = np.zeros(T, bool)
    term[3] = True
    trunc[7] = True
    v_tm1 = rng.normal(size=T).astype(np.float32)
    v_t = np.concatenate([v_tm1[1:], rng.normal(size=1)]).astype(np.float32)
    v_t[3] = rng.normal()  # pre-reset next obs (terminal: its value is ignored)
    v_t[7] = rng.normal()  # pre-reset next obs (truncated: bootstrapped from)
    d = (gamma * (1 - term)).astype(np.float32)
    return r, d, v_tm1, v_t, term | trunc


class GaeTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lambda0", 0.0), ("lambda_095", 0.95), ("lambda1", 1.0)
    )
    def test_matches_numpy(self, lam):
        r, d, v_tm1, v_t, end = _trajectory(0)
        got = self.variant(gae.gae)(r, d, v_tm1, v_t, lam, end)
        np.testing.assert_allclose(
            got, _np_gae(r, d, v_tm1, v_t, lam, end), rtol=1e-5, atol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_per_step_lambda_matches_numpy(self):
        r, d, v_tm1, v_t, end = _trajectory(1)
        lam = np.linspace(0.0, 1.0, len(r)).astype(np.float32)
        got = self.variant(gae.gae)(r, d, v_tm1, v_t, lam, end)
        np.testing.assert_allclose(
            got, _np_gae(r, d, v_tm1, v_t, lam, end), rtol=1e-5, atol=1e-5
        )

    def test_lambda_zero_is_one_step_td_error(self):
        r, d, v_tm1, v_t, end = _trajectory(2)
        got = gae.gae(r, d, v_tm1, v_t, 0.0, end)
        np.testing.assert_allclose(got, r + d * v_t - v_tm1, rtol=1e-5, atol=1e-6)

    def test_lambda_one_is_monte_carlo_return_minus_value(self):
        """Episodes ending by termination: A_t + v(s_t) = sum_k gamma^k r_{t+k}."""
        gamma, T = 0.9, 9
        rng = np.random.default_rng(3)
        r = rng.normal(size=T).astype(np.float32)
        term = np.zeros(T, bool)
        term[[2, 5, 8]] = True  # three complete episodes
        d = (gamma * (1 - term)).astype(np.float32)
        v_tm1 = rng.normal(size=T).astype(np.float32)
        # one value function: v_t[t] = v_tm1[t + 1] inside episodes; at the
        # terminal steps v_t is the pre-reset next value, which must not matter
        v_t = np.concatenate([v_tm1[1:], [0.0]]).astype(np.float32)
        v_t[term] = rng.normal(size=int(term.sum()))
        got = np.asarray(gae.gae(r, d, v_tm1, v_t, 1.0, term))
        mc = np.zeros(T)
        for t in range(T):
            k, g, w = t, 0.0, 1.0
            while True:
                g += w * r[k]
                if term[k]:
                    break
                w *= gamma
                k += 1
            mc[t] = g
        np.testing.assert_allclose(got, mc - v_tm1, rtol=1e-5, atol=1e-5)
        v_t_zeroed = np.where(term, 0.0, v_t).astype(np.float32)
        np.testing.assert_allclose(  # no trace of the terminal next values
            gae.gae(r, d, v_tm1, v_t_zeroed, 1.0, term), got, rtol=1e-6, atol=1e-6
        )

    def test_truncation_bootstraps_termination_does_not(self):
        r, d, v_tm1, v_t, end = _trajectory(4)
        adv = np.asarray(gae.gae(r, d, v_tm1, v_t, 0.95, end))
        # truncated at t=7: one step, bootstrapped from the pre-reset next value
        self.assertAlmostEqual(adv[7], r[7] + 0.9 * v_t[7] - v_tm1[7], places=5)
        # terminated at t=3: one step, nothing bootstrapped
        self.assertAlmostEqual(adv[3], r[3] - v_tm1[3], places=5)
        # the truncated next value matters, the terminal one does not
        bumped = v_t.copy()
        bumped[7] += 10.0
        moved = np.asarray(gae.gae(r, d, v_tm1, bumped, 0.95, end))
        self.assertAlmostEqual(moved[7] - adv[7], 9.0, places=4)
        bumped = v_t.copy()
        bumped[3] += 10.0
        np.testing.assert_allclose(gae.gae(r, d, v_tm1, bumped, 0.95, end), adv)

    def test_no_leakage_across_episode_ends(self):
        r, d, v_tm1, v_t, end = _trajectory(5)
        adv = np.asarray(gae.gae(r, d, v_tm1, v_t, 1.0, end))
        r2, v2 = r.copy(), v_tm1.copy()
        r2[8:] += 100.0  # the episode after the truncation at t=7
        v2[8:] -= 50.0
        v_t2 = v_t.copy()
        v_t2[8:] += 7.0
        adv2 = np.asarray(gae.gae(r2, d, v2, v_t2, 1.0, end))
        np.testing.assert_allclose(adv2[:8], adv[:8], rtol=1e-6, atol=1e-6)
        self.assertGreater(np.abs(adv2[8:] - adv[8:]).min(), 1.0)

    def test_without_end_mask_truncation_would_leak(self):
        """The mask is what stops the recursion at a time limit (discount != 0)."""
        r, d, v_tm1, v_t, end = _trajectory(6)
        masked = np.asarray(gae.gae(r, d, v_tm1, v_t, 0.9, end))
        unmasked = np.asarray(gae.gae(r, d, v_tm1, v_t, 0.9))
        # before the termination at t=3 and after the truncation at t=7: equal
        np.testing.assert_allclose(unmasked[:4], masked[:4], rtol=1e-5)
        np.testing.assert_allclose(unmasked[8:], masked[8:], rtol=1e-5)
        self.assertFalse(np.allclose(unmasked[4:8], masked[4:8]))
        np.testing.assert_allclose(
            unmasked, _np_gae(r, d, v_tm1, v_t, 0.9, None), rtol=1e-5, atol=1e-5
        )

    def test_equals_lambda_return_minus_value(self):
        """A_t + v_tm1[t] is bellman.lambda_returns when v_t[t] == v_tm1[t + 1]."""
        r, d, v_tm1, v_t, end = _trajectory(7)
        for lam in (0.0, 0.6, 1.0):
            adv = gae.gae(r, d, v_tm1, v_t, lam, end)
            ret = bellman.lambda_returns(r, d, v_t, lam, end)
            np.testing.assert_allclose(adv + v_tm1, ret, rtol=1e-5, atol=1e-5)

    def test_vmap_over_envs(self):
        trajs = [_trajectory(s) for s in range(3)]
        r, d, v_tm1, v_t, end = (np.stack(x, 1) for x in zip(*trajs, strict=True))
        got = jax.vmap(gae.gae, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)(
            r, d, v_tm1, v_t, 0.8, end
        )
        for e in range(3):
            want = _np_gae(r[:, e], d[:, e], v_tm1[:, e], v_t[:, e], 0.8, end[:, e])
            np.testing.assert_allclose(got[:, e], want, rtol=1e-5, atol=1e-5)

    def test_traced_lambda(self):
        r, d, v_tm1, v_t, end = _trajectory(8)
        lams = jnp.array([0.0, 0.5, 1.0])
        got = jax.jit(jax.vmap(lambda lm: gae.gae(r, d, v_tm1, v_t, lm, end)))(lams)
        for i, lam in enumerate([0.0, 0.5, 1.0]):
            np.testing.assert_allclose(
                got[i], _np_gae(r, d, v_tm1, v_t, lam, end), rtol=1e-5, atol=1e-5
            )

    def test_gradients_stopped_by_default(self):
        r, d, v_tm1, v_t, end = _trajectory(9)
        grad = jax.grad(lambda v: jnp.sum(gae.gae(r, d, v, v_t, 0.9, end)))(v_tm1)
        np.testing.assert_array_equal(grad, np.zeros_like(v_tm1))
        grad = jax.grad(
            lambda v: jnp.sum(
                gae.gae(r, d, v, v_t, 0.0, end, stop_target_gradients=False)
            )
        )(v_tm1)
        np.testing.assert_allclose(grad, -np.ones_like(v_tm1))  # A = delta, dA/dv = -1

    def test_shape_mismatch_raises(self):
        with self.assertRaises(AssertionError):
            gae.gae(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(4), 0.9)
        with self.assertRaises(AssertionError):
            gae.gae(np.zeros((3, 2)), np.zeros(3), np.zeros(3), np.zeros(3), 0.9)

    def test_alias(self):
        self.assertIs(gae.generalized_advantage_estimation, gae.gae)


class GaeReturnsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_targets_are_advantage_plus_value(self):
        r, d, v_tm1, v_t, end = _trajectory(10)
        adv, target = self.variant(gae.gae_returns)(r, d, v_tm1, v_t, 0.95, end)
        want = _np_gae(r, d, v_tm1, v_t, 0.95, end)
        np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(target, want + v_tm1, rtol=1e-5, atol=1e-5)

    def test_gradients_stopped(self):
        r, d, v_tm1, v_t, end = _trajectory(11)
        grad = jax.grad(lambda v: jnp.sum(gae.gae_returns(r, d, v, v_t, 0.9, end)[1]))(
            v_tm1
        )
        np.testing.assert_array_equal(grad, np.zeros_like(v_tm1))


if __name__ == "__main__":
    absltest.main()
