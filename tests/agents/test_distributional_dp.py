"""Tests for jaxrl.agents.distributional_dp: objectives, Monte Carlo checks, contract pieces.

Monte Carlo references execute the stock-Markov policy in NumPy, written here
independently: the memory is the grid-stock index, started at c0 randomly
rounded onto the grid and updated by randomly rounding (c_k + r) / gamma.
"""

from __future__ import annotations

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import testing
from jaxrl.agents import distributional_dp as ddp_agent
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP, make_mdp
from jaxrl.ops import distributional as dist
from jaxrl.ops import distributional_dp as ddp

# --------------------------------------------------------------------- references


def _np_round(rng, stocks, c):
    """Randomly round stocks ``c[n]`` onto the grid (linear-interpolation weights)."""
    K = len(stocks)
    c = np.clip(c, stocks[0], stocks[-1])
    j = np.clip(np.searchsorted(stocks, c, side="right") - 1, 0, K - 2)
    w = (c - stocks[j]) / (stocks[j + 1] - stocks[j])
    return j + (rng.random(c.shape) < w)


def _np_execute(seed, mdp, policy, stocks, c0, horizon, n):
    """Discounted returns of ``n`` episodes of the policy executed with its memory."""
    rng = np.random.default_rng(seed)
    P, R, mu0, g = testing.np_mdp(mdp)
    policy, stocks = np.asarray(policy), np.asarray(stocks, np.float64)
    S = len(mu0)
    s = rng.choice(S, size=n, p=mu0 / mu0.sum())
    k = _np_round(rng, stocks, np.full(n, float(c0)))
    G, disc = np.zeros(n), 1.0
    for _ in range(horizon):
        a = policy[s, k]
        r = R[s, a]
        G += disc * r
        disc *= g
        k = _np_round(rng, stocks, (stocks[k] + r) / g)
        cum = np.cumsum(P[s, a], axis=-1)
        s = np.minimum((rng.random(n)[:, None] > cum).sum(-1), S - 1)
    return G


def _np_stock_weights(stocks, c):
    """``[K]`` rounding law of stock ``c`` onto the grid (clipped at the ends)."""
    K = len(stocks)
    c = min(max(c, stocks[0]), stocks[-1])
    j = min(max(int(np.searchsorted(stocks, c, side="right")) - 1, 0), K - 2)
    w = (c - stocks[j]) / (stocks[j + 1] - stocks[j])
    rho = np.zeros(K)
    rho[j], rho[j + 1] = 1.0 - w, w
    return rho


def _np_memory_value(mdp, probs, stocks, c0):
    """Exact value of a policy ``probs[S, K, A]`` executed with its stock memory.

    The pair (state, grid memory) is a Markov chain: from ``(s, k)`` the action
    ``a ~ probs[s, k]`` pays ``R[s, a]``, then ``s' ~ P[s, a]`` and the memory
    is ``(c_k + R[s, a]) / gamma`` randomly rounded; one linear solve on it.
    """
    P, R, mu0, g = testing.np_mdp(mdp)
    stocks = np.asarray(stocks, np.float64)
    probs = np.asarray(probs, np.float64)
    S, A, _ = P.shape
    K = len(stocks)
    T, r = np.zeros((S, K, S, K)), np.zeros((S, K))
    for s, k, a in itertools.product(range(S), range(K), range(A)):
        rho = _np_stock_weights(stocks, (stocks[k] + R[s, a]) / g)
        r[s, k] += probs[s, k, a] * R[s, a]
        T[s, k] += probs[s, k, a] * np.outer(P[s, a], rho)
    M = np.eye(S * K) - g * T.reshape(S * K, S * K)
    V = np.linalg.solve(M, r.reshape(-1)).reshape(S, K)
    return mu0 @ V @ _np_stock_weights(stocks, float(c0))


def _np_cvar(samples, alpha):
    x = np.sort(samples)
    m = alpha * len(x)
    i = int(np.floor(m))
    tail = x[:i].sum() + (m - i) * (x[i] if i < len(x) else 0.0)
    return tail / m


