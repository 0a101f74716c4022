"""Tests for jaxrl.agents.ppo: loss and GAE vs NumPy, rollout semantics, hooks, learning."""

from __future__ import annotations

import time

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import ppo
from jaxrl.config import stack_configs
from jaxrl.envs.finite_mdp import make_finite_mdp_env
from jaxrl.envs.wrappers import log_wrap
from jaxrl.errors import ConfigError
from jaxrl.mdp import make_mdp
from jaxrl.testing import discounting_chain
from jaxrl.transition import Transition
from tests.agents.learning import CARTPOLE_SEEDS, assert_solves_cartpole

TINY = ppo.Config(
    num_envs=3,
    num_steps=8,
    num_minibatches=2,
    update_epochs=2,
    hidden_sizes=(16, 16),
    num_chunks=3,
    iters_per_chunk=4,
    num_eval_episodes=2,
    eval_max_steps=20,
    lr_end_fraction=0.1,
)


@pytest.fixture(scope="module")
def cartpole():
    return gymnax.make("CartPole-v1")


# ---------------------------------------------------------------------- NumPy reference


def _np_forward(params, obs):
    """Independent NumPy forward pass: tanh MLP torsos, linear actor/critic heads."""
    p = params["params"]
    x0 = np.asarray(obs, np.float64)

    def torso(name):
        x = x0
        for i in range(len(p[name])):
            layer = p[name][f"dense_{i}"]
            x = np.tanh(x @ np.asarray(layer["kernel"]) + np.asarray(layer["bias"]))
        return x

    def head(name, x):
        return x @ np.asarray(p[name]["kernel"]) + np.asarray(p[name]["bias"])

    logits = head("actor_head", torso("actor_torso"))
    value = head("critic_head", torso("critic_torso"))[..., 0]
    return logits, value


def _np_log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _np_loss(params, batch, config):
    logits, v = _np_forward(params, batch.obs)
    log_p = _np_log_softmax(logits)
    a = np.asarray(batch.action)
    log_pi = log_p[np.arange(len(a)), a]
    ex = {k: np.asarray(x, np.float64) for k, x in batch.extras.items()}
    adv = ex["advantage"]
    if config.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    eps = float(config.clip_eps)
    rho = np.exp(log_pi - ex["log_prob"])
    policy = np.mean(-np.minimum(rho * adv, np.clip(rho, 1 - eps, 1 + eps) * adv))
    veps = float(config.vf_clip_eps)
    v_clip = ex["value"] + np.clip(v - ex["value"], -veps, veps)
    value = np.mean(
        0.5 * np.maximum((v - ex["target"]) ** 2, (v_clip - ex["target"]) ** 2)
    )
    entropy = np.mean(-(np.exp(log_p) * log_p).sum(-1))
    total = policy + config.vf_coef * value - config.ent_coef * entropy
    return total, policy, value, entropy


def _np_gae(r, d, v_tm1, v_t, lam, end):
    """Backward recursion per environment column of time-major [T, E] arrays."""
    T, E = r.shape
    adv = np.zeros((T, E))
    for e in range(E):
        nxt = 0.0
        for t in reversed(range(T)):
            cont = 0.0 if (end[t, e] or t == T - 1) else 1.0
            delta = r[t, e] + d[t, e] * v_t[t, e] - v_tm1[t, e]
            nxt = delta + d[t, e] * lam * cont * nxt
            adv[t, e] = nxt
    return adv


def _params(seed=1, hidden=(16, 16), num_actions=2):
    net = ppo.network(ppo.Config(hidden_sizes=hidden), num_actions, 1)
    return net.init(jax.random.key(seed), jnp.zeros(4))


def _batch(params, seed=0, b=8):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(b, 4)).astype(np.float32)
    action = rng.integers(0, 2, size=b).astype(np.int32)
    logits, value = _np_forward(params, obs)
    log_mu = _np_log_softmax(logits)[np.arange(b), action]
    return Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(action),
        reward=jnp.asarray(rng.normal(size=b), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(b, 4)), jnp.float32),
        terminated=jnp.zeros(b, bool),
        truncated=jnp.zeros(b, bool),
        extras={
            # behaviour policy = the params perturbed: ratios away from 1
            "log_prob": jnp.asarray(log_mu + 0.3 * rng.normal(size=b), jnp.float32),
            "value": jnp.asarray(value + rng.normal(size=b), jnp.float32),
            "advantage": jnp.asarray(2.0 * rng.normal(size=b) + 0.5, jnp.float32),
            "target": jnp.asarray(3.0 * rng.normal(size=b), jnp.float32),
        },
    )


