"""Tests for jaxrl.agents.mvi_tabular: M-VI / MVI(q) against independent NumPy loops.

References written here (float64 loops): the MVI(q) sweep with a bisection (or
sort, for q = 2) normaliser, soft VI by log-sum-exp, Tsallis VI by sparsemax.
Closed forms: alpha = tau = 0 is value iteration; the M-VI(alpha, tau) limit
policy is the soft-optimal policy at temperature (1 - alpha) tau and its action
gaps are the soft-optimal ones divided by 1 - alpha (ALGORITHMS.md 1.1).
"""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import testing
from jaxrl.agents import mvi_tabular as mvi
from jaxrl.agents import vi_tabular as vi
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.ops import exact_dp, regularized, tsallis

SHORT = mvi.Config(num_chunks=2, iters_per_chunk=10, oracle_iters=30)
LONG = mvi.Config(num_chunks=1, iters_per_chunk=400, oracle_iters=30)
NEG_INF = -math.inf


def _train(config, env_params, key):
    return mvi.make_train(config, None, env_params)(key)


def _key(seed=0):
    """A fresh typed key (the same seed twice gives the same noise draws)."""
    return jax.random.key(seed)


TRAIN = jax.jit(_train)


@pytest.fixture(scope="module")
def mdp_params():
    """A dense random MDP, S=6, A=3, gamma=0.9 (NumPy randomness)."""
    mdp = testing.random_mdp(np.random.default_rng(7), 6, 3, gamma=0.9)
    return fm.make_env_params(mdp)


# ----------------------------------------------------------------- NumPy references


