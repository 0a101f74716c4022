r"""Worst-/best-case substate DP (Achab & Neu): risk-sensitive tabular operators.

Tabular policy evaluation, robust value iteration and distributional policy
evaluation on an MDP whose every state :math:`s` is split into a *worst-case
substate* :math:`(s, -)` and a *best-case substate* :math:`(s, +)` at a risk
level :math:`\alpha \in (0, 1]`, after Achab and Neu, "Robustness and risk
management via distributional dynamic programming" (arXiv 2112.15430). All
functions are pure and *unbatched* (one MDP; ``jax.vmap`` over MDPs or over a
traced ``alpha``); loop lengths are static, ``alpha``, the MDP and the support
may be traced. Substate axis: index ``0`` is the worst case :math:`-`, index
``1`` the best case :math:`+`.

**Splitting a mixture (the linear program).** For a discrete law with outcomes
(components) :math:`v_c` of probabilities :math:`p_c`,

.. math::
    \rho^-_\alpha(v; p) = \min\Big\{\textstyle\sum_c w_c v_c :\ w \in \Delta,\
    w_c \le p_c/\alpha\Big\},\qquad
    \rho^+_\alpha(v; p) = \max\Big\{\textstyle\sum_c w_c v_c :\ w \in \Delta,\
    w_c \le p_c/(1-\alpha)\Big\},

the lower tail of mass :math:`\alpha` (:math:`\rho^-_\alpha` is
:math:`\mathrm{CVaR}_\alpha` = AVaR, a coherent risk measure, in its dual form)
and the upper tail of mass :math:`1 - \alpha`. Both LPs are solved by sorting
(a fractional knapsack; :func:`split_weights`), and the two maximisers are
complementary: :math:`\alpha w^- + (1-\alpha) w^+ = p`, hence
:math:`\alpha\rho^- + (1-\alpha)\rho^+ = \sum_c p_c v_c`.

**Augmented MDP.** States :math:`(s, \sigma)`, :math:`\sigma \in \{-, +\}`,
with nominal substate weights :math:`q_- = \alpha`, :math:`q_+ = 1 - \alpha`.
From :math:`s`, following :math:`\pi`, the components are
:math:`c = (a, s', \sigma')` with nominal probability
:math:`\tilde p_c = \pi(a|s) P(s'|s, a) q_{\sigma'}` and value
:math:`R(s, a) + \gamma V^{\sigma'}(s')`. The split evaluation operator is

.. math::
    (\mathcal{T}^\pi_\alpha V)^\sigma(s) = \rho^\sigma_\alpha\big(
    \{R(s, a) + \gamma V^{\sigma'}(s')\}_c;\ \tilde p\big),
    \qquad \sigma \in \{-, +\}

(:func:`split_expectation_backup`), and the control operator, one action per
substate, is

.. math::
    Q^\sigma(s, a) = R(s, a) + \gamma\, \rho^\sigma_\alpha\big(
    \{V^{\sigma'}(s')\}_{(s', \sigma')};\ P(s'|s, a)\, q_{\sigma'}\big),\qquad
    V^\sigma(s) = \max_a Q^\sigma(s, a)

(:func:`split_optimality_backup`). Robust-MDP reading: at a worst-case substate
nature picks the next augmented state from any kernel :math:`w \le \tilde p /
\alpha` (the AVaR ambiguity set of the nominal kernel) to *minimise* the value,
at a best-case substate any :math:`w \le \tilde p/(1-\alpha)` to *maximise* it;
the greedy actions of :math:`Q^-` form the *safe* policy, those of :math:`Q^+`
the *risky* one. Both operators are monotone, translation-equivariant
:math:`\gamma`-contractions in the supremum norm (the weights are
probabilities), so the iterations converge geometrically to unique fixed
points.

**Distributional operator.** Laws ``eta[2, S, N]`` on a categorical support
``support[N]`` (:func:`jaxrl.ops.distributional_dp.return_support`) mix the
shifted next laws with the same weights, computed from the component means
:math:`R(s, a) + \gamma\,\mathbb{E}\,\eta^{\sigma'}(s')`:

.. math::
    \eta^\sigma(s) = \sum_c w^\sigma_c\,
    \Pi_z\big(\mathrm{law}[R(s, a) + \gamma G^{\sigma'}(s')]\big)

(:func:`split_distributional_backup`, :math:`\Pi_z` the Cramér projection). Its
means follow :math:`\mathcal{T}^\pi_\alpha` exactly when no shifted atom is
clipped.

**Properties (derived here; they are what the tests check).** At the fixed
points, for a policy :math:`\pi` with return :math:`G^\pi(s)`:

1. mean consistency: :math:`\alpha V^-(s) + (1 - \alpha) V^+(s) = V^\pi(s)` and
   :math:`\alpha \eta^-(s) + (1-\alpha)\eta^+(s) = \mathrm{law}\,G^\pi(s)` (the
   complementary weights rebuild the ordinary distributional backup);
2. so :math:`\alpha\eta^-(s)` is a sub-law of :math:`G^\pi(s)` (density at most
   :math:`1/\alpha`) and
   :math:`\mathrm{CVaR}_\alpha(G^\pi(s)) \le V^-(s) \le V^\pi(s) \le V^+(s)`:
   the worst-case value is a coherent risk measure of the return, never below
   its static CVaR; with one random transition (then absorption) it *equals*
   the CVaR;
3. :math:`\alpha = 1`: :math:`V^- = V^\pi`, and the control operator is value
   iteration (:math:`V^- = V^*`).

**What is ours, not the paper's.** Only the paper's abstract (the augmented
state space of worst-/best-case substates whose values are maximised by safe
and risky policies, its robust-MDP interpretation, AVaR / coherent risk measures
and linear programming) was available when this module was written; the
operators above are our reconstruction of that description, not a transcription
of the paper's equations. Simplifications: rewards are the MDP's ``R[s, a]``,
paid deterministically; the same level :math:`\alpha` splits every transition
(no level propagation, unlike CVaR state augmentation); the split is over whole
components :math:`(a, s', \sigma')` (what makes it an LP over kernels), ordered
by their means; the initial state is split like one more transition
(:func:`split_initial_values`). The paper's second contribution (telling safe
from risky *optimal* actions to break ties among optimal policies) is not
implemented.

``gamma`` must lie in ``(0, 1]`` (``1`` for episodic MDPs in which every policy
is absorbed in a zero-reward state).

References:
  Achab and Neu, "Robustness and risk management via distributional dynamic
  programming", arXiv 2112.15430 (2021); Rockafellar and Uryasev, J. Risk 2000
  (CVaR); Artzner, Delbaen, Eber and Heath, Math. Finance 1999 (coherent risk
  measures, dual representation); Rowland et al., AISTATS 2018 (categorical
  projection).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl.config import check_range
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.ops._return_laws import _check_level
from jaxrl.ops.distributional_dp import delta_laws, projection_matrix
from jaxrl.types import Array, ArrayLike

__all__ = [
    "split_weights",
    "markov_probs",
    "split_expectation_backup",
    "split_optimality_backup",
    "split_policy_evaluation",
    "split_value_iteration",
    "split_distributional_backup",
    "split_distributional_evaluation",
    "split_initial_values",
]

# ----------------------------------------------------------------------- the split


def _weights(values: Array, probs: Array, alpha: Array) -> tuple[Array, Array]:
    """Batched :func:`split_weights` over leading axes (components last)."""
    order = jnp.argsort(values, axis=-1)
    p = jnp.take_along_axis(probs, order, axis=-1)
    zero = jnp.zeros_like(p[..., :1])
    before = jnp.concatenate([zero, jnp.cumsum(p, axis=-1)[..., :-1]], axis=-1)
    taken = jnp.clip(alpha - before, 0.0, p)
    lower = taken / alpha
    # alpha = 1: the best-case tail has no mass; its limit is the largest
    # component with positive probability (double where: no 0/0 anywhere).
    pos = jnp.arange(p.shape[-1])
    top = jnp.max(jnp.where(p > 0, pos, -1), axis=-1, keepdims=True)
    limit = (pos == top).astype(p.dtype)
    hi = 1.0 - alpha
    upper = jnp.where(hi > 0, (p - taken) / jnp.where(hi > 0, hi, 1.0), limit)
    inverse = jnp.argsort(order, axis=-1)
    return (
        jnp.take_along_axis(lower, inverse, axis=-1),
        jnp.take_along_axis(upper, inverse, axis=-1),
    )


def split_weights(
    values: ArrayLike, probs: ArrayLike, alpha: ArrayLike
) -> tuple[Array, Array]:
    r"""Return the worst- and best-case split weights of a discrete law, ``([C], [C])``.

    The minimiser :math:`w^-` of :math:`\sum_c w_c v_c` over
    :math:`\{w \in \Delta: w_c \le p_c/\alpha\}` (all the mass of the lowest
    values up to :math:`\alpha`, a fraction of the boundary component) and the
    complementary maximiser :math:`w^+ = (p - \alpha w^-)/(1 - \alpha)` of the
    upper tail. :math:`\sum_c w^-_c v_c = \mathrm{CVaR}_\alpha` of the law
    (:func:`jaxrl.ops.risk.cvar`). At ``alpha = 1`` :math:`w^- = p` and
    :math:`w^+` is the limit :math:`\alpha \to 1`: all weight on the largest
    value of positive probability. Ties are split in index order. ``alpha``
    may be traced.

    Args:
      values: ``[C]`` component values :math:`v_c`.
      probs: ``[C]`` nominal probabilities :math:`p_c` summing to one.
      alpha: ``[]`` level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``(lower [C], upper [C])``, each summing to one.

    Raises:
      ConfigError: concrete ``alpha`` outside ``(0, 1]``.

    References:
      Achab and Neu, arXiv 2112.15430 (worst-/best-case substates); Rockafellar
      and Uryasev, J. Risk 2000 (CVaR as a minimum over densities <= 1/alpha).

    Examples:
      >>> import jax.numpy as jnp
      >>> lo, up = split_weights(jnp.array([3.0, -1.0, 0.0]),
      ...                        jnp.array([0.5, 0.25, 0.25]), 0.5)
      >>> lo.tolist(), up.tolist()
      ([0.0, 0.5, 0.5], [1.0, 0.0, 0.0])
    """
    _check_level("alpha", alpha)
    values = jnp.asarray(values)
    if not jnp.issubdtype(values.dtype, jnp.floating):
        values = values.astype(jnp.result_type(float))
    probs = jnp.asarray(probs, values.dtype)
    chex.assert_rank(values, 1)
    chex.assert_equal_shape([values, probs])
    alpha = jnp.asarray(alpha, values.dtype)
    chex.assert_rank(alpha, 0)
    return _weights(values, probs, alpha)


def markov_probs(policy: ArrayLike, num_states: int, num_actions: int) -> Array:
    """Return a Markov policy as probabilities ``[S, A]``.

    Args:
      policy: integer ``[S]`` actions, or float ``[S, A]`` probabilities.
      num_states: static ``S``.
      num_actions: static ``A``.

    Returns:
      ``[S, A]`` probabilities.

    Examples:
      >>> import jax.numpy as jnp
      >>> markov_probs(jnp.array([1, 0]), 2, 2).tolist()
      [[0.0, 1.0], [1.0, 0.0]]
    """
    policy = jnp.asarray(policy)
    if jnp.issubdtype(policy.dtype, jnp.integer):
        chex.assert_shape(policy, (num_states,))
        return jax.nn.one_hot(policy, num_actions, dtype=jnp.result_type(float))
    chex.assert_shape(policy, (num_states, num_actions))
    return policy


# ------------------------------------------------------------------------- backups


def _prepare(mdp: FiniteMDP, alpha: ArrayLike) -> tuple[Array, Array]:
    check_range("gamma", mdp.gamma, 0.0, 1.0, low_inclusive=False)
    _check_level("alpha", alpha)
    dtype = mdp.P.dtype
    alpha = jnp.asarray(alpha, dtype)
    chex.assert_rank(alpha, 0)
    return alpha, jnp.asarray(mdp.gamma, dtype)


def _components(
    mdp: FiniteMDP, v: Array, pi: Array, alpha: Array, gamma: Array
) -> tuple[Array, Array]:
    """Values and nominal probabilities ``[S, A * S * 2]`` of (a, s', sigma')."""
    S, A = mdp.num_states, mdp.num_actions
    q = jnp.stack([alpha, 1.0 - alpha])
    values = mdp.R.astype(v.dtype)[:, :, None, None] + gamma * v.T[None, None]
    probs = pi[:, :, None, None] * mdp.P.astype(v.dtype)[..., None] * q
    values = jnp.broadcast_to(values, probs.shape)
    return values.reshape(S, A * S * 2), probs.reshape(S, A * S * 2)


def _check_values(mdp: FiniteMDP, v: Array) -> None:
    chex.assert_shape(mdp.P, (mdp.num_states, mdp.num_actions, mdp.num_states))
    chex.assert_shape(mdp.R, (mdp.num_states, mdp.num_actions))
    chex.assert_shape(v, (2, mdp.num_states))


def _evaluation_sweep(
    mdp: FiniteMDP, v: Array, pi: Array, alpha: Array, gamma: Array
) -> Array:
    values, probs = _components(mdp, v, pi, alpha, gamma)
    lower, upper = _weights(values, probs, alpha)
    return jnp.stack([jnp.sum(lower * values, -1), jnp.sum(upper * values, -1)])


def split_expectation_backup(
    mdp: FiniteMDP, v: ArrayLike, policy: ArrayLike, alpha: ArrayLike
) -> Array:
    r"""Apply the split evaluation operator :math:`\mathcal{T}^\pi_\alpha` once.

    .. math:: (\mathcal{T}^\pi_\alpha V)^\sigma(s) = \rho^\sigma_\alpha\big(
              \{R(s, a) + \gamma V^{\sigma'}(s')\}_{(a, s', \sigma')};\
              \pi(a|s) P(s'|s, a) q_{\sigma'}\big)

    with :math:`q = (\alpha, 1 - \alpha)` and :math:`\rho^\pm_\alpha` the
    lower/upper tails of :func:`split_weights` (see the module docstring).

    Args:
      mdp: the MDP (``gamma`` in ``(0, 1]``, checked when concrete).
      v: ``[2, S]`` substate values (row 0 worst case, row 1 best case).
      policy: ``[S]`` int actions or ``[S, A]`` probabilities.
      alpha: ``[]`` level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``[2, S]`` the backed-up values.

    Raises:
      ConfigError: concrete ``alpha`` or ``gamma`` out of range.

    References:
      Achab and Neu, arXiv 2112.15430 (our reconstruction; module docstring).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import FiniteMDP
      >>> P = jnp.array([[[0.0, 0.5, 0.5]], [[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])
      >>> R = jnp.array([[0.0], [-4.0], [0.0]])  # a coin flip: -4 or 0
      >>> mdp = FiniteMDP(P=P, R=R, mu0=jnp.array([1.0, 0.0, 0.0]),
      ...                 gamma=jnp.array(1.0))
      >>> v = jnp.array([[0.0, -4.0, 0.0], [0.0, -4.0, 0.0]])
      >>> split_expectation_backup(mdp, v, jnp.zeros(3, int), 0.5)[:, 0].tolist()
      [-4.0, 0.0]
    """
    alpha, gamma = _prepare(mdp, alpha)
    v = jnp.asarray(v, mdp.P.dtype)
    _check_values(mdp, v)
    pi = markov_probs(policy, mdp.num_states, mdp.num_actions).astype(v.dtype)
    return _evaluation_sweep(mdp, v, pi, alpha, gamma)


def _optimality_sweep(
    mdp: FiniteMDP, v: Array, alpha: Array, gamma: Array
) -> tuple[Array, Array]:
    S, A = mdp.num_states, mdp.num_actions
    q = jnp.stack([alpha, 1.0 - alpha])
    values = jnp.broadcast_to(v.T[None, None], (S, A, S, 2)).reshape(S, A, 2 * S)
    probs = (mdp.P.astype(v.dtype)[..., None] * q).reshape(S, A, 2 * S)
    lower, upper = _weights(values, probs, alpha)
    reward = mdp.R.astype(v.dtype)
    qv = jnp.stack(
        [
            reward + gamma * jnp.sum(lower * values, -1),
            reward + gamma * jnp.sum(upper * values, -1),
        ]
    )
    return jnp.max(qv, axis=-1), qv


def split_optimality_backup(
    mdp: FiniteMDP, v: ArrayLike, alpha: ArrayLike
) -> tuple[Array, Array]:
    r"""Apply the robust control operator once: ``(V' [2, S], Q [2, S, A])``.

    .. math:: Q^\sigma(s, a) = R(s, a) + \gamma\,\rho^\sigma_\alpha\big(
              \{V^{\sigma'}(s')\}_{(s', \sigma')};\ P(s'|s, a)\, q_{\sigma'}
              \big),\qquad V'^\sigma(s) = \max_a Q^\sigma(s, a).

    The greedy actions of ``Q[0]`` are the safe policy, those of ``Q[1]`` the
    risky one. At ``alpha = 1`` row 0 is the Bellman optimality operator.

    Args:
      mdp: the MDP (``gamma`` in ``(0, 1]``, checked when concrete).
      v: ``[2, S]`` substate values.
      alpha: ``[]`` level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``(v' [2, S], q [2, S, A])``.

    Raises:
      ConfigError: concrete ``alpha`` or ``gamma`` out of range.

    References:
      Achab and Neu, arXiv 2112.15430 (our reconstruction; module docstring).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import FiniteMDP
      >>> # action 0: a coin flip between -4 and 0; action 1: a sure -1
      >>> P = jnp.zeros((4, 2, 4)).at[0, 0, 1].set(0.5).at[0, 0, 2].set(0.5)
      >>> P = P.at[0, 1, 3].set(1.0).at[1:, :, 2].set(1.0)
      >>> R = jnp.array([[0.0, -1.0], [-4.0, -4.0], [0.0, 0.0], [0.0, 0.0]])
      >>> mdp = FiniteMDP(P=P, R=R, mu0=jnp.eye(4)[0], gamma=jnp.array(1.0))
      >>> v = jnp.array([[0.0, -4.0, 0.0, 0.0]] * 2)
      >>> _, q = split_optimality_backup(mdp, v, 0.5)
      >>> q[:, 0].tolist()  # rows: worst case prefers the sure -1, best the flip
      [[-4.0, -1.0], [0.0, -1.0]]
    """
    alpha, gamma = _prepare(mdp, alpha)
    v = jnp.asarray(v, mdp.P.dtype)
    _check_values(mdp, v)
    return _optimality_sweep(mdp, v, alpha, gamma)


def _check_iters(num_iters: int) -> None:
    if (
        isinstance(num_iters, bool)
        or not isinstance(num_iters, int | np.integer)
        or num_iters < 1
    ):
        raise ConfigError(f"num_iters must be an integer >= 1, got {num_iters!r}")


def _init_values(mdp: FiniteMDP, v0: ArrayLike | None) -> Array:
    if v0 is None:
        return jnp.zeros((2, mdp.num_states), mdp.P.dtype)
    v0 = jnp.asarray(v0, mdp.P.dtype)
    _check_values(mdp, v0)
    return v0


def split_policy_evaluation(
    mdp: FiniteMDP,
    policy: ArrayLike,
    alpha: ArrayLike,
    num_iters: int,
    v0: ArrayLike | None = None,
) -> Array:
    r"""Iterate :func:`split_expectation_backup` ``num_iters`` times, ``[2, S]``.

    A :math:`\gamma`-contraction: the error after ``n`` sweeps is at most
    :math:`\gamma^n \|V_0 - V\|_\infty`; for a finite horizon ``H`` (``gamma =
    1`` allowed) ``H`` sweeps from zero are exact.

    Args:
      mdp: the MDP.
      policy: ``[S]`` int actions or ``[S, A]`` probabilities.
      alpha: ``[]`` level in ``(0, 1]``.
      num_iters: static number of sweeps (``>= 1``).
      v0: ``[2, S]`` initial values (default zeros).

    Returns:
      ``[2, S]`` the worst-/best-case substate values of ``policy``.

    Raises:
      ConfigError: bad ``num_iters``, concrete ``alpha`` or ``gamma`` out of
        range.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import FiniteMDP
      >>> P = jnp.array([[[0.0, 0.5, 0.5]], [[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])
      >>> mdp = FiniteMDP(P=P, R=jnp.array([[0.0], [-4.0], [0.0]]),
      ...                 mu0=jnp.eye(3)[0], gamma=jnp.array(1.0))
      >>> v = split_policy_evaluation(mdp, jnp.zeros(3, int), 0.25, 3)
      >>> [round(float(x), 4) for x in v[:, 0]]  # CVaR_0.25 = -4; upper tail -4/3
      [-4.0, -1.3333]
    """
    _check_iters(num_iters)
    alpha, gamma = _prepare(mdp, alpha)
    v = _init_values(mdp, v0)
    pi = markov_probs(policy, mdp.num_states, mdp.num_actions).astype(v.dtype)

    def body(v: Array, _: None) -> tuple[Array, None]:
        return _evaluation_sweep(mdp, v, pi, alpha, gamma), None

    v, _ = jax.lax.scan(body, v, None, length=num_iters)
    return v


def split_value_iteration(
    mdp: FiniteMDP, alpha: ArrayLike, num_iters: int, v0: ArrayLike | None = None
) -> tuple[Array, Array]:
    r"""Iterate :func:`split_optimality_backup` ``num_iters`` times.

    Args:
      mdp: the MDP.
      alpha: ``[]`` level in ``(0, 1]``.
      num_iters: static number of sweeps (``>= 1``).
      v0: ``[2, S]`` initial values (default zeros).

    Returns:
      ``(v [2, S], q [2, S, A])``: the last sweep's values and its Q-values
      (``argmax q[0]``: safe policy, ``argmax q[1]``: risky policy).

    Raises:
      ConfigError: bad ``num_iters``, concrete ``alpha`` or ``gamma`` out of
        range.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import FiniteMDP
      >>> P = jnp.zeros((4, 2, 4)).at[0, 0, 1].set(0.5).at[0, 0, 2].set(0.5)
      >>> P = P.at[0, 1, 3].set(1.0).at[1:, :, 2].set(1.0)
      >>> R = jnp.array([[0.0, -1.0], [-4.0, -4.0], [0.0, 0.0], [0.0, 0.0]])
      >>> mdp = FiniteMDP(P=P, R=R, mu0=jnp.eye(4)[0], gamma=jnp.array(1.0))
      >>> _, q = split_value_iteration(mdp, 0.5, 3)
      >>> q[:, 0].argmax(-1).tolist()  # safe: the sure -1; risky: the flip
      [1, 0]
    """
    _check_iters(num_iters)
    alpha, gamma = _prepare(mdp, alpha)
    v = _init_values(mdp, v0)

    def body(carry: tuple[Array, Array], _: None) -> tuple[tuple[Array, Array], None]:
        return _optimality_sweep(mdp, carry[0], alpha, gamma), None

    q0 = jnp.zeros((2, mdp.num_states, mdp.num_actions), v.dtype)
    (v, q), _ = jax.lax.scan(body, (v, q0), None, length=num_iters)
    return v, q


# ----------------------------------------------------------------- distributional


def _projections(mdp: FiniteMDP, support: Array, gamma: Array) -> Array:
    """``[S, A, N, N]`` projection of ``R(s, a) + gamma z`` onto ``z``."""
    atoms = mdp.R.astype(support.dtype)[:, :, None] + gamma * support
    return jax.vmap(jax.vmap(lambda x: projection_matrix(x, support)))(atoms)


def _distributional_sweep(
    mdp: FiniteMDP,
    eta: Array,
    pi: Array,
    support: Array,
    proj: Array,
    alpha: Array,
    gamma: Array,
) -> Array:
    S, A = mdp.num_states, mdp.num_actions
    means = eta @ support  # [2, S]
    values, probs = _components(mdp, means, pi, alpha, gamma)
    lower, upper = _weights(values, probs, alpha)
    w = jnp.stack([lower, upper]).reshape(2, S, A, S, 2)
    mixed = jnp.einsum("xsatj,jtn->xsan", w, eta)
    return jnp.einsum("xsan,sanm->xsm", mixed, proj)


def _prepare_laws(mdp: FiniteMDP, eta: ArrayLike, support: ArrayLike):
    support = jnp.asarray(support, mdp.P.dtype)
    chex.assert_rank(support, 1)
    eta = jnp.asarray(eta, mdp.P.dtype)
    chex.assert_shape(eta, (2, mdp.num_states, support.shape[0]))
    return eta, support


def split_distributional_backup(
    mdp: FiniteMDP,
    eta: ArrayLike,
    policy: ArrayLike,
    support: ArrayLike,
    alpha: ArrayLike,
) -> Array:
    r"""Apply the split distributional evaluation operator once, ``[2, S, N]``.

    .. math:: \eta'^\sigma(s) = \sum_{(a, s', \sigma')} w^\sigma_{(a, s',
              \sigma')}(s)\ \Pi_z\big(\mathrm{law}[R(s, a) + \gamma\,
              G^{\sigma'}(s')]\big),

    with :math:`w^\sigma(s)` the :func:`split_weights` of the component means
    :math:`R(s, a) + \gamma\sum_i z_i \eta^{\sigma'}(s')_i` under the nominal
    probabilities :math:`\pi(a|s) P(s'|s, a) q_{\sigma'}`. The mixture
    :math:`\alpha\eta'^- + (1-\alpha)\eta'^+` is the ordinary distributional
    backup of :math:`\alpha\eta^- + (1-\alpha)\eta^+` under :math:`\pi`.

    Args:
      mdp: the MDP.
      eta: ``[2, S, N]`` substate laws on ``support``.
      policy: ``[S]`` int actions or ``[S, A]`` probabilities.
      support: ``[N]`` strictly increasing support.
      alpha: ``[]`` level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``[2, S, N]`` the backed-up laws.

    Raises:
      ConfigError: concrete ``alpha`` or ``gamma`` out of range.

    References:
      Achab and Neu, arXiv 2112.15430 (our reconstruction; module docstring);
      Rowland et al., AISTATS 2018 (projection).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import FiniteMDP
      >>> P = jnp.array([[[0.0, 0.5, 0.5]], [[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])
      >>> mdp = FiniteMDP(P=P, R=jnp.array([[0.0], [-4.0], [0.0]]),
      ...                 mu0=jnp.eye(3)[0], gamma=jnp.array(1.0))
      >>> z = jnp.array([-4.0, 0.0])
      >>> eta = jnp.array([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]] * 2)
      >>> new = split_distributional_backup(mdp, eta, jnp.zeros(3, int), z, 0.25)
      >>> [[round(float(x), 4) for x in law] for law in new[:, 0]]
      [[1.0, 0.0], [0.3333, 0.6667]]
      >>> # worst 25%: -4 surely; best 75%: -4 w.p. 1/3
    """
    alpha, gamma = _prepare(mdp, alpha)
    eta, support = _prepare_laws(mdp, eta, support)
    pi = markov_probs(policy, mdp.num_states, mdp.num_actions).astype(eta.dtype)
    proj = _projections(mdp, support, gamma)
    return _distributional_sweep(mdp, eta, pi, support, proj, alpha, gamma)


def split_distributional_evaluation(
    mdp: FiniteMDP,
    policy: ArrayLike,
    support: ArrayLike,
    alpha: ArrayLike,
    num_iters: int,
    eta0: ArrayLike | None = None,
) -> Array:
    r"""Iterate :func:`split_distributional_backup` ``num_iters`` times, ``[2, S, N]``.

    Starts from :math:`\delta_0` (default). The means follow
    :func:`split_policy_evaluation` exactly when no shifted atom is clipped,
    and :math:`\alpha\eta^- + (1-\alpha)\eta^+` follows ordinary distributional
    policy evaluation (so it converges to the projected return law of
    ``policy``).

    Args:
      mdp: the MDP.
      policy: ``[S]`` int actions or ``[S, A]`` probabilities.
      support: ``[N]`` strictly increasing support.
      alpha: ``[]`` level in ``(0, 1]``.
      num_iters: static number of sweeps (``>= 1``).
      eta0: ``[2, S, N]`` initial laws (default :math:`\delta_0`).

    Returns:
      ``[2, S, N]`` the worst-/best-case substate laws.

    Raises:
      ConfigError: bad ``num_iters``, concrete ``alpha`` or ``gamma`` out of
        range.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxrl.mdp import FiniteMDP
      >>> P = jnp.array([[[0.0, 0.5, 0.5]], [[0.0, 0.0, 1.0]], [[0.0, 0.0, 1.0]]])
      >>> mdp = FiniteMDP(P=P, R=jnp.array([[0.0], [-4.0], [0.0]]),
      ...                 mu0=jnp.eye(3)[0], gamma=jnp.array(1.0))
      >>> eta = split_distributional_evaluation(
      ...     mdp, jnp.zeros(3, int), jnp.array([-4.0, 0.0]), 0.5, 3)
      >>> eta[:, 0].tolist()  # the worst half is the -4 branch, the best half 0
      [[1.0, 0.0], [0.0, 1.0]]
    """
    _check_iters(num_iters)
    alpha, gamma = _prepare(mdp, alpha)
    support = jnp.asarray(support, mdp.P.dtype)
    chex.assert_rank(support, 1)
    if eta0 is None:
        eta0 = delta_laws((2, mdp.num_states), support).astype(mdp.P.dtype)
    eta, support = _prepare_laws(mdp, eta0, support)
    pi = markov_probs(policy, mdp.num_states, mdp.num_actions).astype(eta.dtype)
    proj = _projections(mdp, support, gamma)

    def body(eta: Array, _: None) -> tuple[Array, None]:
        return _distributional_sweep(mdp, eta, pi, support, proj, alpha, gamma), None

    eta, _ = jax.lax.scan(body, eta, None, length=num_iters)
    return eta


def split_initial_values(mu0: ArrayLike, v: ArrayLike, alpha: ArrayLike) -> Array:
    r"""Return the substate values at the initial law, ``[2]``.

    The initial state is split like one more (reward-free, undiscounted)
    transition: :math:`V^\sigma_0 = \rho^\sigma_\alpha(\{V^{\sigma'}(s)\}_{(s,
    \sigma')};\ \mu_0(s) q_{\sigma'})`, so
    :math:`\alpha V^-_0 + (1-\alpha) V^+_0 = \sum_s \mu_0(s) V^\pi(s)` and
    :math:`V^-_0 \ge \mathrm{CVaR}_\alpha` of the return from :math:`\mu_0`.
    With a deterministic start :math:`s_0` it is ``v[:, s0]``.

    Args:
      mu0: ``[S]`` initial-state distribution.
      v: ``[2, S]`` substate values.
      alpha: ``[]`` level in ``(0, 1]`` (checked when concrete).

    Returns:
      ``[2]`` (worst case, best case).

    Raises:
      ConfigError: concrete ``alpha`` outside ``(0, 1]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> v = jnp.array([[-4.0, 0.0], [-4.0, 0.0]])
      >>> split_initial_values(jnp.array([0.5, 0.5]), v, 0.5).tolist()
      [-4.0, 0.0]
    """
    _check_level("alpha", alpha)
    v = jnp.asarray(v)
    if not jnp.issubdtype(v.dtype, jnp.floating):
        v = v.astype(jnp.result_type(float))
    mu0 = jnp.asarray(mu0, v.dtype)
    chex.assert_rank(mu0, 1)
    chex.assert_shape(v, (2, mu0.shape[0]))
    alpha = jnp.asarray(alpha, v.dtype)
    chex.assert_rank(alpha, 0)
    q = jnp.stack([alpha, 1.0 - alpha])
    values = v.T.reshape(-1)
    probs = (mu0[:, None] * q).reshape(-1)
    lower, upper = _weights(values, probs, alpha)
    return jnp.stack([jnp.sum(lower * values), jnp.sum(upper * values)])
