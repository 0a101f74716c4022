"""Tests for jaxrl.agents.cmdp_tabular: exact GDA / ReLOAD dynamics against NumPy and the LP.

References: NumPy policy evaluation and a NumPy loop of both primal-dual methods,
the policy-gradient theorem, NumPy policy iteration (unconstrained optimum) and
the occupancy-measure LP of ``jaxrl.agents.cmdp_tabular.lp`` (scipy HiGHS).

Compiles are expensive on the shared CPU, so every long run is one row of a single
vmapped, jitted call per method (``RUNS``): the traced config fields (budget, step
sizes, initial and maximal multiplier) vary across rows without recompiling.
"""

from __future__ import annotations

import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import config as config_lib
from jaxrl import loop as jloop
from jaxrl import testing
from jaxrl.agents import cmdp_tabular as ct
from jaxrl.agents.cmdp_tabular import lp as cmdp_lp
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError

S, A, NUM_MDPS, NUM_ITERS, FIRST = 4, 2, 6, 20_000, 8
BUDGET_RANGE = jax.jit(ct.budget_range)
SOLVE_DUAL = jax.jit(ct.solve_dual)
EVALUATE = jax.jit(ct.evaluate)

# ---------------------------------------------------------------------- references


def _np(mdp):
    P, R, mu0, gamma = testing.np_mdp(mdp)
    return P, R, np.asarray(mdp.C, np.float64), mu0, gamma


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_occupancy(P, mu0, gamma, pi):
    """d(s, a) = (1 - gamma) [(I - gamma P_pi^T)^{-1} mu0](s) pi(a|s)."""
    P_pi = np.einsum("sa,sat->st", pi, P)
    d_s = (1 - gamma) * np.linalg.solve(np.eye(len(mu0)) - gamma * P_pi.T, mu0)
    return d_s[:, None] * pi


def _np_primal_dual(mdp, method, eta_pi, eta_lambda, budget, lam0, lam_max, steps):
    """Plain NumPy loop of Lagrangian GDA / ReLOAD (ALGORITHMS.md 5.2, 5.3)."""
    P, R, C, mu0, gamma = _np(mdp)
    theta, lam = np.zeros_like(R), float(lam0)
    prev = None
    out = {"pi": [], "lam": [], "j_r": [], "j_c": []}
    for _ in range(steps):
        pi = _np_softmax(theta)
        q_r = testing.np_policy_q(P, R, gamma, pi)
        q_c = testing.np_policy_q(P, C, gamma, pi)
        j_r = mu0 @ (pi * q_r).sum(-1)
        j_c = mu0 @ (pi * q_c).sum(-1)
        g_q, g_l = q_r - lam * q_c, j_c - budget
        if method == "reload" and prev is not None:
            d_q, d_l = 2 * g_q - prev[0], 2 * g_l - prev[1]
        else:
            d_q, d_l = g_q, g_l
        prev = (g_q, g_l)
        out["j_r"].append(j_r)
        out["j_c"].append(j_c)
        theta = theta + eta_pi * d_q
        lam = min(max(lam + eta_lambda * d_l, 0.0), lam_max)
        out["pi"].append(_np_softmax(theta))
        out["lam"].append(lam)
    return {k: np.array(v) for k, v in out.items()}