_loss = jax.jit(ppo.loss)
_update = jax.jit(ppo.update)
_learn = jax.jit(ppo.learn, static_argnames=("reward_fn", "advantage_fn", "loss_fn"))


def _strip(state):
    return state.replace(key=jax.random.key_data(state.key))


def _fresh(state):
    """A copy of a concrete state with an unconsumed key (the same key bits)."""
    return state.replace(key=jax.random.wrap_key_data(jax.random.key_data(state.key)))


# ----------------------------------------------------------------------------- loss


class TestLoss:
    @pytest.mark.parametrize(
        ("normalize", "vf_clip_eps"),
        [(True, np.inf), (False, np.inf), (True, 0.3), (False, 0.05)],
    )
    def test_matches_numpy(self, normalize, vf_clip_eps):
        config = TINY.replace(
            normalize_advantages=normalize,
            vf_clip_eps=vf_clip_eps,
            clip_eps=0.15,
            ent_coef=0.05,
            vf_coef=0.7,
        )
        params = _params(1)
        batch = _batch(params, seed=2)
        got, metrics = _loss(params, None, batch, config)
        total, policy, value, entropy = _np_loss(params, batch, config)
        np.testing.assert_allclose(got, total, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["loss/total"], total, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["loss/policy"], policy, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["loss/value"], value, rtol=1e-5)
        np.testing.assert_allclose(metrics["policy/entropy"], entropy, rtol=1e-5)

    def test_diagnostics(self):
        params = _params(1)
        batch = _batch(params, seed=3)
        _, metrics = _loss(params, None, batch, TINY)
        logits, _ = _np_forward(params, batch.obs)
        a = np.asarray(batch.action)
        log_pi = _np_log_softmax(logits)[np.arange(len(a)), a]
        log_ratio = log_pi - np.asarray(batch.extras["log_prob"], np.float64)
        rho = np.exp(log_ratio)
        np.testing.assert_allclose(
            metrics["policy/approx_kl"], np.mean(rho - 1 - log_ratio), rtol=1e-4
        )
        np.testing.assert_allclose(
            metrics["policy/clip_fraction"], np.mean(np.abs(rho - 1) > 0.2)
        )

    def test_target_params_unused(self):
        params = _params(1)
        batch = _batch(params, seed=4)
        a, _ = _loss(params, None, batch, TINY)
        b, _ = _loss(params, _params(9), batch, TINY)
        assert float(a) == float(b)

    def test_on_policy_gradient_is_the_policy_gradient(self):
        """At pi == mu (no clipping) the PPO policy gradient is -A grad log pi."""
        config = TINY.replace(normalize_advantages=False, ent_coef=0.0, vf_coef=0.0)
        params = _params(2)
        batch = _batch(params, seed=5)
        logits, _ = _np_forward(params, batch.obs)
        a = np.asarray(batch.action)
        log_mu = _np_log_softmax(logits)[np.arange(len(a)), a]
        batch = batch.replace(
            extras={**batch.extras, "log_prob": jnp.asarray(log_mu, jnp.float32)}
        )

        def vanilla(p):
            logits, _ = ppo.policy_and_value(p, batch.obs, config, 1)
            lp = jax.nn.log_softmax(logits)[jnp.arange(len(a)), batch.action]
            return -jnp.mean(batch.extras["advantage"] * lp)

        g_ppo, g_pg = jax.jit(
            lambda p: (
                jax.grad(lambda q: ppo.loss(q, None, batch, config)[0])(p),
                jax.grad(vanilla)(p),
            )
        )(params)
        chex.assert_trees_all_close(g_ppo, g_pg, rtol=1e-4, atol=1e-7)


# ------------------------------------------------------------------------------- GAE


