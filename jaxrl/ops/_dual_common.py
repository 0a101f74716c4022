"""Array helpers shared by the dual-RL operator modules (private; nothing public).

Used by :mod:`jaxrl.ops.divergences`, :mod:`jaxrl.ops.value_losses`,
:mod:`jaxrl.ops.awr` and :mod:`jaxrl.ops.recoil`.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from jaxrl.types import Array, ArrayLike

__all__: list[str] = []


def _float(x: ArrayLike) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _law(q: ArrayLike, probs: ArrayLike | None) -> tuple[Array, Array]:
    """Return ``(q, p)``: float ``[N]`` values and weights normalised to sum one."""
    q = _float(q)
    chex.assert_rank(q, 1)
    if probs is None:
        return q, jnp.full(q.shape, 1.0 / q.shape[0], q.dtype)
    p = jnp.asarray(probs, q.dtype)
    chex.assert_equal_shape([q, p])
    return q, p / jnp.sum(p)


def _mean(x: Array, weights: ArrayLike | None) -> Array:
    if weights is None:
        return jnp.mean(x)
    w = jnp.asarray(weights, x.dtype)
    chex.assert_equal_shape([x, w])
    return jnp.sum(w * x) / jnp.sum(w)
