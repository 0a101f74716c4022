r"""Advantage-weighted policy extraction (AWR), as in IQL, XQL and f-DVL.

Maximise :math:`\mathbb{E}_D[w \log \pi(a|s)]` with
:math:`w = \min(e^{\beta_\pi (Q - V)}, w_{max})` (:func:`awr_weights`,
:func:`awr_loss`); in a table the maximiser is
:math:`\pi(a|s) \propto \mu(a|s)\, w(s,a)` (:func:`awr_policy`), so
:math:`\beta_\pi = 0` is behaviour cloning. :math:`V` is fitted by a value loss
of :mod:`jaxrl.ops.value_losses`.

References:
  Peng, Kumar, Zhang and Levine, "Advantage-Weighted Regression", 2019.

Conventions: elementwise functions accept any shape; :func:`awr_policy` takes
one state's ``[A]`` action values. Numeric parameters may be traced; a concrete
value outside its range raises :class:`~jaxrl.errors.ConfigError`.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from jaxrl.config import check_positive, check_range
from jaxrl.ops._dual_common import _float, _law
from jaxrl.types import Array, ArrayLike

__all__ = ["awr_weights", "awr_loss", "awr_policy"]

_INF = math.inf


def awr_weights(
    advantage: ArrayLike, beta: ArrayLike, max_weight: ArrayLike = 100.0
) -> Array:
    r"""Return the clipped advantage weights :math:`\min(e^{\beta A}, w_{max})`.

    Large advantages never overflow (the exponent is clipped at
    :math:`\log w_{max}` first, with a NaN-free gradient). :math:`\beta = 0`
    gives weight 1 (behaviour cloning).

    Args:
      advantage: ``[...]`` advantages :math:`A = Q(s,a) - V(s)`.
      beta: ``[]`` inverse temperature :math:`\beta_\pi \ge 0` (XQL/IQL: 3 on
        locomotion, 10 on antmaze).
      max_weight: ``[]`` clip :math:`w_{max} > 0` (100 in IQL/XQL; ``inf``: none).

    Returns:
      ``[...]`` positive weights.

    Raises:
      ConfigError: concrete ``beta < 0`` or ``max_weight <= 0``.

    References:
      Peng, Kumar, Zhang and Levine, "Advantage-Weighted Regression", 2019;
      Kostrikov et al., ICLR 2022 (policy extraction).

    Examples:
      >>> import jax.numpy as jnp
      >>> awr_weights(jnp.array([-1.0, 0.0, 10.0]), 1.0)
      Array([  0.36787945,   1.        , 100.        ], dtype=float32)
    """
    check_range("beta", beta, 0.0)
    check_positive("max_weight", max_weight, allow_inf=True)  # inf: no clip
    advantage = _float(advantage)
    log_w = beta * advantage
    log_max = jnp.log(max_weight)
    clipped = log_w >= log_max
    return jnp.where(clipped, max_weight, jnp.exp(jnp.where(clipped, 0.0, log_w)))


def awr_loss(
    log_prob: ArrayLike,
    advantage: ArrayLike,
    beta: ArrayLike,
    max_weight: ArrayLike = 100.0,
) -> Array:
    r"""Return the AWR policy loss :math:`-\mathrm{sg}(w)\log\pi(a|s)`, elementwise.

    :math:`w` = :func:`awr_weights` (no gradient flows into the critic).
    Averaged over data :math:`(s, a)` it is the negated AWR objective; with
    :math:`\beta = 0` it is the behaviour-cloning negative log-likelihood.

    Args:
      log_prob: ``[...]`` :math:`\log\pi(a|s)` of the data actions.
      advantage: ``[...]`` advantages :math:`Q(s,a) - V(s)`.
      beta: ``[]`` inverse temperature :math:`\beta_\pi \ge 0`.
      max_weight: ``[]`` weight clip.

    Returns:
      ``[...]`` losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> awr_loss(jnp.log(jnp.array([0.5])), jnp.array([0.0]), 3.0)
      Array([0.6931472], dtype=float32)
    """
    log_prob = _float(log_prob)
    w = jax.lax.stop_gradient(awr_weights(advantage, beta, max_weight))
    return -w * log_prob


def awr_policy(
    q: ArrayLike,
    v: ArrayLike,
    beta: ArrayLike,
    probs: ArrayLike | None = None,
    max_weight: ArrayLike = 100.0,
) -> Array:
    r"""Return the tabular AWR policy :math:`\pi(a) \propto \mu(a)\,w(a)`, ``[A]``.

    The exact maximiser over distributions :math:`\pi` of
    :math:`\sum_a \mu(a)\, w(a) \log \pi(a)` with :math:`w` = :func:`awr_weights`
    of :math:`q - v` (Gibbs' inequality): the extracted policy of one state
    whose data actions follow :math:`\mu`. Its support is that of :math:`\mu`;
    :math:`\beta = 0` returns :math:`\mu` (behaviour cloning).

    Args:
      q: ``[A]`` action values.
      v: ``[]`` state value (any constant; it cancels unless clipping binds).
      beta: ``[]`` inverse temperature :math:`\beta_\pi \ge 0`.
      probs: ``[A]`` behaviour weights :math:`\mu` (normalised here), or
        ``None`` for uniform.
      max_weight: ``[]`` weight clip.

    Returns:
      ``[A]`` probabilities.

    Examples:
      >>> import jax.numpy as jnp
      >>> awr_policy(jnp.array([0.0, jnp.log(3.0)]), 0.0, 1.0).round(4)
      Array([0.25, 0.75], dtype=float32)
    """
    q, p = _law(q, probs)
    v = jnp.asarray(v, q.dtype)
    chex.assert_rank(v, 0)
    check_range("beta", beta, 0.0)
    check_positive("max_weight", max_weight, allow_inf=True)  # inf: no clip
    support = p > 0
    # log-weights, shifted by their in-support maximum: exact ratios, no
    # overflow, and no underflow of the whole row.
    log_w = jnp.minimum(beta * (q - v), jnp.log(max_weight))
    log_w = jnp.where(support, log_w, 0.0)
    top = jnp.max(jnp.where(support, log_w, -_INF))
    unnorm = jnp.where(support, p * jnp.exp(log_w - top), 0.0)
    return unnorm / jnp.sum(unnorm)
