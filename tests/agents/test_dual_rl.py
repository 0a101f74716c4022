"""Tests for jaxrl.agents.dual_rl: losses against NumPy references, tabular fixed points.

References written here (float64 NumPy): every method's loss on a hand-made
batch from the networks' tables (double-Q minimum over the *target* critics,
bootstrapping on ``terminated`` only, each value loss and stabiliser, AWR,
ReCOIL's bounded targets, the Gaussian log-density); the exact dual-RL DP of
:mod:`jaxrl.agents.dual_tabular` on the dataset's empirical MDP and state-action
counts (the fixed point that the deep XQL / f-DVL / IQL agents must reach on
one-hot observations); and the data's empirical behaviour policy (BC, and
ReCOIL with expert-only data).
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from scipy import stats

from jaxrl import rollout, testing
from jaxrl import transition as transition_lib
from jaxrl.agents import dual_rl as dr
from jaxrl.agents import dual_tabular as dt
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.mdp import make_mdp
from jaxrl.ops import exact_dp
from jaxrl.transition import Transition

# ------------------------------------------------------------------ fixtures

S, A, GAMMA = 4, 2, 0.8


def _mdp():
    return testing.random_mdp(np.random.default_rng(0), S, A, gamma=GAMMA)


def _env():
    return fm.make_finite_mdp_env(_mdp(), max_steps=20)


def _collect(env, env_params, pi, key, num_envs=16, steps=256):
    """Roll the tabular policy ``pi [S, A]`` (one-hot observations)."""
    log_pi = jnp.log(jnp.asarray(pi, jnp.float32))

    def run(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = rollout.reset(k_reset, env, env_params, num_envs)
        policy = lambda k, o: jax.random.categorical(k, log_pi[jnp.argmax(o, -1)])
        data, *_ = rollout.collect(k_run, env, env_params, state, obs, policy, steps)
        return transition_lib.flatten_batch(data)

    return jax.jit(run)(key)


def _counts(data):
    s = np.asarray(data.obs).argmax(-1)
    a = np.asarray(data.action)
    s2 = np.asarray(data.next_obs).argmax(-1)
    n_sa = np.zeros((S, A))
    np.add.at(n_sa, (s, a), 1.0)
    n_sas = np.zeros((S, A, S))
    np.add.at(n_sas, (s, a, s2), 1.0)
    return n_sa, n_sas


def _behaviour():
    rng = np.random.default_rng(1)
    return 0.7 * rng.dirichlet(np.ones(A) * 2, size=S) + 0.3 / A


ENV, ENV_PARAMS = _env()


def _train(config, env_params, key, data, expert=None):
    return dr.make_train_from_data(config, ENV, env_params)(key, data, expert)


TRAIN = jax.jit(_train)  # one compile per static part of the config
# seeds vmapped over ONE shared dataset
TRAIN_SEEDS = jax.jit(jax.vmap(_train, in_axes=(None, None, 0, None, None)))


@pytest.fixture(scope="module")
def tabular():
    """Env, a full-coverage dataset of a known behaviour policy, its empirical MDP."""
    env, env_params = ENV, ENV_PARAMS
    data = _collect(env, env_params, _behaviour(), jax.random.key(1))
    n_sa, n_sas = _counts(data)
    assert n_sa.min() > 100  # full coverage
    assert not np.any(np.asarray(data.terminated))
    assert np.any(np.asarray(data.truncated))  # truncations bootstrap
    mdp = _mdp()
    p_hat = n_sas / n_sa[..., None]
    empirical = make_mdp(p_hat, np.asarray(mdp.R), mu0=np.asarray(mdp.mu0), gamma=GAMMA)
    return env, env_params, data, n_sa, fm.make_env_params(empirical)


EYE = jnp.eye(S)
SA_OBS = jnp.repeat(EYE, A, axis=0)  # [S*A, S], state-major
SA_ACT = jnp.tile(jnp.arange(A, dtype=jnp.int32), S)


def _q_tables(critic, config):
    """``[K, S, A]`` tables of stacked discrete critics."""
    q = dr.critic_values(critic, SA_OBS, SA_ACT, config, True)
    return np.asarray(q, np.float64).reshape(q.shape[0], S, A)


def _pi_table(params, config):
    logp = dr.policy_log_prob(params, SA_OBS, SA_ACT, config)
    return np.exp(np.asarray(logp, np.float64).reshape(S, A))


def _tables(state, config):
    q = _q_tables(state.params.critic, config).min(0)
    v = np.asarray(dr.state_values(state.params.value, EYE, config), np.float64)
    return q, v, _pi_table(state.params, config)


# ---------------------------------------------------------- NumPy references


def np_value_loss(x, config):
    """Batch value objective of residuals ``x`` (independent NumPy forms)."""
    method, stab = config.method, config.gumbel_stabilizer
    name = config.value_loss_name
    if name == "expectile":
        tau = config.expectile
        return np.mean(np.where(x < 0, 1 - tau, tau) * x**2)
    if name == "chi_square":  # at temperature alpha: alpha * loss(x / alpha)
        lam, alpha = config.lam, config.alpha
        return np.mean(lam * np.maximum(x + x**2 / (4 * alpha), 0) - (1 - lam) * x)
    if name == "total_variation":
        lam = config.lam
        return np.mean(lam * np.maximum(x, 0) - (1 - lam) * x)
    assert method in ("xql", "recoil", "fdvl")
    z = x / config.beta
    if stab == "none":
        return np.mean(np.exp(z) - z - 1)
    zc = np.minimum(z, config.max_clip)
    if stab == "clip":
        return np.mean(np.exp(zc) - zc - 1)
    m = max(zc.max(), -1.0)
    if stab == "rescale":
        return np.mean(np.exp(-m) * (np.exp(zc) - zc - 1))
    # "log": sg(g) * z with g the gradient of log(1 + mean gumbel) at clipped z
    g = (np.exp(zc) - 1) / (np.mean(np.exp(zc) - zc - 1) + 1)
    return np.mean(g * z)


def np_huber(x, delta):
    return np.where(np.abs(x) <= delta, 0.5 * x**2, delta * (np.abs(x) - 0.5 * delta))


def np_loss(tables, target_q, data, config, expert=None):
    """Reference loss of a discrete batch from the networks' tables."""
    q_on, v_tab, pi = tables
    s = np.asarray(data.obs).argmax(-1)
    a = np.asarray(data.action)
    s2 = np.asarray(data.next_obs).argmax(-1)
    term = np.asarray(data.terminated, np.float64)  # truncated is ignored
    r = np.asarray(data.reward, np.float64)
    logp = np.log(pi[s, a])
    if config.method == "bc":
        return {"loss/policy": -logp.mean(), "loss/critic": 0.0, "loss/value": 0.0}
    q_min = target_q.min(0)[s, a]  # double-Q minimum of the TARGET critics
    v = v_tab[s]
    value = np_value_loss(q_min - v, config)
    if config.method == "recoil":
        y = -config.reward_gap + config.gamma * (
            (1 - term) * v_tab[s2] - term * config.q_gap
        )
        se = np.asarray(expert.obs).argmax(-1)
        ae = np.asarray(expert.action)
        critic = sum(
            np.mean(
                0.5 * (q_on[k, se, ae] - config.q_gap) ** 2 + 0.5 * (qk[s, a] - y) ** 2
            )
            for k, qk in enumerate(q_on)
        )
    else:
        y = config.reward_scale * r + config.reward_shift
        y = y + config.gamma * (1 - term) * v_tab[s2]
        critic = sum(np.mean(np_huber(qk[s, a] - y, config.huber_delta)) for qk in q_on)
    w = np.minimum(np.exp(config.awr_beta * (q_min - v)), config.max_weight)
    policy = np.mean(-w * logp)
    return {"loss/policy": policy, "loss/critic": critic, "loss/value": value}


