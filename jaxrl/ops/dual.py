r"""Dual RL: f-divergences, their conjugates, the XQL / f-DVL / IQL value losses,
advantage-weighted policy extraction and the ReCOIL objective.

**Dual RL** (Sikchi, Zheng, Zhang and Niekum, ICLR 2024) writes regularised RL
as :math:`\max_{d \ge 0} \mathbb{E}_d[r] - \alpha D_f(d \,\|\, d^O)` over
visitation distributions :math:`d` satisfying the Bellman-flow constraints,
with :math:`D_f(P \| Q) = \mathbb{E}_Q[f(P/Q)]` (:func:`f_divergence`). Its
Lagrangian dual replaces the divergence by the convex conjugate of the
generator restricted to nonnegative ratios,
:math:`f^*_p(y) = \sup_{t \ge 0}\, (t y - f(t))` (:func:`f_conjugate_positive`),
and the optimal importance ratio is the maximiser
:math:`d^*/d^O = \arg\max_{t \ge 0} (t y - f(t))` (:func:`f_optimal_ratio`).
Generators (``f`` names, :data:`F_DIVERGENCES`), with their positive
conjugates and optimal ratios:

* ``chi_square``: :math:`f(t) = (t-1)^2`; :math:`f^*_p(y) = y + y^2/4` for
  :math:`y \ge -2`, else :math:`-1`; :math:`t^* = \max(0, 1 + y/2)`.
* ``total_variation``: :math:`f(t) = |t-1|/2`; :math:`f^*_p(y) = \max(y, -1/2)`
  for :math:`y \le 1/2`, else :math:`+\infty`; :math:`t^* \in \{0, 1, \infty\}`.
* ``reverse_kl``: :math:`f(t) = t \ln t`; :math:`f^*_p(y) = t^* = e^{y-1}`.
* ``forward_kl``: :math:`f(t) = -\ln t`; :math:`f^*_p(y) = -1 - \ln(-y)` for
  :math:`y < 0`, else :math:`+\infty`; :math:`t^* = -1/y`.

(``reverse_kl`` gives :math:`D_f(d\|d^O) = \mathrm{KL}(d\|d^O)`, the
mode-seeking direction of imitation learning; ``forward_kl`` gives
:math:`\mathrm{KL}(d^O\|d)`.)

**Value losses.** The offline recipe shared by XQL and f-DVL (on the IQL
skeleton) trains :math:`Q(s,a) \leftarrow r + \gamma V(s')` by regression and
fits :math:`V(s)` by minimising a per-sample loss of :math:`x = Q(s,a) - V(s)`
over the data (names in :data:`VALUE_LOSSES`, parameter in brackets):

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

The f-DVL losses follow the authors' implementation, not the textbook
:math:`f^*_p`: its ``chi_square`` term :math:`\max(y + y^2/4, 0)` agrees with
:math:`f^*_p(y)` for :math:`y \ge 0` only (it is 0 on :math:`[-4, 0]`, where
:math:`f^*_p \in [-1, 0]`, and :math:`y + y^2/4 > 0` below -4, where
:math:`f^*_p = -1`); its ``total_variation`` term :math:`\max(y, 0)` has its kink
at 0 instead of -1/2 (which shifts the minimiser by 1/2, keeping it a quantile)
and drops the :math:`+\infty` above 1/2.

:func:`value_minimizer` returns the exact minimiser of any of the four losses
for a discrete law ``(q, probs)`` (samples, or the actions of one state under
the data's behaviour policy), which is what the tabular dual-RL DP uses.

**Policy extraction** (AWR, Peng et al. 2019, as in IQL/XQL/f-DVL): maximise
:math:`\mathbb{E}_D[w \log \pi(a|s)]` with
:math:`w = \min(e^{\beta_\pi (Q - V)}, w_{max})` (:func:`awr_weights`,
:func:`awr_loss`); in a table the maximiser is
:math:`\pi(a|s) \propto \mu(a|s)\, w(s,a)` (:func:`awr_policy`), so
:math:`\beta_\pi = 0` is behaviour cloning.

**ReCOIL** (Sikchi et al., ICLR 2024) imitates from an expert set :math:`d^E`
plus arbitrary data :math:`d^S` by matching the mixtures
:math:`\beta d^\pi + (1-\beta) d^S` and :math:`\beta d^E + (1-\beta) d^S`; its
dual-Q objective is :func:`recoil_objective` (whose minimum over :math:`Q` is
:math:`-D_f` of the two mixtures, so with expert-only data its optimal policy is
behaviour cloning), and the bounded-target critic of the authors' code is
:func:`recoil_td_target` / :func:`recoil_critic_loss`.

Conventions: elementwise functions accept any shape; functions over a batch or
a discrete law take ``[N]`` arrays and reduce. Names (``f``, ``name``) are
static Python strings; an unknown name raises :class:`jaxrl.errors.ConfigError`.
Numeric parameters may be traced (sweep them with ``vmap``); a concrete value
outside its range raises :class:`~jaxrl.errors.ConfigError`, traced values are
not checked.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from jaxrl.config import check_positive, check_range
from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayLike

__all__ = [
    "F_DIVERGENCES",
    "VALUE_LOSSES",
    "f_generator",
    "f_conjugate",
    "f_conjugate_positive",
    "f_optimal_ratio",
    "f_divergence",
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
    "awr_weights",
    "awr_loss",
    "awr_policy",
    "recoil_objective",
    "recoil_td_target",
    "recoil_critic_loss",
]

F_DIVERGENCES = ("chi_square", "total_variation", "reverse_kl", "forward_kl")
"""Names of the f-divergence generators (see the module table)."""

VALUE_LOSSES = ("gumbel", "chi_square", "total_variation", "expectile")
"""Names of the value losses: XQL (= f-DVL reverse KL), f-DVL chi^2 and TV, IQL."""

DEFAULT_VALUE_ITERS = 60
"""Bisection steps of :func:`chi_square_value` (float64 resolution from any bracket)."""

_INF = math.inf


# ----------------------------------------------------------------------------- helpers


def _float(x: ArrayLike) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _check_f(f: str) -> None:
    if f not in F_DIVERGENCES:
        raise ConfigError(f"f must be one of {', '.join(F_DIVERGENCES)}, got {f!r}")


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


# ------------------------------------------------------------------- f-divergences


def f_generator(t: ArrayLike, f: str) -> Array:
    r"""Return the generator :math:`f(t)` of an f-divergence, elementwise.

    ``chi_square``: :math:`(t-1)^2`; ``total_variation``: :math:`|t-1|/2`;
    ``reverse_kl``: :math:`t \ln t` (0 at ``t = 0``); ``forward_kl``:
    :math:`-\ln t` (:math:`+\infty` at ``t = 0``). Each is convex with
    :math:`f(1) = 0`; ``t`` should be nonnegative for the KL generators.

    Args:
      t: ``[...]`` density ratios.
      f: static name in :data:`F_DIVERGENCES`.

    Returns:
      ``[...]`` generator values.

    Raises:
      ConfigError: unknown ``f``.

    References:
      Sikchi et al., "Dual RL: Unification and New Methods for Reinforcement
      and Imitation Learning", ICLR 2024 (the f-divergences of the dual-RL framework).

    Examples:
      >>> import jax.numpy as jnp
      >>> f_generator(jnp.array([0.0, 1.0, 3.0]), "chi_square")
      Array([1., 0., 4.], dtype=float32)
    """
    _check_f(f)
    t = _float(t)
    if f == "chi_square":
        return jnp.square(t - 1.0)
    if f == "total_variation":
        return 0.5 * jnp.abs(t - 1.0)
    if f == "reverse_kl":
        return xlogy(t, t)
    return -jnp.log(t)


def f_conjugate(y: ArrayLike, f: str) -> Array:
    r"""Return the convex conjugate :math:`f^*(y) = \sup_{t} (t y - f(t))`, elementwise.

    The supremum runs over the whole domain of ``f`` (the real line for
    ``chi_square`` and ``total_variation``, :math:`t \ge 0` for the KL
    generators): ``chi_square``: :math:`y + y^2/4`; ``total_variation``:
    :math:`y` for :math:`|y| \le 1/2`, else :math:`+\infty`; ``reverse_kl``:
    :math:`e^{y-1}`; ``forward_kl``: :math:`-1 - \ln(-y)` for :math:`y < 0`,
    else :math:`+\infty`. See :func:`f_conjugate_positive` for the version
    restricted to nonnegative ratios used by dual RL.

    Args:
      y: ``[...]`` dual arguments.
      f: static name in :data:`F_DIVERGENCES`.

    Returns:
      ``[...]`` conjugate values (possibly ``inf``).

    Raises:
      ConfigError: unknown ``f``.

    Examples:
      >>> import jax.numpy as jnp
      >>> f_conjugate(jnp.array([-4.0, 2.0]), "chi_square")
      Array([0., 3.], dtype=float32)
    """
    _check_f(f)
    y = _float(y)
    if f == "chi_square":
        return y + 0.25 * jnp.square(y)
    if f == "total_variation":
        return jnp.where(jnp.abs(y) <= 0.5, y, _INF)
    return f_conjugate_positive(y, f)


def f_conjugate_positive(y: ArrayLike, f: str) -> Array:
    r"""Return :math:`f^*_p(y) = \sup_{t \ge 0} (t y - f(t))`, elementwise.

    The conjugate restricted to nonnegative density ratios, which appears in
    the dual-V / dual-Q objectives of dual RL: ``chi_square``:
    :math:`y + y^2/4` for :math:`y \ge -2`, else :math:`-1`;
    ``total_variation``: :math:`\max(y, -1/2)` for :math:`y \le 1/2`, else
    :math:`+\infty`; ``reverse_kl``: :math:`e^{y-1}`; ``forward_kl``:
    :math:`-1 - \ln(-y)` for :math:`y < 0`, else :math:`+\infty`. The
    maximiser is :func:`f_optimal_ratio`.

    Args:
      y: ``[...]`` dual arguments (e.g. scaled Bellman residuals).
      f: static name in :data:`F_DIVERGENCES`.

    Returns:
      ``[...]`` values (possibly ``inf``).

    Raises:
      ConfigError: unknown ``f``.

    References:
      Sikchi et al., ICLR 2024 (the dual-Q / dual-V objectives with
      :math:`f^*_p`).

    Examples:
      >>> import jax.numpy as jnp
      >>> f_conjugate_positive(jnp.array([-3.0, 2.0]), "chi_square")
      Array([-1.,  3.], dtype=float32)
      >>> f_conjugate_positive(jnp.array([-1.0, 0.25]), "total_variation")
      Array([-0.5 ,  0.25], dtype=float32)
    """
    _check_f(f)
    y = _float(y)
    if f == "chi_square":
        return jnp.where(y >= -2.0, y + 0.25 * jnp.square(y), -1.0)
    if f == "total_variation":
        return jnp.where(y <= 0.5, jnp.maximum(y, -0.5), _INF)
    if f == "reverse_kl":
        return jnp.exp(y - 1.0)
    negative = y < 0
    safe = jnp.where(negative, -y, 1.0)
    return jnp.where(negative, -1.0 - jnp.log(safe), _INF)


def f_optimal_ratio(y: ArrayLike, f: str) -> Array:
    r"""Return the maximiser :math:`t^*(y) = \arg\max_{t \ge 0} (t y - f(t))`.

    The optimal importance ratio :math:`d^*/d^O` of dual RL given the (scaled)
    Bellman residual ``y``, i.e. :math:`\max(0, (f')^{-1}(y))`:
    ``chi_square``: :math:`\max(0, 1 + y/2)`; ``total_variation``: 0 for
    :math:`y < -1/2`, 1 on :math:`[-1/2, 1/2]`, :math:`+\infty` above (at the
    kinks any point between is optimal; these values are chosen);
    ``reverse_kl``: :math:`e^{y-1}`; ``forward_kl``: :math:`-1/y` for
    :math:`y < 0`, else :math:`+\infty`.

    Args:
      y: ``[...]`` dual arguments.
      f: static name in :data:`F_DIVERGENCES`.

    Returns:
      ``[...]`` nonnegative ratios (possibly ``inf``).

    Raises:
      ConfigError: unknown ``f``.

    Examples:
      >>> import jax.numpy as jnp
      >>> f_optimal_ratio(jnp.array([-3.0, 0.0, 2.0]), "chi_square")
      Array([0., 1., 2.], dtype=float32)
    """
    _check_f(f)
    y = _float(y)
    if f == "chi_square":
        return jnp.maximum(0.0, 1.0 + 0.5 * y)
    if f == "total_variation":
        return jnp.where(y > 0.5, _INF, jnp.where(y < -0.5, 0.0, 1.0))
    if f == "reverse_kl":
        return jnp.exp(y - 1.0)
    negative = y < 0
    safe = jnp.where(negative, y, -1.0)
    return jnp.where(negative, -1.0 / safe, _INF)


_SLOPE_AT_INFINITY = {
    "chi_square": _INF,
    "total_variation": 0.5,
    "reverse_kl": _INF,
    "forward_kl": 0.0,
}


def f_divergence(p: ArrayLike, q: ArrayLike, f: str) -> Array:
    r"""Return :math:`D_f(p \| q) = \sum_i q_i f(p_i / q_i)` of discrete laws, ``[]``.

    Atoms with :math:`q_i = 0` contribute :math:`p_i \lim_{t\to\infty} f(t)/t`
    (0 when :math:`p_i = 0`): :math:`+\infty` for ``chi_square`` and
    ``reverse_kl``, :math:`p_i/2` for ``total_variation`` and 0 for
    ``forward_kl``. ``reverse_kl`` is :math:`\mathrm{KL}(p\|q)`, ``forward_kl``
    is :math:`\mathrm{KL}(q\|p)`, ``total_variation`` is
    :math:`\tfrac12\sum_i |p_i - q_i|`, ``chi_square`` is Pearson's
    :math:`\chi^2`.

    Args:
      p: ``[N]`` probabilities (any shape, summed over all axes).
      q: same shape, reference probabilities.
      f: static name in :data:`F_DIVERGENCES`.

    Returns:
      ``[]`` the divergence (possibly ``inf``).

    Raises:
      ConfigError: unknown ``f``.

    Examples:
      >>> import jax.numpy as jnp
      >>> p, q = jnp.array([0.5, 0.5]), jnp.array([0.25, 0.75])
      >>> round(float(f_divergence(p, q, "total_variation")), 4)
      0.25
      >>> round(float(f_divergence(p, q, "chi_square")), 4)
      0.3333
    """
    _check_f(f)
    p, q = _float(p), _float(q)
    chex.assert_equal_shape([p, q])
    covered = q > 0
    ratio = jnp.where(covered, p / jnp.where(covered, q, 1.0), 1.0)
    inner = q * f_generator(ratio, f)
    outside = jnp.where(p > 0, p * _SLOPE_AT_INFINITY[f], 0.0)
    return jnp.sum(jnp.where(covered, inner, outside))


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
    check_range("beta", beta, 0.0)
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


# ------------------------------------------------------------- policy extraction


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
    check_positive("max_weight", max_weight)
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
    check_positive("max_weight", max_weight)
    support = p > 0
    # log-weights, shifted by their in-support maximum: exact ratios, no
    # overflow, and no underflow of the whole row.
    log_w = jnp.minimum(beta * (q - v), jnp.log(max_weight))
    log_w = jnp.where(support, log_w, 0.0)
    top = jnp.max(jnp.where(support, log_w, -_INF))
    unnorm = jnp.where(support, p * jnp.exp(log_w - top), 0.0)
    return unnorm / jnp.sum(unnorm)


# --------------------------------------------------------------------------- ReCOIL


def recoil_objective(
    q_0: ArrayLike,
    q_mix: ArrayLike,
    v_next_mix: ArrayLike,
    discount_mix: ArrayLike,
    q_sub: ArrayLike,
    v_next_sub: ArrayLike,
    discount_sub: ArrayLike,
    mix_weight: ArrayLike,
    gamma: ArrayLike,
    f: str = "chi_square",
    *,
    weights_0: ArrayLike | None = None,
    weights_mix: ArrayLike | None = None,
    weights_sub: ArrayLike | None = None,
) -> Array:
    r"""Return ReCOIL's dual-Q objective (minimised over :math:`Q`), ``[]``.

    .. math::

        J(Q, \pi) = \beta(1-\gamma)\,\mathbb{E}_{s\sim d_0, a\sim\pi}[Q(s,a)]
          + \mathbb{E}_{d^E_{mix}}[f^*_p(y)]
          - (1-\beta)\,\mathbb{E}_{d^S}[y],
        \qquad y = \gamma_t V^\pi(s') - Q(s, a),

    with :math:`V^\pi(s') = \sum_{a'}\pi(a'|s')Q(s',a')`, mixing weight
    :math:`\beta` (``mix_weight``), :math:`d^E_{mix} = \beta d^E + (1-\beta)
    d^S` (samples of the union of expert and arbitrary data) and :math:`d^S`
    the arbitrary (suboptimal) data. It is the Lagrangian dual of
    :math:`\max_{d} -D_f(\beta d + (1-\beta) d^S \,\|\, \beta d^E + (1-\beta)
    d^S)` under the Bellman-flow constraints of :math:`\pi` (the scaling
    :math:`Q \to \beta Q` absorbs the :math:`1/\beta` of the conjugate), so
    :math:`\min_Q J(Q, \pi) = -D_f(d^\pi_{mix} \,\|\, d^E_{mix})`: the policy
    maximising it matches the expert's visitation, and with expert-only data
    (:math:`d^S = d^E`) it is behaviour cloning on the expert's states.
    Rewards are not used. Expectations are batch means, or weighted means with
    ``weights_*`` (exact expectations over a table).

    Args:
      q_0: ``[B0]`` :math:`Q(s_0, a_0)`, :math:`s_0 \sim d_0`, :math:`a_0 \sim \pi`.
      q_mix: ``[B]`` :math:`Q(s, a)` on mixture samples.
      v_next_mix: ``[B]`` :math:`V^\pi(s')` at their next states.
      discount_mix: ``[B]`` :math:`\gamma(1 - \text{terminated})`.
      q_sub: ``[B']`` :math:`Q(s, a)` on arbitrary-data samples.
      v_next_sub: ``[B']`` :math:`V^\pi(s')` at their next states.
      discount_sub: ``[B']`` discounts.
      mix_weight: ``[]`` :math:`\beta \in (0, 1]`.
      gamma: ``[]`` discount :math:`\gamma` of the initial-state term.
      f: static name in :data:`F_DIVERGENCES` (the paper's practical choice is
        ``chi_square``).
      weights_0: optional ``[B0]`` weights of ``q_0``.
      weights_mix: optional ``[B]`` weights of the mixture samples.
      weights_sub: optional ``[B']`` weights of the arbitrary samples.

    Returns:
      ``[]`` the objective.

    Raises:
      ConfigError: unknown ``f`` or concrete ``mix_weight`` outside ``(0, 1]``.

    References:
      Sikchi, Zheng, Zhang and Niekum, ICLR 2024 (ReCOIL, dual-Q
      objective with mixture distributions).

    Examples:
      >>> import jax.numpy as jnp
      >>> one = jnp.ones(1)
      >>> float(recoil_objective(one, one, one, 0.5 * one, one, one, 0.5 * one,
      ...                        0.5, 0.5))  # 0.25 + f*(-0.5) + 0.25
      0.0625
    """
    _check_f(f)
    check_range("mix_weight", mix_weight, 0.0, 1.0, low_inclusive=False)
    q_0, q_mix, q_sub = _float(q_0), _float(q_mix), _float(q_sub)
    chex.assert_rank([q_0, q_mix, q_sub], 1)
    y_mix = jnp.asarray(discount_mix, q_mix.dtype) * v_next_mix - q_mix
    y_sub = jnp.asarray(discount_sub, q_sub.dtype) * v_next_sub - q_sub
    chex.assert_equal_shape([y_mix, q_mix])
    chex.assert_equal_shape([y_sub, q_sub])
    init = mix_weight * (1.0 - gamma) * _mean(q_0, weights_0)
    conj = _mean(f_conjugate_positive(y_mix, f), weights_mix)
    linear = (1.0 - mix_weight) * _mean(y_sub, weights_sub)
    return init + conj - linear


def recoil_td_target(
    v_t: ArrayLike,
    terminated_t: ArrayLike,
    gamma: ArrayLike,
    reward_gap: ArrayLike = 2.0,
    q_gap: ArrayLike = 200.0,
) -> Array:
    r"""Return the bounded critic target of ReCOIL's code on a mixture sample, ``[]``.

    :math:`y = -r_{gap} + \gamma\,[(1 - \text{term})\, V(s') - \text{term}\cdot
    Q_{gap}]`: a constant negative pseudo-reward on every (non-expert)
    transition and an absorbing value :math:`-Q_{gap}` at true terminals, while
    expert samples regress to :math:`+Q_{gap}` (:func:`recoil_critic_loss`), the
    LS-IQ-style bounded targets (reward gap 2, Q gap 200) of the authors' code.

    Args:
      v_t: ``[]`` :math:`V(s')` (target value network).
      terminated_t: ``[]`` bool or float, true termination at :math:`s'`.
      gamma: ``[]`` discount :math:`\gamma`.
      reward_gap: ``[]`` :math:`r_{gap}`.
      q_gap: ``[]`` :math:`Q_{gap}`.

    Returns:
      ``[]`` the target.

    Examples:
      >>> float(recoil_td_target(10.0, False, 0.9))
      7.0
      >>> float(recoil_td_target(10.0, True, 0.9))
      -182.0
    """
    v_t = _float(v_t)
    chex.assert_rank(v_t, 0)
    term = jnp.asarray(terminated_t, v_t.dtype)
    return -reward_gap + gamma * ((1.0 - term) * v_t - term * q_gap)


def recoil_critic_loss(
    q_mix: ArrayLike,
    target_mix: ArrayLike,
    q_expert: ArrayLike,
    q_gap: ArrayLike = 200.0,
) -> Array:
    r"""Return :math:`\tfrac12(Q(s_E,a_E) - Q_{gap})^2 + \tfrac12(Q(s,a)-y)^2`, ``[]``.

    One pair (expert sample, mixture sample) of the critic loss of ReCOIL's
    code; ``target_mix`` = :func:`recoil_td_target` (no gradient through it).
    In a table, minimising its expectation gives
    :math:`Q = (d^E Q_{gap} + d^{mix} y)/(d^E + d^{mix})`.

    Args:
      q_mix: ``[]`` :math:`Q(s, a)` on the mixture sample.
      target_mix: ``[]`` its target :math:`y`.
      q_expert: ``[]`` :math:`Q(s_E, a_E)` on the expert sample.
      q_gap: ``[]`` :math:`Q_{gap}`.

    Returns:
      ``[]`` the loss.

    Examples:
      >>> float(recoil_critic_loss(1.0, 3.0, 198.0))
      4.0
    """
    q_mix, q_expert = _float(q_mix), _float(q_expert)
    chex.assert_rank([q_mix, q_expert], 0)
    target = jax.lax.stop_gradient(jnp.asarray(target_mix, q_mix.dtype))
    return 0.5 * jnp.square(q_expert - q_gap) + 0.5 * jnp.square(q_mix - target)
