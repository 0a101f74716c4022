"""Risk-sensitive benchmark MDPs with *realised* random rewards.

The generators of :mod:`jaxrl.envs.finite_mdp` pay the expected reward ``R[s, a]``,
which is right for expected-value control but hides the spread of the return.
Here every random outcome is a *state*, so the return law of the sampling
environment is the true one: a payoff cell pays its reward on the step that
leaves it, then the episode ends in an absorbing terminal state.

* :func:`cliff_gridworld`: a slippery gridworld with a risky shortcut along a
  cliff (trap cells) and a longer safe path; the reference task of
  ``jaxrl reproduce --table distributional-dp``.
* :func:`homeostasis`: a foraging task where the agent should stop collecting
  food once its cumulative intake reaches a set point.

Both return ``(FiniteMDP, terminal)``; ``make_cliff_env`` and
``make_homeostasis_env`` return ``(env, env_params)`` and are registered as
``CliffGrid-v0`` and ``Homeostasis-v0``.

Examples:
  >>> mdp, terminal = cliff_gridworld(slip=0.0)
  >>> mdp.num_states, mdp.num_actions, int(terminal.sum())
  (22, 4, 1)
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxrl.envs.finite_mdp import FiniteMDPEnv, make_finite_mdp_env
from jaxrl.envs.mdp_generators import _grid_successors, parse_layout
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP

__all__ = [
    "CLIFF_LAYOUT",
    "cliff_gridworld",
    "homeostasis",
    "make_cliff_env",
    "make_homeostasis_env",
    "ENV_FACTORIES",
]

CLIFF_LAYOUT: tuple[str, ...] = (
    "#########",
    "#.......#",
    "#.......#",
    "#STTTTTG#",
    "#########",
)
"""The cliff: start and goal on the bottom row, five trap cells between them.

