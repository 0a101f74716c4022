r"""Generalized advantage estimation over one time-major trajectory (unbatched).

For a trajectory of ``T`` transitions ``(o_t, a_t, r_t, o_{t+1})`` of ONE
environment (agents ``jax.vmap`` over the environment axis of a ``[T, E]``
rollout), with ``v_tm1[t] = V(o_t)`` and ``v_t[t] = V(o_{t+1})`` the value of
the *pre-reset* next observation, the one-step TD errors are

.. math:: \delta_t = r_t + \gamma_t v_t - v_{t-1},
          \qquad \gamma_t = \gamma (1 - \text{terminated}_t),

and the GAE(λ) advantages accumulate them backwards inside an episode:

.. math:: A_t = \delta_t + \gamma_t \lambda_t c_t A_{t+1},
          \qquad c_t = 1 - \text{episode\_end}_t, \quad c_{T-1} = 0.

Episode boundaries follow :mod:`jaxrl.ops.bellman`: a termination has
``discount_t = 0`` (no bootstrap), a truncation keeps ``discount_t = gamma`` and
bootstraps from ``v_t`` (the value of the observation the time limit cut off,
``info["final_observation"]`` in gymnax 1.0), and ``episode_end_t = terminated |
truncated`` stops the recursion, so no TD error of the next episode leaks
into this one. The common "done" shortcut ``discount = gamma * (1 - done)``
instead treats a time limit as a termination and biases the values of states
near it.

``jaxrl.ops.gae`` is this module; the function is ``jaxrl.ops.gae.gae``, also
exported as ``jaxrl.ops.generalized_advantage_estimation``.

When ``v_t[t] == v_tm1[t + 1]`` inside episodes (one value function),
``A_t + v_tm1[t]`` is the λ-return :func:`jaxrl.ops.bellman.lambda_returns`.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.types import Array, ArrayLike

__all__ = ["gae", "generalized_advantage_estimation", "gae_returns"]


def gae(
    r_t: ArrayLike,
    discount_t: ArrayLike,
    v_tm1: ArrayLike,
    v_t: ArrayLike,
    lambda_: ArrayLike,
    episode_end_t: ArrayLike | None = None,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return GAE(λ) advantages of a trajectory with episode boundaries.

    :math:`A_t = \delta_t + \gamma_t \lambda_t c_t A_{t+1}` with
    :math:`\delta_t = r_t + \gamma_t v_t - v_{t-1}` and continuation
    :math:`c_t = 1 - \text{episode\_end}_t` (:math:`c_{T-1} = 0`: the last
    entry bootstraps from its own ``v_t``). ``lambda_ = 0`` gives the one-step
    TD errors; ``lambda_ = 1`` gives the bootstrapped discounted return minus
    ``v_tm1`` (the Monte-Carlo return minus the baseline when every episode
    ends inside the trajectory by termination).

    Args:
      r_t: ``[T]`` rewards of the transitions.
      discount_t: ``[T]`` discounts ``gamma * (1 - terminated_t)``.
      v_tm1: ``[T]`` values of the observations the actions were taken in.
      v_t: ``[T]`` values of the pre-reset next observations.
      lambda_: ``[]`` or ``[T]`` λ in ``[0, 1]`` (may be traced).
      episode_end_t: ``[T]`` bool ``terminated | truncated``; ``None`` means
        no truncation inside the trajectory (terminations are already cut by
        their zero discount).
      stop_target_gradients: stop gradients through the advantages (static
        bool; the usual choice, as they are a fixed regression target and
        policy weight).

    Returns:
      ``[T]`` the advantages :math:`A_t`.

    References:
      Schulman et al., "High-dimensional continuous control using generalized
      advantage estimation", ICLR 2016, eq. (16).

    Examples:
      >>> import jax.numpy as jnp
      >>> r, d = jnp.array([1.0, 1.0]), jnp.array([0.5, 0.5])
      >>> v_tm1, v_t = jnp.array([0.0, 2.0]), jnp.array([2.0, 4.0])
      >>> gae(r, d, v_tm1, v_t, 1.0).tolist()  # [1 + .5*2 - 0 + .5*1, 1 + .5*4 - 2]
      [2.5, 1.0]
      >>> gae(r, d, v_tm1, v_t, 1.0, jnp.array([True, False])).tolist()  # truncated
      [2.0, 1.0]
    """
    r_t, discount_t, v_tm1, v_t = map(jnp.asarray, (r_t, discount_t, v_tm1, v_t))
    chex.assert_rank([r_t, discount_t, v_tm1, v_t], 1)
    chex.assert_equal_shape([r_t, discount_t, v_tm1, v_t])
    lam = jnp.broadcast_to(jnp.asarray(lambda_, r_t.dtype), r_t.shape)
    if episode_end_t is None:
        cont = jnp.ones(r_t.shape, r_t.dtype)
    else:
        end = jnp.asarray(episode_end_t)
        chex.assert_equal_shape([r_t, end])
        cont = 1.0 - end.astype(r_t.dtype)
    cont = cont.at[-1].set(0.0)
    delta = r_t + discount_t * v_t - v_tm1

    def body(a_next: Array, xs: tuple[Array, ...]) -> tuple[Array, Array]:
        dl, d, lm, c = xs
        a = dl + d * lm * c * a_next
        return a, a

    _, adv = jax.lax.scan(
        body, jnp.zeros((), delta.dtype), (delta, discount_t, lam, cont), reverse=True
    )
    return jax.lax.stop_gradient(adv) if stop_target_gradients else adv


generalized_advantage_estimation = gae
"""Alias of :func:`gae` (the name it has in the ``jaxrl.ops`` namespace, where
``jaxrl.ops.gae`` is this module)."""


def gae_returns(
    r_t: ArrayLike,
    discount_t: ArrayLike,
    v_tm1: ArrayLike,
    v_t: ArrayLike,
    lambda_: ArrayLike,
    episode_end_t: ArrayLike | None = None,
    stop_target_gradients: bool = True,
) -> tuple[Array, Array]:
    r"""Return ``(advantages, value_targets)``: :func:`gae` and ``A_t + v_tm1``.

    The value target :math:`A_t + v_{t-1}` is the λ-return used to regress the
    critic in PPO/A2C. Arguments as in :func:`gae`.

    Returns:
      ``([T] advantages, [T] value targets)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> ones, zeros = jnp.ones(2), jnp.zeros(2)
      >>> adv, ret = gae_returns(ones, zeros, ones, ones, 0.9)
      >>> adv.tolist(), ret.tolist()  # terminal steps: A = r - v, target = r
      ([0.0, 0.0], [1.0, 1.0])
    """
    adv = gae(
        r_t,
        discount_t,
        v_tm1,
        v_t,
        lambda_,
        episode_end_t,
        stop_target_gradients=False,
    )
    target = adv + jnp.asarray(v_tm1)
    if stop_target_gradients:
        adv, target = jax.lax.stop_gradient(adv), jax.lax.stop_gradient(target)
    return adv, target