def test_compute_gae_matches_numpy_on_a_rollout():
    rng = np.random.default_rng(0)
    T, E, gamma, lam = 7, 3, 0.9, 0.8
    term = np.zeros((T, E), bool)
    trunc = np.zeros((T, E), bool)
    term[2, 0] = term[5, 2] = True
    trunc[3, 1] = trunc[4, 0] = True
    r, v, nv = (rng.normal(size=(3, T, E))).astype(np.float32)
    rollout = Transition(
        obs=jnp.zeros((T, E, 4)),
        action=jnp.zeros((T, E), jnp.int32),
        reward=jnp.asarray(r),
        next_obs=jnp.zeros((T, E, 4)),
        terminated=jnp.asarray(term),
        truncated=jnp.asarray(trunc),
        extras={"value": jnp.asarray(v), "next_value": jnp.asarray(nv)},
    )
    config = TINY.replace(gamma=gamma, gae_lambda=lam)
    adv, target = jax.jit(ppo.compute_gae)(rollout, config)
    d = gamma * (1 - term)
    want = _np_gae(r, d, v, nv, lam, term | trunc)
    np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(target, want + v, rtol=1e-5, atol=1e-5)
    # explicit reward / values override the rollout's
    cost = rng.normal(size=(T, E)).astype(np.float32)
    adv_c, _ = ppo.compute_gae(
        rollout, config, reward=cost, value=jnp.zeros((T, E)), next_value=nv
    )
    np.testing.assert_allclose(
        adv_c, _np_gae(cost, d, np.zeros((T, E)), nv, lam, term | trunc), rtol=1e-5
    )
    # explicit gamma / lambda override the config's
    adv_o, _ = ppo.compute_gae(rollout, config, gamma=0.5, gae_lambda=0.3)
    want_o = _np_gae(r, 0.5 * (1 - term), v, nv, 0.3, term | trunc)
    np.testing.assert_allclose(adv_o, want_o, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------- collect / act


def test_collect_records_behaviour_and_pre_reset_values(cmdp_rollout):
    """Truncation bootstraps from the value of the pre-reset obs; termination not."""
    config, before, after, rollout, info, _ = cmdp_rollout
    T, E = config.num_steps, config.num_envs
    chex.assert_shape(rollout.action, (T, E))
    chex.assert_shape(rollout.obs, (T, E, 6))
    assert int(before.step) == 0 and int(after.step) == 1
    term = np.asarray(rollout.terminated)
    trunc = np.asarray(rollout.truncated)
    assert term.any() and trunc.any(), "test is vacuous without both kinds of end"
    obs, nxt = np.asarray(rollout.obs), np.asarray(rollout.next_obs)
    logits, value = _np_forward(before.params, obs)
    _, next_value = _np_forward(before.params, nxt)
    a = np.asarray(rollout.action)
    log_mu = np.take_along_axis(_np_log_softmax(logits), a[..., None], -1)[..., 0]
    np.testing.assert_allclose(rollout.extras["log_prob"], log_mu, atol=1e-5)
    np.testing.assert_allclose(rollout.extras["value"], value, atol=1e-5)
    np.testing.assert_allclose(rollout.extras["next_value"], next_value, atol=1e-5)
    end = term | trunc
    # inside an episode next_obs is the next step's obs; after an end it is the
    # pre-reset one (never the start state 0), while obs[t + 1] is the start
    np.testing.assert_array_equal(nxt[:-1][~end[:-1]], obs[1:][~end[:-1]])
    assert np.all(nxt[:-1][end[:-1]].argmax(-1) != 0)
    assert np.all(obs[1:][end[:-1]].argmax(-1) == 0)
    going = ~end[-1]  # the state continues from the last next_obs unless it reset
    np.testing.assert_array_equal(np.asarray(after.obs)[going], nxt[-1][going])
    # GAE(0) = one-step TD error: bootstrap at truncation, not at termination
    adv, _ = ppo.compute_gae(rollout, config.replace(gae_lambda=0.0, gamma=0.9))
    r = np.asarray(rollout.reward)
    want = r + 0.9 * (1 - term) * next_value - value
    np.testing.assert_allclose(adv, want, rtol=1e-4, atol=1e-5)
    # episode statistics come only from finished episodes
    m = ppo.episode_metrics(info)
    assert int(m["episode/count"]) == int(end.sum())
    lengths = np.asarray(info["episode_length"])[end]
    returns = np.asarray(info["episode_return"])[end]
    np.testing.assert_allclose(m["episode/length"], lengths.mean(), rtol=1e-6)
    np.testing.assert_allclose(m["episode/return"], returns.mean(), rtol=1e-5)
    assert "episode/cost" not in m
    costs = np.asarray(info["episode_cost"])[end]
    m = ppo.episode_metrics(info, with_cost=True)
    np.testing.assert_allclose(m["episode/cost"], costs.mean(), rtol=1e-5)
    # per-episode cost sums are those of the recorded per-step costs
    c = np.asarray(rollout.extras["cost"])
    e = int(np.argmax(end.any(0)))  # an environment with an episode end
    t_end = int(np.argmax(end[:, e]))  # its first episode started at t = 0
    np.testing.assert_allclose(
        np.asarray(info["episode_cost"])[t_end, e], c[: t_end + 1, e].sum(), rtol=1e-5
    )


def test_act_greedy_and_sampling(key):
    params = _params(3)
    config = TINY
    obs = jnp.asarray(np.random.default_rng(1).normal(size=(32, 4)), jnp.float32)
    logits, _ = _np_forward(params, obs)
    greedy = jax.jit(jax.vmap(lambda o: ppo.act(params, o, None, config, greedy=True)))(
        obs
    )
    np.testing.assert_array_equal(greedy, logits.argmax(-1))
    # sampling frequencies match softmax(logits) of one observation
    skewed = jax.tree.map(lambda x: x * 40.0, params)  # a far-from-uniform policy
    one = obs[0]
    probs = np.exp(_np_log_softmax(_np_forward(skewed, one)[0]))
    n = 4000
    actions = jax.jit(jax.vmap(lambda k: ppo.act(skewed, one, k, config)))(
        jax.random.split(key, n)
    )
    assert actions.dtype == jnp.int32
    freq = np.bincount(np.asarray(actions), minlength=2) / n
    np.testing.assert_allclose(freq, probs, atol=4 * np.sqrt(0.25 / n))


# ------------------------------------------------------------------------ update hooks


def _cmdp():
    """6 states: start 0 (never re-entered), 1-4 random, 5 terminal; random costs."""
    rng = np.random.default_rng(0)
    S, A = 6, 3
    P = np.zeros((S, A, S))
    P[:5, :, 1:] = rng.dirichlet(np.ones(5), size=(5, A))
    P[5, :, 5] = 1.0
    R = rng.normal(size=(S, A))
    C = rng.uniform(size=(S, A))
    R[5] = C[5] = 0.0
    mdp = make_mdp(P, R, mu0=np.eye(S)[0], gamma=0.9, C=C)
    return make_finite_mdp_env(mdp, max_steps=4, terminal=np.eye(S, dtype=bool)[5])


@pytest.fixture(scope="module")
def cmdp_rollout():
    """One rollout of a small CMDP (``info["cost"]`` recorded), states around it."""
    env, env_params = _cmdp()
    config = TINY.replace(hidden_sizes=(8,))
    before = ppo.init(jax.random.key(1), env, env_params, config)
    after, rollout, info = jax.jit(
        lambda s: ppo.collect(s, config, env, env_params, extras_keys=("cost",))
    )(_fresh(before))
    return config, before, after, rollout, info, env_params.mdp


def test_collect_copies_env_extras(cmdp_rollout):
    *_, rollout, _, mdp = cmdp_rollout
    s = np.asarray(rollout.obs).argmax(-1)
    want = np.asarray(mdp.C)[s, np.asarray(rollout.action)]
    np.testing.assert_allclose(rollout.extras["cost"], want, rtol=1e-6)


def test_collect_draws_the_step_by_step_loops_numbers(cartpole):
    """collect's actions and observations are those of the per-step key schedule.

    Reference: a Python loop doing, every step, ``(k, k_act, k_step) = split(k,
    3)``, one ``jax.random.categorical`` per environment on its key of
    ``split(k_act, E)`` and ``env.step`` per environment on ``split(k_step,
    E)`` (the schedule ``collect`` documents, with the noise drawn in advance).
    """
    env, env_params = cartpole
    config = TINY.replace(num_steps=12)
    state = ppo.init(jax.random.key(4), env, env_params, config)
    after, rollout, _ = jax.jit(lambda s: ppo.collect(s, config, env, env_params))(
        _fresh(state)
    )
    wenv = log_wrap(env)
    _, k = jax.random.split(_fresh(state).key)
    env_state, obs = state.env_state, state.obs
    actions, observations = [], []
    for _ in range(config.num_steps):
        k, k_act, k_step = jax.random.split(k, 3)
        logits, _ = ppo.policy_and_value(state.params, obs, config, 1)
        a = jnp.stack(
            [
                jax.random.categorical(ka, logits[e]).astype(jnp.int32)
                for e, ka in enumerate(jax.random.split(k_act, config.num_envs))
            ]
        )
        observations.append(obs)
        actions.append(a)
        obs, env_state, *_ = jax.vmap(wenv.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_step, config.num_envs), env_state, a, env_params
        )
    np.testing.assert_array_equal(rollout.action, np.stack(actions))
    # the eager loop's physics may round differently from the jitted one's
    np.testing.assert_allclose(rollout.obs, np.stack(observations), atol=1e-6)
    np.testing.assert_allclose(after.obs, obs, atol=1e-6)
    assert len(np.unique(np.asarray(rollout.action))) == 2  # both actions drawn


