"""Tests for jaxrl.agents.cmdp_tabular.lp: the occupancy-measure LP vs brute force and duality.

References are independent of the LP: exhaustive search over a fine grid of
stochastic policies of tiny CMDPs (values by NumPy linear solves), enumeration of
deterministic policies, finite differences of ``J_r*(b)``, and the strong-duality
identity ``J_r* = max_pi L(pi, lambda*)`` computed by NumPy policy iteration.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxrl import testing
from jaxrl.agents.cmdp_tabular import lp as cmdp_lp
from jaxrl.errors import ConfigError
from jaxrl.mdp import make_mdp

# ---------------------------------------------------------------------------- helpers


def _tiny_cmdp(seed, gamma=0.9):
    """A dense random 2-state, 2-action CMDP, as float64 NumPy tensors and FiniteMDP."""
    mdp = testing.random_mdp(np.random.default_rng(seed), 2, 2, gamma, with_cost=True)
    return _tensors(mdp), mdp


def _tensors(mdp):
    P, R, mu0, gamma = testing.np_mdp(mdp)
    return P, R, np.asarray(mdp.C, np.float64), mu0, gamma


def _np_values(P, R, C, mu0, gamma, pis):
    """Return ``(J_r, J_c)`` of policies ``pis[N, S, A]`` by NumPy linear solves."""
    S = P.shape[0]
    P_pi = np.einsum("nsa,sat->nst", pis, P)
    rhs = np.stack([np.einsum("nsa,sa->ns", pis, R), np.einsum("nsa,sa->ns", pis, C)])
    A = np.eye(S)[None] - gamma * P_pi
    v = np.linalg.solve(A[None], rhs[..., None])[..., 0]  # [2, N, S]
    return v @ mu0


def _grid_policies(num):
    """All 2x2 policies pi(0|s) in a grid of ``num`` points per state: [num^2, 2, 2]."""
    p = np.linspace(0.0, 1.0, num)
    p0, p1 = np.meshgrid(p, p, indexing="ij")
    first = np.stack([p0.ravel(), p1.ravel()], axis=-1)  # [N, S]
    return np.stack([first, 1.0 - first], axis=-1)


def _deterministic_policies(S, A):
    eye = np.eye(A)
    return np.stack([eye[list(c)] for c in itertools.product(range(A), repeat=S)])


def _binding_budget(tensors, fraction):
    """A budget between the min cost and the cost of the reward-optimal policy."""
    P, R, C, mu0, gamma = tensors
    det = _deterministic_policies(*R.shape)
    j_r, j_c = _np_values(P, R, C, mu0, gamma, det)
    b_min, b_max = j_c.min(), j_c[np.argmax(j_r)]
    return b_min + fraction * (b_max - b_min), b_min, b_max


# ---------------------------------------------------------------------------- tests


class TestAgainstExhaustiveSearch:
    @pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
    def test_lp_optimum_equals_best_mixed_policy_on_a_fine_grid(self, seed):
        tensors, mdp = _tiny_cmdp(seed)
        b, _, _ = _binding_budget(tensors, 0.5)
        sol = cmdp_lp.solve_cmdp_lp(mdp, b)
        pis = _grid_policies(401)
        j_r, j_c = _np_values(*tensors, pis)
        feasible = j_c <= b
        best = j_r[feasible].max()
        # no policy of the grid beats the LP, and the grid gets within its
        # resolution (0.0025 per probability) of it
        assert best <= sol["J_r"] + 1e-9
        assert sol["J_r"] - best < 0.01
        # the LP's own policy achieves its value and respects the budget
        jr_lp, jc_lp = _np_values(*tensors, sol["policy"][None])
        np.testing.assert_allclose(jr_lp[0], sol["J_r"], rtol=1e-6)
        np.testing.assert_allclose(jc_lp[0], sol["J_c"], rtol=1e-6)
        assert jc_lp[0] <= b + 1e-6

    def test_deterministic_search_misses_the_stochastic_optimum(self):
        """With a binding budget the best deterministic policy is strictly worse."""
        # one state, two actions: action 0 pays reward 1 and cost 1, action 1 nothing
        mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
        sol = cmdp_lp.solve_cmdp_lp(mdp, 1.0)
        # always-0 costs 2 > 1; always-1 earns 0; the optimum mixes half-half
        np.testing.assert_allclose(sol["policy"], [[0.5, 0.5]], atol=1e-9)
        np.testing.assert_allclose([sol["J_r"], sol["J_c"], sol["lam"]], [1, 1, 1])
        for seed in range(6):
            tensors, mdp = _tiny_cmdp(seed)
            b, b_min, b_max = _binding_budget(tensors, 0.5)
            if b_max - b_min < 1e-3:
                continue
            j_r, j_c = _np_values(*tensors, _deterministic_policies(2, 2))
            best_det = j_r[j_c <= b].max()
            assert best_det < cmdp_lp.solve_cmdp_lp(mdp, b)["J_r"] - 1e-6


class TestDuality:
    @pytest.mark.parametrize("fraction", [0.1, 0.4, 0.8])
    def test_multiplier_is_the_derivative_of_the_optimum(self, fraction):
        mdp = testing.random_mdp(np.random.default_rng(7), 5, 3, with_cost=True)
        lo = cmdp_lp.min_cost(mdp)
        b = lo + fraction * 1.0
        sol = cmdp_lp.solve_cmdp_lp(mdp, b)
        h = 1e-5
        fd = (
            cmdp_lp.solve_cmdp_lp(mdp, b + h)["J_r"]
            - cmdp_lp.solve_cmdp_lp(mdp, b - h)["J_r"]
        ) / (2 * h)
        assert sol["lam"] > 0.0
        np.testing.assert_allclose(sol["lam"], fd, rtol=1e-5, atol=1e-7)

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_complementary_slackness_and_strong_duality(self, seed):
        mdp = testing.random_mdp(np.random.default_rng(seed), 4, 3, with_cost=True)
        P, R, mu0, gamma = testing.np_mdp(mdp)
        C = np.asarray(mdp.C, np.float64)
        lo = cmdp_lp.min_cost(mdp)
        pi_r = testing.np_greedy(testing.np_policy_iteration(P, R, gamma))
        hi = float(mu0 @ testing.np_policy_evaluation(P, C, gamma, pi_r))
        for b in np.linspace(lo, hi + 0.5, 9)[1:]:
            sol = cmdp_lp.solve_cmdp_lp(mdp, b)
            assert sol["lam"] >= 0.0 and sol["J_c"] <= b + 1e-8
            if sol["lam"] > 1e-8:  # an active multiplier: the budget is spent
                np.testing.assert_allclose(sol["J_c"], b, rtol=1e-7, atol=1e-9)
            if sol["J_c"] < b - 1e-7:  # a slack budget: no price on the cost
                assert sol["lam"] < 1e-9
            # strong duality: J_r* = max_pi J_{r - lam c}(pi) + lam b
            q = testing.np_policy_iteration(P, R - sol["lam"] * C, gamma)
            dual = float(mu0 @ q.max(-1)) + sol["lam"] * b
            np.testing.assert_allclose(sol["J_r"], dual, rtol=1e-7, atol=1e-9)

    def test_huge_budget_gives_the_unconstrained_optimum(self):
        mdp = testing.random_mdp(np.random.default_rng(3), 6, 3, with_cost=True)
        P, R, mu0, gamma = testing.np_mdp(mdp)
        q_star = testing.np_policy_iteration(P, R, gamma)
        sol = cmdp_lp.solve_cmdp_lp(mdp, 1e6)
        np.testing.assert_allclose(sol["J_r"], mu0 @ q_star.max(-1), rtol=1e-8)
        assert sol["lam"] == 0.0
        np.testing.assert_array_equal(
            sol["policy"].argmax(-1), testing.np_greedy(q_star).argmax(-1)
        )

    def test_infinite_budget_drops_the_constraint(self):
        """b = inf: the LP without the budget row, equal to a huge slack budget."""
        mdp = testing.random_mdp(np.random.default_rng(3), 6, 3, with_cost=True)
        P, R, mu0, gamma = testing.np_mdp(mdp)
        q_star = testing.np_policy_iteration(P, R, gamma)
        sol = cmdp_lp.solve_cmdp_lp(mdp, np.inf)
        huge = cmdp_lp.solve_cmdp_lp(mdp, 1e6)
        assert sol["lam"] == 0.0
        assert all(np.all(np.isfinite(v)) for v in sol.values())
        np.testing.assert_allclose(sol["J_r"], mu0 @ q_star.max(-1), rtol=1e-8)
        np.testing.assert_allclose(sol["J_r"], huge["J_r"], rtol=1e-10)
        np.testing.assert_allclose(sol["J_c"], huge["J_c"], rtol=1e-8)
        np.testing.assert_allclose(sol["occupancy"], huge["occupancy"], atol=1e-10)
        np.testing.assert_array_equal(
            sol["policy"].argmax(-1), testing.np_greedy(q_star).argmax(-1)
        )


class TestSolution:
    def test_occupancy_is_a_discounted_flow(self):
        mdp = testing.random_mdp(np.random.default_rng(4), 5, 2, with_cost=True)
        P, R, mu0, gamma = testing.np_mdp(mdp)
        b = cmdp_lp.min_cost(mdp) + 0.3
        sol = cmdp_lp.solve_cmdp_lp(mdp, b)
        d = sol["occupancy"]
        assert np.all(d >= 0.0)
        np.testing.assert_allclose(d.sum(), 1.0, rtol=1e-6)
        inflow = (1 - gamma) * mu0 + gamma * np.einsum("sa,sat->t", d, P)
        np.testing.assert_allclose(d.sum(-1), inflow, atol=1e-7)
        np.testing.assert_allclose(sol["J_r"], (d * R).sum() / (1 - gamma), rtol=1e-9)
        np.testing.assert_allclose(sol["policy"].sum(-1), 1.0, rtol=1e-12)

    def test_min_cost_equals_best_deterministic_policy(self):
        mdp = testing.random_mdp(np.random.default_rng(5), 3, 2, with_cost=True)
        P, R, mu0, gamma = testing.np_mdp(mdp)
        C = np.asarray(mdp.C, np.float64)
        _, j_c = _np_values(P, R, C, mu0, gamma, _deterministic_policies(3, 2))
        np.testing.assert_allclose(cmdp_lp.min_cost(mdp), j_c.min(), rtol=1e-8)

    def test_bad_input(self):
        mdp = testing.random_mdp(np.random.default_rng(6), 3, 2, with_cost=True)
        lo = cmdp_lp.min_cost(mdp)
        with pytest.raises(ConfigError, match=f"infeasible.*{lo:.4f}"):
            cmdp_lp.solve_cmdp_lp(mdp, lo - 0.1)
        with pytest.raises(ConfigError, match=r"^budget must be finite, got nan$"):
            cmdp_lp.solve_cmdp_lp(mdp, float("nan"))
        with pytest.raises(ConfigError, match=r"^budget -inf is infeasible.*\d$"):
            cmdp_lp.solve_cmdp_lp(mdp, -np.inf)
        with pytest.raises(ConfigError, match="no cost table"):
            cmdp_lp.solve_cmdp_lp(mdp.replace(C=None), 1.0)