# ------------------------------------------------------------------- losses

HAND = {
    "obs": [0, 1, 2, 3, 1, 2, 0],
    "action": [0, 1, 1, 0, 0, 1, 1],
    "reward": [0.5, -1.0, 2.0, 0.0, 1.0, -0.5, 0.25],
    "next_obs": [1, 2, 0, 2, 0, 1, 3],
    "terminated": [False, True, False, False, True, False, False],
    "truncated": [False, False, True, False, True, True, False],
}


def _hand_batch(order=None):
    idx = np.arange(7) if order is None else np.asarray(order)
    h = {k: np.asarray(v)[idx] for k, v in HAND.items()}
    return Transition(
        obs=EYE[h["obs"]],
        action=jnp.asarray(h["action"], jnp.int32),
        reward=jnp.asarray(h["reward"], jnp.float32),
        next_obs=EYE[h["next_obs"]],
        terminated=jnp.asarray(h["terminated"]),
        truncated=jnp.asarray(h["truncated"]),
    )


LOSS_BASE = dr.Config(
    hidden_sizes=(8,),
    batch_size=7,
    gamma=0.9,
    beta=0.3,
    lam=0.7,
    expectile=0.8,
    awr_beta=2.0,
    max_weight=3.0,
    max_clip=1.5,
    huber_delta=0.4,
    reward_scale=1.5,
    reward_shift=-0.25,
    reward_gap=1.0,
    q_gap=5.0,
)

