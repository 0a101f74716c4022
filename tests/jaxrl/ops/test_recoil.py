"""Tests for jaxrl.ops.recoil.

The ReCOIL dual objective is checked against the primal f-divergence of the
visitation mixtures (``jaxrl.ops.divergences.f_divergence``), minimised over Q
with L-BFGS; the critic terms against their closed forms.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import absltest, parameterized
from scipy import optimize, special

from jaxrl import testing
from jaxrl.errors import ConfigError
from jaxrl.ops import divergences, recoil

# ------------------------------------------------------------------------ ReCOIL


def _occupancy(P, mu0, pi, gamma):
    """Normalised discounted state-action occupancy (NumPy, float64)."""
    S = P.shape[0]
    p_pi = np.einsum("sa,sat->st", pi, P)
    d_s = (1 - gamma) * np.linalg.solve((np.eye(S) - gamma * p_pi).T, mu0)
    return d_s[:, None] * pi


@functools.lru_cache
def _recoil_fns(f):
    """Jitted value-and-grad of ReCOIL's tabular dual objective (one compile per f)."""

    def objective(x, logits, P, mu0, d_e, d_sub, beta, gamma):
        S, A = mu0.shape[0], d_e.shape[1]
        q = jnp.reshape(x, (S, A))
        pi = jax.nn.softmax(logits, axis=-1)
        v_next = jnp.einsum("sat,t->sa", P, jnp.sum(pi * q, axis=-1))
        disc = jnp.full(S * A, 1.0, q.dtype) * gamma
        return recoil.recoil_objective(
            jnp.ravel(q),
            jnp.ravel(q),
            jnp.ravel(v_next),
            disc,
            jnp.ravel(q),
            jnp.ravel(v_next),
            disc,
            beta,
            gamma,
            f,
            weights_0=jnp.ravel(mu0[:, None] * pi),
            weights_mix=jnp.ravel(beta * d_e + (1 - beta) * d_sub),
            weights_sub=jnp.ravel(d_sub),
        )

    return jax.jit(jax.value_and_grad(objective)), jax.jit(
        jax.grad(objective, argnums=1)
    )


class _Tabular:
    """A tiny MDP with an expert (stochastic, full support) and arbitrary data."""

    def __init__(self, seed=0, S=3, A=2, gamma=0.8):
        rng = np.random.default_rng(seed)
        mdp = testing.random_mdp(rng, S, A, gamma=gamma)
        self.P = np.asarray(mdp.P, np.float64)
        self.mu0 = np.asarray(mdp.mu0, np.float64)
        self.gamma, self.S, self.A = gamma, S, A
        self.pi_e = rng.dirichlet(3 * np.ones(A), size=S)
        self.d_e = _occupancy(self.P, self.mu0, self.pi_e, gamma)
        self.d_s = _occupancy(
            self.P, self.mu0, rng.dirichlet(np.ones(A), size=S), gamma
        )

    def _args(self, d_sub, beta):
        return (self.P, self.mu0, self.d_e, d_sub, beta, self.gamma)

    def min_over_q(self, logits, d_sub, beta, f):
        """min_Q J(Q, softmax(logits)) by L-BFGS; returns (value, argmin)."""
        value_and_grad, _ = _recoil_fns(f)
        args = (np.asarray(logits, np.float64), *self._args(d_sub, beta))

        def fun(x):
            val, grad = value_and_grad(x, *args)
            return float(val), np.asarray(grad, np.float64)

        res = optimize.minimize(
            fun,
            np.zeros(self.S * self.A),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
        )
        return res.fun, res.x

    def policy_gradient(self, logits, q_star, d_sub, beta, f):
        """d/dlogits min_Q J(Q, pi) = dJ/dlogits at the minimiser (envelope theorem)."""
        _, grad = _recoil_fns(f)
        return np.asarray(grad(q_star, logits, *self._args(d_sub, beta)), np.float64)


