"""Tests for jaxrl.agents.cal: config, ensemble, loss vs NumPy, SAC identity, multiplier."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import cal, sac
from jaxrl.agents.sac.networks import Actor, Critic
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
# A nearly deterministic policy: samples are tanh(mean) to ~1e-8, so tests can
# recompute the actor's actions without the loss's keys.
NARROW = dict(log_std_min=-20.0, log_std_max=-19.9)


@pytest.fixture(scope="module")
def pendulum():
    return envs.make("Pendulum-Constrained-v0", cost_limit=4.0)


def _config(e=3, **kw):
    base = kw.pop("base", {})
    kw.setdefault("num_cost_critics", e)
    return cal.Config(base=sac.Config(**{**TINY, **base}), **kw)


def _batch(seed, b=6):
    rng = np.random.default_rng(seed)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    return Transition(
        obs=f32(rng.normal(size=(b, 3))),
        action=f32(rng.uniform(-2.0, 2.0, size=(b, 1))),
        reward=f32(rng.normal(size=b)),
        next_obs=f32(rng.normal(size=(b, 3))),
        terminated=jnp.asarray(np.arange(b) % 3 == 0),
        truncated=jnp.asarray(np.arange(b) % 3 == 1),
        extras={"cost": f32(rng.integers(0, 2, size=b))},
    )


def _state(pendulum, config, seed=2):
    env, params = pendulum
    return jax.jit(lambda k: cal.init(k, env, params, config))(jax.random.key(seed))


def _as_sac(state):
    """The SAC state inside a CAL state (SAC's fields only)."""
    p, o = state.params, state.opt_state
    return sac.State(
        params=sac.Params(
            actor=p.actor,
            critic=p.critic,
            log_alpha=p.log_alpha,
            action_low=p.action_low,
            action_high=p.action_high,
        ),
        target_params=state.target_params.critic,
        opt_state=sac.OptState(actor=o.actor, critic=o.critic, alpha=o.alpha),
        buffer=state.buffer,
        env_state=state.env_state,
        obs=state.obs,
        key=state.key,
        step=state.step,
        num_updates=state.num_updates,
    )


def _np_ucb(q, k):
    mean = q.mean(-1)
    return mean + k * np.sqrt(((q - mean[..., None]) ** 2).mean(-1))


# ------------------------------------------------------------------------ config


class TestConfig:
    @pytest.mark.parametrize(
        "field, value, message",
        [
            ("num_cost_critics", 0, "num_cost_critics"),
            ("num_cost_critics", 2.5, "num_cost_critics"),
            ("k", -0.1, "k"),
            ("k", float("nan"), "k"),
            ("c", -1.0, "c"),
            ("eta_lambda", -1e-3, "eta_lambda"),
            ("lambda0", -1.0, "lambda0"),
            ("lambda_max", 0.0, "lambda_max"),
            ("lambda0", 200.0, "lambda0 must not exceed lambda_max"),
        ],
    )
    def test_bad_fields_raise_one_clear_error(self, field, value, message):
        with pytest.raises(ConfigError, match=message):
            _config(**{field: value}).validate()

    def test_bad_base_field(self):
        with pytest.raises(ConfigError, match="lr"):
            _config(base={"lr": 0.0}).validate()
        with pytest.raises(ConfigError, match="base must be"):
            cal.Config(base=None).validate()

    def test_env_needs_a_valid_budget(self, pendulum):
        env, params = envs.make("Pendulum-v1")
        with pytest.raises(ConfigError, match="cost_limit"):
            cal.init(jax.random.key(0), env, params, _config())
        env, params = pendulum
        with pytest.raises(ConfigError, match="cost_limit"):
            cal.make_train(_config(), env, params.replace(cost_limit=-1.0))

    def test_presets(self):
        c, lag = cal.pendulum_config(), cal.pendulum_lagrangian_config()
        c.validate()
        lag.validate()
        assert (c.num_cost_critics, float(c.k), float(c.c)) == (4, 0.5, 10.0)
        assert (lag.num_cost_critics, float(lag.k), float(lag.c)) == (1, 0.0, 0.0)
        assert c.base == lag.base and c.base.total_env_steps == 10_000


# ------------------------------------------------------------------------- init


def test_ensemble_members_differ_and_budget_is_converted(pendulum):
    config = _config(e=4)
    state = _state(pendulum, config)
    heads = state.params.cost_critic["params"]
    for i in range(4):
        for j in range(i + 1, 4):
            a = heads[f"torso_{i}"]["dense_0"]["kernel"]
            b = heads[f"torso_{j}"]["dense_0"]["kernel"]
            assert not np.allclose(a, b), (i, j)
    batch = _batch(0)
    q = Critic(4, (8,), "relu", 1).apply(
        state.params.cost_critic, batch.obs, jnp.zeros((6, 1))
    )
    assert np.all(np.std(np.asarray(q), axis=-1) > 1e-4)
    # targets start as copies; lambda at lambda0; xi = (b / T)(1 - g^T) / (1 - g)
    chex.assert_trees_all_equal(
        state.target_params.cost_critic, state.params.cost_critic
    )
    assert float(state.params.lam) == 0.0
    xi = 4.0 / 200 * (1 - 0.99**200) / (1 - 0.99)
    np.testing.assert_allclose(state.params.budget, xi, rtol=1e-5)
    assert state.buffer.data.extras["cost"].shape == (64,)


# ------------------------------------------------------------------------- loss


def test_cost_critic_loss_and_ucb_match_numpy(pendulum):
    config = _config(e=3, k=1.5, c=2.0, base=NARROW)
    state = _state(pendulum, config)
    state = state.replace(params=state.params.replace(lam=jnp.float32(0.4)))
    # Different targets so that the target network really is the one used.
    targets = jax.tree.map(lambda x: x * 0.5, state.target_params)
    batch = _batch(1)
    _, m = jax.jit(lambda p, t, b: cal.loss(p, t, b, config, key=jax.random.key(5)))(
        state.params, targets, batch
    )
    p = state.params
    actor = Actor(1, (8,), "relu", 1)
    critic = Critic(3, (8,), "relu", 1)
    y_next = np.tanh(np.asarray(actor.apply(p.actor, batch.next_obs)[0]))
    q_next = np.asarray(critic.apply(targets.cost_critic, batch.next_obs, y_next))
    y_tm1 = np.clip(np.asarray(batch.action) / 2.0, -1, 1)
    q_tm1 = np.asarray(critic.apply(p.cost_critic, batch.obs, y_tm1), np.float64)
    cost = np.asarray(batch.extras["cost"], np.float64)
    not_term = 1.0 - np.asarray(batch.terminated, np.float64)
    target = cost[:, None] + 0.99 * not_term[:, None] * q_next
    want = 0.5 * np.mean(np.sum((q_tm1 - target) ** 2, axis=-1))
    np.testing.assert_allclose(m["loss/cost_critic"], want, rtol=1e-4)

    y_pi = np.tanh(np.asarray(actor.apply(p.actor, batch.obs)[0]))
    q_pi = np.asarray(critic.apply(p.cost_critic, batch.obs, y_pi), np.float64)
    j_c = np.mean(_np_ucb(q_pi, 1.5))
    np.testing.assert_allclose(m["cost/q_ucb"], j_c, rtol=1e-4, atol=1e-6)
    g = j_c - float(p.budget)
    np.testing.assert_allclose(m["lagrange/violation"], g, rtol=1e-4, atol=1e-5)
    rect = max(0.0, 0.4 + 2.0 * g)
    np.testing.assert_allclose(m["lagrange/rectified"], rect, rtol=1e-4, atol=1e-5)
    pen = (rect**2 - 0.4**2) / (2 * 2.0)
    np.testing.assert_allclose(m["lagrange/penalty"], pen, rtol=1e-4, atol=1e-5)


def _grads(fn, params, targets, batch, config):
    g, _ = jax.grad(
        lambda p: fn(p, targets, batch, config, key=jax.random.key(7)), has_aux=True
    )(params)
    return g


@pytest.mark.heavy  # compiles SAC's and CAL's gradients and updates; CI runs it
def test_k0_c0_frozen_lambda0_gives_sac_gradients_and_update(pendulum):
    config = _config(e=2, k=0.0, c=0.0, eta_lambda=0.0, lambda0=0.0)
    state = _state(pendulum, config)
    base = _as_sac(state).replace(key=jax.random.clone(state.key))  # same key
    batch = _batch(2)
    g_cal = _grads(cal.loss, state.params, state.target_params, batch, config)
    g_sac = _grads(sac.loss, base.params, base.target_params, batch, config.base)
    for name in ("actor", "critic", "log_alpha"):
        chex.assert_trees_all_close(
            getattr(g_cal, name), getattr(g_sac, name), rtol=1e-6, atol=1e-7
        )
    assert any(np.abs(x).max() > 0 for x in jax.tree.leaves(g_cal.cost_critic))

    new_cal, m = jax.jit(lambda s, b: cal.update(s, b, config))(state, batch)
    new_sac, _ = jax.jit(lambda s, b: sac.update(s, b, config.base))(base, batch)
    for name in ("actor", "critic", "log_alpha"):
        chex.assert_trees_all_close(
            getattr(new_cal.params, name),
            getattr(new_sac.params, name),
            rtol=1e-6,
            atol=1e-7,
        )
    chex.assert_trees_all_close(
        new_cal.target_params.critic, new_sac.target_params, rtol=1e-6, atol=1e-7
    )
    assert float(m["lagrange/lambda"]) == 0.0  # frozen
    # the cost critics did move, and their targets followed by Polyak
    moved = jax.tree.map(
        lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(),
        new_cal.params.cost_critic,
        state.params.cost_critic,
    )
    assert max(jax.tree.leaves(moved)) > 0


@pytest.mark.parametrize(
    "k, c, lam", [(0.0, 0.0, 0.8), (1.0, 3.0, 0.5), (2.0, 5.0, 0.0)]
)
def test_actor_gradient_is_sac_plus_rectified_multiplier_times_grad_ucb(
    pendulum, k, c, lam
):
    config = _config(e=3, k=k, c=c)
    state = _state(pendulum, config)
    params = state.params.replace(lam=jnp.float32(lam), budget=jnp.float32(-0.3))
    base = _as_sac(state.replace(params=params))
    batch = _batch(3)
    key = jax.random.key(7)
    g_cal = _grads(cal.loss, params, state.target_params, batch, config)
    g_sac = _grads(sac.loss, base.params, base.target_params, batch, config.base)
    critic = Critic(3, (8,), "relu", 1)

    def j_c(actor):  # the UCB written out here, SAC's samples (same key use)
        terms = sac.losses.loss_terms(
            params.replace(actor=actor), base.target_params, batch, config.base, key=key
        )
        q = critic.apply(params.cost_critic, batch.obs, terms.y_pi)
        mean = jnp.mean(q, -1)
        std = jnp.sqrt(jnp.mean((q - mean[:, None]) ** 2, -1))
        return jnp.mean(mean + k * std)

    value, grad_j = jax.value_and_grad(j_c)(params.actor)
    rect = max(0.0, lam + c * (float(value) + 0.3))
    want = jax.tree.map(lambda s, g: s + rect * g, g_sac.actor, grad_j)
    chex.assert_trees_all_close(g_cal.actor, want, rtol=2e-4, atol=1e-5)
    if rect > 0:  # the penalty really changes the actor's gradient
        diff = jax.tree.map(lambda a, b: np.abs(a - b).max(), g_cal.actor, g_sac.actor)
        assert max(jax.tree.leaves(diff)) > 1e-5


# --------------------------------------------------------------------- multiplier


@pytest.mark.parametrize("budget, rises", [(-50.0, True), (50.0, False)])
def test_multiplier_follows_the_ucb_violation(pendulum, budget, rises):
    config = _config(e=3, k=1.0, c=1.0, eta_lambda=0.01, lambda0=0.2, base=NARROW)
    state = _state(pendulum, config)
    state = state.replace(params=state.params.replace(budget=jnp.float32(budget)))
    batch = _batch(4)
    new, m = jax.jit(lambda s, b: cal.update(s, b, config))(state, batch)
    p = state.params
    y_pi = np.tanh(np.asarray(Actor(1, (8,), "relu", 1).apply(p.actor, batch.obs)[0]))
    q = np.asarray(Critic(3, (8,), "relu", 1).apply(p.cost_critic, batch.obs, y_pi))
    j_c = np.mean(_np_ucb(q.astype(np.float64), 1.0))
    want = min(max(0.2 + 0.01 * (j_c - budget), 0.0), 100.0)
    np.testing.assert_allclose(new.params.lam, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m["lagrange/lambda"], want, rtol=1e-4, atol=1e-6)
    assert (float(new.params.lam) > 0.2) == rises
    if not rises:
        assert float(new.params.lam) == 0.0  # projected onto lambda >= 0


# ------------------------------------------------------------------------ loop


@pytest.mark.heavy  # compiles and runs a whole CAL training run; CI runs it
def test_tiny_run_logs_costs_and_stores_them(pendulum):
    env, params = pendulum
    config = _config(e=2, eta_lambda=0.05)
    state, m = jax.jit(jax.vmap(cal.make_train(config, env, params)))(
        jax.random.split(jax.random.key(0), 2)
    )
    for name in ("eval/cost", "episode/cost", "lagrange/lambda", "cost/q_ucb"):
        assert m[name].shape == (2, 20), name
    ev = np.asarray(m["eval/cost"])
    assert np.all(np.isnan(ev[:, :9])) and np.all(np.isfinite(ev[:, 9::10]))
    assert np.all(ev[:, 9::10] >= 0) and np.all(ev[:, 9::10] <= 20)
    assert np.all(np.isnan(np.asarray(m["lagrange/lambda"])[:, :3]))  # warm-up
    assert np.all(np.asarray(m["lagrange/lambda"])[:, 4:] >= 0)
    stored = np.asarray(state.buffer.data.extras["cost"])[:, :40]
    assert set(np.unique(stored)) <= {0.0, 1.0}


@pytest.mark.slow
def test_tight_budget_lowers_the_cost_of_the_learned_policy():
    """CAL at budget 0 vs the same agent with the multiplier frozen at 0."""
    env, params = envs.make("Pendulum-Constrained-v0", cost_limit=0.0)
    out = {}
    for name, eta in (("free", 0.0), ("cal", 5e-3)):
        config = cal.pendulum_config(eta_lambda=eta)
        config = config.replace(base=config.base.replace(num_chunks=3))
        keys = jax.random.split(jax.random.key(0), 2)  # the same seeds for both runs
        _, m = jax.jit(jax.vmap(cal.make_train(config, env, params)))(keys)
        out[name] = float(np.mean(np.asarray(m["eval/cost"])[:, -1]))
    assert out["cal"] < out["free"], out