def _layered(seed, horizon=3, width=2, gamma=0.5):
    """Finite-horizon MDP (layers of ``width`` states, then an absorbing terminal)."""
    rng = np.random.default_rng(seed)
    S = horizon * width + 1
    P = np.zeros((S, 2, S))
    R = rng.integers(-1, 3, size=(S, 2)).astype(float)
    for t, i, a in itertools.product(range(horizon), range(width), range(2)):
        s = t * width + i
        if t < horizon - 1:
            nxt = (t + 1) * width + rng.choice(width, size=2, replace=False)
            P[s, a, nxt] = rng.dirichlet(np.ones(2))
        else:
            P[s, a, S - 1] = 1.0
    P[S - 1, :, S - 1] = 1.0
    R[S - 1] = 0.0
    mu0 = np.zeros(S)
    mu0[:width] = 0.5
    return make_mdp(P, R, mu0, gamma=gamma)


def _expectimax(mdp, horizon, f, c0):
    """max over history-dependent policies of E f(c0 + G), by tree recursion."""
    P, R, mu0, g = testing.np_mdp(mdp)
    S, A, _ = P.shape

    def value(s, t, acc, disc):
        if t == horizon:
            return f(c0 + acc)
        return max(
            sum(
                P[s, a, s2] * value(s2, t + 1, acc + disc * R[s, a], disc * g)
                for s2 in range(S)
                if P[s, a, s2] > 0
            )
            for a in range(A)
        )

    return sum(mu0[s] * value(s, 0, 0.0, 1.0) for s in range(S) if mu0[s] > 0)


def _shortcut(gamma=0.5):
    """See :func:`_shortcut_arrays` (a validated MDP, ``gamma < 1``)."""
    return make_mdp(*_shortcut_arrays(gamma), gamma=gamma)


def _shortcut_arrays(gamma):
    """Lucky (reward 2) or unlucky (0) start, then safe (1) or risky (4 w.p. 1/2).

    Rewards are scaled by gamma^-t so the discounted returns are {3, 2, 6} after
    the lucky start and {1, 0, 4} after the unlucky one, whatever gamma.
    """
    P = np.zeros((6, 2, 6))
    R = np.zeros((6, 2))
    P[0, :, 1] = P[0, :, 2] = 0.5
    P[1, :, 3] = P[2, :, 3] = 1.0
    R[1] = 2.0 / gamma
    P[3, 0, 5] = 1.0
    R[3, 0] = 1.0 / gamma**2
    P[3, 1, 4] = P[3, 1, 5] = 0.5
    P[4, :, 5] = 1.0
    R[4] = 4.0 / gamma**3
    P[5, :, 5] = 1.0
    return P, R, np.eye(6)[0]


# Exact grids for the shortcut at gamma = 1/2: integer stocks and returns-to-go.
SHORTCUT = dict(
    num_atoms=34, v_min=-1.0, v_max=32.0, num_stocks=65, stock_min=-32.0,
    stock_max=32.0, iters_per_chunk=5, eval_iters=5,
)  # fmt: skip

solve = jax.jit(ddp_agent.solve)
cvar_optimize = jax.jit(ddp_agent.cvar_optimize)


# ------------------------------------------------------------------------ objectives


class TestObjectives:
    @pytest.mark.parametrize(
        "method,objective,fields,f,c0,closed",
        [
            ("vi", "mean", {}, lambda x: x, 0.0, 3.0),
            (
                "vi",
                "threshold",
                {"threshold": 3.0},
                lambda x: float(x >= 0),
                -3.0,
                0.75,
            ),
            (
                "pi",
                "threshold",
                {"threshold": 3.0},
                lambda x: float(x >= 0),
                -3.0,
                0.75,
            ),
            ("vi", "homeostatic", {"set_point": 2.0}, lambda x: -abs(x), -2.0, None),
            (
                "pi",
                "utility",
                {"utility": "neg_square", "stock0": -2.0},
                lambda x: -(x**2),
                -2.0,
                None,
            ),
        ],
    )
    def test_shortcut_objectives_equal_brute_force(
        self, method, objective, fields, f, c0, closed
    ):
        mdp = _shortcut()
        config = ddp_agent.Config(method=method, objective=objective, **SHORTCUT)
        sol = solve(mdp, config.replace(**fields))
        ref = _expectimax(mdp, 4, f, c0)
        np.testing.assert_allclose(sol.objective, ref, atol=1e-5)
        if closed is not None:
            np.testing.assert_allclose(ref, closed, atol=1e-12)
        np.testing.assert_allclose(sol.stock0, c0)
        np.testing.assert_allclose(sol.law.sum(), 1.0, atol=1e-6)
        np.testing.assert_allclose(sol.mean, sol.law @ config.support, atol=1e-5)

    @pytest.mark.parametrize("method", ["vi", "pi"])
    def test_shortcut_cvar(self, method):
        # CVaR_0.5: lucky -> safe (3), unlucky -> risky (0 | 4): 1.5 (Markov: 1.0)
        config = ddp_agent.Config(method=method, alpha=0.5, **SHORTCUT)
        sol = cvar_optimize(_shortcut(), config)
        np.testing.assert_allclose(
            [sol.objective, sol.bound, sol.stock0], [1.5, 1.5, -3]
        )
        np.testing.assert_allclose(sol.mean, 0.5 * 3 + 0.25 * 0 + 0.25 * 4, atol=1e-6)


