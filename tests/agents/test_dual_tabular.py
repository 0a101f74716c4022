"""Tests for jaxrl.agents.dual_tabular: exact dual-RL DP against independent NumPy loops.

References written here (float64): value iteration (``jaxrl.testing``), value
iteration restricted to the data's actions (in-sample max), policy evaluation of
the data's behaviour policy, and a generic dual-RL DP loop whose value step is a
NumPy/SciPy solve of each loss (log-mean-exp, bisection, inverted-CDF quantile,
``minimize_scalar``). Closed forms: the XQL value is sandwiched as
``max_{a in data} Q - beta log(1/mu_min) <= V <= max_{a in data} Q``, so
``0 <= Q_in_sample - Q_beta <= gamma beta log(1/mu_min) / (1 - gamma)``.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, special

from jaxrl import testing
from jaxrl.agents import dual_tabular as dt
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError

S, A, GAMMA = 5, 3, 0.8
ITERS = 80  # gamma^ITERS ~ 2e-8
BASE = dt.Config(num_chunks=1, iters_per_chunk=ITERS, oracle_iters=30)


def _train(config, env_params, key, d_data):
    return dt.make_train_from_data(config, None, env_params)(key, d_data)


TRAIN = jax.jit(_train)  # one compile per static part of the config (value_loss)


@pytest.fixture(scope="module")
def setup():
    mdp = testing.random_mdp(np.random.default_rng(11), S, A, gamma=GAMMA)
    return mdp, fm.make_env_params(mdp)


def _partial_data(seed):
    """A random data distribution over a random support (>= 1 action per state)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((S, A)) < 0.5
    mask[np.arange(S), rng.integers(0, A, S)] = True
    d = np.where(mask, rng.random((S, A)) + 0.1, 0.0)
    return (d / d.sum()).astype(np.float32)


def _full_data(seed):
    rng = np.random.default_rng(seed)
    d = rng.random((S, A)) + 0.2
    return (d / d.sum()).astype(np.float32)


def _mu(d):
    d = np.asarray(d, np.float64)
    return d / d.sum(-1, keepdims=True)


# ----------------------------------------------------------------- NumPy references


def np_in_sample_vi(P, R, gamma, d, iters=400):
    """Value iteration with the max over the data's actions only."""
    q = np.zeros(R.shape)
    for _ in range(iters):
        v = np.where(d > 0, q, -np.inf).max(-1)
        q = R + gamma * np.einsum("sat,t->sa", P, v)
    return q


def np_value_step(qs, mu, name, param):
    """argmin_v E_mu loss(q - v) for one state (independent solvers)."""
    inside = mu > 0
    q, w = qs[inside], mu[inside] / mu[inside].sum()
    if name == "gumbel":
        return param * special.logsumexp(q / param, b=w)
    if name == "total_variation":
        order = np.argsort(q)
        cdf = np.cumsum(w[order])
        level = (2 * param - 1) / param
        return q[order][np.argmax(cdf >= level - 1e-12)]
    if name == "expectile":
        lo, hi = q.min(), q.max()
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            foc = np.sum(w * np.where(q < mid, 1 - param, param) * (q - mid))
            lo, hi = (mid, hi) if foc > 0 else (lo, mid)
        return 0.5 * (lo + hi)

    def loss(v):  # chi_square (f-DVL code form)
        x = q - v
        return np.sum(w * (param * np.maximum(x + x**2 / 4, 0) - (1 - param) * x))

    return optimize.minimize_scalar(
        loss,
        bounds=(q.min() - 10, q.max() + 10),
        method="bounded",
        options={"xatol": 1e-11},
    ).x


def np_dual_dp(P, R, gamma, d, name, param, iters):
    mu = _mu(d)
    q = np.zeros(R.shape)
    for _ in range(iters):
        v = np.array(
            [np_value_step(q[s], mu[s], name, param) for s in range(R.shape[0])]
        )
        q = R + gamma * np.einsum("sat,t->sa", P, v)
    v = np.array([np_value_step(q[s], mu[s], name, param) for s in range(R.shape[0])])
    return q, v


# ------------------------------------------------------------------------- limits