def test_learn_hooks(cmdp_rollout):
    """A shaped reward r - 0.5 c through either hook equals update on that reward."""
    config, _, state, rollout, _, _ = cmdp_rollout
    shaped = lambda tr: tr.reward - 0.5 * tr.extras["cost"]

    def shaped_gae(tr, cfg):
        adv, target = ppo.compute_gae(tr, cfg, reward=shaped(tr))
        return {"advantage": adv, "target": target}

    want, _ = _update(_fresh(state), rollout.replace(reward=shaped(rollout)), config)
    got, _ = _learn(_fresh(state), rollout, config, reward_fn=shaped)
    chex.assert_trees_all_equal(_strip(got), _strip(want))  # bitwise
    got, _ = _learn(_fresh(state), rollout, config, advantage_fn=shaped_gae)
    chex.assert_trees_all_equal(_strip(got), _strip(want))
    base, _ = _update(_fresh(state), rollout, config)  # the environment reward
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(got.params), jax.tree.leaves(base.params), strict=True
        )
    )
    with pytest.raises(ConfigError, match="reward_fn or advantage_fn"):
        ppo.learn(
            _fresh(state), rollout, config, reward_fn=shaped, advantage_fn=shaped_gae
        )


def test_update_keeps_shapes_and_counts(cmdp_rollout):
    config, _, state, rollout, _, _ = cmdp_rollout
    new_state, metrics = _update(_fresh(state), rollout, config)
    chex.assert_trees_all_equal_shapes_and_dtypes(_strip(state), _strip(new_state))
    assert int(new_state.num_updates) == config.update_epochs * config.num_minibatches
    for name in ("loss/total", "loss/policy", "loss/value", "policy/entropy"):
        assert np.isfinite(float(metrics[name])), name
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree.leaves(state.params),
            jax.tree.leaves(new_state.params),
            strict=True,
        )
    ]
    assert all(changed)


