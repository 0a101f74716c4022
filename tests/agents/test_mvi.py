"""Tests for jaxrl.agents.mvi (M-DQN): loss vs NumPy, DQN/soft-Q limits, sweeps, learning."""

from __future__ import annotations

import functools
import time

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import dqn, mvi
from jaxrl.config import stack_configs
from jaxrl.errors import ConfigError
from jaxrl.nets import QNetwork
from jaxrl.transition import Transition
from tests.agents.learning import CARTPOLE_SEEDS, assert_solves_cartpole

TINY = mvi.Config(
    num_envs=2,
    buffer_size=64,
    batch_size=8,
    hidden_sizes=(16, 16),
    num_chunks=2,
    iters_per_chunk=12,
    updates_per_iter=2,
    num_eval_episodes=2,
    eval_max_steps=20,
    learning_starts=8,
    target_update_period=3,
    polyak=0.5,
    huber_delta=1.0,
)
NUM_ACTIONS = 3

# XLA's default CPU backend level (the default test run compiles at level 1).
FULL_XLA = {"xla_backend_optimization_level": 3}


@pytest.fixture(scope="module")
def cartpole():
    return gymnax.make("CartPole-v1")


# ---------------------------------------------------------------------- NumPy reference


def _params(seed, hidden=(16, 16), num_actions=NUM_ACTIONS):
    net = QNetwork(num_actions=num_actions, hidden_sizes=hidden)
    return net.init(jax.random.key(seed), jnp.zeros(4))


def _np_q(params, obs):
    """Independent float64 forward pass of the MLP Q-network (ReLU, linear head)."""
    p = params["params"]
    x = np.asarray(obs, np.float64)
    for i in range(len(p["torso"])):
        layer = p["torso"][f"dense_{i}"]
        x = np.maximum(x @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]), 0.0)
    return x @ np.asarray(p["head"]["kernel"]) + np.asarray(p["head"]["bias"])


def _np_huber(x, delta):
    a = np.abs(x)
    return np.where(a <= delta, 0.5 * x**2, delta * (a - 0.5 * delta))


def _np_logsumexp(z):
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


def _np_mdqn_td(params, target, batch, gamma, alpha, tau, l0):
    """Per-transition M-DQN TD errors and bonuses, one transition at a time."""
    q_tm1 = _np_q(params, batch.obs)
    q_tm1_bar = _np_q(target, batch.obs)
    q_t_bar = _np_q(target, batch.next_obs)
    tds, bonuses = [], []
    for b in range(q_tm1.shape[0]):
        a = int(batch.action[b])
        # tau * log softmax(q / tau), stable (log-sum-exp with the max subtracted)
        log_pi = q_tm1_bar[b] - tau * _np_logsumexp(q_tm1_bar[b] / tau)
        bonus = alpha * min(max(log_pi[a], l0), 0.0)
        soft_v = tau * _np_logsumexp(q_t_bar[b] / tau)
        # discount from `terminated` only: truncation bootstraps
        discount = gamma * (1.0 - float(batch.terminated[b]))
        y = float(batch.reward[b]) + bonus + discount * soft_v
        tds.append(y - q_tm1[b, a])
        bonuses.append(bonus)
    return np.array(tds), np.array(bonuses)


def _fixed_batch(b=8, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    return Transition(
        obs=jnp.asarray(rng.normal(size=(b, 4)) * scale, jnp.float32),
        action=jnp.asarray(rng.integers(0, NUM_ACTIONS, size=b), jnp.int32),
        reward=jnp.asarray(rng.normal(size=b), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(b, 4)) * scale, jnp.float32),
        terminated=jnp.asarray([False, True, False, False, True, False, False, False]),
        truncated=jnp.asarray([False, False, True, False, False, False, True, False]),
    )


