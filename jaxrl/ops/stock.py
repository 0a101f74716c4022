r"""Stock augmentation for expected-utility objectives of the return (unbatched).

Stock augmentation (Pires et al., 2025): the agent carries the *stock*
:math:`c_{t+1} = (c_t + r_t)/\gamma` (:func:`stock_update`), so that
:math:`c_0 + G_0 = \gamma^t (c_t + G_t)`; maximizing an expected utility
:math:`\mathbb{E} f(c_0 + G)` (:func:`jaxrl.ops.risk.expected_utility`) then only
needs the stock-shifted greedy rule :math:`\arg\max_b \mathbb{E} f(c' + X_b)`
(:func:`stock_greedy_action`) over per-action return laws of
:mod:`jaxrl.ops.distributional`. The tabular DP built on it is
:mod:`jaxrl.ops.distributional_dp`; the environment wrapper that carries the
stock is :class:`jaxrl.envs.stock.StockWrapper`.

Validation: shapes are checked at trace time (chex asserts). A numeric
parameter outside its range (``gamma`` outside ``(0, 1]``) raises :class:`jaxrl.errors.ConfigError`
when its value is concrete (a Python number or a concrete array); traced values
(under ``jit``/``vmap``) are not checked.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp

from jaxrl.ops._return_laws import _check_level, _law
from jaxrl.ops.risk import Utility, get_utility
from jaxrl.types import Array, ArrayLike

__all__ = ["stock_update", "stock_shifted_values", "stock_greedy_action"]


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
      utility: static: a name in :data:`~jaxrl.ops.risk.UTILITY_NAMES` or an
        elementwise callable ``f``.

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
      utility: static: a name in :data:`~jaxrl.ops.risk.UTILITY_NAMES` or an
        elementwise callable ``f``.

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