LOSS_CASES = (
    ("xql_rescale", dict(method="xql")),
    ("xql_none", dict(method="xql", gumbel_stabilizer="none")),
    ("xql_clip", dict(method="xql", gumbel_stabilizer="clip")),
    ("xql_log", dict(method="xql", gumbel_stabilizer="log")),
    ("fdvl_chi_square", dict(method="fdvl", f="chi_square")),
    ("fdvl_total_variation", dict(method="fdvl", f="total_variation")),
    ("fdvl_chi_square_alpha", dict(method="fdvl", f="chi_square", alpha=0.05)),
    ("fdvl_total_variation_alpha", dict(method="fdvl", f="total_variation", alpha=7.0)),
    ("fdvl_reverse_kl", dict(method="fdvl", f="reverse_kl")),
    ("iql", dict(method="iql")),
    ("iql_single_q", dict(method="iql", double_q=False)),
    ("bc", dict(method="bc")),
    ("recoil", dict(method="recoil")),
)


def _loss_setup(config):
    env, env_params = ENV, ENV_PARAMS
    data = _hand_batch()
    expert = _hand_batch([3, 0, 5, 6, 2, 1, 4]) if config.method == "recoil" else None
    state = dr.init_from_data(
        jax.random.key(0), env, env_params, config, data, expert=expert
    )
    # targets that differ from the online critics: the loss must use the targets
    noise = jax.random.split(
        jax.random.key(5), len(jax.tree.leaves(state.target_params))
    )
    leaves, tree = jax.tree.flatten(state.target_params)
    target = jax.tree.unflatten(
        tree,
        [
            x + 0.3 * jax.random.normal(k, x.shape)
            for x, k in zip(leaves, noise, strict=True)
        ],
    )
    return state, target, data, expert


class LossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*LOSS_CASES)
    def test_matches_numpy(self, overrides):
        config = LOSS_BASE.replace(**overrides)
        state, target, data, expert = _loss_setup(config)
        batch = dr.Batch(data=data, expert=expert)
        total, metrics = self.variant(lambda p, t, b: dr.loss(p, t, b, config))(
            state.params, target, batch
        )
        tables = (
            _q_tables(state.params.critic, config),
            np.asarray(dr.state_values(state.params.value, EYE, config), np.float64),
            _pi_table(state.params, config),
        )
        want = np_loss(tables, _q_tables(target, config), data, config, expert)
        for name, value in want.items():
            np.testing.assert_allclose(metrics[name], value, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(total, sum(want.values()), rtol=2e-5, atol=1e-6)
        assert float(metrics["train/diverged"]) == 0.0

    @parameterized.named_parameters(("xql", "xql"), ("recoil", "recoil"))
    def test_truncation_bootstraps_termination_does_not(self, method):
        config = LOSS_BASE.replace(method=method)
        state, target, data, expert = _loss_setup(config)

        def critic_loss(d):
            return float(
                dr.loss(state.params, target, dr.Batch(d, expert), config)[1][
                    "loss/critic"
                ]
            )

        base = critic_loss(data)
        flipped_trunc = data.replace(truncated=~data.truncated)
        assert critic_loss(flipped_trunc) == base
        flipped_term = data.replace(terminated=~data.terminated)
        assert abs(critic_loss(flipped_term) - base) > 1e-3

    @parameterized.named_parameters(("xql", "xql"), ("recoil", "recoil"))
    def test_each_network_gets_only_its_own_loss_gradient(self, method):
        config = LOSS_BASE.replace(method=method)
        state, target, data, expert = _loss_setup(config)
        terms = ("loss/critic", "loss/value", "loss/policy")

        def losses(params):  # [total, critic, value, policy]
            total, metrics = dr.loss(params, target, dr.Batch(data, expert), config)
            return jnp.stack([total] + [metrics[t] for t in terms])

        jac = jax.jit(jax.jacrev(losses))(state.params)
        for i, name in enumerate(("critic", "value", "policy"), start=1):
            total = jax.tree.map(lambda x: x[0], getattr(jac, name))
            alone = jax.tree.map(lambda x, i=i: x[i], getattr(jac, name))
            chex.assert_trees_all_close(total, alone, rtol=1e-6, atol=1e-7)
            assert any(np.any(x != 0) for x in jax.tree.leaves(alone))

    def test_update_moves_the_targets_by_polyak(self):
        config = LOSS_BASE.replace(method="iql", polyak=0.25)
        state, _, data, _ = _loss_setup(config)
        new, metrics = jax.jit(lambda s, b: dr.update(s, b, config))(state, data)
        want = jax.tree.map(
            lambda t, p: 0.25 * p + 0.75 * t, state.target_params, new.params.critic
        )
        chex.assert_trees_all_close(new.target_params, want, rtol=1e-6, atol=1e-7)
        assert int(new.step) == 1
        np.testing.assert_allclose(metrics["train/actor_lr"], config.actor_lr)
        moved = jax.tree.map(
            lambda a, b: bool(np.any(a != b)), new.params, state.params
        )
        assert moved.critic and moved.value and moved.policy

    def test_gumbel_without_stabiliser_overflows_and_stabilisers_do_not(self):
        x = jnp.array([0.0, 1.0, 30.0])  # (Q - V) / beta = 3000 at beta = 0.01
        for stab, finite in (("none", False), ("clip", True), ("rescale", True)):
            config = LOSS_BASE.replace(beta=0.01, gumbel_stabilizer=stab)
            assert bool(jnp.isfinite(dr.value_objective(x, config))) is finite

    def test_recoil_needs_an_expert_batch(self):
        config = LOSS_BASE.replace(method="recoil")
        state, target, data, _ = _loss_setup(config)
        with pytest.raises(ConfigError, match="expert"):
            dr.loss(state.params, target, data, config)


def test_continuous_loss_matches_numpy():
    env, env_params = _pendulum()
    rng = np.random.default_rng(3)
    n = 6
    obs = rng.normal(size=(n, 3)).astype(np.float32)
    data = Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(rng.uniform(-2, 2, (n, 1)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=n), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(n, 3)), jnp.float32),
        terminated=jnp.asarray([False, True, False, False, False, True]),
        truncated=jnp.asarray([False, False, True, False, False, True]),
    )
    config = LOSS_BASE.replace(method="iql", batch_size=n, log_std_max=-0.5)
    state = dr.init_from_data(jax.random.key(0), env, env_params, config, data)
    params = state.params
    np.testing.assert_array_equal(params.action_low, [-2.0])
    np.testing.assert_array_equal(params.action_high, [2.0])
    _, metrics = jax.jit(lambda p, t, b: dr.loss(p, t, b, config))(
        params, state.target_params, data
    )
    # reference: actions scaled to [-1, 1]; each critic applied on its own
    u = np.asarray(data.action) / 2.0
    critic_net = dr.StateActionCritic(hidden_sizes=(8,))
    heads = [jax.tree.map(lambda x, k=k: x[k], params.critic) for k in range(2)]
    q = np.stack([np.asarray(critic_net.apply(h, obs, u), np.float64) for h in heads])
    v = np.asarray(dr.state_values(params.value, data.obs, config), np.float64)
    v2 = np.asarray(dr.state_values(params.value, data.next_obs, config), np.float64)
    mean, log_std = dr.GaussianPolicy(action_dim=1, hidden_sizes=(8,)).apply(
        params.policy, obs
    )
    std = np.exp(np.clip(np.asarray(log_std, np.float64), -5.0, -0.5))
    logp = stats.norm.logpdf(u, np.asarray(mean, np.float64), std).sum(-1)
    x = q.min(0) - v
    tau = config.expectile
    term = np.asarray(data.terminated, np.float64)
    y = 1.5 * np.asarray(data.reward, np.float64) - 0.25 + 0.9 * (1 - term) * v2
    w = np.minimum(np.exp(2.0 * x), 3.0)
    want = {
        "loss/value": np.mean(np.where(x < 0, 1 - tau, tau) * x**2),
        "loss/critic": sum(np.mean(np_huber(qk - y, 0.4)) for qk in q),
        "loss/policy": np.mean(-w * logp),
    }
    for name, value in want.items():
        np.testing.assert_allclose(metrics[name], value, rtol=2e-5, atol=1e-6)


# ----------------------------------------------------- tabular fixed points

CONVERGENCE = dr.Config(
    hidden_sizes=(32,),
    batch_size=256,
    num_chunks=1,
    iters_per_chunk=3_000,
    num_eval_episodes=0,
    gamma=GAMMA,
    lr=3e-3,
    lr_end_fraction=0.1,
    actor_lr=3e-3,
    polyak=0.05,
    beta=0.5,
    lam=0.6,
    expectile=0.8,
    awr_beta=1.0,
)