class TestLoss:
    @pytest.mark.parametrize(
        ("alpha", "tau", "l0"),
        [(0.9, 0.03, -1.0), (0.5, 1.0, -0.3), (1.0, 0.3, -10.0), (0.9, 0.0, -1.0)],
    )
    def test_matches_numpy(self, alpha, tau, l0):
        config = TINY.replace(gamma=0.9, huber_delta=0.7, alpha=alpha, tau=tau, l0=l0)
        params, target = _params(1), _params(2)
        batch = _fixed_batch()
        got, metrics = jax.jit(mvi.loss)(params, target, batch, config)
        if tau > 0:
            td, bonus = _np_mdqn_td(params, target, batch, 0.9, alpha, tau, l0)
        else:  # tau -> 0: advantage learning with a hard max
            q_tm1, q_bar = _np_q(params, batch.obs), _np_q(target, batch.obs)
            q_t_bar = _np_q(target, batch.next_obs)
            a = np.asarray(batch.action)
            adv = q_bar[np.arange(8), a] - q_bar.max(-1)
            bonus = alpha * np.clip(adv, l0, 0.0)
            disc = 0.9 * (1 - np.asarray(batch.terminated, np.float64))
            y = np.asarray(batch.reward) + bonus + disc * q_t_bar.max(-1)
            td = y - q_tm1[np.arange(8), a]
        want = _np_huber(td, 0.7).mean()
        np.testing.assert_allclose(got, want, rtol=2e-5)
        np.testing.assert_allclose(metrics["loss/td"], want, rtol=2e-5)
        np.testing.assert_allclose(metrics["td/abs"], np.abs(td).mean(), rtol=2e-5)
        np.testing.assert_allclose(
            metrics["munchausen/bonus"], bonus.mean(), rtol=2e-5, atol=1e-7
        )
        assert np.all(bonus >= alpha * l0) and np.all(bonus <= 0.0)

    def test_clipping_is_exercised(self):
        """The fixed batch has bonuses on both sides of the clip at l0 = -1."""
        params, target = _params(1), _params(2)
        _, bonus = _np_mdqn_td(params, target, _fixed_batch(), 0.9, 1.0, 0.03, -1.0)
        assert np.any(bonus == -1.0) and np.any((bonus > -1.0) & (bonus < 0.0))

    def test_truncation_bootstraps_termination_does_not(self):
        config = TINY.replace(gamma=0.9, huber_delta=1e6)  # quadratic: loss = td^2 / 2
        params, target = _params(1), _params(2)
        one = jax.tree.map(lambda x: x[:1], _fixed_batch())
        plain = one.replace(terminated=jnp.array([False]), truncated=jnp.array([False]))
        trunc = one.replace(terminated=jnp.array([False]), truncated=jnp.array([True]))
        term = one.replace(terminated=jnp.array([True]), truncated=jnp.array([False]))
        td = lambda b: np.sqrt(2 * float(mvi.loss(params, target, b, config)[0]))
        ref_boot = abs(_np_mdqn_td(params, target, plain, 0.9, 0.9, 0.03, -1.0)[0][0])
        ref_term = abs(_np_mdqn_td(params, target, term, 0.9, 0.9, 0.03, -1.0)[0][0])
        assert abs(ref_boot - ref_term) > 0.1  # the bootstrap matters here
        np.testing.assert_allclose(td(trunc), ref_boot, rtol=1e-4)
        np.testing.assert_allclose(td(plain), td(trunc), rtol=1e-6)
        np.testing.assert_allclose(td(term), ref_term, rtol=1e-4)

    def test_alpha_0_tau_0_is_exactly_dqn(self):
        params, target = _params(1), _params(2)
        batch = _fixed_batch()
        config = TINY.replace(alpha=0.0, tau=0.0, gamma=0.9, huber_delta=0.7)
        dqn_config = dqn.Config(
            hidden_sizes=(16, 16), gamma=0.9, huber_delta=0.7, buffer_size=64
        )
        # Bitwise under XLA's default compilation (the test suite's default run
        # compiles at a lower backend level, where the two fuse differently).
        jit = functools.partial(jax.jit, compiler_options=FULL_XLA)
        got, m_got = jit(mvi.loss)(params, target, batch, config)
        want, m_want = jit(dqn.loss)(params, target, batch, dqn_config)
        np.testing.assert_array_equal(got, want)  # bitwise
        for name in ("loss/td", "q/mean", "td/abs"):
            np.testing.assert_array_equal(m_got[name], m_want[name])
        assert float(m_got["munchausen/bonus"]) == 0.0
        g = jax.grad(lambda p: mvi.loss(p, target, batch, config)[0])(params)
        g_dqn = jax.grad(lambda p: dqn.loss(p, target, batch, dqn_config)[0])(params)
        chex.assert_trees_all_close(g, g_dqn, rtol=1e-6, atol=1e-7)

    @pytest.mark.parametrize("tau", [0.05, 0.5, 2.0])
    def test_alpha_0_is_soft_q_learning(self, tau):
        """alpha = 0: target r + gamma_t * tau * log sum_b exp(q_bar(s', b) / tau)."""
        params, target = _params(3), _params(4)
        batch = _fixed_batch(seed=1)
        config = TINY.replace(alpha=0.0, tau=tau, gamma=0.95, huber_delta=1e6)
        _, metrics = mvi.loss(params, target, batch, config)
        q_tm1, q_t_bar = _np_q(params, batch.obs), _np_q(target, batch.next_obs)
        td = []
        for b in range(8):
            z = q_t_bar[b] / tau
            soft_v = tau * np.log(np.sum(np.exp(z - z.max()))) + tau * z.max()
            disc = 0.95 * (1.0 - float(batch.terminated[b]))
            y = float(batch.reward[b]) + disc * soft_v
            td.append(y - q_tm1[b, int(batch.action[b])])
        np.testing.assert_allclose(metrics["td/abs"], np.abs(td).mean(), rtol=2e-5)
        np.testing.assert_allclose(
            metrics["loss/td"], 0.5 * np.mean(np.square(td)), rtol=2e-5
        )

    def test_gradient_only_through_online_params(self):
        params, target = _params(1), _params(2)
        f = lambda t: mvi.loss(params, t, _fixed_batch(), TINY)[0]
        g_target = jax.grad(f)(target)
        assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(g_target))


