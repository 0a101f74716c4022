"""Tests for jaxrl.ops.terminations (CaT) against NumPy loops and closed forms."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest, parameterized

from jaxrl.errors import ConfigError
from jaxrl.ops import gae, terminations

# ------------------------------------------------------------------------- references


def _np_scale_update(scale, c, decay, floor):
    """One EMA step of the per-constraint batch maximum, element by element."""
    N, K = c.shape
    out = np.zeros(K)
    for k in range(K):
        m = 0.0
        for n in range(N):
            m = max(m, c[n, k])
        out[k] = max(decay * scale[k] + (1 - decay) * m, floor)
    return out


def _np_delta(c, scale, p_max):
    p = np.broadcast_to(np.asarray(p_max, np.float64), c.shape)
    best = 0.0
    for k in range(len(c)):
        ratio = min(max(c[k], 0.0) / scale[k], 1.0)
        best = max(best, p[k] * ratio)
    return best


def _np_soft_gae(r, d, delta, v_tm1, v_t, lam, end):
    """Forward sums of survival-weighted TD errors, walked until the episode end.

    A_t = sum_k (prod_{t<=j<k} d_j (1 - delta_j) lam) e_k, with
    e_k = (1 - delta_k) r_k + d_k (1 - delta_k) v_t[k] - v_tm1[k]; the walk stops
    after the first episode end at or after t (or at the trajectory's end).
    """
    r, d, delta, v_tm1, v_t = (
        np.asarray(x, np.float64) for x in (r, d, delta, v_tm1, v_t)
    )
    T = len(r)
    end = np.zeros(T, bool) if end is None else np.asarray(end, bool)
    adv = np.zeros(T)
    for t in range(T):
        weight, total = 1.0, 0.0
        for k in range(t, T):
            s = 1.0 - delta[k]
            total += weight * (s * r[k] + d[k] * s * v_t[k] - v_tm1[k])
            if end[k]:
                break
            weight *= d[k] * s * lam
        adv[t] = total
    return adv, adv + v_tm1


def _trajectory(seed, T=12, gamma=0.9):
    """A random trajectory with a termination at t=3 and a truncation at t=7."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.0, 2.0, size=T).astype(np.float32)
    term = np.zeros(T, bool)
    trunc = np.zeros(T, bool)
    term[3], trunc[7] = True, True
    v_tm1 = rng.normal(size=T).astype(np.float32)
    v_t = np.concatenate([v_tm1[1:], rng.normal(size=1)]).astype(np.float32)
    v_t[[3, 7]] = rng.normal(size=2)  # pre-reset next observations
    d = (gamma * (1 - term)).astype(np.float32)
    delta = np.where(rng.uniform(size=T) < 0.5, rng.uniform(0, 0.6, size=T), 0.0)
    return r, d, delta.astype(np.float32), v_tm1, v_t, term | trunc


# ---------------------------------------------------------------------------- tests


class ViolationScaleUpdateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("decay0", 0.0), ("decay095", 0.95))
    def test_matches_numpy(self, decay):
        rng = np.random.default_rng(0)
        scale = rng.uniform(0.5, 2.0, size=3).astype(np.float32)
        c = rng.normal(size=(5, 3)).astype(np.float32)  # negative: satisfied
        c[:, 2] = -1.0  # no violation of constraint 2 in the batch
        got = self.variant(terminations.violation_scale_update)(scale, c, decay, 1e-6)
        want = _np_scale_update(scale, c, decay, 1e-6)
        np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_floor_binds_without_violations(self):
        got = terminations.violation_scale_update(
            jnp.array([1e-7]), jnp.zeros((4, 1)), 0.5, 1e-3
        )
        np.testing.assert_allclose(got, [1e-3])

    def test_bad_arguments(self):
        ok = (jnp.ones(2), jnp.ones((3, 2)))
        with pytest.raises(ConfigError, match="decay"):
            terminations.violation_scale_update(*ok, 1.0)
        with pytest.raises(ConfigError, match="floor"):
            terminations.violation_scale_update(*ok, 0.5, 0.0)
        with pytest.raises(AssertionError):
            terminations.violation_scale_update(jnp.ones(3), jnp.ones((3, 2)), 0.5)


class TerminationProbabilityTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("shared_p_max", 0.3), ("per_constraint", np.array([0.1, 0.9, 0.5]))
    )
    def test_matches_numpy(self, p_max):
        rng = np.random.default_rng(1)
        c = rng.normal(size=(16, 3)).astype(np.float32)
        scale = rng.uniform(0.2, 1.5, size=3).astype(np.float32)
        fn = jax.vmap(terminations.termination_probability, in_axes=(0, None, None))
        got = self.variant(fn)(c, scale, p_max)
        want = [_np_delta(ci, scale, p_max) for ci in c]
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)

    def test_no_violation_is_zero_and_range(self):
        rng = np.random.default_rng(2)
        scale = jnp.ones(2)
        fn = jax.vmap(terminations.termination_probability, in_axes=(0, None, None))
        c = rng.normal(size=(200, 2)).astype(np.float32) * 3.0
        delta = np.asarray(fn(c, scale, 0.4))
        assert np.all(delta[np.all(c <= 0, axis=1)] == 0.0)
        assert np.all((delta >= 0.0) & (delta <= 0.4))
        assert np.isclose(delta.max(), 0.4)  # some violation exceeds the scale

    def test_bad_p_max(self):
        with pytest.raises(ConfigError, match="p_max"):
            terminations.termination_probability(jnp.ones(1), jnp.ones(1), 1.5)


class TerminationProbabilitiesTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_numpy_loop_with_running_scale(self):
        rng = np.random.default_rng(3)
        T, N, K = 7, 4, 2
        c = np.where(
            rng.uniform(size=(T, N, K)) < 0.3, rng.exponential(size=(T, N, K)), 0
        )
        c = c.astype(np.float32)
        scale_0 = np.array([0.5, 1e-6], np.float32)
        p_max = np.array([0.2, 0.7], np.float32)
        delta, scale = self.variant(terminations.termination_probabilities)(
            scale_0, c, p_max, 0.8, 1e-6
        )
        s = scale_0.astype(np.float64)
        want = np.zeros((T, N))
        for t in range(T):
            s = _np_scale_update(s, c[t], 0.8, 1e-6)
            for n in range(N):
                want[t, n] = _np_delta(c[t, n], s, p_max)
        np.testing.assert_allclose(delta, want, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(scale, s, rtol=1e-5)

    def test_zero_p_max_is_exactly_zero(self):
        c = jnp.abs(jax.random.normal(jax.random.key(0), (5, 3, 1)))
        delta, _ = terminations.termination_probabilities(jnp.ones(1), c, 0.0, 0.9)
        assert np.all(np.asarray(delta) == 0.0)


class SoftTerminationReturnsTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("lambda0", 0.0), ("lambda095", 0.95), ("lambda1", 1.0)
    )
    def test_matches_numpy(self, lam):
        r, d, delta, v_tm1, v_t, end = _trajectory(4)
        adv, target = self.variant(terminations.soft_termination_returns)(
            r, d, delta, v_tm1, v_t, lam, end
        )
        want_adv, want_target = _np_soft_gae(r, d, delta, v_tm1, v_t, lam, end)
        np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(target, want_target, rtol=1e-5, atol=1e-5)

    def test_one_step_target_closed_form(self):
        """lambda = 0: y_t = (1 - delta) r + gamma_t (1 - delta) v_t."""
        r, d, delta, v_tm1, v_t, end = _trajectory(5)
        _, target = terminations.soft_termination_returns(
            r, d, delta, v_tm1, v_t, 0.0, end
        )
        want = (1 - delta) * r + d * (1 - delta) * v_t
        np.testing.assert_allclose(target, want, rtol=1e-5, atol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_zero_delta_is_gae_bitwise(self):
        """Also under jit, where XLA fuses each program's multiply-adds itself."""
        r, d, _, v_tm1, v_t, end = _trajectory(6, T=64)
        got = self.variant(terminations.soft_termination_returns)(
            r, d, np.zeros_like(r), v_tm1, v_t, 0.95, end
        )
        want = self.variant(gae.gae_returns)(r, d, v_tm1, v_t, 0.95, end)
        chex.assert_trees_all_equal(got, want)

    def test_certain_termination_ends_the_return(self):
        """delta = 1 at t: nothing of step t or later reaches A_{t'} for t' <= t."""
        r, d, delta, v_tm1, v_t, _ = _trajectory(7)
        delta = delta.copy()
        delta[5] = 1.0
        adv, target = terminations.soft_termination_returns(
            r, d, delta, v_tm1, v_t, 1.0
        )
        np.testing.assert_allclose(target[5], 0.0, atol=1e-6)
        r2 = r.copy()
        r2[5:] += 10.0
        adv2, _ = terminations.soft_termination_returns(r2, d, delta, v_tm1, v_t, 1.0)
        np.testing.assert_allclose(adv2[:5], adv[:5], rtol=1e-6, atol=1e-6)

    def test_bad_delta(self):
        r, d, delta, v_tm1, v_t, end = _trajectory(8)
        with pytest.raises(ConfigError, match="delta_t"):
            terminations.soft_termination_returns(
                r, d, delta + 1.0, v_tm1, v_t, 0.9, end
            )


if __name__ == "__main__":
    absltest.main()
