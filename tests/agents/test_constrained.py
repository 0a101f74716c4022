"""Tests for agents.constrained: penalised loss vs NumPy, lambda = 0 identity,
multiplier dynamics vs a NumPy loop, seed x step-size vmaps, budget learning."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

import envs
from agents import _value_loop, mvi
from agents import constrained as C
from jaxrl.config import stack_configs
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition

BASE = mvi.Config(
    num_envs=2,
    buffer_size=64,
    batch_size=8,
    hidden_sizes=(8,),
    num_chunks=2,
    iters_per_chunk=25,
    learning_starts=8,
    num_eval_episodes=2,
    eval_max_steps=20,
    huber_delta=1.0,
    tau=0.3,
    alpha=0.7,
    l0=-0.5,
    gamma=0.9,
)


def _softmax(x):
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _numpy_loss(q, q_tm1_target, q_t_target, batch, lam, cfg):
    """M-DQN loss on r - lam c, one transition at a time (float64)."""
    tau, alpha, l0, gamma, delta = cfg.tau, cfg.alpha, cfg.l0, cfg.gamma, 1.0
    losses = []
    for b in range(q.shape[0]):
        a = int(batch.action[b])
        r = float(batch.reward[b]) - lam * float(batch.extras["cost"][b])
        log_pi_tm1 = np.log(_softmax(q_tm1_target[b] / tau))
        bonus = alpha * np.clip(tau * log_pi_tm1[a], l0, 0.0)
        pi_t = _softmax(q_t_target[b] / tau)
        v_t = np.sum(pi_t * (q_t_target[b] - tau * np.log(pi_t)))
        disc = gamma * (1.0 - float(batch.terminated[b]))
        td = r + bonus + disc * v_t - q[b, a]
        losses.append(
            0.5 * td**2 if abs(td) <= delta else delta * (abs(td) - 0.5 * delta)
        )
    return np.mean(losses)


def _batch(rng, size=6, obs_dim=4):
    return Transition(
        obs=jnp.asarray(rng.normal(size=(size, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.integers(0, 2, size), jnp.int32),
        reward=jnp.asarray(rng.normal(size=size), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(size, obs_dim)), jnp.float32),
        terminated=jnp.asarray([True, False, False, True, False, False]),
        truncated=jnp.asarray([False, False, True, False, False, False]),
        extras={"cost": jnp.asarray(rng.uniform(0, 2, size), jnp.float32)},
    )


def _nets(key):
    net = _value_loop.network(BASE, 2, 1)
    k1, k2 = jax.random.split(key)
    x = jnp.zeros((4,))
    return net.init(k1, x), net.init(k2, x)


class LossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("lam_zero", 0.0), ("lam_positive", 1.7))
    def test_matches_numpy(self, lam):
        rng = np.random.default_rng(0)
        batch = _batch(rng)
        params, target = _nets(jax.random.key(1))
        config = C.Config(base=BASE)
        got, metrics = self.variant(
            lambda p, t, b, lam_: C.loss(C.Params(p, lam_), t, b, config)
        )(params, target, batch, jnp.float32(lam))
        q = np.asarray(_value_loop.q_values(params, batch.obs, BASE, 1), np.float64)
        qt0 = np.asarray(_value_loop.q_values(target, batch.obs, BASE, 1), np.float64)
        qt1 = np.asarray(
            _value_loop.q_values(target, batch.next_obs, BASE, 1), np.float64
        )
        want = _numpy_loss(q, qt0, qt1, batch, lam, BASE)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        want_r = np.mean(
            np.asarray(batch.reward) - lam * np.asarray(batch.extras["cost"])
        )
        np.testing.assert_allclose(metrics["loss/penalised_reward"], want_r, rtol=1e-5)

    def test_no_gradient_into_the_multiplier_and_cost_required(self):
        batch = _batch(np.random.default_rng(1))
        params, target = _nets(jax.random.key(2))
        config = C.Config(base=BASE)
        grad = jax.grad(
            lambda lam_: C.loss(C.Params(params, lam_), target, batch, config)[0]
        )
        self.assertEqual(float(grad(jnp.float32(0.5))), 0.0)
        with self.assertRaisesRegex(KeyError, "extras\\['cost'\\]"):
            C.loss(C.Params(params, 0.0), target, batch.replace(extras={}), config)


class LambdaZeroIdentityTest(parameterized.TestCase):
    def test_update_equals_base_agent_bitwise(self):
        env, p = envs.make("CartPole-Constrained-v0")
        config = C.Config(base=BASE, lambda0=0.0)
        state = C.init(jax.random.key(0), env, p, config)
        batch = _batch(np.random.default_rng(3))
        new, metrics = jax.jit(lambda s, b: C.update(s, b, config))(state, batch)
        ref, ref_metrics = jax.jit(lambda s, b: mvi.update(s, b, BASE))(
            state.base, batch
        )
        chex.assert_trees_all_equal(new.base.params, ref.params)
        chex.assert_trees_all_equal(new.base.opt_state, ref.opt_state)
        self.assertEqual(float(metrics["loss/td"]), float(ref_metrics["loss/td"]))
        # A positive multiplier changes the update.
        moved, _ = C.update(state.replace(lam=jnp.float32(2.0)), batch, config)
        self.assertFalse(
            all(
                np.array_equal(a, b)
                for a, b in zip(
                    jax.tree.leaves(moved.base.params),
                    jax.tree.leaves(ref.params),
                    strict=False,
                )
            )
        )


def _numpy_multiplier(method, eta, lam_max, lam0, costs, ended, budget):
    lam, prev, seen, out = lam0, 0.0, 0, []
    for c, e in zip(costs, ended, strict=False):
        if e.any():
            g = c[e].mean() - budget
            prev_g = prev if seen else g
            d = 2 * g - prev_g if method == "reload" else g
            lam = min(max(lam + eta * d, 0.0), lam_max)
            prev, seen = g, seen + 1
        out.append(lam)
    return np.asarray(out)


class MultiplierUpdateTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("gda", "lagrangian", 0.3, 5.0),
        ("reload", "reload", 0.3, 5.0),
        ("reload_clipped", "reload", 0.8, 1.5),
    )
    def test_matches_numpy_loop(self, method, eta, lam_max):
        rng = np.random.default_rng(4)
        costs = rng.uniform(0, 4, (40, 3)).astype(np.float32)
        ended = rng.uniform(size=(40, 3)) < 0.3
        budget = 2.0
        config = C.Config(method=method, base=BASE, eta_lambda=eta, lambda_max=lam_max)

        def scan(costs, ended):
            def body(carry, x):
                lam, prev, n = carry
                lam, prev, n, _ = C.multiplier_update(lam, prev, n, *x, budget, config)
                return (lam, prev, n), lam

            init = (jnp.float32(0.5), jnp.float32(0.0), jnp.int32(0))
            return jax.lax.scan(body, init, (costs, ended))[1]

        got = self.variant(scan)(costs, ended)
        want = _numpy_multiplier(method, eta, lam_max, 0.5, costs, ended, budget)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        self.assertGreater(len(np.unique(want)), 5)


def test_train_vmap_seeds_and_step_sizes_lambda_zero_is_mvi_and_dynamics():
    """One jitted call over step sizes x seeds; eta = 0 rows are M-DQN bitwise;
    every row's multiplier follows its own violations through a NumPy loop."""
    env, p = envs.make("CartPole-Constrained-v0")
    p = p.replace(x_band=0.0, cost_limit=3.0)  # every step costs 1: binding
    etas = (0.0, 0.05, 0.2)
    configs = stack_configs(
        [C.Config(method="reload", base=BASE, eta_lambda=e) for e in etas]
    )
    train = lambda c, k: C.make_train(c, env, p)(k)
    sweep = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(7), 2)
    state, metrics = sweep(configs, keys)
    assert metrics["lagrange/lambda"].shape == (3, 2, 50)
    ref_keys = jax.random.split(jax.random.key(7), 2)
    ref_state, _ = jax.jit(jax.vmap(mvi.make_train(BASE, env, p)))(ref_keys)
    # (float tolerance: the config axis changes XLA's fusion; unbatched runs
    # are bitwise equal, see LambdaZeroIdentityTest)
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x[0], state.base.params),
        ref_state.params,
        rtol=1e-4,
        atol=1e-5,
    )
    # Seeds differ; step sizes change the multiplier.
    lam = np.asarray(metrics["lagrange/lambda"])
    assert not np.array_equal(lam[1, 0], lam[1, 1])
    assert np.all(lam[0] == 0.0) and lam[2, 0, -1] > lam[1, 0, -1] > 0.0
    # The multiplier path is the ReLOAD recursion on the observed violations.
    g = np.asarray(metrics["lagrange/violation"])
    for i, eta in enumerate(etas):
        for s in range(2):
            lam_np, prev, out = 0.0, None, []
            for gk in g[i, s]:
                if not np.isnan(gk):
                    d = 2 * gk - (gk if prev is None else prev)
                    lam_np = min(max(lam_np + eta * d, 0.0), 100.0)
                    prev = gk
                out.append(lam_np)
            np.testing.assert_allclose(lam[i, s], out, rtol=1e-5, atol=1e-6)
    # With every step costing 1, the undiscounted episode cost is the length.
    cost, length = metrics["episode/cost"], metrics["episode/length"]
    np.testing.assert_array_equal(np.isnan(cost), np.isnan(length))
    np.testing.assert_allclose(cost[~np.isnan(cost)], length[~np.isnan(length)])


