r"""Distributional RL operators: categorical and quantile return laws (unbatched).

A *return law* is represented by a finite discrete distribution: atoms
``x[N]`` with probabilities ``p[N]`` (summing to one). Two parametrizations of
it are used by distributional agents:

* **Categorical** (C51): fixed, sorted atoms (the *support*, by default evenly
  spaced on ``[v_min, v_max]``) and learned probabilities. A shifted/scaled
  law :math:`r + \gamma X` is brought back onto the support by the Cramér
  (L2) projection :func:`project_categorical`, which splits the mass of each
  atom between its two neighbouring support atoms (clipping to the ends). It
  preserves the total mass always, and the mean whenever no atom is clipped.
* **Quantile** (QR-DQN): learned atoms ``theta[N]`` with equal weights
  ``1/N``, the quantiles of the law at the midpoints
  :math:`\hat\tau_i = (2i - 1)/(2N)` (the W1-optimal fractions), trained with
  the quantile-Huber loss :func:`quantile_huber_loss`.

:func:`categorical_to_quantiles` and :func:`quantiles_to_categorical` convert
between the two. The functionals of a return law (mean, variance, CVaR, VaR,
exceedance probability, expected utility) live in :mod:`jaxrl.ops.risk`, stock
augmentation in :mod:`jaxrl.ops.stock`; this module re-exports both, so
``distributional.cvar(...)`` keeps working.

Validation: shapes are checked at trace time (chex asserts). A numeric
parameter outside its range (``v_min >= v_max``, ``kappa < 0``) raises :class:`jaxrl.errors.ConfigError`
when its value is concrete (a Python number or a concrete array); traced values
(under ``jit``/``vmap``) are not checked.
Supports must be strictly increasing (not checked).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import check_range, is_concrete
from jaxrl.errors import ConfigError
from jaxrl.ops._return_laws import _check_num, _law, _lower_quantile_index, _sorted_law
from jaxrl.ops.risk import (
    UTILITY_NAMES,
    Utility,  # noqa: F401 (the utility type, importable from here as before)
    cvar,
    exceedance_probability,
    expected_utility,
    get_utility,
    return_mean,
    return_variance,
    value_at_risk,
)
from jaxrl.ops.stock import stock_greedy_action, stock_shifted_values, stock_update
from jaxrl.types import Array, ArrayLike

__all__ = [
    "UTILITY_NAMES",
    "categorical_support",
    "project_categorical",
    "categorical_td_target",
    "categorical_td_loss",
    "quantile_midpoints",
    "quantile_huber_loss",
    "quantile_td_target",
    "quantile_td_loss",
    "categorical_to_quantiles",
    "quantiles_to_categorical",
    "return_mean",
    "return_variance",
    "cvar",
    "value_at_risk",
    "exceedance_probability",
    "get_utility",
    "expected_utility",
    "stock_update",
    "stock_shifted_values",
    "stock_greedy_action",
]


# ------------------------------------------------------------------------- categorical


def categorical_support(
    v_min: ArrayLike, v_max: ArrayLike, num_atoms: int = 51
) -> Array:
    r"""Return the evenly spaced support :math:`z_i = v_{min} + i\Delta`, ``[N]``.

    :math:`\Delta = (v_{max} - v_{min})/(N - 1)`. ``v_min`` and ``v_max`` may be
    traced; ``num_atoms`` is static.

    Args:
      v_min: ``[]`` smallest atom.
      v_max: ``[]`` largest atom, ``> v_min`` (checked when concrete).
      num_atoms: static number of atoms ``N >= 2``.

    Returns:
      ``[N]`` the support, ``z_0 = v_min`` and ``z_{N-1} = v_max``.

    Raises:
      ConfigError: ``num_atoms < 2``, or concrete ``v_min >= v_max``.

    References:
      Bellemare, Dabney and Munos, "A distributional perspective on RL",
      ICML 2017, Sec. 4 (C51 uses N = 51 on [-10, 10]).

    Examples:
      >>> categorical_support(-1.0, 1.0, 5).tolist()
      [-1.0, -0.5, 0.0, 0.5, 1.0]
    """
    _check_num("num_atoms", num_atoms, 2)
    v_min = jnp.asarray(v_min, jnp.result_type(float))
    v_max = jnp.asarray(v_max, v_min.dtype)
    chex.assert_rank([v_min, v_max], 0)
    if is_concrete(v_min) and is_concrete(v_max):
        lo, hi = float(v_min), float(v_max)
        if not lo < hi:
            raise ConfigError(f"v_min must be < v_max, got v_min={lo:g}, v_max={hi:g}")
    # Static fractions (exact 0 and 1 at the ends, also under jit).
    frac = jnp.asarray(np.arange(num_atoms) / (num_atoms - 1), v_min.dtype)
    return v_min * (1.0 - frac) + v_max * frac


def project_categorical(
    atoms: ArrayLike, probs: ArrayLike | None, support: ArrayLike
) -> Array:
    r"""Project the law :math:`\sum_j p_j \delta_{x_j}` onto a fixed support, ``[N]``.

    The Cramér (L2) projection: each atom is clipped to
    :math:`[z_0, z_{N-1}]` and its mass split linearly between the two
    neighbouring support atoms,

    .. math:: m_i = \sum_j p_j \Big[1 - \frac{|\mathrm{clip}(x_j) - z_i|}
              {z_{i\pm1} - z_i}\Big]_0^1

    (the gap on the side of :math:`x_j`). For an evenly spaced support this is
    C51's :math:`[1 - |\hat{\mathcal{T}} z_j - z_i|/\Delta]_0^1`. Total mass is
    preserved; the mean is preserved when no atom lies outside the support.

    Args:
      atoms: ``[M]`` source atoms :math:`x_j` (any order, e.g. ``r + g * z``).
      probs: ``[M]`` their probabilities, or ``None`` for equal weights.
      support: ``[N]`` strictly increasing target atoms, ``N >= 2``.

    Returns:
      ``[N]`` probabilities on ``support``.

    References:
      Bellemare, Dabney and Munos, ICML 2017, Algorithm 1; Rowland et al.,
      "An analysis of categorical distributional RL", AISTATS 2018, Prop. 1
      (the projection is the Cramér-distance projection).

    Examples:
      >>> import jax.numpy as jnp
      >>> z = jnp.array([0.0, 1.0, 2.0])
      >>> project_categorical(jnp.array([0.25, 5.0]), jnp.array([0.5, 0.5]), z).tolist()
      [0.375, 0.125, 0.5]
    """
    atoms, probs = _law(atoms, probs)
    support = jnp.asarray(support, atoms.dtype)
    chex.assert_rank([atoms, support], 1)
    if support.shape[0] < 2:
        raise ConfigError(f"support needs >= 2 atoms, got {support.shape[0]}")
    x = jnp.clip(atoms, support[0], support[-1])
    gaps = jnp.diff(support)
    left = jnp.concatenate([gaps[:1], gaps])  # z_i - z_{i-1} (unused at i = 0)
    right = jnp.concatenate([gaps, gaps[-1:]])  # z_{i+1} - z_i (unused at N-1)
    d = x[None, :] - support[:, None]  # [N, M]
    w = jnp.where(d >= 0, 1.0 - d / right[:, None], 1.0 + d / left[:, None])
    return jnp.clip(w, 0.0, 1.0) @ probs


def categorical_td_target(
    r_t: ArrayLike, discount_t: ArrayLike, probs_t: ArrayLike, support: ArrayLike
) -> Array:
    r"""Return the projected distributional Bellman target, ``[N]``.

    :math:`\Pi\big(\mathrm{law}(r_t + \gamma_t Z)\big)` with
    :math:`Z \sim \sum_i p_t[i] \delta_{z_i}`, projected back onto the support
    by :func:`project_categorical`.

    Args:
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount ``gamma * (1 - terminated_t)``.
      probs_t: ``[N]`` next-state return law at the chosen next action (the
        greedy or stock-shifted greedy action, chosen by the caller).
      support: ``[N]`` the support :math:`z`.

    Returns:
      ``[N]`` target probabilities.

    References:
      Bellemare, Dabney and Munos, ICML 2017, Algorithm 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> z = jnp.array([0.0, 1.0, 2.0])
      >>> categorical_td_target(0.5, 0.5, jnp.array([0.0, 0.0, 1.0]), z).tolist()
      [0.0, 0.5, 0.5]
    """
    probs_t = jnp.asarray(probs_t)
    support = jnp.asarray(support, probs_t.dtype)
    r_t = jnp.asarray(r_t, probs_t.dtype)
    discount_t = jnp.asarray(discount_t, probs_t.dtype)
    chex.assert_rank([r_t, discount_t, probs_t, support], [0, 0, 1, 1])
    chex.assert_equal_shape([probs_t, support])
    return project_categorical(r_t + discount_t * support, probs_t, support)


def categorical_td_loss(
    logits_tm1: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    probs_t: ArrayLike,
    support: ArrayLike,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return the categorical TD loss (cross-entropy to the projected target), ``[]``.

    :math:`-\sum_i m_i \log \mathrm{softmax}(\text{logits}_{tm1}[a_{tm1}])_i`
    with :math:`m` = :func:`categorical_td_target`.

    Args:
      logits_tm1: ``[A, N]`` logits of the return laws at the state the action
        was taken in.
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount ``gamma * (1 - terminated_t)``.
      probs_t: ``[N]`` next-state return law at the chosen next action.
      support: ``[N]`` the support.
      stop_target_gradients: stop gradients through the target (static bool).

    Returns:
      ``[]`` the cross-entropy.

    References:
      Bellemare, Dabney and Munos, ICML 2017, Algorithm 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> z = jnp.array([0.0, 1.0])
      >>> p_t = jnp.array([1.0, 0.0])
      >>> loss = categorical_td_loss(jnp.zeros((2, 2)), 0, 1.0, 0.0, p_t, z)
      >>> round(float(loss), 4)  # target is delta at 1; log 2
      0.6931
    """
    logits_tm1, a_tm1 = jnp.asarray(logits_tm1), jnp.asarray(a_tm1)
    chex.assert_rank([logits_tm1, a_tm1], [2, 0])
    chex.assert_type(a_tm1, int)
    target = categorical_td_target(r_t, discount_t, probs_t, support)
    if stop_target_gradients:
        target = jax.lax.stop_gradient(target)
    chex.assert_equal_shape([logits_tm1[a_tm1], target])
    return -jnp.sum(target * jax.nn.log_softmax(logits_tm1[a_tm1]))