def _oracle(config, empirical_params, n_sa):
    tab = dt.Config(
        value_loss=config.value_loss_name,
        beta=config.beta,
        lam=config.lam,
        expectile=config.expectile,
        awr_beta=config.awr_beta,
        max_weight=config.max_weight,
        iters_per_chunk=300,
        oracle_iters=30,
    )
    state, _ = dt.make_train_from_data(tab, None, empirical_params)(
        jax.random.key(0), n_sa
    )
    return np.asarray(state.q), np.asarray(state.v), np.asarray(state.pi)


@pytest.mark.parametrize(
    "overrides, tol",
    [
        pytest.param(dict(method="xql"), 0.05, marks=pytest.mark.slow),
        pytest.param(dict(method="fdvl", f="chi_square"), 0.1, marks=pytest.mark.slow),
        pytest.param(dict(method="iql"), 0.05, marks=pytest.mark.slow),
        pytest.param(
            dict(method="fdvl", f="total_variation"), 0.05, marks=pytest.mark.slow
        ),
        pytest.param(
            dict(method="xql", gumbel_stabilizer="log"), 0.05, marks=pytest.mark.slow
        ),
    ],
    ids=["xql", "fdvl_chi_square", "iql", "fdvl_total_variation", "xql_log"],
)
def test_deep_values_reach_the_tabular_fixed_point(tabular, overrides, tol):
    env, env_params, data, n_sa, empirical = tabular
    config = CONVERGENCE.replace(**overrides)
    q_tab, v_tab, pi_tab = _oracle(config, empirical, n_sa)
    keys = jax.random.split(jax.random.key(2), 2)
    states, metrics = TRAIN_SEEDS(config, env_params, keys, data, None)
    for seed in range(2):
        state = jax.tree.map(lambda x, seed=seed: x[seed], states)
        q, v, pi = _tables(state, config)
        assert np.abs(q - q_tab).max() < tol
        assert np.abs(v - v_tab).max() < tol
        assert np.abs(pi - pi_tab).max() < 0.03  # AWR: pi ~ mu exp(beta_pi (Q - V))
    values = np.asarray(metrics["loss/value"])
    assert not np.array_equal(values[0], values[1])  # the seeds differ
    # the fixed point is far from the data's mean value (policy evaluation of mu)
    P, R, _, _ = testing.np_mdp(empirical.mdp)
    mu_hat = n_sa / n_sa.sum(-1, keepdims=True)
    v_mu = (testing.np_policy_q(P, R, GAMMA, mu_hat) * mu_hat).sum(-1)
    assert np.abs(v_tab - v_mu).max() > 2 * tol
    assert float(metrics["train/diverged"].max()) == 0.0


@pytest.mark.slow  # 3k steps; the BC loss itself: LossTest
def test_behaviour_cloning_is_the_empirical_behaviour_policy(tabular):
    env, env_params, data, n_sa, _ = tabular
    config = CONVERGENCE.replace(method="bc")
    state, _ = TRAIN(config, env_params, jax.random.key(3), data)
    mu_hat = n_sa / n_sa.sum(-1, keepdims=True)
    pi = _pi_table(state.params, config)
    np.testing.assert_allclose(pi, mu_hat, atol=0.02)
    assert np.abs(mu_hat - _behaviour()).max() > 0.005  # it fits the data, not mu
    # the critics are not trained by BC
    init = dr.init_from_data(jax.random.key(3), ENV, env_params, config, data)
    chex.assert_trees_all_equal(state.params.critic, init.params.critic)


@pytest.fixture(scope="module")
def expert_data():
    """A stochastic expert (softmax of Q*) and its data; no terminal states."""
    env, env_params = ENV, ENV_PARAMS
    q_star = np.asarray(exact_dp.optimal_q(_mdp(), 200), np.float64)
    logits = (q_star - q_star.max(-1, keepdims=True)) / 0.3
    expert_pi = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    data = _collect(env, env_params, expert_pi, jax.random.key(7), steps=128)
    return env, env_params, data, expert_pi