# ----------------------------------------------------------------------- Monte Carlo


@pytest.fixture(scope="module")
def stochastic_setup():
    """A garnet, a small grid and jitted rollouts of a policy table (n episodes)."""
    env, params = fm.make_garnet_env(seed=3, num_states=4, num_actions=3, gamma=0.8)
    config = ddp_agent.Config(
        num_atoms=11, v_min=0.0, v_max=5.0, num_stocks=5, stock_min=-2.0,
        stock_max=2.0,
    )  # fmt: skip
    horizon = 60  # 0.8^60 / (1 - 0.8) ~ 8e-6

    @jax.jit
    def run(keys, policy):
        episode = functools.partial(
            ddp_agent.rollout,
            env=env,
            env_params=params,
            policy=policy,
            config=config,
            stock0=0.3,
            num_steps=horizon,
        )
        return jax.vmap(episode)(keys)

    def returns(seed, policy):  # 3000 episodes (one compile per table shape)
        return run(jax.random.split(jax.random.key(seed), 3000), policy)

    return params.mdp, config, returns


class TestMonteCarlo:
    def test_off_grid_rounding_laws_are_exact_for_the_executed_policy(self):
        # Stock grid with spacing 3: (c + r) / gamma = 2 (c + r) mostly falls off
        # the grid (and so does c0 = -1), so the random rounding is exercised; the
        # quarter support holds every return exactly. The computed law must then be
        # the law of the executed policy: only sampling error remains.
        mdp = _layered(0)
        config = ddp_agent.Config(
            objective="threshold",
            threshold=1.0,
            num_atoms=25,
            v_min=-2.0,
            v_max=4.0,
            num_stocks=21,
            stock_min=-30.0,
            stock_max=30.0,
            iters_per_chunk=4,
            eval_iters=4,
        )
        sol = solve(mdp, config)
        n = 40_000
        G = _np_execute(0, mdp, sol.policy, config.stocks, -1.0, 3, n)
        z = np.asarray(config.support)
        cdf = np.cumsum(np.asarray(sol.law, np.float64))
        emp = np.array([(G <= x + 1e-9).mean() for x in z])
        np.testing.assert_array_less(
            np.abs(emp - cdf), 4 * np.sqrt(cdf * (1 - cdf) / n) + 1e-6
        )
        p = float(sol.objective)
        assert abs((G >= 1.0).mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
        assert abs(G.mean() - float(sol.mean)) < 4 * G.std() / np.sqrt(n)
        # the DP value over grid memories is at most the history-dependent optimum
        ref = _expectimax(mdp, 3, lambda x: float(x >= 0), -1.0)
        assert p <= ref + 1e-6

    def test_cvar_threshold_mean_on_a_garnet(self):
        # gamma = 0.9, rewards in [0, 1): returns in [0, 10) lie inside the
        # support, so the mean is exact; CVaR and the threshold probability carry
        # the categorical projection error (atom spacing 1/8). Dyadic spacings
        # keep c0 = -5 and the atom at 5 exact, so the indicator at the
        # threshold atom is not decided by float rounding.
        env, params = fm.make_garnet_env(seed=2, num_states=5, num_actions=2)
        mdp = params.mdp
        base = ddp_agent.Config(
            num_atoms=81, v_min=0.0, v_max=10.0, num_stocks=33, stock_min=-8.0,
            stock_max=0.0, iters_per_chunk=100, eval_iters=100, alpha=0.2,
            threshold=5.0,
        )  # fmt: skip
        n, horizon = 20_000, 100  # 0.9^100 * 10 ~ 3e-4
        z = np.asarray(base.support)
        dz = z[1] - z[0]  # CVaR slack: half an atom spacing
        for objective in ("cvar", "threshold", "mean"):
            config = base.replace(objective=objective)
            sol = solve(mdp, config)
            G = _np_execute(1, mdp, sol.policy, config.stocks, sol.stock0, horizon, n)
            se = G.std() / np.sqrt(n)
            assert abs(G.mean() - float(sol.mean)) < 4 * se, objective
            cvar = float(dist.cvar(z, sol.law, 0.2))
            y = np.quantile(G, 0.2) - np.maximum(np.quantile(G, 0.2) - G, 0) / 0.2
            assert abs(_np_cvar(G, 0.2) - cvar) < 4 * y.std() / np.sqrt(n) + dz / 2
            p = float(dist.exceedance_probability(z, sol.law, 5.0))
            assert abs((G >= 5.0).mean() - p) < 4 * np.sqrt(p * (1 - p) / n) + 0.02
            if objective == "cvar":  # the RU value at c0 bounds the law's CVaR
                np.testing.assert_allclose(sol.objective, cvar, rtol=1e-6)
                assert float(sol.bound) <= cvar + 1e-5
            if objective == "threshold":
                np.testing.assert_allclose(sol.objective, p, atol=1e-6)

    def test_stock_identity_along_jax_rollouts(self, key):
        # c0 + G_0 = gamma^t (c_t + G_t), and on this closed grid the policy's
        # memory is the true stock; the rollouts also estimate P(G >= 3) = 0.75.
        mdp = _shortcut()
        env, params = fm.make_finite_mdp_env(mdp, observation="index")
        config = ddp_agent.Config(objective="threshold", threshold=3.0, **SHORTCUT)
        sol = solve(mdp, config)
        keys = jax.random.split(key, 4000)
        roll = jax.jit(
            jax.vmap(
                lambda k: ddp_agent.rollout(k, env, params, sol.policy, config, -3.0, 5)
            )
        )(keys)
        r, c = np.asarray(roll["reward"], np.float64), np.asarray(roll["stock"])
        g = 0.5
        T = r.shape[1]
        G_t = np.stack(
            [(r[:, t:] * g ** np.arange(T - t)).sum(-1) for t in range(T)], 1
        )
        lhs = -3.0 + G_t[:, 0]
        for t in range(T):
            np.testing.assert_allclose(lhs, g**t * (c[:, t] + G_t[:, t]), atol=1e-4)
        np.testing.assert_allclose(roll["return"], G_t[:, 0], atol=1e-5)
        grid = np.asarray(config.stocks)[np.asarray(roll["stock_index"])]
        np.testing.assert_array_equal(grid[:, :4], c[:, :4])  # stocks within the grid
        p = float((np.asarray(roll["return"]) >= 3.0 - 1e-6).mean())
        assert abs(p - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 4000)
        # the decision state D (index 3) acts on the stock: never a stock-blind rule
        at_d = np.asarray(roll["state"])[:, 2] == 3
        acts = np.asarray(roll["action"])[:, 2][at_d]
        lucky = np.asarray(roll["state"])[:, 1][at_d] == 1
        assert np.all(acts[lucky] == 0) and np.all(acts[~lucky] == 1)

    def test_rollout_of_probability_tables_matches_exact_values(self, stochastic_setup):
        # [S, A] (stock-blind) and [S, K, A] (stock-dependent) probabilities: the
        # mean discounted return equals the exact value (numpy linear solves)
        mdp, config, returns = stochastic_setup
        P, R, mu0, g = testing.np_mdp(mdp)
        rng = np.random.default_rng(0)
        markov = rng.dirichlet(np.ones(3), size=4).astype(np.float32)  # [S, A]
        P_pi = np.einsum("sa,sat->st", markov, P)
        exact = mu0 @ np.linalg.solve(np.eye(4) - g * P_pi, (markov * R).sum(-1))
        memory = rng.dirichlet(np.ones(3), size=(4, 5)).astype(np.float32)
        exact_memory = _np_memory_value(mdp, memory, config.stocks, 0.3)
        assert abs(exact_memory - exact) > 0.05  # the two policies differ
        tiled = np.broadcast_to(markov[:, None], (4, 5, 3))
        for seed, probs, value in (
            (1, markov, exact),
            (2, memory, exact_memory),
            (3, tiled, _np_memory_value(mdp, tiled, config.stocks, 0.3)),
        ):
            G = np.asarray(returns(seed, jnp.asarray(probs))["return"], np.float64)
            assert abs(G.mean() - value) < 4 * G.std() / np.sqrt(len(G)), probs.shape
        np.testing.assert_allclose(exact, _np_memory_value(mdp, tiled, [-2, 2], 0.3))
        # the actions are drawn from the table's row at (state, memory)
        roll = returns(4, jnp.asarray(memory))
        s, k = np.asarray(roll["state"]), np.asarray(roll["stock_index"])[:, :-1]
        a = np.asarray(roll["action"])
        at = (s == 1) & (k == 2)
        freq = np.bincount(a[at], minlength=3) / at.sum()
        np.testing.assert_allclose(freq, memory[1, 2], atol=4 / np.sqrt(at.sum()))

    def test_integer_and_one_hot_tables_give_identical_rollouts(self, stochastic_setup):
        # an integer table is executed exactly as its one-hot probabilities: the
        # same key splits, the same actions, so bitwise equal trajectories
        mdp, config, returns = stochastic_setup
        table = jnp.asarray(np.random.default_rng(1).integers(0, 3, (4, 5)), jnp.int32)
        a = returns(5, table)
        b = returns(5, jax.nn.one_hot(table, 3, dtype=jnp.float32))
        chex.assert_trees_all_equal(a, b)
        G = np.asarray(a["return"], np.float64)
        one_hot = np.eye(3)[np.asarray(table)]
        value = _np_memory_value(mdp, one_hot, config.stocks, 0.3)
        assert abs(G.mean() - value) < 4 * G.std() / np.sqrt(len(G))


# -------------------------------------------------------------------- agent contract


@pytest.fixture(scope="module")
def garnet_env():
    return fm.make_garnet_env(seed=0, num_states=4, num_actions=2, branching=2)


@pytest.fixture(scope="module")
def fns(garnet_env):
    """Jitted train functions taking the config as an argument (one compile each)."""
    env, params = garnet_env
    traces = []

    def train_with(config, k):
        traces.append(1)
        return ddp_agent.make_train(config, env, params)(k)

    return {
        "traces": traces,
        "train": jax.jit(train_with),
        "seeds": jax.jit(jax.vmap(train_with, in_axes=(None, 0))),
        "sweep": jax.jit(jax.vmap(train_with, in_axes=(0, None))),
    }


SMALL = ddp_agent.Config(
    objective="cvar", num_atoms=11, v_min=0.0, v_max=10.0, num_stocks=6,
    stock_min=-5.0, stock_max=0.0, num_chunks=2, iters_per_chunk=3, eval_iters=3,
    init_noise=0.5, alpha=0.3,
)  # fmt: skip


class TestContract:
    def test_train_metrics_and_update_shapes(self, garnet_env, fns, key):
        # (train == init + run chunks is checked by tests/test_agent_contract.py)
        env, params = garnet_env
        state, metrics = fns["train"](SMALL, key)
        assert set(metrics) == {
            "dp/residual", "dp/objective", "dp/mean", "dp/stock0", "dp/bound"
        }  # fmt: skip
        for value in metrics.values():
            assert value.shape == (6,)
        assert state.laws.shape == (4, 6, 2, 11) and state.policy.dtype == jnp.int32
        assert int(state.step) == 6
        np.testing.assert_allclose(state.laws.sum(-1), 1.0, atol=1e-5)
        assert np.all(metrics["dp/bound"] <= metrics["dp/objective"] + 1e-5)
        s0 = state.replace(key=jax.random.clone(key), step=jnp.int32(0))
        s1, m = jax.jit(ddp_agent.update)(s0, params.mdp, SMALL)
        chex.assert_trees_all_equal_shapes_and_dtypes(s0, s1)
        assert set(m) == {"dp/residual"} and int(s1.step) == 1
        assert set(s1.params) == {"laws", "policy"}

    def test_seeds_differ_with_init_noise_and_reproduce(self, fns, key):
        keys = jax.random.split(key, 3)
        states, metrics = fns["seeds"](SMALL, keys)
        assert metrics["dp/objective"].shape == (3, 6)
        assert not np.allclose(states.laws[0], states.laws[1])
        again, _ = fns["seeds"](SMALL, jax.random.clone(keys))
        np.testing.assert_array_equal(again.laws, states.laws)
        # without noise the key does not matter (same compiled function)
        exact, _ = fns["seeds"](
            SMALL.replace(init_noise=0.0), jax.random.split(jax.random.key(1), 3)
        )
        np.testing.assert_array_equal(exact.laws[0], exact.laws[1])

    def test_traced_fields_do_not_retrace_and_sweep_equals_runs(self, fns, key):
        other = SMALL.replace(alpha=0.7, stock_min=-3.0, v_max=8.0, init_noise=0.1)
        _, m0 = fns["train"](SMALL, key)
        n = len(fns["traces"])
        _, m1 = fns["train"](other, jax.random.clone(key))
        assert len(fns["traces"]) == n, "a traced field recompiled train"
        assert not np.allclose(m0["dp/objective"], m1["dp/objective"])
        _, ms = fns["sweep"](stack_configs([SMALL, other]), jax.random.clone(key))
        np.testing.assert_allclose(ms["dp/objective"][1], m1["dp/objective"], atol=1e-5)
        np.testing.assert_allclose(ms["dp/objective"][0], m0["dp/objective"], atol=1e-5)

    def test_vi_from_random_laws_converges_to_the_same_fixed_point(self):
        # f(x) = x with a unique optimal policy: the laws converge to those of
        # pi* from any initial laws (the projected evaluation operator of a fixed
        # policy is a contraction); gamma = 0.5 makes it quick.
        env, params = fm.make_garnet_env(seed=3, num_states=4, num_actions=2, gamma=0.5)
        mdp = params.mdp
        config = SMALL.replace(objective="mean", init_noise=1.0, iters_per_chunk=15)
        vi = jax.jit(ddp_agent.value_iteration)
        rng = np.random.default_rng(0)
        noisy = jnp.asarray(rng.dirichlet(np.ones(11), size=(4, 6, 2)), jnp.float32)
        a, policy = vi(mdp, config, noisy)
        b, _ = vi(mdp, config, ddp.delta_laws(noisy.shape[:3], config.support))
        np.testing.assert_allclose(a, b, atol=1e-5)
        assert float(ddp.cramer_distance(noisy, b, config.support).max()) > 0.1
        residual, _ = jax.jit(ddp_agent.loss)(a, a, mdp, config)
        assert float(residual) < 1e-5
        P, R, mu0, g = testing.np_mdp(mdp)
        j_star = mu0 @ testing.np_policy_iteration(P, R, g).max(-1)
        m = ddp_agent.objective_metrics(mdp, a, policy, config)
        np.testing.assert_allclose(m["dp/objective"], j_star, atol=1e-5)

    def test_loss_is_sup_cramer_residual(self, garnet_env, key):
        env, params = garnet_env
        rng = np.random.default_rng(1)
        laws = jnp.asarray(rng.dirichlet(np.ones(11), size=(4, 6, 2)), jnp.float32)
        state = ddp_agent.State(
            laws=laws, policy=jnp.zeros((4, 6), jnp.int32), key=key, step=jnp.int32(0)
        )
        new, metrics = ddp_agent.update(state, params.mdp, SMALL.replace(method="vi"))
        residual, aux = ddp_agent.loss(state.laws, state.laws, params.mdp, SMALL)
        z = np.asarray(SMALL.support)
        d = np.sqrt(
            ((np.cumsum(new.laws - state.laws, -1)[..., :-1]) ** 2 * np.diff(z)).sum(-1)
        )
        np.testing.assert_allclose([residual, metrics["dp/residual"]], [d.max()] * 2,
                                   rtol=1e-4)  # fmt: skip
        mean_gap = np.abs((new.laws - state.laws) @ z).max()
        np.testing.assert_allclose(aux["dp/mean_residual"], mean_gap, rtol=1e-4)
        # a PI update evaluates state.policy (warm start) and improves greedily
        new, _ = ddp_agent.update(state, params.mdp, SMALL.replace(method="pi"))
        ref = ddp.distributional_policy_evaluation(
            params.mdp, state.policy, SMALL.stocks, SMALL.support, 3, state.laws
        )
        np.testing.assert_allclose(new.laws, ref, atol=1e-6)
        greedy = ddp.stock_greedy_policy(ref, SMALL.stocks, SMALL.support, "min_zero")
        np.testing.assert_array_equal(new.policy, greedy)

    def test_act(self, fns, key):
        k_0, k_1, k_2, k_3 = jax.random.split(key, 4)
        state, _ = fns["train"](SMALL, k_0)
        params = state.params
        s, k = np.meshgrid(np.arange(4), np.arange(6), indexing="ij")
        s, k = jnp.asarray(s.ravel()), jnp.asarray(k.ravel())

        @jax.jit
        def acts(k_1, k_2, k_3):
            greedy = jax.vmap(
                lambda si, ki, kk: ddp_agent.act(
                    state.policy, (jax.nn.one_hot(si, 4), ki), kk, SMALL, greedy=True
                )
            )(s, k, jax.random.split(k_1, 24))
            eps0 = jax.vmap(
                lambda si, ki, kk: ddp_agent.act(params, (si, ki), kk, SMALL)
            )(s, k, jax.random.split(k_2, 24))
            explore = jax.vmap(
                lambda kk: ddp_agent.act(
                    params, (jnp.int32(0), 0), kk, SMALL.replace(epsilon=1.0)
                )
            )(jax.random.split(k_3, 600))
            return greedy, eps0, explore

        greedy, eps0, explore = acts(k_1, k_2, k_3)
        np.testing.assert_array_equal(greedy, state.policy[s, k])
        np.testing.assert_array_equal(eps0, state.policy[s, k])  # epsilon = 0
        np.testing.assert_allclose(
            np.bincount(explore, minlength=2) / 600, 0.5, atol=0.07
        )

    @pytest.mark.parametrize(
        "changes,message",
        [
            (dict(alpha=0.0), r"alpha must lie in \(0.0, 1.0\]"),
            (dict(alpha=1.5), r"alpha must lie in \(0.0, 1.0\]"),
            (dict(num_stocks=1), "num_stocks must be an integer >= 2"),
            (dict(num_stocks=0), "num_stocks must be an integer >= 2"),
            (dict(num_atoms=1), "num_atoms must be an integer >= 2"),
            (dict(objective="var"), "objective must be one of"),
            (dict(objective="utility", utility="exp"), "utility must be one of"),
            (dict(objective="homeostatic", utility="indicator"), "utility must be one"),
            (dict(method="sarsa"), "method must be one of"),
            (dict(stock_min=1.0, stock_max=1.0), "stock_min must be < stock_max"),
            (dict(v_min=2.0, v_max=1.0), "v_min must be < v_max"),
            (dict(init_noise=1.5), "init_noise must lie in"),
            (dict(epsilon=-0.1), "epsilon must lie in"),
            (dict(eval_iters=0), "eval_iters must be an integer >= 1"),
        ],
    )
    def test_config_errors(self, garnet_env, changes, message):
        env, params = garnet_env
        with pytest.raises(ConfigError, match=message):
            ddp_agent.make_train(SMALL.replace(**changes), env, params)

    def test_needs_finite_mdp_with_positive_gamma(self, key):
        with pytest.raises(ConfigError, match="distributional_dp needs a FiniteMDPEnv"):
            ddp_agent.init(key, None, object(), SMALL)
        env, params = fm.make_garnet_env(seed=0, num_states=3, num_actions=2, gamma=0.0)
        with pytest.raises(ConfigError, match="gamma must lie in"):
            ddp_agent.make_train(SMALL, env, params)

    def test_gamma_one_episodic_mdp(self):
        # gamma = 1 is allowed (make_mdp requires gamma < 1: build the MDP directly)
        P, R, mu0 = (jnp.asarray(x, jnp.float32) for x in _shortcut_arrays(1.0))
        mdp = FiniteMDP(P=P, R=R, mu0=mu0, gamma=jnp.float32(1.0))
        config = ddp_agent.Config(objective="threshold", threshold=3.0, **SHORTCUT)
        np.testing.assert_allclose(solve(mdp, config).objective, 0.75, atol=1e-6)
