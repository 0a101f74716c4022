r"""Lagrangian relaxation of constrained MDPs: penalised rewards and multiplier updates.

A constrained MDP (CMDP; Altman, *Constrained Markov Decision Processes*, 1999)
maximises the return :math:`J_r(\pi)` subject to cost budgets
:math:`J_{c_i}(\pi) \le b_i`, where
:math:`J_x(\pi) = \mathbb{E}_\pi[\sum_t \gamma^t x(s_t, a_t)]`. Its Lagrangian is

.. math:: L(\pi, \lambda) = J_r(\pi) - \sum_i \lambda_i\,(J_{c_i}(\pi) - b_i),
          \qquad \lambda \ge 0,

maximised over the policy and minimised over the multipliers. For a fixed
:math:`\lambda`, maximising :math:`L` is an ordinary MDP with the penalised
reward :math:`r - \lambda^\top c` (:func:`lagrangian_reward`), and
:math:`\partial L / \partial \lambda_i = -(J_{c_i} - b_i)`, so the multiplier
player ascends the constraint violation and is projected back onto
:math:`\lambda \ge 0` (:func:`projected_multiplier_update`).

Plain gradient descent-ascent (GDA) on this saddle problem converges only on
average: its iterates cycle. Optimistic updates, which replace every gradient
:math:`g_k` by :math:`2 g_k - g_{k-1}` (:func:`optimistic_gradient`; Popov 1980,
Daskalakis et al. 2018), converge in the last iterate; ReLOAD (Moskovitz et al.,
"ReLOAD: Reinforcement Learning with Optimistic Ascent-Descent for Last-Iterate
Convergence in Constrained MDPs", ICML 2023) applies them to both players.
:func:`pid_multiplier_update` is the PID Lagrangian of Stooke, Achiam and Abbeel
(ICML 2020), which damps the multiplier's oscillation with proportional and
derivative terms.

All functions are pure and unbatched; every argument may be traced. A single
constraint uses scalar ``lam``, ``j_c`` and ``budget``; ``K`` constraints use
``[K]`` vectors (and a trailing ``[..., K]`` axis on per-step costs).

A budget ``b = inf`` means "no constraint": the violation :math:`J_c - b` is
``-inf``, and every product of a zero factor with it is taken as 0 (the
convention :math:`0 \cdot \infty = 0`), so :math:`\lambda = 0` gives
:math:`L = J_r`, a zero step size leaves :math:`\lambda` unchanged and the
projected step sends any :math:`\lambda` to 0; nothing becomes NaN. Finite
inputs give bitwise the same results as the plain formulas.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.types import Array, ArrayLike, ArrayTree

__all__ = [
    "lagrangian_reward",
    "lagrangian",
    "projected_multiplier_update",
    "optimistic_gradient",
    "PIDState",
    "pid_init",
    "pid_multiplier_update",
    "saturate",
]


def _times(a: Array, x: Array) -> Array:
    """``a * x`` with ``0 * inf = 0`` (value and gradient; finite ``x`` unchanged)."""
    zero_inf = jnp.logical_and(a == 0, jnp.isinf(x))
    safe_x = jnp.where(zero_inf, jnp.zeros_like(x), x)  # no 0 * inf in the gradient
    return jnp.where(zero_inf, jnp.zeros_like(a * safe_x), a * safe_x)


def saturate(x: ArrayLike) -> Array:
    r"""Clip ``x`` to the finite range of its float dtype; ``NaN`` stays ``NaN``.

    For storing a violation :math:`J_c - b` in a training state: with a budget
    :math:`b = \infty` it is ``-inf``, which the drivers' divergence check
    (every float of the state finite) would flag. The saturated value
    ``-finfo.max`` gives the same multiplier steps: :func:`optimistic_gradient`
    of ``-inf`` and ``-finfo.max`` is ``-inf``, and every projected step from it
    lands on 0. Finite values are returned unchanged (bitwise).

    Args:
      x: any shape, a floating dtype.

    Returns:
      ``x`` clipped to ``[-finfo.max, finfo.max]``, same shape and dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> saturate(jnp.array([-jnp.inf, 1.5, jnp.nan]))
      Array([-3.4028235e+38,  1.5000000e+00,            nan], dtype=float32)
    """
    x = jnp.asarray(x)
    big = jnp.finfo(x.dtype).max
    return jnp.clip(x, -big, big)


def lagrangian_reward(r: ArrayLike, c: ArrayLike, lam: ArrayLike) -> Array:
    r"""Return the penalised reward :math:`r - \lambda^\top c`.

    With a scalar multiplier, ``r - lam * c`` element-wise (``r`` and ``c`` of
    the same shape, e.g. one step ``[]``, a batch ``[B]`` or the tables
    ``R[S, A]``, ``C[S, A]``). With ``K`` constraints, ``lam`` is ``[K]``, ``c``
    has a trailing constraint axis ``[..., K]`` and the result is
    ``r - sum_i lam_i c[..., i]``. Because the value of a policy is linear in
    the reward, the same operator maps value tables:
    :math:`Q^\pi_{r - \lambda c} = Q^\pi_r - \lambda Q^\pi_c`.

    Args:
      r: ``[...]`` reward (or reward values).
      c: ``[...]`` cost (scalar ``lam``) or ``[..., K]`` costs.
      lam: ``[]`` or ``[K]`` multipliers :math:`\lambda \ge 0`.

    Returns:
      ``[...]`` penalised reward.

    References:
      Altman, *Constrained Markov Decision Processes*, 1999, ch. 3 (Lagrangian).

    Examples:
      >>> import jax.numpy as jnp
      >>> lagrangian_reward(jnp.array([1.0, 2.0]), jnp.array([0.5, 1.0]), 2.0)
      Array([0., 0.], dtype=float32)
      >>> lagrangian_reward(1.0, jnp.array([0.5, 1.0]), jnp.array([2.0, 0.5]))
      Array(-0.5, dtype=float32)
    """
    r, c, lam = jnp.asarray(r), jnp.asarray(c), jnp.asarray(lam)
    if lam.ndim == 0:
        chex.assert_equal_shape([r, c])
        return r - lam * c
    chex.assert_rank(lam, 1)
    chex.assert_shape(c, (*r.shape, lam.shape[0]))
    return r - jnp.sum(c * lam, axis=-1)


def lagrangian(
    j_r: ArrayLike, j_c: ArrayLike, lam: ArrayLike, budget: ArrayLike
) -> Array:
    r"""Return the Lagrangian :math:`L = J_r - \lambda^\top (J_c - b)`, ``[]``.

    A budget ``inf`` (no constraint) contributes 0 where its multiplier is 0
    and ``+inf`` where it is positive (the dual function's value there).

    Args:
      j_r: ``[]`` expected discounted return :math:`J_r(\pi)`.
      j_c: ``[]`` or ``[K]`` expected discounted costs :math:`J_c(\pi)`.
      lam: multipliers, same shape as ``j_c``.
      budget: budgets :math:`b`, same shape as ``j_c`` (or scalar); ``inf``: no
        constraint.

    Returns:
      ``[]`` the Lagrangian.

    Examples:
      >>> float(lagrangian(3.0, 2.0, 0.5, 1.0))  # 3 - 0.5 (2 - 1)
      2.5
      >>> float(lagrangian(3.0, 2.0, 0.0, float("inf")))  # no constraint: J_r
      3.0
    """
    j_r, j_c, lam = jnp.asarray(j_r), jnp.asarray(j_c), jnp.asarray(lam)
    chex.assert_rank(j_r, 0)
    chex.assert_equal_shape([j_c, lam])
    return j_r - jnp.sum(_times(lam, j_c - jnp.asarray(budget)))


def projected_multiplier_update(
    lam: ArrayLike,
    violation: ArrayLike,
    eta: ArrayLike,
    lam_max: ArrayLike = math.inf,
) -> Array:
    r"""Take one projected step on the multipliers, ``clip(lam + eta g, 0, lam_max)``.

    With ``violation`` :math:`g = J_c - b = -\partial L / \partial\lambda`, this
    is projected gradient descent on the Lagrangian in :math:`\lambda`: the
    multiplier grows while the constraint is violated and shrinks (down to 0)
    while it is slack. ``lam_max = inf`` (default) is the plain projection onto
    :math:`\lambda \ge 0`; a finite bound keeps the multiplier bounded when the
    budget may be infeasible. Pass the optimistic direction
    :math:`2 g_k - g_{k-1}` (:func:`optimistic_gradient`) for ReLOAD. A
    violation of ``-inf`` (budget ``inf``: no constraint) gives 0, or ``lam``
    itself when ``eta = 0``.

    Args:
      lam: ``[]`` or ``[K]`` current multipliers.
      violation: ascent direction, same shape (usually :math:`J_c - b`).
      eta: ``[]`` step size :math:`\eta_\lambda \ge 0`.
      lam_max: upper bound of the projection (scalar or same shape).

    Returns:
      The new multipliers, in ``[0, lam_max]``.

    References:
      Altman 1999, ch. 3; Moskovitz et al., ICML 2023 (ReLOAD), multiplier step.

    Examples:
      >>> round(float(projected_multiplier_update(0.5, -2.0, 0.1)), 6)  # [0.5 - 0.2]_+
      0.3
      >>> float(projected_multiplier_update(0.5, -10.0, 0.1))  # clipped at 0
      0.0
      >>> float(projected_multiplier_update(0.5, float("-inf"), 0.1))  # b = inf
      0.0
    """
    lam, violation = jnp.asarray(lam), jnp.asarray(violation)
    chex.assert_equal_shape([lam, violation])
    return jnp.clip(lam + _times(jnp.asarray(eta), violation), 0.0, lam_max)


def optimistic_gradient(
    g: ArrayTree, g_prev: ArrayTree, alpha: ArrayLike = 1.0, beta: ArrayLike = 1.0
) -> ArrayTree:
    r"""Return the optimistic gradient :math:`(\alpha + \beta) g_k - \beta g_{k-1}`.

    With the defaults :math:`\alpha = \beta = 1` this is :math:`2 g_k - g_{k-1}`:
    optimistic mirror descent that uses the last gradient as the prediction of
    the next one (Rakhlin and Sridharan 2013; Daskalakis et al. 2018). Used on
    both players of a saddle problem it gives last-iterate convergence where
    plain gradient descent-ascent cycles (ReLOAD, Moskovitz et al. ICML 2023).
    It is optax's ``scale_by_optimistic_gradient(alpha, beta)`` for one step;
    :math:`\beta = 0` returns :math:`\alpha g_k` (plain steps). Works on any
    pytree of arrays (e.g. policy logits and multipliers together). Where
    :math:`g_k = g_{k-1}` the result is :math:`\alpha g_k`, infinite entries
    included (the violation ``-inf`` of a budget ``inf`` stays ``-inf``, not
    ``-inf + inf = NaN``).

    Args:
      g: pytree, the current gradient :math:`g_k`.
      g_prev: pytree of the same structure, the previous gradient
        :math:`g_{k-1}` (pass ``g`` itself at the first step).
      alpha: ``[]`` weight :math:`\alpha` of the current gradient.
      beta: ``[]`` weight :math:`\beta` of the correction :math:`g_k - g_{k-1}`.

    Returns:
      Pytree like ``g``.

    References:
      Daskalakis, Ilyas, Syrgkanis and Zeng, "Training GANs with Optimism", ICLR
      2018, eq. (3); Moskovitz et al., ICML 2023.

    Examples:
      >>> import jax.numpy as jnp
      >>> optimistic_gradient(jnp.array([1.0, 2.0]), jnp.array([3.0, 0.0]))
      Array([-1.,  4.], dtype=float32)
    """
    chex.assert_trees_all_equal_shapes(g, g_prev)
    alpha, beta = jnp.asarray(alpha), jnp.asarray(beta)

    def one(x: ArrayLike, y: ArrayLike) -> Array:
        x, y = jnp.asarray(x), jnp.asarray(y)
        same_inf = jnp.logical_and(x == y, jnp.isinf(x))
        return jnp.where(same_inf, _times(alpha, x), (alpha + beta) * x - beta * y)

    return jax.tree.map(one, g, g_prev)


@struct.dataclass
class PIDState:
    """Memory of :func:`pid_multiplier_update`.

    Attributes:
      integral: ``[]`` or ``[K]`` integral term :math:`I_k \\ge 0`.
      prev_cost: ``[]`` or ``[K]`` previous cost estimate :math:`J_{c, k-1}`.
    """

    integral: Array
    prev_cost: Array


def pid_init(j_c: ArrayLike, lam0: ArrayLike = 0.0, ki: ArrayLike = 1.0) -> PIDState:
    r"""Return the initial :class:`PIDState`.

    The integral starts at ``lam0 / ki`` so that a pure integral controller
    (``kp = kd = 0``) starts from the multiplier ``lam0``; the previous cost is
    ``j_c`` (no derivative kick at the first step).

    Args:
      j_c: ``[]`` or ``[K]`` initial cost estimate (its shape and dtype are used).
      lam0: initial multiplier :math:`\lambda_0 \ge 0`.
      ki: integral gain :math:`K_I > 0` (``ki = 0`` gives a zero integral).

    Returns:
      The state.

    Examples:
      >>> pid_init(0.0, lam0=1.0, ki=0.5).integral
      Array(2., dtype=float32)
    """
    j_c = jnp.asarray(j_c, jnp.result_type(float, j_c))
    ki = jnp.asarray(ki, j_c.dtype)
    safe = jnp.where(ki > 0, ki, 1.0)
    integral = jnp.where(ki > 0, jnp.asarray(lam0, j_c.dtype) / safe, 0.0)
    return PIDState(integral=jnp.broadcast_to(integral, j_c.shape), prev_cost=j_c)


def pid_multiplier_update(
    state: PIDState,
    j_c: ArrayLike,
    budget: ArrayLike,
    kp: ArrayLike,
    ki: ArrayLike,
    kd: ArrayLike,
) -> tuple[Array, PIDState]:
    r"""Return the PID-Lagrangian multiplier and the new controller state.

    Stooke, Achiam and Abbeel (2020), Algorithm 2:

    .. math::
        \Delta_k = J_{c,k} - b, \quad
        \partial_k = (J_{c,k} - J_{c,k-1})_+, \quad
        I_k = (I_{k-1} + \Delta_k)_+, \quad
        \lambda_k = (K_P \Delta_k + K_I I_k + K_D \partial_k)_+ .

    With ``kp = kd = 0`` it is exactly the projected multiplier update with step
    size ``ki`` (:func:`projected_multiplier_update`): :math:`\lambda_k = K_I I_k
    = [\lambda_{k-1} + K_I \Delta_k]_+`.

    Args:
      state: the controller memory (see :func:`pid_init`).
      j_c: ``[]`` or ``[K]`` current cost estimate :math:`J_{c,k}`.
      budget: budget(s) :math:`b` (``inf``: no constraint, multiplier 0).
      kp: proportional gain :math:`K_P \ge 0`.
      ki: integral gain :math:`K_I \ge 0`.
      kd: derivative gain :math:`K_D \ge 0`.

    Returns:
      ``(lam, new_state)``: the multiplier(s) :math:`\lambda_k \ge 0` and memory.

    References:
      Stooke, Achiam and Abbeel, "Responsive Safety in Reinforcement Learning by
      PID Lagrangian Methods", ICML 2020, Algorithm 2.

    Examples:
      >>> s = pid_init(0.0)
      >>> lam, s = pid_multiplier_update(s, 2.0, 1.0, kp=0.5, ki=0.1, kd=1.0)
      >>> round(float(lam), 4)  # 0.5 * 1 + 0.1 * 1 + 1.0 * 2
      2.6
    """
    j_c = jnp.asarray(j_c)
    chex.assert_equal_shape([j_c, state.integral, state.prev_cost])
    delta = j_c - jnp.asarray(budget)
    derivative = jnp.maximum(j_c - state.prev_cost, 0.0)
    integral = jnp.maximum(state.integral + delta, 0.0)
    p_term = _times(jnp.asarray(kp), delta)  # b = inf, kp = 0: 0, not NaN
    lam = jnp.maximum(p_term + ki * integral + kd * derivative, 0.0)
    return lam, PIDState(integral=integral, prev_cost=j_c)