The shortest route runs along row 2, next to the cliff (8 moves); the safe route
along row 1 takes 10 moves and can never slip into a trap.
"""


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {value!r}")
    return value


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not 0.0 < gamma < 1.0:
        raise ConfigError(f"gamma must lie in (0, 1), got {gamma!r}")
    return gamma


def cliff_gridworld(
    layout: tuple[str, ...] | str | None = None,
    *,
    slip: float = 0.1,
    gamma: float = 0.95,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
    trap_reward: float = -10.0,
) -> tuple[FiniteMDP, np.ndarray]:
    """Return a slippery gridworld whose goal and trap payoffs are realised.

    Layout characters as in :func:`jaxrl.envs.finite_mdp.parse_layout` (default
    :data:`CLIFF_LAYOUT`). Actions 0 up, 1 right, 2 down, 3 left; the intended
    move happens with probability ``1 - slip``, each perpendicular move with
    ``slip / 2``; moving into a wall stays. Every move from a floor cell pays
    ``step_reward``. Entering a goal (trap) cell ends the agent's control: the
    next step, whatever the action, pays ``goal_reward`` (``trap_reward``) and
    moves to one absorbing terminal state (the last state, index ``S - 1``).
    So every return is a realised sum of rewards, and the return law of the
    environment is the law the distributional agents estimate.

    Args:
      layout: rows, a newline-separated string, or ``None``.
      slip: total probability of a perpendicular slip, in ``[0, 1]``.
      gamma: discount in ``(0, 1)``.
      step_reward: reward of each move from a floor cell.
      goal_reward: payoff of a goal cell.
      trap_reward: payoff of a trap cell.

    Returns:
      ``(mdp, terminal)``: ``S = cells + 1`` states (cells row-major, then the
      terminal state), ``A = 4``; ``terminal`` is the ``[S]`` bool mask.

    Raises:
      ConfigError: on a bad layout, ``slip`` or ``gamma``.
    """
    g = parse_layout(CLIFF_LAYOUT if layout is None else layout)
    slip = _check_probability("slip", slip)
    gamma = _check_gamma(gamma)
    if not g.goal.any():
        raise ConfigError("the cliff gridworld layout needs a goal cell 'G'")
    n = len(g.cells)
    S, end = n + 1, n
    nxt = _grid_successors(g)
    P = np.zeros((S, 4, S))
    R = np.zeros((S, 4))
    payoff = g.goal | g.trap
    for s in range(n):
        if payoff[s]:
            P[s, :, end] = 1.0
            R[s, :] = goal_reward if g.goal[s] else trap_reward
            continue
        for a in range(4):
            P[s, a, nxt[s, a]] += 1.0 - slip
            P[s, a, nxt[s, (a + 1) % 4]] += slip / 2
            P[s, a, nxt[s, (a + 3) % 4]] += slip / 2
        R[s, :] = step_reward
    P[end, :, end] = 1.0
    mu0 = np.append(g.start / g.start.sum(), 0.0)
    terminal = np.zeros(S, bool)
    terminal[end] = True
    mdp = FiniteMDP(
        P=jnp.asarray(P, jnp.float32),
        R=jnp.asarray(R, jnp.float32),
        mu0=jnp.asarray(mu0, jnp.float32),
        gamma=jnp.asarray(gamma, jnp.float32),
    )
    return mdp, terminal


def homeostasis(
    *,
    find_prob: float = 0.5,
    end_prob: float = 0.05,
    gamma: float = 0.95,
    food_reward: float = 1.0,
) -> tuple[FiniteMDP, np.ndarray]:
    """Return a foraging MDP for homeostatic regulation (intake near a set point).

    States: 0 hungry/idle (start), 1 holding food (pays ``food_reward`` on the
    next step, whatever the action), 2 terminal (absorbing). Actions: 0 rest,
    1 forage. From state 0 the day ends with probability ``end_prob`` (to the
    terminal); otherwise resting stays idle and foraging finds food with
    probability ``find_prob``. From state 1 the agent eats (reward) and returns
    to idle, or the day ends, with the same ``end_prob``. The mean return grows
    with foraging, so the mean-optimal policy always forages; a homeostatic
    objective ``E f(G - set_point)`` asks the agent to stop once the stock shows
    that enough food was eaten, which no stock-blind policy can do.

    Args:
      find_prob: probability that foraging finds food, in ``[0, 1]``.
      end_prob: per-step probability that the episode ends, in ``[0, 1]``.
      gamma: discount in ``(0, 1)``.
      food_reward: reward of eating one item.

    Returns:
      ``(mdp, terminal)`` with ``S = 3``, ``A = 2``.

    Raises:
      ConfigError: on probabilities outside ``[0, 1]`` or a bad ``gamma``.
    """
    p = _check_probability("find_prob", find_prob)
    h = _check_probability("end_prob", end_prob)
    gamma = _check_gamma(gamma)
    P = np.zeros((3, 2, 3))
    P[0, 0] = [1.0 - h, 0.0, h]
    P[0, 1] = [(1.0 - h) * (1.0 - p), (1.0 - h) * p, h]
    P[1, :] = [1.0 - h, 0.0, h]
    P[2, :, 2] = 1.0
    R = np.zeros((3, 2))
    R[1, :] = food_reward
    mdp = FiniteMDP(
        P=jnp.asarray(P, jnp.float32),
        R=jnp.asarray(R, jnp.float32),
        mu0=jnp.asarray([1.0, 0.0, 0.0], jnp.float32),
        gamma=jnp.asarray(gamma, jnp.float32),
    )
    return mdp, np.array([False, False, True])


def make_cliff_env(
    *,
    layout: tuple[str, ...] | str | None = None,
    slip: float = 0.1,
    gamma: float = 0.95,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
    trap_reward: float = -10.0,
    max_steps: int = 200,
    observation: str = "one_hot",
) -> tuple[FiniteMDPEnv, Any]:
    """Return ``(env, env_params)`` for :func:`cliff_gridworld` (``CliffGrid-v0``)."""
    mdp, terminal = cliff_gridworld(
        layout,
        slip=slip,
        gamma=gamma,
        step_reward=step_reward,
        goal_reward=goal_reward,
        trap_reward=trap_reward,
    )
    return make_finite_mdp_env(
        mdp,
        max_steps=max_steps,
        terminal=terminal,
        observation=observation,
        name="CliffGrid-v0",
    )


def make_homeostasis_env(
    *,
    find_prob: float = 0.5,
    end_prob: float = 0.05,
    gamma: float = 0.95,
    food_reward: float = 1.0,
    max_steps: int = 400,
    observation: str = "one_hot",
) -> tuple[FiniteMDPEnv, Any]:
    """Return ``(env, env_params)`` for :func:`homeostasis` (``Homeostasis-v0``)."""
    mdp, terminal = homeostasis(
        find_prob=find_prob, end_prob=end_prob, gamma=gamma, food_reward=food_reward
    )
    return make_finite_mdp_env(
        mdp,
        max_steps=max_steps,
        terminal=terminal,
        observation=observation,
        name="Homeostasis-v0",
    )


ENV_FACTORIES = {
    "CliffGrid-v0": make_cliff_env,
    "Homeostasis-v0": make_homeostasis_env,
}
"""Registry id -> ``factory(**kwargs) -> (env, env_params)`` (see ``jaxrl.envs.make``)."""
