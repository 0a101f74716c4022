"""Tests for jaxrl.agents.distributional_dp.split (Achab-Neu substate solver).

References written here: the exact return law of a Markov policy by
enumerating trajectories (``_np_law``), and a NumPy Monte Carlo execution of a
Markov policy (``_np_mc``), both independent of the library.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import distributional_dp as ddp_agent
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP


def _gamble_mdp():
    """s0: action 0 is a coin flip paying -4 or 0 (via s1/s2); action 1 pays -1.

    After the first step a second, identical choice at s3 (reached from s1, s2
    and the sure branch), then the terminal s4; gamma = 1, integer returns.
    """
    P = np.zeros((6, 2, 6))
    R = np.zeros((6, 2))
    for s in (0, 3):
        P[s, 0, 1 if s == 0 else 4] = 0.5
        P[s, 0, 2 if s == 0 else 5] = 0.5
        P[s, 1, 3 if s == 0 else 5] = 1.0
        R[s, 1] = -1.0
    R[1] = -4.0
    P[1, :, 3] = P[2, :, 3] = 1.0
    R[4] = -4.0
    P[4, :, 5] = 1.0
    P[5, :, 5] = 1.0
    f = jnp.float32
    return FiniteMDP(
        P=jnp.asarray(P, f),
        R=jnp.asarray(R, f),
        mu0=jnp.asarray(np.eye(6)[0], f),
        gamma=jnp.asarray(1.0, f),
    )


def _np_law(P, R, policy, s0, horizon):
    law = {}

    def walk(s, depth, g, prob):
        if depth == horizon:
            law[g] = law.get(g, 0.0) + prob
            return
        a = int(policy[s])
        for t in np.nonzero(P[s, a])[0]:
            walk(t, depth + 1, g + R[s, a], prob * P[s, a, t])

    walk(s0, 0, 0.0, 1.0)
    x = np.array(sorted(law))
    return x, np.array([law[k] for k in x])


def _np_mc(seed, P, R, mu0, gamma, policy, horizon, n):
    """Discounted returns of ``n`` episodes (all episodes stepped together)."""
    rng = np.random.default_rng(seed)
    policy = np.asarray(policy)
    s = rng.choice(len(mu0), size=n, p=mu0)
    out, disc = np.zeros(n), 1.0
    for _ in range(horizon):
        a = policy[s]
        out += disc * R[s, a]
        disc *= gamma
        cdf = np.cumsum(P[s, a], axis=-1)
        s = np.minimum((rng.random(n)[:, None] > cdf).sum(-1), P.shape[0] - 1)
    return out


CONFIG = ddp_agent.Config(
    num_atoms=17,
    v_min=-12.0,
    v_max=4.0,
    num_stocks=2,
    iters_per_chunk=4,
    eval_iters=4,
)


def test_safe_and_risky_policies_and_their_laws():
    mdp = _gamble_mdp()
    sol = jax.jit(ddp_agent.split_solve, static_argnums=1)(
        mdp, CONFIG.replace(alpha=0.5)
    )
    # safe: the sure -1 twice; risky: the coin flips
    assert sol.policies[0, 0] == 1 and sol.policies[0, 3] == 1
    assert sol.policies[1, 0] == 0 and sol.policies[1, 3] == 0
    P, R = np.asarray(mdp.P, np.float64), np.asarray(mdp.R, np.float64)
    z = np.asarray(CONFIG.support)
    for i in range(2):
        x, p = _np_law(P, R, np.asarray(sol.policies[i]), 0, horizon=4)
        law = np.zeros(len(z))
        law[np.round(x - z[0]).astype(int)] = p
        np.testing.assert_allclose(sol.laws[i], law, atol=1e-6)
        np.testing.assert_allclose(sol.mean[i], x @ p, atol=1e-5)
        before = np.concatenate([[0.0], np.cumsum(p)[:-1]])
        cvar = np.sum(np.clip(0.5 - before, 0.0, p) * x) / 0.5
        np.testing.assert_allclose(sol.cvar[i], cvar, atol=1e-5)
        # own substate values: mean consistent and above the CVaR
        v = np.asarray(sol.split_values[i])
        np.testing.assert_allclose(0.5 * v[0] + 0.5 * v[1], x @ p, atol=1e-5)
        assert cvar - 1e-5 <= v[0] <= x @ p + 1e-5
    np.testing.assert_allclose(sol.mean, [-2.0, -4.0], atol=1e-5)
    np.testing.assert_allclose(sol.cvar, [-2.0, -6.0], atol=1e-5)
    assert sol.split_values[0, 0] > sol.split_values[1, 0]  # safe maximises V-
    assert sol.split_values[1, 1] >= sol.split_values[0, 1]  # risky: V+ (own)
    # control values by hand: V-(s0) = -1 + CVaR_0.5{-1, 0} (sure, then sure);
    # V+(s0) = upper half of {-5, -4, -1, 0} (flip, the substates of s1 and s2)
    np.testing.assert_allclose(sol.initial, [-2.0, -0.5], atol=1e-6)


def test_law_matches_monte_carlo_on_a_random_mdp():
    rng = np.random.default_rng(0)
    S, A, gamma = 5, 3, 0.7
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.integers(-2, 3, size=(S, A)).astype(np.float64)
    mu0 = rng.dirichlet(np.ones(S))
    f = jnp.float32
    mdp = FiniteMDP(
        P=jnp.asarray(P, f),
        R=jnp.asarray(R, f),
        mu0=jnp.asarray(mu0, f),
        gamma=jnp.asarray(gamma, f),
    )
    config = CONFIG.replace(
        alpha=0.2, num_atoms=201, v_min=-8.0, v_max=8.0, iters_per_chunk=60,
        eval_iters=60,
    )  # fmt: skip
    sol = jax.jit(ddp_agent.split_solve, static_argnums=1)(mdp, config)
    g = _np_mc(1, P, R, mu0, gamma, np.asarray(sol.policies[0]), 40, 20_000)
    se = g.std() / np.sqrt(len(g))
    assert abs(g.mean() - float(sol.mean[0])) < 4 * se
    s = np.sort(g)
    assert abs(s[: len(s) // 5].mean() - float(sol.cvar[0])) < 0.2


def test_vmap_over_traced_alpha_equals_separate_runs():
    mdp = _gamble_mdp()
    alphas = jnp.array([0.25, 0.5, 1.0])
    run = jax.jit(
        jax.vmap(lambda a: ddp_agent.split_solve(mdp, CONFIG.replace(alpha=a)))
    )
    got = run(alphas)
    single = jax.jit(lambda a: ddp_agent.split_solve(mdp, CONFIG.replace(alpha=a)))
    for i, a in enumerate([0.25, 0.5, 1.0]):
        want = single(jnp.float32(a))
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], got), want, atol=1e-6
        )
    # alpha = 1: the worst-case substate is the ordinary MDP (mean-optimal)
    np.testing.assert_allclose(got.initial[2, 0], -2.0, atol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5, float("nan")])
def test_bad_alpha_is_one_error_naming_it(alpha):
    with pytest.raises(ConfigError, match="alpha"):
        ddp_agent.split_solve(_gamble_mdp(), CONFIG.replace(alpha=alpha))


def test_bad_gamma_and_sizes():
    mdp = _gamble_mdp()
    with pytest.raises(ConfigError, match="gamma"):
        ddp_agent.split_solve(mdp.replace(gamma=jnp.asarray(0.0)), CONFIG)
    with pytest.raises(ConfigError, match="eval_iters"):
        ddp_agent.split_solve(mdp, CONFIG.replace(eval_iters=0))