def test_bad_inputs_are_clear_errors():
    env, p = envs.make("CartPole-Constrained-v0")
    with pytest.raises(ConfigError, match="method"):
        C.make_train(C.Config(method="pid", base=BASE), env, p)
    with pytest.raises(ConfigError, match="lambda0"):
        C.make_train(C.Config(base=BASE, lambda0=5.0, lambda_max=1.0), env, p)
    with pytest.raises(ConfigError, match="eta_lambda"):
        C.make_train(C.Config(base=BASE, eta_lambda=-1.0), env, p)
    plain, plain_p = envs.make("CartPole-v1")
    with pytest.raises(ConfigError, match="cost_limit"):
        C.make_train(C.Config(base=BASE), plain, plain_p)


@pytest.mark.slow
def test_cartpole_constrained_budget_is_met_where_unconstrained_violates():
    """CartPole-Constrained-v0 with a binding band budget: 2 seeds x {0, eta}."""
    env, p = envs.make("CartPole-Constrained-v0")
    p = p.replace(x_band=1.0, cost_limit=25.0)
    config = C.cartpole_config("lagrangian")
    configs = stack_configs([config.replace(eta_lambda=0.0), config])
    train = lambda c, k: C.make_train(c, env, p)(k)
    sweep = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    _, metrics = sweep(configs, jax.random.split(jax.random.key(0), 2))
    last = config.iters_per_chunk - 1
    cost = np.asarray(metrics["eval/cost"][..., last :: config.iters_per_chunk])
    ret = np.asarray(metrics["eval/return"][..., last :: config.iters_per_chunk])
    final_cost = cost[..., -3:].mean(-1)  # [2 configs, 2 seeds], last 3 evaluations
    assert np.all(final_cost[0] > 25.0 * 1.5), final_cost  # unconstrained violates
    assert np.all(final_cost[1] <= 25.0 * 1.2), final_cost  # constrained meets it
    assert np.all(ret[1, :, -3:].mean(-1) > 100.0), ret
