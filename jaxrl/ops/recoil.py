r"""ReCOIL: the dual-Q imitation objective and the bounded critic of its code.

**ReCOIL** (Sikchi, Zheng, Zhang and Niekum, ICLR 2024) imitates from an expert
set :math:`d^E` plus arbitrary data :math:`d^S` by matching the mixtures
:math:`\beta d^\pi + (1-\beta) d^S` and :math:`\beta d^E + (1-\beta) d^S`; its
dual-Q objective is :func:`recoil_objective` (whose minimum over :math:`Q` is
:math:`-D_f` of the two mixtures, with the positive conjugates of
:mod:`jaxrl.ops.divergences`, so with expert-only data its optimal policy is
behaviour cloning), and the bounded-target critic of the authors' code is
:func:`recoil_td_target` / :func:`recoil_critic_loss`.

Conventions: :func:`recoil_objective` takes ``[N]`` batches and reduces; the
critic terms are unbatched (``vmap`` them). ``f`` is a static Python string;
an unknown name raises :class:`jaxrl.errors.ConfigError`. Numeric parameters
may be traced; a concrete value outside its range raises
:class:`~jaxrl.errors.ConfigError`.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.config import check_range
from jaxrl.ops._dual_common import _float, _mean
from jaxrl.ops.divergences import _check_f, f_conjugate_positive
from jaxrl.types import Array, ArrayLike

__all__ = ["recoil_objective", "recoil_td_target", "recoil_critic_loss"]


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
      f: static name in :data:`~jaxrl.ops.divergences.F_DIVERGENCES` (the
        paper's practical choice is ``chi_square``).
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