@pytest.mark.slow  # 3k steps; the ReCOIL loss itself: LossTest
def test_recoil_with_only_expert_data_is_behaviour_cloning(expert_data):
    env, env_params, data, expert_pi = expert_data
    n_sa, _ = _counts(data)
    mu_hat = n_sa / n_sa.sum(-1, keepdims=True)
    assert mu_hat.min() > 0.01  # a stochastic expert: AWR could reweight actions
    # small gaps so that the critics reach their fixed point within the run
    base = CONVERGENCE.replace(awr_beta=3.0, beta=1.0, q_gap=10.0, reward_gap=1.0)
    bc, _ = TRAIN(base.replace(method="bc"), env_params, jax.random.key(4), data)
    config = base.replace(method="recoil")
    recoil, metrics = TRAIN(config, env_params, jax.random.key(4), data, data)
    pi_bc = _pi_table(bc.params, config)
    pi_recoil = _pi_table(recoil.params, config)
    np.testing.assert_allclose(pi_recoil, mu_hat, atol=0.02)
    np.testing.assert_allclose(pi_recoil, pi_bc, atol=0.02)
    # why: all expert pairs share one fixed point Q = V = (Q_gap - r_gap) / (2 - gamma)
    q, v, _ = _tables(recoil, config)
    c = (config.q_gap - config.reward_gap) / (2.0 - GAMMA)
    assert np.abs(v - c).max() < 0.05 * c
    assert float(metrics["train/diverged"].max()) == 0.0


@pytest.mark.slow
def test_recoil_imitates_the_expert_from_mostly_bad_data(expert_data):
    env, env_params, expert, expert_pi = expert_data
    q_star = np.asarray(exact_dp.optimal_q(_mdp(), 200))
    worst = np.eye(A)[q_star.argmin(-1)]
    bad = _collect(env, env_params, 0.9 * worst + 0.1 / A, jax.random.key(8))
    few = jax.tree.map(lambda x: x[:512], expert)
    mixture = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), bad, few)
    base = CONVERGENCE.replace(awr_beta=3.0, beta=1.0, q_gap=10.0, reward_gap=1.0)
    bc, _ = TRAIN(base.replace(method="bc"), env_params, jax.random.key(4), mixture)
    config = base.replace(method="recoil")
    recoil, _ = TRAIN(config, env_params, jax.random.key(4), mixture, few)
    best = q_star.argmax(-1)
    pi_bc = _pi_table(bc.params, config)
    pi_recoil = _pi_table(recoil.params, config)
    assert np.all(pi_bc.argmax(-1) != best)  # BC copies the bad data
    np.testing.assert_array_equal(pi_recoil.argmax(-1), best)


# ----------------------------------------------------------- instability


@pytest.mark.parametrize(
    "overrides, diverges",
    [
        (dict(method="xql", gumbel_stabilizer="none"), True),
        (dict(method="xql", gumbel_stabilizer="rescale"), False),
        pytest.param(
            dict(method="fdvl", f="chi_square"), False, marks=pytest.mark.slow
        ),
    ],
    ids=["xql_no_stabiliser", "xql_rescale", "fdvl_chi_square"],
)
def test_small_beta_xql_diverges_without_stabiliser(tabular, overrides, diverges):
    env, env_params, data, _, _ = tabular
    # the overflow comes in the first steps; 500 steps show the others stay finite
    config = CONVERGENCE.replace(
        beta=1e-4, alpha=1e-4, lam=0.9, lr=3e-4, iters_per_chunk=500, **overrides
    )
    keys = jax.random.split(jax.random.key(0), 2)
    _, metrics = TRAIN_SEEDS(config, env_params, keys, data, None)
    diverged = np.asarray(metrics["train/diverged"])  # [seeds, steps]
    np.testing.assert_array_equal(diverged.any(-1), [diverges, diverges])
    finite = np.isfinite(np.asarray(metrics["loss/total"])).all(-1)
    np.testing.assert_array_equal(finite, [not diverges, not diverges])


# ---------------------------------------------------- continuous actions


def _pendulum():
    import gymnax

    return gymnax.make("Pendulum-v1")


PENDULUM = dr.Config(
    method="xql",
    hidden_sizes=(16,),
    batch_size=32,
    data_num_envs=2,
    data_steps=100,
    num_chunks=2,
    iters_per_chunk=10,
    num_eval_episodes=2,
    eval_max_steps=30,
    random_return=-1500.0,
    expert_return=-150.0,
)