def _take(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


# ---------------------------------------------------------------------- all long runs


def _rows(mdps, budgets):
    """(mdp index, config overrides) of every row of RUNS; rows 0..5: convergence."""
    rows = [(i, {"budget": budgets[i]}) for i in range(NUM_MDPS)]
    rows += [
        (0, {"budget": budgets[0], "eta_lambda": 0.0}),  # 6: lambda = 0 frozen
        (0, {"budget": 1e6}),  # 7: huge budget
        (1, {"budget": budgets[1], "eta_lambda": 2.0, "lambda_max": 0.3}),  # 8
        (2, {"budget": budgets[2], "eta_lambda": 0.0, "lambda0": 1.2}),  # 9
        (3, {"budget": budgets[3], "eta_pi": 0.3, "lambda0": 0.5}),  # 10
    ]
    return rows


@pytest.fixture(scope="module")
def runs():
    """GDA and ReLOAD on every row, eta_pi = eta_lambda = 0.5 unless overridden."""
    mdps, budgets, sols = [], [], []
    for seed in range(NUM_MDPS):
        mdp = fm.random_cmdp(jax.random.key(seed), S, A, 3, 0.9)
        b_min, b_max = (float(x) for x in BUDGET_RANGE(mdp))
        budgets.append(b_min + 0.5 * (b_max - b_min))
        mdps.append(mdp)
        sols.append(cmdp_lp.solve_cmdp_lp(mdp, budgets[-1]))
    rows = _rows(mdps, budgets)
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *[mdps[i] for i, _ in rows])
    base = ct.Config(eta_pi=0.5, eta_lambda=0.5)

    def one(mdp, config):
        state, metrics, it = ct.primal_dual(mdp, config, jax.random.key(0), NUM_ITERS)
        pi = jax.nn.softmax(it.logits, -1)
        quarter = NUM_ITERS - NUM_ITERS // 4
        return {
            "first_pi": pi[:FIRST],
            "first_lam": it.lam[:FIRST],
            "first_metrics": _take_first(metrics),
            "tail_pi": pi[quarter:],  # the last quarter
            "tail_lam": it.lam[quarter:],
            "final": state.params,
            "avg_pi": ct.average_policy(state),
            "avg_lam": state.avg_lam,
            "last_metrics": jax.tree.map(lambda x: x[-1], metrics),
        }

    out = {"mdps": mdps, "budgets": budgets, "sols": sols, "rows": rows, "configs": {}}
    for method in ct.METHODS:
        configs = [
            base.replace(method=method, **{k: float(v) for k, v in o.items()})
            for _, o in rows
        ]
        result = jax.jit(jax.vmap(one))(stacked, stack_configs(configs))
        out[method] = jax.tree.map(np.asarray, result)
        out["configs"][method] = configs
    return out


def _take_first(metrics):
    return jax.tree.map(lambda x: x[:FIRST], metrics)


# ---------------------------------------------------------------------- exact pieces


