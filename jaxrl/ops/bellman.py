"""Temporal-difference targets and multi-step returns (unbatched, rlax style).

Every function here works on ONE transition (or one time-major trajectory of a
single environment); agents ``jax.vmap`` them over the batch (and env) axes.
Argument names follow rlax: ``*_tm1`` belongs to the state the action was taken
in, ``*_t`` to the next state, and ``discount_t = gamma * (1 - terminated_t)``
(see :func:`jaxrl.transition.discount`). Truncation is handled by the caller
passing the *pre-reset* next observation's values with a non-zero discount, so a
time limit bootstraps while a true termination does not.

Episode boundaries inside a trajectory (for the multi-step returns) are given by
a separate ``episode_end_t = terminated_t | truncated_t`` mask: a return never
accumulates rewards across it, and at a boundary it bootstraps from ``v_t``
weighted by ``discount_t`` (zero after termination, ``gamma`` after truncation).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.ops._checks import check_tau
from jaxrl.types import Array, ArrayLike

__all__ = [
    "q_learning",
    "double_q_learning",
    "expected_sarsa",
    "expected_state_value",
    "soft_state_value",
    "lambda_returns",
    "discounted_returns",
    "n_step_returns",
]


def _maybe_stop(x: Array, stop: bool) -> Array:
    return jax.lax.stop_gradient(x) if stop else x


def q_learning(
    q_tm1: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_t: ArrayLike,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return the Q-learning TD error :math:`r_t + \gamma_t \max_a q_t[a] - q_{tm1}[a_{tm1}]`.

    Args:
      q_tm1: ``[A]`` action values at the state the action was taken in.
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward received.
      discount_t: ``[]`` discount, ``gamma * (1 - terminated_t)``.
      q_t: ``[A]`` action values at the next state (e.g. from a target network).
      stop_target_gradients: stop gradients through the target (static bool).

    Returns:
      ``[]`` the TD error.

    References:
      Watkins and Dayan, "Q-learning", Machine Learning 1992; Mnih et al.,
      "Human-level control through deep RL", Nature 2015, eq. (2).

    Examples:
      >>> import jax.numpy as jnp
      >>> td = q_learning(jnp.array([1.0, 2.0]), 0, 1.0, 0.5, jnp.array([4.0, 3.0]))
      >>> float(td)  # 1 + 0.5 * 4 - 1
      2.0
    """
    q_tm1, q_t = jnp.asarray(q_tm1), jnp.asarray(q_t)
    r_t, discount_t = jnp.asarray(r_t), jnp.asarray(discount_t)
    a_tm1 = jnp.asarray(a_tm1)
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t, q_t], [1, 0, 0, 0, 1])
    chex.assert_type(a_tm1, int)
    target = r_t + discount_t * jnp.max(q_t)
    return _maybe_stop(target, stop_target_gradients) - q_tm1[a_tm1]