def test_gumbel_beta_to_zero_with_full_coverage_is_value_iteration(setup):
    mdp, params = setup
    P, R, _, gamma = testing.np_mdp(mdp)
    q_star, _ = testing.np_value_iteration(P, R, gamma, 300)
    d = _full_data(0)
    betas = [0.3, 0.03, 0.003]
    configs = stack_configs([BASE.replace(beta=b) for b in betas])
    state, metrics = jax.vmap(TRAIN, (0, None, None, None))(
        configs, params, jax.random.key(0), d
    )
    log_inv_mu = np.log(1.0 / _mu(d).min())
    errors = []
    for i, beta in enumerate(betas):
        gap = q_star - np.asarray(state.q[i], np.float64)
        assert gap.min() >= -1e-5  # soft max <= max
        assert gap.max() <= gamma * beta * log_inv_mu / (1 - gamma) + 1e-5
        errors.append(np.abs(gap).max())
    assert errors[0] > errors[1] > errors[2]
    chex.assert_trees_all_equal(  # the extracted policy's mode is optimal
        np.argmax(np.asarray(state.q[2]), -1), np.argmax(q_star, -1)
    )
    assert float(metrics["dp/residual"][2, -1]) < 1e-5


def test_gumbel_beta_to_zero_with_partial_coverage_is_in_sample_vi(setup):
    mdp, params = setup
    P, R, _, gamma = testing.np_mdp(mdp)
    d = _partial_data(1)
    q_in = np_in_sample_vi(P, R, gamma, d)
    q_star, _ = testing.np_value_iteration(P, R, gamma, 300)
    assert np.abs(q_in - q_star).max() > 0.05  # the restriction matters here
    beta = 1e-3
    state, _ = TRAIN(BASE.replace(beta=beta), params, jax.random.key(0), d)
    gap = q_in - np.asarray(state.q, np.float64)
    log_inv_mu = np.log(1.0 / _mu(d)[d > 0].min())
    assert gap.min() >= -1e-5
    assert gap.max() <= gamma * beta * log_inv_mu / (1 - gamma) + 1e-5
    # the extracted policy never leaves the data
    assert float(jnp.max(jnp.where(d > 0, 0.0, state.pi))) == 0.0


def test_total_variation_lam_one_is_in_sample_vi_exactly(setup):
    mdp, params = setup
    P, R, _, gamma = testing.np_mdp(mdp)
    d = _partial_data(2)
    config = BASE.replace(value_loss="total_variation", lam=1.0)
    state, _ = TRAIN(config, params, jax.random.key(0), d)
    np.testing.assert_allclose(state.q, np_in_sample_vi(P, R, gamma, d), atol=1e-5)


@pytest.mark.parametrize("beta", [math.inf, 1e4])
def test_gumbel_beta_to_infinity_is_behaviour_evaluation(setup, beta):
    mdp, params = setup
    P, R, _, gamma = testing.np_mdp(mdp)
    d = _partial_data(3)
    q_mu = testing.np_policy_q(P, R, gamma, _mu(d))
    state, _ = TRAIN(BASE.replace(beta=beta), params, jax.random.key(0), d)
    tol = 1e-5 if math.isinf(beta) else 2e-3
    np.testing.assert_allclose(state.q, q_mu, atol=tol)


# ------------------------------------------------------------ generic fixed points


@pytest.mark.parametrize(
    "name, param",
    [
        ("gumbel", 0.7),
        ("chi_square", 0.6),
        ("total_variation", 0.8),
        ("expectile", 0.8),
    ],
)
@pytest.mark.parametrize("coverage", ["full", "partial"])
def test_fixed_point_matches_numpy_dual_dp(setup, name, param, coverage):
    mdp, params = setup
    P, R, _, gamma = testing.np_mdp(mdp)
    d = _full_data(4) if coverage == "full" else _partial_data(4)
    field = {"gumbel": "beta", "expectile": "expectile"}.get(name, "lam")
    config = BASE.replace(value_loss=name, **{field: param})
    state, metrics = TRAIN(config, params, jax.random.key(0), d)
    q_ref, v_ref = np_dual_dp(P, R, gamma, d, name, param, iters=ITERS)
    np.testing.assert_allclose(state.q, q_ref, atol=2e-4)
    np.testing.assert_allclose(state.v, v_ref, atol=2e-4)
    # contraction: residuals shrink at least geometrically with rate gamma
    res = np.asarray(metrics["dp/residual"], np.float64)
    assert np.all(res[1:40] <= gamma * res[:39] + 1e-5)
    # the policy is the exact AWR extraction of (q, v) under the data
    q, v = np.asarray(state.q, np.float64), np.asarray(state.v, np.float64)
    w = np.minimum(np.exp(config.awr_beta * (q - v[:, None])), config.max_weight)
    pi = _mu(d) * w
    np.testing.assert_allclose(state.pi, pi / pi.sum(-1, keepdims=True), atol=1e-5)


