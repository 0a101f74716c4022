r"""Tsallis (q-logarithm) regularization: q-log/q-exp, sparse policies, MVI(q) (unbatched).

Convention (the one in which ``q = 2`` gives sparsemax):

.. math:: \ln_q x = \frac{x^{q-1} - 1}{q - 1}, \qquad
          \exp_q x = [1 + (q-1) x]_+^{1/(q-1)},

with :math:`\ln_1 = \ln` and :math:`\exp_1 = \exp`. ``q`` must be ``>= 1``
and may be traced (so it can be swept with ``vmap``): ``q == 1`` is then
selected with ``jnp.where`` behind a "double-where" guard, so neither values nor
gradients are NaN there, and the formulas are evaluated through
``expm1``/``log1p`` so that ``q`` close to 1 stays accurate in float32.

Static ``q`` (docs/decisions.md, D16): when ``q`` is a Python or NumPy scalar
(``1.0``, ``2``, ``np.float32(1.5)``, e.g. a field of a config closed over by
``jit``), its value is known at trace time and only the branch it selects is
traced: ``logsumexp`` at ``q = 1``, the sort-based sparsemax threshold at ``q =
2``, the bisection otherwise (never all three, as for a traced ``q``). The
selected branch is the same formula as the generic operator's, so the results
are the same (bitwise in tests: ``tests/jaxrl/ops/test_tsallis.py``); only the
derivative with respect to ``q`` is gone, since a Python number has none. A
``jax.Array`` ``q`` (traced or not) always takes the generic path; pass
``jnp.asarray(q)`` to force it. In the generic operator the bisection loop
sits in a ``lax.cond`` on ``q in {1, 2}``, so a traced ``q`` shared by the
whole batch (not vmapped over) skips it at ``q = 1`` and ``q = 2``.

The Tsallis-regularized greedy policy of action values ``qv[A]`` at temperature
:math:`\tau` (the maximizer of :math:`\langle\pi, qv\rangle + (\tau/q) S_q(\pi)`)
is the q-exponential policy

.. math:: \pi(a) = \exp_q\big(qv(a)/\tau - \psi(qv/\tau)\big),

where the normalizer :math:`\psi(z)` is the unique scalar with
:math:`\sum_a \exp_q(z_a - \psi) = 1`: ``logsumexp(z)`` at ``q = 1``, the
sparsemax threshold (exact, sort and cumulative sum) at ``q = 2``, and a
bisection on :math:`[\max z, \max z - \ln_q(1/A)]` followed by one Newton step
otherwise. On the support of :math:`\pi`,
:math:`\tau \ln_q \pi(a) = qv(a) - \tau\psi`; off it :math:`\pi = 0` and
:math:`\tau \ln_q 0 = -\tau/(q-1)`, so the Munchausen bonus of MVI(q) lies in
:math:`[-\tau/(q-1), 0]` for ``q > 1``.

MVI(q) (Zhu, Chen, Schlegel and White, NeurIPS 2023) replaces both logarithms
of Munchausen VI by :math:`\ln_q`:

.. math:: y = r_t + \alpha[\tau\ln_q\bar\pi(a_{t-1}|s_{t-1})]_{l_0}^0
          + \gamma_t \sum_b \bar\pi(b|s_t)\,(\bar q(s_t,b) - \tau\ln_q\bar\pi(b|s_t)).

Precision: a probability :math:`p` of the q-exponential policy is
:math:`[1 + (q-1)(z - \psi)]^{1/(q-1)}`, so in float32 probabilities below about
:math:`\epsilon^{1/(q-1)}` (``q = 3``: ~3e-4) are resolved only to that
accuracy; use float64 (``JAX_ENABLE_X64``) when they matter.

The regularized value used by MVI(q) is
:math:`\langle\pi, qv - \tau\ln_q\pi\rangle = \langle\pi, qv\rangle + \tau S_q(\pi)`,
while the policy maximizes :math:`\langle\pi, qv\rangle + (\tau/q) S_q(\pi)`;
the ``tau/q`` scaling is the one whose maximizer is exactly the q-exponential
(so that :math:`\tau\ln_q\pi = qv - \tau\psi` on the support), and both agree
with the Shannon case at ``q = 1``.

At ``q = 1`` every function here equals its counterpart in
:mod:`jaxrl.ops.regularized` (up to float rounding). ``tau`` must be ``>= 0``;
``tau == 0`` gives the hard-max limits (greedy policy with ties split
uniformly, value ``max qv``, scaled log-policy ``qv - max qv`` at ``q = 1`` and
``0`` at ``q > 1``).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.ops._checks import check_l0, check_q, check_tau, check_unit
from jaxrl.types import Array, ArrayLike

__all__ = [
    "log_q",
    "exp_q",
    "tsallis_entropy",
    "tsallis_kl",
    "sparsemax",
    "sparsemax_threshold",
    "tsallis_threshold",
    "tsallis_policy",
    "scaled_log_q_policy",
    "tsallis_value",
    "mviq_bonus",
    "mviq_target",
    "mviq_q_learning",
]

DEFAULT_NORMALIZER_ITERS = 50
"""Bisection steps of :func:`tsallis_threshold` (then one Newton step)."""


def _static_q(q: ArrayLike) -> float | None:
    """Return ``float(q)`` when ``q`` is a Python/NumPy scalar (known when tracing), else None.

    A ``jax.Array`` (traced or concrete) and any other array give None: the
    generic operator, which evaluates every branch and selects with ``jnp.where``.
    """
    if isinstance(q, (int, float, np.integer, np.floating)):
        return float(q)
    return None


def _q_parts(q: Array) -> tuple[Array, Array]:
    """Return ``(is_one, safe_qm1)``: ``q == 1`` and ``q - 1`` with 1 where ``q == 1``."""
    is_one = q == 1.0
    return is_one, jnp.where(is_one, 1.0, q - 1.0)


def log_q(x: ArrayLike, q: ArrayLike) -> Array:
    r"""Return the q-logarithm :math:`\ln_q x = (x^{q-1} - 1)/(q - 1)` elementwise.

    :math:`\ln_1 = \ln`. For ``q > 1``, :math:`\ln_q 0 = -1/(q-1)` (finite).
    Evaluated as ``expm1((q - 1) log x) / (q - 1)``.

    Args:
      x: ``[...]`` positive values (``0`` allowed for ``q > 1``).
      q: ``[]`` entropic index :math:`q \ge 1` (traced).

    Returns:
      ``[...]`` same shape as ``x``.

    References:
      Tsallis, "Possible generalization of Boltzmann-Gibbs statistics",
      J. Stat. Phys. 1988; Zhu et al., NeurIPS 2023, Sec. 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> log_q(jnp.array([0.0, 0.5, 1.0]), 2.0)
      Array([-1. , -0.5,  0. ], dtype=float32)
    """
    check_q(q)
    static = _static_q(q)
    x, q = jnp.asarray(x), jnp.asarray(q if static is None else static)
    chex.assert_rank(q, 0)
    log_x = jnp.log(x)
    if static == 1.0:
        return log_x  # = at_one below: its correction term is 0 * finite
    if static is not None:
        return jnp.expm1((q - 1.0) * log_x) / (q - 1.0)
    is_one, qm1 = _q_parts(q)
    general = jnp.expm1(qm1 * log_x) / qm1
    # At q == 1 add the first-order term (q - 1) (ln x)^2 / 2 (zero there) so that
    # the derivative with respect to q is exact, not zero.
    finite_log = jnp.where(x > 0, log_x, 0.0)
    at_one = log_x + (q - 1.0) * 0.5 * jnp.square(finite_log)
    return jnp.where(is_one, at_one, general)


def exp_q(x: ArrayLike, q: ArrayLike) -> Array:
    r"""Return the q-exponential :math:`\exp_q x = [1 + (q-1)x]_+^{1/(q-1)}` elementwise.

    :math:`\exp_1 = \exp`; the inverse of :func:`log_q` on its range. For
    ``q > 1`` it is zero for :math:`x \le -1/(q-1)`. Evaluated as
    ``exp(log1p((q - 1) x) / (q - 1))``.

    Args:
      x: ``[...]`` real values.
      q: ``[]`` entropic index :math:`q \ge 1` (traced).

    Returns:
      ``[...]`` non-negative values, same shape as ``x``.

    Examples:
      >>> import jax.numpy as jnp
      >>> exp_q(jnp.array([-2.0, -0.5, 1.0]), 2.0)
      Array([0. , 0.5, 2. ], dtype=float32)
    """
    check_q(q)
    static = _static_q(q)
    x, q = jnp.asarray(x), jnp.asarray(q if static is None else static)
    chex.assert_rank(q, 0)
    if static == 1.0:
        return jnp.exp(x)  # = at_one below: x - 0 * finite
    if static is not None:
        return _exp_q_general(x, q - 1.0)
    is_one, qm1 = _q_parts(q)
    general = _exp_q_general(x, qm1)
    # At q == 1: exp(x - (q - 1) x^2 / 2), equal to exp(x) there, with the exact
    # derivative in q (x is clipped only to keep x^2 finite in the zero term).
    x_one = jnp.where(is_one, x, 0.0)
    x_sq = jnp.square(jnp.clip(x_one, -1e18, 1e18))
    at_one = jnp.exp(x_one - (q - 1.0) * 0.5 * x_sq)
    return jnp.where(is_one, at_one, general)


def _exp_q_general(x: Array, qm1: Array) -> Array:
    """``exp_q`` for ``q > 1`` given ``qm1 = q - 1 > 0``."""
    y = qm1 * x
    inside = y > -1.0
    safe_y = jnp.where(inside, y, 0.0)
    return jnp.where(inside, jnp.exp(jnp.log1p(safe_y) / qm1), 0.0)


def tsallis_entropy(pi: ArrayLike, q: ArrayLike) -> Array:
    r"""Return the Tsallis entropy :math:`S_q(\pi) = (1 - \sum_a \pi_a^q)/(q - 1)`, ``[]``.

    Equals :math:`-\sum_a \pi_a \ln_q \pi_a`; ``q = 1`` gives the Shannon
    entropy (with :math:`0 \ln 0 = 0`); ``q = 2`` gives :math:`1 - \|\pi\|^2`.

    Args:
      pi: ``[A]`` probabilities.
      q: ``[]`` entropic index :math:`q \ge 1`.

    Returns:
      ``[]`` the entropy, ``>= 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(tsallis_entropy(jnp.array([0.5, 0.5]), 2.0))
      0.5
    """
    check_q(q)
    pi = jnp.asarray(pi)
    chex.assert_rank([pi, jnp.asarray(q)], [1, 0])
    positive = pi > 0
    safe_pi = jnp.where(positive, pi, 1.0)
    terms = jnp.where(positive, pi * log_q(safe_pi, q), 0.0)
    return -jnp.sum(terms)


def tsallis_kl(pi: ArrayLike, mu: ArrayLike, q: ArrayLike) -> Array:
    r"""Return the Tsallis KL divergence :math:`D_q(\pi\|\mu) = \sum_a \pi_a \ln_q(\pi_a/\mu_a)`.

    ``q = 1`` gives the KL divergence, ``q = 2`` the chi-square divergence
    :math:`\sum_a \pi_a^2/\mu_a - 1`. Terms with :math:`\pi_a = 0` are zero;
    :math:`\mu` must be positive where :math:`\pi` is.

    Args:
      pi: ``[A]`` probabilities.
      mu: ``[A]`` reference probabilities.
      q: ``[]`` entropic index :math:`q \ge 1`.

    Returns:
      ``[]`` the divergence, ``>= 0``.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(tsallis_kl(jnp.array([1.0, 0.0]), jnp.array([0.5, 0.5]), 2.0))
      1.0
    """
    check_q(q)
    pi, mu = jnp.asarray(pi), jnp.asarray(mu)
    chex.assert_rank([pi, mu, jnp.asarray(q)], [1, 1, 0])
    positive = pi > 0
    ratio = jnp.where(positive, pi / jnp.where(positive, mu, 1.0), 1.0)
    return jnp.sum(jnp.where(positive, pi * log_q(ratio, q), 0.0))


def sparsemax_threshold(z: ArrayLike) -> Array:
    r"""Return :math:`\psi` with :math:`\sum_a [1 + z_a - \psi]_+ = 1` (closed form), ``[]``.

    Sort ``z`` decreasingly; the support size is
    :math:`K = \max\{k : 1 + k z_{(k)} > \sum_{i \le k} z_{(i)}\}` and
    :math:`\psi = 1 + (\sum_{i\le K} z_{(i)} - 1)/K`. This is the ``q = 2``
    normalizer of :func:`tsallis_threshold`.

    Args:
      z: ``[A]`` scores (e.g. ``qv / tau``).

    Returns:
      ``[]`` the threshold.

    References:
      Martins and Astudillo, "From softmax to sparsemax", ICML 2016, Prop. 1.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(sparsemax_threshold(jnp.array([0.0, 0.0])))
      0.5
    """
    z = jnp.asarray(z)
    chex.assert_rank(z, 1)
    top = jnp.max(z)
    shifted = z - top
    return top + _sparsemax_threshold_shifted(shifted)


_SORT_NETWORK_MAX = 3
"""Most actions whose scores :func:`_sort_descending` orders without a sort op."""


def _sort_descending(zs: Array) -> Array:
    """``zs[A]`` in decreasing order (the values of ``-jnp.sort(-zs)``).

    For ``A <= _SORT_NETWORK_MAX`` (CartPole, Acrobot, MinAtar Breakout and
    Freeway) a network of ``maximum``/``minimum`` pairs, which XLA fuses with
    the threshold's arithmetic; XLA's sort op on CPU costs more than the rest
    of the threshold. The values are the sort's, but the fusion changes the
    order in which XLA sums the support: with at most 3 scores, of which the
    largest is exactly 0 (``zs = z - max z``), every order gives the same
    float, so the threshold is bitwise the sort's; with 4 or more the last bit
    can differ, so larger action sets keep the sort.
    """
    num = zs.shape[0]
    if num > _SORT_NETWORK_MAX:
        return -jnp.sort(-zs)
    cols = [zs[i] for i in range(num)]
    for rnd in range(num):  # odd-even transposition: num rounds sort num values
        for i in range(rnd % 2, num - 1, 2):
            cols[i], cols[i + 1] = (
                jnp.maximum(cols[i], cols[i + 1]),
                jnp.minimum(cols[i], cols[i + 1]),
            )
    return jnp.stack(cols)


def _sparsemax_threshold_shifted(zs: Array) -> Array:
    z_sorted = _sort_descending(zs)
    cumsum = jnp.cumsum(z_sorted)
    k = jnp.arange(1, zs.shape[0] + 1, dtype=zs.dtype)
    support = 1.0 + k * z_sorted > cumsum
    size = jnp.sum(support)
    total = jnp.sum(jnp.where(support, z_sorted, 0.0))
    return 1.0 + (total - 1.0) / size


def sparsemax(z: ArrayLike) -> Array:
    r"""Return the Euclidean projection of ``z`` onto the simplex, ``[A]``.

    :math:`\mathrm{sparsemax}(z) = \arg\min_{p \in \Delta} \|p - z\|^2 =
    [z - \psi + 1]_+` with :math:`\psi` from :func:`sparsemax_threshold`; equal
    to :func:`tsallis_policy` at ``q = 2``, ``tau = 1``.

    Args:
      z: ``[A]`` scores.

    Returns:
      ``[A]`` probabilities (sparse).

    Examples:
      >>> import jax.numpy as jnp
      >>> sparsemax(jnp.array([2.0, 0.0, 1.5]))
      Array([0.75, 0.  , 0.25], dtype=float32)
    """
    z = jnp.asarray(z)
    chex.assert_rank(z, 1)
    zs = z - jnp.max(z)
    return jnp.maximum(1.0 + zs - _sparsemax_threshold_shifted(zs), 0.0)


def _exp_q_slope(pi: Array, q: Array) -> Array:
    """``d exp_q(x)/dx = exp_q(x)^(2-q)`` written in terms of ``pi = exp_q(x)``."""
    positive = pi > 0
    safe_pi = jnp.where(positive, pi, 1.0)
    return jnp.where(positive, jnp.exp((2.0 - q) * jnp.log(safe_pi)), 0.0)


def _threshold_shifted(zs: Array, q: ArrayLike, num_iters: int) -> Array:
    """Normalizer of ``zs = z - max z`` (so the result is ``psi - max z``), ``[]``.

    A static ``q`` (:func:`_static_q`) traces only its own branch.
    """
    static = _static_q(q)
    if static == 1.0:
        return jax.nn.logsumexp(zs)
    if static == 2.0:
        return _sparsemax_threshold_shifted(zs)
    if static is not None:
        return _bisection_shifted(zs, jnp.asarray(static), num_iters)
    q = jnp.asarray(q)
    is_one = q == 1.0
    is_two = q == 2.0
    # q = 1: log-sum-exp.
    lse = jax.nn.logsumexp(zs)
    # q = 2: closed form.
    sparse = _sparsemax_threshold_shifted(zs)
    # general q > 1 (q = 1 replaced by 2 so that this branch stays finite).
    general = _bisection_shifted(
        zs, jnp.where(is_one, 2.0, q), num_iters, skip=is_one | is_two
    )
    return jnp.where(is_one, lse, jnp.where(is_two, sparse, general))


def _bisection_shifted(
    zs: Array, safe_q: Array, num_iters: int, skip: Array | None = None
) -> Array:
    """Normalizer of ``zs`` for ``q = safe_q > 1`` by bisection and one Newton step.

    Bisection on ``[0, -ln_q(1/A)]``, where ``sum_a exp_q(zs - psi) - 1``
    decreases from ``>= 0`` to ``<= 0``; the Newton step gives the
    implicit-function gradient. ``skip`` (traced, the generic operator's
    ``q in {1, 2}``) skips the loop with ``lax.cond``, whose result is then
    discarded: a real branch when ``q`` is the same for the whole batch, a
    select of both (the loop runs) under a vmap over ``q``. The values are
    bitwise those of the unconditional loop.
    """
    num_actions = zs.shape[0]
    # exp_q / log_q without their q == 1 branches (safe_q > 1): the same values.
    qm1 = safe_q - 1.0
    log_inv_a = jnp.log(jnp.asarray(1.0 / num_actions, zs.dtype))
    hi0 = -jnp.expm1(qm1 * log_inv_a) / qm1

    def excess(psi: Array) -> Array:
        return jnp.sum(_exp_q_general(zs - psi, qm1)) - 1.0

    def body(_: int, bounds: tuple[Array, Array]) -> tuple[Array, Array]:
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = excess(mid) > 0  # the root is above mid
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    bounds0 = (jnp.zeros_like(hi0), hi0)
    if skip is None:
        lo, hi = jax.lax.fori_loop(0, num_iters, body, bounds0, unroll=False)
    else:
        lo, hi = jax.lax.cond(
            skip,
            lambda b: b,
            lambda b: jax.lax.fori_loop(0, num_iters, body, b, unroll=False),
            bounds0,
        )
    psi0 = jax.lax.stop_gradient(0.5 * (lo + hi))
    slope = jax.lax.stop_gradient(
        jnp.sum(_exp_q_slope(_exp_q_general(zs - psi0, qm1), safe_q))
    )
    return psi0 + excess(psi0) / slope


def tsallis_threshold(
    z: ArrayLike, q: ArrayLike, num_iters: int = DEFAULT_NORMALIZER_ITERS
) -> Array:
    r"""Return the normalizer :math:`\psi` with :math:`\sum_a \exp_q(z_a - \psi) = 1`, ``[]``.

    ``q = 1``: ``logsumexp(z)``; ``q = 2``: :func:`sparsemax_threshold` (exact);
    otherwise ``num_iters`` bisection steps on
    :math:`[\max z, \max z - \ln_q(1/A)]` (the sum is decreasing in
    :math:`\psi` and brackets 1 there) followed by one Newton step, which also
    gives the implicit-function gradient
    :math:`\partial\psi/\partial z_a = \pi_a^{2-q}/\sum_b \pi_b^{2-q}`.
    For a traced (array) ``q`` all three are evaluated and one is selected
    (the bisection loop is skipped at ``q in {1, 2}`` unless ``q`` is batched);
    a Python/NumPy scalar ``q`` traces only its own branch (module docstring).

    Args:
      z: ``[A]`` scores (``qv / tau``).
      q: ``[]`` entropic index :math:`q \ge 1`.
      num_iters: static number of bisection steps.

    Returns:
      ``[]`` the normalizer.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(tsallis_threshold(jnp.array([0.0, 0.0]), 2.0))
      0.5
    """
    check_q(q)
    z = jnp.asarray(z)
    chex.assert_rank([z, jnp.asarray(q)], [1, 0])
    top = jnp.max(z)
    return top + _threshold_shifted(z - top, q, num_iters)


def _scores(qv: Array, tau: Array) -> tuple[Array, Array]:
    """Return ``(positive, (qv - max qv) / tau)`` with the tau = 0 guard."""
    positive = tau > 0
    safe_tau = jnp.where(positive, tau, 1.0)
    return positive, (qv - jnp.max(qv)) / safe_tau


def _greedy(qv: Array) -> Array:
    ties = (qv == jnp.max(qv)).astype(qv.dtype)
    return ties / jnp.sum(ties)


def _policy_and_log(
    qv: Array, tau: Array, q: ArrayLike, num_iters: int
) -> tuple[Array, Array]:
    """Return ``(pi, tau * ln_q pi)``, both ``[A]``; ``q`` static or traced."""
    static = _static_q(q)
    chex.assert_rank([qv, tau, jnp.asarray(q)], [1, 0, 0])
    positive, zs = _scores(qv, tau)
    x = zs - _threshold_shifted(zs, q, num_iters)
    pi = exp_q(x, q)
    pi = pi / jnp.sum(pi)
    if static == 1.0:
        log_pi, limit = x, qv - jnp.max(qv)
    elif static is not None:
        qm1 = jnp.asarray(static) - 1.0
        log_pi, limit = jnp.maximum(x, -1.0 / qm1), jnp.zeros_like(qv)
    else:
        is_one, qm1 = _q_parts(jnp.asarray(q))
        log_pi = jnp.where(is_one, x, jnp.maximum(x, -1.0 / qm1))
        limit = jnp.where(is_one, qv - jnp.max(qv), jnp.zeros_like(qv))
    pi = jnp.where(positive, pi, _greedy(qv))
    scaled_log = jnp.where(positive, tau * log_pi, limit)
    return pi, scaled_log


def tsallis_policy(
    qv: ArrayLike,
    tau: ArrayLike,
    q: ArrayLike,
    num_iters: int = DEFAULT_NORMALIZER_ITERS,
) -> Array:
    r"""Return the q-exponential policy :math:`\exp_q(qv/\tau - \psi(qv/\tau))`, ``[A]``.

    The maximizer of :math:`\langle\pi, qv\rangle + (\tau/q) S_q(\pi)` over the
    simplex: ``softmax(qv / tau)`` at ``q = 1``, ``sparsemax(qv / tau)`` at
    ``q = 2``. Renormalized to sum to one exactly. ``tau == 0`` gives the
    uniform distribution over the maximizing actions.

    Args:
      qv: ``[A]`` action values.
      tau: ``[]`` temperature :math:`\tau \ge 0`.
      q: ``[]`` entropic index :math:`q \ge 1`.
      num_iters: static bisection steps (used for ``q`` not in ``{1, 2}``).

    Returns:
      ``[A]`` probabilities.

    References:
      Zhu, Chen, Schlegel and White, "Generalized Munchausen Reinforcement
      Learning using Tsallis KL Divergence", NeurIPS 2023, Sec. 3.

    Examples:
      >>> import jax.numpy as jnp
      >>> tsallis_policy(jnp.array([2.0, 0.0, 1.5]), 1.0, 2.0)
      Array([0.75, 0.  , 0.25], dtype=float32)
    """
    check_tau(tau)
    check_q(q)
    qv, tau = jnp.asarray(qv), jnp.asarray(tau)
    return _policy_and_log(qv, tau, q, num_iters)[0]


def scaled_log_q_policy(
    qv: ArrayLike,
    tau: ArrayLike,
    q: ArrayLike,
    num_iters: int = DEFAULT_NORMALIZER_ITERS,
) -> Array:
    r"""Return :math:`\tau \ln_q \pi` for the q-exponential policy :math:`\pi`, ``[A]``.

    Computed without taking a logarithm: :math:`\tau\max(z_a - \psi, -1/(q-1))`
    with :math:`z = qv/\tau`, i.e. ``qv - tau * psi`` on the support and
    :math:`-\tau/(q-1)` off it. At ``q = 1`` this is
    :func:`jaxrl.ops.regularized.scaled_log_softmax`.

    Args:
      qv: ``[A]`` action values.
      tau: ``[]`` temperature :math:`\tau \ge 0`.
      q: ``[]`` entropic index :math:`q \ge 1`.
      num_iters: static bisection steps.

    Returns:
      ``[A]`` values in :math:`[-\tau/(q-1), 0]` (``q > 1``).

    Examples:
      >>> import jax.numpy as jnp
      >>> scaled_log_q_policy(jnp.array([2.0, 0.0, 1.5]), 1.0, 2.0)
      Array([-0.25, -1.  , -0.75], dtype=float32)
    """
    check_tau(tau)
    check_q(q)
    qv, tau = jnp.asarray(qv), jnp.asarray(tau)
    return _policy_and_log(qv, tau, q, num_iters)[1]


def tsallis_value(
    qv: ArrayLike,
    tau: ArrayLike,
    q: ArrayLike,
    num_iters: int = DEFAULT_NORMALIZER_ITERS,
) -> Array:
    r"""Return :math:`\sum_a \pi(a)\,(qv(a) - \tau\ln_q\pi(a))` for the q-exp policy, ``[]``.

    The regularized state value used by MVI(q) at the next state; equals
    ``tau * logsumexp(qv / tau)`` at ``q = 1`` and ``max qv`` at ``tau = 0``.

    Args:
      qv: ``[A]`` action values.
      tau: ``[]`` temperature :math:`\tau \ge 0`.
      q: ``[]`` entropic index :math:`q \ge 1`.
      num_iters: static bisection steps.

    Returns:
      ``[]`` the value.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(tsallis_value(jnp.array([1.0, 1.0]), 1.0, 2.0))  # 1 + 0.5
      1.5
    """
    check_tau(tau)
    check_q(q)
    qv, tau = jnp.asarray(qv), jnp.asarray(tau)
    pi, scaled_log = _policy_and_log(qv, tau, q, num_iters)
    return jnp.sum(pi * (qv - scaled_log))


def mviq_bonus(
    qv: ArrayLike,
    a: ArrayLike,
    tau: ArrayLike,
    alpha: ArrayLike,
    q: ArrayLike,
    l0: ArrayLike,
    num_iters: int = DEFAULT_NORMALIZER_ITERS,
) -> Array:
    r"""Return the MVI(q) bonus :math:`\alpha[\tau\ln_q\pi(a)]_{l_0}^0`, ``[]``.

    For ``q > 1`` the unclipped bonus already lies in
    :math:`[-\alpha\tau/(q-1), 0]`; ``q = 1`` is
    :func:`jaxrl.ops.regularized.munchausen_bonus`.

    Args:
      qv: ``[A]`` (target-network) action values at the state of ``a``.
      a: ``[]`` int, the action taken.
      tau: ``[]`` temperature :math:`\tau \ge 0`.
      alpha: ``[]`` Munchausen scaling :math:`\alpha`.
      q: ``[]`` entropic index :math:`q \ge 1`.
      l0: ``[]`` lower clip :math:`l_0 \le 0` (``-inf``: none).
      num_iters: static bisection steps.

    Returns:
      ``[]`` the bonus.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(mviq_bonus(jnp.array([2.0, 0.0, 1.5]), 1, 1.0, 0.5, 2.0, -10.0))
      -0.5
    """
    check_tau(tau)
    check_unit("alpha", alpha)
    check_q(q)
    check_l0(l0)
    a = jnp.asarray(a)
    chex.assert_rank(a, 0)
    chex.assert_type(a, int)
    scaled_log = scaled_log_q_policy(qv, tau, q, num_iters)[a]
    return jnp.asarray(alpha) * jnp.clip(scaled_log, l0, 0.0)


def mviq_target(
    q_tm1_target: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_t_target: ArrayLike,
    tau: ArrayLike,
    alpha: ArrayLike,
    q: ArrayLike,
    l0: ArrayLike,
    num_iters: int = DEFAULT_NORMALIZER_ITERS,
) -> Array:
    r"""Return the MVI(q) regression target, ``[]``.

    :math:`y = r_t + \alpha[\tau\ln_q\bar\pi(a_{t-1}|s_{t-1})]_{l_0}^0 +
    \gamma_t \sum_b \bar\pi(b|s_t)(\bar q(s_t,b) - \tau\ln_q\bar\pi(b|s_t))`,
    with :math:`\bar\pi` the q-exponential policy of the target values.

    Args:
      q_tm1_target: ``[A]`` target values at :math:`s_{t-1}`.
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount, ``gamma * (1 - terminated_t)``.
      q_t_target: ``[A]`` target values at :math:`s_t`.
      tau: ``[]`` temperature.
      alpha: ``[]`` Munchausen scaling.
      q: ``[]`` entropic index.
      l0: ``[]`` lower clip of the scaled log-policy.
      num_iters: static bisection steps.

    Returns:
      ``[]`` the target.

    References:
      Zhu, Chen, Schlegel and White, NeurIPS 2023 (MVI(q)).

    Examples:
      >>> import jax.numpy as jnp
      >>> q = jnp.array([1.0, 1.0])
      >>> float(mviq_target(q, 0, 0.0, 1.0, q, 1.0, 0.0, 2.0, -1.0))
      1.5
    """
    check_tau(tau)
    check_unit("alpha", alpha)
    check_q(q)
    check_l0(l0)
    r_t, discount_t = jnp.asarray(r_t), jnp.asarray(discount_t)
    chex.assert_rank([r_t, discount_t], [0, 0])
    bonus = mviq_bonus(q_tm1_target, a_tm1, tau, alpha, q, l0, num_iters)
    value = tsallis_value(q_t_target, tau, q, num_iters)
    return r_t + bonus + discount_t * value


def mviq_q_learning(
    q_tm1: ArrayLike,
    a_tm1: ArrayLike,
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_tm1_target: ArrayLike,
    q_t_target: ArrayLike,
    tau: ArrayLike,
    alpha: ArrayLike,
    q: ArrayLike,
    l0: ArrayLike,
    num_iters: int = DEFAULT_NORMALIZER_ITERS,
    stop_target_gradients: bool = True,
) -> Array:
    r"""Return the MVI(q) TD error :math:`y - q_{t-1}[a_{t-1}]`, ``[]``.

    ``y`` is :func:`mviq_target`; at ``q = 1`` this equals
    :func:`jaxrl.ops.regularized.munchausen_q_learning`.

    Args:
      q_tm1: ``[A]`` online values at :math:`s_{t-1}` (differentiated).
      a_tm1: ``[]`` int, the action taken.
      r_t: ``[]`` reward.
      discount_t: ``[]`` discount.
      q_tm1_target: ``[A]`` target values at :math:`s_{t-1}`.
      q_t_target: ``[A]`` target values at :math:`s_t`.
      tau: ``[]`` temperature.
      alpha: ``[]`` Munchausen scaling.
      q: ``[]`` entropic index.
      l0: ``[]`` lower clip.
      num_iters: static bisection steps.
      stop_target_gradients: stop gradients through the target (static).

    Returns:
      ``[]`` the TD error.

    Examples:
      >>> import jax.numpy as jnp
      >>> q = jnp.array([1.0, 1.0])
      >>> float(mviq_q_learning(q, 0, 0.0, 1.0, q, q, 1.0, 0.0, 2.0, -1.0))
      0.5
    """
    check_tau(tau)
    check_unit("alpha", alpha)
    check_q(q)
    check_l0(l0)
    q_tm1, a_tm1 = jnp.asarray(q_tm1), jnp.asarray(a_tm1)
    chex.assert_rank([q_tm1, a_tm1], [1, 0])
    target = mviq_target(
        q_tm1_target, a_tm1, r_t, discount_t, q_t_target, tau, alpha, q, l0, num_iters
    )
    if stop_target_gradients:
        target = jax.lax.stop_gradient(target)
    return target - q_tm1[a_tm1]
