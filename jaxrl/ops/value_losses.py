r"""Value losses of offline dual RL (XQL, f-DVL, IQL) and their exact minimisers.

The offline recipe shared by XQL and f-DVL (on the IQL skeleton) trains
:math:`Q(s,a) \leftarrow r + \gamma V(s')` by regression and fits :math:`V(s)`
by minimising a per-sample loss of :math:`x = Q(s,a) - V(s)` over the data
(names in :data:`VALUE_LOSSES`, parameter in brackets):

* ``gumbel`` [temperature :math:`\beta > 0`], XQL (Garg, Hejna, Geist and Ermon,
  ICLR 2023) = f-DVL with reverse KL: :math:`e^{z} - z - 1`, :math:`z = x/\beta`
  (:func:`gumbel_loss`). Minimiser: :math:`V = \beta \log \mathbb{E}_\mu
  e^{Q/\beta}` (:func:`gumbel_value`), a soft maximum over the data's actions:
  :math:`\beta \to 0` gives the in-support maximum, :math:`\beta \to \infty`
  the behaviour mean. The stabilisers of the reference code (exponent clipping
  and max-normalisation over the batch, or the "log" loss with its analytic
  gradient) are :func:`gumbel_rescale_loss` and :func:`gumbel_log_loss`.
* ``chi_square`` [:math:`\lambda \in (0, 1]`], f-DVL:
  :math:`\lambda \max(x + x^2/4, 0) - (1-\lambda) x`
  (:func:`chi_square_loss`, :func:`chi_square_value`).
* ``total_variation`` [:math:`\lambda \in [1/2, 1]`], f-DVL:
  :math:`\lambda \max(x, 0) - (1-\lambda) x`; minimiser: the
  :math:`(2\lambda - 1)/\lambda` quantile, where :math:`P_\mu(Q > V) =
  (1-\lambda)/\lambda` (:func:`total_variation_loss`,
  :func:`total_variation_value`).
* ``expectile`` [:math:`\tau \in (0, 1)`], IQL (Kostrikov, Nair and Levine,
  ICLR 2022): :math:`|\tau - 1\{x < 0\}|\, x^2`; minimiser: the
  :math:`\tau`-expectile (:func:`expectile_loss`, :func:`expectile_value`).

The f-DVL losses follow the authors' implementation, not the textbook positive
conjugate :math:`f^*_p` of :mod:`jaxrl.ops.divergences`: its ``chi_square`` term
:math:`\max(y + y^2/4, 0)` agrees with :math:`f^*_p(y)` for :math:`y \ge 0` only
(it is 0 on :math:`[-4, 0]`, where :math:`f^*_p \in [-1, 0]`, and
:math:`y + y^2/4 > 0` below -4, where :math:`f^*_p = -1`); its
``total_variation`` term :math:`\max(y, 0)` has its kink at 0 instead of -1/2
(which shifts the minimiser by 1/2, keeping it a quantile) and drops the
:math:`+\infty` above 1/2.

:func:`value_minimizer` returns the exact minimiser of any of the four losses
for a discrete law ``(q, probs)`` (samples, or the actions of one state under
the data's behaviour policy), which is what the tabular dual-RL DP uses. The
four losses share one module because :func:`value_loss` and
:func:`value_minimizer` dispatch over them by name.

Conventions: elementwise losses accept any shape; the batch losses and the
minimisers take ``[N]`` arrays and reduce. ``name`` is a static Python string;
an unknown name raises :class:`jaxrl.errors.ConfigError`. Numeric parameters
may be traced (sweep them with ``vmap``); a concrete value outside its range
raises :class:`~jaxrl.errors.ConfigError`, traced values are not checked.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

from jaxrl.config import check_positive, check_range
from jaxrl.errors import ConfigError
from jaxrl.ops._dual_common import _float, _law
from jaxrl.types import Array, ArrayLike

__all__ = [
    "VALUE_LOSSES",
    "DEFAULT_VALUE_ITERS",
    "gumbel_loss",
    "gumbel_rescale_loss",
    "gumbel_log_loss",
    "chi_square_loss",
    "total_variation_loss",
    "expectile_loss",
    "value_loss",
    "gumbel_value",
    "chi_square_value",
    "total_variation_value",
    "expectile_value",
    "value_minimizer",
]

VALUE_LOSSES = ("gumbel", "chi_square", "total_variation", "expectile")
"""Names of the value losses: XQL (= f-DVL reverse KL), f-DVL chi^2 and TV, IQL."""

DEFAULT_VALUE_ITERS = 60
"""Bisection steps of :func:`chi_square_value` (float64 resolution from any bracket)."""

_INF = math.inf


def _check_loss_name(name: str) -> None:
    if name not in VALUE_LOSSES:
        raise ConfigError(
            f"value loss must be one of {', '.join(VALUE_LOSSES)}, got {name!r}"
        )


def _check_lam(name: str, lam: ArrayLike) -> None:
    if name == "total_variation":
        check_range("lam", lam, 0.5, 1.0)
    else:
        check_range("lam", lam, 0.0, 1.0, low_inclusive=False)


def _check_expectile(expectile: ArrayLike) -> None:
    check_range(
        "expectile", expectile, 0.0, 1.0, low_inclusive=False, high_inclusive=False
    )


# -------------------------------------------------------------------- value losses


def gumbel_loss(x: ArrayLike, beta: ArrayLike, max_clip: ArrayLike = _INF) -> Array:
    r"""Return the Gumbel-regression loss :math:`e^{z} - z - 1`, elementwise.

    :math:`z = \min(x/\beta, c)` with :math:`x = Q(s,a) - V(s)` and the exponent
    clip :math:`c` = ``max_clip`` (``inf``: no clipping; the reference code
    uses 7, its README examples 5). Without clipping,
    :math:`\min_v \mathbb{E}[\ell(Q - v)]` is attained at
    :math:`v = \beta \log \mathbb{E} e^{Q/\beta}` (:func:`gumbel_value`).
    Clipping zeroes the gradient of samples with :math:`z > c` (so it biases the
    minimiser down). Evaluated as ``expm1(z) - z`` for accuracy near 0.

    Args:
      x: ``[...]`` residuals :math:`Q(s,a) - V(s)`.
      beta: ``[]`` temperature :math:`\beta > 0`.
      max_clip: ``[]`` upper clip :math:`c` of :math:`z`.

    Returns:
      ``[...]`` nonnegative losses.

    Raises:
      ConfigError: concrete ``beta <= 0``.

    References:
      Garg, Hejna, Geist and Ermon, "Extreme Q-Learning: MaxEnt RL without
      Entropy", ICLR 2023 (the Gumbel regression objective; exponent clipping).

    Examples:
      >>> import jax.numpy as jnp
      >>> gumbel_loss(jnp.array([0.0, 2.0]), 2.0).round(4)
      Array([0.    , 0.7183], dtype=float32)
    """
    check_positive("beta", beta)
    x = _float(x)
    z = jnp.minimum(x / beta, max_clip)
    return jnp.expm1(z) - z


def gumbel_rescale_loss(
    x: ArrayLike, beta: ArrayLike, max_clip: ArrayLike = _INF
) -> Array:
    r"""Return XQL's max-normalised Gumbel loss over a batch, ``[]``.

    :math:`\frac{1}{B}\sum_i e^{-m}(e^{z_i} - z_i - 1)` evaluated as
    :math:`e^{z_i - m} - (z_i + 1) e^{-m}`, with :math:`z_i = \min(x_i/\beta,
    c)` and :math:`m = \mathrm{sg}(\max(\max_i z_i, -1))` (no gradient). The
    factor :math:`e^{-m}` is an adaptive learning rate that keeps
    :math:`e^{z}` from overflowing on outliers; the minimiser over a shared
    :math:`V` is that of :func:`gumbel_loss` (the factor is constant).

    Args:
      x: ``[B]`` residuals :math:`Q - V`.
      beta: ``[]`` temperature :math:`\beta > 0`.
      max_clip: ``[]`` upper clip of :math:`z` (``inf``: none; XQL uses 7).

    Returns:
      ``[]`` the batch mean.

    Raises:
      ConfigError: concrete ``beta <= 0``.

    References:
      Garg et al., ICLR 2023 (practical considerations); the
      ``gumbel_rescale_loss`` of their reference implementation.

    Examples:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([0.0, 2.0])
      >>> bool(jnp.isclose(gumbel_rescale_loss(x, 2.0) * jnp.e,
      ...                  gumbel_loss(x, 2.0).mean()))
      True
    """
    check_positive("beta", beta)
    x = _float(x)
    chex.assert_rank(x, 1)
    z = jnp.minimum(x / beta, max_clip)
    m = jax.lax.stop_gradient(jnp.maximum(jnp.max(z), -1.0))
    return jnp.mean(jnp.exp(z - m) - (z + 1.0) * jnp.exp(-m))


def gumbel_log_loss(x: ArrayLike, beta: ArrayLike, max_clip: ArrayLike = _INF) -> Array:
    r"""Return XQL's "log" Gumbel surrogate over a batch, ``[]``.

    A surrogate whose gradient equals that of
    :math:`\log(1 + J)`, :math:`J = \frac1B\sum_i (e^{z_i} - z_i - 1)` (same
    minimiser as :func:`gumbel_loss`): it returns
    :math:`\frac1B\sum_i \mathrm{sg}(g_i)\, z_i` with the analytic
    :math:`g_i = (e^{z_i} - 1)/(J + 1)`, computed with the offset
    :math:`a = \max(\max_i z_i, -1)` as
    :math:`(e^{z_i - a} - e^{-a}) / \frac1B\sum_j (e^{z_j - a} - z_j e^{-a})`,
    and :math:`z_i = \min(x_i/\beta, c)` inside :math:`g` only (the reference
    code clips at 7 there). Only its gradient is meaningful, not its value.

    Args:
      x: ``[B]`` residuals :math:`Q - V`.
      beta: ``[]`` temperature :math:`\beta > 0`.
      max_clip: ``[]`` clip of :math:`z` in the analytic gradient.

    Returns:
      ``[]`` the surrogate.

    Raises:
      ConfigError: concrete ``beta <= 0``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> x = jnp.array([0.5, -1.0, 2.0])
      >>> g = jax.grad(gumbel_log_loss)(x, 1.0)
      >>> h = jax.grad(lambda x: jnp.log1p(gumbel_loss(x, 1.0).mean()))(x)
      >>> bool(jnp.allclose(g, h))
      True
    """
    check_positive("beta", beta)
    x = _float(x)
    chex.assert_rank(x, 1)
    z = x / beta
    zc = jax.lax.stop_gradient(jnp.minimum(z, max_clip))
    a = jnp.maximum(jnp.max(zc), -1.0)
    denom = jnp.mean(jnp.exp(zc - a) - zc * jnp.exp(-a))
    g = (jnp.exp(zc - a) - jnp.exp(-a)) / denom
    return jnp.mean(jax.lax.stop_gradient(g) * z)


def chi_square_loss(x: ArrayLike, lam: ArrayLike) -> Array:
    r"""Return the f-DVL chi-square value loss, elementwise.

    :math:`\lambda \max(x + x^2/4, 0) - (1 - \lambda) x` with
    :math:`x = Q(s,a) - V(s)` (convex in :math:`V`); :math:`\lambda` trades the
    conjugate term against the pessimistic :math:`-\mathbb{E}[x]`. As in the
    authors' code (equal to :math:`\lambda f^*_p(x) - (1-\lambda)x` only for
    :math:`x \ge 0`, see the module docstring). Minimiser:
    :func:`chi_square_value`.

    Args:
      x: ``[...]`` residuals :math:`Q - V`.
      lam: ``[]`` :math:`\lambda \in (0, 1]` (the code's ``temp``).

    Returns:
      ``[...]`` losses.

    Raises:
      ConfigError: concrete ``lam`` outside ``(0, 1]``.

    References:
      Sikchi et al., ICLR 2024 (f-DVL) and the authors' ``DVL`` code.

    Examples:
      >>> import jax.numpy as jnp
      >>> chi_square_loss(jnp.array([-2.0, 2.0]), 0.5)
      Array([1. , 0.5], dtype=float32)
    """
    _check_lam("chi_square", lam)
    x = _float(x)
    return lam * jnp.maximum(x + 0.25 * jnp.square(x), 0.0) - (1.0 - lam) * x


def total_variation_loss(x: ArrayLike, lam: ArrayLike) -> Array:
    r"""Return the f-DVL total-variation value loss, elementwise.

    :math:`\lambda \max(x, 0) - (1 - \lambda) x`, :math:`x = Q - V`: a pinball
    loss whose minimiser over :math:`V` is the quantile with
    :math:`P(Q > V) = (1-\lambda)/\lambda`, i.e. the
    :math:`(2\lambda-1)/\lambda` quantile (:func:`total_variation_value`);
    :math:`\lambda = 0.8` gives the 75th percentile. Needs
    :math:`\lambda \ge 1/2` (below, the loss is unbounded below).

    Args:
      x: ``[...]`` residuals :math:`Q - V`.
      lam: ``[]`` :math:`\lambda \in [1/2, 1]`.

    Returns:
      ``[...]`` losses.

    Raises:
      ConfigError: concrete ``lam`` outside ``[1/2, 1]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> total_variation_loss(jnp.array([-1.0, 1.0]), 0.8)
      Array([0.2, 0.6], dtype=float32)
    """
    _check_lam("total_variation", lam)
    x = _float(x)
    return lam * jnp.maximum(x, 0.0) - (1.0 - lam) * x


def expectile_loss(x: ArrayLike, expectile: ArrayLike) -> Array:
    r"""Return IQL's expectile loss :math:`|\tau - 1\{x < 0\}|\, x^2`, elementwise.

    :math:`x = Q(s,a) - V(s)`; the minimiser over :math:`V` is the
    :math:`\tau`-expectile of :math:`Q` (:func:`expectile_value`); ``0.5`` is
    the mean (half the squared error).

    Args:
      x: ``[...]`` residuals :math:`Q - V`.
      expectile: ``[]`` :math:`\tau \in (0, 1)` (IQL: 0.7 locomotion, 0.9
        antmaze).

    Returns:
      ``[...]`` losses.

    Raises:
      ConfigError: concrete ``expectile`` outside ``(0, 1)``.

    References:
      Kostrikov, Nair and Levine, "Offline Reinforcement Learning with Implicit
      Q-Learning", ICLR 2022 (the expectile value objective).

    Examples:
      >>> import jax.numpy as jnp
      >>> expectile_loss(jnp.array([-2.0, 2.0]), 0.75)
      Array([1., 3.], dtype=float32)
    """
    _check_expectile(expectile)
    x = _float(x)
    weight = jnp.where(x < 0, 1.0 - expectile, expectile)
    return weight * jnp.square(x)


def value_loss(x: ArrayLike, param: ArrayLike, name: str) -> Array:
    r"""Return the value loss ``name`` of residuals ``x = Q - V``, elementwise.

    Dispatches to :func:`gumbel_loss` (``param`` = :math:`\beta`, unclipped),
    :func:`chi_square_loss` / :func:`total_variation_loss` (``param`` =
    :math:`\lambda`) or :func:`expectile_loss` (``param`` = :math:`\tau`).

    Args:
      x: ``[...]`` residuals.
      param: ``[]`` the loss's parameter.
      name: static name in :data:`VALUE_LOSSES`.

    Returns:
      ``[...]`` losses.

    Raises:
      ConfigError: unknown ``name`` or a concrete parameter out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> value_loss(jnp.array([1.0]), 0.5, "expectile")
      Array([0.5], dtype=float32)
    """
    _check_loss_name(name)
    if name == "gumbel":
        return gumbel_loss(x, param)
    if name == "chi_square":
        return chi_square_loss(x, param)
    if name == "total_variation":
        return total_variation_loss(x, param)
    return expectile_loss(x, param)


# ---------------------------------------------------------------- exact minimisers


def gumbel_value(
    q: ArrayLike, beta: ArrayLike, probs: ArrayLike | None = None
) -> Array:
    r"""Return the Gumbel-loss minimiser :math:`\beta\log E_p e^{q/\beta}`, ``[]``.

    The exact minimiser over :math:`v` of :math:`\mathbb{E}_p[e^{(q-v)/\beta} -
    (q-v)/\beta - 1]` (first-order condition :math:`\mathbb{E}_p e^{(q-v)/\beta}
    = 1`): the XQL value of a state whose data actions have values ``q`` and
    behaviour probabilities ``probs``. ``beta = 0`` gives the limit
    :math:`\max_{p_i > 0} q_i` (in-support maximum) and ``beta = inf`` the mean
    :math:`\mathbb{E}_p q`, both exactly. Stable for any scale: computed as
    :math:`m + \beta\,\mathrm{log1p}(\mathbb{E}_p\,\mathrm{expm1}((q-m)/\beta))`
    with :math:`m` the in-support maximum. For ``x ~ N(mu, sigma^2)`` it is
    :math:`\mu + \sigma^2/(2\beta)`.

    Args:
      q: ``[N]`` values (samples, or the action values of one state).
      beta: ``[]`` temperature :math:`\beta \in [0, \infty]`.
      probs: ``[N]`` nonnegative weights (normalised here; positive sum), or
        ``None`` for equal weights. Atoms with zero weight are ignored.

    Returns:
      ``[]`` the value.

    Raises:
      ConfigError: concrete ``beta < 0``.

    References:
      Garg et al., ICLR 2023 (Gumbel regression estimates the
      log-partition function).

    Examples:
      >>> import jax.numpy as jnp
      >>> q = jnp.array([0.0, 1.0, 5.0])
      >>> float(gumbel_value(q, 0.0, probs=jnp.array([0.5, 0.5, 0.0])))
      1.0
      >>> round(float(gumbel_value(q, 1.0)), 4)  # log((1 + e + e^5) / 3)
      3.9261
    """
    check_range("beta", beta, 0.0, allow_inf=True)  # [0, inf]
    q, p = _law(q, probs)
    beta = jnp.asarray(beta, q.dtype)
    support = p > 0
    top = jnp.max(jnp.where(support, q, -_INF))
    q_in = jnp.where(support, q, top)
    soft_case = (beta > 0) & jnp.isfinite(beta)
    safe_beta = jnp.where(soft_case, beta, 1.0)
    inner = jnp.sum(p * jnp.expm1((q_in - top) / safe_beta))
    soft = top + safe_beta * jnp.log1p(inner)
    mean = jnp.sum(p * q_in)
    return jnp.where(beta > 0, jnp.where(soft_case, soft, mean), top)


def expectile_value(
    q: ArrayLike, expectile: ArrayLike, probs: ArrayLike | None = None
) -> Array:
    r"""Return the :math:`\tau`-expectile of a discrete law, exactly, ``[]``.

    The unique root :math:`v` of :math:`\mathbb{E}_p |\tau - 1\{q < v\}|(q - v)
    = 0`, i.e. the minimiser of :math:`\mathbb{E}_p[\ell_\tau(q - v)]`
    (:func:`expectile_loss`). The root is found without iterations: sort the
    atoms, locate the segment between consecutive atoms where the (decreasing,
    piecewise-linear) first-order condition changes sign with cumulative sums,
    and solve the linear equation there.

    Args:
      q: ``[N]`` values.
      expectile: ``[]`` :math:`\tau \in (0, 1)`; 0.5 gives the mean.
      probs: ``[N]`` nonnegative weights (normalised here), or ``None``.

    Returns:
      ``[]`` the expectile.

    Raises:
      ConfigError: concrete ``expectile`` outside ``(0, 1)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(expectile_value(jnp.array([0.0, 1.0]), 0.75))
      0.75
    """
    _check_expectile(expectile)
    q, p = _law(q, probs)
    if q.shape[0] == 1:
        return q[0]
    tau = jnp.asarray(expectile, q.dtype)
    order = jnp.argsort(q)
    qs, ps = q[order], p[order]
    w_lo = jnp.cumsum(ps)  # mass of atoms <= qs[k]
    s_lo = jnp.cumsum(ps * qs)
    w_hi, s_hi = 1.0 - w_lo, jnp.sum(ps * qs) - s_lo
    # first-order condition at v = qs[k] (atoms equal to qs[k] contribute 0)
    foc = tau * (s_hi - w_hi * qs) + (1.0 - tau) * (s_lo - w_lo * qs)
    k = jnp.clip(jnp.sum(foc > 0) - 1, 0, q.shape[0] - 2)
    root = (tau * s_hi[k] + (1.0 - tau) * s_lo[k]) / (
        tau * w_hi[k] + (1.0 - tau) * w_lo[k]
    )
    return jnp.clip(root, qs[k], qs[k + 1])


def total_variation_value(
    q: ArrayLike, lam: ArrayLike, probs: ArrayLike | None = None
) -> Array:
    r"""Return the minimiser of the f-DVL total-variation loss: a quantile, ``[]``.

    The minimisers of :math:`\mathbb{E}_p[\lambda\max(q - v, 0) - (1-\lambda)(q
    - v)]` are the values with :math:`P_p(q > v) \le (1-\lambda)/\lambda \le
    P_p(q \ge v)`, i.e. the quantiles at level
    :math:`\rho = (2\lambda - 1)/\lambda`; this returns the lower one,
    :math:`\min\{v : F_p(v) \ge \rho\}` over the support (numpy's
    ``quantile(..., method="inverted_cdf")``). :math:`\lambda = 1` gives the
    in-support maximum, :math:`\lambda = 1/2` the in-support minimum.

    Args:
      q: ``[N]`` values.
      lam: ``[]`` :math:`\lambda \in [1/2, 1]`.
      probs: ``[N]`` nonnegative weights (normalised here), or ``None``.

    Returns:
      ``[]`` the quantile.

    Raises:
      ConfigError: concrete ``lam`` outside ``[1/2, 1]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(total_variation_value(jnp.array([4.0, 1.0, 3.0, 2.0]), 0.8))
      3.0
    """
    _check_lam("total_variation", lam)
    q, p = _law(q, probs)
    lam = jnp.asarray(lam, q.dtype)
    level = (2.0 * lam - 1.0) / lam
    order = jnp.argsort(q)
    qs, ps = q[order], p[order]
    cdf = jnp.cumsum(ps)
    eps = jnp.finfo(q.dtype).eps
    ok = (cdf >= level * (1.0 - 16.0 * eps)) & (ps > 0)
    return qs[jnp.argmax(ok)]


def _chi_square_slope(v: Array, q: Array, p: Array, lam: Array) -> Array:
    """d/dv of E_p[chi_square_loss(q - v)] (nondecreasing in v)."""
    x = q - v
    g = jnp.where((x > 0) | (x < -4.0), 1.0 + 0.5 * x, 0.0)
    return (1.0 - lam) - lam * jnp.sum(p * g)


def chi_square_value(
    q: ArrayLike,
    lam: ArrayLike,
    probs: ArrayLike | None = None,
    num_iters: int = DEFAULT_VALUE_ITERS,
) -> Array:
    r"""Return the minimiser of the f-DVL chi-square loss over a discrete law, ``[]``.

    The loss :math:`v \mapsto \mathbb{E}_p[\lambda\max(x + x^2/4, 0) -
    (1-\lambda)x]`, :math:`x = q - v`, is convex; its derivative is
    nondecreasing and piecewise linear (kinks at :math:`q_i` and
    :math:`q_i + 4`); when the minimiser is not unique (only possible at
    :math:`\lambda = 1`) the smallest one is returned. The root is bracketed by
    :math:`[\min(q_{min}, \bar q - 2(1-2\lambda)_+/\lambda) - 1,\;
    \max(q_{max} + 4, \bar q + 2(2\lambda-1)_+/\lambda) + 1]`, narrowed by
    ``num_iters`` bisection steps and finished by one linear interpolation
    (exact when no kink remains in the bracket). It is an upper,
    expectile-like statistic of :math:`q` (N(0, 1) samples: :math:`\lambda =
    0.5 \to -0.442`, :math:`0.7 \to 0.460`, :math:`0.9 \to 1.318`).

    Args:
      q: ``[N]`` values.
      lam: ``[]`` :math:`\lambda \in (0, 1]`.
      probs: ``[N]`` nonnegative weights (normalised here), or ``None``.
      num_iters: static number of bisection steps.

    Returns:
      ``[]`` the minimiser.

    Raises:
      ConfigError: concrete ``lam`` outside ``(0, 1]`` or ``num_iters < 1``.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(chi_square_value(jnp.array([0.0, 10.0]), 0.5)), 4)
      5.0
    """
    _check_lam("chi_square", lam)
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ConfigError(f"num_iters must be a Python int >= 1, got {num_iters!r}")
    q, p = _law(q, probs)
    lam = jnp.asarray(lam, q.dtype)
    support = p > 0
    q_in = jnp.where(support, q, jnp.sum(p * jnp.where(support, q, 0.0)))
    mean = jnp.sum(p * q_in)
    lo = jnp.minimum(
        jnp.min(q_in), mean - 2.0 * jnp.maximum(1.0 - 2.0 * lam, 0.0) / lam
    )
    hi = jnp.maximum(
        jnp.max(q_in) + 4.0, mean + 2.0 * jnp.maximum(2.0 * lam - 1.0, 0.0) / lam
    )
    lo, hi = lo - 1.0, hi + 1.0

    def body(_, bracket):
        a, b = bracket
        mid = 0.5 * (a + b)
        up = _chi_square_slope(mid, q_in, p, lam) >= 0
        return jnp.where(up, a, mid), jnp.where(up, mid, b)

    lo, hi = jax.lax.fori_loop(0, num_iters, body, (lo, hi))
    h_lo = _chi_square_slope(lo, q_in, p, lam)
    h_hi = _chi_square_slope(hi, q_in, p, lam)
    rising = h_hi > h_lo
    t = jnp.where(rising, -h_lo / jnp.where(rising, h_hi - h_lo, 1.0), 0.5)
    return jnp.clip(lo + t * (hi - lo), lo, hi)


def value_minimizer(
    q: ArrayLike,
    param: ArrayLike,
    name: str,
    probs: ArrayLike | None = None,
    num_iters: int = DEFAULT_VALUE_ITERS,
) -> Array:
    r"""Return :math:`\arg\min_v \mathbb{E}_p[\ell(q - v)]` for a value loss, ``[]``.

    Dispatches to :func:`gumbel_value` (``param`` = :math:`\beta`),
    :func:`chi_square_value`, :func:`total_variation_value` (``param`` =
    :math:`\lambda`) or :func:`expectile_value` (``param`` = :math:`\tau`). In
    the tabular dual-RL DP, ``q`` holds one state's action values and ``probs``
    the data's behaviour policy :math:`d_D(a|s)` there.

    Args:
      q: ``[N]`` values.
      param: ``[]`` the loss's parameter.
      name: static name in :data:`VALUE_LOSSES`.
      probs: ``[N]`` nonnegative weights (normalised here), or ``None``.
      num_iters: static bisection steps (``chi_square`` only).

    Returns:
      ``[]`` the minimiser.

    Raises:
      ConfigError: unknown ``name`` or a concrete parameter out of range.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(value_minimizer(jnp.array([1.0, 3.0]), 0.5, "expectile"))
      2.0
    """
    _check_loss_name(name)
    if name == "gumbel":
        return gumbel_value(q, param, probs)
    if name == "chi_square":
        return chi_square_value(q, param, probs, num_iters)
    if name == "total_variation":
        return total_variation_value(q, param, probs)
    return expectile_value(q, param, probs)