@pytest.mark.slow  # ~20 s of compiles; the contract test covers the seed vmap
def test_pendulum_smoke_vmap_over_seeds_and_beta():
    env, env_params = _pendulum()
    traces = []

    def sweep(configs, keys):
        traces.append(1)
        per_seed = lambda c, k: dr.make_train(c, env, env_params)(k)
        return jax.vmap(jax.vmap(per_seed, (None, 0)), (0, None))(configs, keys)

    f = jax.jit(sweep)
    keys = jax.random.split(jax.random.key(0), 3)
    configs = stack_configs([PENDULUM.replace(beta=b) for b in (0.5, 2.0)])
    state, metrics = f(configs, keys)
    iters = PENDULUM.num_iters
    for name, leaf in metrics.items():
        assert leaf.shape == (2, 3, iters), name
    for name in ("loss/total", "loss/value", "loss/critic", "loss/policy"):
        assert np.all(np.isfinite(np.asarray(metrics[name]))), name
    ret = np.asarray(metrics["eval/return"])
    assert np.all(np.isfinite(ret[..., -1])) and np.all(np.isnan(ret[..., 0]))
    score = np.asarray(metrics["eval/normalized_score"])[..., -1]
    np.testing.assert_allclose(score, (ret[..., -1] + 1500.0) / 13.5, rtol=1e-5)
    assert np.all(np.asarray(metrics["eval/length"])[..., -1] == 30.0)  # step cap
    assert state.data.action.shape == (2, 3, PENDULUM.dataset_size, 1)
    values = np.asarray(metrics["loss/value"])
    for i in range(3):  # seeds differ (data and networks)
        for j in range(i + 1, 3):
            assert not np.array_equal(values[:, i], values[:, j])
    assert not np.array_equal(values[0], values[1])  # beta matters
    # a new beta grid reuses the compiled sweep
    keys = jax.random.split(jax.random.key(1), 3)
    f(stack_configs([PENDULUM.replace(beta=b) for b in (0.1, 8.0)]), keys)
    assert len(traces) == 1
    # actions: inside the bounds, greedy = clipped mean
    params = jax.tree.map(lambda x: x[0, 0], state.params)
    obs = state.data.obs[0, 0, :5]
    sampled = jax.vmap(lambda o, k: dr.act(params, o, k, PENDULUM))(
        obs, jax.random.split(jax.random.key(2), 5)
    )
    greedy = jax.vmap(lambda o: dr.act(params, o, None, PENDULUM, greedy=True))(obs)
    assert sampled.shape == greedy.shape == (5, 1)
    assert np.all(np.abs(np.asarray(sampled)) <= 2.0)
    assert not np.array_equal(np.asarray(sampled), np.asarray(greedy))


# --------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(method="cql"), "method"),
        (dict(f="kl"), "f must"),
        (dict(gumbel_stabilizer="huber"), "gumbel_stabilizer"),
        (dict(method="fdvl", f="total_variation", lam=0.3), "lam"),
        (dict(lam=0.0), "lam"),
        (dict(beta=0.0), "beta"),
        (dict(alpha=-1.0), "alpha"),
        (dict(expectile=1.0), "expectile"),
        (dict(awr_beta=-1.0), "awr_beta"),
        (dict(polyak=0.0), "polyak"),
        (dict(batch_size=0), "batch_size"),
        (dict(hidden_sizes=[8]), "hidden_sizes"),
        (dict(activation="swish2"), "activation"),
        (dict(log_std_min=1.0, log_std_max=0.0), "log_std_min"),
        (dict(num_eval_episodes=-1), "num_eval_episodes"),
    ],
)
def test_bad_config_is_a_config_error(overrides, match):
    env, env_params = _env()
    with pytest.raises(ConfigError, match=match):
        dr.make_train(dr.Config(**overrides), env, env_params)


def _small_data():
    return _hand_batch()


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d.replace(obs=d.obs[:, :3]), "obs"),
        (lambda d: d.replace(next_obs=d.next_obs[:5]), "leading axis"),
        (lambda d: d.replace(action=d.action.astype(jnp.float32)), "integer"),
        (lambda d: d.replace(action=d.action + 1), r"\[0, 2\)"),
        (lambda d: d.replace(terminated=d.terminated.astype(jnp.float32)), "bool"),
        (lambda d: d.replace(reward=d.reward[:, None]), "reward"),
        (lambda d: (d.obs, d.action), "Transition"),
    ],
)
def test_bad_data_is_a_config_error(change, match):
    env, env_params = _env()
    with pytest.raises(ConfigError, match=match):
        dr.init_from_data(
            jax.random.key(0), env, env_params, dr.Config(), change(_small_data())
        )


def test_expert_data_is_required_by_recoil_only():
    env, env_params = _env()
    data = _small_data()
    with pytest.raises(ConfigError, match="needs an expert"):
        dr.init_from_data(
            jax.random.key(0), env, env_params, dr.Config(method="recoil"), data
        )
    with pytest.raises(ConfigError, match="recoil"):
        dr.init_from_data(
            jax.random.key(0), env, env_params, dr.Config(), data, expert=data
        )