# ----------------------------------------------------------------------------- acting


def test_act_greedy_and_epsilon_match_dqn(key):
    params = _params(3)
    obs = jnp.asarray(np.random.default_rng(1).normal(size=(32, 4)), jnp.float32)
    keys = jax.random.split(key, 32)
    greedy = jax.vmap(lambda o, k: mvi.act(params, o, k, TINY, greedy=True))(obs, keys)
    np.testing.assert_array_equal(greedy, _np_q(params, obs).argmax(-1))
    k0, k1 = jax.random.split(jax.random.key(5))
    eps = lambda m, c, k: jax.vmap(lambda o, kk: m.act(params, o, kk, c, epsilon=0.3))(
        obs, jax.random.split(k, 32)
    )
    dqn_config = dqn.Config(hidden_sizes=(16, 16), buffer_size=64)
    np.testing.assert_array_equal(
        eps(mvi, TINY, k0), eps(dqn, dqn_config, jax.random.clone(k0))
    )


def test_act_stochastic_samples_softmax(key):
    params = _params(3)
    obs = jnp.asarray([0.3, -1.0, 0.5, 2.0], jnp.float32)
    tau = 0.5
    config = TINY.replace(interact="stochastic", tau=tau)
    n = 20_000
    actions = jax.jit(jax.vmap(lambda k: mvi.act(params, obs, k, config, epsilon=1.0)))(
        jax.random.split(key, n)
    )
    assert actions.dtype == jnp.int32
    q = _np_q(params, obs)
    want = np.exp((q - q.max()) / tau) / np.exp((q - q.max()) / tau).sum()
    freq = np.bincount(np.asarray(actions), minlength=NUM_ACTIONS) / n
    # 5 binomial standard deviations; epsilon=1 is ignored in the stochastic mode
    np.testing.assert_allclose(freq, want, atol=5 * np.sqrt(0.25 / n))
    assert np.all(want > 0.02)  # the distribution is not degenerate


# ----------------------------------------------------------------------------- training


def _strip(state):
    return state.replace(key=jax.random.key_data(state.key))


@pytest.mark.slow  # the agent contract tests cover this in the default run
def test_train_equals_init_plus_chunks_and_metrics(cartpole):
    env, env_params = cartpole
    config = TINY.replace(interact="stochastic")
    state_t, metrics_t = jax.jit(mvi.make_train(config, env, env_params))(
        jax.random.key(7)
    )
    run = jax.jit(mvi.make_run(config, env, env_params))
    state = mvi.init(jax.random.key(7), env, env_params, config)
    chunks = []
    for _ in range(config.num_chunks):
        state, m = run(state)
        chunks.append(m)
    chex.assert_trees_all_equal(_strip(state_t), _strip(state))
    chex.assert_trees_all_equal(
        metrics_t, jax.tree.map(lambda *xs: jnp.concatenate(xs), *chunks)
    )
    bonus = np.asarray(metrics_t["munchausen/bonus"])
    learning = np.asarray(metrics_t["train/env_steps"]) >= config.learning_starts
    assert np.all(np.isnan(bonus[~learning]))
    assert np.all((bonus[learning] <= 0) & (bonus[learning] >= config.l0 * 0.9))
    assert int(state_t.num_updates) == learning.sum() * config.updates_per_iter