class TestEvaluate:
    def test_matches_numpy(self, runs):
        mdp = runs["mdps"][0]
        P, R, C, mu0, gamma = _np(mdp)
        pi = testing.random_policy(np.random.default_rng(0), S, A).astype(np.float32)
        ev = EVALUATE(mdp, pi)
        pi = pi.astype(np.float64)
        q_r = testing.np_policy_q(P, R, gamma, pi)
        q_c = testing.np_policy_q(P, C, gamma, pi)
        d = _np_occupancy(P, mu0, gamma, pi)
        np.testing.assert_allclose(ev.q_r, q_r, rtol=1e-5)
        np.testing.assert_allclose(ev.q_c, q_c, rtol=1e-5)
        np.testing.assert_allclose(ev.occupancy, d, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(ev.j_r, mu0 @ (pi * q_r).sum(-1), rtol=1e-5)
        np.testing.assert_allclose(ev.j_c, (d * C).sum() / (1 - gamma), rtol=1e-5)
        np.testing.assert_allclose(float(ev.occupancy.sum()), 1.0, rtol=1e-5)

    def test_needs_a_cost_table(self, runs):
        with pytest.raises(ConfigError, match="no cost table C"):
            ct.evaluate(runs["mdps"][0].replace(C=None), jnp.full((S, A), 0.5))

    def test_loss_gradient_is_the_policy_gradient(self, runs):
        """d(-L)/dtheta = -d(s) pi(a|s) A_{r - lam c}(s, a) / (1 - gamma)."""
        mdp = runs["mdps"][1]
        P, R, C, mu0, gamma = _np(mdp)
        logits = np.random.default_rng(1).normal(size=(S, A)).astype(np.float32)
        params = ct.Params(logits=jnp.asarray(logits), lam=jnp.float32(0.8))
        grad_fn = jax.jit(jax.value_and_grad(ct.loss, has_aux=True))
        (value, aux), grads = grad_fn(params, params, mdp, ct.Config(budget=3.0))
        pi = _np_softmax(logits.astype(np.float64))
        q = testing.np_policy_q(P, R - 0.8 * C, gamma, pi)
        adv = q - (pi * q).sum(-1, keepdims=True)
        d = _np_occupancy(P, mu0, gamma, pi)
        np.testing.assert_allclose(grads.logits, -d * adv / (1 - gamma), atol=2e-5)
        np.testing.assert_allclose(grads.lam, aux["cmdp/j_c"] - 3.0, rtol=1e-5)
        want = -(aux["cmdp/j_r"] - 0.8 * (aux["cmdp/j_c"] - 3.0))
        np.testing.assert_allclose(value, want, rtol=1e-6)


class TestDynamics:
    @pytest.mark.parametrize("method", ct.METHODS)
    @pytest.mark.parametrize("row", [0, 6, 8, 9, 10])
    def test_first_iterates_match_numpy_loop(self, runs, method, row):
        i, _ = runs["rows"][row]
        c = runs["configs"][method][row]
        out = _take(runs[method], row)
        ref = _np_primal_dual(
            runs["mdps"][i],
            method,
            c.eta_pi,
            c.eta_lambda,
            c.budget,
            c.lambda0,
            c.lambda_max,
            FIRST,
        )
        m = out["first_metrics"]
        np.testing.assert_allclose(out["first_pi"], ref["pi"], rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(out["first_lam"], ref["lam"], rtol=2e-4, atol=1e-5)
        np.testing.assert_allclose(m["cmdp/j_r"], ref["j_r"], rtol=1e-4)
        np.testing.assert_allclose(m["cmdp/j_c"], ref["j_c"], rtol=1e-4)
        lam_k = np.concatenate([[c.lambda0], ref["lam"][:-1]])
        np.testing.assert_allclose(m["lagrange/lambda"], lam_k, rtol=2e-4, atol=1e-6)
        # running averages over iterates 0..k
        steps = np.arange(1, FIRST + 1)
        avg_j_r = np.cumsum(ref["j_r"]) / steps
        np.testing.assert_allclose(m["cmdp/j_r_avg"], avg_j_r, rtol=1e-4)
        avg_lam = np.cumsum(lam_k) / steps
        np.testing.assert_allclose(
            m["lagrange/lambda_avg"], avg_lam, rtol=2e-4, atol=1e-6
        )
        lagr = ref["j_r"] - lam_k * (ref["j_c"] - c.budget)
        np.testing.assert_allclose(m["lagrange/lagrangian"], lagr, rtol=1e-4, atol=1e-5)
        if row == 8:  # the upper projection binds at some step
            assert np.isclose(ref["lam"], 0.3).any()

    def test_average_policy_has_the_average_values(self, runs):
        for method in ct.METHODS:
            out = _take(runs[method], 0)
            ev = EVALUATE(runs["mdps"][0], out["avg_pi"])
            m = out["last_metrics"]
            np.testing.assert_allclose(ev.j_r, m["cmdp/j_r_avg"], rtol=1e-4)
            np.testing.assert_allclose(ev.j_c, m["cmdp/j_c_avg"], rtol=1e-4)
        config = ct.Config(init_noise=1.0)
        fresh = ct.init_state(runs["mdps"][0], jax.random.key(1), config)
        np.testing.assert_array_equal(ct.average_policy(fresh), ct.policy(fresh.params))


# ---------------------------------------------------------------------- reductions


class TestReductions:
    @pytest.mark.parametrize("method", ct.METHODS)
    def test_zero_multiplier_is_unconstrained_npg(self, runs, method):
        """lambda = 0 frozen: NPG on r alone (first steps checked above, row 6)."""
        out = _take(runs[method], 6)
        P, R, C, mu0, gamma = _np(runs["mdps"][0])
        q_star = testing.np_policy_iteration(P, R, gamma)
        assert np.all(out["tail_lam"] == 0.0)
        j_star = mu0 @ q_star.max(-1)
        np.testing.assert_allclose(out["last_metrics"]["cmdp/j_r"], j_star, rtol=1e-5)
        np.testing.assert_allclose(
            ct.policy(out["final"]), testing.np_greedy(q_star), atol=1e-4
        )
        # a NumPy NPG loop that never sees the cost gives the same first steps
        ref = _np_primal_dual(
            runs["mdps"][0].replace(C=jnp.zeros((S, A))), method, 0.5, 0.0, 0, 0, 1, 8
        )
        np.testing.assert_allclose(out["first_pi"], ref["pi"], rtol=2e-4, atol=1e-5)

    @pytest.mark.parametrize("method", ct.METHODS)
    def test_huge_budget_is_the_unconstrained_problem(self, runs, method):
        huge, frozen = _take(runs[method], 7), _take(runs[method], 6)
        assert np.all(huge["tail_lam"] == 0.0) and np.all(huge["first_lam"] == 0.0)
        # lambda stays 0, so the iterates are exactly those of the lambda = 0 run
        chex.assert_trees_all_close(huge["final"], frozen["final"], rtol=1e-6)
        sol = cmdp_lp.solve_cmdp_lp(runs["mdps"][0], 1e6)
        assert sol["lam"] == 0.0
        np.testing.assert_allclose(
            huge["last_metrics"]["cmdp/j_r"], sol["J_r"], rtol=1e-5
        )


# ---------------------------------------------------------------------- convergence


class TestConvergence:
    def test_reload_last_iterate_converges_to_the_lp_solution(self, runs):
        out = runs["reload"]
        for i, sol in enumerate(runs["sols"]):
            assert sol["lam"] > 0.05  # the budget binds
            # the last 1000 of 20000 iterates all lie within 1e-3 of (pi*, lambda*)
            pi_err = np.abs(out["tail_pi"][i, -1000:] - sol["policy"]).max()
            lam_err = np.abs(out["tail_lam"][i, -1000:] - sol["lam"]).max()
            assert pi_err < 1e-3, (i, pi_err)
            assert lam_err < 1e-3, (i, lam_err)

    def test_gda_iterates_cycle_but_their_average_converges(self, runs):
        out = runs["gda"]
        for i, sol in enumerate(runs["sols"]):
            pi_err = np.abs(out["tail_pi"][i] - sol["policy"]).max((-2, -1))  # [T]
            lam_err = np.abs(out["tail_lam"][i] - sol["lam"])
            # in the last quarter every GDA iterate stays more than 10x farther
            # from the saddle point than ReLOAD's tolerance, and the multiplier
            # keeps swinging (ReLOAD's has settled) ...
            assert np.maximum(pi_err, lam_err).min() > 1e-2, i
            assert np.ptp(out["tail_lam"][i]) > 0.05, i
            assert np.ptp(runs["reload"]["tail_lam"][i, -1000:]) < 2e-3, i
            # ... while the averages approach it
            avg_pi_err = np.abs(out["avg_pi"][i] - sol["policy"]).max()
            assert avg_pi_err < 0.1, (i, avg_pi_err)
            assert abs(out["avg_lam"][i] - sol["lam"]) < 0.02, i
            m = out["last_metrics"]
            assert abs(m["cmdp/j_r_avg"][i] - sol["J_r"]) < 0.2, i
            assert abs(m["cmdp/j_c_avg"][i] - runs["budgets"][i]) < 0.2, i
            # ReLOAD's own averages are no worse
            assert abs(runs["reload"]["avg_lam"][i] - sol["lam"]) < 0.02, i


class TestSolveDual:
    def test_matches_the_lp_across_budgets(self, runs):
        for mdp in runs["mdps"][:3]:
            b_min, b_max = (float(x) for x in BUDGET_RANGE(mdp))
            for b in np.linspace(b_min, b_max + 1.0, 6)[1:]:
                sol = cmdp_lp.solve_cmdp_lp(mdp, b)
                j, lam = SOLVE_DUAL(mdp, b)
                np.testing.assert_allclose(j, sol["J_r"], rtol=1e-5)
                np.testing.assert_allclose(lam, sol["lam"], rtol=1e-3, atol=1e-4)
        j, lam = SOLVE_DUAL(mdp, b_min - 0.5)
        assert np.isnan(float(j)) and np.isnan(float(lam))

    def test_budget_range_ends(self, runs):
        mdp = runs["mdps"][4]
        P, R, C, mu0, gamma = _np(mdp)
        b_min, b_max = BUDGET_RANGE(mdp)
        pi_r = testing.np_greedy(testing.np_policy_iteration(P, R, gamma))
        want = mu0 @ testing.np_policy_evaluation(P, C, gamma, pi_r)
        np.testing.assert_allclose(b_max, want, rtol=1e-5)
        np.testing.assert_allclose(b_min, cmdp_lp.min_cost(mdp), rtol=1e-5)
        assert cmdp_lp.solve_cmdp_lp(mdp, float(b_max) + 1e-3)["lam"] == 0.0


# ---------------------------------------------------------------------- agent API


@pytest.fixture(scope="module")
def env_setup():
    # the same CMDP as runs["mdps"][1]: RandomCMDP-v0 draws random_cmdp(key(seed))
    env, params = fm.make_random_cmdp_env(seed=1, num_states=S, num_actions=A)
    b_min, b_max = (float(x) for x in BUDGET_RANGE(params.mdp))
    config = ct.Config(
        num_chunks=2, iters_per_chunk=150, budget=0.5 * (b_min + b_max), init_noise=0.5
    )

    def train_with(c, k):
        return ct.make_train(c, env, params)(k)

    fns = {
        "train": jax.jit(chex.assert_max_traces(train_with, n=1)),
        "batch": jax.jit(jax.vmap(train_with)),
    }
    return env, params, config, fns


class TestAgent:
    def test_chunks_equal_train(self, env_setup, key):
        env, params, config, fns = env_setup
        final, metrics = fns["train"](config, jax.random.clone(key))
        run = jax.jit(ct.make_run(config, env, params))
        state = ct.init(key, env, params, config)
        chunks = []
        for _ in range(config.num_chunks):
            new_state, m = run(state)
            chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
            state = new_state
            chunks.append(m)
        joined = jax.tree.map(lambda *x: jnp.concatenate(x), *chunks)
        chex.assert_trees_all_close(joined, metrics, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(final.params, state.params, rtol=1e-5, atol=1e-6)
        assert all(v.shape == (300,) and "/" in k for k, v in metrics.items())
        assert "cmdp/reward_gap" not in metrics  # the oracle is opt-in

    def test_oracle_metrics(self, env_setup, key):
        env, params, config, fns = env_setup
        oracle = config.replace(oracle_bisections=40, init_noise=0.0)
        _, metrics = jax.jit(ct.make_train(oracle, env, params))(key)
        j_star, lam_star = SOLVE_DUAL(params.mdp, config.budget)
        for name, value, ref in (
            ("cmdp/reward_gap", "cmdp/j_r", j_star),
            ("cmdp/reward_gap_avg", "cmdp/j_r_avg", j_star),
        ):
            np.testing.assert_allclose(metrics[name], ref - metrics[value], atol=5e-5)
        for name, value in (
            ("lagrange/lambda_error", "lagrange/lambda"),
            ("lagrange/lambda_error_avg", "lagrange/lambda_avg"),
        ):
            want = np.abs(metrics[value] - lam_star)
            np.testing.assert_allclose(metrics[name], want, atol=5e-5)
        errors = np.asarray(metrics["lagrange/lambda_error"])
        assert errors[-1] < 0.5 * errors[0]  # on its way to lambda*

    def test_seeds_differ_reproduce_and_sweep_equals_separate_runs(
        self, env_setup, key
    ):
        env, params, config, fns = env_setup
        keys = jax.random.split(key, 3)
        same = stack_configs([config] * 3)
        states, _ = fns["batch"](same, jax.random.clone(keys))
        again, _ = fns["batch"](same, jax.random.clone(keys))
        chex.assert_trees_all_equal(states.params, again.params)
        logits = np.asarray(states.params.logits)
        assert not np.allclose(logits[0], logits[1])
        # a hyperparameter sweep (same key) equals separate runs; no retrace
        configs = [
            config.replace(eta_pi=0.2, eta_lambda=1.0),
            config.replace(eta_pi=0.9, budget=config.budget + 0.3, lambda0=2.0),
            config.replace(noise_std=0.3),
        ]
        same_key = jax.random.wrap_key_data(
            jnp.stack([jax.random.key_data(jax.random.key(7))] * 3)
        )
        swept_state, swept = fns["batch"](stack_configs(configs), same_key)
        for i, c in enumerate(configs):
            single_state, single = fns["train"](c, jax.random.key(7))
            # Batched and single programs round differently (more so below XLA's
            # default backend level); 300 primal-dual steps carry it to ~1e-5.
            tol = {"rtol": 1e-4, "atol": 1e-5}
            chex.assert_trees_all_close(_take(swept, i), single, **tol)
            chex.assert_trees_all_close(
                _take(swept_state.params, i), single_state.params, **tol
            )

    def test_noisy_gradients_use_the_key(self, env_setup, key):
        env, params, config, fns = env_setup
        noisy = config.replace(noise_std=0.5, init_noise=0.0)
        k0, k1 = jax.random.split(key)
        a, _ = fns["train"](noisy, k0)
        b, _ = fns["train"](noisy, k1)
        c, _ = fns["train"](config.replace(init_noise=0.0), jax.random.key(5))
        d, _ = fns["train"](config.replace(init_noise=0.0), jax.random.key(6))
        assert not np.allclose(a.params.logits, b.params.logits)
        chex.assert_trees_all_equal(c.params, d.params)  # exact dynamics: no noise

    def test_act(self, env_setup, key):
        _, _, config, _ = env_setup
        logits = jnp.log(jnp.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5], [1.0, 1e-9]]))
        p = ct.Params(logits=logits, lam=jnp.float32(0.0))
        k_greedy, k_sample = jax.random.split(key)
        assert int(ct.act(p, jnp.int32(1), k_greedy, config, greedy=True)) == 0
        onehot = jax.nn.one_hot(0, S)
        assert int(ct.act(p, onehot, k_greedy, config, greedy=True)) == 1
        keys = jax.random.split(k_sample, 4000)
        acts = jax.jit(jax.vmap(lambda k: ct.act(p, onehot, k, config)))(keys)
        assert acts.dtype == jnp.int32
        freq = float(jnp.mean(acts == 1))
        assert abs(freq - 0.8) < 4 * np.sqrt(0.8 * 0.2 / 4000)
        # every state, greedy and sampled, same keys: one-hot == index
        states = jnp.arange(S)
        for greedy in (True, False):

            def per_state(obs, greedy=greedy):  # equal keys for every call
                keys = jax.random.split(jax.random.key(3), 64)
                act = jax.vmap(
                    lambda o, k: ct.act(p, o, k, config, greedy=greedy),
                    in_axes=(None, 0),
                )
                return jax.vmap(act, in_axes=(0, None))(obs, keys)

            np.testing.assert_array_equal(
                per_state(states), per_state(jax.nn.one_hot(states, S))
            )
        np.testing.assert_array_equal(
            per_state(states, greedy=True)[:, 0], np.argmax(np.asarray(logits), axis=1)
        )
        with pytest.raises(ConfigError, match="one-hot observations must have 4"):
            ct.act(p, jnp.ones(3), jax.random.key(4), config)


