"""Generators of finite MDPs: Garnet, chain, gridworld and the constrained MDPs.

Every generator is pure and returns a :class:`jaxrl.mdp.FiniteMDP` (tensors
``P[S, A, S']``, ``R[S, A]``, ``mu0[S]``, discount and, for the constrained
ones, a cost table ``C[S, A]``): :func:`garnet` and :func:`chain`;
:func:`gridworld` with its layout parser :func:`parse_layout`
(:class:`GridLayout`, :data:`DEFAULT_LAYOUT`, :data:`GRID_ACTIONS`); and the
constrained MDPs :func:`random_cmdp` and :func:`hazard_gridworld`
(:data:`DEFAULT_HAZARD_LAYOUT`). Sizes and layouts are static; discounts,
rewards, slips and costs may be traced (sweep them with ``vmap``), and the
random generators are vmappable over keys.

Terminal states are absorbing with zero reward (``P[t, a, t] = 1``,
``R[t, a] = 0``), so the exact DP values of an MDP equal the episodic returns
of the sampling environment :class:`jaxrl.envs.finite_mdp.FiniteMDPEnv`, whose
factories (``make_garnet_env``, ``make_gridworld_env``, ...) build envs from
these MDPs. The budget of a constrained MDP is not part of the MDP (see
:mod:`jaxrl.envs.finite_mdp`). Every public name here is also available from
:mod:`jaxrl.envs.finite_mdp`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP, default_float_dtype
from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = [
    "garnet",
    "chain",
    "gridworld",
    "random_cmdp",
    "hazard_gridworld",
    "GridLayout",
    "parse_layout",
    "DEFAULT_LAYOUT",
    "DEFAULT_HAZARD_LAYOUT",
    "GRID_ACTIONS",
]


def _float(dtype: Any) -> Any:
    return default_float_dtype() if dtype is None else dtype


def garnet(
    key: PRNGKey,
    num_states: int,
    num_actions: int,
    branching: int,
    gamma: ArrayLike = 0.9,
    *,
    dtype: Any = None,
) -> FiniteMDP:
    """Draw a Garnet random MDP ``G(S, A, b)`` (Archibald, McKinnon & Thomas, 1995).

    For every ``(s, a)``, ``b`` distinct successor states are drawn uniformly
    without replacement, and their probabilities are the gaps between ``b - 1``
    sorted ``U(0, 1)`` cut points (a uniform draw from the simplex, Bhatnagar et
    al. 2009). Rewards ``R[s, a] ~ U[0, 1)`` i.i.d.; ``mu0`` is uniform.
    Pure and vmappable: ``jax.vmap(lambda k: garnet(k, 10, 4, 3))(keys)`` gives a
    batch of Garnets (sizes are static Python ints; ``gamma`` may be traced). The
    sampling is jitted once per ``(S, A, b, dtype)``.

    Args:
      key: typed key (consumed by one uniform draw of shape ``[S, A, S + b]``).
      num_states: ``S``.
      num_actions: ``A``.
      branching: ``b``, successors per state-action pair, ``1 <= b <= S``.
      gamma: discount factor.
      dtype: float dtype (default: JAX's default float).

    Returns:
      The MDP.

    Raises:
      ConfigError: on sizes out of range.

    Examples:
      >>> mdp = garnet(jax.random.key(0), num_states=5, num_actions=2, branching=2)
      >>> mdp.P.shape, int((mdp.P[0, 0] > 0).sum())
      ((5, 2, 5), 2)
    """
    S, A, b = _garnet_sizes(num_states, num_actions, branching)
    dtype = jnp.dtype(_float(dtype))
    return _garnet(key, jnp.asarray(gamma, dtype), S, A, b, dtype)


def _garnet_sizes(
    num_states: int, num_actions: int, branching: int
) -> tuple[int, int, int]:
    """Return ``(S, A, b)`` as ints after checking their ranges."""
    S, A, b = int(num_states), int(num_actions), int(branching)
    if S < 1 or A < 1:
        raise ConfigError(
            f"garnet needs num_states >= 1 and num_actions >= 1, got {S}, {A}"
        )
    if not 1 <= b <= S:
        raise ConfigError(f"garnet branching must lie in [1, num_states={S}], got {b}")
    return S, A, b


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _garnet(
    key: PRNGKey, gamma: Array, S: int, A: int, b: int, dtype: Any
) -> FiniteMDP:
    """Jitted body of :func:`garnet` (normalised arguments: one compile per size)."""
    # One uniform draw, sliced three ways: successor ranks [S], cut points [b-1]
    # and the reward [1] of every (s, a). (One draw also compiles one sampler.)
    u = jax.random.uniform(key, (S, A, S + b), dtype=dtype)
    successors = jnp.argsort(u[..., :S], axis=-1)[..., :b]
    cuts = jnp.sort(u[..., S : S + b - 1], axis=-1)
    bounds = jnp.concatenate(
        [jnp.zeros((S, A, 1), dtype), cuts, jnp.ones((S, A, 1), dtype)], axis=-1
    )
    probs = jnp.diff(bounds, axis=-1)  # [S, A, b]
    P = jnp.einsum("sab,sabt->sat", probs, jax.nn.one_hot(successors, S, dtype=dtype))
    R = u[..., S + b - 1]
    mu0 = jnp.full((S,), 1.0 / S, dtype)
    return FiniteMDP(P=P, R=R, mu0=mu0, gamma=gamma)


def chain(
    num_states: int = 10,
    *,
    small_reward: ArrayLike = 0.1,
    large_reward: ArrayLike = 1.0,
    slip: ArrayLike = 0.0,
    gamma: ArrayLike = 0.9,
    dtype: Any = None,
) -> FiniteMDP:
    """Return the exploration chain (after Strens' NChain, 2000).

    States ``0 .. N-1`` in a line, start ``mu0 = delta_0``, no terminal states.
    Action 0 (*left*) moves to ``max(s - 1, 0)``, action 1 (*right*) to
    ``min(s + 1, N - 1)``; with probability ``slip`` the move goes the other
    way. Rewards depend only on ``(s, a)``: ``R[0, left] = small_reward`` (a
    nearby, tempting reward) and ``R[N-1, right] = large_reward`` (the distant
    one); all else is zero. With ``slip = 0``, always-left earns
    ``small / (1 - gamma)`` from state 0 and always-right earns
    ``gamma^{N-1} large / (1 - gamma)``, so going right is optimal iff
    ``gamma^{N-1} large > small``. ``slip`` and the rewards may be traced.

    Args:
      num_states: ``N >= 2`` (static).
      small_reward: reward for *left* in state 0.
      large_reward: reward for *right* in state ``N - 1``.
      slip: probability that the move is reversed, in ``[0, 1]``.
      gamma: discount factor.
      dtype: float dtype.

    Returns:
      The MDP with ``A = 2``.

    Examples:
      >>> mdp = chain(4, slip=0.0)
      >>> mdp.P[0, 1], mdp.R[3]
      (Array([0., 1., 0., 0.], dtype=float32), Array([0., 1.], dtype=float32))
    """
    N = int(num_states)
    if N < 2:
        raise ConfigError(f"chain num_states must be >= 2, got {N}")
    dtype = _float(dtype)
    idx = np.arange(N)
    left = np.eye(N)[np.maximum(idx - 1, 0)]  # [S, S']
    right = np.eye(N)[np.minimum(idx + 1, N - 1)]
    intended = jnp.asarray(np.stack([left, right], axis=1), dtype)  # [S, A, S']
    reversed_ = jnp.asarray(np.stack([right, left], axis=1), dtype)
    slip = jnp.asarray(slip, dtype)
    P = (1.0 - slip) * intended + slip * reversed_
    small = np.zeros((N, 2))
    small[0, 0] = 1.0
    large = np.zeros((N, 2))
    large[N - 1, 1] = 1.0
    R = jnp.asarray(small, dtype) * jnp.asarray(small_reward, dtype) + jnp.asarray(
        large, dtype
    ) * jnp.asarray(large_reward, dtype)
    mu0 = jnp.asarray(np.eye(N)[0], dtype)
    return FiniteMDP(P=P, R=R, mu0=mu0, gamma=jnp.asarray(gamma, dtype))


DEFAULT_LAYOUT: tuple[str, ...] = (
    "#######",
    "#S....#",
    "#.##..#",
    "#..#T.#",
    "#....G#",
    "#######",
)
"""The default gridworld: 17 cells (states), one trap, one goal."""

DEFAULT_HAZARD_LAYOUT: tuple[str, ...] = (
    "#########",
    "#S..H..G#",
    "#.#.H.#.#",
    "#.#...#.#",
    "#.......#",
    "#########",
)
"""The default hazard gridworld: 24 cells, one goal, two hazard cells ``H``.

The shortest route to the goal (6 moves) crosses a hazard; a detour through the
middle (10 moves) passes next to the hazards, so slips may still enter them; the
outer corridor (12 moves) never touches them.
"""

GRID_ACTIONS: tuple[str, ...] = ("up", "right", "down", "left")
"""Gridworld action names, by index."""

_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
_LAYOUT_CHARS = "#.SGTH"


class GridLayout(NamedTuple):
    """A parsed gridworld layout (host-side NumPy values).

    Attributes:
      height: rows of the layout.
      width: columns of the layout.
      cells: ``(row, col)`` of each state, row-major order; state ``i`` is ``cells[i]``.
      start: ``[S]`` bool, ``S`` cells.
      goal: ``[S]`` bool, ``G`` cells.
      trap: ``[S]`` bool, ``T`` cells.
      hazard: ``[S]`` bool, ``H`` cells (``None`` only for hand-built layouts).
    """

    height: int
    width: int
    cells: tuple[tuple[int, int], ...]
    start: np.ndarray
    goal: np.ndarray
    trap: np.ndarray
    hazard: np.ndarray | None = None

    @property
    def terminal(self) -> np.ndarray:
        """``[S]`` bool: goal or trap."""
        return self.goal | self.trap

    def state_index(self, row: int, col: int) -> int:
        """Return the state index of cell ``(row, col)`` (ConfigError if a wall)."""
        try:
            return self.cells.index((row, col))
        except ValueError:
            raise ConfigError(
                f"cell ({row}, {col}) is a wall or outside the layout"
            ) from None


def parse_layout(layout: tuple[str, ...] | list[str] | str | None = None) -> GridLayout:
    """Parse a gridworld layout.

    Layout characters: ``#`` wall (not a state; moving into it, or off the grid,
    leaves the agent in place), ``.`` floor, ``S`` start (floor; the initial
    distribution is uniform over ``S`` cells), ``G`` goal (absorbing terminal,
    pays ``goal_reward`` on entry), ``T`` trap (absorbing terminal, pays
    ``trap_reward`` on entry), ``H`` hazard (floor that the agent may cross;
    :func:`hazard_gridworld` charges ``hazard_cost`` on entry, :func:`gridworld`
    treats it as plain floor). Every non-wall cell is a state, numbered
    row-major.

    Args:
      layout: rows of equal length, a newline-separated string, or ``None`` for
        :data:`DEFAULT_LAYOUT`.

    Returns:
      The :class:`GridLayout`.

    Raises:
      ConfigError: on ragged rows, unknown characters or no start cell.

    Examples:
      >>> g = parse_layout(("S.#", "..G"))
      >>> len(g.cells), g.goal.nonzero()[0].tolist()
      (5, [4])
    """
    if layout is None:
        layout = DEFAULT_LAYOUT
    if isinstance(layout, str):
        layout = tuple(row for row in layout.strip("\n").split("\n"))
    rows = tuple(str(r) for r in layout)
    if not rows or not rows[0]:
        raise ConfigError("gridworld layout is empty")
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ConfigError(
                "gridworld layout rows must have equal length; "
                f"row {i} has {len(row)}, "
                f"row 0 has {width}"
            )
        for j, ch in enumerate(row):
            if ch not in _LAYOUT_CHARS:
                raise ConfigError(
                    f"gridworld layout has unknown character {ch!r} "
                    f"at row {i}, col {j}; "
                    f"valid: {' '.join(_LAYOUT_CHARS)}"
                )
    cells = tuple(
        (i, j) for i, row in enumerate(rows) for j, ch in enumerate(row) if ch != "#"
    )
    kinds = (
        np.array([rows[i][j] for i, j in cells]) if cells else np.array([], dtype=str)
    )
    start, goal, trap = kinds == "S", kinds == "G", kinds == "T"
    if not start.any():
        raise ConfigError("gridworld layout needs at least one start cell 'S'")
    return GridLayout(len(rows), width, cells, start, goal, trap, kinds == "H")


def _grid_successors(g: GridLayout) -> np.ndarray:
    """Return ``[S, 4]`` deterministic successor indices of each move."""
    index = {c: i for i, c in enumerate(g.cells)}
    nxt = np.zeros((len(g.cells), 4), np.int64)
    for i, (r, c) in enumerate(g.cells):
        for a, (dr, dc) in enumerate(_MOVES):
            nxt[i, a] = index.get((r + dr, c + dc), i)
    return nxt


def gridworld(
    layout: tuple[str, ...] | list[str] | str | None = None,
    *,
    slip: ArrayLike = 0.1,
    gamma: ArrayLike = 0.95,
    goal_reward: ArrayLike = 1.0,
    trap_reward: ArrayLike = -1.0,
    step_reward: ArrayLike = 0.0,
    dtype: Any = None,
) -> FiniteMDP:
    """Return the MDP of a slippery gridworld (layout: see :func:`parse_layout`).

    Actions (:data:`GRID_ACTIONS`): 0 up, 1 right, 2 down, 3 left. The intended
    move happens with probability ``1 - slip``; with probability ``slip / 2``
    each, the agent moves in one of the two perpendicular directions instead.
    Moves into walls or off the grid leave the agent in place. Goal and trap
    cells are absorbing with zero reward. From any other cell,
    ``R[s, a] = step_reward + sum_{s'} P[s, a, s'] (goal_reward [s' is G] +
    trap_reward [s' is T])``: the expected entry bonus (the env pays expected
    rewards, see the module docstring). ``slip`` and the rewards may be traced;
    the layout is static.

    Args:
      layout: the layout, or ``None`` for :data:`DEFAULT_LAYOUT`.
      slip: slip probability in ``[0, 1]``.
      gamma: discount factor.
      goal_reward: bonus for entering a goal.
      trap_reward: bonus (usually negative) for entering a trap.
      step_reward: reward of every move from a non-terminal cell.
      dtype: float dtype.

    Returns:
      The MDP (``A = 4``); its terminal mask is ``parse_layout(layout).terminal``.

    Examples:
      >>> mdp = gridworld(("SG",), slip=0.0)
      >>> mdp.R[0]  # right enters the goal
      Array([0., 1., 0., 0.], dtype=float32)
    """
    g = parse_layout(layout)
    dtype = _float(dtype)
    S = len(g.cells)
    nxt = _grid_successors(g)
    eye = np.eye(S)
    terminal = g.terminal
    intended = np.zeros((S, 4, S))
    perpendicular = np.zeros((S, 4, S))
    for a in range(4):
        intended[:, a] = eye[nxt[:, a]]
        perpendicular[:, a] = 0.5 * (
            eye[nxt[:, (a + 1) % 4]] + eye[nxt[:, (a + 3) % 4]]
        )
    absorbing = np.repeat(eye[:, None, :], 4, axis=1)
    intended[terminal] = absorbing[terminal]
    perpendicular[terminal] = absorbing[terminal]
    slip = jnp.asarray(slip, dtype)
    P = (1.0 - slip) * jnp.asarray(intended, dtype) + slip * jnp.asarray(
        perpendicular, dtype
    )
    bonus = jnp.asarray(g.goal, dtype) * jnp.asarray(goal_reward, dtype) + jnp.asarray(
        g.trap, dtype
    ) * jnp.asarray(trap_reward, dtype)
    live = jnp.asarray(~terminal, dtype)[:, None]
    R = live * (jnp.asarray(step_reward, dtype) + P @ bonus)
    mu0 = jnp.asarray(g.start / g.start.sum(), dtype)
    return FiniteMDP(P=P, R=R, mu0=mu0, gamma=jnp.asarray(gamma, dtype))


def random_cmdp(
    key: PRNGKey,
    num_states: int,
    num_actions: int,
    branching: int,
    gamma: ArrayLike = 0.9,
    *,
    cost_correlation: ArrayLike = 0.5,
    dtype: Any = None,
) -> FiniteMDP:
    """Draw a random constrained MDP: a Garnet with a nonnegative cost table.

    ``P``, ``R`` and ``mu0`` are those of :func:`garnet` (``R ~ U[0, 1)``); the
    cost is ``C[s, a] = rho R[s, a] + (1 - rho) U[s, a]`` with ``U ~ U[0, 1)``
    i.i.d. and ``rho = cost_correlation`` in ``[0, 1]``, so ``C`` lies in
    ``[0, 1)`` and, for ``rho > 0``, rewarding actions tend to be costly (the
    trade-off that makes the budget bind). The budget is not part of the MDP
    (see the module docstring). Pure and vmappable over keys like
    :func:`garnet`; ``gamma`` and ``cost_correlation`` may be traced.

    Args:
      key: typed key (split into the Garnet's key and the cost noise key).
      num_states: ``S``.
      num_actions: ``A``.
      branching: successors per ``(s, a)``, ``1 <= b <= S``.
      gamma: discount factor.
      cost_correlation: ``rho`` in ``[0, 1]``: weight of the reward in the cost.
      dtype: float dtype (default: JAX's default float).

    Returns:
      The MDP with ``C`` set.

    Raises:
      ConfigError: on sizes or ``cost_correlation`` out of range.

    Examples:
      >>> mdp = random_cmdp(jax.random.key(0), 5, 2, 2, cost_correlation=1.0)
      >>> bool(jnp.allclose(mdp.C, mdp.R)), mdp.C.shape
      (True, (5, 2))
    """
    S, A, b = _garnet_sizes(num_states, num_actions, branching)
    _check_probability("cost_correlation", cost_correlation)
    dtype = jnp.dtype(_float(dtype))
    gamma, rho = jnp.asarray(gamma, dtype), jnp.asarray(cost_correlation, dtype)
    return _random_cmdp(key, gamma, rho, S, A, b, dtype)


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _random_cmdp(
    key: PRNGKey, gamma: Array, rho: Array, S: int, A: int, b: int, dtype: Any
) -> FiniteMDP:
    """Jitted body of :func:`random_cmdp` (one compile per size and dtype)."""
    k_mdp, k_cost = jax.random.split(key)
    mdp = _garnet(k_mdp, gamma, S, A, b, dtype)
    noise = jax.random.uniform(k_cost, (S, A), dtype)
    return mdp.replace(C=rho * mdp.R + (1.0 - rho) * noise)


def hazard_gridworld(
    layout: tuple[str, ...] | list[str] | str | None = None,
    *,
    slip: ArrayLike = 0.1,
    gamma: ArrayLike = 0.95,
    goal_reward: ArrayLike = 1.0,
    trap_reward: ArrayLike = -1.0,
    step_reward: ArrayLike = 0.0,
    hazard_cost: ArrayLike = 1.0,
    dtype: Any = None,
) -> FiniteMDP:
    """Return a slippery gridworld whose hazard cells ``H`` pay a cost on entry.

    ``P``, ``R`` and ``mu0`` are those of :func:`gridworld` on the same layout
    (hazards are ordinary floor for the dynamics and the reward). Every step
    that ends in a hazard cell (entering it, or staying after bumping into a
    wall) costs ``hazard_cost``; the table holds the expected cost
    ``C[s, a] = hazard_cost * sum_{s'} P[s, a, s'] [s' is H]``, zero from
    terminal cells. With the default layout the shortest route crosses a
    hazard, so a budget on the discounted hazard cost trades path length
    against risk (the optimal policy mixes routes).

    Args:
      layout: the layout (see :func:`parse_layout`), or ``None`` for
        :data:`DEFAULT_HAZARD_LAYOUT`.
      slip: slip probability in ``[0, 1]``.
      gamma: discount factor.
      goal_reward: bonus for entering a goal.
      trap_reward: bonus for entering a trap.
      step_reward: reward of every move from a non-terminal cell.
      hazard_cost: cost of a step that ends in a hazard cell.
      dtype: float dtype.

    Returns:
      The MDP with ``C`` set (``A = 4``); its terminal mask is
      ``parse_layout(layout).terminal``.

    Examples:
      >>> mdp = hazard_gridworld(("SHG",), slip=0.0)
      >>> mdp.C[0], mdp.R[1]  # right enters the hazard; from it, right reaches G
      (Array([0., 1., 0., 0.], dtype=float32), Array([0., 1., 0., 0.], dtype=float32))
    """
    layout = DEFAULT_HAZARD_LAYOUT if layout is None else layout
    g = parse_layout(layout)
    mdp = gridworld(
        layout,
        slip=slip,
        gamma=gamma,
        goal_reward=goal_reward,
        trap_reward=trap_reward,
        step_reward=step_reward,
        dtype=dtype,
    )
    dtype = mdp.P.dtype
    live = jnp.asarray(~g.terminal, dtype)[:, None]
    hazard = jnp.asarray(g.hazard, dtype)
    C = live * jnp.asarray(hazard_cost, dtype) * (mdp.P @ hazard)
    return mdp.replace(C=C)


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    v = np.asarray(value, np.float64)
    if np.any(~((v >= 0.0) & (v <= 1.0))):
        raise ConfigError(f"{name} must lie in [0, 1], got {v.flat[0]:g}")
