"""The finite MDP pytree used by exact dynamic programming.

A :class:`FiniteMDP` holds the tensors of a finite, discounted Markov decision
process ``(S, A, P, R, C, mu0, gamma)``:

* ``P[s, a, s'] = Pr(s_{t+1} = s' | s_t = s, a_t = a)``, shape ``[S, A, S]``;
* ``R[s, a] = E[r_{t+1} | s_t = s, a_t = a]``, shape ``[S, A]``;
* ``C[s, a]``, an optional expected cost (constrained MDPs), shape ``[S, A]``;
* ``mu0[s]``, the initial-state distribution, shape ``[S]``;
* ``gamma``, the discount factor, a scalar leaf (traced, so it can be swept with
  ``jax.vmap`` without recompiling).

The number of states and actions are read from the *shapes* of ``P`` and are
therefore static under ``jax.jit``. Operators live in :mod:`jaxrl.ops.exact_dp`;
the sampling environment built from an MDP lives in ``jaxrl.envs.finite_mdp``.

Construct MDPs from user data with :func:`make_mdp`, which validates the input on
the host and raises :class:`jaxrl.errors.ConfigError` naming the problem.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayLike

__all__ = ["FiniteMDP", "make_mdp", "validate", "default_float_dtype"]


def default_float_dtype() -> Any:
    """Return JAX's default float: float32, or float64 under ``JAX_ENABLE_X64``."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


@struct.dataclass
class FiniteMDP:
    """A finite discounted MDP as a pytree of arrays.

    All five fields are pytree leaves, so a ``FiniteMDP`` can be passed through
    ``jax.jit``, stacked along a leading axis and mapped over with ``jax.vmap``
    (for example a batch of Garnets made by ``jax.vmap(garnet)(keys)``). The
    number of states and actions are shapes, hence static.

    ``C`` is optional. When it is ``None`` it is an *empty subtree* (``None`` has
    no leaves in JAX), so an MDP without costs has four leaves and a treedef that
    differs from an MDP with costs: code that branches on ``mdp.C is None`` does
    so at trace time (a static decision), ``jax.vmap(f)(mdp)`` with the default
    ``in_axes=0`` works either way, and MDPs with and without ``C`` cannot be
    stacked together.

    Attributes:
      P: ``[S, A, S]`` transition probabilities; ``P[s, a]`` sums to one.
      R: ``[S, A]`` expected reward of taking ``a`` in ``s``.
      mu0: ``[S]`` initial-state distribution.
      gamma: ``[]`` discount factor in ``[0, 1)``.
      C: ``[S, A]`` expected cost, or ``None``.

    Examples:
      >>> import numpy as np
      >>> mdp = make_mdp(np.ones((2, 3, 2)) / 2, np.zeros((2, 3)), gamma=0.9)
      >>> mdp.num_states, mdp.num_actions
      (2, 3)
      >>> len(jax.tree.leaves(mdp))  # C is None: no leaf
      4
    """

    P: Array
    R: Array
    mu0: Array
    gamma: Array
    C: Array | None = None

    @property
    def num_states(self) -> int:
        """Number of states ``S`` (static: read from ``P.shape``)."""
        return self.P.shape[-1]

    @property
    def num_actions(self) -> int:
        """Number of actions ``A`` (static: read from ``P.shape``)."""
        return self.P.shape[-2]

    @property
    def has_cost(self) -> bool:
        """Whether the MDP carries a cost tensor ``C`` (static)."""
        return self.C is not None


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def validate(mdp: FiniteMDP, *, atol: float = 1e-5) -> FiniteMDP:
    """Check an MDP on the host and return it unchanged.

    Checks shapes (``P`` is ``[..., S, A, S]``, ``R`` and ``C`` are
    ``[..., S, A]``, ``mu0`` is ``[..., S]``, leading batch axes allowed and equal),
    that ``P``, ``mu0`` are nonnegative distributions (sums within ``atol`` of
    one), that ``R``, ``C`` are finite and that ``0 <= gamma < 1``. Traced
    (abstract) leaves are skipped, so calling ``validate`` inside ``jax.jit`` is a
    no-op for the values.

    Args:
      mdp: the MDP, possibly batched along leading axes.
      atol: tolerance on the row sums of ``P`` and the sum of ``mu0``.

    Returns:
      ``mdp``.

    Raises:
      ConfigError: naming the first problem found.

    Examples:
      >>> import numpy as np
      >>> bad = FiniteMDP(np.ones((2, 1, 2)), np.zeros((2, 1)), np.ones(2) / 2, 0.9)
      >>> try:
      ...     validate(bad)
      ... except ConfigError as err:
      ...     print(err)
      P[s, a, :] must sum to 1 (tolerance 1e-05); P[0, 0, :] sums to 2
    """
    P_shape = np.shape(mdp.P)
    if len(P_shape) < 3:
        raise ConfigError(f"P must have shape [S, A, S], got shape {P_shape}")
    *batch, S, A, S2 = P_shape
    batch = tuple(batch)
    if S != S2:
        raise ConfigError(
            f"P must have shape [S, A, S] (square in states), got shape {P_shape}"
        )
    if S < 1 or A < 1:
        raise ConfigError(
            f"P needs at least one state and one action, got shape {P_shape}"
        )
    for name, value, want in (
        ("R", mdp.R, (*batch, S, A)),
        ("mu0", mdp.mu0, (*batch, S)),
        ("C", mdp.C, (*batch, S, A)),
    ):
        if value is None:
            continue
        if np.shape(value) != want:
            raise ConfigError(
                f"{name} must have shape {list(want)} to match P {list(P_shape)}, "
                f"got {list(np.shape(value))}"
            )
    g_shape = np.shape(mdp.gamma)
    if len(g_shape) > len(batch) or tuple(batch[: len(g_shape)]) != tuple(g_shape):
        raise ConfigError(
            f"gamma must be a scalar (or match the batch axes), got shape {g_shape}"
        )

    if _is_concrete(mdp.P):
        P = np.asarray(mdp.P, dtype=np.float64)
        if not np.all(np.isfinite(P)):
            raise ConfigError("P contains non-finite entries")
        if np.any(P < 0):
            idx = tuple(int(i) for i in np.argwhere(P < 0)[0])
            raise ConfigError(f"P must be nonnegative; P{list(idx)} = {P[idx]:g}")
        sums = P.sum(-1)
        bad = np.abs(sums - 1.0) > atol
        if np.any(bad):
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = ", ".join(str(i) for i in idx)
            raise ConfigError(
                f"P[s, a, :] must sum to 1 (tolerance {atol:g}); P[{where}, :] sums to "
                f"{sums[idx]:.6g}"
            )
    if _is_concrete(mdp.mu0):
        mu0 = np.asarray(mdp.mu0, dtype=np.float64)
        if not np.all(np.isfinite(mu0)) or np.any(mu0 < 0):
            raise ConfigError(
                "mu0 must be a probability distribution (nonnegative, finite)"
            )
        s = mu0.sum(-1)
        if np.any(np.abs(s - 1.0) > atol):
            raise ConfigError(
                f"mu0 must sum to 1 (tolerance {atol:g}), got sum {np.ravel(s)[0]:.6g}"
            )
    for name, value in (("R", mdp.R), ("C", mdp.C)):
        if value is not None and _is_concrete(value):
            if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                raise ConfigError(f"{name} contains non-finite entries")
    if _is_concrete(mdp.gamma):
        g = np.asarray(mdp.gamma, dtype=np.float64)
        bad = ~((g >= 0.0) & (g < 1.0))
        if np.any(bad):
            raise ConfigError(f"gamma must lie in [0, 1), got {g[bad].flat[0]:g}")
    return mdp