# ---------------------------------------------------------------------------- quantile


def quantile_midpoints(num_quantiles: int, dtype: jnp.dtype | None = None) -> Array:
    r"""Return the quantile fractions :math:`\hat\tau_i = (2i - 1)/(2N)`, ``[N]``.

    They are the W1-optimal fractions: the best ``N``-atom equally weighted
    approximation of a law in Wasserstein-1 puts atom ``i`` at
    :math:`F^{-1}(\hat\tau_i)`.

    Args:
      num_quantiles: static ``N >= 1``.
      dtype: float dtype (default: JAX's default float).

    Returns:
      ``[N]`` fractions in ``(0, 1)``.

    References:
      Dabney et al., "Distributional RL with quantile regression", AAAI 2018,
      Lemma 2.

    Examples:
      >>> quantile_midpoints(4).tolist()
      [0.125, 0.375, 0.625, 0.875]
    """
    _check_num("num_quantiles", num_quantiles, 1)
    dtype = jnp.result_type(float) if dtype is None else dtype
    return (2.0 * jnp.arange(num_quantiles, dtype=dtype) + 1.0) / (2.0 * num_quantiles)


def quantile_huber_loss(
    theta: ArrayLike,
    target: ArrayLike,
    kappa: ArrayLike = 1.0,
    tau: ArrayLike | None = None,
) -> Array:
    r"""Return the quantile-Huber loss of quantiles against target atoms, ``[]``.

    .. math:: \mathcal{L} = \sum_{i=1}^{N} \frac{1}{M} \sum_{j=1}^{M}
              \big|\tau_i - \mathbb{1}\{u_{ij} < 0\}\big|\,
              \frac{L_\kappa(u_{ij})}{\kappa}, \qquad u_{ij} = y_j - \theta_i,

    with :math:`L_\kappa` the Huber loss. :math:`L_\kappa(u)/\kappa` tends to
    :math:`|u|` as :math:`\kappa \to 0`, and ``kappa == 0`` gives exactly the
    quantile (pinball) loss :math:`\sum_i \frac1M\sum_j \rho_{\tau_i}(u_{ij})`.
    ``kappa`` may be traced.

    Args:
      theta: ``[N]`` quantile estimates :math:`\theta_i`.
      target: ``[M]`` target samples/atoms :math:`y_j` (equally weighted).
      kappa: ``[]`` Huber threshold :math:`\kappa \ge 0`.
      tau: ``[N]`` quantile fractions; ``None`` uses :func:`quantile_midpoints`.

    Returns:
      ``[]`` the loss (summed over quantiles, averaged over targets).

    References:
      Dabney et al., "Distributional RL with quantile regression", AAAI 2018,
      eq. (10) and Algorithm 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(quantile_huber_loss(jnp.array([0.0]), jnp.array([1.0, -1.0]), 0.0))
      0.5
    """
    theta, target = jnp.asarray(theta), jnp.asarray(target)
    chex.assert_rank([theta, target], 1)
    check_range("kappa", kappa, 0.0)
    kappa = jnp.asarray(kappa, theta.dtype)
    chex.assert_rank(kappa, 0)
    if tau is None:
        tau = quantile_midpoints(theta.shape[0], theta.dtype)
    tau = jnp.asarray(tau, theta.dtype)
    chex.assert_equal_shape([theta, tau])
    u = target[None, :] - theta[:, None]  # [N, M]
    abs_u = jnp.abs(u)
    positive = kappa > 0
    safe_kappa = jnp.where(positive, kappa, 1.0)  # double-where: no NaN at 0
    huber = jnp.where(
        abs_u <= safe_kappa, 0.5 * u**2 / safe_kappa, abs_u - 0.5 * safe_kappa
    )
    scaled = jnp.where(positive, huber, abs_u)
    weight = jnp.abs(tau[:, None] - (u < 0).astype(theta.dtype))
    return jnp.sum(jnp.mean(weight * scaled, axis=1))