def double_q_learning(
    q_tm1: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_t_value: ArrayLike,
    q_t_selector: ArrayLike,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return the double Q-learning TD error.

    The greedy next action is chosen by ``q_t_selector`` (the online network) and
    evaluated by ``q_t_value`` (the target network):
    :math:`r_t + \gamma_t q^{value}_t[\arg\max_a q^{sel}_t[a]] - q_{tm1}[a_{tm1}]`.
    Ties in the argmax go to the lowest action index.

    Args:
      q_tm1: ``[A]`` action values at the state the action was taken in.
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward received.
      discount_t: ``[]`` discount, ``gamma * (1 - terminated_t)``.
      q_t_value: ``[A]`` next-state values used to evaluate the chosen action.
      q_t_selector: ``[A]`` next-state values used to choose the action.
      stop_target_gradients: stop gradients through the target (static bool).

    Returns:
      ``[]`` the TD error.

    References:
      van Hasselt et al., "Deep RL with double Q-learning", AAAI 2016, eq. (4).

    Examples:
      >>> import jax.numpy as jnp
      >>> td = double_q_learning(
      ...     jnp.array([1.0, 2.0]), 1, 0.0, 1.0, jnp.array([5.0, 3.0]), jnp.array([0.0, 9.0]))
      >>> float(td)  # selector picks action 1, valued 3 by q_t_value: 3 - 2
      1.0
    """
    q_tm1, q_t_value, q_t_selector = map(jnp.asarray, (q_tm1, q_t_value, q_t_selector))
    r_t, discount_t, a_tm1 = map(jnp.asarray, (r_t, discount_t, a_tm1))
    chex.assert_rank(
        [q_tm1, a_tm1, r_t, discount_t, q_t_value, q_t_selector], [1, 0, 0, 0, 1, 1]
    )
    chex.assert_type(a_tm1, int)
    chex.assert_equal_shape([q_t_value, q_t_selector])
    best = jnp.argmax(q_t_selector)
    target = r_t + discount_t * q_t_value[best]
    return _maybe_stop(target, stop_target_gradients) - q_tm1[a_tm1]


def expected_state_value(q: ArrayLike, probs: ArrayLike) -> Array:
    r"""Return :math:`\sum_a \pi(a) q[a]`, the state value under policy ``probs``.

    Args:
      q: ``[A]`` action values.
      probs: ``[A]`` action probabilities.

    Returns:
      ``[]`` the expected value.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(expected_state_value(jnp.array([1.0, 3.0]), jnp.array([0.25, 0.75])))
      2.5
    """
    q, probs = jnp.asarray(q), jnp.asarray(probs)
    chex.assert_rank([q, probs], 1)
    chex.assert_equal_shape([q, probs])
    return jnp.sum(q * probs)


def soft_state_value(q: ArrayLike, tau: ArrayLike) -> Array:
    r"""Return the soft (log-sum-exp) value :math:`\tau \log \sum_a \exp(q[a]/\tau)`.

    ``tau`` (:math:`\tau`, entropy temperature) may be traced; as
    :math:`\tau \to 0` the value tends to :math:`\max_a q[a]`, and ``tau == 0``
    returns exactly the max (no NaN, also in gradients).

    Args:
      q: ``[A]`` action values.
      tau: ``[]`` temperature, ``>= 0``.

    Returns:
      ``[]`` the soft value.

    References:
      Haarnoja et al., "RL with deep energy-based policies", ICML 2017, eq. (9).

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(soft_state_value(jnp.array([0.0, 0.0]), 1.0)), 4)  # log 2
      0.6931
      >>> float(soft_state_value(jnp.array([1.0, 2.0]), 0.0))
      2.0
    """
    check_tau(tau)
    q, tau = jnp.asarray(q), jnp.asarray(tau)
    chex.assert_rank([q, tau], [1, 0])
    positive = tau > 0
    safe_tau = jnp.where(positive, tau, 1.0)  # double-where: no NaN in the dead branch
    soft = safe_tau * jax.nn.logsumexp(q / safe_tau)
    return jnp.where(positive, soft, jnp.max(q))


def expected_sarsa(
    q_tm1: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_t: ArrayLike,
    probs_a_t: ArrayLike,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return the expected-SARSA TD error :math:`r_t + \gamma_t \sum_a \pi_t(a) q_t[a] - q_{tm1}[a_{tm1}]`.

    Args:
      q_tm1: ``[A]`` action values at the state the action was taken in.
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward received.
      discount_t: ``[]`` discount, ``gamma * (1 - terminated_t)``.
      q_t: ``[A]`` next-state action values.
      probs_a_t: ``[A]`` next-state policy probabilities.
      stop_target_gradients: stop gradients through the target (static bool).

    Returns:
      ``[]`` the TD error.

    References:
      van Seijen et al., "A theoretical and empirical analysis of expected
      Sarsa", ADPRL 2009.

    Examples:
      >>> import jax.numpy as jnp
      >>> td = expected_sarsa(jnp.array([1.0, 0.0]), 0, 1.0, 1.0,
      ...                     jnp.array([2.0, 4.0]), jnp.array([0.5, 0.5]))
      >>> float(td)  # 1 + 3 - 1
      3.0
    """
    q_tm1, a_tm1, r_t, discount_t = map(jnp.asarray, (q_tm1, a_tm1, r_t, discount_t))
    chex.assert_rank([q_tm1, a_tm1, r_t, discount_t], [1, 0, 0, 0])
    chex.assert_type(a_tm1, int)
    target = r_t + discount_t * expected_state_value(q_t, probs_a_t)
    return _maybe_stop(target, stop_target_gradients) - q_tm1[a_tm1]


