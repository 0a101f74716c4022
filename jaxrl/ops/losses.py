"""Elementwise regression losses for TD errors (unbatched or any shape)."""

from __future__ import annotations

import jax.numpy as jnp

from jaxrl.types import Array, ArrayLike

__all__ = ["huber_loss", "l2_loss"]


def huber_loss(x: ArrayLike, delta: ArrayLike = 1.0) -> Array:
    r"""Return the Huber loss of ``x``, elementwise.

    .. math::
       L_\delta(x) = \begin{cases} \tfrac12 x^2 & |x| \le \delta \\
                     \delta (|x| - \tfrac12 \delta) & \text{otherwise,} \end{cases}

    so its gradient is ``x`` clipped to ``[-delta, delta]``. ``delta`` may be
    traced (a sweepable hyperparameter).

    Args:
      x: ``[...]`` errors (e.g. TD errors).
      delta: ``[]`` threshold δ > 0 between the quadratic and linear parts.

    Returns:
      ``[...]`` the losses, same shape as ``x``.

    References:
      Huber, "Robust estimation of a location parameter", 1964; Mnih et al.,
      Nature 2015 (error clipping).

    Examples:
      >>> import jax.numpy as jnp
      >>> huber_loss(jnp.array([0.5, -3.0]), 1.0).tolist()
      [0.125, 2.5]
    """
    x = jnp.asarray(x)
    delta = jnp.asarray(delta, x.dtype)
    abs_x = jnp.abs(x)
    quadratic = jnp.minimum(abs_x, delta)
    linear = abs_x - quadratic
    return 0.5 * quadratic**2 + delta * linear


def l2_loss(x: ArrayLike) -> Array:
    r"""Return :math:`\tfrac12 x^2` elementwise.

    Args:
      x: ``[...]`` errors.

    Returns:
      ``[...]`` the losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> l2_loss(jnp.array([2.0])).tolist()
      [2.0]
    """
    x = jnp.asarray(x)
    return 0.5 * x**2