class TestBadInput:
    @pytest.mark.parametrize(
        "overrides,message",
        [
            ({"eta_pi": -0.1}, "eta_pi"),
            ({"eta_lambda": -1.0}, "eta_lambda"),
            ({"budget": float("nan")}, "budget"),
            ({"budget": -math.inf}, r"^budget must lie in \(-inf, inf\], got -inf$"),
            ({"lambda0": -0.5}, "lambda0"),
            ({"lambda0": 2.0, "lambda_max": 1.0}, "lambda0 must not exceed"),
            ({"lambda_max": 0.0}, "lambda_max"),
            ({"method": "ogda"}, "method must be one of gda, reload"),
            ({"iters_per_chunk": 0}, "iters_per_chunk"),
            ({"oracle_bisections": -1}, "oracle_bisections"),
            ({"noise_std": -1.0}, "noise_std"),
        ],
    )
    def test_invalid_config(self, env_setup, overrides, message):
        env, params, config, _ = env_setup
        bad = config.replace(**overrides)
        with pytest.raises(ConfigError, match=message):
            ct.make_train(bad, env, params)
        with pytest.raises(ConfigError, match=message):
            ct.primal_dual(params.mdp, bad, jax.random.key(0), 3)

    def test_mdp_without_costs(self, key):
        env, params = fm.make_garnet_env(num_states=4, num_actions=2)
        config = ct.Config()
        with pytest.raises(ConfigError, match="cmdp_tabular needs a constrained MDP"):
            ct.make_train(config, env, params)
        with pytest.raises(ConfigError, match="no cost table"):
            ct.init(jax.random.clone(key), env, params, config)
        with pytest.raises(ConfigError, match="no cost table"):
            ct.primal_dual(params.mdp, config, key, 3)
        with pytest.raises(ConfigError, match="FiniteMDPEnv"):
            ct.make_train(config, env, object())