def test_continuous_actions_need_finite_bounds():
    env, env_params = _pendulum()
    data = Transition(
        obs=jnp.zeros((2, 3)),
        action=jnp.zeros((2,)),
        reward=jnp.zeros(2),
        next_obs=jnp.zeros((2, 3)),
        terminated=jnp.zeros(2, bool),
        truncated=jnp.zeros(2, bool),
    )
    with pytest.raises(ConfigError, match="float"):
        dr.init_from_data(jax.random.key(0), env, env_params, dr.Config(), data)


def test_value_loss_names_follow_the_method():
    names = {
        m: dr.Config(method=m).value_loss_name for m in ("xql", "iql", "bc", "recoil")
    }
    assert names == {
        "xql": "gumbel",
        "iql": "expectile",
        "bc": None,
        "recoil": "gumbel",
    }
    for f, name in (
        ("chi_square", "chi_square"),
        ("total_variation", "total_variation"),
        ("reverse_kl", "gumbel"),
    ):
        assert dr.Config(method="fdvl", f=f).value_loss_name == name
    assert math.isnan(dr.Config().random_return)


@pytest.mark.parametrize("alpha", [1e-4, 0.3, 1.0, 50.0])
def test_fdvl_temperature_scales_the_conjugate(alpha):
    """alpha * l(x / alpha): chi-square's quadratic term / alpha; TV unchanged."""
    x = np.random.default_rng(3).normal(scale=2.0, size=64).astype(np.float32)
    lam = 0.7
    chi = dr.Config(method="fdvl", f="chi_square", lam=lam, alpha=alpha)
    tv = dr.Config(method="fdvl", f="total_variation", lam=lam, alpha=alpha)
    x64 = x.astype(np.float64)
    want_chi = np.mean(
        lam * np.maximum(x64 + x64**2 / (4 * alpha), 0) - (1 - lam) * x64
    )
    want_tv = np.mean(lam * np.maximum(x64, 0) - (1 - lam) * x64)
    got_chi = jax.jit(lambda x, c: dr.value_objective(x, c))(jnp.asarray(x), chi)
    got_tv = dr.value_objective(jnp.asarray(x), tv)
    np.testing.assert_allclose(got_chi, want_chi, rtol=1e-5)
    np.testing.assert_allclose(got_tv, want_tv, rtol=1e-5, atol=1e-6)
    assert np.isfinite(float(got_chi))  # no exponential: finite at any alpha


def test_padded_data_with_data_size_samples_exactly_like_the_data():
    """Zero rows past ``data_size`` are never sampled; the valid part is sampled
    as the unpadded dataset is (same key, same batch), so a run on padded data
    equals the run on the data."""
    data = _hand_batch(np.arange(70) % 7)
    data = data.replace(reward=jnp.arange(1.0, 71.0))  # row id + 1 (padding: 0)
    n = data.reward.shape[0]
    pad = lambda d, k: jax.tree.map(
        lambda x: jnp.concatenate([x, jnp.zeros((k, *x.shape[1:]), x.dtype)]), d
    )
    config = dr.Config(method="recoil", hidden_sizes=(8,), batch_size=512)
    expert = jax.tree.map(lambda x: x[:40], data)
    key = lambda: jax.random.key(0)  # the same key, fresh for every use
    want = dr.sample_batch(data, expert, key(), config)
    got = dr.sample_batch(pad(data, 30), pad(expert, 7), key(), config, n, 40)
    chex.assert_trees_all_equal(got, want)
    sample = jax.jit(dr.sample_batch, static_argnums=3)
    small = sample(pad(data, 30), pad(expert, 7), key(), config, 25, 10)
    rows = np.asarray(small.data.reward)
    assert rows.min() >= 1 and rows.max() <= 25 and len(np.unique(rows)) == 25
    assert np.asarray(small.expert.reward).max() <= 10
    xql = config.replace(method="xql")
    state = dr.init_from_data(key(), ENV, ENV_PARAMS, xql, pad(data, 5))
    assert int(state.data_size) == n + 5 and state.expert_size is None
    state = dr.init_from_data(key(), ENV, ENV_PARAMS, config, data, expert, 60, 30)
    assert int(state.data_size) == 60 and int(state.expert_size) == 30
    for size in (0, n + 1):
        with pytest.raises(ConfigError, match="data_size"):
            dr.init_from_data(key(), ENV, ENV_PARAMS, config, data, data, size)
    with pytest.raises(ConfigError, match="expert_size"):
        dr.init_from_data(key(), ENV, ENV_PARAMS, xql, data, expert_size=3)
