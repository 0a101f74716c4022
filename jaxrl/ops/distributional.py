r"""Distributional RL operators and risk functionals of return laws (unbatched).

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

Every statistical functional here (mean, variance, CVaR, VaR, exceedance
probability, expected utility) takes ``(atoms, probs, ...)``, where
``probs=None`` means equal weights, so the same function serves a categorical
law ``(support, probs)`` and a quantile law ``(theta, None)``. They are exact
for the discrete law (CVaR includes the fractional atom at the boundary).

Stock augmentation (Pires et al., 2025): the agent carries the *stock*
:math:`c_{t+1} = (c_t + r_t)/\gamma` (:func:`stock_update`), so that
:math:`c_0 + G_0 = \gamma^t (c_t + G_t)`; maximizing an expected utility
:math:`\mathbb{E} f(c_0 + G)` then only needs the stock-shifted greedy rule
:math:`\arg\max_b \mathbb{E} f(c' + X_b)` (:func:`stock_greedy_action`).

Validation: shapes are checked at trace time (chex asserts). A numeric
parameter outside its range (``alpha`` outside ``(0, 1]``, ``v_min >= v_max``,
``kappa < 0``, ``gamma`` outside ``(0, 1]``) raises
:class:`jaxrl.errors.ConfigError` when its value is concrete (a Python number or
a concrete array); traced values (under ``jit``/``vmap``) are not checked.
Supports must be strictly increasing (not checked).
"""

from __future__ import annotations

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import check_range, is_concrete
from jaxrl.errors import ConfigError
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

Utility = Callable[[Array], Array]

# ----------------------------------------------------------------------------- helpers


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


# ------------------------------------------------------------------------- functionals


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


# ------------------------------------------------------------------------------- stock


def stock_update(stock: ArrayLike, r_t: ArrayLike, gamma: ArrayLike) -> Array:
    r"""Return the next stock :math:`c_{t+1} = (c_t + r_t)/\gamma`.

    With this update :math:`c_0 + G_0 = \gamma^t (c_t + G_t)` for every ``t``
    (:math:`G_t = \sum_k \gamma^k r_{t+k}`), so the objective
    :math:`\mathbb{E} f(c_0 + G_0)` seen from time ``t`` is
    :math:`\mathbb{E} f(\gamma^t(c_t + G_t))`. Pass ``gamma``, not
    ``discount_t``: after a termination the stock is no longer used. Works
    elementwise (any matching shapes); ``gamma`` may be traced.

    Args:
      stock: ``[...]`` current stock :math:`c_t`.
      r_t: ``[...]`` reward received.
      gamma: ``[]`` discount factor :math:`\gamma \in (0, 1]` (checked when
        concrete).

    Returns:
      ``[...]`` the next stock.

    Raises:
      ConfigError: concrete ``gamma`` outside ``(0, 1]``.

    References:
      Pires et al., JMLR 2025 (arXiv 2501.13028), stock augmentation;
      Bäuerle and Ott, "Markov decision processes with average-value-at-risk
      criteria", Math. Meth. Oper. Res. 2011.

    Examples:
      >>> float(stock_update(-1.0, 2.0, 0.5))
      2.0
    """
    _check_level("gamma", gamma)
    stock = jnp.asarray(stock)
    if not jnp.issubdtype(stock.dtype, jnp.floating):
        stock = stock.astype(jnp.result_type(float))
    return (stock + jnp.asarray(r_t, stock.dtype)) / jnp.asarray(gamma, stock.dtype)


def _action_laws(atoms: ArrayLike, probs: ArrayLike | None) -> tuple[Array, Array]:
    atoms = jnp.asarray(atoms)
    if probs is None:
        chex.assert_rank(atoms, 2)
        return _law(atoms, None)
    probs = jnp.asarray(probs)
    chex.assert_rank(probs, 2)
    chex.assert_rank(atoms, {1, 2})
    if atoms.ndim == 2:
        chex.assert_equal_shape([atoms, probs])
    else:
        chex.assert_equal_shape([atoms, probs[0]])
    return _law(jnp.broadcast_to(atoms, probs.shape), probs)


def stock_shifted_values(
    atoms: ArrayLike,
    probs: ArrayLike | None,
    stock: ArrayLike,
    utility: str | Utility,
) -> Array:
    r"""Return :math:`\mathbb{E} f(c + X_b)` for every action ``b``, ``[A]``.

    Args:
      atoms: ``[A, N]`` per-action atoms (quantiles), or ``[N]`` a support
        shared by all actions (categorical).
      probs: ``[A, N]`` per-action probabilities, or ``None`` for equal weights
        (then ``atoms`` must be ``[A, N]``).
      stock: ``[]`` the stock :math:`c` at this state (usually the updated
        :math:`c' = (c + r)/\gamma`).
      utility: static: a name in :data:`UTILITY_NAMES` or an elementwise
        callable ``f``.

    Returns:
      ``[A]`` the stock-shifted expected utilities.

    References:
      Pires et al., JMLR 2025 (arXiv 2501.13028), stock-augmented greedy
      policies.

    Examples:
      >>> import jax.numpy as jnp
      >>> theta = jnp.array([[1.0, 1.0], [-10.0, 5.0]])
      >>> stock_shifted_values(theta, None, -2.0, "indicator").tolist()
      [0.0, 0.5]
    """
    f = get_utility(utility)
    atoms, probs = _action_laws(atoms, probs)
    stock = jnp.asarray(stock, atoms.dtype)
    chex.assert_rank(stock, 0)
    if utility == "identity":  # E[c + X] = c + E X exactly, whatever the atoms
        return stock + jnp.sum(probs * atoms, axis=-1)
    return jnp.sum(probs * f(stock + atoms), axis=-1)


def stock_greedy_action(
    atoms: ArrayLike,
    probs: ArrayLike | None,
    stock: ArrayLike,
    utility: str | Utility,
) -> Array:
    r"""Return the stock-shifted greedy action :math:`\arg\max_b E f(c + X_b)`, ``[]``.

    The greedy rule of stock-augmented distributional DP: at augmented state
    :math:`(s', c')`, with :math:`c' = (c + r)/\gamma`, pick the action whose
    return law *shifted by the stock* has the highest expected utility. With
    ``utility="identity"`` the stock is ignored (the argmax of the means, as in
    value iteration, with no rounding from adding the stock). Ties go to the
    lowest index.

    Args:
      atoms: ``[A, N]`` per-action atoms, or ``[N]`` a shared support.
      probs: ``[A, N]`` per-action probabilities, or ``None`` (equal weights).
      stock: ``[]`` the stock :math:`c'`.
      utility: static: a name in :data:`UTILITY_NAMES` or an elementwise
        callable ``f``.

    Returns:
      ``[]`` int32 action.

    References:
      Pires et al., JMLR 2025 (arXiv 2501.13028), stock-augmented greedy
      policies.

    Examples:
      >>> import jax.numpy as jnp
      >>> theta = jnp.array([[1.0, 1.0], [-10.0, 5.0]])  # safe vs risky
      >>> int(stock_greedy_action(theta, None, -2.0, "indicator"))  # needs >= 2
      1
      >>> int(stock_greedy_action(theta, None, 0.0, "indicator"))
      0
    """
    if utility == "identity":
        atoms, probs = _action_laws(atoms, probs)
        chex.assert_rank(jnp.asarray(stock), 0)
        values = jnp.sum(probs * atoms, axis=-1)
    else:
        values = stock_shifted_values(atoms, probs, stock, utility)
    return jnp.argmax(values).astype(jnp.int32)
