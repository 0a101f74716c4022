"""Helpers shared by the return-law modules (private; nothing public).

Used by :mod:`jaxrl.ops.distributional`, :mod:`jaxrl.ops.risk` and
:mod:`jaxrl.ops.stock`.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from jaxrl.config import check_range
from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayLike

__all__: list[str] = []


def _check_level(name: str, value: ArrayLike) -> None:
    check_range(name, value, 0.0, 1.0, low_inclusive=False)


def _check_num(name: str, n: int, low: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < low:
        raise ConfigError(f"{name} must be a Python int >= {low}, got {n!r}")


def _law(atoms: ArrayLike, probs: ArrayLike | None) -> tuple[Array, Array]:
    """Return ``(atoms, probs)`` as float arrays of equal shape ``[..., N]``."""
    atoms = jnp.asarray(atoms)
    if not jnp.issubdtype(atoms.dtype, jnp.floating):
        atoms = atoms.astype(jnp.result_type(float))
    if probs is None:
        n = atoms.shape[-1]
        return atoms, jnp.full(atoms.shape, 1.0 / n, atoms.dtype)
    probs = jnp.asarray(probs, atoms.dtype)
    chex.assert_equal_shape([atoms, probs])
    return atoms, probs


def _sorted_law(atoms: Array, probs: Array) -> tuple[Array, Array]:
    order = jnp.argsort(atoms)
    return atoms[order], probs[order]


def _lower_quantile_index(cdf: Array, levels: Array) -> Array:
    """Index of the first atom with ``cdf >= level`` (a few ulps of slack)."""
    eps = jnp.finfo(cdf.dtype).eps
    below = cdf[None, :] < levels[:, None] * (1.0 - 16.0 * eps)
    return jnp.minimum(jnp.sum(below, axis=-1), cdf.shape[-1] - 1)