def test_sgd_partitions_each_epoch(cmdp_rollout):
    """Every transition is in exactly one minibatch per epoch."""
    config, _, state, rollout, _, _ = cmdp_rollout
    config = config.replace(update_epochs=3, num_minibatches=4)
    flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), rollout)
    n = flat.reward.shape[0]
    flat = flat.replace(extras={"idx": jnp.arange(n)})

    def counting_loss(params, target_params, batch, cfg):
        del target_params, cfg
        hist = jnp.zeros(n).at[batch.extras["idx"]].add(1.0)
        zero = sum(jnp.sum(x) for x in jax.tree.leaves(params)) * 0.0
        return zero, {"count": hist, "size": jnp.float32(batch.reward.shape[0])}

    _, _, metrics = jax.jit(ppo.sgd, static_argnames="loss_fn")(
        state.params,
        state.opt_state,
        jax.random.key(0),
        flat,
        config,
        loss_fn=counting_loss,
    )
    # mean over 3 * 4 steps of per-step histograms: 3 visits / 12 steps each
    np.testing.assert_allclose(metrics["count"], np.full(n, 1 / 4))
    assert float(metrics["size"]) == n / 4


def test_sgd_one_step_is_one_adam_step(cmdp_rollout):
    config, _, state, rollout, _, _ = cmdp_rollout
    config = config.replace(update_epochs=1, num_minibatches=1, max_grad_norm=1e6)
    adv, target = ppo.compute_gae(rollout, config)
    flat = jax.tree.map(
        lambda x: x.reshape(-1, *x.shape[2:]),
        rollout.replace(extras={**rollout.extras, "advantage": adv, "target": target}),
    )

    @jax.jit
    def both(params, opt_state, key):
        got = ppo.sgd(params, opt_state, key, flat, config)
        (_, m), grads = jax.value_and_grad(ppo.loss, has_aux=True)(
            params, None, flat, config
        )
        upd, _ = ppo.optimizer(config).update(grads, opt_state, params)
        return got, (jax.tree.map(lambda p, u: p + u, params, upd), m)

    (params, _, metrics), (want, m) = both(
        state.params, state.opt_state, jax.random.key(0)
    )
    chex.assert_trees_all_close(params, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(metrics["loss/total"], m["loss/total"], rtol=1e-5)


# ----------------------------------------------------------------------------- contract


@pytest.fixture(scope="module")
def tiny_run(cartpole):
    """TINY runs sharing one compilation: a ``vmap`` over (config, key) rows.

    Rows: two seeds of TINY and TINY with other hyperparameters and the first
    seed. The same call is made twice (bitwise reproduction), then once with
    every traced field changed in every row, counting traces. (``train``
    equal to ``init`` plus chunk-by-chunk ``run`` is checked for every agent
    in ``tests/test_agent_contract.py``.)
    """
    env, env_params = cartpole
    traces = []

    def train_fn(c, k):
        traces.append(1)
        return ppo.make_train(c, env, env_params)(k)

    changed = TINY.replace(
        lr=1e-2,
        lr_end_fraction=1.0,
        adam_eps=1e-3,
        max_grad_norm=0.1,
        gamma=0.5,
        gae_lambda=0.3,
        clip_eps=0.05,
        vf_clip_eps=0.5,
        ent_coef=0.2,
        vf_coef=2.0,
    )
    other = TINY.replace(lr=3e-3, clip_eps=0.1)
    raw_a, raw_b = jax.random.key_data(jax.random.split(jax.random.key(3)))
    keys = lambda: jax.random.wrap_key_data(jnp.stack([raw_a, raw_b, raw_a]))
    sweep = jax.jit(jax.vmap(train_fn))
    first = sweep(stack_configs([TINY, TINY, other]), keys())
    again = sweep(stack_configs([TINY, TINY, other]), keys())
    changed_run = sweep(stack_configs([changed, changed, changed]), keys())
    return {
        "sweep": first,
        "again": again,
        "changed": changed_run,
        "traces": len(traces),
    }


def test_traced_hyperparameters_do_not_retrace(tiny_run):
    assert tiny_run["traces"] == 1
    ref, changed = tiny_run["sweep"][1], tiny_run["changed"][1]
    for name in ("train/lr", "loss/total", "loss/value", "policy/entropy"):
        assert not np.allclose(ref[name][0], changed[name][0]), name


def test_vmapped_seeds_differ_and_reproduce(tiny_run):
    state, metrics = tiny_run["sweep"]
    params = jax.tree.leaves(state.params)
    assert not any(np.array_equal(x[0], x[1]) for x in params)  # two seeds
    assert not np.allclose(metrics["loss/total"][0], metrics["loss/total"][1])
    again_state, again_metrics = tiny_run["again"]
    chex.assert_trees_all_equal(_strip(state), _strip(again_state))  # bitwise
    chex.assert_trees_all_equal(metrics, again_metrics)


def test_swept_hyperparameters_take_effect(tiny_run):
    """Row 2 shares row 0's key but not its lr / clip_eps."""
    state, metrics = tiny_run["sweep"]
    # same key: same initial params and first rollout (metrics before updating)
    for name in ("value/mean", "advantage/mean", "episode/count"):
        assert metrics[name][0, 0] == metrics[name][2, 0], name
    assert not np.allclose(metrics["loss/total"][0], metrics["loss/total"][2])
    np.testing.assert_allclose(metrics["train/lr"][2, 0], 3e-3, rtol=1e-6)


def test_metrics_layout(tiny_run):
    state, metrics = jax.tree.map(lambda x: x[0], tiny_run["sweep"])
    metrics = jax.tree.map(np.asarray, metrics)
    total = TINY.total_iters
    for name, leaf in metrics.items():
        assert "/" in name
        assert leaf.shape == (total,), name
    for name in ("loss/total", "loss/policy", "loss/value", "policy/entropy"):
        assert np.all(np.isfinite(metrics[name])), name
    assert int(state.step) == total
    assert int(state.num_updates) == total * TINY.updates_per_iter
    np.testing.assert_array_equal(
        metrics["train/env_steps"], np.arange(1, total + 1) * TINY.batch_size
    )
    lr = metrics["train/lr"]  # linear decay from lr to lr * lr_end_fraction
    np.testing.assert_allclose(lr[0], TINY.lr, rtol=1e-6)
    assert np.all(np.diff(lr) < 0) and lr[-1] > TINY.lr * TINY.lr_end_fraction
    ev = metrics["eval/return"].reshape(TINY.num_chunks, TINY.iters_per_chunk)
    assert np.all(np.isfinite(ev[:, -1])) and np.all(np.isnan(ev[:, :-1]))
    count = metrics["episode/count"]
    assert np.array_equal(np.isfinite(metrics["episode/return"]), count > 0)
    assert count.sum() > 0
    ended = count > 0
    np.testing.assert_array_equal(  # CartPole pays 1 per step
        metrics["episode/return"][ended], metrics["episode/length"][ended]
    )


# ------------------------------------------------------------------------ config checks


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gamma", 1.5),
        ("gae_lambda", -0.1),
        ("clip_eps", 0.0),
        ("vf_clip_eps", 0.0),
        ("ent_coef", -0.01),
        ("vf_coef", -1.0),
        ("lr", 0.0),
        ("lr_end_fraction", 2.0),
        ("max_grad_norm", 0.0),
        ("num_envs", 0),
        ("num_minibatches", 5),  # does not divide 8 * 3
        ("update_epochs", 0),
        ("hidden_sizes", (16, 0)),
        ("activation", "nope"),
    ],
)
def test_invalid_config_raises(cartpole, field, value):
    env, env_params = cartpole
    bad = TINY.replace(**{field: value})
    with pytest.raises(ConfigError, match=field):
        bad.validate()
    with pytest.raises(ConfigError):
        ppo.make_train(bad, env, env_params)


