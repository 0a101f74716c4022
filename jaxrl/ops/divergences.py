r"""f-divergences: generators, convex conjugates, optimal ratios and divergences.

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
:math:`\mathrm{KL}(d^O\|d)`.) The value losses built on these conjugates are in
:mod:`jaxrl.ops.value_losses`, the ReCOIL objective in :mod:`jaxrl.ops.recoil`.

Conventions: elementwise functions accept any shape; :func:`f_divergence`
takes ``[N]`` laws and reduces. ``f`` is a static Python string; an unknown name
raises :class:`jaxrl.errors.ConfigError`.
"""

from __future__ import annotations

import math

import chex
import jax.numpy as jnp
from jax.scipy.special import xlogy

from jaxrl.errors import ConfigError
from jaxrl.ops._dual_common import _float
from jaxrl.types import Array, ArrayLike

__all__ = [
    "F_DIVERGENCES",
    "f_generator",
    "f_conjugate",
    "f_conjugate_positive",
    "f_optimal_ratio",
    "f_divergence",
]

F_DIVERGENCES = ("chi_square", "total_variation", "reverse_kl", "forward_kl")
"""Names of the f-divergence generators (see the module table)."""

_INF = math.inf


def _check_f(f: str) -> None:
    if f not in F_DIVERGENCES:
        raise ConfigError(f"f must be one of {', '.join(F_DIVERGENCES)}, got {f!r}")


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
