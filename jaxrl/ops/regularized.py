r"""Entropy/KL-regularized greedy steps and the Munchausen target (unbatched).

The entropy-regularized greedy policy of action values ``q[A]`` at temperature
:math:`\tau` is :math:`\pi = \mathrm{softmax}(q/\tau)`, its log-policy scaled by
the temperature is

.. math:: \tau \ln \pi(a) = q(a) - \tau \log \textstyle\sum_b e^{q(b)/\tau},

and its soft value is
:math:`\sum_a \pi(a)\,(q(a) - \tau \ln \pi(a)) = \tau \log \sum_a e^{q(a)/\tau}`.

Munchausen value iteration (M-VI, Vieillard, Pietquin and Geist, NeurIPS 2020)
adds the scaled log-policy of the *target* network at the taken action,
clipped to ``[l0, 0]`` and weighted by :math:`\alpha`, to the immediate reward:

.. math:: y = r_t + \alpha [\tau \ln \bar\pi(a_{t-1}|s_{t-1})]_{l_0}^{0}
          + \gamma_t \sum_b \bar\pi(b|s_t)\,(\bar q(s_t, b) - \tau \ln \bar\pi(b|s_t)).

M-VI(α, τ) is mirror-descent VI with KL weight ατ and entropy weight (1-α)τ;
its fixed-point policy is the soft-optimal policy at temperature (1-α)τ.

Every temperature ``tau`` may be traced and must be ``>= 0``. ``tau == 0`` gives
the hard-max limits exactly, with no NaN in values or gradients (the
"double-where" guard): the policy is uniform over the maximizing actions, the
value is ``max_a q``, and the scaled log-policy is ``q - max_a q`` (so M-VI with
``tau -> 0`` becomes advantage learning with coefficient α, and with ``alpha =
0`` plain Q-learning / value iteration).

See :mod:`jaxrl.ops.tsallis` for the Tsallis (q-logarithm) generalization,
which reduces to these functions at ``q = 1``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.ops._checks import check_l0, check_tau, check_unit
from jaxrl.ops.bellman import soft_state_value
from jaxrl.types import Array, ArrayLike

__all__ = [
    "scaled_log_softmax",
    "softmax_policy",
    "soft_value",
    "munchausen_bonus",
    "munchausen_target",
    "munchausen_q_learning",
]


def _check(q: Array, tau: Array) -> None:
    chex.assert_rank([q, tau], [1, 0])


def scaled_log_softmax(q: ArrayLike, tau: ArrayLike) -> Array:
    r"""Return :math:`\tau \ln \mathrm{softmax}(q/\tau)`, computed stably, ``[A]``.

    Equals ``q - tau * logsumexp(q / tau)``, evaluated as
    ``(q - max q) - tau * log sum exp((q - max q) / tau)`` so that small
    temperatures do not overflow. At ``tau == 0`` it is ``q - max q``.

    Args:
      q: ``[A]`` action values.
      tau: ``[]`` temperature :math:`\tau \ge 0`.

    Returns:
      ``[A]`` values in ``(-inf, 0]``.

    References:
      Vieillard, Pietquin and Geist, "Munchausen Reinforcement Learning",
      NeurIPS 2020, eq. (2) (the term :math:`\tau \ln \pi`).

    Examples:
      >>> import jax.numpy as jnp
      >>> scaled_log_softmax(jnp.array([1.0, 3.0]), 0.0)
      Array([-2.,  0.], dtype=float32)
    """
    check_tau(tau)
    q, tau = jnp.asarray(q), jnp.asarray(tau)
    _check(q, tau)
    advantage = q - jnp.max(q)
    positive = tau > 0
    safe_tau = jnp.where(positive, tau, 1.0)
    soft = advantage - safe_tau * jax.nn.logsumexp(advantage / safe_tau)
    return jnp.where(positive, soft, advantage)


def softmax_policy(q: ArrayLike, tau: ArrayLike) -> Array:
    r"""Return the Boltzmann policy :math:`\mathrm{softmax}(q/\tau)`, ``[A]``.

    At ``tau == 0`` it is the uniform distribution over ``argmax_a q`` (the
    limit of the softmax as :math:`\tau \to 0`).

    Args:
      q: ``[A]`` action values.
      tau: ``[]`` temperature :math:`\tau \ge 0`.

    Returns:
      ``[A]`` probabilities summing to one.

    Examples:
      >>> import jax.numpy as jnp
      >>> softmax_policy(jnp.array([2.0, 2.0, 1.0]), 0.0)
      Array([0.5, 0.5, 0. ], dtype=float32)
    """
    check_tau(tau)
    q, tau = jnp.asarray(q), jnp.asarray(tau)
    _check(q, tau)
    positive = tau > 0
    safe_tau = jnp.where(positive, tau, 1.0)
    soft = jax.nn.softmax(q / safe_tau)
    ties = (q == jnp.max(q)).astype(soft.dtype)
    return jnp.where(positive, soft, ties / jnp.sum(ties))


def soft_value(q: ArrayLike, tau: ArrayLike) -> Array:
    r"""Return the soft value :math:`\tau \log \sum_a e^{q(a)/\tau}`, ``[]``.

    It equals :math:`\sum_a \pi(a)(q(a) - \tau \ln \pi(a))` for
    :math:`\pi = \mathrm{softmax}(q/\tau)`, the entropy-regularized value; at
    ``tau == 0`` it is ``max_a q``. See :func:`jaxrl.ops.bellman.soft_state_value`.

    Args:
      q: ``[A]`` action values.
      tau: ``[]`` temperature :math:`\tau \ge 0`.

    Returns:
      ``[]`` the soft value.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(soft_value(jnp.array([1.0, 3.0]), 0.0))
      3.0
    """
    check_tau(tau)
    return soft_state_value(q, tau)


def munchausen_bonus(
    q: ArrayLike, a: ArrayLike, tau: ArrayLike, alpha: ArrayLike, l0: ArrayLike
) -> Array:
    r"""Return the clipped Munchausen bonus :math:`\alpha[\tau\ln\pi(a)]_{l_0}^{0}`, ``[]``.

    :math:`\pi = \mathrm{softmax}(q/\tau)`; ``q`` is normally the *target*
    network's values at the state where ``a`` was taken. The upper clip at 0 is
    inactive (a log-probability is never positive); ``l0 = -inf`` disables
    clipping (the exact tabular M-VI).

    Args:
      q: ``[A]`` action values at :math:`s_{t-1}`.
      a: ``[]`` int, the action taken.
      tau: ``[]`` temperature :math:`\tau \ge 0`.
      alpha: ``[]`` Munchausen scaling :math:`\alpha \in [0, 1]`.
      l0: ``[]`` lower clip :math:`l_0 \le 0` of the scaled log-policy.

    Returns:
      ``[]`` the bonus, in ``[alpha * l0, 0]``.

    References:
      Vieillard, Pietquin and Geist, NeurIPS 2020, Sec. 3 (M-DQN, clipping).

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(munchausen_bonus(jnp.array([0.0, -5.0]), 1, 0.0, 0.9, -1.0)), 4)
      -0.9
    """
    check_tau(tau)
    check_unit("alpha", alpha)
    check_l0(l0)
    q, a = jnp.asarray(q), jnp.asarray(a)
    chex.assert_rank(a, 0)
    chex.assert_type(a, int)
    log_pi = scaled_log_softmax(q, tau)[a]
    return jnp.asarray(alpha) * jnp.clip(log_pi, l0, 0.0)


def munchausen_target(
    q_tm1_target: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_t_target: ArrayLike,
    tau: ArrayLike,
    alpha: ArrayLike,
    l0: ArrayLike,
) -> Array:
    r"""Return the M-DQN regression target, ``[]``.

    :math:`y = r_t + \alpha[\tau \ln \bar\pi(a_{t-1}|s_{t-1})]_{l_0}^0 +
    \gamma_t\,\tau \log \sum_b e^{\bar q(s_t, b)/\tau}`, where
    :math:`\bar\pi = \mathrm{softmax}(\bar q/\tau)` of the target network at
    both states. ``discount_t = gamma * (1 - terminated_t)``.

    Args:
      q_tm1_target: ``[A]`` target-network values at :math:`s_{t-1}`.
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount.
      q_t_target: ``[A]`` target-network values at :math:`s_t` (pre-reset).
      tau: ``[]`` temperature :math:`\tau \ge 0`.
      alpha: ``[]`` Munchausen scaling :math:`\alpha`.
      l0: ``[]`` log-policy clip :math:`l_0 \le 0`.

    Returns:
      ``[]`` the target.

    References:
      Vieillard, Pietquin and Geist, NeurIPS 2020, eq. (3) (M-DQN target).

    Examples:
      >>> import jax.numpy as jnp
      >>> q = jnp.array([1.0, 0.0])
      >>> round(float(munchausen_target(q, 1, 1.0, 0.5, q, 0.0, 0.9, -10.0)), 4)
      0.6
    """
    check_tau(tau)
    check_unit("alpha", alpha)
    check_l0(l0)
    r_t, discount_t = jnp.asarray(r_t), jnp.asarray(discount_t)
    chex.assert_rank([r_t, discount_t], [0, 0])
    bonus = munchausen_bonus(q_tm1_target, a_tm1, tau, alpha, l0)
    return r_t + bonus + discount_t * soft_value(q_t_target, tau)


def munchausen_q_learning(
    q_tm1: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_tm1_target: ArrayLike,
    q_t_target: ArrayLike,
    tau: ArrayLike,
    alpha: ArrayLike,
    l0: ArrayLike,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return the M-DQN TD error :math:`y - q_{t-1}[a_{t-1}]`, ``[]``.

    ``y`` is :func:`munchausen_target`. With ``alpha = 0`` and ``tau = 0`` this
    is :func:`jaxrl.ops.bellman.q_learning` with ``q_t = q_t_target`` (up to
    float rounding of the fused arithmetic).

    Args:
      q_tm1: ``[A]`` online values at :math:`s_{t-1}` (differentiated).
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount, ``gamma * (1 - terminated_t)``.
      q_tm1_target: ``[A]`` target values at :math:`s_{t-1}` (for the bonus).
      q_t_target: ``[A]`` target values at :math:`s_t`.
      tau: ``[]`` temperature :math:`\tau \ge 0`.
      alpha: ``[]`` Munchausen scaling :math:`\alpha`.
      l0: ``[]`` log-policy clip :math:`l_0 \le 0`.
      stop_target_gradients: stop gradients through the target (static).

    Returns:
      ``[]`` the TD error.

    Examples:
      >>> import jax.numpy as jnp
      >>> q = jnp.array([1.0, 0.0])
      >>> float(munchausen_q_learning(q, 0, 1.0, 0.5, q, q, 0.0, 0.9, -1.0))
      0.5
    """
    check_tau(tau)
    check_unit("alpha", alpha)
    check_l0(l0)
    q_tm1, a_tm1 = jnp.asarray(q_tm1), jnp.asarray(a_tm1)
    chex.assert_rank([q_tm1, a_tm1], [1, 0])
    target = munchausen_target(
        q_tm1_target, a_tm1, r_t, discount_t, q_t_target, tau, alpha, l0
    )
    if stop_target_gradients:
        target = jax.lax.stop_gradient(target)
    return target - q_tm1[a_tm1]
