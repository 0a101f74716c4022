"""Tests for jaxrl.envs.mdp_generators: gridworld layouts and dynamics, Garnet, chain.

The constrained generators (random CMDP, hazard gridworld) are tested in
test_cmdp_envs.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxrl.envs import mdp_generators
from jaxrl.errors import ConfigError
from jaxrl.mdp import validate
from jaxrl.ops import exact_dp

_optimal_q = jax.jit(exact_dp.optimal_q)


def _keys(key, n):
    return jax.random.split(key, n)


class TestGridworld:
    def test_parse_layout(self):
        g = mdp_generators.parse_layout(("S#G", "..T"))
        assert g.cells == ((0, 0), (0, 2), (1, 0), (1, 1), (1, 2))
        assert g.start.tolist() == [True, False, False, False, False]
        assert g.goal.tolist() == [False, True, False, False, False]
        assert g.trap.tolist() == [False, False, False, False, True]
        assert g.terminal.tolist() == [False, True, False, False, True]
        assert g.state_index(1, 1) == 3
        with pytest.raises(ConfigError, match="wall"):
            g.state_index(0, 1)
        assert (
            mdp_generators.parse_layout("S.\n.G").cells
            == mdp_generators.parse_layout(("S.", ".G")).cells
        )

    def test_walls_block_and_terminals_absorb(self):
        layout = ("S#G", "..T")
        mdp = mdp_generators.gridworld(
            layout, slip=0.0, goal_reward=2.0, trap_reward=-3.0, step_reward=-0.5
        )
        P, R = np.asarray(mdp.P), np.asarray(mdp.R)
        up, right, down, left = range(4)
        assert P[0, right, 0] == 1.0  # wall to the right of S
        assert P[0, up, 0] == 1.0 and P[0, left, 0] == 1.0  # grid edges
        assert P[0, down, 2] == 1.0
        assert P[3, right, 4] == 1.0 and R[3, right] == pytest.approx(
            -3.5
        )  # enter trap
        for t in (1, 4):  # goal and trap are absorbing with zero reward
            np.testing.assert_array_equal(P[t, :, t], 1.0)
            np.testing.assert_array_equal(R[t], 0.0)
        assert R[2, down] == pytest.approx(-0.5)  # bump into the bottom edge
        np.testing.assert_allclose(np.asarray(mdp.mu0), [1, 0, 0, 0, 0])
        validate(mdp)

    def test_slip_goes_perpendicular(self):
        mdp = mdp_generators.gridworld(("...", ".S.", "..G"), slip=0.2, goal_reward=1.0)
        P = np.asarray(mdp.P)
        centre, above, right_cell, below = 4, 1, 5, 7
        np.testing.assert_allclose(
            P[centre, 1, [right_cell, above, below]], [0.8, 0.1, 0.1]
        )
        # from the cell above the goal, "down" enters the goal w.p. 0.8
        np.testing.assert_allclose(np.asarray(mdp.R)[5, 2], 0.8, rtol=1e-6)

    @pytest.mark.parametrize(
        "layout,message",
        [
            (("S..", ".."), "equal length"),
            (("S.x",), "unknown character 'x'"),
            ((".G",), "at least one start"),
            ((), "empty"),
        ],
    )
    def test_layout_errors(self, layout, message):
        with pytest.raises(ConfigError, match=message):
            mdp_generators.parse_layout(layout)

    def test_optimal_policy_avoids_trap(self):
        # with slip, "right" from S risks slipping into the trap later: go down
        mdp = mdp_generators.gridworld(("S.T", "...", "..G"), slip=0.2, gamma=0.9)
        q = np.asarray(_optimal_q(mdp))
        assert int(np.argmax(q[0])) == 2
        # without slip both shortest paths are safe: the tie goes to the lower index
        q0 = np.asarray(
            _optimal_q(
                mdp_generators.gridworld(("S.T", "...", "..G"), slip=0.0, gamma=0.9)
            )
        )
        assert q0[0, 1] == pytest.approx(q0[0, 2]) and int(np.argmax(q0[0])) == 1


class TestGenerators:
    def test_garnet_structure(self, key):
        mdp = mdp_generators.garnet(
            key, num_states=5, num_actions=2, branching=3, gamma=0.95
        )
        P = np.asarray(mdp.P)
        assert P.shape == (5, 2, 5)
        np.testing.assert_array_equal((P > 0).sum(-1), 3)
        np.testing.assert_allclose(P.sum(-1), 1.0, rtol=1e-6)
        R = np.asarray(mdp.R)
        assert np.all((R >= 0) & (R < 1))
        validate(mdp)

    def test_vmap_batch_of_garnets(self, key):
        keys = _keys(key, 4)
        raw = np.asarray(jax.random.key_data(keys))  # to rebuild single keys below

        batch = jax.vmap(lambda k: mdp_generators.garnet(k, 5, 2, 3))(keys)
        assert batch.P.shape == (4, 5, 2, 5)
        validate(batch)
        assert not np.allclose(batch.P[0], batch.P[1])
        for i in (0, 3):  # the batch holds exactly the Garnets drawn one by one
            one = mdp_generators.garnet(jax.random.wrap_key_data(raw[i]), 5, 2, 3)
            np.testing.assert_allclose(batch.P[i], one.P, rtol=1e-6)
            np.testing.assert_allclose(batch.R[i], one.R, rtol=1e-6)

    def test_garnet_errors(self, key):
        with pytest.raises(
            ConfigError, match=r"branching must lie in \[1, num_states=3\]"
        ):
            mdp_generators.garnet(key, 3, 2, branching=4)

    @pytest.mark.parametrize("gamma,right_optimal", [(0.9, True), (0.7, False)])
    def test_chain_optimal_direction(self, gamma, right_optimal):
        mdp = mdp_generators.chain(10, small_reward=0.1, large_reward=1.0, gamma=gamma)
        assert (gamma**9 * 1.0 > 0.1) == right_optimal  # documented condition
        assert int(np.argmax(_optimal_q(mdp)[0])) == int(right_optimal)

    def test_chain_slip(self):
        P = np.asarray(mdp_generators.chain(4, slip=0.25).P)
        np.testing.assert_allclose(P[1, 1], [0.25, 0.0, 0.75, 0.0])
        with pytest.raises(ConfigError, match="num_states must be >= 2"):
            mdp_generators.chain(1)
