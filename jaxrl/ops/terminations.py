r"""Constraints as terminations (CaT): violation-scaled stochastic terminations.

CaT (Chane-Sane et al., IROS 2024) turns constraint violations into a
*probability of termination* instead of a penalty or a multiplier. With
per-step violations :math:`c_{i,t} \ge 0` of ``K`` constraints (0: satisfied),
each step gets

.. math::
   \delta_t = \max_i\; p_i^{max}\,
              \mathrm{clip}\big(c_{i,t}^{+} / c_{i,t}^{max},\, 0,\, 1\big),

where :math:`p_i^{max} \in [0, 1]` is constraint ``i``'s largest termination
probability (:func:`termination_probability`) and :math:`c_{i,t}^{max}` a
running scale of its violations, an exponential moving average of the largest
violation seen in each batch of parallel environments
(:func:`violation_scale_update`):

.. math::
   c_{i,t}^{max} = \max\big(\tau\, c_{i,t-1}^{max}
                   + (1 - \tau) \max_{n} c_{i,t,n}^{+},\ \epsilon\big),

with decay :math:`\tau \in [0, 1)` (0.95 in the paper) and a floor
:math:`\epsilon > 0`. The scale is updated with step ``t``'s batch *before* it
divides step ``t``'s violations (so a first violation larger than the running
scale is clipped to :math:`p^{max}` rather than divided by the floor);
:func:`termination_probabilities` runs both along a time-major ``[T, N, K]``
rollout.

A CaT termination is *soft*: the episode goes on in the environment, but the
return the agent is trained on treats step ``t`` as ending with probability
:math:`\delta_t`, so the reward and the bootstrap are both multiplied by the
survival probability :math:`1 - \delta_t` (:func:`soft_termination_returns`):

.. math::
   y_t = (1 - \delta_t)\, r_t + \gamma_t (1 - \delta_t)\, V(s_{t+1}),
   \qquad \gamma_t = \gamma (1 - \text{terminated}_t),

and GAE(λ) uses the same per-step factor in its recursion,
:math:`A_t = e_t + \gamma_t (1 - \delta_t) \lambda\, c_t A_{t+1}` with TD error
:math:`e_t = (1 - \delta_t) r_t + \gamma_t (1 - \delta_t) v_t - v_{t-1}` and
:math:`c_t = 1 - \text{episode\_end}_t` (:mod:`jaxrl.ops.gae`). True
terminations and truncations keep their meaning (no bootstrap through a
termination; truncations bootstrap). With positive rewards every violation
lowers the value of what follows, which is why CaT asks for positive rewards;
:math:`\delta \equiv 0` (no violation, or :math:`p^{max} = 0`) gives back
plain GAE exactly.

All functions are pure and every numeric argument may be traced.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.config import check_range
from jaxrl.ops.gae import gae_returns
from jaxrl.types import Array, ArrayLike

__all__ = [
    "violation_scale_update",
    "termination_probability",
    "termination_probabilities",
    "soft_termination_returns",
]


def _check_hparams(p_max: ArrayLike | None, decay: ArrayLike, floor: ArrayLike) -> None:
    if p_max is not None:
        check_range("p_max", p_max, 0.0, 1.0)
    check_range("decay", decay, 0.0, 1.0, high_inclusive=False)
    check_range("floor", floor, 0.0, low_inclusive=False)


def violation_scale_update(
    scale_tm1: ArrayLike, c_t: ArrayLike, decay: ArrayLike, floor: ArrayLike = 1e-6
) -> Array:
    r"""Return the running violation scale after one batch of violations.

    :math:`c^{max}_t = \max(\tau c^{max}_{t-1} + (1 - \tau) \max_n c^+_{t,n},
    \epsilon)`, per constraint.

    Args:
      scale_tm1: ``[K]`` scales :math:`c^{max}_{t-1} > 0`.
      c_t: ``[N, K]`` violations of the ``N`` parallel environments at step
        ``t`` (negative values count as 0).
      decay: ``[]`` :math:`\tau \in [0, 1)`.
      floor: ``[]`` :math:`\epsilon > 0`.

    Returns:
      ``[K]`` the scales :math:`c^{max}_t`.

    References:
      Chane-Sane et al., "CaT: Constraints as Terminations for Legged
      Locomotion Reinforcement Learning", IROS 2024, section III.

    Examples:
      >>> import jax.numpy as jnp
      >>> violation_scale_update(jnp.array([1.0]), jnp.array([[0.0], [3.0]]), 0.5)
      Array([2.], dtype=float32)
    """
    scale_tm1, c_t = jnp.asarray(scale_tm1), jnp.asarray(c_t)
    chex.assert_rank([scale_tm1, c_t], [1, 2])
    chex.assert_equal_shape_suffix([scale_tm1, c_t], 1)
    _check_hparams(None, decay, floor)
    batch_max = jnp.max(jnp.maximum(c_t, 0.0), axis=0)
    return jnp.maximum(decay * scale_tm1 + (1.0 - decay) * batch_max, floor)


def termination_probability(
    c_t: ArrayLike, scale_t: ArrayLike, p_max: ArrayLike
) -> Array:
    r"""Return CaT's termination probability of one transition.

    :math:`\delta_t = \max_i p^{max}_i \mathrm{clip}(c^+_{i,t} / c^{max}_{i,t},
    0, 1)`, in :math:`[0, \max_i p^{max}_i]`; 0 when no constraint is violated.

    Args:
      c_t: ``[K]`` violations of the transition (negative values count as 0).
      scale_t: ``[K]`` positive scales :math:`c^{max}_t`.
      p_max: ``[]`` or ``[K]`` largest termination probabilities in ``[0, 1]``.

    Returns:
      ``[]`` :math:`\delta_t`.

    References:
      Chane-Sane et al., "CaT: Constraints as Terminations for Legged
      Locomotion Reinforcement Learning", IROS 2024, section III.

    Examples:
      >>> import jax.numpy as jnp
      >>> termination_probability(jnp.array([0.5, 4.0]), jnp.array([1.0, 2.0]),
      ...                         jnp.array([0.2, 0.1])).item()
      0.10000000149011612
    """
    c_t, scale_t = jnp.asarray(c_t), jnp.asarray(scale_t)
    chex.assert_rank([c_t, scale_t], 1)
    chex.assert_equal_shape([c_t, scale_t])
    check_range("p_max", p_max, 0.0, 1.0)
    ratio = jnp.clip(jnp.maximum(c_t, 0.0) / scale_t, 0.0, 1.0)
    return jnp.max(jnp.asarray(p_max, ratio.dtype) * ratio)


def termination_probabilities(
    scale_0: ArrayLike,
    c: ArrayLike,
    p_max: ArrayLike,
    decay: ArrayLike,
    floor: ArrayLike = 1e-6,
) -> tuple[Array, Array]:
    r"""Return the termination probabilities of a time-major rollout and the final scale.

    For ``t = 0 .. T-1``: :math:`c^{max}_t` = :func:`violation_scale_update` of
    :math:`c^{max}_{t-1}` with the batch ``c[t]`` (from ``scale_0`` =
    :math:`c^{max}_{-1}`), then :math:`\delta_{t,n}` =
    :func:`termination_probability` of ``c[t, n]`` with :math:`c^{max}_t`.

    Args:
      scale_0: ``[K]`` scales before the rollout.
      c: ``[T, N, K]`` violations (time, environment, constraint).
      p_max: ``[]`` or ``[K]`` largest termination probabilities in ``[0, 1]``.
      decay: ``[]`` :math:`\tau \in [0, 1)`.
      floor: ``[]`` :math:`\epsilon > 0`.

    Returns:
      ``(delta [T, N], scale [K])``: the probabilities and the scale after the
      rollout's last step.

    Examples:
      >>> import jax.numpy as jnp
      >>> c = jnp.array([[[0.0], [2.0]], [[1.0], [0.0]]])  # [T=2, N=2, K=1]
      >>> delta, scale = termination_probabilities(jnp.array([1.0]), c, 0.5, 0.5)
      >>> delta.tolist(), scale.tolist()  # scales 1.5, then 1.25
      ([[0.0, 0.5], [0.4000000059604645, 0.0]], [1.25])
    """
    scale_0, c = jnp.asarray(scale_0), jnp.asarray(c)
    chex.assert_rank([scale_0, c], [1, 3])
    chex.assert_equal_shape_suffix([scale_0, c], 1)
    _check_hparams(p_max, decay, floor)
    per_env = jax.vmap(termination_probability, in_axes=(0, None, None))

    def body(scale: Array, c_t: Array) -> tuple[Array, Array]:
        scale = violation_scale_update(scale, c_t, decay, floor)
        return scale, per_env(c_t, scale, p_max)

    scale, delta = jax.lax.scan(body, scale_0.astype(c.dtype), c)
    return delta, scale


def soft_termination_returns(
    r_t: ArrayLike,
    discount_t: ArrayLike,
    delta_t: ArrayLike,
    v_tm1: ArrayLike,
    v_t: ArrayLike,
    lambda_: ArrayLike,
    episode_end_t: ArrayLike | None = None,
    stop_target_gradients: bool = True,
) -> tuple[Array, Array]:
    r"""Return GAE(λ) advantages and value targets under soft terminations.

    :func:`jaxrl.ops.gae.gae_returns` of the survival-weighted reward
    :math:`(1 - \delta_t) r_t` and discount :math:`\gamma_t (1 - \delta_t)`:
    the one-step target is
    :math:`(1 - \delta_t) r_t + \gamma_t (1 - \delta_t) v_t` and the
    advantages follow :math:`A_t = e_t + \gamma_t (1 - \delta_t) \lambda c_t
    A_{t+1}` (module docstring). ``delta_t = 0`` gives
    :func:`~jaxrl.ops.gae.gae_returns` bitwise.

    Args:
      r_t: ``[T]`` rewards.
      discount_t: ``[T]`` discounts ``gamma * (1 - terminated_t)``.
      delta_t: ``[T]`` termination probabilities :math:`\delta_t \in [0, 1]`.
      v_tm1: ``[T]`` values of the observations the actions were taken in.
      v_t: ``[T]`` values of the pre-reset next observations.
      lambda_: ``[]`` or ``[T]`` λ in ``[0, 1]``.
      episode_end_t: ``[T]`` bool ``terminated | truncated`` (``None``: no
        truncation inside the trajectory).
      stop_target_gradients: stop gradients through both outputs (static).

    Returns:
      ``([T] advantages, [T] value targets A_t + v_tm1)``.

    References:
      Chane-Sane et al., "CaT: Constraints as Terminations for Legged
      Locomotion Reinforcement Learning", IROS 2024, section III; Schulman et
      al., "High-dimensional continuous control using generalized advantage
      estimation", ICLR 2016, eq. (16).

    Examples:
      >>> import jax.numpy as jnp
      >>> ones = jnp.ones(1)
      >>> adv, y = soft_termination_returns(ones, 0.5 * ones, 0.5 * ones,
      ...                                   jnp.zeros(1), 2.0 * ones, 0.9)
      >>> y.tolist()  # 0.5 * 1 + 0.5 * 0.5 * 2
      [1.0]
    """
    r_t, discount_t, delta_t = map(jnp.asarray, (r_t, discount_t, delta_t))
    chex.assert_rank([r_t, discount_t, delta_t], 1)
    chex.assert_equal_shape([r_t, discount_t, delta_t])
    check_range("delta_t", delta_t, 0.0, 1.0)
    survive = 1.0 - delta_t.astype(r_t.dtype)
    # Steps with delta = 0 pass their inputs through untouched (a select, not a
    # product with 1), so XLA cannot fuse the product into GAE's multiply-adds
    # differently from plain GAE: delta = 0 gives gae_returns bitwise under jit.
    cut = delta_t > 0
    return gae_returns(
        jnp.where(cut, r_t * survive, r_t),
        jnp.where(cut, discount_t * survive, discount_t),
        v_tm1,
        v_t,
        lambda_,
        episode_end_t,
        stop_target_gradients,
    )
