"""Tests for jaxrl.envs.stock: the stock identity, resets, the step contract, errors."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import rollout
from jaxrl.envs.finite_mdp import make_chain_env
from jaxrl.envs.stock import StockParams, StockWrapper, split_stock, with_stock
from jaxrl.errors import ConfigError


def _trajectory(env, params, key, num_steps, num_envs=3):
    k_reset, k_run = jax.random.split(key)
    obs, state = rollout.reset(k_reset, env, params, num_envs)
    policy = lambda k, o: jax.random.randint(k, o.shape[:1], 0, 2)
    tr, _, _, info = rollout.collect(k_run, env, params, state, obs, policy, num_steps)
    return obs, tr, info


@pytest.mark.parametrize("gamma", [1.0, 0.9, 0.5])
def test_stock_identity_along_trajectories(gamma):
    """c_0 + G_0 = gamma^t (c_t + G_t) for every t of every episode (NumPy sums)."""
    base, base_params = make_chain_env(num_states=5, slip=0.3, gamma=0.9, max_steps=7)
    env = StockWrapper(base)
    params = StockParams(base_params, gamma=gamma, stock0_low=-3.0, stock0_high=2.0)
    obs0, tr, info = _trajectory(env, params, jax.random.key(1), 60)
    r = np.asarray(tr.reward, np.float64)  # [T, E]
    stock_t = np.asarray(split_stock(tr.obs)[1], np.float64)  # c_t of each step
    stock_next = np.asarray(split_stock(tr.next_obs)[1], np.float64)
    end = np.asarray(tr.terminated | tr.truncated)
    np.testing.assert_allclose(stock_t[0], np.asarray(obs0)[:, -1])
    # the stored next stock is (c + r) / gamma, also at episode ends
    np.testing.assert_allclose(stock_next, (stock_t + r) / gamma, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(info["stock"]), stock_next, rtol=1e-6)
    T, E = r.shape
    checked = 0
    for e in range(E):
        starts = [0] + [t + 1 for t in range(T - 1) if end[t, e]]
        for s in starts:
            stop = next((t for t in range(s, T) if end[t, e]), None)
            if stop is None:
                continue
            rewards = r[s : stop + 1, e]
            for t in range(s, stop + 1):
                g_0 = sum(gamma**k * x for k, x in enumerate(rewards))
                g_t = sum(gamma**k * x for k, x in enumerate(r[t : stop + 1, e]))
                lhs = stock_t[s, e] + g_0
                rhs = gamma ** (t - s) * (stock_t[t, e] + g_t)
                np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-4)
                checked += 1
    assert checked > 20


def test_reset_draws_in_range_and_seeds_differ():
    env = StockWrapper(gymnax.make("CartPole-v1")[0])
    params = StockParams(
        gymnax.make("CartPole-v1")[1], gamma=0.99, stock0_low=-2.0, stock0_high=5.0
    )
    obs, _ = rollout.reset(jax.random.key(0), env, params, 2000)
    c = np.asarray(obs[:, -1])
    assert c.min() >= -2.0 and c.max() <= 5.0
    assert abs(c.mean() - 1.5) < 0.15 and abs(c.std() - 7.0 / np.sqrt(12)) < 0.1
    assert len(np.unique(c)) > 1900
    fixed = params.replace(stock0_low=0.5, stock0_high=0.5)
    obs, _ = rollout.reset(jax.random.key(1), env, fixed, 4)
    np.testing.assert_array_equal(np.asarray(obs[:, -1]), 0.5)


def test_auto_reset_restarts_stock_and_keeps_pre_reset_stock():
    base, base_params = gymnax.make("CartPole-v1")
    env = StockWrapper(base)
    params = StockParams(base_params, gamma=0.5, stock0_low=7.0, stock0_high=7.0)
    obs0, tr, _ = _trajectory(env, params, jax.random.key(3), 80, num_envs=2)
    end = np.asarray(tr.terminated | tr.truncated)
    assert end.any()
    t, e = np.argwhere(end)[0]
    stock_t = float(tr.obs[t, e, -1])
    assert float(tr.next_obs[t, e, -1]) == pytest.approx((stock_t + 1.0) / 0.5)
    assert float(tr.obs[t + 1, e, -1]) == 7.0  # fresh c_0 after the reset
    # the observation part equals the base env's pre-reset final observation
    assert tr.next_obs.shape[-1] == 5


def test_observations_match_the_base_env():
    """The first D entries are the base env's observations for the same keys."""
    base, base_params = gymnax.make("Breakout-MinAtar")
    env = StockWrapper(base)
    params = StockParams(base_params, gamma=0.9)
    key = jax.random.key(4)
    obs, state = env.reset(jax.random.clone(key), params)
    base_obs, base_state = base.reset(
        jax.random.split(jax.random.clone(key))[0], base_params
    )
    np.testing.assert_array_equal(
        np.asarray(obs[:-1]), np.asarray(base_obs, np.float32).reshape(-1)
    )
    k = jax.random.key(5)
    out = env.step(jax.random.clone(k), state, 1, params)
    base_out = base.step(
        jax.random.split(jax.random.clone(k))[0], base_state, 1, base_params
    )
    np.testing.assert_array_equal(
        np.asarray(out[0][:-1]), np.asarray(base_out[0], np.float32).reshape(-1)
    )
    assert float(out[2]) == float(base_out[2])
    assert env.observation_space(params).shape == (401,)
    assert out[0].dtype == jnp.float32


def test_vmap_over_gamma_and_helpers():
    base, base_params = make_chain_env(num_states=4)
    env = StockWrapper(base)

    def first_step(gamma):
        params = StockParams(base_params, gamma=gamma, stock0_low=1.0, stock0_high=1.0)
        obs, state = env.reset(jax.random.key(0), params)
        out = env.step(jax.random.key(1), state, 1, params)
        return out[0][-1], out[2]

    gammas = jnp.array([1.0, 0.5, 0.25])
    stock, reward = jax.jit(jax.vmap(first_step))(gammas)
    np.testing.assert_allclose(stock, (1.0 + reward) / gammas, rtol=1e-6)
    x = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(with_stock(x, -1.0)[:, -1], [-1.0, -1.0])
    np.testing.assert_array_equal(split_stock(x)[0], x[:, :2])


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("gamma", 0.0, "gamma"),
        ("gamma", 1.5, "gamma"),
        ("stock0_low", 3.0, "stock0_low"),
        ("stock0_high", float("nan"), "stock0_high"),
    ],
)
def test_bad_params_raise(field, value, match):
    base, base_params = make_chain_env(num_states=4)
    env = StockWrapper(base)
    params = StockParams(base_params, gamma=0.9, stock0_low=0.0, stock0_high=1.0)
    with pytest.raises(ConfigError, match=match):
        env.reset(jax.random.key(0), params.replace(**{field: value}))