def quantile_td_target(
    r_t: ArrayLike, discount_t: ArrayLike, theta_t: ArrayLike
) -> Array:
    r"""Return the quantile TD target :math:`r_t + \gamma_t \theta_t`, ``[N]``.

    Args:
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount ``gamma * (1 - terminated_t)``.
      theta_t: ``[N]`` next-state quantiles at the chosen next action.

    Returns:
      ``[N]`` target atoms (equally weighted).

    References:
      Dabney et al., AAAI 2018, Algorithm 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> quantile_td_target(1.0, 0.5, jnp.array([-2.0, 2.0])).tolist()
      [0.0, 2.0]
    """
    theta_t = jnp.asarray(theta_t)
    r_t = jnp.asarray(r_t, theta_t.dtype)
    discount_t = jnp.asarray(discount_t, theta_t.dtype)
    chex.assert_rank([r_t, discount_t, theta_t], [0, 0, 1])
    return r_t + discount_t * theta_t


def quantile_td_loss(
    theta_tm1: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    theta_t: ArrayLike,
    kappa: ArrayLike = 1.0,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return the QR-DQN loss :func:`quantile_huber_loss` on the TD target, ``[]``.

    Args:
      theta_tm1: ``[A, N]`` quantiles at the state the action was taken in.
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount ``gamma * (1 - terminated_t)``.
      theta_t: ``[M]`` next-state quantiles at the chosen next action.
      kappa: ``[]`` Huber threshold :math:`\kappa \ge 0` (QR-DQN: 1).
      stop_target_gradients: stop gradients through the target (static bool).

    Returns:
      ``[]`` the loss.

    References:
      Dabney et al., AAAI 2018, Algorithm 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> theta = jnp.array([[0.0, 0.0], [5.0, 5.0]])
      >>> float(quantile_td_loss(theta, 0, 0.0, 1.0, jnp.array([0.0, 0.0])))
      0.0
    """
    theta_tm1, a_tm1 = jnp.asarray(theta_tm1), jnp.asarray(a_tm1)
    chex.assert_rank([theta_tm1, a_tm1], [2, 0])
    chex.assert_type(a_tm1, int)
    target = quantile_td_target(r_t, discount_t, theta_t)
    if stop_target_gradients:
        target = jax.lax.stop_gradient(target)
    return quantile_huber_loss(theta_tm1[a_tm1], target, kappa)


# ------------------------------------------------------------------------- conversions


def categorical_to_quantiles(
    atoms: ArrayLike, probs: ArrayLike | None, num_quantiles: int
) -> Array:
    r"""Return the quantiles :math:`F^{-1}(\hat\tau_i)` of a discrete law, ``[K]``.

    :math:`F^{-1}(\tau) = \min\{x_j : F(x_j) \ge \tau\}` at the midpoints
    :math:`\hat\tau_i = (2i-1)/(2K)`: the W1 projection of the law onto ``K``
    equally weighted Diracs. A CDF value within a few ulps of a level counts
    as reaching it (so float rounding does not move an atom at an exact jump).

    Args:
      atoms: ``[N]`` atoms (e.g. the categorical support; any order).
      probs: ``[N]`` probabilities summing to one, or ``None`` (equal weights).
      num_quantiles: static ``K >= 1``.

    Returns:
      ``[K]`` non-decreasing quantiles.

    References:
      Dabney et al., AAAI 2018, Lemma 2 and Proposition 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> x, p = jnp.array([0.0, 1.0]), jnp.array([0.3, 0.7])
      >>> categorical_to_quantiles(x, p, 4).tolist()
      [0.0, 1.0, 1.0, 1.0]
    """
    atoms, probs = _law(atoms, probs)
    chex.assert_rank(atoms, 1)
    x, p = _sorted_law(atoms, probs)
    cdf = jnp.cumsum(p)
    levels = quantile_midpoints(num_quantiles, x.dtype)
    return x[_lower_quantile_index(cdf, levels)]


def quantiles_to_categorical(theta: ArrayLike, support: ArrayLike) -> Array:
    r"""Project the equally weighted Diracs at ``theta`` onto ``support``, ``[N]``.

    See :func:`project_categorical` (with ``probs = 1/K``).

    Args:
      theta: ``[K]`` quantile atoms.
      support: ``[N]`` strictly increasing support.

    Returns:
      ``[N]`` probabilities on ``support``.

    Examples:
      >>> import jax.numpy as jnp
      >>> z = jnp.array([0.0, 1.0, 2.0])
      >>> quantiles_to_categorical(jnp.array([0.5, 2.0]), z).tolist()
      [0.25, 0.25, 0.5]
    """
    return project_categorical(theta, None, support)