def make_mdp(
    P: ArrayLike,
    R: ArrayLike,
    mu0: ArrayLike | None = None,
    gamma: ArrayLike = 0.9,
    C: ArrayLike | None = None,
    *,
    dtype: Any = None,
    atol: float = 1e-5,
) -> FiniteMDP:
    """Build and validate a :class:`FiniteMDP` from array-likes.

    Args:
      P: ``[S, A, S]`` transition probabilities (leading batch axes allowed).
      R: ``[S, A]`` expected rewards.
      mu0: ``[S]`` initial distribution; ``None`` means uniform over states.
      gamma: discount factor in ``[0, 1)`` (scalar, or one per batch element).
      C: optional ``[S, A]`` expected costs.
      dtype: float dtype of the tensors; default is JAX's default float
        (float32, float64 under ``JAX_ENABLE_X64``).
      atol: tolerance for the probability sums (see :func:`validate`).

    Returns:
      The validated MDP with ``jnp`` arrays.

    Raises:
      ConfigError: on a shape mismatch, a negative probability, a row of ``P`` or
        ``mu0`` not summing to one, non-finite rewards or ``gamma`` outside
        ``[0, 1)``.

    Examples:
      >>> import numpy as np
      >>> P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
      >>> mdp = make_mdp(P, np.array([[0.0, 1.0], [2.0, 0.0]]), gamma=0.5)
      >>> mdp.mu0
      Array([0.5, 0.5], dtype=float32)
      >>> make_mdp(P, np.zeros((2, 2)), gamma=1.0)
      Traceback (most recent call last):
      ...
      jaxrl.errors.ConfigError: gamma must lie in [0, 1), got 1
    """
    dtype = default_float_dtype() if dtype is None else dtype
    P = jnp.asarray(P, dtype=dtype)
    if P.ndim < 3:
        raise ConfigError(f"P must have shape [S, A, S], got shape {P.shape}")
    if mu0 is None:
        S = P.shape[-1]
        mu0 = jnp.full(P.shape[:-3] + (S,), 1.0 / S, dtype=dtype)
    mdp = FiniteMDP(
        P=P,
        R=jnp.asarray(R, dtype=dtype),
        mu0=jnp.asarray(mu0, dtype=dtype),
        gamma=jnp.asarray(gamma, dtype=dtype),
        C=None if C is None else jnp.asarray(C, dtype=dtype),
    )
    return validate(mdp, atol=atol)