def np_threshold(z, q):
    """psi with sum_a exp_q(z_a - psi) = 1: logsumexp at q = 1, else bisection."""
    z = np.asarray(z, np.float64)
    top = z.max()
    if q == 1.0:
        return top + math.log(np.exp(z - top).sum())

    def total(psi):
        return (np.maximum(1.0 + (q - 1.0) * (z - psi), 0.0) ** (1.0 / (q - 1.0))).sum()

    lo, hi = top, top + (1.0 - (1.0 / len(z)) ** (q - 1.0)) / (q - 1.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if total(mid) > 1.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def np_sparsemax(z):
    """Sparsemax by sorting (Martins and Astudillo 2016), independent of bisection."""
    zs = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    support = 1.0 + k * zs > np.cumsum(zs)
    size = k[support].max()
    psi = (zs[:size].sum() - 1.0) / size
    return np.maximum(z - psi, 0.0)


def np_policy_and_log(qv, tau, q):
    """(pi, tau ln_q pi) of one state's values by plain float64 formulas."""
    qv = np.asarray(qv, np.float64)
    if tau == 0.0:
        ties = (qv == qv.max()).astype(np.float64)
        return ties / ties.sum(), (qv - qv.max() if q == 1.0 else np.zeros_like(qv))
    z = qv / tau
    psi = np_threshold(z, q)
    if q == 1.0:
        pi = np.exp(z - psi)
        return pi / pi.sum(), tau * (z - psi)
    pi = np.maximum(1.0 + (q - 1.0) * (z - psi), 0.0) ** (1.0 / (q - 1.0))
    pi = pi / pi.sum()
    return pi, tau * (pi ** (q - 1.0) - 1.0) / (q - 1.0)


def np_mvi_step(P, R, gamma, Q, alpha, tau, q, l0):
    """One noise-free MVI(q) sweep with explicit loops over states and actions."""
    S, A = R.shape
    v = np.zeros(S)
    log_pi = np.zeros((S, A))
    for s in range(S):
        pi, log_pi[s] = np_policy_and_log(Q[s], tau, q)
        v[s] = sum(pi[a] * (Q[s, a] - log_pi[s, a]) for a in range(A))
    out = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            bonus = alpha * min(max(log_pi[s, a], l0), 0.0)
            out[s, a] = (
                R[s, a] + bonus + gamma * sum(P[s, a, t] * v[t] for t in range(S))
            )
    return out


def np_mvi(P, R, gamma, K, alpha, tau, q, l0):
    """K sweeps from zero: the tables q_1..q_K and residuals max|T q_k - q_k|."""
    Q = np.zeros(R.shape)
    tables, residuals = [], []
    for _ in range(K):
        new = np_mvi_step(P, R, gamma, Q, alpha, tau, q, l0)
        residuals.append(np.abs(new - Q).max())
        Q = new
        tables.append(Q)
    return tables, np.array(residuals)


def np_soft_vi(P, R, gamma, tau, num_iters=2000):
    """Soft-optimal q at temperature tau: q <- R + gamma P tau logsumexp(q / tau)."""
    Q = np.zeros(R.shape)
    for _ in range(num_iters):
        top = Q.max(-1)
        v = top + tau * np.log(np.exp((Q - top[:, None]) / tau).sum(-1))
        Q = R + gamma * P @ v
    return Q


def np_tsallis2_vi(P, R, gamma, tau, num_iters=2000):
    """Tsallis (q = 2) regularised VI.

    ``pi = sparsemax(q / tau)``, ``v = <pi, q - tau ln_2 pi>``, ``ln_2 pi = pi - 1``.
    """
    Q = np.zeros(R.shape)
    for _ in range(num_iters):
        v = np.zeros(R.shape[0])
        for s in range(R.shape[0]):
            pi = np_sparsemax(Q[s] / tau)
            v[s] = pi @ (Q[s] - tau * (pi - 1.0))
        Q = R + gamma * P @ v
    return Q


def np_value(P, R, mu0, gamma, pi):
    """(J(pi), Q^pi) by a float64 linear solve."""
    v = testing.np_policy_evaluation(P, R, gamma, pi)
    return mu0 @ v, R + gamma * P @ v


# ----------------------------------------------------------------------- exactness

CASES = [
    # alpha, tau, q, l0
    (0.9, 0.03, 1.0, NEG_INF),  # M-DQN's values, unclipped (the exact theory)
    (0.9, 0.3, 1.0, -0.05),  # clipping active
    (0.5, 0.2, 1.5, NEG_INF),  # bisection normaliser
    (0.9, 0.5, 2.0, NEG_INF),  # sparsemax
    (0.7, 0.4, 3.0, -0.1),
    (0.0, 0.0, 1.0, NEG_INF),  # value iteration
    (0.6, 0.0, 1.0, NEG_INF),  # advantage learning (tau = 0)
]


class TestExactness:
    @pytest.mark.parametrize(("alpha", "tau", "q", "l0"), CASES)
    def test_matches_numpy_loops(self, mdp_params, alpha, tau, q, l0):
        config = SHORT.replace(alpha=alpha, tau=tau, q=q, l0=l0)
        state, metrics = TRAIN(config, mdp_params, _key())
        P, R, mu0, g = testing.np_mdp(mdp_params.mdp)
        K = SHORT.num_iters
        tables, residuals = np_mvi(P, R, g, K, alpha, tau, q, l0)
        scale = max(1.0, np.abs(tables[-1]).max())
        np.testing.assert_allclose(state.q, tables[-1], atol=2e-5 * scale)
        np.testing.assert_allclose(metrics["dp/residual"], residuals, atol=2e-5 * scale)
        q_star = testing.np_policy_iteration(P, R, g)
        j_star = mu0 @ q_star.max(-1)
        sub, sub_greedy, gap = [], [], []
        for Q in tables:
            pi = np.stack([np_policy_and_log(Q[s], tau, q)[0] for s in range(len(Q))])
            j_pi, q_pi = np_value(P, R, mu0, g, pi)
            sub.append(j_star - j_pi)
            gap.append(np.abs(q_star - q_pi).max())
            sub_greedy.append(j_star - np_value(P, R, mu0, g, testing.np_greedy(Q))[0])
        np.testing.assert_allclose(metrics["dp/suboptimality"], sub, atol=1e-4)
        np.testing.assert_allclose(
            metrics["dp/suboptimality_greedy"], sub_greedy, atol=1e-4
        )
        np.testing.assert_allclose(metrics["dp/value_gap"], gap, atol=1e-4)
        assert set(metrics) == {
            "dp/residual",
            "dp/suboptimality",
            "dp/suboptimality_greedy",
            "dp/value_gap",
        }
        assert int(state.step) == K

    def test_vi_limit_equals_value_iteration_and_vi_agent(self, mdp_params):
        config = SHORT.replace(alpha=0.0, tau=0.0)
        state, metrics = TRAIN(config, mdp_params, _key())
        q_vi, res_vi = exact_dp.value_iteration(mdp_params.mdp, SHORT.num_iters)
        np.testing.assert_allclose(state.q, q_vi, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(metrics["dp/residual"], res_vi, rtol=1e-6, atol=1e-6)
        # ... also with noise: the same draws as the vi_tabular agent, sweep by sweep.
        noisy = config.replace(noise_std=0.3)
        vi_cfg = vi.Config(
            num_chunks=2, iters_per_chunk=10, oracle_iters=30, noise_std=0.3
        )
        s_mvi, m_mvi = TRAIN(noisy, mdp_params, _key())
        s_vi, m_vi = jax.jit(vi.make_train(vi_cfg, None, mdp_params))(_key())
        np.testing.assert_allclose(s_mvi.q, s_vi.q, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(
            m_mvi["dp/suboptimality_greedy"], m_vi["dp/suboptimality"], atol=1e-5
        )
        # at tau = 0 the regularised policy is the greedy one (no ties here)
        np.testing.assert_allclose(
            m_mvi["dp/suboptimality"], m_mvi["dp/suboptimality_greedy"], atol=1e-6
        )

    def test_mvi_q1_equals_munchausen_ops(self, mdp_params):
        """q = 1 is M-VI composed from jaxrl.ops.regularized (not the Tsallis ops)."""
        alpha, tau, l0 = 0.8, 0.2, -0.3
        mdp = mdp_params.mdp
        q = jnp.zeros_like(mdp.R)
        for _ in range(SHORT.num_iters):
            log_pi = jax.vmap(regularized.scaled_log_softmax, (0, None))(q, tau)
            v = jax.vmap(regularized.soft_value, (0, None))(q, tau)
            q = exact_dp.q_from_v(mdp, v) + alpha * jnp.clip(log_pi, l0, 0.0)
        config = SHORT.replace(alpha=alpha, tau=tau, q=1.0, l0=l0)
        state, _ = TRAIN(config, mdp_params, _key())
        np.testing.assert_allclose(state.q, q, rtol=1e-5, atol=1e-5)

    def test_loss_is_the_backup_residual(self, mdp_params):
        config = SHORT.replace(alpha=0.7, tau=0.2, q=2.0)
        P, R, _, g = testing.np_mdp(mdp_params.mdp)
        rng = np.random.default_rng(1)
        q0 = rng.normal(size=R.shape)
        q1 = rng.normal(size=R.shape)
        value, metrics = mvi.loss(
            jnp.asarray(q0, jnp.float32),
            jnp.asarray(q1, jnp.float32),
            mdp_params.mdp,
            config,
        )
        diff = q0 - np_mvi_step(P, R, g, q1, 0.7, 0.2, 2.0, NEG_INF)
        np.testing.assert_allclose(value, np.abs(diff).max(), rtol=1e-5)
        np.testing.assert_allclose(metrics["dp/mse"], np.mean(diff**2), rtol=1e-4)


# ------------------------------------------------------------------- fixed points


class TestFixedPoints:
    def test_soft_vi(self, mdp_params):
        tau = 0.2
        state, metrics = TRAIN(LONG.replace(alpha=0.0, tau=tau), mdp_params, _key())
        P, R, _, g = testing.np_mdp(mdp_params.mdp)
        np.testing.assert_allclose(state.q, np_soft_vi(P, R, g, tau), atol=5e-5)
        assert metrics["dp/residual"][-1] < 1e-5

    def test_mvi_limit_is_soft_optimal_with_scaled_gaps(self, mdp_params):
        alpha, tau = 0.8, 0.25
        tau_e = (1.0 - alpha) * tau
        state, metrics = TRAIN(LONG.replace(alpha=alpha, tau=tau), mdp_params, _key())
        P, R, _, g = testing.np_mdp(mdp_params.mdp)
        q_soft = np_soft_vi(P, R, g, tau_e)
        pi_soft = np.exp((q_soft - q_soft.max(-1, keepdims=True)) / tau_e)
        pi_soft /= pi_soft.sum(-1, keepdims=True)
        pi_mvi = mvi.policy(state.q, LONG.replace(alpha=alpha, tau=tau))
        np.testing.assert_allclose(pi_mvi, pi_soft, atol=1e-4)
        gaps_mvi = np.asarray(state.q) - np.asarray(state.q)[:, :1]
        gaps_soft = q_soft - q_soft[:, :1]
        np.testing.assert_allclose(gaps_mvi, gaps_soft / (1.0 - alpha), atol=2e-4)
        assert np.abs(gaps_soft).max() > 0.1  # the gaps are not trivially zero
        assert metrics["dp/residual"][-1] < 1e-4

    def test_tsallis_q2_alpha0_is_tsallis_vi(self, mdp_params):
        tau = 0.5
        config = LONG.replace(alpha=0.0, tau=tau, q=2.0)
        state, _ = TRAIN(config, mdp_params, _key())
        P, R, _, g = testing.np_mdp(mdp_params.mdp)
        q_ref = np_tsallis2_vi(P, R, g, tau)
        np.testing.assert_allclose(state.q, q_ref, atol=5e-5)
        # a sparse policy: some action has zero probability somewhere
        assert np.any(np.asarray(mvi.policy(state.q, config)) == 0.0)

    def test_q_to_one_approaches_mvi(self, mdp_params):
        base = SHORT.replace(alpha=0.9, tau=0.1)
        ref, _ = TRAIN(base, mdp_params, _key())
        errors = []
        for q in (1.1, 1.01, 1.0 + 1e-4):
            state, _ = TRAIN(base.replace(q=q), mdp_params, _key())
            errors.append(float(jnp.max(jnp.abs(state.q - ref.q))))
        assert errors[0] > errors[1] > errors[2], errors
        assert errors[2] < 2e-3, errors


# ----------------------------------------------------------------- noise averaging


def test_noise_averaging_mvi_beats_vi(key):
    """sigma = 0.5 on a small Garnet: M-VI(0.99) ends far closer to optimal than VI."""
    env, params = fm.make_garnet_env(
        seed=3, num_states=8, num_actions=3, branching=3, gamma=0.9
    )
    base = mvi.Config(num_chunks=1, iters_per_chunk=150, oracle_iters=30, noise_std=0.5)
    configs = stack_configs(
        [base.replace(alpha=0.0, tau=0.0), base.replace(alpha=0.99, tau=0.01)]
    )
    keys = jax.random.split(key, 48)

    def final(config, k):
        return _train(config, params, k)[1]["dp/suboptimality"][-1]

    out = jax.jit(jax.vmap(jax.vmap(final, (None, 0)), (0, None)))(configs, keys)
    vi_sub, mvi_sub = np.asarray(out)
    diff = vi_sub - mvi_sub  # paired: same noise draws (common random numbers)
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert diff.mean() > 5 * se, (vi_sub.mean(), mvi_sub.mean(), se)
    assert mvi_sub.mean() < 0.5 * vi_sub.mean(), (vi_sub.mean(), mvi_sub.mean())


# ----------------------------------------------------------- randomness and tracing


def test_vmapped_seeds_draw_different_noise(mdp_params):
    def train(config, k):
        return _train(config, mdp_params, k)[0].q

    seeds = jax.jit(jax.vmap(train, (None, 0)))

    def keys():
        return jax.random.split(jax.random.key(5), 3)

    noisy = seeds(SHORT.replace(noise_std=0.1), keys())
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.allclose(noisy[i], noisy[j])
    chex.assert_trees_all_equal(noisy, seeds(SHORT.replace(noise_std=0.1), keys()))
    exact = seeds(SHORT.replace(noise_std=0.0), keys())  # deterministic without noise
    chex.assert_trees_all_close(exact[0], exact[1], exact[2])


def test_traced_hyperparameters_do_not_retrace(mdp_params):
    train = jax.jit(chex.assert_max_traces(_train, n=1))
    outs = [
        train(SHORT.replace(**kw), mdp_params, _key())[0].q
        for kw in (
            {},
            {"alpha": 0.5},
            {"tau": 0.2},
            {"q": 2.0},
            {"l0": -0.01},
            {"noise_std": 0.1},
            {"epsilon": 0.3},
        )
    ]
    for out in outs[1:-1]:
        assert not np.allclose(out, outs[0])
    chex.assert_trees_all_equal(outs[-1], outs[0])  # epsilon only affects act


def test_chunked_run_equals_train(mdp_params):
    config = SHORT.replace(noise_std=0.2, q=1.5)
    run = jax.jit(mvi.make_run(config, None, mdp_params))
    state = mvi.init(_key(), None, mdp_params, config)
    chunks = []
    for _ in range(config.num_chunks):
        state, metrics = run(state)
        chunks.append(metrics)
    final, metrics = TRAIN(config, mdp_params, _key())
    chex.assert_trees_all_close(state.q, final.q, rtol=1e-6)
    joined = jax.tree.map(lambda *xs: jnp.concatenate(xs), *chunks)
    chex.assert_trees_all_close(joined, metrics, rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------- static q (D16)

STATIC_Q = mvi.Config(alpha=0.9, tau=0.3, l0=-1.0)


def _table(mdp):
    rng = np.random.default_rng(5)
    return jnp.asarray(2.0 * rng.normal(size=mdp.R.shape), jnp.float32)


@pytest.mark.parametrize("q", [1.0, 2.0, 1.5])
def test_static_and_traced_q_give_the_same_backup(mdp_params, q):
    """A Python-float q (static normaliser) and a traced q: bitwise the same table."""
    mdp, config = mdp_params.mdp, STATIC_Q.replace(q=q)
    table = _table(mdp)
    eager_static = mvi.backup(mdp, table, config)
    eager_traced = mvi.backup(mdp, table, config.replace(q=jnp.float32(q)))
    jit_static = jax.jit(lambda m, t: mvi.backup(m, t, config))(mdp, table)
    jit_traced = jax.jit(mvi.backup)(mdp, table, config)  # config as an argument
    np.testing.assert_array_equal(eager_static, eager_traced)
    np.testing.assert_array_equal(jit_static, jit_traced)
    ref, _ = testing.numpy_mvi_sweeps_batched(
        np.asarray(mdp.P), np.asarray(mdp.R), float(mdp.gamma), np.asarray(table)[None],
        alpha=0.9, tau=0.3, q=q, l0=-1.0, num_sweeps=1,
    )  # fmt: skip
    np.testing.assert_allclose(eager_static, ref[0], atol=1e-5)
    np.testing.assert_allclose(jit_static, ref[0], atol=1e-5)
    # Only the static q's normaliser is traced: sort for q = 2 (a max/min network
    # for at most tsallis._SORT_NETWORK_MAX actions), bisection otherwise.
    jaxpr = str(jax.make_jaxpr(lambda t: mvi.backup(mdp, t, config))(table))
    by_network = table.shape[-1] <= tsallis._SORT_NETWORK_MAX
    assert ("sort[" in jaxpr) == (q == 2.0 and not by_network)
    if q == 2.0 and by_network:
        assert "max" in jaxpr and "min" in jaxpr
    assert ("scan[" in jaxpr or "while[" in jaxpr) == (q not in (1.0, 2.0))


def test_vmap_over_traced_q_compiles_once(mdp_params):
    mdp = mdp_params.mdp
    table = _table(mdp)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def sweep(configs):
        return jax.vmap(lambda c: mvi.backup(mdp, table, c))(configs)

    grid = (1.0, 1.5, 2.0)
    out = sweep(stack_configs([STATIC_Q.replace(q=q) for q in grid]))
    sweep(stack_configs([STATIC_Q.replace(q=q) for q in (2.0, 3.0, 1.0)]))
    for row, q in zip(out, grid, strict=True):
        static = mvi.backup(mdp, table, STATIC_Q.replace(q=q))
        # Batched over q (one select): the same table to float32 rounding.
        np.testing.assert_allclose(row, static, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------ act


class TestAct:
    TABLE = jnp.array([[0.0, 1.0, 0.9], [2.0, 0.0, 2.0]])

    def _sample(self, config, obs, n=4000, greedy=False):
        keys = jax.random.split(jax.random.key(11), n)
        fn = jax.jit(
            jax.vmap(lambda k: mvi.act(self.TABLE, obs, k, config, greedy=greedy))
        )
        return np.asarray(fn(keys))

    def test_greedy_and_obs_formats(self):
        config = mvi.Config(tau=1.0, epsilon=1.0)
        for obs in (jnp.asarray(0), jax.nn.one_hot(0, 2)):
            assert set(self._sample(config, obs, n=50, greedy=True)) == {1}
        assert set(self._sample(config, jnp.asarray(1), n=50, greedy=True)) == {0}

    def test_both_observation_formats_give_the_same_actions(self):
        # every state, equal keys, sampling with exploration and greedy: one-hot
        # and index observations select the same row, hence the same actions
        config = mvi.Config(tau=0.5, q=2.0, epsilon=0.3)

        @jax.jit
        def both(states):
            out = []
            for obs in (states, jax.nn.one_hot(states, 2)):
                for greedy in (False, True):
                    keys = jax.random.split(jax.random.key(4), 200)  # equal keys
                    act = functools.partial(
                        mvi.act, self.TABLE, config=config, greedy=greedy
                    )
                    per_key = jax.vmap(act, (None, 0))
                    out.append(jax.vmap(per_key, (0, None))(obs, keys))
            return out

        sampled, greedy, sampled_hot, greedy_hot = both(jnp.arange(2))
        np.testing.assert_array_equal(sampled, sampled_hot)
        np.testing.assert_array_equal(greedy, greedy_hot)
        np.testing.assert_array_equal(greedy[:, 0], [1, 0])
        with pytest.raises(ConfigError, match="one-hot observations must have 2"):
            mvi.act(self.TABLE, jnp.ones(3), jax.random.key(0), config)

    def test_samples_follow_the_regularised_policy(self):
        config = mvi.Config(tau=0.5, q=2.0)
        pi = np.asarray(mvi.policy(self.TABLE, config))[0]  # sparsemax([0, 2, 1.8])
        np.testing.assert_allclose(
            pi, np_sparsemax(np.array([0.0, 2.0, 1.8])), atol=1e-6
        )
        freq = np.bincount(self._sample(config, jnp.asarray(0)), minlength=3) / 4000
        np.testing.assert_allclose(freq, pi, atol=0.03)
        assert freq[0] == 0.0  # outside the sparse support
        # tau = 0: uniform over the tied maximisers of state 1
        freq = (
            np.bincount(self._sample(mvi.Config(tau=0.0), jnp.asarray(1)), minlength=3)
            / 4000
        )
        np.testing.assert_allclose(freq, [0.5, 0.0, 0.5], atol=0.03)

    def test_epsilon_random(self):
        freq = (
            np.bincount(
                self._sample(mvi.Config(tau=0.0, epsilon=1.0), jnp.asarray(0)),
                minlength=3,
            )
            / 4000
        )
        np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.03)


# ------------------------------------------------------------------------- validate


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", -0.1),
        ("alpha", 1.5),
        ("tau", -0.01),
        ("q", 0.5),
        ("noise_std", -1.0),
        ("l0", 0.5),
        ("epsilon", 1.5),
        ("iters_per_chunk", 0),
        ("normalizer_iters", 0),
    ],
)
def test_validate_names_the_field(mdp_params, field, value):
    config = mvi.Config().replace(**{field: value})
    with pytest.raises(ConfigError, match=field):
        config.validate()
    with pytest.raises(ConfigError, match=field):
        mvi.make_train(config, None, mdp_params)


def test_defaults_are_valid_and_need_a_finite_mdp():
    config = mvi.Config()
    config.validate()
    assert (config.alpha, config.tau, config.q, config.l0) == (0.9, 0.03, 1.0, NEG_INF)
    with pytest.raises(ConfigError, match="FiniteMDP"):
        mvi.make_train(config, None, object())
