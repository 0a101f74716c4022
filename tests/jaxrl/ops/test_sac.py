"""Tests for jaxrl.ops.sac vs scipy, NumPy loops, finite differences, Monte Carlo."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import absltest, parameterized
from scipy import stats

from jaxrl.errors import ConfigError
from jaxrl.ops import sac

# ------------------------------------------------------------------------ references


def _np_gaussian_log_prob(x, mean, log_std):
    return float(np.sum(stats.norm.logpdf(x, loc=mean, scale=np.exp(log_std))))


def _np_tanh_gaussian_log_prob(u, mean, log_std):
    """Density of y = tanh(u) by the CDF route: d/dy Phi((atanh y - mu) / sigma).

    Written per dimension with scipy's normal pdf and the derivative of
    atanh, 1 / (1 - y²), evaluated in float64 from y = tanh(u).
    """
    y = np.tanh(np.asarray(u, np.float64))
    pdf = stats.norm.pdf(np.arctanh(y), loc=mean, scale=np.exp(log_std))
    return float(np.sum(np.log(pdf) - np.log1p(-(y**2))))


def _gauss(seed, d=3):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d).astype(np.float32)
    mean = rng.normal(size=d).astype(np.float32)
    log_std = rng.uniform(-1.5, 0.7, size=d).astype(np.float32)
    return u, mean, log_std


class GaussianLogProbTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("one_dim", 0, 1), ("three_dims", 1, 3))
    def test_matches_scipy(self, seed, d):
        x, mean, log_std = _gauss(seed, d)
        got = self.variant(sac.gaussian_log_prob)(x, mean, log_std)
        np.testing.assert_allclose(
            got, _np_gaussian_log_prob(x, mean, log_std), rtol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_vmapped_batch(self):
        rng = np.random.default_rng(3)
        x, m = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
        s = rng.uniform(-1, 1, size=(7, 2))
        got = self.variant(jax.vmap(sac.gaussian_log_prob))(x, m, s)
        want = [_np_gaussian_log_prob(x[i], m[i], s[i]) for i in range(7)]
        np.testing.assert_allclose(got, want, rtol=1e-5)


class TanhLogDetJacobianTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("moderate", [-2.0, -0.3, 0.0, 0.4, 1.7]),
        ("saturated", [-30.0, 12.0, 50.0]),
    )
    def test_matches_log_of_derivative(self, u):
        got = self.variant(sac.tanh_log_det_jacobian)(jnp.asarray(u))
        u64 = np.asarray(u, np.float64)
        # d tanh / du = sech² u = 4 / (e^u + e^-u)², in log form for large |u|.
        want = np.sum(np.log(4.0) - 2.0 * np.logaddexp(u64, -u64))
        assert np.isfinite(got)
        np.testing.assert_allclose(got, want, rtol=1e-5)

    def test_central_difference_of_tanh(self):
        u = np.array([-1.3, 0.2, 2.1])
        h = 1e-6
        slope = (np.tanh(u + h) - np.tanh(u - h)) / (2 * h)
        np.testing.assert_allclose(
            sac.tanh_log_det_jacobian(u), np.sum(np.log(slope)), rtol=1e-4
        )


class TanhGaussianLogProbTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("a", 0), ("b", 1), ("c", 2))
    def test_matches_scipy_change_of_variables(self, seed):
        u, mean, log_std = _gauss(seed)
        got = self.variant(sac.tanh_gaussian_log_prob)(u, mean, log_std)
        np.testing.assert_allclose(
            got, _np_tanh_gaussian_log_prob(u, mean, log_std), rtol=1e-4, atol=1e-5
        )

    def test_density_is_derivative_of_the_cdf(self):
        # One dimension: P(tanh U <= y) = Phi((atanh y - mu) / sigma); compare
        # the density with a central finite difference of that CDF.
        mean, log_std = 0.3, np.log(0.8)
        for y in (-0.9, -0.2, 0.5, 0.95):
            cdf = lambda v: stats.norm.cdf(np.arctanh(v), mean, np.exp(log_std))
            h = 1e-6
            fd = (cdf(y + h) - cdf(y - h)) / (2 * h)
            got = sac.tanh_gaussian_log_prob(
                jnp.array([np.arctanh(y)]), jnp.array([mean]), jnp.array([log_std])
            )
            np.testing.assert_allclose(np.exp(got), fd, rtol=1e-4)

    def test_monte_carlo_histogram(self):
        # Samples of sample_tanh_gaussian follow the density: compare bin
        # frequencies with the density integrated over each bin.
        mean, log_std = jnp.array([0.5]), jnp.array([np.log(0.7)])
        keys = jax.random.split(jax.random.key(0), 200_000)
        y, _ = jax.vmap(lambda k: sac.sample_tanh_gaussian(k, mean, log_std))(keys)
        edges = np.linspace(-0.99, 0.99, 23)
        freq = np.histogram(np.asarray(y[:, 0]), bins=edges)[0] / y.shape[0]
        fine = np.linspace(-0.99, 0.99, 22 * 40 + 1)
        dens = np.exp(
            jax.vmap(
                lambda v: sac.tanh_gaussian_log_prob(
                    jnp.arctanh(v)[None], mean, log_std
                )
            )(jnp.asarray(fine, jnp.float32))
        )
        mass = np.array(
            [
                np.trapezoid(
                    dens[i * 40 : (i + 1) * 40 + 1], fine[i * 40 : (i + 1) * 40 + 1]
                )
                for i in range(22)
            ]
        )
        np.testing.assert_allclose(freq, mass, atol=3e-3)


class SampleTanhGaussianTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_sample_and_log_prob_are_consistent(self):
        _, mean, log_std = _gauss(4)
        y, logp = self.variant(sac.sample_tanh_gaussian)(
            jax.random.key(1), mean, log_std
        )
        assert y.shape == (3,) and logp.shape == ()
        assert np.all(np.abs(np.asarray(y)) < 1)
        u = np.arctanh(np.asarray(y, np.float64))
        np.testing.assert_allclose(
            logp, _np_tanh_gaussian_log_prob(u, mean, log_std), rtol=1e-3, atol=1e-3
        )

    def test_reparameterised_gradient(self):
        # d E[tanh(mu + sigma eps)] / d mu = E[sech²(mu + sigma eps)]: compare the
        # pathwise gradient of the sample mean with a NumPy Monte Carlo estimate.
        keys = jax.random.split(jax.random.key(5), 20_000)
        mu, ls = 0.4, np.log(0.5)

        def mean_sample(m):
            y, _ = jax.vmap(
                lambda k: sac.sample_tanh_gaussian(k, m[None], jnp.array([ls]))
            )(keys)
            return jnp.mean(y)

        got = jax.grad(mean_sample)(jnp.float32(mu))
        eps = np.random.default_rng(0).normal(size=400_000)
        want = np.mean(1.0 / np.cosh(mu + np.exp(ls) * eps) ** 2)
        np.testing.assert_allclose(got, want, atol=0.01)


class ScaleActionTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_round_trip_and_bounds(self):
        low, high = jnp.array([-2.0, 0.0]), jnp.array([2.0, 3.0])
        y = jnp.array([0.25, -0.5])
        a = self.variant(sac.scale_action)(y, low, high)
        np.testing.assert_allclose(a, [0.5, 0.75])
        np.testing.assert_allclose(self.variant(sac.unscale_action)(a, low, high), y)
        ends = sac.scale_action(jnp.array([-1.0, 1.0]), low, high)
        np.testing.assert_allclose(ends, [-2.0, 3.0])
        clipped = sac.unscale_action(jnp.array([5.0, -1.0]), low, high)
        np.testing.assert_allclose(clipped, [1.0, -1.0])


class SoftQTargetTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("twin", 2), ("single", 1), ("five", 5))
    def test_matches_numpy_loop(self, k):
        rng = np.random.default_rng(k)
        b = 8
        r = rng.normal(size=b).astype(np.float32)
        terminated = rng.random(b) < 0.3
        d = (0.99 * (1 - terminated)).astype(np.float32)
        q = rng.normal(size=(b, k)).astype(np.float32) * 3
        logp = rng.normal(size=b).astype(np.float32)
        alpha = np.float32(0.2)
        got = self.variant(jax.vmap(sac.soft_q_target, in_axes=(0, 0, 0, 0, None)))(
            r, d, q, logp, alpha
        )
        want = np.empty(b)
        for i in range(b):
            v = min(q[i]) - alpha * logp[i]
            want[i] = r[i] + (0.0 if terminated[i] else 0.99 * v)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    def test_alpha_zero_is_clipped_double_q(self):
        got = sac.soft_q_target(0.5, 0.9, jnp.array([2.0, -1.0]), 10.0, 0.0)
        np.testing.assert_allclose(got, 0.5 - 0.9)


class SoftPolicyLossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_value_and_gradients(self):
        q = jnp.array([1.5, -0.5])
        f = self.variant(sac.soft_policy_loss)
        np.testing.assert_allclose(f(q, -1.0, 0.3), -0.3 + 0.5)
        g_q, g_logp = jax.grad(sac.soft_policy_loss, argnums=(0, 1))(q, -1.0, 0.3)
        np.testing.assert_allclose(g_q, [0.0, -1.0])  # only the smaller critic
        np.testing.assert_allclose(g_logp, 0.3)


class TemperatureLossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("low_entropy", 2.0), ("high_entropy", -3.0))
    def test_gradient_sign(self, log_pi):
        target = -1.0
        loss = self.variant(sac.temperature_loss)
        np.testing.assert_allclose(loss(0.2, log_pi, target), -0.2 * (log_pi - 1.0))
        g_alpha, g_logp = jax.grad(sac.temperature_loss, argnums=(0, 1))(
            0.2, log_pi, target
        )
        np.testing.assert_allclose(g_alpha, -(log_pi + target))
        assert g_logp == 0.0
        # Entropy -log_pi below the target -> alpha grows (negative gradient).
        assert (g_alpha < 0) == (-log_pi < target)


class PolyakUpdateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("copy", 1.0), ("slow", 0.005), ("keep", 0.0))
    def test_matches_numpy(self, tau):
        rng = np.random.default_rng(0)
        t = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
        o = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
        t32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), t)
        o32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), o)
        got = self.variant(sac.polyak_update)(t32, o32, tau)
        for name in t:
            np.testing.assert_allclose(
                got[name], tau * o[name] + (1 - tau) * t[name], rtol=1e-5, atol=1e-6
            )
            assert got[name].dtype == jnp.float32


class EagerArgumentChecksTest(parameterized.TestCase):
    """Concrete out-of-domain hyperparameters raise; traced ones are not checked."""

    @parameterized.named_parameters(
        (
            "alpha_negative_target",
            lambda: sac.soft_q_target(1.0, 0.5, jnp.array([4.0, 2.0]), -1.0, -0.5),
            r"alpha must lie in \[0.0, inf\], got -0.5",
        ),
        (
            "alpha_inf_policy_loss",
            lambda: sac.soft_policy_loss(jnp.array([3.0, 1.0]), -2.0, float("inf")),
            "alpha must be finite, got inf",
        ),
        (
            "tau_above_one_polyak",
            lambda: sac.polyak_update({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, 1.5),
            r"tau must lie in \[0.0, 1.0\], got 1.5",
        ),
        (
            "tau_negative_polyak",
            lambda: sac.polyak_update({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, -0.1),
            "tau must lie in",
        ),
    )
    def test_invalid_concrete_argument_raises(self, call, match):
        with self.assertRaisesRegex(ConfigError, "^" + match):
            call()

    def test_traced_invalid_values_compile_once_and_run(self):
        traces = []

        @jax.jit
        def update(tau):
            traces.append(None)
            return sac.polyak_update({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, tau)

        update(0.25)
        out = update(1.5)  # traced: not checked, no error, no retrace
        self.assertLen(traces, 1)
        np.testing.assert_allclose(out["w"], [1.5, 1.5])


if __name__ == "__main__":
    absltest.main()