def test_continuous_actions_rejected(key):
    env, env_params = gymnax.make("Pendulum-v1")
    with pytest.raises(ConfigError, match="Discrete"):
        ppo.init(key, env, env_params, TINY)


def test_conv_torso_needs_images(key):
    env, env_params = gymnax.make("CartPole-v1")
    with pytest.raises(ConfigError, match="conv_features"):
        ppo.init(key, env, env_params, TINY.replace(conv_features=(4,)))


def test_conv_torso_on_images():
    """MinAtar-shaped [10, 10, 4] observations through separate conv torsos."""
    config = TINY.replace(conv_features=(4,), hidden_sizes=(8,))
    net = ppo.network(config, 3, 3)
    obs = jnp.asarray(np.random.default_rng(0).random((5, 10, 10, 4)), jnp.float32)

    @jax.jit
    def init_and_apply(k, o):
        params = net.init(k, o[0])
        return params, ppo.policy_and_value(params, o, config, 3)

    params, (logits, value) = init_and_apply(jax.random.key(0), obs)
    assert set(params["params"]) == {
        "actor_conv",
        "critic_conv",
        "actor_torso",
        "critic_torso",
        "actor_head",
        "critic_head",
    }
    chex.assert_shape(logits, (5, 3))
    chex.assert_shape(value, (5,))
    assert np.all(np.isfinite(logits)) and np.all(np.isfinite(value))