def test_awr_beta_zero_is_behaviour_cloning(setup):
    _, params = setup
    d = _partial_data(5)
    state, metrics = TRAIN(BASE.replace(awr_beta=0.0), params, jax.random.key(0), d)
    np.testing.assert_allclose(state.pi, _mu(d), atol=1e-6)
    assert np.all(np.isfinite(np.asarray(metrics["dp/suboptimality"])))


# -------------------------------------------------------------------- data and state


@pytest.mark.parametrize("eps", [0.0, 0.4, 1.0])
def test_default_data_is_the_occupancy_of_an_eps_greedy_expert(setup, eps):
    mdp, params = setup
    P, R, mu0, gamma = testing.np_mdp(mdp)
    state = dt.init(jax.random.key(0), None, params, BASE.replace(data_epsilon=eps))
    d = np.asarray(state.d_data, np.float64)
    np.testing.assert_allclose(d.sum(), 1.0, rtol=1e-5)
    # Bellman flow: sum_a d(s', a) = (1 - gamma) mu0(s') + gamma sum P(s'|s, a) d(s, a)
    flow = (1 - gamma) * mu0 + gamma * np.einsum("sat,sa->t", P, d)
    np.testing.assert_allclose(d.sum(-1), flow, atol=1e-6)
    greedy = testing.np_greedy(testing.np_policy_iteration(P, R, gamma))
    np.testing.assert_allclose(_mu(d), (1 - eps) * greedy + eps / A, atol=1e-5)
    np.testing.assert_allclose(state.pi, _mu(d), atol=1e-5)  # q = 0: BC


def test_make_train_uses_the_default_data_and_equals_init_plus_runs(setup):
    _, params = setup
    config = BASE.replace(iters_per_chunk=4, num_chunks=2, noise_std=0.1)
    final, metrics = jax.jit(dt.make_train(config, None, params))(jax.random.key(1))
    state = dt.init(jax.random.key(1), None, params, config)
    run = dt.make_run(config, None, params)  # not jitted: the scan runs eagerly
    chunks = []
    for _ in range(2):
        state, m = run(state)
        chunks.append(m)
    chex.assert_trees_all_close(final.params, state.params, atol=1e-6)
    chex.assert_trees_all_close(final.d_data, state.d_data, rtol=1e-6)
    joined = jax.tree.map(lambda *x: jnp.concatenate(x), *chunks)
    chex.assert_trees_all_close(joined, metrics, atol=1e-6)
    assert int(final.step) == 8


def test_vmap_over_beta_and_datasets_equals_separate_runs(setup):
    _, params = setup
    config = BASE.replace(noise_std=0.05)
    ds = np.stack([_partial_data(6), _full_data(7)])
    configs = stack_configs([config.replace(beta=0.2), config.replace(beta=2.0)])
    both, _ = jax.vmap(TRAIN, (0, None, None, 0))(
        configs, params, jax.random.key(2), ds
    )
    for i, beta in enumerate((0.2, 2.0)):
        single, _ = TRAIN(config.replace(beta=beta), params, jax.random.key(2), ds[i])
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], both.params), single.params, atol=1e-5
        )


def test_noise_seeds_differ_and_reproduce(setup):
    _, params = setup
    d = _full_data(8)
    config = BASE.replace(noise_std=0.2)
    train = jax.vmap(TRAIN, (None, None, 0, None))
    a, _ = train(config, params, jax.random.split(jax.random.key(3), 2), d)
    assert not np.allclose(a.q[0], a.q[1])
    b, _ = train(config, params, jax.random.split(jax.random.key(3), 2), d)
    chex.assert_trees_all_equal(a.params, b.params)