@pytest.fixture(scope="class")
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.usefixtures("x64")
class TestReCOILObjective:
    @pytest.mark.parametrize("f", ["chi_square", "reverse_kl"])
    @pytest.mark.parametrize("beta", [0.3, 1.0])
    def test_min_over_q_is_minus_the_mixture_divergence(self, f, beta):
        """Strong duality: min_Q J(Q, pi) = -D_f(mixture of d^pi || mixture of d^E)."""
        t = _Tabular(seed=1)
        logits = np.random.default_rng(2).normal(size=(t.S, t.A))
        d_pi = _occupancy(t.P, t.mu0, special.softmax(logits, axis=-1), t.gamma)
        mix_pi = beta * d_pi + (1 - beta) * t.d_s
        mix_e = beta * t.d_e + (1 - beta) * t.d_s
        primal = float(divergences.f_divergence(mix_pi, mix_e, f))
        value, _ = t.min_over_q(logits, t.d_s, beta, f)
        np.testing.assert_allclose(value, -primal, atol=1e-7)

    def test_expert_only_data_gives_behaviour_cloning(self):
        """With d^S = d^E the ReCOIL-optimal policy is the empirical expert policy."""
        t = _Tabular(seed=3)
        beta, f = 0.5, "chi_square"
        bc = t.d_e / t.d_e.sum(-1, keepdims=True)  # empirical expert policy
        value, _ = t.min_over_q(np.log(bc), t.d_e, beta, f)
        np.testing.assert_allclose(value, 0.0, atol=1e-9)
        rng = np.random.default_rng(4)
        for _ in range(3):  # every other policy is strictly worse
            value, _ = t.min_over_q(rng.normal(size=(t.S, t.A)), t.d_e, beta, f)
            assert value < -1e-4

        def neg_value(flat):  # maximise over policies, gradient by the envelope theorem
            logits = np.reshape(flat, (t.S, t.A))
            value, q_star = t.min_over_q(logits, t.d_e, beta, f)
            return -value, -t.policy_gradient(logits, q_star, t.d_e, beta, f).ravel()

        res = optimize.minimize(
            neg_value,
            np.zeros(t.S * t.A),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-9},
        )
        pi_opt = special.softmax(np.reshape(res.x, (t.S, t.A)), axis=-1)
        np.testing.assert_allclose(pi_opt, bc, atol=1e-3)

    def test_minibatch_means_and_weights_agree(self):
        rng = np.random.default_rng(5)
        q0, qm, vm, qs, vs = (rng.normal(size=6) for _ in range(5))
        dm, ds = np.full(6, 0.9), np.where(rng.random(6) < 0.3, 0.0, 0.9)
        got = recoil.recoil_objective(q0, qm, vm, dm, qs, vs, ds, 0.4, 0.9)
        ym, ys = dm * vm - qm, ds * vs - qs
        conj = np.where(ym >= -2, ym + ym**2 / 4, -1.0)
        want = 0.4 * 0.1 * q0.mean() + conj.mean() - 0.6 * ys.mean()
        np.testing.assert_allclose(got, want, rtol=1e-10)
        w = np.ones(6)
        got_w = recoil.recoil_objective(
            q0,
            qm,
            vm,
            dm,
            qs,
            vs,
            ds,
            0.4,
            0.9,
            weights_0=w,
            weights_mix=w,
            weights_sub=w,
        )
        np.testing.assert_allclose(got_w, want, rtol=1e-10)

    def test_bad_mix_weight_and_f(self):
        one = jnp.ones(2)
        with pytest.raises(ConfigError, match="mix_weight"):
            recoil.recoil_objective(one, one, one, one, one, one, one, 0.0, 0.9)
        with pytest.raises(ConfigError, match="f must be one of"):
            recoil.recoil_objective(one, one, one, one, one, one, one, 0.5, 0.9, "js")


class ReCOILCriticTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("live", False), ("terminal", True))
    def test_td_target(self, terminated):
        got = self.variant(recoil.recoil_td_target)(3.0, terminated, 0.99)
        want = -2.0 + 0.99 * (-200.0 if terminated else 3.0)
        np.testing.assert_allclose(got, want, rtol=1e-6)

    def test_critic_loss_and_its_tabular_minimiser(self):
        """One expert and one mixture sample per pair: Q* = (Q_gap + y) / 2 on both."""
        q_e, q_m, y = 150.0, 1.0, -4.0
        want = 0.5 * (q_e - 200.0) ** 2 + 0.5 * (q_m - y) ** 2
        np.testing.assert_allclose(recoil.recoil_critic_loss(q_m, y, q_e), want)
        # a state-action seen in both halves: the loss in q is minimised at the mean
        grad = jax.grad(lambda q: recoil.recoil_critic_loss(q, y, q))((200.0 + y) / 2)
        np.testing.assert_allclose(grad, 0.0, atol=1e-4)
        g = jax.grad(recoil.recoil_critic_loss, argnums=1)(1.0, 3.0, 198.0)
        self.assertEqual(float(g), 0.0)  # no gradient into the target


if __name__ == "__main__":
    absltest.main()
