"""Tests for the tabular constrained MDPs of jaxrl.envs.finite_mdp (random CMDP, hazards)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.mdp import validate
from jaxrl.ops import exact_dp


def _np_entry_cost(P, hazard, terminal, hazard_cost):
    """Expected cost of a step ending in a hazard, by explicit loops over s, a, s'."""
    S, A, _ = P.shape
    C = np.zeros((S, A))
    for s in range(S):
        if terminal[s]:
            continue
        for a in range(A):
            for t in range(S):
                if hazard[t]:
                    C[s, a] += hazard_cost * P[s, a, t]
    return C


class TestRandomCMDP:
    def test_garnet_dynamics_and_cost_formula(self, key):
        mdp = fm.random_cmdp(jax.random.clone(key), 5, 2, 2, 0.8, cost_correlation=0.25)
        k_mdp, k_cost = jax.random.split(key)
        base = fm.garnet(k_mdp, 5, 2, 2, gamma=0.8)
        for name in ("P", "R", "mu0", "gamma"):
            np.testing.assert_array_equal(getattr(mdp, name), getattr(base, name))
        noise = np.asarray(jax.random.uniform(k_cost, (5, 2)), np.float64)
        want = 0.25 * np.asarray(base.R, np.float64) + 0.75 * noise
        np.testing.assert_allclose(mdp.C, want, rtol=1e-6)
        assert np.all(np.asarray(mdp.C) >= 0.0) and np.all(np.asarray(mdp.C) < 1.0)
        validate(mdp)

    @pytest.mark.parametrize("rho", [0.0, 1.0])
    def test_correlation_extremes(self, key, rho):
        mdp = fm.random_cmdp(key, 5, 2, 2, cost_correlation=rho)
        C, R = np.asarray(mdp.C), np.asarray(mdp.R)
        corr = np.corrcoef(C.ravel(), R.ravel())[0, 1]
        if rho == 1.0:
            np.testing.assert_allclose(C, R, rtol=1e-6)
        else:  # independent draws: far from the perfect correlation of rho = 1
            assert abs(corr) < 0.9

    def test_vmap_over_keys_equals_separate_draws(self, key):
        keys = jax.random.split(key, 3)
        batch = jax.vmap(lambda k: fm.random_cmdp(k, 5, 2, 2))(jax.random.clone(keys))
        assert batch.C.shape == (3, 5, 2)
        for i in range(3):
            one = fm.random_cmdp(keys[i], 5, 2, 2)
            np.testing.assert_allclose(batch.C[i], one.C, rtol=1e-6)
            np.testing.assert_allclose(batch.P[i], one.P, rtol=1e-6)
        assert not np.allclose(batch.C[0], batch.C[1])

    @pytest.mark.parametrize(
        "kwargs,message",
        [
            ({"cost_correlation": 1.5}, "cost_correlation"),
            ({"cost_correlation": float("nan")}, "cost_correlation"),
            ({"branching": 9}, "branching"),
        ],
    )
    def test_bad_arguments(self, key, kwargs, message):
        args = {"num_states": 4, "num_actions": 2, "branching": 2, **kwargs}
        with pytest.raises(ConfigError, match=message):
            fm.random_cmdp(key, **args)


class TestHazardGridworld:
    def test_parse_layout_marks_hazards_and_old_layouts_have_none(self):
        g = fm.parse_layout(("SH.", "#HG"))
        assert g.hazard.tolist() == [False, True, False, True, False]
        assert g.terminal.tolist() == [False, False, False, False, True]
        assert not fm.parse_layout(fm.DEFAULT_LAYOUT).hazard.any()
        with pytest.raises(ConfigError, match="valid: # . S G T H"):
            fm.parse_layout(("S.x",))

    def test_hazards_are_floor_for_dynamics_and_reward(self):
        kwargs = {"slip": 0.2, "gamma": 0.9, "step_reward": -0.1}
        hazard = fm.hazard_gridworld(("S.H", ".HG"), **kwargs)
        plain = fm.gridworld(("S..", "..G"), **kwargs)
        also = fm.gridworld(("S.H", ".HG"), **kwargs)
        for name in ("P", "R", "mu0"):
            np.testing.assert_array_equal(getattr(hazard, name), getattr(plain, name))
            np.testing.assert_array_equal(getattr(also, name), getattr(plain, name))
        assert also.C is None

    @pytest.mark.parametrize("slip,hazard_cost", [(0.0, 1.0), (0.3, 2.5)])
    def test_cost_matches_loop_reference(self, slip, hazard_cost):
        layout = ("S.H.", ".#.H", "H..G")
        mdp = fm.hazard_gridworld(layout, slip=slip, hazard_cost=hazard_cost)
        g = fm.parse_layout(layout)
        want = _np_entry_cost(
            np.asarray(mdp.P, np.float64), g.hazard, g.terminal, hazard_cost
        )
        np.testing.assert_allclose(mdp.C, want, rtol=1e-6, atol=1e-7)
        validate(mdp)

    def test_deterministic_entry_and_stay_cost(self):
        mdp = fm.hazard_gridworld(("SHG",), slip=0.0, hazard_cost=2.0)
        C = np.asarray(mdp.C)
        up, right, down, left = range(4)
        np.testing.assert_allclose(C[0], [0.0, 2.0, 0.0, 0.0])  # right enters H
        np.testing.assert_allclose(C[1], [2.0, 0.0, 2.0, 0.0])  # bumps stay in H
        np.testing.assert_array_equal(C[2], 0.0)  # the goal is absorbing, free

    def test_default_layout_trades_reward_against_cost(self):
        """The shortest route crosses a hazard; a hazard-free route exists."""
        mdp = fm.hazard_gridworld()
        g = fm.parse_layout(fm.DEFAULT_HAZARD_LAYOUT)
        assert len(g.cells) == 24 and g.hazard.sum() == 2 and g.terminal.sum() == 1
        q = exact_dp.optimal_q(mdp)
        pi_r = exact_dp.greedy_policy(q)
        j_c_reward_optimal = float(exact_dp.performance(mdp, pi_r, mdp.C))
        safe = mdp.replace(R=-mdp.C)
        j_c_min = -float(exact_dp.optimal_performance(safe))
        assert j_c_min == pytest.approx(0.0, abs=1e-6)
        assert j_c_reward_optimal > 0.5  # the greedy route pays for the hazard


