r"""Risk functionals of return laws: moments, CVaR, VaR, exceedance, utilities.

Every statistical functional here (mean, variance, CVaR, VaR, exceedance
probability, expected utility) takes ``(atoms, probs, ...)``, where
``probs=None`` means equal weights, so the same function serves a categorical
law ``(support, probs)`` and a quantile law ``(theta, None)`` of
:mod:`jaxrl.ops.distributional`. They are exact for the discrete law (CVaR
includes the fractional atom at the boundary). The built-in utilities
(:data:`UTILITY_NAMES`, :func:`get_utility`) are the objectives
:math:`\mathbb{E} f(c_0 + G)` of stock augmentation (:mod:`jaxrl.ops.stock`).

Validation: shapes are checked at trace time (chex asserts). A numeric
parameter outside its range (``alpha`` outside ``(0, 1]``) raises :class:`jaxrl.errors.ConfigError`
when its value is concrete (a Python number or a concrete array); traced values
(under ``jit``/``vmap``) are not checked.
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax.numpy as jnp

from jaxrl.errors import ConfigError
from jaxrl.ops._return_laws import (
    _check_level,
    _law,
    _lower_quantile_index,
    _sorted_law,
)
from jaxrl.types import Array, ArrayLike

__all__ = [
    "UTILITY_NAMES",
    "return_mean",
    "return_variance",
    "cvar",
    "value_at_risk",
    "exceedance_probability",
    "get_utility",
    "expected_utility",
]

Utility = Callable[[Array], Array]
"""An elementwise, jax-traceable utility ``f(x) -> y``."""


def return_mean(atoms: ArrayLike, probs: ArrayLike | None = None) -> Array:
    r"""Return the mean :math:`\sum_i p_i x_i` of a discrete law, ``[]``.

    Args:
      atoms: ``[N]`` atoms (support or quantiles).
      probs: ``[N]`` probabilities, or ``None`` for equal weights.

    Returns:
      ``[]`` the mean.

    Examples:
      >>> import jax.numpy as jnp
      >>> x, p = jnp.array([-2.0, 0.0, 1.0, 3.0]), jnp.array([0.1, 0.3, 0.4, 0.2])
      >>> round(float(return_mean(x, p)), 4)
      0.8
    """
    atoms, probs = _law(atoms, probs)
    chex.assert_rank(atoms, 1)
    return jnp.sum(probs * atoms)


def return_variance(atoms: ArrayLike, probs: ArrayLike | None = None) -> Array:
    r"""Return the variance :math:`\sum_i p_i (x_i - \mu)^2` of a discrete law, ``[]``.

    Args:
      atoms: ``[N]`` atoms (support or quantiles).
      probs: ``[N]`` probabilities, or ``None`` for equal weights.

    Returns:
      ``[]`` the variance (of the represented law; for quantiles the law of the
      ``N`` equally weighted atoms).

    Examples:
      >>> import jax.numpy as jnp
      >>> float(return_variance(jnp.array([-1.0, 1.0])))
      1.0
    """
    atoms, probs = _law(atoms, probs)
    chex.assert_rank(atoms, 1)
    mu = jnp.sum(probs * atoms)
    return jnp.sum(probs * (atoms - mu) ** 2)


def cvar(atoms: ArrayLike, probs: ArrayLike | None, alpha: ArrayLike) -> Array:
    r"""Return the lower-tail CVaR (expected shortfall) at level ``alpha``, ``[]``.

    .. math:: \mathrm{CVaR}_\alpha(X) = \frac{1}{\alpha}\int_0^\alpha F^{-1}(u)\,du
              = \max_b \Big\{ b - \tfrac{1}{\alpha}\mathbb{E}(b - X)_+ \Big\},

    the mean of the worst ``alpha`` fraction of outcomes. Exact for the
    discrete law: atoms are sorted, and the atom at the boundary contributes
    the fraction of its mass that fits in ``alpha``. ``alpha == 1`` gives the
    mean; as ``alpha -> 0`` it tends to the smallest atom with positive mass.
    ``alpha`` may be traced.

    Args:
      atoms: ``[N]`` atoms (any order).
      probs: ``[N]`` probabilities summing to one, or ``None`` (equal weights).
      alpha: ``[]`` level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``[]`` the CVaR.

    Raises:
      ConfigError: concrete ``alpha`` outside ``(0, 1]``.

    References:
      Rockafellar and Uryasev, "Optimization of conditional value-at-risk",
      J. Risk 2000, Theorem 1; Acerbi and Tasche, "On the coherence of
      expected shortfall", 2002, eq. (2.6).

    Examples:
      >>> import jax.numpy as jnp
      >>> x, p = jnp.array([-2.0, 0.0, 1.0, 3.0]), jnp.array([0.1, 0.3, 0.4, 0.2])
      >>> round(float(cvar(x, p, 0.25)), 4)  # (0.1 * -2 + 0.15 * 0) / 0.25
      -0.8
    """
    _check_level("alpha", alpha)
    atoms, probs = _law(atoms, probs)
    chex.assert_rank(atoms, 1)
    alpha = jnp.asarray(alpha, atoms.dtype)
    chex.assert_rank(alpha, 0)
    x, p = _sorted_law(atoms, probs)
    before = jnp.concatenate([jnp.zeros((1,), p.dtype), jnp.cumsum(p)[:-1]])
    taken = jnp.clip(alpha - before, 0.0, p)
    return jnp.sum(taken * x) / alpha


def value_at_risk(atoms: ArrayLike, probs: ArrayLike | None, alpha: ArrayLike) -> Array:
    r"""Return the lower ``alpha``-quantile (VaR) :math:`F^{-1}(\alpha)`, ``[]``.

    :math:`F^{-1}(\alpha) = \min\{x_j : F(x_j) \ge \alpha\}`, which is the
    maximizing ``b`` of the Rockafellar-Uryasev form of :func:`cvar`. A CDF
    value within a few ulps of ``alpha`` counts as reaching it. ``alpha`` may
    be traced.

    Args:
      atoms: ``[N]`` atoms (any order).
      probs: ``[N]`` probabilities summing to one, or ``None`` (equal weights).
      alpha: ``[]`` level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``[]`` the quantile (an atom of the law).

    Raises:
      ConfigError: concrete ``alpha`` outside ``(0, 1]``.

    References:
      Rockafellar and Uryasev, J. Risk 2000, Theorem 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> x, p = jnp.array([-2.0, 0.0, 1.0, 3.0]), jnp.array([0.1, 0.3, 0.4, 0.2])
      >>> float(value_at_risk(x, p, 0.5))
      1.0
    """
    _check_level("alpha", alpha)
    atoms, probs = _law(atoms, probs)
    chex.assert_rank(atoms, 1)
    alpha = jnp.asarray(alpha, atoms.dtype)
    chex.assert_rank(alpha, 0)
    x, p = _sorted_law(atoms, probs)
    return x[_lower_quantile_index(jnp.cumsum(p), alpha[None])[0]]


def exceedance_probability(
    atoms: ArrayLike, probs: ArrayLike | None, threshold: ArrayLike
) -> Array:
    r"""Return :math:`P(X \ge b) = \sum_i p_i \mathbb{1}\{x_i \ge b\}`, ``[]``.

    Args:
      atoms: ``[N]`` atoms.
      probs: ``[N]`` probabilities, or ``None`` for equal weights.
      threshold: ``[]`` the threshold ``b`` (may be traced).

    Returns:
      ``[]`` the probability.

    Examples:
      >>> import jax.numpy as jnp
      >>> x, p = jnp.array([-2.0, 0.0, 1.0, 3.0]), jnp.array([0.1, 0.3, 0.4, 0.2])
      >>> round(float(exceedance_probability(x, p, 1.0)), 4)
      0.6
    """
    atoms, probs = _law(atoms, probs)
    chex.assert_rank(atoms, 1)
    threshold = jnp.asarray(threshold, atoms.dtype)
    chex.assert_rank(threshold, 0)
    return jnp.sum(jnp.where(atoms >= threshold, probs, 0.0))


def _identity(x: Array) -> Array:
    return x


def _min_zero(x: Array) -> Array:
    return jnp.minimum(x, 0.0)


def _indicator(x: Array) -> Array:
    return (x >= 0).astype(x.dtype)


def _neg_abs(x: Array) -> Array:
    return -jnp.abs(x)


def _neg_square(x: Array) -> Array:
    return -jnp.square(x)


_UTILITIES: dict[str, Utility] = {
    "identity": _identity,
    "min_zero": _min_zero,
    "indicator": _indicator,
    "neg_abs": _neg_abs,
    "neg_square": _neg_square,
}

UTILITY_NAMES: tuple[str, ...] = tuple(_UTILITIES)
"""Built-in utilities: ``identity`` (x, expected return), ``min_zero``
(min(x, 0), the CVaR building block), ``indicator`` (1{x >= 0}, probability of
reaching a threshold), ``neg_abs`` (-|x|) and ``neg_square`` (-x^2) (homeostasis)."""


def get_utility(utility: str | Utility) -> Utility:
    """Return the utility function named ``utility`` (or ``utility`` if callable).

    Args:
      utility: one of :data:`UTILITY_NAMES` or an elementwise, jax-traceable
        callable ``f(x) -> y``.

    Returns:
      The elementwise callable.

    Raises:
      ConfigError: unknown name.

    Examples:
      >>> import jax.numpy as jnp
      >>> get_utility("min_zero")(jnp.array([-1.0, 2.0])).tolist()
      [-1.0, 0.0]
    """
    if callable(utility):
        return utility
    if utility not in _UTILITIES:
        raise ConfigError(
            f"utility must be one of {', '.join(UTILITY_NAMES)} or a callable, "
            f"got {utility!r}"
        )
    return _UTILITIES[utility]


def expected_utility(
    atoms: ArrayLike, probs: ArrayLike | None, utility: str | Utility
) -> Array:
    r"""Return :math:`\mathbb{E} f(X) = \sum_i p_i f(x_i)`, ``[]``.

    Args:
      atoms: ``[N]`` atoms.
      probs: ``[N]`` probabilities, or ``None`` for equal weights.
      utility: static: a name in :data:`UTILITY_NAMES` or an elementwise
        callable ``f``.

    Returns:
      ``[]`` the expected utility.

    Raises:
      ConfigError: unknown utility name.

    References:
      Pires et al., "Optimizing return distributions with distributional
      dynamic programming", JMLR 2025 (arXiv 2501.13028): expected-utility
      objectives :math:`\mathbb{E} f(c_0 + G)`.

    Examples:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([-2.0, 1.0])
      >>> float(expected_utility(x, None, "neg_square"))
      -2.5
      >>> float(expected_utility(x, jnp.array([0.25, 0.75]), lambda v: 2 * v))
      0.5
    """
    f = get_utility(utility)
    atoms, probs = _law(atoms, probs)
    chex.assert_rank(atoms, 1)
    return jnp.sum(probs * f(atoms))
