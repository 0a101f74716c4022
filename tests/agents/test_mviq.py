"""Tests for jaxrl.agents.mviq (MVI(q)-DQN): q = 1 is M-DQN, q = 2 vs NumPy sparsemax."""

from __future__ import annotations

import math
import time

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import mvi, mviq
from jaxrl.config import stack_configs
from jaxrl.errors import ConfigError
from jaxrl.nets import QNetwork
from jaxrl.ops.regularized import munchausen_bonus
from jaxrl.ops.tsallis import mviq_bonus
from jaxrl.transition import Transition
from tests.agents.learning import CARTPOLE_SEEDS, assert_solves_cartpole

TINY = mviq.Config(
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
NUM_ACTIONS = 4


@pytest.fixture(scope="module")
def cartpole():
    return gymnax.make("CartPole-v1")


def _params(seed, num_actions=NUM_ACTIONS):
    net = QNetwork(num_actions=num_actions, hidden_sizes=(16, 16))
    return net.init(jax.random.key(seed), jnp.zeros(4))


def _np_q(params, obs):
    """Independent float64 forward pass of the MLP Q-network (ReLU, linear head)."""
    p = params["params"]
    x = np.asarray(obs, np.float64)
    for i in range(len(p["torso"])):
        layer = p["torso"][f"dense_{i}"]
        x = np.maximum(x @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]), 0.0)
    return x @ np.asarray(p["head"]["kernel"]) + np.asarray(p["head"]["bias"])


def _np_sparsemax(z):
    """Sparsemax by the sort/cumsum closed form (Martins and Astudillo, 2016)."""
    zs = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    support = 1 + k * zs > np.cumsum(zs)
    kz = k[support][-1]
    threshold = (np.cumsum(zs)[kz - 1] - 1) / kz
    return np.maximum(z - threshold, 0.0)


def _np_mviq2_td(params, target, batch, gamma, alpha, tau, l0):
    """Per-transition MVI(q=2) TD errors and bonuses: tau ln_2 pi = tau (pi - 1)."""
    q_tm1 = _np_q(params, batch.obs)
    q_tm1_bar = _np_q(target, batch.obs)
    q_t_bar = _np_q(target, batch.next_obs)
    tds, bonuses = [], []
    for b in range(q_tm1.shape[0]):
        a = int(batch.action[b])
        pi_tm1 = _np_sparsemax(q_tm1_bar[b] / tau)
        bonus = alpha * min(max(tau * (pi_tm1[a] - 1.0), l0), 0.0)
        pi_t = _np_sparsemax(q_t_bar[b] / tau)
        value = np.sum(pi_t * (q_t_bar[b] - tau * (pi_t - 1.0)))
        discount = gamma * (1.0 - float(batch.terminated[b]))
        y = float(batch.reward[b]) + bonus + discount * value
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


def _as_mvi(config):
    fields = {f: getattr(config, f) for f in mvi.Config.__dataclass_fields__}
    return mvi.Config(**fields)


# ----------------------------------------------------------------------------- q = 1