# ---------------------------------------------------------------------- budget = inf


class TestInfiniteBudget:
    """``budget = inf`` means no constraint: the unconstrained optimum, lambda = 0."""

    def test_solve_dual_gives_the_unconstrained_optimum(self):
        for seed in (0, 1):
            mdp = testing.random_mdp(
                np.random.default_rng(seed), 5, 3, 0.9, with_cost=True
            )
            P, R, _, mu0, gamma = _np(mdp)
            j_star = mu0 @ testing.np_policy_iteration(P, R, gamma).max(-1)
            j, lam = SOLVE_DUAL(mdp, math.inf)
            assert np.isfinite(float(j)) and float(lam) == 0.0
            np.testing.assert_allclose(j, j_star, rtol=1e-5)
            # any slack finite budget gives the very same answer
            _, b_max = BUDGET_RANGE(mdp)
            for slack in (float(b_max) + 1.0, 1e6):
                j_b, lam_b = SOLVE_DUAL(mdp, slack)
                assert float(j_b) == float(j) and float(lam_b) == 0.0
        # -inf is infeasible (NaN, like any budget below min cost); NaN is an error
        j, lam = SOLVE_DUAL(mdp, -math.inf)
        assert np.isnan(float(j)) and np.isnan(float(lam))
        with pytest.raises(ConfigError, match=r"^budget must be finite, got nan$"):
            ct.solve_dual(mdp, math.nan)

    def test_config_validates_and_round_trips(self):
        config = ct.Config(budget=math.inf)
        config_lib.validate(config)
        data = config_lib.to_dict(config)
        assert data["budget"] == "inf"
        json.dumps(data, allow_nan=False)  # strict JSON
        assert config_lib.from_dict(ct.Config, data).budget == math.inf
        override = config_lib.apply_overrides(ct.Config(), ["budget=inf"])  # --set
        assert override.budget == math.inf
        for bad, message in (
            (-math.inf, r"^budget must lie in \(-inf, inf\], got -inf$"),
            (math.nan, r"^budget must be finite, got nan$"),
        ):
            with pytest.raises(ConfigError, match=message):
                config_lib.validate(ct.Config(budget=bad))

    def test_training_is_the_unconstrained_run(self, env_setup):
        """One vmapped call of the compiled fixture: inf vs lambda frozen at 0."""
        env, params, config, fns = env_setup
        configs = [
            config.replace(budget=math.inf),
            config.replace(budget=math.inf, lambda0=0.7),
            config.replace(eta_lambda=0.0, lambda0=0.0),  # lambda = 0 frozen
        ]
        keys = jax.random.wrap_key_data(
            jnp.stack([jax.random.key_data(jax.random.key(7))] * 3)
        )
        states, metrics = fns["batch"](stack_configs(configs), keys)
        m = jax.tree.map(np.asarray, metrics)
        assert not any(np.isnan(v).any() for v in m.values())
        for name, v in m.items():
            if name != "lagrange/lagrangian":
                assert np.isfinite(v).all(), name
        # lambda is 0 throughout; from lambda0 > 0 it is 0 after the first step
        np.testing.assert_array_equal(m["lagrange/lambda"][0], 0.0)
        assert m["lagrange/lambda"][1, 0] == np.float32(0.7)
        np.testing.assert_array_equal(m["lagrange/lambda"][1, 1:], 0.0)
        np.testing.assert_array_equal(states.params.lam, 0.0)
        assert bool(jax.vmap(jloop.tree_is_finite)(states).all())  # not "diverged"
        # L = J_r while lambda = 0 (not 0 * inf = NaN); +inf at the lambda0 > 0 step
        np.testing.assert_array_equal(m["lagrange/lagrangian"][0], m["cmdp/j_r"][0])
        assert m["lagrange/lagrangian"][1, 0] == np.inf
        # the same iterates as the run with lambda frozen at 0 ...
        np.testing.assert_array_equal(states.params.logits[0], states.params.logits[2])
        np.testing.assert_array_equal(m["cmdp/j_r"][0], m["cmdp/j_r"][2])
        # ... which converge to the unconstrained optimum
        P, R, _, mu0, gamma = _np(params.mdp)
        j_star = mu0 @ testing.np_policy_iteration(P, R, gamma).max(-1)
        np.testing.assert_allclose(m["cmdp/j_r"][:, -1], j_star, rtol=1e-5)

    @pytest.mark.parametrize("method", ct.METHODS)
    def test_first_steps_of_both_methods(self, method):
        """GDA and ReLOAD steps (with gradient noise) never produce NaN."""
        mdp = fm.random_cmdp(jax.random.key(0), S, A, 3, 0.9)
        config = ct.Config(method=method, budget=math.inf, lambda0=0.5, noise_std=0.1)
        run = jax.jit(ct.primal_dual, static_argnums=3)
        state, metrics, iterates = run(mdp, config, jax.random.key(0), 4)
        np.testing.assert_array_equal(iterates.lam, 0.0)
        assert np.isfinite(np.asarray(iterates.logits)).all()
        assert np.isfinite(np.asarray(metrics["cmdp/j_r"])).all()
        # the violation J_c - inf = -inf, stored saturated: the state stays finite
        assert float(state.prev_grad.lam) == -np.finfo(np.float32).max
        assert jloop.tree_is_finite(state)
        frozen = config.replace(eta_lambda=0.0)
        state, _, iterates = run(mdp, frozen, jax.random.key(0), 4)
        np.testing.assert_array_equal(iterates.lam, np.float32(0.5))  # eta 0: kept
