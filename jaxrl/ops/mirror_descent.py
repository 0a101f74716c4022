r"""Mirror-descent value iteration MD-VI(lambda, tau) (KL + entropy regularisation).

MD-VI (Vieillard, Kozuno, Scherrer, Pietquin, Munos and Geist, "Leverage the
Average: an Analysis of KL Regularization in RL", NeurIPS 2020, Sec. 3)
regularises the greedy step of value iteration with a KL divergence (weight
:math:`\lambda \ge 0`) to the previous policy and an entropy bonus (weight
:math:`\tau \ge 0`):

.. math::

    \pi_{k+1} &= \arg\max_\pi \langle \pi, q_k \rangle
                 - \lambda\,\mathrm{KL}(\pi \| \pi_k) + \tau\,\mathcal{H}(\pi), \\
    q_{k+1} &= r + \gamma P \langle \pi_{k+1}, q_k
               - \lambda \ln(\pi_{k+1}/\pi_k) - \tau \ln \pi_{k+1} \rangle
               + \varepsilon_{k+1},

per state, with :math:`\varepsilon_{k+1}` the error of the (approximate)
evaluation step. Setting the gradient of the greedy objective on the simplex to
zero gives the closed form (with :math:`\beta = \lambda/(\lambda+\tau)`)

.. math::

    \pi_{k+1} \propto \pi_k^{\beta}\, \exp\!\big(q_k / (\lambda+\tau)\big),
    \qquad
    \ln \pi_{k+1} = \mathrm{log\_softmax}\big((q_k + \lambda \ln \pi_k)
                    / (\lambda+\tau)\big),

and the maximum itself, the regularised state value, is

.. math::

    \langle \pi_{k+1}, q_k - \lambda \ln(\pi_{k+1}/\pi_k) - \tau \ln \pi_{k+1}\rangle
    = (\lambda+\tau) \log \textstyle\sum_a
      \exp\big((q_k(a) + \lambda \ln \pi_k(a)) / (\lambda+\tau)\big).

Unrolling the logs, :math:`\ln \pi_{k+1} = \mathrm{log\_softmax}\big(
\sum_{j \le k} \beta^{k-j} q_j / (\lambda+\tau)\big)` from a uniform
:math:`\pi_0`: the policy is a softmax of a (:math:`\beta`-discounted) *sum* of
all past q-functions, so the evaluation errors :math:`\varepsilon_j` are
averaged over about :math:`1/(1-\beta)` iterations (all of them at
:math:`\tau = 0`, :math:`\beta = 1`) instead of accumulated.

**Munchausen VI is MD-VI reparameterised.** With :math:`\alpha = \beta =
\lambda/(\lambda+\tau)` and :math:`\tau_M = \lambda+\tau` (so :math:`\lambda =
\alpha\tau_M`, :math:`\tau = (1-\alpha)\tau_M`), the change of variable
:math:`q'_k = q_k + \lambda \ln \pi_k` turns MD-VI into M-VI(:math:`\alpha,
\tau_M`) (Vieillard, Pietquin and Geist, NeurIPS 2020, eq. 4;
``jaxrl.agents.mvi_tabular``): :math:`\pi_{k+1} = \mathrm{softmax}(q'_k/\tau_M)`
and :math:`q'_{k+1} = r + \alpha\tau_M \ln\pi_{k+1} + \gamma P \langle
\pi_{k+1}, q'_k - \tau_M \ln \pi_{k+1}\rangle + \varepsilon_{k+1}` with the *same*
errors, so both produce the same policies. See :func:`munchausen_to_md`,
:func:`md_to_munchausen` and :func:`md_to_munchausen_q`.

Special cases: :math:`\lambda = 0` is soft (entropy-regularised) VI with
temperature :math:`\tau`; :math:`\tau = 0` is pure KL regularisation
(:math:`\beta = 1`). The fixed point at :math:`\tau > 0` is the soft-optimal
:math:`q^*_\tau` with policy :math:`\mathrm{softmax}(q^*_\tau/\tau)` (the KL term
vanishes once :math:`\pi_{k+1} = \pi_k`). ``lambda + tau`` must be positive (at
``lambda = tau = 0`` MD-VI is plain VI, ``jaxrl.agents.vi_tabular``).

Every weight may be traced (a sweep is a ``vmap``); concrete values are checked
(``ConfigError`` naming the argument). Log-policies are carried instead of
policies: ``pi_k ** beta`` underflows long before ``beta * ln pi_k`` does.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.config import check_range
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import exact_dp
from jaxrl.ops._checks import check_tau, check_unit
from jaxrl.types import Array, ArrayLike

__all__ = [
    "md_log_policy",
    "md_policy",
    "md_value",
    "md_vi_operator",
    "munchausen_to_md",
    "md_to_munchausen",
    "md_to_munchausen_q",
]


def _check_weights(kl_weight: ArrayLike, entropy_weight: ArrayLike) -> None:
    check_tau(kl_weight, "kl_weight")
    check_tau(entropy_weight, "entropy_weight")
    check_range(
        "kl_weight + entropy_weight",
        kl_weight + entropy_weight,
        0.0,
        low_inclusive=False,
    )


def _logits(
    q: Array, log_pi_prev: Array, kl_weight: ArrayLike, entropy_weight: ArrayLike
) -> tuple[Array, Array]:
    """``((q + lambda ln pi_prev) / (lambda + tau), lambda + tau)`` for one state."""
    q, log_pi_prev = jnp.asarray(q), jnp.asarray(log_pi_prev, jnp.asarray(q).dtype)
    chex.assert_rank([q, log_pi_prev], [1, 1])
    chex.assert_equal_shape([q, log_pi_prev])
    kl_weight = jnp.asarray(kl_weight, q.dtype)
    entropy_weight = jnp.asarray(entropy_weight, q.dtype)
    chex.assert_rank([kl_weight, entropy_weight], [0, 0])
    # lambda * ln pi_prev with the convention 0 * ln 0 = 0 (lambda = 0 ignores pi_prev).
    kl_term = jnp.where(kl_weight > 0, kl_weight * log_pi_prev, 0.0)
    temperature = kl_weight + entropy_weight
    return (q + kl_term) / temperature, temperature


def md_log_policy(
    q: ArrayLike,
    log_pi_prev: ArrayLike,
    kl_weight: ArrayLike,
    entropy_weight: ArrayLike,
) -> Array:
    r"""Return :math:`\ln \pi_{k+1}` of the MD-VI greedy step for one state, ``[A]``.

    :math:`\ln \pi_{k+1} = \mathrm{log\_softmax}((q_k + \lambda \ln \pi_k) /
    (\lambda + \tau))`, i.e. :math:`\pi_{k+1} \propto \pi_k^{\beta}
    \exp(q_k/(\lambda+\tau))` with :math:`\beta = \lambda/(\lambda+\tau)`, the
    maximiser of :math:`\langle \pi, q_k\rangle - \lambda\,\mathrm{KL}(\pi\|\pi_k)
    + \tau\,\mathcal{H}(\pi)`.

    Args:
      q: ``[A]`` action values :math:`q_k(s, \cdot)`.
      log_pi_prev: ``[A]`` log-policy :math:`\ln \pi_k(\cdot|s)` (``-inf``
        allowed for actions with zero probability).
      kl_weight: ``[]`` :math:`\lambda \ge 0`, weight of the KL to :math:`\pi_k`.
      entropy_weight: ``[]`` :math:`\tau \ge 0`, weight of the entropy bonus;
        :math:`\lambda + \tau > 0`.

    Returns:
      ``[A]`` log-probabilities (log-sum-exp zero).

    References:
      Vieillard et al., "Leverage the Average", NeurIPS 2020, Sec. 3 (MD-VI
      greedy step and its closed form).

    Examples:
      >>> import jax.numpy as jnp
      >>> log_pi = md_log_policy(jnp.array([0.0, 1.0]), jnp.log(jnp.array([0.5, 0.5])), 0.5, 0.5)
      >>> [round(float(p), 4) for p in jnp.exp(log_pi)]  # softmax(q / (lambda + tau))
      [0.2689, 0.7311]
    """
    _check_weights(kl_weight, entropy_weight)
    logits, _ = _logits(q, log_pi_prev, kl_weight, entropy_weight)
    return jax.nn.log_softmax(logits)


def md_policy(
    q: ArrayLike,
    log_pi_prev: ArrayLike,
    kl_weight: ArrayLike,
    entropy_weight: ArrayLike,
) -> Array:
    r"""Return :math:`\pi_{k+1} \propto \pi_k^\beta \exp(q_k/(\lambda+\tau))`, ``[A]``.

    ``exp`` of :func:`md_log_policy`; see there for the arguments.

    Examples:
      >>> import jax.numpy as jnp
      >>> pi = md_policy(jnp.zeros(2), jnp.log(jnp.array([0.2, 0.8])), 1.0, 0.0)
      >>> [round(float(p), 4) for p in pi]  # tau = 0, beta = 1, equal q: pi_k again
      [0.2, 0.8]
    """
    return jnp.exp(md_log_policy(q, log_pi_prev, kl_weight, entropy_weight))


def md_value(
    q: ArrayLike,
    log_pi_prev: ArrayLike,
    kl_weight: ArrayLike,
    entropy_weight: ArrayLike,
) -> Array:
    r"""Return the KL- and entropy-regularised state value of one state, ``[]``.

    :math:`\max_\pi \langle \pi, q_k\rangle - \lambda\,\mathrm{KL}(\pi\|\pi_k)
    + \tau\,\mathcal{H}(\pi) = \langle \pi_{k+1}, q_k - \lambda \ln(\pi_{k+1}/\pi_k)
    - \tau \ln \pi_{k+1}\rangle = (\lambda+\tau) \log \sum_a \exp((q_k(a) +
    \lambda \ln \pi_k(a))/(\lambda+\tau))`, computed in the stable log-sum-exp
    form. With ``kl_weight = 0`` it is the soft value
    :math:`\tau \log \sum_a e^{q(a)/\tau}`.

    Args:
      q: ``[A]`` action values :math:`q_k(s, \cdot)`.
      log_pi_prev: ``[A]`` log-policy :math:`\ln \pi_k(\cdot|s)`.
      kl_weight: ``[]`` :math:`\lambda \ge 0`.
      entropy_weight: ``[]`` :math:`\tau \ge 0`; :math:`\lambda + \tau > 0`.

    Returns:
      ``[]`` the value (the bracket of the MD-VI evaluation step).

    References:
      Vieillard et al., "Leverage the Average", NeurIPS 2020, Sec. 3 (MD-VI
      evaluation step).

    Examples:
      >>> import jax.numpy as jnp
      >>> float(md_value(jnp.array([1.0, 2.0]), jnp.log(jnp.array([0.0, 1.0])), 1.0, 0.0))
      2.0
    """
    _check_weights(kl_weight, entropy_weight)
    logits, temperature = _logits(q, log_pi_prev, kl_weight, entropy_weight)
    return temperature * jax.nn.logsumexp(logits)


def md_vi_operator(
    mdp: FiniteMDP,
    q: ArrayLike,
    log_pi: ArrayLike,
    kl_weight: ArrayLike,
    entropy_weight: ArrayLike,
) -> tuple[Array, Array]:
    r"""Apply one noise-free MD-VI(lambda, tau) iteration to a table.

    :math:`\ln \pi_{k+1} = \mathrm{log\_softmax}((q_k + \lambda \ln \pi_k) /
    (\lambda+\tau))` per state (:func:`md_log_policy`) and
    :math:`q_{k+1} = R + \gamma P \langle \pi_{k+1}, q_k - \lambda
    \ln(\pi_{k+1}/\pi_k) - \tau \ln \pi_{k+1}\rangle` (:func:`md_value` per
    next state). The caller adds the evaluation error :math:`\varepsilon_{k+1}`
    to the returned table (approximate MD-VI).

    Args:
      mdp: the MDP (``gamma`` may be traced).
      q: ``[S, A]`` table :math:`q_k`.
      log_pi: ``[S, A]`` log-policy :math:`\ln \pi_k` (e.g. ``-log A``
        everywhere for a uniform :math:`\pi_0`).
      kl_weight: ``[]`` :math:`\lambda \ge 0`.
      entropy_weight: ``[]`` :math:`\tau \ge 0`; :math:`\lambda + \tau > 0`.

    Returns:
      ``(q_next[S, A], log_pi_next[S, A])``: :math:`q_{k+1}` (before noise) and
      :math:`\ln \pi_{k+1}`.

    References:
      Vieillard et al., "Leverage the Average", NeurIPS 2020, Sec. 3 (MD-VI).

    Examples:
      >>> import numpy as np, jax.numpy as jnp
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> q1, log_pi1 = md_vi_operator(mdp, jnp.zeros((1, 2)), jnp.log(jnp.full((1, 2), 0.5)), 1.0, 0.0)
      >>> q1  # the KL value of a uniform pi_k at equal q is 0
      Array([[1., 0.]], dtype=float32)
    """
    q = jnp.asarray(q, mdp.P.dtype)
    log_pi = jnp.asarray(log_pi, mdp.P.dtype)
    chex.assert_shape([q, log_pi], (mdp.num_states, mdp.num_actions))
    _check_weights(kl_weight, entropy_weight)
    per_state = jax.vmap(md_log_policy, in_axes=(0, 0, None, None))
    log_pi_next = per_state(q, log_pi, kl_weight, entropy_weight)
    v = jax.vmap(md_value, in_axes=(0, 0, None, None))(
        q, log_pi, kl_weight, entropy_weight
    )
    return exact_dp.q_from_v(mdp, v), log_pi_next


def munchausen_to_md(alpha: ArrayLike, tau: ArrayLike) -> tuple[Array, Array]:
    r"""Return MD-VI's ``(kl_weight, entropy_weight)`` of M-VI(alpha, tau).

    :math:`\lambda = \alpha\tau` and :math:`\tau_{\mathrm{MD}} = (1-\alpha)\tau`.

    Args:
      alpha: ``[...]`` Munchausen scaling :math:`\alpha \in [0, 1]`.
      tau: ``[...]`` M-VI temperature :math:`\tau_M \ge 0`.

    Returns:
      ``(kl_weight, entropy_weight)``, each shaped like the broadcast inputs.

    References:
      Vieillard, Pietquin and Geist, "Munchausen Reinforcement Learning",
      NeurIPS 2020, Sec. 3 (M-VI is MD-VI with these weights).

    Examples:
      >>> lam, tau = munchausen_to_md(0.9, 0.1)
      >>> round(float(lam), 4), round(float(tau), 4)
      (0.09, 0.01)
    """
    check_unit("alpha", alpha)
    check_tau(tau)
    alpha, tau = jnp.asarray(alpha), jnp.asarray(tau)
    return alpha * tau, (1.0 - alpha) * tau


def md_to_munchausen(
    kl_weight: ArrayLike, entropy_weight: ArrayLike
) -> tuple[Array, Array]:
    r"""Return M-VI's ``(alpha, tau)`` of MD-VI(kl_weight, entropy_weight).

    :math:`\alpha = \beta = \lambda/(\lambda+\tau)` and :math:`\tau_M =
    \lambda+\tau` (inverse of :func:`munchausen_to_md`).

    Args:
      kl_weight: ``[...]`` :math:`\lambda \ge 0`.
      entropy_weight: ``[...]`` :math:`\tau \ge 0`; :math:`\lambda + \tau > 0`.

    Returns:
      ``(alpha, tau)``, each shaped like the broadcast inputs.

    Examples:
      >>> alpha, tau = md_to_munchausen(0.09, 0.01)
      >>> round(float(alpha), 4), round(float(tau), 4)
      (0.9, 0.1)
    """
    _check_weights(kl_weight, entropy_weight)
    kl_weight, entropy_weight = jnp.asarray(kl_weight), jnp.asarray(entropy_weight)
    temperature = kl_weight + entropy_weight
    return kl_weight / temperature, temperature


def md_to_munchausen_q(q: ArrayLike, log_pi: ArrayLike, kl_weight: ArrayLike) -> Array:
    r"""Return M-VI's table :math:`q'_k = q_k + \lambda \ln \pi_k`, shaped like ``q``.

    The change of variable that maps an MD-VI state :math:`(q_k, \pi_k)` to the
    M-VI table producing the same next policy and, with the same errors, the
    same iterates afterwards (module docstring).

    Args:
      q: ``[..., A]`` MD-VI table :math:`q_k`.
      log_pi: ``[..., A]`` log-policy :math:`\ln \pi_k`.
      kl_weight: ``[]`` :math:`\lambda \ge 0`.

    Returns:
      ``[..., A]`` the M-VI table.

    Examples:
      >>> import jax.numpy as jnp
      >>> md_to_munchausen_q(jnp.array([1.0, 1.0]), jnp.log(jnp.array([0.5, 0.5])), 0.0)
      Array([1., 1.], dtype=float32)
    """
    check_tau(kl_weight, "kl_weight")
    q = jnp.asarray(q)
    log_pi = jnp.asarray(log_pi, q.dtype)
    chex.assert_equal_shape([q, log_pi])
    kl_weight = jnp.asarray(kl_weight, q.dtype)
    return q + jnp.where(kl_weight > 0, kl_weight * log_pi, 0.0)