def test_presets():
    config = ppo.cartpole_config()
    assert 450_000 <= config.total_env_steps <= 550_000
    assert ppo.cartpole_config(lr=1e-3).lr == 1e-3


# ----------------------------------------------------------------------------- learning

LEARN = ppo.Config(
    num_envs=8,
    num_steps=16,
    num_minibatches=2,
    update_epochs=4,
    hidden_sizes=(32,),
    num_chunks=1,
    iters_per_chunk=40,
    num_eval_episodes=4,
    eval_max_steps=20,
    lr=3e-3,
    lr_end_fraction=1.0,
    ent_coef=0.0,
    max_grad_norm=1.0,
    gamma=0.9,
)


def _bandit_mdp(num_states):
    """A two-armed bandit in state 0 (arm 1 pays 1, arm 0 pays 0), then terminal."""
    P = np.zeros((num_states, 2, num_states))
    P[:, :, -1] = 1.0
    R = np.zeros((num_states, 2))
    R[0, 1] = 1.0
    mu0 = np.eye(num_states)[0]
    return make_mdp(P, R, mu0=mu0, gamma=0.9)


def _continuing_mdp(num_states):
    """Reward 1 on every step, uniform moves, no terminal state: V = 1 / (1 - gamma)."""
    P = np.full((num_states, 2, num_states), 1.0 / num_states)
    return make_mdp(P, np.ones((num_states, 2)), gamma=0.9)


