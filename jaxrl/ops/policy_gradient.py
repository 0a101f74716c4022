r"""Policy-gradient losses of categorical policies: PPO clipping, entropy, KL.

Unbatched: every function works on ONE example (a state and the action taken there);
agents ``jax.vmap`` them over a batch and average. Names follow rlax:
``log_pi_a`` is :math:`\log\pi_\theta(a|s)` under the policy being learnt,
``log_mu_a`` is :math:`\log\mu(a|s)` under the behaviour policy that chose
the action (the policy before the update, in PPO), and ``adv`` is the
advantage estimate of ``a`` (e.g. :func:`jaxrl.ops.gae.gae`).

Losses are returned as quantities to *minimise*: the policy losses are the
negated surrogate objectives.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.types import Array, ArrayLike

__all__ = [
    "categorical_log_prob",
    "categorical_entropy",
    "importance_ratio",
    "policy_gradient_loss",
    "clipped_surrogate_loss",
    "clipped_value_loss",
    "approx_kl",
]


def categorical_log_prob(logits: ArrayLike, a: ArrayLike) -> Array:
    r"""Return :math:`\log \mathrm{softmax}(\text{logits})[a]`, ``[]``.

    Args:
      logits: ``[A]`` unnormalised log-probabilities.
      a: ``[]`` int action.

    Returns:
      ``[]`` the log-probability of ``a``.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(categorical_log_prob(jnp.array([0.0, 0.0]), 1)), 4)  # log 1/2
      -0.6931
    """
    logits, a = jnp.asarray(logits), jnp.asarray(a)
    chex.assert_rank([logits, a], [1, 0])
    chex.assert_type(a, int)
    return jax.nn.log_softmax(logits)[a]


def categorical_entropy(logits: ArrayLike) -> Array:
    r"""Return the entropy :math:`-\sum_a \pi(a) \log \pi(a)` of ``softmax(logits)``.

    Actions with ``-inf`` logits (probability zero) contribute zero.

    Args:
      logits: ``[A]`` unnormalised log-probabilities.

    Returns:
      ``[]`` the entropy in nats, in ``[0, log A]``.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(categorical_entropy(jnp.zeros(4))), 4)  # log 4
      1.3863
    """
    logits = jnp.asarray(logits)
    chex.assert_rank(logits, 1)
    log_p = jax.nn.log_softmax(logits)
    p = jnp.exp(log_p)
    safe_log_p = jnp.where(p > 0, log_p, 0.0)
    return -jnp.sum(p * safe_log_p)


def importance_ratio(log_pi_a: ArrayLike, log_mu_a: ArrayLike) -> Array:
    r"""Return :math:`\rho = \pi(a|s) / \mu(a|s) = \exp(\log\pi - \log\mu)`, ``[]``.

    Args:
      log_pi_a: ``[]`` log-probability under the learnt policy.
      log_mu_a: ``[]`` log-probability under the behaviour policy.

    Returns:
      ``[]`` the ratio.

    Examples:
      >>> import math
      >>> round(float(importance_ratio(math.log(0.3), math.log(0.6))), 4)
      0.5
    """
    log_pi_a, log_mu_a = jnp.asarray(log_pi_a), jnp.asarray(log_mu_a)
    chex.assert_rank([log_pi_a, log_mu_a], 0)
    return jnp.exp(log_pi_a - log_mu_a)


def policy_gradient_loss(log_pi_a: ArrayLike, adv: ArrayLike) -> Array:
    r"""Return the on-policy (REINFORCE/A2C) loss :math:`-A \log\pi(a|s)`, ``[]``.

    The advantage is treated as a constant (no gradient flows into it).

    Args:
      log_pi_a: ``[]`` log-probability of the action under the learnt policy.
      adv: ``[]`` advantage of the action.

    Returns:
      ``[]`` the loss; its gradient is :math:`-A \nabla \log\pi(a|s)`.

    References:
      Williams, "Simple statistical gradient-following algorithms", 1992;
      Mnih et al., "Asynchronous methods for deep RL", ICML 2016.

    Examples:
      >>> float(policy_gradient_loss(-2.0, 0.5))
      1.0
    """
    log_pi_a, adv = jnp.asarray(log_pi_a), jnp.asarray(adv)
    chex.assert_rank([log_pi_a, adv], 0)
    return -jax.lax.stop_gradient(adv) * log_pi_a


def clipped_surrogate_loss(
    log_pi_a: ArrayLike, log_mu_a: ArrayLike, adv: ArrayLike, epsilon: ArrayLike
) -> Array:
    r"""Return PPO's clipped surrogate loss for one action, ``[]``.

    .. math::
       L = -\min\big(\rho A,\ \mathrm{clip}(\rho, 1 - \epsilon, 1 + \epsilon) A\big),
       \qquad \rho = \pi(a|s) / \mu(a|s).

    The gradient vanishes once the ratio has left the trust region in the
    direction the advantage favours (``rho > 1 + eps`` with ``A > 0``,
    ``rho < 1 - eps`` with ``A < 0``); at ``rho = 1`` it equals the
    policy-gradient loss's gradient. The advantage is a constant.

    Args:
      log_pi_a: ``[]`` log-probability of the action under the learnt policy.
      log_mu_a: ``[]`` log-probability under the behaviour (pre-update) policy.
      adv: ``[]`` advantage of the action.
      epsilon: ``[]`` clipping radius ε >= 0 (may be traced).

    Returns:
      ``[]`` the loss (the negated clipped objective).

    References:
      Schulman et al., "Proximal policy optimization algorithms",
      arXiv:1707.06347, 2017, eq. (7).

    Examples:
      >>> import math
      >>> round(float(clipped_surrogate_loss(math.log(1.5), 0.0, 2.0, 0.2)), 4)
      -2.4
      >>> round(float(clipped_surrogate_loss(math.log(1.5), 0.0, -2.0, 0.2)), 4)
      3.0
    """
    log_pi_a, log_mu_a = jnp.asarray(log_pi_a), jnp.asarray(log_mu_a)
    adv, epsilon = jnp.asarray(adv), jnp.asarray(epsilon)
    chex.assert_rank([log_pi_a, log_mu_a, adv, epsilon], 0)
    adv = jax.lax.stop_gradient(adv)
    rho = importance_ratio(log_pi_a, log_mu_a)
    clipped = jnp.clip(rho, 1.0 - epsilon, 1.0 + epsilon)
    return -jnp.minimum(rho * adv, clipped * adv)


def clipped_value_loss(
    v_tm1: ArrayLike, v_old: ArrayLike, target: ArrayLike, epsilon: ArrayLike
) -> Array:
    r"""Return the (optionally clipped) squared value error, ``[]``.

    .. math::
       L = \tfrac12 \max\big((v - G)^2,\
           (v_{old} + \mathrm{clip}(v - v_{old}, -\epsilon, \epsilon) - G)^2\big).

    ``epsilon = inf`` gives the plain :math:`\tfrac12 (v - G)^2`. The target
    ``G`` and ``v_old`` are constants.

    Args:
      v_tm1: ``[]`` value prediction being learnt.
      v_old: ``[]`` prediction of the value function that collected the data.
      target: ``[]`` regression target (e.g. a λ-return).
      epsilon: ``[]`` clipping radius (``inf`` disables clipping; may be traced).

    Returns:
      ``[]`` the loss.

    References:
      Dhariwal et al., "OpenAI Baselines" PPO2 (2017); Andrychowicz et al.,
      "What matters in on-policy RL?", ICLR 2021, sec. 3.1 (value clipping).

    Examples:
      >>> float(clipped_value_loss(3.0, 1.0, 2.0, float("inf")))
      0.5
      >>> float(clipped_value_loss(3.0, 1.0, 4.0, 0.5))  # max(1, (1.5 - 4)^2) / 2
      3.125
    """
    v_tm1, v_old = jnp.asarray(v_tm1), jnp.asarray(v_old)
    target, epsilon = jnp.asarray(target), jnp.asarray(epsilon)
    chex.assert_rank([v_tm1, v_old, target, epsilon], 0)
    v_old, target = jax.lax.stop_gradient(v_old), jax.lax.stop_gradient(target)
    v_clipped = v_old + jnp.clip(v_tm1 - v_old, -epsilon, epsilon)
    return 0.5 * jnp.maximum((v_tm1 - target) ** 2, (v_clipped - target) ** 2)


def approx_kl(log_pi_a: ArrayLike, log_mu_a: ArrayLike) -> Array:
    r"""Return the sample estimate :math:`(\rho - 1) - \log\rho` of KL(μ‖π), ``[]``.

    With ``a ~ mu`` its expectation is :math:`\mathrm{KL}(\mu \| \pi)`; every
    sample is non-negative (unlike :math:`-\log\rho`), so it has low variance.

    Args:
      log_pi_a: ``[]`` log-probability under the learnt policy.
      log_mu_a: ``[]`` log-probability under the behaviour policy.

    Returns:
      ``[]`` the estimate (>= 0).

    References:
      Schulman, "Approximating KL divergence" (2020), the ``k3`` estimator.

    Examples:
      >>> float(approx_kl(0.0, 0.0))
      0.0
    """
    log_ratio = jnp.asarray(log_pi_a) - jnp.asarray(log_mu_a)
    chex.assert_rank(log_ratio, 0)
    return jnp.expm1(log_ratio) - log_ratio
