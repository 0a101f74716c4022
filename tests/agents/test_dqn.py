"""Tests for jaxrl.agents.dqn: loss vs NumPy, contract, determinism, config, learning."""

from __future__ import annotations

import time

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import dqn
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition
from tests.agents.learning import CARTPOLE_SEEDS, assert_solves_cartpole

TINY = dqn.Config(
    num_envs=2,
    buffer_size=64,
    batch_size=8,
    hidden_sizes=(16, 16),
    num_chunks=3,
    iters_per_chunk=12,
    updates_per_iter=2,
    num_eval_episodes=2,
    eval_max_steps=20,
    learning_starts=8,
    target_update_period=3,
    polyak=0.5,
    lr_end_fraction=0.1,
)


@pytest.fixture(scope="module")
def cartpole():
    return gymnax.make("CartPole-v1")


# ---------------------------------------------------------------------- NumPy reference


def _np_q(params, obs):
    """Independent NumPy forward pass of the MLP Q-network (ReLU torso, linear head)."""
    p = params["params"]
    x = np.asarray(obs, np.float64)
    for i in range(len(p["torso"])):
        layer = p["torso"][f"dense_{i}"]
        x = np.maximum(x @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]), 0.0)
    return x @ np.asarray(p["head"]["kernel"]) + np.asarray(p["head"]["bias"])


def _np_huber(x, delta):
    a = np.abs(x)
    return np.where(a <= delta, 0.5 * x**2, delta * (a - 0.5 * delta))


def _fixed_batch():
    rng = np.random.default_rng(0)
    b = 6
    return Transition(
        obs=jnp.asarray(rng.normal(size=(b, 4)), jnp.float32),
        action=jnp.asarray([0, 1, 1, 0, 1, 0], jnp.int32),
        reward=jnp.asarray(rng.normal(size=b) * 3, jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(b, 4)), jnp.float32),
        terminated=jnp.asarray([False, True, False, False, False, False]),
        truncated=jnp.asarray([False, False, True, False, False, False]),
    )


def _params(seed=1, hidden=(16, 16)):
    from jaxrl.nets import QNetwork

    net = QNetwork(num_actions=2, hidden_sizes=hidden)
    return net.init(jax.random.key(seed), jnp.zeros(4))


class TestLoss:
    def test_matches_numpy(self):
        config = TINY.replace(gamma=0.9, huber_delta=0.7)
        params, target = _params(1), _params(2)
        batch = _fixed_batch()
        got, metrics = jax.jit(dqn.loss)(params, target, batch, config)

        q_tm1 = _np_q(params, batch.obs)
        q_t = _np_q(target, batch.next_obs)
        term = np.asarray(batch.terminated, np.float64)
        a = np.asarray(batch.action)
        td = (
            np.asarray(batch.reward)
            + 0.9 * (1 - term) * q_t.max(-1)
            - q_tm1[np.arange(6), a]
        )
        want = _np_huber(td, 0.7).mean()
        np.testing.assert_allclose(got, want, rtol=1e-5)
        np.testing.assert_allclose(metrics["loss/td"], want, rtol=1e-5)
        np.testing.assert_allclose(metrics["td/abs"], np.abs(td).mean(), rtol=1e-5)

    def test_truncation_bootstraps_termination_does_not(self):
        config = TINY.replace(gamma=0.9, huber_delta=1e6)  # quadratic: loss = td^2 / 2
        params, target = _params(1), _params(2)
        base = jax.tree.map(lambda x: x[:1], _fixed_batch())
        plain = base.replace(
            terminated=jnp.array([False]), truncated=jnp.array([False])
        )
        trunc = base.replace(terminated=jnp.array([False]), truncated=jnp.array([True]))
        term = base.replace(terminated=jnp.array([True]), truncated=jnp.array([False]))
        td = lambda b: np.sqrt(2 * float(dqn.loss(params, target, b, config)[0]))

        q_tm1 = _np_q(params, base.obs)[0, int(base.action[0])]
        boot = 0.9 * _np_q(target, base.next_obs)[0].max()
        r = float(base.reward[0])
        np.testing.assert_allclose(td(trunc), abs(r + boot - q_tm1), rtol=1e-4)
        np.testing.assert_allclose(td(plain), td(trunc), rtol=1e-6)
        np.testing.assert_allclose(td(term), abs(r - q_tm1), rtol=1e-4)

    def test_gradient_only_through_online_params(self):
        params, target = _params(1), _params(2)
        g_target = jax.grad(lambda t: dqn.loss(params, t, _fixed_batch(), TINY)[0])(
            target
        )
        assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(g_target))


