r"""Conservative augmented Lagrangian (CAL) operators for off-policy constrained RL.

CAL (Wu et al., "Off-Policy Primal-Dual Safe Reinforcement Learning", ICLR 2024)
changes two things in an off-policy Lagrangian actor-critic (SAC-Lagrangian):

1. **Conservative policy optimisation.** ``E`` cost critics
   :math:`Q_c^1, \dots, Q_c^E` (an ensemble, differing by their initialisation) give
   an upper confidence bound of the cost value,

   .. math:: Q_c^{UCB}(s, a) = \hat\mu(s, a) + k\,\hat\sigma(s, a), \quad
             \hat\mu = \tfrac1E \textstyle\sum_i Q_c^i, \quad
             \hat\sigma^2 = \tfrac1E \textstyle\sum_i (Q_c^i - \hat\mu)^2,

   with :math:`k \ge 0` (:func:`ensemble_ucb`), and the policy is constrained on
   :math:`\hat J_c = \mathbb E_{s \sim \mathcal D, a \sim \pi}[Q_c^{UCB}(s, a)] \le
   \xi` instead of the plain estimate, which off-policy learning underestimates.
2. **Local policy convexification.** The policy maximises the augmented
   Lagrangian of that constraint (Hestenes 1969, Rockafellar 1973,
   Bertsekas 1982, ch. 3 for inequality constraints) rather than the Lagrangian:
   with the violation :math:`g = \hat J_c - \xi` it minimises

   .. math:: \mathbb E[\alpha \log\pi(a|s) - Q_r(s, a)] + P_c(g, \lambda), \qquad
             P_c(g, \lambda) = \frac{1}{2c}\Big(\max\{0, \lambda + c g\}^2
             - \lambda^2\Big),

   (:func:`augmented_lagrangian_penalty`) for a convexity parameter
   :math:`c \ge 0`. Its derivative in :math:`g` is the *rectified multiplier*
   :math:`\max\{0, \lambda + c g\}`: the policy gradient is the Lagrangian one with
   :math:`\lambda` replaced by :math:`\max\{0, \lambda + c(\hat J_c - \xi)\}`
   (the paper's gradient rectification), which pushes harder while the constraint
   is violated and lets go (down to 0) while it is slack. At :math:`c = 0`,
   :math:`P_0 = \lambda g`, the ordinary Lagrangian term. The multiplier itself
   takes the projected dual step :math:`\lambda \leftarrow \max\{0, \lambda +
   \eta_\lambda (\hat J_c - \xi)\}`
   (:func:`jaxrl.ops.lagrangian.projected_multiplier_update`; the classic method
   of multipliers is :math:`\eta_\lambda = c`).

The budget :math:`b` of a constrained task is per episode; the critics estimate
per-step discounted values. :func:`q_budget` converts one to the other as CAL
and SAC-Lagrangian implementations do: spread the episode budget evenly over the
``T`` steps of an episode and discount it, :math:`\xi = \bar c \sum_{t<T}
\gamma^t` with the per-step rate :math:`\bar c` for which
:math:`\sum_{t<T} \gamma_c^t \bar c = b` (:math:`\bar c = b / T` for the
undiscounted budget :math:`\gamma_c = 1`).

All functions are pure and unbatched; every argument may be traced.

References:
  Wu, Tang, Lin, Yu, Mao, Xie, Wang and Wang, "Off-Policy Primal-Dual Safe
  Reinforcement Learning", ICLR 2024 (CAL). Bertsekas, *Constrained Optimization
  and Lagrange Multiplier Methods*, 1982, chapter 3 (augmented Lagrangian of
  inequality constraints).
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from jaxrl.ops.lagrangian import _times
from jaxrl.types import Array, ArrayLike

__all__ = [
    "ensemble_ucb",
    "augmented_lagrangian_penalty",
    "rectified_multiplier",
    "q_budget",
]


def _f32(*xs: ArrayLike) -> tuple[Array, ...]:
    return tuple(jnp.asarray(x, jnp.float32) for x in xs)


def ensemble_ucb(q: ArrayLike, k: ArrayLike) -> Array:
    r"""Return the upper confidence bound :math:`\hat\mu + k \hat\sigma` of an ensemble.

    :math:`\hat\mu` is the mean of the ``E`` members and :math:`\hat\sigma` their
    population standard deviation (``ddof = 0``, so one member gives
    :math:`\hat\sigma = 0` and the UCB is that member). The gradient is finite
    when all members agree (:math:`\hat\sigma = 0`, where ``sqrt`` has an
    infinite slope): there the standard deviation contributes no gradient.

    Args:
      q: ``[E]`` the ensemble's values at one ``(s, a)``.
      k: ``[]`` the conservatism :math:`k \ge 0` (0: the mean).

    Returns:
      ``[]`` float32 :math:`Q^{UCB}`.

    References:
      Wu et al., ICLR 2024 (conservative policy optimisation).

    Examples:
      >>> import jax.numpy as jnp
      >>> float(ensemble_ucb(jnp.array([1.0, 3.0]), 2.0))  # 2 + 2 * 1
      4.0
    """
    q, k = _f32(q, k)
    chex.assert_rank([q, k], [1, 0])
    mean = jnp.mean(q)
    var = jnp.mean((q - mean) ** 2)
    positive = var > 0
    std = jnp.where(positive, jnp.sqrt(jnp.where(positive, var, 1.0)), 0.0)
    return mean + k * std


def augmented_lagrangian_penalty(
    violation: ArrayLike, lam: ArrayLike, c: ArrayLike
) -> Array:
    r"""Return the augmented-Lagrangian penalty of one inequality constraint ``g <= 0``.

    .. math:: P_c(g, \lambda) = \frac{1}{2c}\Big(\max\{0, \lambda + c g\}^2
              - \lambda^2\Big)
              = \begin{cases} \lambda g + \tfrac c2 g^2 & \lambda + c g \ge 0, \\
                -\lambda^2 / (2c) & \text{otherwise,} \end{cases}

    evaluated in the second form, which is exact at :math:`c = 0` (then
    :math:`P_0 = \lambda g`, the Lagrangian term) and never divides by 0.
    :math:`\partial P_c / \partial g = \max\{0, \lambda + c g\}`
    (:func:`rectified_multiplier`) and :math:`\partial^2 P_c / \partial g^2 = c`
    where the constraint is active: the quadratic term convexifies the
    Lagrangian locally. A minimiser adds :math:`P_c` to its loss (the
    Lagrangian's :math:`-\lambda g` term, with the sign of a minimisation).

    A violation of ``-inf`` (budget ``inf``: no constraint) gives
    :math:`-\lambda^2 / (2c)` for :math:`c > 0` and :math:`\lambda g` (0 at
    :math:`\lambda = 0`, by :math:`0 \cdot \infty = 0`) for :math:`c = 0`.

    Args:
      violation: ``[]`` :math:`g = \hat J_c - \xi` (positive: violated).
      lam: ``[]`` multiplier :math:`\lambda \ge 0` (treated as a constant by the
        caller: stop its gradient).
      c: ``[]`` convexity (penalty) parameter :math:`c \ge 0`.

    Returns:
      ``[]`` float32 penalty.

    References:
      Wu et al., ICLR 2024 (local policy convexification);
      Bertsekas 1982, chapter 3.

    Examples:
      >>> float(augmented_lagrangian_penalty(2.0, 1.0, 0.5))  # 1*2 + 0.25*4
      3.0
      >>> float(augmented_lagrangian_penalty(-4.0, 1.0, 0.5))  # -1 / (2 * 0.5)
      -1.0
      >>> float(augmented_lagrangian_penalty(2.0, 1.0, 0.0))  # Lagrangian: lam * g
      2.0
    """
    g, lam, c = _f32(violation, lam, c)
    chex.assert_rank([g, lam, c], 0)
    active = lam + _times(c, g) >= 0
    g_act = jnp.where(active, g, 0.0)  # no inf/NaN from the branch not taken
    finite = jnp.isfinite(g_act)
    g_fin = jnp.where(finite, g_act, 0.0)  # g = -inf only reaches here at c = 0
    square = jnp.where(finite, 0.5 * c * g_fin * g_fin, jnp.where(c > 0, jnp.inf, 0.0))
    quad = _times(lam, g_act) + square
    c_safe = jnp.where(c > 0, c, 1.0)
    slack = jnp.where(c > 0, -(lam * lam) / (2.0 * c_safe), 0.0)
    return jnp.where(active, quad, slack)


def rectified_multiplier(violation: ArrayLike, lam: ArrayLike, c: ArrayLike) -> Array:
    r"""Return :math:`\max\{0, \lambda + c g\}`, the slope of :func:`augmented_lagrangian_penalty`.

    The multiplier that the augmented Lagrangian's gradient puts on
    :math:`\nabla \hat J_c` (CAL's gradient rectification), and the
    method-of-multipliers estimate of the next :math:`\lambda`. At :math:`c = 0`
    it is :math:`\lambda`.

    Args:
      violation: ``[]`` :math:`g = \hat J_c - \xi`.
      lam: ``[]`` multiplier :math:`\lambda \ge 0`.
      c: ``[]`` convexity parameter :math:`c \ge 0`.

    Returns:
      ``[]`` float32, ``>= 0``.

    Examples:
      >>> float(rectified_multiplier(2.0, 1.0, 0.5)), float(rectified_multiplier(-4.0, 1.0, 0.5))
      (2.0, 0.0)
    """
    g, lam, c = _f32(violation, lam, c)
    chex.assert_rank([g, lam, c], 0)
    return jnp.maximum(lam + _times(c, g), 0.0)


def _discounted_steps(gamma: Array, horizon: Array) -> Array:
    """``sum_{t < T} gamma^t`` (``T`` at ``gamma = 1``)."""
    one = gamma == 1.0
    safe = jnp.where(one, 0.5, gamma)
    return jnp.where(one, horizon, (1.0 - safe**horizon) / (1.0 - safe))


def q_budget(
    cost_limit: ArrayLike,
    gamma: ArrayLike,
    horizon: ArrayLike,
    cost_gamma: ArrayLike = 1.0,
) -> Array:
    r"""Convert a per-episode cost budget to the scale of a discounted cost critic.

    .. math:: \xi = b\,\frac{\sum_{t<T} \gamma^t}{\sum_{t<T} \gamma_c^t}
              = \frac{b}{T}\,\frac{1 - \gamma^T}{1 - \gamma}
              \quad (\gamma_c = 1),

    the discounted value of the constant per-step cost that spends the budget
    :math:`b` evenly over an episode of ``T`` steps. :math:`\gamma = 1` gives
    :math:`b` itself (when :math:`\gamma_c = 1`), and ``b = inf`` gives ``inf``.

    Args:
      cost_limit: ``[]`` per-episode budget :math:`b \ge 0` on
        :math:`\sum_t \gamma_c^t c_t`.
      gamma: ``[]`` the critic's discount :math:`\gamma \in [0, 1]`.
      horizon: ``[]`` episode length :math:`T \ge 1` (the time limit).
      cost_gamma: ``[]`` the budget's discount :math:`\gamma_c \in (0, 1]`.

    Returns:
      ``[]`` float32 :math:`\xi`.

    Examples:
      >>> round(float(q_budget(20.0, 0.99, 200)), 4)  # 0.1 * (1 - 0.99**200) / 0.01
      8.6602
      >>> float(q_budget(20.0, 1.0, 200))
      20.0
    """
    b, gamma, horizon, gamma_c = _f32(cost_limit, gamma, horizon, cost_gamma)
    chex.assert_rank([b, gamma, horizon, gamma_c], 0)
    ratio = _discounted_steps(gamma, horizon) / _discounted_steps(gamma_c, horizon)
    return b * ratio