@pytest.fixture(scope="module")
def probe_runs():
    """Two seeds on each of three 5-state probes, as one vmap over env params.

    The bandit's best action is 1; the discounting chain's (advance) is 0
    everywhere, with ``Q*(s, 0) = 0.9^(3 - s)`` and ``Q*(s, 1) = 0``; the
    continuing task is cut by a 5-step time limit, and its value is
    ``1 / (1 - 0.9) = 10`` only if truncation bootstraps (treating the time
    limit as a termination gives about 2.6 on average).
    """
    chain = discounting_chain(num_states=5, gamma=0.9)
    terminal = np.eye(5, dtype=bool)[-1]
    env, bandit = make_finite_mdp_env(_bandit_mdp(5), max_steps=10, terminal=terminal)
    _, chain_params = make_finite_mdp_env(chain.mdp, max_steps=10, terminal=terminal)
    _, continuing = make_finite_mdp_env(_continuing_mdp(5), max_steps=5)
    rows = [bandit, bandit, chain_params, chain_params, continuing, continuing]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *rows)
    keys = jax.random.split(jax.random.key(0), len(rows))
    train = jax.jit(jax.vmap(lambda p, k: ppo.make_train(LEARN, env, p)(k)))
    state, metrics = train(stacked, keys)
    obs = jnp.eye(5, dtype=jnp.float32)
    logits, value = jax.vmap(lambda p: ppo.policy_and_value(p, obs, LEARN, 1))(
        state.params
    )
    pi = np.asarray(jax.nn.softmax(logits))
    return pi, np.asarray(value), np.asarray(metrics["eval/return"])[:, -1], chain


@pytest.mark.slow  # shares probe_runs: ~1 min of training
def test_learns_the_best_arm_of_a_bandit(probe_runs):
    pi, value, final_eval, _ = probe_runs
    for seed in (0, 1):
        assert pi[seed, 0, 1] > 0.95, pi[seed, 0]
        np.testing.assert_allclose(value[seed, 0], 1.0, atol=0.05)
    np.testing.assert_allclose(final_eval[:2], 1.0)


@pytest.mark.slow  # shares probe_runs: ~1 min of training
def test_learns_to_advance_on_a_discounting_chain(probe_runs):
    pi, value, final_eval, chain = probe_runs
    for seed in (2, 3):
        assert np.all(pi[seed, :4, 0] > 0.9), pi[seed, :4]
        np.testing.assert_allclose(value[seed, :4], chain.v_star[:4], atol=0.05)
    np.testing.assert_allclose(final_eval[2:4], 1.0)


@pytest.mark.slow  # shares probe_runs: ~1 min of training
def test_value_bootstraps_through_truncation(probe_runs):
    _, value, _, _ = probe_runs
    np.testing.assert_allclose(value[4:], 10.0, rtol=0.1)


@pytest.mark.slow
def test_learns_cartpole():
    """PPO solves CartPole-v1 in ~500k steps (:func:`tests.agents.learning.assert_solves_cartpole`)."""
    env, env_params = gymnax.make("CartPole-v1")
    config = ppo.cartpole_config()
    train = jax.jit(jax.vmap(ppo.make_train(config, env, env_params)))
    keys = jax.random.split(jax.random.key(0), CARTPOLE_SEEDS)
    start = time.perf_counter()
    _, metrics = train(keys)
    final = np.asarray(jax.block_until_ready(metrics["eval/return"]))[:, -1]
    elapsed = time.perf_counter() - start
    print(
        f"PPO CartPole final greedy returns per seed: {final}, "
        f"wall time {elapsed:.1f}s for {config.total_env_steps} steps per seed"
    )
    assert_solves_cartpole(final, "PPO")


@pytest.mark.slow
def test_minatar_preset_learns_breakout():
    """The MinAtar preset's network learns Breakout in 300k frames (2 seeds, ~2 min).

    The greedy policies of two untrained networks are the reference: after 301,056
    frames the final greedy return must be at least 3 and at least three times
    the untrained ones, on every seed (recorded 2026-12-07: 6.0 and 6.5, against
    0.63 and 0 untrained).
    """
    env, env_params = envs.make("Breakout-MinAtar")
    config = ppo.minatar_config(num_chunks=3, iters_per_chunk=49, num_eval_episodes=8)
    k_train, k_ref = jax.random.split(jax.random.key(0))
    keys = jax.random.split(k_train, 2)
    ref_keys = jax.random.split(k_ref, 4)  # untrained networks: 2 inits, 2 evaluations
    untrained = jax.jit(
        jax.vmap(
            lambda k, ek: ppo.evaluate(
                ppo.init(k, env, env_params, config).params, ek, config, env, env_params
            )["eval/return"]
        )
    )(ref_keys[:2], ref_keys[2:])
    _, metrics = jax.jit(jax.vmap(ppo.make_train(config, env, env_params)))(keys)
    returns = np.asarray(metrics["eval/return"])
    final = np.array([r[np.isfinite(r)][-1] for r in returns])
    untrained = np.asarray(untrained)
    print(f"PPO Breakout-MinAtar: untrained {untrained}, final {final}")
    assert np.all(final >= 3.0) and np.all(final >= 3.0 * untrained), (untrained, final)