# ----------------------------------------------------------------------- act / schedule


def test_act_greedy_and_epsilon(key):
    params = _params(3)
    obs = jnp.asarray(np.random.default_rng(1).normal(size=(32, 4)), jnp.float32)
    greedy_want = _np_q(params, obs).argmax(-1)
    keys = jax.random.split(key, 32)
    greedy = jax.jit(jax.vmap(lambda o, k: dqn.act(params, o, k, TINY, greedy=True)))(
        obs, keys
    )
    np.testing.assert_array_equal(greedy, greedy_want)
    k0, k1 = jax.random.split(jax.random.key(1))
    eps0 = jax.jit(jax.vmap(lambda o, k: dqn.act(params, o, k, TINY, epsilon=0.0)))(
        obs, jax.random.split(k0, 32)
    )
    np.testing.assert_array_equal(eps0, greedy_want)
    one = jnp.zeros(4)
    rand = jax.jit(jax.vmap(lambda k: dqn.act(params, one, k, TINY, epsilon=1.0)))(
        jax.random.split(k1, 200)
    )
    assert rand.dtype == jnp.int32
    assert set(np.asarray(rand).tolist()) == {0, 1}


def test_epsilon_schedule():
    config = TINY.replace(eps_start=1.0, eps_end=0.1, eps_decay=0.5)
    total = config.total_iters  # decay lasts half of the iterations
    got = [float(dqn.epsilon_at(s, config)) for s in (0, total // 4, total // 2, total)]
    np.testing.assert_allclose(got, [1.0, 0.55, 0.1, 0.1], rtol=1e-5)
    np.testing.assert_allclose(dqn.epsilon_at(5, config.replace(eps_decay=0.0)), 0.1)


def test_total_env_steps():
    assert TINY.total_env_steps == 3 * 12 * 2
    assert dqn.cartpole_config().total_env_steps == 500_000


# ----------------------------------------------------------------------------- contract


@pytest.fixture(scope="module")
def tiny_run(cartpole):
    """TINY runs: ``train``, ``init`` + ``run`` chunk by chunk, and 2 vmapped seeds."""
    env, env_params = cartpole
    train = dqn.make_train(TINY, env, env_params)
    state_t, metrics_t = jax.jit(train)(jax.random.key(7))
    run = jax.jit(dqn.make_run(TINY, env, env_params))
    state = jax.jit(lambda k: dqn.init(k, env, env_params, TINY))(jax.random.key(7))
    chunks = []
    for _ in range(TINY.num_chunks):
        state, m = run(state)
        chunks.append(m)
    metrics_c = jax.tree.map(lambda *xs: jnp.concatenate(xs), *chunks)
    train_seeds = jax.jit(jax.vmap(train))
    seeds = train_seeds(jax.random.split(jax.random.key(3), 2))
    again = train_seeds(jax.random.split(jax.random.key(3), 2))
    return {
        "train": (state_t, metrics_t),
        "chunks": (state, metrics_c),
        "seeds": seeds,
        "again": again,
    }


def _strip(state):
    return state.replace(key=jax.random.key_data(state.key))


def test_train_equals_init_plus_chunks(tiny_run):
    state_t, metrics_t = tiny_run["train"]
    state_c, metrics_c = tiny_run["chunks"]
    chex.assert_trees_all_equal(_strip(state_t), _strip(state_c))  # bitwise
    chex.assert_trees_all_equal(metrics_t, metrics_c)


def test_vmapped_seeds_differ_and_reproduce(tiny_run):
    state, metrics = tiny_run["seeds"]
    assert not any(np.array_equal(x[0], x[1]) for x in jax.tree.leaves(state.params))
    loss = np.nan_to_num(np.asarray(metrics["loss/td"]))
    assert not np.allclose(loss[0], loss[1])
    chex.assert_trees_all_equal(_strip(state), _strip(tiny_run["again"][0]))


def test_metrics_layout(tiny_run):
    state, metrics = tiny_run["train"]
    metrics = jax.tree.map(np.asarray, metrics)
    total = TINY.total_iters
    for name in (
        "loss/td",
        "train/epsilon",
        "episode/return",
        "episode/length",
        "episode/count",
        "eval/return",
    ):
        assert metrics[name].shape == (total,), name
    # updates start once learning_starts env steps are in the buffer
    learning = metrics["train/env_steps"] >= TINY.learning_starts
    assert np.all(np.isfinite(metrics["loss/td"])[learning])
    assert np.all(np.isnan(metrics["loss/td"])[~learning])
    assert int(state.num_updates) == learning.sum() * TINY.updates_per_iter
    assert int(state.step) == total
    # evaluation only at the last iteration of each chunk
    ev = metrics["eval/return"].reshape(TINY.num_chunks, TINY.iters_per_chunk)
    assert np.all(np.isfinite(ev[:, -1])) and np.all(np.isnan(ev[:, :-1]))
    # episode stats are NaN exactly when no episode ended
    count = metrics["episode/count"]
    assert np.array_equal(np.isfinite(metrics["episode/return"]), count > 0)
    assert count.sum() > 0
    ended = count > 0
    np.testing.assert_array_equal(  # CartPole pays 1 per step
        metrics["episode/return"][ended], metrics["episode/length"][ended]
    )


def test_update_keeps_shapes_and_dtypes(cartpole, key):
    env, env_params = cartpole
    state = dqn.init(key, env, env_params, TINY)
    new_state, metrics = jax.jit(dqn.update)(state, _fixed_batch(), TINY)
    chex.assert_trees_all_equal_shapes_and_dtypes(_strip(state), _strip(new_state))
    assert int(new_state.num_updates) == 1
    assert np.isfinite(float(metrics["loss/td"]))


def test_no_retrace_when_traced_hyperparameters_change(cartpole, key):
    env, env_params = cartpole
    config = TINY.replace(
        iters_per_chunk=3, num_eval_episodes=1, eval_max_steps=3, learning_starts=0
    )

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(state, config):
        return dqn.make_run(config, env, env_params)(state)

    state = dqn.init(key, env, env_params, config)
    _, ref = run(state.replace(key=jax.random.clone(state.key)), config)
    changed = config.replace(
        lr=1e-2,
        gamma=0.5,
        eps_start=0.5,
        eps_end=0.2,
        eps_decay=0.1,
        polyak=1.0,
        target_update_period=1,
        huber_delta=2.0,
        max_grad_norm=0.5,
        learning_starts=4,
        train_frequency=2,
        lr_end_fraction=1.0,
        adam_eps=1e-3,
    )
    _, metrics = run(state, changed)  # a second trace would raise in assert_max_traces
    assert not np.allclose(metrics["train/epsilon"], ref["train/epsilon"])


# ------------------------------------------------------------------------ config checks


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma", 1.5),
        ("gamma", -0.1),
        ("eps_start", 1.2),
        ("eps_end", -0.5),
        ("eps_decay", 2.0),
        ("lr", 0.0),
        ("polyak", 0.0),
        ("target_update_period", 0),
        ("train_frequency", 0),
        ("batch_size", 128),  # > buffer_size=64
        ("num_envs", 0),
        ("hidden_sizes", (16, 0)),
        ("activation", "nope"),
    ],
)
def test_invalid_config_raises(cartpole, key, field, value):
    env, env_params = cartpole
    bad = TINY.replace(**{field: value})
    with pytest.raises(ConfigError, match=field):
        bad.validate()
    with pytest.raises(ConfigError):
        dqn.make_train(bad, env, env_params)


def test_stacked_config_validates():
    from jaxrl.config import stack_configs

    stacked = stack_configs([TINY, TINY.replace(gamma=0.5)])
    stacked.validate()
    with pytest.raises(ConfigError, match="gamma"):
        stack_configs([TINY, TINY.replace(gamma=2.0)]).validate()


# ----------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_learns_cartpole():
    """DQN solves CartPole-v1 in 500k steps (:func:`tests.agents.learning.assert_solves_cartpole`)."""
    env, env_params = gymnax.make("CartPole-v1")
    config = dqn.cartpole_config()
    assert config.total_env_steps <= 500_000
    train = jax.jit(jax.vmap(dqn.make_train(config, env, env_params)))
    keys = jax.random.split(jax.random.key(0), CARTPOLE_SEEDS)
    start = time.perf_counter()
    _, metrics = train(keys)
    final = np.asarray(jax.block_until_ready(metrics["eval/return"]))[:, -1]
    elapsed = time.perf_counter() - start
    print(
        f"DQN CartPole final greedy returns per seed: {final}, wall time {elapsed:.1f}s"
    )
    assert_solves_cartpole(final, "DQN")