def _boundary_mask(r_t: Array, episode_end_t: ArrayLike | None) -> Array:
    if episode_end_t is None:
        return jnp.zeros(r_t.shape, bool)
    end = jnp.asarray(episode_end_t)
    chex.assert_equal_shape([r_t, end])
    return end.astype(bool)


def lambda_returns(
    r_t: ArrayLike,
    discount_t: ArrayLike,
    v_t: ArrayLike,
    lambda_: ArrayLike = 1.0,
    episode_end_t: ArrayLike | None = None,
    stop_target_gradients: bool = False,
) -> Array:
    r"""Return λ-returns over a time-major trajectory with episode boundaries.

    With continuation :math:`c_t = 1 - \text{episode\_end}_t` (and :math:`c_{T-1}=0`):

    .. math::
       G_t = r_t + \gamma_t \big[(1 - \lambda c_t) v_t + \lambda c_t G_{t+1}\big].

    Entry ``t`` is the transition ``(o_t, a_t, r_t, o_{t+1})``; ``v_t`` is the
    value of the *pre-reset* next observation ``o_{t+1}``. At a termination
    ``discount_t = 0`` so nothing is bootstrapped; at a truncation
    ``discount_t = gamma`` and the return bootstraps from ``v_t``; in both cases
    the next entry (a new episode) is never summed in.

    Args:
      r_t: ``[T]`` rewards.
      discount_t: ``[T]`` discounts ``gamma * (1 - terminated_t)``.
      v_t: ``[T]`` bootstrap values of the next observations.
      lambda_: ``[]`` or ``[T]`` mixing parameter λ in ``[0, 1]`` (may be traced).
      episode_end_t: ``[T]`` bool, ``terminated | truncated``; ``None`` means the
        trajectory is one episode segment.
      stop_target_gradients: stop gradients through the returns (static bool).

    Returns:
      ``[T]`` the returns :math:`G_t`.

    References:
      Sutton and Barto, "Reinforcement Learning: An Introduction" (2018), eq. (12.3).

    Examples:
      >>> import jax.numpy as jnp
      >>> lambda_returns(jnp.array([1.0, 1.0]), jnp.array([0.5, 0.5]),
      ...                jnp.array([2.0, 4.0]), 1.0).tolist()  # 1 + .5 * (1 + .5 * 4)
      [2.5, 3.0]
    """
    r_t, discount_t, v_t = map(jnp.asarray, (r_t, discount_t, v_t))
    chex.assert_rank([r_t, discount_t, v_t], 1)
    chex.assert_equal_shape([r_t, discount_t, v_t])
    lam = jnp.broadcast_to(jnp.asarray(lambda_, r_t.dtype), r_t.shape)
    cont = 1.0 - _boundary_mask(r_t, episode_end_t).astype(r_t.dtype)
    cont = cont.at[-1].set(0.0)  # the trajectory end always bootstraps

    def body(g_next: Array, xs: tuple[Array, ...]) -> tuple[Array, Array]:
        r, d, v, lm, c = xs
        g = r + d * ((1.0 - lm * c) * v + lm * c * g_next)
        return g, g

    _, returns = jax.lax.scan(
        body, v_t[-1], (r_t, discount_t, v_t, lam, cont), reverse=True
    )
    return _maybe_stop(returns, stop_target_gradients)


