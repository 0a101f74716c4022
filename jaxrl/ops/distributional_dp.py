r"""Stock-augmented distributional dynamic programming on :class:`FiniteMDP` tensors.

Tabular distributional policy evaluation, value iteration and policy iteration
for expected-utility objectives :math:`\max_\pi \mathbb{E} f(c_0 + G^\pi)` of
the return law (Pires et al., "Optimizing return distributions with
distributional dynamic programming", JMLR 2025, arXiv 2501.13028), with the CVaR
of the return obtained by an outer search over the initial stock :math:`c_0`.
All functions are pure and *unbatched* (one MDP; ``jax.vmap`` over a batch of
MDPs, stock grids or supports). Loop lengths and the utility are static; the
grids, ``alpha`` and the MDP (``gamma`` included) may be traced.

**Augmented MDP.** The state is :math:`(s, c)` with the *stock*
:math:`c_{t+1} = (c_t + r_t)/\gamma` (:func:`jaxrl.ops.stock.stock_update`),
so that :math:`c_0 + G_0 = \gamma^t (c_t + G_t)`. The stock lives on a grid
``stocks[K]`` (strictly increasing; :func:`stock_grid` builds an evenly spaced
one). An off-grid next stock :math:`c'` is clipped to ``[stocks[0], stocks[-1]]``
and *randomly rounded* to its two neighbouring grid points with the linear
interpolation weights (:func:`stock_interpolation`): to ``stocks[j]`` with
probability :math:`1 - w` and to ``stocks[j+1]`` with probability
:math:`w = (c' - c_j)/(c_{j+1} - c_j)`, a mean-preserving rounding. Equivalently,
the return law at :math:`(s', c')` is the linear interpolation of the laws at
the two neighbouring grid points, each following its own action. A policy is a
table ``policy[S, K]`` (or probabilities ``[S, K, A]``) over grid stocks.

**Return laws.** ``eta[S, K, A, N]`` holds the categorical law, on a fixed
support ``support[N]`` (strictly increasing; :func:`return_support` builds an
evenly spaced one), of the *future* return :math:`G` from :math:`(s, c_k)` taking
``a`` and then following the policy (the stock is not added). One sweep is

.. math::
    \eta'(s, c_k, a) = \Pi_z\Big(\mathrm{law}\big[R(s, a) + \gamma\, G(S', K', A')
    \big]\Big), \quad S' \sim P(\cdot|s, a),\ K' \sim
    \mathrm{round}\big((c_k + R(s, a))/\gamma\big),\ A' \sim \pi(\cdot|S', K'),

with :math:`\Pi_z` the Cramér projection
(:func:`jaxrl.ops.distributional.project_categorical`). Rewards are the MDP's
expected rewards ``R[s, a]``, paid deterministically (as
``jaxrl.envs.finite_mdp.FiniteMDPEnv`` does). The greedy step is the stock-shifted rule
:math:`\pi(s, c_k) = \arg\max_b \mathbb{E} f(c_k + X_b)`,
:math:`X_b \sim \eta(s, c_k, b)`
(:func:`jaxrl.ops.stock.stock_greedy_action`).

**What is exact.**

* The laws of :func:`distributional_policy_evaluation` are the exact return laws
  of the policy *executed with a grid stock as its memory*: start from
  :math:`c_0` rounded as above, update the memory by
  :math:`k' \sim \mathrm{round}((c_k + r)/\gamma)` after each reward and act
  ``policy[s, k]``. This is a genuine history-dependent (randomised) policy of
  the original MDP, so Monte Carlo rollouts of it reproduce ``eta`` up to the
  return projection alone. The memory stock equals the true stock
  :math:`c_t` whenever the grid contains every reached stock.
* The return projection :math:`\Pi_z` preserves the mean whenever no atom
  :math:`R + \gamma z_j` falls outside ``[z_0, z_{N-1}]``, whatever the number of
  atoms; it is exact (no mass split) when every such atom carrying mass is a
  support atom, e.g. integer rewards, ``gamma = 1`` and an integer support, or
  dyadic supports with ``gamma = 1/2``, or a support holding every reachable
  return (any strictly increasing support is allowed).
* Value iteration and policy iteration are exact, i.e. optimal over all
  history-dependent policies of the original MDP for
  :math:`\mathbb{E} f(c_0 + G)`, when (i) the stock grid contains every stock
  reachable at a state where the choice matters and :math:`c_0` (no rounding),
  (ii) the return projection is exact and (iii) ``f`` is positively homogeneous
  (:math:`f(\gamma x) = \gamma^p f(x)`, true for all built-in utilities), or
  ``gamma = 1``. For finite-horizon problems ``H`` sweeps suffice. Clipping the
  stock is harmless for ``min_zero``, ``indicator`` and ``neg_abs`` beyond the
  window :math:`[-G_{\max}, -G_{\min}]` where the outcome is already decided
  (the greedy choice there does not depend on how far out the stock is).
  ``identity`` ignores the stock altogether: it is value iteration.
* The CVaR search :func:`cvar_objective` evaluates the Rockafellar-Uryasev bound
  :math:`-c_0 + \frac{1}{\alpha}\mathbb{E}\min(c_0 + G, 0)` at every grid stock;
  its maximum equals :math:`\max_\pi \mathrm{CVaR}_\alpha(G^\pi)` when the DP is
  exact and the grid contains :math:`-\mathrm{VaR}_\alpha` of an optimal return.
  Otherwise each entry is still a lower bound on the CVaR of the policy's law
  from that stock, and, given exact inner values at the grid stocks, the grid
  search loses at most :math:`\Delta c \max(1, 1/\alpha - 1)` against a search
  over all :math:`c_0` in ``[stocks[0], stocks[-1]]`` (the bound has slope in
  :math:`[-1, 1/\alpha - 1]` in :math:`c_0`).

**What is approximate.** When the grid is not closed under the update (e.g.
``gamma = 0.9``), the greedy step at grid stock :math:`c_k` stands for every
true stock rounded to it, so VI/PI optimise over grid-memory policies only
approximately: the returned policy and its laws are consistent (its objective is
evaluated exactly, up to the return projection), but it may be slightly
suboptimal; refining the stock grid and the support reduces the gap. Choose
exactly representable (dyadic) grid spacings: the indicator ``x >= 0`` at a
threshold that coincides with an atom is otherwise decided by float rounding.

``gamma`` must lie in ``(0, 1]``: ``gamma = 1`` is allowed for episodic MDPs in
which every policy reaches an absorbing zero-reward state (build such a
``FiniteMDP`` directly: :func:`jaxrl.mdp.make_mdp` requires ``gamma < 1``).
Absorbing zero-reward states keep the law :math:`\delta_0` when ``0`` is a
support atom.

References:
  Pires, Rowland, Borsa, Guo, Khetarpal, Barreto, Abel, Munos and Dabney,
  JMLR 2025 (arXiv 2501.13028), stock augmentation and distributional DP;
  Bäuerle and Ott, "Markov decision processes with average-value-at-risk
  criteria", Math. Meth. Oper. Res. 2011 (CVaR by an outer search over the
  initial stock); Rowland et al., AISTATS 2018 (categorical projection).
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import check_range
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import distributional as dist
from jaxrl.ops import risk
from jaxrl.ops import stock as stock_ops
from jaxrl.types import Array, ArrayLike

__all__ = [
    "stock_grid",
    "return_support",
    "stock_interpolation",
    "stock_weights",
    "projection_matrix",
    "delta_laws",
    "policy_probs",
    "cramer_distance",
    "stock_action_values",
    "stock_greedy_policy",
    "stock_bellman_expectation",
    "stock_bellman_optimality",
    "distributional_policy_evaluation",
    "distributional_value_iteration",
    "distributional_policy_iteration",
    "initial_return_law",
    "initial_objective",
    "cvar_objective",
]

# ----------------------------------------------------------------------------- grids


def _check_count(name: str, n: int, low: int = 2) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {n!r}")


def _grid(low: ArrayLike, high: ArrayLike, num: int, names: tuple[str, ...]) -> Array:
    low = jnp.asarray(low, jnp.result_type(float))
    high = jnp.asarray(high, low.dtype)
    chex.assert_rank([low, high], 0)
    check_range(names[0], low, -np.inf, np.inf)
    check_range(names[1], high, -np.inf, np.inf)
    if not isinstance(low, jax.core.Tracer) and not isinstance(high, jax.core.Tracer):
        if not float(low) < float(high):
            raise ConfigError(
                f"{names[0]} must be < {names[1]}, "
                f"got {float(low):g} >= {float(high):g}"
            )
    step = (high - low) / (num - 1)
    return low + jnp.arange(num, dtype=low.dtype) * step


def stock_grid(stock_min: ArrayLike, stock_max: ArrayLike, num_stocks: int) -> Array:
    r"""Return the evenly spaced stock grid :math:`c_k = c_{min} + k\Delta c`, ``[K]``.

    Built as ``stock_min + k * step`` (not by blending the ends), so the grid
    points are exact whenever the spacing is exactly representable (integers,
    dyadic fractions): on-grid stock updates then land exactly on grid points.

    Args:
      stock_min: ``[]`` smallest stock (may be traced).
      stock_max: ``[]`` largest stock, ``> stock_min`` (checked when concrete).
      num_stocks: static ``K >= 2``.

    Returns:
      ``[K]`` the grid.

    Raises:
      ConfigError: ``num_stocks < 2`` (an empty or one-point grid), or concrete
        ``stock_min >= stock_max``.

    Examples:
      >>> stock_grid(-2.0, 2.0, 5).tolist()
      [-2.0, -1.0, 0.0, 1.0, 2.0]
    """
    _check_count("num_stocks", num_stocks)
    return _grid(stock_min, stock_max, num_stocks, ("stock_min", "stock_max"))


def return_support(v_min: ArrayLike, v_max: ArrayLike, num_atoms: int) -> Array:
    r"""Return the evenly spaced support :math:`z_i = v_{min} + i\Delta`, ``[N]``.

    Same atoms as :func:`jaxrl.ops.distributional.categorical_support` but built
    as ``v_min + i * step``, exact for exactly representable spacings (so
    ``r + z_j`` lands on a support atom for integer rewards and supports).

    Args:
      v_min: ``[]`` smallest atom (may be traced).
      v_max: ``[]`` largest atom, ``> v_min`` (checked when concrete).
      num_atoms: static ``N >= 2``.

    Returns:
      ``[N]`` the support.

    Raises:
      ConfigError: ``num_atoms < 2`` or concrete ``v_min >= v_max``.

    Examples:
      >>> return_support(0.0, 1.0, 5).tolist()
      [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    _check_count("num_atoms", num_atoms)
    return _grid(v_min, v_max, num_atoms, ("v_min", "v_max"))


def stock_interpolation(stocks: ArrayLike, stock: ArrayLike) -> tuple[Array, Array]:
    r"""Return the neighbouring grid index and interpolation weight of a stock.

    The stock is clipped to ``[stocks[0], stocks[-1]]``; ``index = j`` is the
    cell with :math:`c_j \le c \le c_{j+1}` (``0 <= j <= K - 2``) and
    :math:`w = (c - c_j)/(c_{j+1} - c_j) \in [0, 1]` the weight of ``j + 1``.
    Randomly rounding ``c`` to ``c_j`` w.p. :math:`1 - w` and to :math:`c_{j+1}`
    w.p. :math:`w` preserves its mean (inside the grid). On a grid point,
    ``w = 0`` (or ``w = 1`` at the last point) exactly. Elementwise.

    Args:
      stocks: ``[K]`` strictly increasing grid, ``K >= 2``.
      stock: ``[...]`` stocks.

    Returns:
      ``(index, weight)``: ``[...]`` int32 and ``[...]`` float.

    Examples:
      >>> import jax.numpy as jnp
      >>> j, w = stock_interpolation(jnp.array([0.0, 1.0, 3.0]), jnp.array([2.5, -1.0]))
      >>> j.tolist(), w.tolist()
      ([1, 0], [0.75, 0.0])
    """
    stocks = jnp.asarray(stocks)
    chex.assert_rank(stocks, 1)
    if stocks.shape[0] < 2:
        raise ConfigError(f"the stock grid needs >= 2 points, got {stocks.shape[0]}")
    c = jnp.clip(jnp.asarray(stock, stocks.dtype), stocks[0], stocks[-1])
    j = jnp.searchsorted(stocks, c, side="right") - 1
    j = jnp.clip(j, 0, stocks.shape[0] - 2).astype(jnp.int32)
    lo, hi = stocks[j], stocks[j + 1]
    w = jnp.clip((c - lo) / (hi - lo), 0.0, 1.0)
    return j, w


def stock_weights(stocks: ArrayLike, stock: ArrayLike) -> Array:
    """Return the rounding distribution of one stock over the grid, ``[K]``.

    See :func:`stock_interpolation` (``1 - w`` on ``index``, ``w`` on ``index + 1``).

    Args:
      stocks: ``[K]`` grid.
      stock: ``[]`` stock.

    Returns:
      ``[K]`` probabilities.

    Examples:
      >>> import jax.numpy as jnp
      >>> stock_weights(jnp.array([0.0, 1.0, 2.0]), 0.25).tolist()
      [0.75, 0.25, 0.0]
    """
    stocks = jnp.asarray(stocks)
    chex.assert_rank(jnp.asarray(stock), 0)
    j, w = stock_interpolation(stocks, stock)
    k = jnp.arange(stocks.shape[0])
    return jnp.where(k == j, 1.0 - w, 0.0) + jnp.where(k == j + 1, w, 0.0)


# ----------------------------------------------------------------------- laws, tables


def projection_matrix(atoms: ArrayLike, support: ArrayLike) -> Array:
    r"""Return the matrix of the Cramér projection of laws on ``atoms``, ``[M, N]``.

    Row ``j`` is :func:`jaxrl.ops.distributional.project_categorical` of a unit
    mass at ``atoms[j]``, so ``probs @ projection_matrix(atoms, support)`` projects
    the law ``sum_j probs[j] delta_{atoms[j]}``.

    Args:
      atoms: ``[M]`` source atoms (e.g. ``r + gamma * support``).
      support: ``[N]`` strictly increasing target support.

    Returns:
      ``[M, N]`` row-stochastic matrix.

    Examples:
      >>> import jax.numpy as jnp
      >>> projection_matrix(jnp.array([0.5, 3.0]), jnp.array([0.0, 1.0, 2.0])).tolist()
      [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    """
    atoms = jnp.asarray(atoms)
    eye = jnp.eye(atoms.shape[0], dtype=jnp.result_type(atoms.dtype, float))
    return jax.vmap(lambda p: dist.project_categorical(atoms, p, support))(eye)


def delta_laws(shape: tuple[int, ...], support: ArrayLike, value: ArrayLike = 0.0):
    """Return ``shape + [N]`` copies of the projected Dirac law at ``value``.

    The default (``value = 0``) is the return law of an exhausted horizon, the
    usual initial table of distributional DP.

    Args:
      shape: static leading shape, e.g. ``(S, K, A)``.
      support: ``[N]`` support.
      value: ``[]`` the Dirac location (projected onto ``support``).

    Returns:
      ``[*shape, N]`` laws.

    Examples:
      >>> import jax.numpy as jnp
      >>> delta_laws((2,), jnp.array([-1.0, 1.0])).tolist()
      [[0.5, 0.5], [0.5, 0.5]]
    """
    support = jnp.asarray(support)
    law = dist.project_categorical(
        jnp.asarray(value, support.dtype)[None], None, support
    )
    return jnp.broadcast_to(law, (*shape, support.shape[0]))


def policy_probs(policy: ArrayLike, num_stocks: int, num_actions: int) -> Array:
    """Return a stock-Markov policy as probabilities ``[S, K, A]``.

    Accepted forms (the dtype decides between the two 2-D forms, at trace time):

    * integer ``[S, K]``: a deterministic stock-Markov policy (action indices);
    * float ``[S, K, A]``: stochastic stock-Markov probabilities (returned as is);
    * float ``[S, A]``: a stock-blind (Markov) policy, the same at every stock.

    Args:
      policy: the policy table.
      num_stocks: static ``K``.
      num_actions: static ``A``.

    Returns:
      ``[S, K, A]`` probabilities (float32/64).

    Examples:
      >>> import jax.numpy as jnp
      >>> policy_probs(jnp.array([[1, 0]]), 2, 2).tolist()
      [[[0.0, 1.0], [1.0, 0.0]]]
    """
    policy = jnp.asarray(policy)
    if jnp.issubdtype(policy.dtype, jnp.integer):
        chex.assert_rank(policy, 2)
        chex.assert_axis_dimension(policy, 1, num_stocks)
        return jax.nn.one_hot(policy, num_actions, dtype=jnp.result_type(float))
    if policy.ndim == 2:
        chex.assert_axis_dimension(policy, 1, num_actions)
        return jnp.broadcast_to(
            policy[:, None, :], (policy.shape[0], num_stocks, num_actions)
        )
    chex.assert_shape(policy, (None, num_stocks, num_actions))
    return policy


def cramer_distance(p: ArrayLike, q: ArrayLike, support: ArrayLike) -> Array:
    r"""Return the Cramér (:math:`\ell_2`) distance of two laws on a support, ``[...]``.

    :math:`\big(\sum_{i<N-1} (F_p(z_i) - F_q(z_i))^2 (z_{i+1} - z_i)\big)^{1/2}`,
    the metric in which the projected distributional Bellman operator is a
    :math:`\sqrt{\gamma}`-contraction (Rowland et al., AISTATS 2018).

    Args:
      p: ``[..., N]`` probabilities.
      q: ``[..., N]`` probabilities.
      support: ``[N]`` strictly increasing support.

    Returns:
      ``[...]`` distances.

    Examples:
      >>> import jax.numpy as jnp
      >>> z = jnp.array([0.0, 1.0, 3.0])
      >>> p, q = jnp.array([1.0, 0.0, 0.0]), jnp.array([0.0, 0.0, 1.0])
      >>> round(float(cramer_distance(p, q, z)), 4)
      1.7321
    """
    p, q = jnp.asarray(p), jnp.asarray(q)
    support = jnp.asarray(support, p.dtype)
    chex.assert_equal_shape([p, q])
    diff = jnp.cumsum(p - q, axis=-1)[..., :-1]
    return jnp.sqrt(jnp.sum(diff**2 * jnp.diff(support), axis=-1))


# --------------------------------------------------------------------------- greedy


def stock_action_values(
    eta: ArrayLike, stocks: ArrayLike, support: ArrayLike, utility: str
) -> Array:
    r"""Return the stock-shifted utilities :math:`\mathbb{E} f(c_k + X)`, ``[S, K, A]``.

    :math:`X \sim \eta(s, c_k, a)`.

    See :func:`jaxrl.ops.stock.stock_shifted_values`.

    Args:
      eta: ``[S, K, A, N]`` return laws.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` support.
      utility: static utility name (:data:`jaxrl.ops.distributional.UTILITY_NAMES`)
        or elementwise callable.

    Returns:
      ``[S, K, A]`` stock-shifted expected utilities.

    Examples:
      >>> import jax.numpy as jnp
      >>> eta = jnp.array([[[[1.0, 0.0], [0.5, 0.5]]]])  # S = K = 1, A = N = 2
      >>> stock_action_values(eta, jnp.array([-1.0]), jnp.array([0.0, 2.0]),
      ...                     "indicator").tolist()
      [[[0.0, 0.5]]]
    """
    eta = jnp.asarray(eta)
    chex.assert_rank(eta, 4)
    stocks = jnp.asarray(stocks, eta.dtype)
    chex.assert_shape(stocks, (eta.shape[1],))
    support = jnp.asarray(support, eta.dtype)

    def one(laws: Array, c: Array) -> Array:
        return stock_ops.stock_shifted_values(support, laws, c, utility)

    per_stock = jax.vmap(one, in_axes=(0, 0))
    return jax.vmap(per_stock, in_axes=(0, None))(eta, stocks)


def stock_greedy_policy(
    eta: ArrayLike, stocks: ArrayLike, support: ArrayLike, utility: str
) -> Array:
    r"""Return the stock-shifted greedy policy, ``[S, K]`` int32.

    :math:`\pi(s, c_k) = \arg\max_b \mathbb{E} f(c_k + X_b)`.

    See :func:`jaxrl.ops.stock.stock_greedy_action` (ties go to the
    lowest action; ``identity`` compares means and ignores the stock).

    Args:
      eta: ``[S, K, A, N]`` return laws.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` support.
      utility: static utility name or callable.

    Returns:
      ``[S, K]`` int32 actions.

    Examples:
      >>> import jax.numpy as jnp
      >>> eta = jnp.array([[[[1.0, 0.0], [0.5, 0.5]]] * 2])  # S = 1, K = 2
      >>> stock_greedy_policy(eta, jnp.array([-1.0, 0.0]), jnp.array([0.0, 2.0]),
      ...                     "indicator").tolist()
      [[1, 0]]
    """
    eta = jnp.asarray(eta)
    chex.assert_rank(eta, 4)
    stocks = jnp.asarray(stocks, eta.dtype)
    chex.assert_shape(stocks, (eta.shape[1],))
    support = jnp.asarray(support, eta.dtype)

    def one(laws: Array, c: Array) -> Array:
        return stock_ops.stock_greedy_action(support, laws, c, utility)

    return jax.vmap(jax.vmap(one, in_axes=(0, 0)), in_axes=(0, None))(eta, stocks)


# ------------------------------------------------------------------------- operators


def _check(mdp: FiniteMDP, eta: Array, stocks: Array, support: Array) -> None:
    S, A = mdp.num_states, mdp.num_actions
    chex.assert_shape(mdp.P, (S, A, S))
    chex.assert_shape(mdp.R, (S, A))
    chex.assert_rank([stocks, support], 1)
    chex.assert_shape(eta, (S, stocks.shape[0], A, support.shape[0]))


class _Model(NamedTuple):
    """Sweep-invariant pieces of the backup (computed once per solve)."""

    index: Array  # [S, A, K] int32 lower grid neighbour of (c_k + R(s, a)) / gamma
    weight: Array  # [S, A, K] weight of index + 1
    proj: Array  # [S, A, N, N] projection of R(s, a) + gamma z onto z


def _model(mdp: FiniteMDP, stocks: Array, support: Array) -> _Model:
    dtype = support.dtype
    gamma = jnp.asarray(mdp.gamma, dtype)
    reward = mdp.R.astype(dtype)
    # Next stock of every (s, a, k), rounded onto the grid.
    c_next = stock_ops.stock_update(stocks[None, None, :], reward[:, :, None], gamma)
    index, weight = stock_interpolation(stocks, c_next)
    # Shift by R(s, a) + gamma z and project back onto the support.
    atoms = reward[:, :, None] + gamma * support  # [S, A, N]
    proj = jax.vmap(jax.vmap(lambda x: projection_matrix(x, support)))(atoms)
    return _Model(index, weight, proj.astype(dtype))


def _backup(mdp: FiniteMDP, v: Array, model: _Model) -> Array:
    """Return ``eta'[S, K, A, N]`` from the next-state laws ``v[S', K', N]``."""
    # Mix over next states for every next grid stock: pv[s, a, k', n].
    pv = jnp.einsum("sat,tkn->sakn", mdp.P.astype(v.dtype), v)
    lo = jnp.take_along_axis(pv, model.index[..., None], axis=2)
    hi = jnp.take_along_axis(pv, model.index[..., None] + 1, axis=2)
    w = model.weight[..., None]
    m = (1.0 - w) * lo + w * hi  # [S, A, K, N], law of G(S', K', A')
    return jnp.einsum("sakn,sani->skai", m, model.proj)


def _expectation(mdp: FiniteMDP, eta: Array, pi: Array, model: _Model) -> Array:
    v = jnp.einsum("ska,skan->skn", pi, eta)
    return _backup(mdp, v, model)


def stock_bellman_expectation(
    mdp: FiniteMDP,
    eta: ArrayLike,
    policy: ArrayLike,
    stocks: ArrayLike,
    support: ArrayLike,
) -> Array:
    r"""Apply the projected distributional Bellman operator of a stock-Markov policy.

    :math:`\eta'(s, c_k, a) = \Pi_z \mathrm{law}[R(s,a) + \gamma G(S', K', A')]`
    with the randomly rounded next stock (see the module docstring), one
    synchronous sweep over the table.

    Args:
      mdp: the MDP (``gamma`` in ``(0, 1]``).
      eta: ``[S, K, A, N]`` laws.
      policy: ``[S, K]`` int, ``[S, K, A]`` or ``[S, A]`` probabilities
        (:func:`policy_probs`).
      stocks: ``[K]`` stock grid.
      support: ``[N]`` return support.

    Returns:
      ``[S, K, A, N]`` the backed-up laws.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 1, 1)), [[1.0]], gamma=0.5)
      >>> z, c = jnp.array([0.0, 1.0, 2.0]), jnp.array([0.0, 1.0])
      >>> eta = delta_laws((1, 2, 1), z)  # delta_0
      >>> stock_bellman_expectation(mdp, eta, jnp.zeros((1, 2), int), c, z)[0, 0, 0]
      Array([0., 1., 0.], dtype=float32)
    """
    eta = jnp.asarray(eta)
    stocks = jnp.asarray(stocks, eta.dtype)
    support = jnp.asarray(support, eta.dtype)
    _check(mdp, eta, stocks, support)
    pi = policy_probs(policy, stocks.shape[0], mdp.num_actions).astype(eta.dtype)
    chex.assert_shape(pi, eta.shape[:3])
    return _expectation(mdp, eta, pi, _model(mdp, stocks, support))


def stock_bellman_optimality(
    mdp: FiniteMDP,
    eta: ArrayLike,
    stocks: ArrayLike,
    support: ArrayLike,
    utility: str,
) -> Array:
    r"""Apply the distributional optimality operator with the stock-shifted greedy rule.

    :func:`stock_bellman_expectation` of :func:`stock_greedy_policy` ``(eta)``:
    at every next grid stock :math:`c_{k'}` the action
    :math:`\arg\max_b \mathbb{E} f(c_{k'} + X_b)` is followed.

    Args:
      mdp: the MDP.
      eta: ``[S, K, A, N]`` laws.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` support.
      utility: static utility name or callable.

    Returns:
      ``[S, K, A, N]`` the backed-up laws.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 2, 1)), [[0.0, 1.0]], gamma=0.5)
      >>> z, c = jnp.array([0.0, 1.0, 2.0]), jnp.array([0.0, 1.0])
      >>> eta = delta_laws((1, 2, 2), z)
      >>> eta = stock_bellman_optimality(mdp, eta, c, z, "identity")
      >>> stock_bellman_optimality(mdp, eta, c, z, "identity")[0, 0, 1]  # 1 + 0.5 * 1
      Array([0. , 0.5, 0.5], dtype=float32)
    """
    eta = jnp.asarray(eta)
    policy = stock_greedy_policy(eta, stocks, support, utility)
    return stock_bellman_expectation(mdp, eta, policy, stocks, support)


def _init_laws(mdp: FiniteMDP, eta0: ArrayLike | None, stocks: Array, support: Array):
    shape = (mdp.num_states, stocks.shape[0], mdp.num_actions)
    if eta0 is None:
        return delta_laws(shape, support).astype(mdp.P.dtype)
    eta0 = jnp.asarray(eta0, mdp.P.dtype)
    chex.assert_shape(eta0, (*shape, support.shape[0]))
    return eta0


def _prepare(mdp: FiniteMDP, stocks: ArrayLike, support: ArrayLike):
    check_range("gamma", mdp.gamma, 0.0, 1.0, low_inclusive=False)
    dtype = mdp.P.dtype
    return jnp.asarray(stocks, dtype), jnp.asarray(support, dtype)


def distributional_policy_evaluation(
    mdp: FiniteMDP,
    policy: ArrayLike,
    stocks: ArrayLike,
    support: ArrayLike,
    num_iters: int,
    eta0: ArrayLike | None = None,
) -> Array:
    r"""Evaluate the return laws of a stock-Markov policy by ``num_iters`` sweeps.

    Iterates :func:`stock_bellman_expectation` from ``eta0`` (default
    :math:`\delta_0`). For ``gamma < 1`` the projected operator is a
    :math:`\sqrt{\gamma}`-contraction in the supremum Cramér distance, so the
    laws converge geometrically to its unique fixed point; for a finite horizon
    ``H`` (``gamma = 1`` allowed) ``H`` sweeps from :math:`\delta_0` give the
    exact laws. The means equal the policy's Q-values (no clipping: exactly).

    Args:
      mdp: the MDP.
      policy: ``[S, K]`` int, ``[S, K, A]`` or ``[S, A]`` probabilities.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` return support.
      num_iters: static number of sweeps.
      eta0: ``[S, K, A, N]`` initial laws, or ``None`` for :math:`\delta_0`.

    Returns:
      ``[S, K, A, N]`` the laws.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 1, 1)), [[1.0]], gamma=0.5)  # G = 2
      >>> z, c = return_support(0.0, 4.0, 5), stock_grid(0.0, 1.0, 2)
      >>> eta = distributional_policy_evaluation(mdp, jnp.zeros((1, 2), int), c, z, 30)
      >>> eta[0, 0, 0].round(4)
      Array([0., 0., 1., 0., 0.], dtype=float32)
    """
    stocks, support = _prepare(mdp, stocks, support)
    eta = _init_laws(mdp, eta0, stocks, support)
    _check(mdp, eta, stocks, support)
    pi = policy_probs(policy, stocks.shape[0], mdp.num_actions).astype(eta.dtype)
    chex.assert_shape(pi, eta.shape[:3])
    return _evaluate(mdp, eta, pi, _model(mdp, stocks, support), num_iters)


def _evaluate(
    mdp: FiniteMDP, eta: Array, pi: Array, model: _Model, num_iters: int
) -> Array:
    def body(eta: Array, _: None) -> tuple[Array, None]:
        return _expectation(mdp, eta, pi, model), None

    eta, _ = jax.lax.scan(body, eta, None, length=num_iters)
    return eta


def _greedy_probs(eta: Array, stocks: Array, support: Array, utility: str) -> Array:
    policy = stock_greedy_policy(eta, stocks, support, utility)
    return jax.nn.one_hot(policy, eta.shape[2], dtype=eta.dtype)


def distributional_value_iteration(
    mdp: FiniteMDP,
    stocks: ArrayLike,
    support: ArrayLike,
    utility: str,
    num_iters: int,
    eta0: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""Run ``num_iters`` sweeps of stock-augmented distributional value iteration.

    :math:`\eta_{k+1} = \mathcal{T}_f \eta_k` (:func:`stock_bellman_optimality`),
    then the greedy policy of the final laws. For an expected utility
    :math:`\mathbb{E} f(c + X)` the stock-shifted values
    :math:`Q_k(s, c, a) = \mathbb{E} f(c + \eta_k(s, c, a))` follow value
    iteration on the augmented MDP; see the module docstring for when the
    result is optimal over history-dependent policies.

    Args:
      mdp: the MDP.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` return support.
      utility: static utility name or callable.
      num_iters: static number of sweeps.
      eta0: initial laws (default :math:`\delta_0`).

    Returns:
      ``(eta, policy)``: ``[S, K, A, N]`` laws after the last sweep and
      ``[S, K]`` int32 their stock-shifted greedy policy.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 2, 1)), [[0.0, 1.0]], gamma=0.5)
      >>> z, c = return_support(0.0, 2.0, 5), stock_grid(-1.0, 1.0, 3)
      >>> eta, policy = distributional_value_iteration(mdp, c, z, "identity", 40)
      >>> policy.tolist(), float((eta[0, 0, 1] * z).sum())  # Q*(s, 1) = 2
      ([[1, 1, 1]], 2.0)
    """
    stocks, support = _prepare(mdp, stocks, support)
    eta = _init_laws(mdp, eta0, stocks, support)
    _check(mdp, eta, stocks, support)
    model = _model(mdp, stocks, support)

    def body(eta: Array, _: None) -> tuple[Array, None]:
        pi = _greedy_probs(eta, stocks, support, utility)
        return _expectation(mdp, eta, pi, model), None

    eta, _ = jax.lax.scan(body, eta, None, length=num_iters)
    return eta, stock_greedy_policy(eta, stocks, support, utility)


def distributional_policy_iteration(
    mdp: FiniteMDP,
    stocks: ArrayLike,
    support: ArrayLike,
    utility: str,
    num_iters: int,
    num_eval_iters: int,
    policy0: ArrayLike | None = None,
    eta0: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""Run ``num_iters`` steps of stock-augmented distributional policy iteration.

    Step ``k`` evaluates :math:`\eta^{\pi_k}` by ``num_eval_iters`` sweeps of
    :func:`stock_bellman_expectation` (warm-started from the previous laws) and
    improves :math:`\pi_{k+1} = ` :func:`stock_greedy_policy` ``(eta)``; a
    final evaluation makes the returned laws those of the returned policy.

    Args:
      mdp: the MDP.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` return support.
      utility: static utility name or callable.
      num_iters: static number of improvement steps.
      num_eval_iters: static sweeps per evaluation.
      policy0: ``[S, K]`` int initial policy (default: greedy w.r.t. one sweep
        from :math:`\delta_0`, i.e. myopic).
      eta0: initial laws (default :math:`\delta_0`).

    Returns:
      ``(eta, policy)``: ``[S, K]`` int32 the policy after ``num_iters``
      improvements and ``[S, K, A, N]`` its laws (``num_eval_iters`` sweeps).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 2, 1)), [[0.0, 1.0]], gamma=0.5)
      >>> z, c = return_support(0.0, 2.0, 5), stock_grid(-1.0, 1.0, 3)
      >>> eta, policy = distributional_policy_iteration(mdp, c, z, "identity", 2, 40)
      >>> policy.tolist()
      [[1, 1, 1]]
    """
    stocks, support = _prepare(mdp, stocks, support)
    eta = _init_laws(mdp, eta0, stocks, support)
    _check(mdp, eta, stocks, support)
    model = _model(mdp, stocks, support)
    if policy0 is None:
        myopic = _expectation(
            mdp, eta, _greedy_probs(eta, stocks, support, utility), model
        )
        policy0 = stock_greedy_policy(myopic, stocks, support, utility)
    policy0 = jnp.asarray(policy0, jnp.int32)
    chex.assert_shape(policy0, (mdp.num_states, stocks.shape[0]))

    def evaluate(eta: Array, policy: Array) -> Array:
        pi = jax.nn.one_hot(policy, mdp.num_actions, dtype=eta.dtype)
        return _evaluate(mdp, eta, pi, model, num_eval_iters)

    def body(carry: tuple[Array, Array], _: None) -> tuple[tuple[Array, Array], None]:
        eta, policy = carry
        eta = evaluate(eta, policy)
        return (eta, stock_greedy_policy(eta, stocks, support, utility)), None

    (eta, policy), _ = jax.lax.scan(body, (eta, policy0), None, length=num_iters)
    return evaluate(eta, policy), policy


# ------------------------------------------------------------------------ objectives


def initial_return_law(
    mdp: FiniteMDP,
    eta: ArrayLike,
    policy: ArrayLike,
    stocks: ArrayLike,
    stock0: ArrayLike,
) -> Array:
    r"""Return the law of :math:`G` from :math:`s_0 \sim \mu_0` and stock ``stock0``.

    The mixture :math:`\sum_s \mu_0(s) \sum_k \rho_k \sum_a \pi(a|s, c_k)
    \eta(s, c_k, a)` with :math:`\rho` = :func:`stock_weights` ``(stocks, stock0)``
    (the initial memory is ``stock0`` randomly rounded). The stock itself is
    not added.

    Args:
      mdp: the MDP (for ``mu0``).
      eta: ``[S, K, A, N]`` laws.
      policy: ``[S, K]`` int or probabilities (:func:`policy_probs`).
      stocks: ``[K]`` stock grid.
      stock0: ``[]`` the initial stock :math:`c_0`.

    Returns:
      ``[N]`` probabilities.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 1, 1)), [[0.0]], gamma=0.5)
      >>> eta = jnp.array([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # [S=1, K=2, A=1, N=2]
      >>> initial_return_law(mdp, eta, jnp.zeros((1, 2), int), jnp.array([0.0, 1.0]),
      ...                    0.25).tolist()
      [0.75, 0.25]
    """
    eta = jnp.asarray(eta)
    chex.assert_rank(eta, 4)
    S, K, A, _ = eta.shape
    stocks = jnp.asarray(stocks, eta.dtype)
    pi = policy_probs(policy, K, A).astype(eta.dtype)
    rho = stock_weights(stocks, jnp.asarray(stock0, eta.dtype)).astype(eta.dtype)
    return jnp.einsum("s,k,ska,skan->n", mdp.mu0.astype(eta.dtype), rho, pi, eta)


def initial_objective(
    mdp: FiniteMDP,
    eta: ArrayLike,
    policy: ArrayLike,
    stocks: ArrayLike,
    support: ArrayLike,
    stock0: ArrayLike,
    utility: str,
) -> Array:
    r"""Return :math:`\mathbb{E} f(c_0 + G)` of a policy from :math:`\mu_0`, ``[]``.

    The exact objective (up to the return projection) of the policy executed
    with its grid-stock memory started at ``stock0`` (randomly rounded), using
    the true :math:`c_0` inside ``f``: :func:`jaxrl.ops.risk.expected_utility`
    of ``stock0 + G``, ``G`` ~ :func:`initial_return_law`.

    Args:
      mdp: the MDP.
      eta: ``[S, K, A, N]`` laws.
      policy: ``[S, K]`` int or probabilities.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` support.
      stock0: ``[]`` initial stock.
      utility: static utility name or callable.

    Returns:
      ``[]`` the expected utility.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 1, 1)), [[0.0]], gamma=0.5)
      >>> eta = jnp.array([[[[0.5, 0.5]], [[0.5, 0.5]]]])
      >>> z = jnp.array([0.0, 2.0])
      >>> float(initial_objective(mdp, eta, jnp.zeros((1, 2), int), jnp.array(
      ...     [-2.0, 0.0]), z, -1.0, "indicator"))  # P(G >= 1)
      0.5
    """
    eta = jnp.asarray(eta)
    support = jnp.asarray(support, eta.dtype)
    law = initial_return_law(mdp, eta, policy, stocks, stock0)
    stock0 = jnp.asarray(stock0, eta.dtype)
    if utility == "identity":  # exact: no rounding from adding the stock
        return stock0 + jnp.sum(law * support)
    return risk.expected_utility(stock0 + support, law, utility)


def cvar_objective(
    mdp: FiniteMDP,
    eta: ArrayLike,
    policy: ArrayLike,
    stocks: ArrayLike,
    support: ArrayLike,
    alpha: ArrayLike,
) -> Array:
    r"""Return the Rockafellar-Uryasev CVaR bound at every grid initial stock, ``[K]``.

    .. math:: \mathrm{ru}_k = -c_k + \frac{1}{\alpha} \sum_s \mu_0(s)\,
              \mathbb{E}\min\big(c_k + G, 0\big), \quad
              G \sim \eta(s, c_k, \pi(s, c_k)),

    so that :math:`\mathrm{CVaR}_\alpha(G^*) = \max_{c_0}[-c_0 + \frac1\alpha
    \max_\pi \mathbb{E}\min(c_0 + G^\pi, 0)]` is approximated by ``max_k ru_k``
    when ``eta, policy`` come from the ``min_zero`` inner problem. Each entry
    is a lower bound on the CVaR of the law of :math:`G` of the policy started
    from :math:`c_k` (:func:`initial_return_law`).

    Args:
      mdp: the MDP.
      eta: ``[S, K, A, N]`` laws.
      policy: ``[S, K]`` int or probabilities.
      stocks: ``[K]`` stock grid.
      support: ``[N]`` support.
      alpha: ``[]`` CVaR level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``[K]`` the bounds.

    Raises:
      ConfigError: concrete ``alpha`` outside ``(0, 1]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(jnp.ones((1, 1, 1)), [[0.0]], gamma=0.5)
      >>> z = jnp.array([0.0, 2.0])
      >>> eta = jnp.broadcast_to(jnp.array([0.5, 0.5]), (1, 3, 1, 2))
      >>> c = jnp.array([-2.0, -1.0, 0.0])
      >>> ru = cvar_objective(mdp, eta, jnp.zeros((1, 3), int), c, z, 0.25)
      >>> [round(float(x), 4) + 0.0 for x in ru]  # max: CVaR_0.25 of {0, 2} is 0
      [-2.0, -1.0, 0.0]
    """
    check_range("alpha", alpha, 0.0, 1.0, low_inclusive=False)
    eta = jnp.asarray(eta)
    chex.assert_rank(eta, 4)
    S, K, A, _ = eta.shape
    stocks = jnp.asarray(stocks, eta.dtype)
    support = jnp.asarray(support, eta.dtype)
    pi = policy_probs(policy, K, A).astype(eta.dtype)
    law = jnp.einsum("ska,skan->skn", pi, eta)  # [S, K, N]
    shortfall = jnp.minimum(stocks[:, None] + support[None, :], 0.0)  # [K, N]
    inner = jnp.einsum("s,skn,kn->k", mdp.mu0.astype(eta.dtype), law, shortfall)
    return -stocks + inner / jnp.asarray(alpha, eta.dtype)