@pytest.mark.heavy
def test_alpha_0_tau_0_training_matches_dqn(cartpole):
    """With alpha = tau = 0 the whole M-DQN run is a DQN run (the loop is shared)."""
    env, env_params = cartpole
    config = TINY.replace(alpha=0.0, tau=0.0)
    fields = {f: getattr(config, f) for f in dqn.Config.__dataclass_fields__}
    dqn_config = dqn.Config(**fields)
    key = jax.random.key(11)
    s_m, m_m = jax.jit(mvi.make_train(config, env, env_params))(key)
    s_d, m_d = jax.jit(dqn.make_train(dqn_config, env, env_params))(
        jax.random.clone(key)
    )
    chex.assert_trees_all_close(s_m.params, s_d.params, rtol=1e-5, atol=1e-6)
    for name in m_d:
        np.testing.assert_allclose(m_m[name], m_d[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # the agent contract tests cover this in the default run
def test_traced_hyperparameters_vmap_in_one_jitted_call(cartpole):
    """alpha, tau, l0, lr, gamma sweep as a vmap over a stacked config: one trace."""
    env, env_params = cartpole
    base = TINY.replace(num_eval_episodes=1, eval_max_steps=5)
    grid = stack_configs(
        [
            base.replace(alpha=0.9, tau=0.03, l0=-1.0, lr=1e-3, gamma=0.99),
            base.replace(alpha=0.0, tau=0.5, l0=-0.5, lr=3e-3, gamma=0.9),
            base.replace(alpha=0.5, tau=0.0, l0=-2.0, lr=1e-2, gamma=0.5),
        ]
    )
    traces = []

    def train(config, key):
        traces.append(1)
        return mvi.make_train(config, env, env_params)(key)

    sweep = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    keys = jax.random.split(jax.random.key(0), 2)
    state, metrics = sweep(grid, keys)
    assert metrics["loss/td"].shape == (3, 2, base.total_iters)
    loss = np.nan_to_num(np.asarray(metrics["loss/td"]))
    for i in range(3):  # configs differ, and seeds within a config differ
        assert not np.allclose(loss[i, 0], loss[i, 1])
        for j in range(i + 1, 3):
            assert not np.allclose(loss[i], loss[j])
    # new values of the traced fields: no retrace
    other = grid.replace(
        alpha=grid.alpha * 0.5,
        tau=grid.tau * 2.0,
        l0=grid.l0 * 0.5,
        lr=grid.lr * 0.5,
        gamma=grid.gamma * 0.9,
    )
    sweep(other, jax.random.split(jax.random.key(1), 2))
    assert len(traces) == 1


# ------------------------------------------------------------------------ config checks


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 1.5),
        ("alpha", -0.1),
        ("tau", -1.0),
        ("l0", 0.5),
        ("interact", "boltzmann"),
        ("double_q", True),
        ("gamma", 1.5),  # DQN's checks still apply
        ("polyak", 0.0),
    ],
)
def test_invalid_config_raises(cartpole, field, value):
    env, env_params = cartpole
    bad = TINY.replace(**{field: value})
    with pytest.raises(ConfigError, match=field):
        bad.validate()
    with pytest.raises(ConfigError, match=field):
        mvi.make_train(bad, env, env_params)


def test_presets():
    cp = mvi.cartpole_config()
    assert isinstance(cp, mvi.Config)
    assert (cp.alpha, cp.tau, cp.l0, cp.interact) == (0.9, 0.03, -1.0, "greedy")
    assert cp.total_env_steps == 500_000
    assert mvi.cartpole_config(alpha=0.5).alpha == 0.5
    assert mvi.acrobot_config().total_env_steps == 500_000
    ma = mvi.minatar_config()
    assert ma.conv_features == (16,) and ma.hidden_sizes == (128,)
    assert ma.total_env_steps == 5_000_000
    for c in (cp, mvi.acrobot_config(), ma):
        c.validate()


@pytest.mark.slow  # the agent contract tests cover this in the default run
def test_minatar_preset_runs():
    """A tiny chunk of the MinAtar preset (conv torso, image observations) learns."""
    env, env_params = gymnax.make("Breakout-MinAtar")
    config = mvi.minatar_config(
        num_envs=2,
        buffer_size=64,
        batch_size=8,
        num_chunks=1,
        iters_per_chunk=8,
        learning_starts=4,
        num_eval_episodes=1,
        eval_max_steps=5,
    )
    state, metrics = jax.jit(mvi.make_train(config, env, env_params))(jax.random.key(0))
    assert np.isfinite(np.asarray(metrics["loss/td"])[-1])
    assert int(state.num_updates) > 0


# ----------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_learns_cartpole():
    """M-DQN solves CartPole-v1 (:func:`tests.agents.learning.assert_solves_cartpole`)."""
    env, env_params = gymnax.make("CartPole-v1")
    config = mvi.cartpole_config()
    assert config.total_env_steps <= 500_000
    train = jax.jit(jax.vmap(mvi.make_train(config, env, env_params)))
    start = time.perf_counter()
    _, metrics = train(jax.random.split(jax.random.key(0), CARTPOLE_SEEDS))
    final = np.asarray(jax.block_until_ready(metrics["eval/return"]))[:, -1]
    elapsed = time.perf_counter() - start
    print(f"M-DQN CartPole final greedy returns: {final}, wall time {elapsed:.1f}s")
    assert_solves_cartpole(final, "M-DQN")