@pytest.mark.parametrize(
    ("alpha", "tau", "l0"), [(0.9, 0.03, -1.0), (0.5, 1.0, -0.3), (0.9, 0.0, -1.0)]
)
def test_q1_loss_equals_mvi(alpha, tau, l0):
    params, target = _params(1), _params(2)
    batch = _fixed_batch()
    config = TINY.replace(q=1.0, alpha=alpha, tau=tau, l0=l0, huber_delta=0.7)
    got, m_got = jax.jit(mviq.loss)(params, target, batch, config)
    want, m_want = jax.jit(mvi.loss)(params, target, batch, _as_mvi(config))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    chex.assert_trees_all_close(m_got, m_want, rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda p: mviq.loss(p, target, batch, config)[0])(params)
    g_mvi = jax.grad(lambda p: mvi.loss(p, target, batch, _as_mvi(config))[0])(params)
    chex.assert_trees_all_close(g, g_mvi, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # test_q1_loss_equals_mvi covers the update in the default run
def test_q1_updates_and_training_equal_mvi(cartpole):
    """A few update steps, then a short training run: q = 1 tracks M-DQN."""
    env, env_params = cartpole
    config = TINY.replace(q=1.0, lr=1e-2)
    state = mviq.init(jax.random.key(0), env, env_params, config)
    state_m = state
    for seed in range(4):
        batch = _fixed_batch(seed=seed)
        batch = batch.replace(action=batch.action % 2)  # CartPole has 2 actions
        state, m = jax.jit(mviq.update)(state, batch, config)
        state_m, m_m = jax.jit(mvi.update)(state_m, batch, _as_mvi(config))
        chex.assert_trees_all_close(m, m_m, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(state.params, state_m.params, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(
        state.target_params, state_m.target_params, rtol=1e-5, atol=1e-6
    )

    s_q, met_q = jax.jit(mviq.make_train(config, env, env_params))(jax.random.key(3))
    s_m, met_m = jax.jit(mvi.make_train(_as_mvi(config), env, env_params))(
        jax.random.key(3)
    )
    chex.assert_trees_all_close(s_q.params, s_m.params, rtol=1e-4, atol=1e-5)
    for name in met_m:
        np.testing.assert_allclose(met_q[name], met_m[name], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- q = 2


@pytest.mark.parametrize(("alpha", "tau", "l0"), [(0.9, 0.3, -1.0), (0.7, 2.0, -0.5)])
def test_q2_matches_numpy_sparsemax(alpha, tau, l0):
    params, target = _params(1), _params(2)
    batch = _fixed_batch()
    config = TINY.replace(q=2.0, alpha=alpha, tau=tau, l0=l0, gamma=0.9)
    config = config.replace(huber_delta=0.7)
    got, metrics = jax.jit(mviq.loss)(params, target, batch, config)
    td, bonus = _np_mviq2_td(params, target, batch, 0.9, alpha, tau, l0)
    want = np.mean(np.where(np.abs(td) <= 0.7, 0.5 * td**2, 0.7 * (np.abs(td) - 0.35)))
    np.testing.assert_allclose(got, want, rtol=2e-5)
    np.testing.assert_allclose(metrics["td/abs"], np.abs(td).mean(), rtol=2e-5)
    np.testing.assert_allclose(
        metrics["munchausen/bonus"], bonus.mean(), rtol=2e-5, atol=1e-7
    )
    # the fixed batch has sparse policies: some taken actions are off the support
    q_bar = _np_q(target, batch.obs)
    pis = np.stack([_np_sparsemax(q / tau) for q in q_bar])
    taken = pis[np.arange(8), np.asarray(batch.action)]
    assert np.any(taken == 0.0) and np.any(taken > 0.0)


@pytest.mark.parametrize("q", [1.5, 2.0, 3.0])
def test_bonus_bounds(q):
    """Per transition: bonus in [alpha * max(l0, -tau / (q - 1)), 0], bound attained."""
    params, target = _params(4), _params(5)
    batch = _fixed_batch(seed=2, scale=5.0)
    alpha, tau = 0.8, 0.2
    loss = jax.jit(mviq.loss)
    for l0 in (-100.0, -0.1):  # the natural bound -tau/(q-1), then the clip
        config = TINY.replace(q=q, alpha=alpha, tau=tau, l0=l0)
        low = alpha * max(l0, -tau / (q - 1.0))
        bonuses = []
        for b in range(8):
            one = jax.tree.map(lambda x, b=b: x[b : b + 1], batch)
            bonuses.append(
                float(loss(params, target, one, config)[1]["munchausen/bonus"])
            )
        bonuses = np.array(bonuses)
        assert np.all(bonuses <= 0.0) and np.all(bonuses >= low - 1e-6), (l0, bonuses)
        np.testing.assert_allclose(bonuses.min(), low, rtol=1e-5)  # off-support action


def test_q3_bisection_path_is_finite_with_finite_gradients():
    params, target = _params(1), _params(2)
    config = TINY.replace(q=3.0, normalizer_iters=30)
    value, grads = jax.jit(
        jax.value_and_grad(lambda p: mviq.loss(p, target, _fixed_batch(), config)[0])
    )(params)
    assert np.isfinite(float(value))
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_act_stochastic_samples_sparse_policy(key):
    params = _params(3)
    obs = jnp.asarray([0.3, -1.0, 0.5, 2.0], jnp.float32)
    tau = 1.0
    config = TINY.replace(interact="stochastic", tau=tau, q=2.0)
    n = 20_000
    actions = jax.jit(jax.vmap(lambda k: mviq.act(params, obs, k, config)))(
        jax.random.split(key, n)
    )
    want = _np_sparsemax(_np_q(params, obs) / tau)
    assert np.any(want == 0.0) and np.sum(want > 0) >= 2  # sparse, not greedy
    freq = np.bincount(np.asarray(actions), minlength=NUM_ACTIONS) / n
    np.testing.assert_allclose(freq, want, atol=5 * np.sqrt(0.25 / n))
    assert np.all(freq[want == 0.0] == 0.0)  # never an action off the support
    greedy = mviq.act(params, obs, None, config, greedy=True)
    assert int(greedy) == int(np.argmax(_np_q(params, obs)))


# ----------------------------------------------------------------------------- sweeps


@pytest.mark.slow  # the agent contract tests cover this in the default run
def test_traced_hyperparameters_vmap_in_one_jitted_call(cartpole):
    """q, alpha, tau, lr, gamma sweep as a vmap over a stacked config: one trace."""
    env, env_params = cartpole
    base = TINY.replace(num_eval_episodes=1, eval_max_steps=5)
    grid = stack_configs(
        [
            base.replace(q=1.0, alpha=0.9, tau=0.03, lr=1e-3, gamma=0.99),
            base.replace(q=2.0, alpha=0.5, tau=0.5, lr=3e-3, gamma=0.9),
            base.replace(q=3.0, alpha=0.0, tau=0.1, lr=1e-2, gamma=0.5),
        ]
    )
    traces = []

    def train(config, key):
        traces.append(1)
        return mviq.make_train(config, env, env_params)(key)

    sweep = jax.jit(jax.vmap(jax.vmap(train, in_axes=(None, 0)), in_axes=(0, None)))
    _, metrics = sweep(grid, jax.random.split(jax.random.key(0), 2))
    loss = np.nan_to_num(np.asarray(metrics["loss/td"]))
    assert loss.shape == (3, 2, base.total_iters)
    for i in range(3):
        assert not np.allclose(loss[i, 0], loss[i, 1])  # seeds differ
        for j in range(i + 1, 3):
            assert not np.allclose(loss[i], loss[j])  # configs differ
    other = grid.replace(q=grid.q + 0.5, alpha=grid.alpha * 0.5, lr=grid.lr * 2)
    sweep(other, jax.random.split(jax.random.key(1), 2))
    assert len(traces) == 1


# ------------------------------------------------------------------------ config checks


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("q", 0.5),
        ("alpha", 1.5),
        ("tau", -1.0),
        ("l0", 0.1),
        ("normalizer_iters", 0),
        ("interact", "nope"),
    ],
)
def test_invalid_config_raises(cartpole, field, value):
    env, env_params = cartpole
    bad = TINY.replace(**{field: value})
    with pytest.raises(ConfigError, match=field):
        bad.validate()
    with pytest.raises(ConfigError, match=field):
        mviq.make_train(bad, env, env_params)


def _bonus_floor(config, num_actions=6):
    """The most negative bonus of a config: an action far below the others.

    Computed by the ops (``mviq_bonus``; at q = 1 M-DQN's ``munchausen_bonus``),
    not from the convention's formula.
    """
    qv = jnp.array([0.0, 0.1, 0.2, 0.3, 0.4, -1e4][:num_actions])
    a = num_actions - 1
    if config.q == 1.0:
        return float(munchausen_bonus(qv, a, config.tau, config.alpha, config.l0))
    return float(mviq_bonus(qv, a, config.tau, config.alpha, config.q, config.l0))


def test_presets():
    """q = 2 presets: M-DQN's config but tau, whose bonus floor is M-DQN's (D17)."""
    for factory, base in (
        (mviq.cartpole_config, mvi.cartpole_config),
        (mviq.acrobot_config, mvi.acrobot_config),
        (mviq.minatar_config, mvi.minatar_config),
    ):
        c = factory()
        assert isinstance(c, mviq.Config) and c.q == 2.0
        c.validate()
        m = base()
        assert _as_mvi(c) == m.replace(tau=c.tau)  # only tau differs
        # The convention: the q-log's own floor -alpha tau / (q - 1) is M-DQN's
        # clipped floor alpha l0 (= -0.9), and the clip is not what sets it.
        assert c.tau == pytest.approx((c.q - 1.0) * abs(m.l0))
        np.testing.assert_allclose(_bonus_floor(c), _bonus_floor(mviq.Config(q=1.0)))
        np.testing.assert_allclose(_bonus_floor(c), m.alpha * m.l0, rtol=1e-6)
        np.testing.assert_allclose(
            _bonus_floor(c.replace(l0=-math.inf)), m.alpha * m.l0, rtol=1e-6
        )
        # At M-DQN's tau = 0.03 the q = 2 floor would be -alpha * 0.03.
        np.testing.assert_allclose(
            _bonus_floor(c.replace(tau=0.03)), -m.alpha * 0.03, rtol=1e-6
        )
        # q = 1 through the factory is M-DQN's preset exactly (tau = 0.03).
        assert _as_mvi(factory(q=1.0)) == m
        assert factory(q=3.0).tau == 2.0 and factory(q=2.0, tau=0.03).tau == 0.03
    assert mviq.cartpole_config(q=1.5, tau=0.1).q == 1.5
    assert mviq.Config().tau == mvi.Config().tau == 0.03  # a bare Config: M-DQN's


@pytest.mark.parametrize(
    ("q", "l0", "want"),
    [
        (1.0, -1.0, 0.03),  # q = 1: M-DQN's temperature
        (1.01, -1.0, 0.03),  # (q - 1)|l0| = 0.01 < 0.03: never below M-DQN's
        (1.5, -1.0, 0.5),
        (2.0, -1.0, 1.0),  # the presets
        (3.0, -1.0, 2.0),
        (2.0, -0.5, 0.5),
        (2.0, -math.inf, 0.03),  # no clip, no floor to match
    ],
)
def test_bonus_matched_tau(q, l0, want):
    tau = mviq.bonus_matched_tau(q, l0)
    assert tau == pytest.approx(want)
    if q > 1.0 and math.isfinite(l0) and want > 0.03:  # the floor is the clip's
        config = mviq.Config(q=q, l0=l0, tau=tau, alpha=0.9)
        np.testing.assert_allclose(_bonus_floor(config), 0.9 * l0, rtol=1e-5)


@pytest.mark.parametrize(("q", "l0"), [(0.5, -1.0), (2.0, 0.5), (math.nan, -1.0)])
def test_bonus_matched_tau_bad_input(q, l0):
    with pytest.raises(ConfigError):
        mviq.bonus_matched_tau(q, l0)


# ----------------------------------------------------------------------------- learning


@pytest.mark.slow
def test_learns_cartpole():
    """MVI(q=2) solves CartPole-v1 (:func:`tests.agents.learning.assert_solves_cartpole`)."""
    env, env_params = gymnax.make("CartPole-v1")
    config = mviq.cartpole_config()
    assert config.q == 2.0 and config.total_env_steps <= 500_000
    train = jax.jit(jax.vmap(mviq.make_train(config, env, env_params)))
    start = time.perf_counter()
    _, metrics = train(jax.random.split(jax.random.key(0), CARTPOLE_SEEDS))
    final = np.asarray(jax.block_until_ready(metrics["eval/return"]))[:, -1]
    elapsed = time.perf_counter() - start
    print(f"MVI(q=2) CartPole final greedy returns: {final}, wall time {elapsed:.1f}s")
    assert_solves_cartpole(final, "MVI(q=2)")