class TestRegisteredEnvs:
    def test_make_registers_both_ids(self):
        assert {"RandomCMDP-v0", "HazardGrid-v0"} <= set(envs.registered_envs)
        env, params = envs.make("RandomCMDP-v0", num_states=5, num_actions=2, seed=3)
        again = envs.make("RandomCMDP-v0", num_states=5, num_actions=2, seed=3)[1]
        other = envs.make("RandomCMDP-v0", num_states=5, num_actions=2, seed=4)[1]
        np.testing.assert_array_equal(params.mdp.C, again.mdp.C)
        assert not np.allclose(params.mdp.C, other.mdp.C)
        assert env.name == "RandomCMDP-v0" and params.mdp.C.shape == (5, 2)
        env, params = envs.make(
            "HazardGrid-v0", hazard_cost=3.0, slip=0.0, max_steps_in_episode=7
        )
        assert env.name == "HazardGrid-v0" and params.max_steps_in_episode == 7
        assert float(params.mdp.C.max()) == pytest.approx(3.0)

    def test_bad_factory_argument(self):
        with pytest.raises(ConfigError, match="slip"):
            envs.make("HazardGrid-v0", slip=2.0)
        with pytest.raises(ConfigError, match="cost_correlation"):
            envs.make("RandomCMDP-v0", cost_correlation=-0.1)

    def test_step_emits_the_cost_of_the_transition(self, key):
        env, params = fm.make_hazard_grid_env(("SHG",), slip=0.0, hazard_cost=2.0)
        k_reset, k1, k2, k3 = jax.random.split(key, 4)
        _, state = env.reset(k_reset, params)
        costs, rewards, done = [], [], []
        for k, a in ((k1, 1), (k2, 0), (k3, 1)):  # enter H, bump up (stay), reach G
            _, state, r, term, _, info = env.step(k, state, a, params)
            costs.append(float(info["cost"]))
            rewards.append(float(r))
            done.append(bool(term))
        assert costs == [2.0, 2.0, 0.0]
        assert rewards == [0.0, 0.0, 1.0] and done == [False, False, True]

    def test_monte_carlo_discounted_cost_matches_exact_value(self, key):
        """Sampled discounted episode costs equal J_c(pi) by linear solve."""
        gamma, T, N = 0.9, 60, 2000
        env, params = fm.make_hazard_grid_env(
            ("S.H", ".H.", "..G"), slip=0.2, gamma=gamma, max_steps=T + 1
        )
        pi = np.full((env.num_states, 4), 0.25)
        j_c = float(exact_dp.performance(params.mdp, pi, params.mdp.C))

        def episode(k):
            k_reset, k_steps = jax.random.split(k)
            _, state = env.reset(k_reset, params)

            def body(carry, _):
                state, key, alive, total, disc = carry
                key, k_a, k_s = jax.random.split(key, 3)
                a = jax.random.randint(k_a, (), 0, 4)
                _, state, _, term, trunc, info = env.step(k_s, state, a, params)
                total = total + alive * disc * info["cost"]
                alive = alive * (1.0 - jnp.logical_or(term, trunc))
                return (state, key, alive, total, disc * gamma), None

            one = jnp.ones((), params.mdp.C.dtype)
            init = (state, k_steps, one, 0.0 * one, one)
            (_, _, _, total, _), _ = jax.lax.scan(body, init, None, length=T)
            return total

        costs = np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(key, N)))
        se = costs.std() / np.sqrt(N)
        assert j_c > 0.1
        assert abs(costs.mean() - j_c) < 4 * se + gamma**T, (costs.mean(), j_c, se)