def discounted_returns(
    r_t: ArrayLike,
    discount_t: ArrayLike,
    v_t: ArrayLike,
    episode_end_t: ArrayLike | None = None,
    stop_target_gradients: bool = False,
) -> Array:
    r"""Return bootstrapped discounted returns, :func:`lambda_returns` with λ = 1.

    :math:`G_t = r_t + \gamma_t G_{t+1}` inside an episode, and
    :math:`G_t = r_t + \gamma_t v_t` at an episode end or the trajectory's end.
    Pass ``v_t = 0`` for Monte-Carlo returns of complete episodes.

    Args:
      r_t: ``[T]`` rewards.
      discount_t: ``[T]`` discounts ``gamma * (1 - terminated_t)``.
      v_t: ``[T]`` bootstrap values of the pre-reset next observations (only
        the entries at episode ends and at ``T-1`` are used).
      episode_end_t: ``[T]`` bool ``terminated | truncated`` or ``None``.
      stop_target_gradients: stop gradients through the returns (static bool).

    Returns:
      ``[T]`` the returns.

    Examples:
      >>> import jax.numpy as jnp
      >>> r, d = jnp.ones(3), jnp.array([0.5, 0.0, 0.5])  # terminated at t=1
      >>> v = jnp.array([9.0, 9.0, 4.0])
      >>> discounted_returns(r, d, v, episode_end_t=jnp.array([False, True, False])).tolist()
      [1.5, 1.0, 3.0]
    """
    return lambda_returns(
        r_t,
        discount_t,
        v_t,
        1.0,
        episode_end_t,
        stop_target_gradients=stop_target_gradients,
    )


def n_step_returns(
    r_t: ArrayLike,
    discount_t: ArrayLike,
    v_t: ArrayLike,
    n: int,
    episode_end_t: ArrayLike | None = None,
    stop_target_gradients: bool = False,
) -> Array:
    r"""Return n-step bootstrapped returns over a time-major trajectory.

    .. math::
       G^{(n)}_t = \sum_{k=0}^{m-1} \Big(\prod_{j<k} \gamma_{t+j}\Big) r_{t+k}
                   + \Big(\prod_{j<m} \gamma_{t+j}\Big) v_{t+m-1},

    where :math:`m \le n` is cut short by the first episode end at or after
    ``t`` (the window includes that step and bootstraps from its ``v``, which
    the zero discount removes after a termination) and by the trajectory's end.

    Args:
      r_t: ``[T]`` rewards.
      discount_t: ``[T]`` discounts ``gamma * (1 - terminated_t)``.
      v_t: ``[T]`` values of the pre-reset next observations.
      n: number of steps (static Python int, ``>= 1``).
      episode_end_t: ``[T]`` bool ``terminated | truncated`` or ``None``.
      stop_target_gradients: stop gradients through the returns (static bool).

    Returns:
      ``[T]`` the n-step returns.

    References:
      Sutton and Barto, "Reinforcement Learning: An Introduction" (2018), eq. (7.1).

    Examples:
      >>> import jax.numpy as jnp
      >>> n_step_returns(jnp.ones(3), jnp.full(3, 0.5), jnp.array([2.0, 4.0, 8.0]), 2).tolist()
      [2.5, 3.5, 5.0]
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a Python int >= 1, got {n!r}")
    r_t, discount_t, v_t = map(jnp.asarray, (r_t, discount_t, v_t))
    chex.assert_rank([r_t, discount_t, v_t], 1)
    chex.assert_equal_shape([r_t, discount_t, v_t])
    cont = ~_boundary_mask(r_t, episode_end_t)
    cont = cont.at[-1].set(False)
    g = r_t + discount_t * v_t  # one-step returns
    for _ in range(n - 1):
        shifted = jnp.concatenate([g[1:], g[-1:]])  # G^{(k-1)}_{t+1}; last entry unused
        g = r_t + discount_t * jnp.where(cont, shifted, v_t)
    return _maybe_stop(g, stop_target_gradients)