def test_loss_is_minimised_by_the_sweep(setup):
    mdp, params = setup
    d = jnp.asarray(_partial_data(9))
    config = BASE.replace(value_loss="expectile", expectile=0.7)
    state = dt.init_from_data(jax.random.key(0), None, params, config, d)
    state, _ = dt.update(state, mdp, config)  # nonzero tables
    target = state.params
    v_star = dt.state_values(target.q, d, config)
    q_star = dt.backup(mdp, target.v)
    cand = dt.Tables(q=q_star, v=v_star, pi=target.pi)
    grads = jax.grad(lambda p: dt.loss(p, target, dt.OfflineMDP(mdp, d), config)[0])(
        cand
    )
    np.testing.assert_allclose(grads.q, 0.0, atol=1e-6)
    np.testing.assert_allclose(grads.v, 0.0, atol=1e-5)
    # and moving away increases it
    base, _ = dt.loss(cand, target, dt.OfflineMDP(mdp, d), config)
    worse, _ = dt.loss(
        cand.replace(v=cand.v + 0.1), target, dt.OfflineMDP(mdp, d), config
    )
    assert float(worse) > float(base)


def test_act_follows_the_extracted_policy(setup):
    _, params = setup
    d = _full_data(10)
    state, _ = TRAIN(BASE.replace(awr_beta=1.0), params, jax.random.key(0), d)
    config = BASE.replace(epsilon=0.0)
    s = 2
    greedy = dt.act(state.params, jnp.int32(s), jax.random.key(0), config, greedy=True)
    assert int(greedy) == int(np.argmax(state.pi[s]))
    one_hot = jax.nn.one_hot(s, S)
    assert int(
        dt.act(state.params, one_hot, jax.random.key(0), config, greedy=True)
    ) == int(greedy)

    # every state, same keys, sampling with exploration: one-hot == index
    def per_state(obs):  # equal keys for every call and state
        keys = jax.random.split(jax.random.key(1), 64)
        act = jax.vmap(
            lambda o, k: dt.act(state.params, o, k, BASE.replace(epsilon=0.3)),
            in_axes=(None, 0),
        )
        return jax.jit(jax.vmap(act, in_axes=(0, None)))(obs, keys)

    np.testing.assert_array_equal(
        per_state(jnp.arange(S)), per_state(jax.nn.one_hot(jnp.arange(S), S))
    )
    sample = jax.jit(
        jax.vmap(lambda k, c: dt.act(state.params, jnp.int32(s), k, c), (0, None))
    )
    n = 20_000
    for eps, want in ((0.0, np.asarray(state.pi[s])), (1.0, np.full(A, 1 / A))):
        keys = jax.random.split(jax.random.key(5), n)
        acts = sample(keys, BASE.replace(epsilon=eps))
        freq = np.bincount(np.asarray(acts), minlength=A) / n
        np.testing.assert_allclose(freq, want, atol=0.015)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"value_loss": "huber"}, "value_loss"),
        ({"beta": 0.0}, "beta"),
        ({"beta": -1.0}, "beta"),
        ({"value_loss": "total_variation", "lam": 0.4}, "lam"),
        ({"lam": 0.0}, "lam"),
        ({"expectile": 1.0}, "expectile"),
        ({"awr_beta": -1.0}, "awr_beta"),
        ({"data_epsilon": 1.5}, "data_epsilon"),
        ({"iters_per_chunk": 0}, "iters_per_chunk"),
    ],
)
def test_bad_config(setup, overrides, field):
    _, params = setup
    with pytest.raises(ConfigError, match=field):
        dt.make_train(BASE.replace(**overrides), None, params)


@pytest.mark.parametrize(
    "d, message",
    [
        (np.ones((S, A + 1)), "shape"),
        (-np.ones((S, A)), "nonnegative"),
        (np.zeros((S, A)), "positive total mass"),
    ],
)
def test_bad_data(setup, d, message):
    _, params = setup
    with pytest.raises(ConfigError, match=message):
        dt.init_from_data(jax.random.key(0), None, params, BASE, d)


def test_needs_a_finite_mdp_env():
    with pytest.raises(ConfigError, match="dual_tabular needs a FiniteMDPEnv"):
        dt.make_train(BASE, None, object())
