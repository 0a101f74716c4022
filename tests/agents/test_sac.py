"""Tests for jaxrl.agents.sac: config, act, loss vs NumPy, update, loop, learning."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import buffer as buffer_lib
from jaxrl import envs
from jaxrl.agents import sac
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition

TINY = dict(
    num_envs=2,
    buffer_size=64,
    batch_size=8,
    hidden_sizes=(8,),
    num_chunks=2,
    iters_per_chunk=10,
    learning_starts=8,
    num_eval_episodes=2,
    eval_max_steps=20,
)


@pytest.fixture(scope="module")
def pendulum():
    return envs.make("Pendulum-v1")


@pytest.fixture(scope="module")
def base(pendulum):
    """``(config, initial state)`` of the tiny config (one compiled init)."""
    env, params = pendulum
    config = _config()
    init = jax.jit(lambda k: sac.init(k, env, params, config))
    return config, init(jax.random.key(2))


@pytest.fixture(scope="module")
def jit_update():
    """``update`` compiled once per static config (traced fields are arguments)."""
    return jax.jit(sac.update)


def _config(**kw):
    return sac.Config(**{**TINY, **kw})


def _batch(seed, b=6, low=-2.0, high=2.0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(b, 3)).astype(np.float32)
    return Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(rng.uniform(low, high, size=(b, 1)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=b), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(b, 3)), jnp.float32),
        terminated=jnp.asarray([True, False, False, True, False, False][:b]),
        truncated=jnp.asarray([False, True, False, False, False, True][:b]),
    )


# ----------------------------------------------------------------------------- config


class TestConfig:
    @pytest.mark.parametrize(
        "field, value, message",
        [
            ("batch_size", 0, "batch_size must be a positive integer"),
            ("tau", 0.0, r"tau must lie in \(0"),
            ("gamma", 1.5, "gamma must lie in"),
            ("lr", -1.0, "lr must lie in"),
            ("init_alpha", 0.0, "init_alpha"),
            ("log_std_min", 3.0, "log_std_min .* must be below"),
            ("activation", "nope", "activation must be one of"),
            ("hidden_sizes", (8, 0), "hidden_sizes"),
            ("num_envs", 100, "num_envs .* must not exceed"),
        ],
    )
    def test_bad_fields_raise_one_clear_error(self, field, value, message):
        with pytest.raises(ConfigError, match=message):
            _config(**{field: value}).validate()

    def test_discrete_env_is_refused(self):
        env, params = envs.make("CartPole-v1")
        with pytest.raises(ConfigError, match="Box"):
            sac.init(jax.random.key(0), env, params, _config())

    def test_presets(self):
        p = sac.pendulum_config()
        assert p.total_env_steps == 20_000 and p.learning_starts == 1_000
        m = sac.mountaincar_config(num_chunks=2)
        assert m.total_env_steps == 10_000 and m.eval_max_steps >= 999


# ----------------------------------------------------------------------------- act


class TestAct:
    def test_greedy_is_scaled_tanh_mean_and_samples_stay_in_bounds(self, base):
        config, state = base
        p = state.params
        obs = jnp.array([0.3, -0.9, 1.2])
        mean, _ = sac.Actor(1, (8,)).apply(p.actor, obs)
        want = -2.0 + (np.tanh(np.asarray(mean)) + 1.0) * 2.0
        got = sac.act(p, obs, None, config, greedy=True)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        keys = jax.random.split(jax.random.key(1), 2000)
        a = jax.jit(jax.vmap(lambda k: sac.act(p, obs, k, config)))(keys)
        assert a.shape == (2000, 1) and a.dtype == jnp.float32
        assert np.all(np.abs(np.asarray(a)) <= 2.0)
        assert np.std(np.asarray(a)) > 0.3  # an untrained policy has std ~ 1


# ----------------------------------------------------------------------------- loss


def _np_losses(p, target_params, batch, config, seed):
    """The three SAC losses from network outputs, written with NumPy.

    The policy noise is redrawn from ``jax.random.key(seed)`` exactly as
    :func:`jaxrl.agents.sac.loss` draws it (split into the next-state and the
    current-state keys, then one key per example).
    """
    b = batch.reward.shape[0]
    k_next, k_pi = jax.random.split(jax.random.key(seed))
    actor = sac.Actor(1, config.hidden_sizes)
    critic = sac.Critic(2, config.hidden_sizes)
    clip = lambda s: np.clip(np.asarray(s), config.log_std_min, config.log_std_max)
    alpha = float(np.exp(p.log_alpha))

    def draw(k, obs):
        mean, log_std = actor.apply(p.actor, obs)
        eps = np.stack(
            [np.asarray(jax.random.normal(kk, (1,))) for kk in jax.random.split(k, b)]
        )
        u = np.asarray(mean, np.float64) + np.exp(clip(log_std)) * eps
        logp = np.sum(
            -0.5 * eps**2 - clip(log_std) - 0.5 * np.log(2 * np.pi)
            - np.log(1 - np.tanh(u) ** 2),
            axis=1,
        )  # fmt: skip
        return np.tanh(u), logp

    y_t, logp_t = draw(k_next, batch.next_obs)
    q_t = np.asarray(
        critic.apply(target_params, batch.next_obs, y_t.astype(np.float32))
    )
    gamma = np.where(np.asarray(batch.terminated), 0.0, config.gamma)
    target = np.asarray(batch.reward) + gamma * (q_t.min(1) - alpha * logp_t)
    y_tm1 = np.asarray(batch.action) / 2.0
    q = np.asarray(critic.apply(p.critic, batch.obs, y_tm1))
    critic_loss = 0.5 * np.mean(np.sum((q - target[:, None]) ** 2, axis=1))
    y_pi, logp = draw(k_pi, batch.obs)
    q_pi = np.asarray(critic.apply(p.critic, batch.obs, y_pi.astype(np.float32)))
    actor_loss = np.mean(alpha * logp - q_pi.min(1))
    alpha_loss = np.mean(-np.log(alpha) * (logp - 1.0))
    return critic_loss, actor_loss, alpha_loss


@pytest.fixture(scope="module")
def loss_setup(base):
    config, state = base
    config = config.replace(init_alpha=0.7, gamma=0.9)
    p = state.params.replace(log_alpha=jnp.log(jnp.float32(0.7)))
    # Distinct target critics, so the target term is really exercised.
    target = jax.tree.map(lambda x: x * 0.5, p.critic)
    loss = jax.jit(
        lambda p, t, b, c, seed: sac.loss(p, t, b, c, key=jax.random.key(seed))
    )
    return config, p, target, loss


class TestLoss:
    def test_matches_numpy(self, loss_setup):
        config, p, target, loss = loss_setup
        batch = _batch(0)
        total, m = loss(p, target, batch, config, 9)
        want = _np_losses(p, target, batch, config, 9)
        np.testing.assert_allclose(m["loss/critic"], want[0], rtol=1e-4)
        np.testing.assert_allclose(m["loss/actor"], want[1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(m["loss/alpha"], want[2], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(total, sum(want), rtol=1e-4)
        np.testing.assert_allclose(m["train/alpha"], 0.7, rtol=1e-6)

    def test_bootstraps_through_truncation_only(self, loss_setup):
        config, p, target, loss = loss_setup
        batch = _batch(1)
        f = lambda b: loss(p, target, b, config, 4)[1]["loss/critic"]
        base = f(batch)
        no_trunc = batch.replace(truncated=jnp.zeros_like(batch.truncated))
        assert f(no_trunc) == base  # truncation changes nothing in the target
        no_term = batch.replace(terminated=jnp.zeros_like(batch.terminated))
        assert abs(float(f(no_term)) - float(base)) > 1e-4
        want = _np_losses(p, target, no_term, config, 4)[0]
        np.testing.assert_allclose(f(no_term), want, rtol=1e-4)

    def test_each_term_moves_only_its_own_parameters(self, loss_setup):
        config, p, target, _ = loss_setup
        batch = _batch(2)
        names = ("total", "loss/critic", "loss/actor", "loss/alpha")

        def value(q, name):
            out = sac.loss(q, target, batch, config, key=jax.random.key(5))
            return out[0] if name == "total" else out[1][name]

        grads = jax.jit(lambda q: [jax.grad(value)(q, n) for n in names])(p)
        total, g_critic, g_actor, g_alpha = grads
        # The sum's gradient splits by parameter group into the three terms.
        chex.assert_trees_all_close(total.critic, g_critic.critic, rtol=1e-5)
        chex.assert_trees_all_close(total.actor, g_actor.actor, rtol=1e-5)
        np.testing.assert_allclose(total.log_alpha, g_alpha.log_alpha, rtol=1e-5)
        assert float(jnp.abs(total.log_alpha)) > 0
        for g in (total, g_critic):
            assert float(g.action_low[0]) == 0.0 and float(g.action_high[0]) == 0.0
        for tree in (g_critic.actor, g_actor.critic, g_alpha.actor, g_alpha.critic):
            assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(tree))

    def test_fixed_temperature(self, loss_setup):
        config, p, target, loss = loss_setup
        _, m = loss(p, target, _batch(3), config.replace(learn_alpha=False), 6)
        assert float(m["loss/alpha"]) == 0.0


# ----------------------------------------------------------------------------- update


class TestUpdate:
    def test_update_steps_all_parts_and_polyaks_the_target(self, base, jit_update):
        config, state = base
        config = config.replace(tau=0.25)
        state = state.replace(
            target_params=jax.tree.map(lambda x: x + 1.0, state.params.critic)
        )
        state = state.replace(key=jax.random.key(11))
        new, metrics = jit_update(state, _batch(4), config)
        chex.assert_trees_all_equal_shapes_and_dtypes(new, state)
        assert int(new.num_updates) == 1
        want = jax.tree.map(
            lambda t, p: 0.25 * p + 0.75 * t, state.target_params, new.params.critic
        )
        chex.assert_trees_all_close(new.target_params, want, rtol=1e-6, atol=1e-6)
        for part in ("actor", "critic"):
            moved = jax.tree.map(
                lambda a, b: bool(jnp.any(a != b)),
                getattr(new.params, part),
                getattr(state.params, part),
            )
            assert all(jax.tree.leaves(moved)), part
        assert float(new.params.log_alpha) != float(state.params.log_alpha)
        np.testing.assert_array_equal(new.params.action_low, state.params.action_low)
        assert np.isfinite(float(metrics["train/grad_norm"]))

    def test_temperature_tracks_the_entropy_target(self, base, jit_update):
        config, state = base
        # An untrained policy's entropy (about 0.5 nats per dimension) is above
        # the default target -1: alpha falls. A target of 5 nats in one
        # dimension (above the maximum, log 2) makes it rise.
        for per_dim, sign in ((-1.0, -1.0), (5.0, 1.0)):
            c = config.replace(target_entropy_per_dim=per_dim, alpha_lr=0.01)
            state = state.replace(key=jax.random.key(12))
            new, _ = jit_update(state, _batch(5), c)
            delta = float(new.params.log_alpha - state.params.log_alpha)
            assert np.sign(delta) == sign

    def test_learn_alpha_false_keeps_alpha(self, base, jit_update):
        config, state = base
        state = state.replace(key=jax.random.key(13))
        new, _ = jit_update(state, _batch(5), config.replace(learn_alpha=False))
        assert float(new.params.log_alpha) == float(state.params.log_alpha)


# ----------------------------------------------------------------------------- loop


@pytest.fixture(scope="module")
def tiny_run(pendulum):
    env, params = pendulum
    config = _config()
    train = jax.jit(jax.vmap(sac.make_train(config, env, params)))
    state, metrics = train(jax.random.split(jax.random.key(7), 2))
    return config, state, metrics


class TestLoop:
    def test_metrics_shapes_warmup_and_seeds(self, tiny_run):
        config, state, metrics = tiny_run
        iters = config.total_iters
        for name, leaf in metrics.items():
            assert leaf.shape == (2, iters), name
        # Learning starts once `learning_starts` env steps are stored (2 envs/iter).
        steps = np.asarray(metrics["train/env_steps"][0])
        np.testing.assert_array_equal(steps, 2 * np.arange(1, iters + 1))
        learned = steps >= config.learning_starts
        critic = np.asarray(metrics["loss/critic"])
        assert np.isnan(critic[:, ~learned]).all()
        assert np.isfinite(critic[:, learned]).all()
        np.testing.assert_array_equal(
            np.asarray(metrics["train/num_updates"][0]), np.cumsum(learned)
        )
        ev = np.asarray(metrics["eval/return"])
        last = ev[:, config.iters_per_chunk - 1 :: config.iters_per_chunk]
        assert np.isfinite(last).all() and np.isnan(ev).sum() == 2 * (iters - 2)
        leaves = jax.tree.leaves(state.params.actor)
        assert any(not np.array_equal(x[0], x[1]) for x in leaves)

    def test_buffer_holds_float_actions_in_bounds(self, tiny_run):
        config, state, _ = tiny_run
        buf = jax.tree.map(lambda x: x[0], state.buffer)
        n = int(buffer_lib.size(buf))
        assert n == min(config.total_env_steps, config.buffer_size)
        actions = np.asarray(buf.data.action[:n])
        assert actions.dtype == np.float32 and actions.shape == (n, 1)
        assert np.all(np.abs(actions) <= 2.0)
        # Warm-up actions are uniform on [-2, 2]: they spread over the box.
        warm = actions[: config.learning_starts, 0]
        assert warm.min() < -0.5 and warm.max() > 0.5
        # Pendulum never terminates (time limit only).
        assert not np.asarray(buf.data.terminated).any()


@pytest.mark.slow
def test_learns_pendulum():
    """SAC swings up and balances Pendulum-v1: 20k env steps, 3 seeds."""
    env, params = envs.make("Pendulum-v1")
    config = sac.pendulum_config()
    train = jax.jit(jax.vmap(sac.make_train(config, env, params)))
    _, metrics = train(jax.random.split(jax.random.key(0), 3))
    final = np.asarray(metrics["eval/return"])[:, -1]
    assert np.all(np.isfinite(final))
    assert final.mean() > -250, final
