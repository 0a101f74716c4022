r"""Soft actor-critic operators: squashed Gaussian policies, soft targets (unbatched).

A SAC policy draws a pre-squash action :math:`u \sim \mathcal N(\mu, \sigma^2)`
(diagonal, ``[d]``), squashes it to :math:`y = \tanh u \in (-1, 1)^d` and maps
``y`` affinely onto the environment's box ``[low, high]``. By the change of
variables (Haarnoja et al. 2018, appendix C, eq. 21) the log-density of ``y`` is

.. math:: \log \pi(y) = \log \mathcal N(u; \mu, \sigma^2)
          - \textstyle\sum_i \log (1 - \tanh^2 u_i),

and ``log(1 - tanh² u) = 2 (log 2 - u - softplus(-2u))`` is used because it stays
finite where ``tanh u`` rounds to ±1. Entropies and the temperature target are
measured in the normalised space of ``y`` (the affine map only adds the constant
``-sum log((high - low) / 2)``).

The soft Bellman target of clipped double-Q learning (Fujimoto et al. 2018;
Haarnoja et al. 2018, eqs. 3 and 7) with twin target critics is

.. math:: y_t = r_t + \gamma_t \big(\min_k \bar Q_k(s_t, a_t')
          - \alpha \log \pi(a_t'|s_t)\big), \quad a_t' \sim \pi(\cdot|s_t),

with ``discount_t = gamma * (1 - terminated)`` (bootstrap through truncation
only). The policy minimises ``alpha * log pi(a|s) - min_k Q_k(s, a)`` with
``a`` reparameterised, and the temperature minimises
``-log(alpha) * (log pi(a|s) + target_entropy)`` (Haarnoja et al. 2018b, eq. 18,
in the log-temperature parameterisation).

Every function takes unbatched arguments; agents ``jax.vmap`` them over a batch.

References:
  Haarnoja, Zhou, Abbeel and Levine, "Soft Actor-Critic: Off-Policy Maximum
  Entropy Deep RL with a Stochastic Actor", ICML 2018. Haarnoja et al., "Soft
  Actor-Critic Algorithms and Applications", arXiv:1812.05905, 2018 (2018b).
  Fujimoto, van Hoof and Meger, "Addressing Function Approximation Error in
  Actor-Critic Methods", ICML 2018.
"""

from __future__ import annotations

import math
from typing import Any

import chex
import jax
import jax.numpy as jnp

from jaxrl.ops._checks import check_tau, check_unit
from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = [
    "gaussian_log_prob",
    "tanh_log_det_jacobian",
    "tanh_gaussian_log_prob",
    "sample_tanh_gaussian",
    "scale_action",
    "unscale_action",
    "soft_q_target",
    "soft_policy_loss",
    "temperature_loss",
    "polyak_update",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def _f32(*xs: ArrayLike) -> tuple[Array, ...]:
    return tuple(jnp.asarray(x, jnp.float32) for x in xs)


def gaussian_log_prob(x: ArrayLike, mean: ArrayLike, log_std: ArrayLike) -> Array:
    r"""Return the log-density of a diagonal Gaussian, summed over the ``d`` axes.

    :math:`\log \mathcal N(x; \mu, \sigma^2) = -\sum_i \big(\tfrac12 ((x_i -
    \mu_i)/\sigma_i)^2 + \log \sigma_i + \tfrac12 \log 2\pi\big)`.

    Args:
      x: ``[d]`` the point.
      mean: ``[d]`` the mean :math:`\mu`.
      log_std: ``[d]`` :math:`\log \sigma`.

    Returns:
      ``[]`` float32 log-density.

    Examples:
      >>> import jax.numpy as jnp
      >>> round(float(gaussian_log_prob(jnp.zeros(1), jnp.zeros(1), jnp.zeros(1))), 4)
      -0.9189
    """
    x, mean, log_std = _f32(x, mean, log_std)
    chex.assert_rank([x, mean, log_std], 1)
    chex.assert_equal_shape([x, mean, log_std])
    z = (x - mean) * jnp.exp(-log_std)
    return -jnp.sum(0.5 * z**2 + log_std + 0.5 * _LOG_2PI)


def tanh_log_det_jacobian(u: ArrayLike) -> Array:
    r"""Return :math:`\sum_i \log(1 - \tanh^2 u_i)`, the log-Jacobian of ``tanh``.

    Computed as ``sum 2 (log 2 - u - softplus(-2u))``, exact and finite for
    any ``u`` (``1 - tanh(u)**2`` underflows to 0 for ``|u| > 9`` in float32).

    Args:
      u: ``[d]`` pre-squash action.

    Returns:
      ``[]`` float32.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(tanh_log_det_jacobian(jnp.zeros(2)))
      0.0
    """
    (u,) = _f32(u)
    chex.assert_rank(u, 1)
    return jnp.sum(2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u)))


def tanh_gaussian_log_prob(u: ArrayLike, mean: ArrayLike, log_std: ArrayLike) -> Array:
    r"""Return :math:`\log \pi(\tanh u)` of the tanh-squashed diagonal Gaussian.

    The density of :math:`y = \tanh u`, :math:`u \sim \mathcal N(\mu,
    \sigma^2)`, at the point given by its pre-image ``u`` (Haarnoja et al.
    2018, eq. 21): :func:`gaussian_log_prob` minus
    :func:`tanh_log_det_jacobian`. Taking ``u`` rather than ``y`` avoids the
    ill-conditioned ``atanh`` near ±1.

    Args:
      u: ``[d]`` pre-squash action.
      mean: ``[d]`` Gaussian mean :math:`\mu`.
      log_std: ``[d]`` :math:`\log \sigma`.

    Returns:
      ``[]`` float32 log-density of ``tanh(u)`` on ``(-1, 1)^d``.

    References:
      Haarnoja et al., ICML 2018, appendix C, eq. 21.

    Examples:
      >>> import jax.numpy as jnp
      >>> z = jnp.zeros(1)  # at the centre tanh has slope 1
      >>> bool(tanh_gaussian_log_prob(z, z, z) == gaussian_log_prob(z, z, z))
      True
    """
    return gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u)


def sample_tanh_gaussian(
    key: PRNGKey, mean: ArrayLike, log_std: ArrayLike
) -> tuple[Array, Array]:
    r"""Draw ``y = tanh(mean + std * eps)`` (reparameterised) and its log-density.

    Gradients flow to ``mean`` and ``log_std`` through the sample (the
    reparameterisation trick, Haarnoja et al. 2018, eq. 11).

    Args:
      key: typed PRNG key (consumed).
      mean: ``[d]`` Gaussian mean.
      log_std: ``[d]`` log standard deviation.

    Returns:
      ``(y [d], log_prob [])``: the squashed action in ``(-1, 1)^d`` and
      :func:`tanh_gaussian_log_prob` at it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y, logp = sample_tanh_gaussian(jax.random.key(0), jnp.zeros(2), jnp.zeros(2))
      >>> y.shape, logp.shape, bool(jnp.all(jnp.abs(y) < 1))
      ((2,), (), True)
    """
    mean, log_std = _f32(mean, log_std)
    chex.assert_rank([mean, log_std], 1)
    chex.assert_equal_shape([mean, log_std])
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, jnp.float32)
    return jnp.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)


def scale_action(y: ArrayLike, low: ArrayLike, high: ArrayLike) -> Array:
    """Map ``y`` in ``[-1, 1]^d`` affinely onto the box ``[low, high]``.

    ``a = low + (y + 1) (high - low) / 2``.

    Args:
      y: ``[d]`` normalised action.
      low: ``[d]`` (or ``[]``) lower bounds.
      high: ``[d]`` (or ``[]``) upper bounds.

    Returns:
      ``[d]`` float32 environment action.

    Examples:
      >>> import jax.numpy as jnp
      >>> scale_action(jnp.array([-1.0, 0.0, 1.0]), -2.0, 2.0).tolist()
      [-2.0, 0.0, 2.0]
    """
    y, low, high = _f32(y, low, high)
    return low + (y + 1.0) * (0.5 * (high - low))


def unscale_action(a: ArrayLike, low: ArrayLike, high: ArrayLike) -> Array:
    """Map an environment action on ``[low, high]`` back to ``[-1, 1]^d``.

    The inverse of :func:`scale_action`; the result is clipped to ``[-1, 1]``
    (stored actions from other policies may lie on or outside the bounds).

    Examples:
      >>> import jax.numpy as jnp
      >>> unscale_action(jnp.array([-2.0, 1.0, 3.0]), -2.0, 2.0).tolist()
      [-1.0, 0.5, 1.0]
    """
    a, low, high = _f32(a, low, high)
    return jnp.clip(2.0 * (a - low) / (high - low) - 1.0, -1.0, 1.0)


def soft_q_target(
    r_t: ArrayLike,
    discount_t: ArrayLike,
    q_t_target: ArrayLike,
    log_pi_t: ArrayLike,
    alpha: ArrayLike,
) -> Array:
    r"""Return the clipped double-Q soft Bellman target (SAC).

    :math:`y = r_t + \gamma_t (\min_k \bar Q_k - \alpha \log\pi)`.

    Args:
      r_t: ``[]`` reward.
      discount_t: ``[]`` ``gamma * (1 - terminated)`` (0 at a true end: no
        bootstrap; truncation keeps ``gamma``).
      q_t_target: ``[K]`` target critics at ``(s_t, a_t')``, ``a_t' ~ pi(.|s_t)``
        (``K = 2``: twin critics; ``K = 1``: a single critic).
      log_pi_t: ``[]`` ``log pi(a_t'|s_t)``.
      alpha: ``[]`` entropy temperature :math:`\alpha \ge 0`.

    Returns:
      ``[]`` float32 target (no gradient is stopped here; the caller stops it).

    References:
      Haarnoja et al. 2018, eqs. 3 and 7; Fujimoto et al. 2018, eq. 10.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(soft_q_target(1.0, 0.5, jnp.array([4.0, 2.0]), -1.0, 0.5))
      2.25
    """
    check_tau(alpha, "alpha")
    r_t, discount_t, q_t_target, log_pi_t, alpha = _f32(
        r_t, discount_t, q_t_target, log_pi_t, alpha
    )
    chex.assert_rank([r_t, discount_t, q_t_target, log_pi_t, alpha], [0, 0, 1, 0, 0])
    return r_t + discount_t * (jnp.min(q_t_target) - alpha * log_pi_t)


def soft_policy_loss(q: ArrayLike, log_pi: ArrayLike, alpha: ArrayLike) -> Array:
    r"""Return the SAC policy loss :math:`\alpha \log \pi(a|s) - \min_k Q_k(s, a)`.

    ``a`` is a reparameterised sample, so the gradient reaches the policy
    through both terms (Haarnoja et al. 2018, eq. 12 with twin critics).

    Args:
      q: ``[K]`` critics at ``(s, a)``.
      log_pi: ``[]`` ``log pi(a|s)``.
      alpha: ``[]`` temperature.

    Returns:
      ``[]`` float32.

    Examples:
      >>> import jax.numpy as jnp
      >>> float(soft_policy_loss(jnp.array([3.0, 1.0]), -2.0, 0.5))
      -2.0
    """
    check_tau(alpha, "alpha")
    q, log_pi, alpha = _f32(q, log_pi, alpha)
    chex.assert_rank([q, log_pi, alpha], [1, 0, 0])
    return alpha * log_pi - jnp.min(q)


def temperature_loss(
    log_alpha: ArrayLike, log_pi: ArrayLike, target_entropy: ArrayLike
) -> Array:
    r"""Return the temperature loss :math:`-\log\alpha\,(\log\pi + \bar{\mathcal H})`.

    Its gradient in :math:`\log\alpha` is ``-(log_pi + target_entropy)``: the
    temperature rises while the policy's entropy ``-log_pi`` is below the
    target :math:`\bar{\mathcal H}` (usually ``-d``) and falls above it. No
    gradient flows into ``log_pi``.

    Args:
      log_alpha: ``[]`` log temperature (the optimised variable).
      log_pi: ``[]`` ``log pi(a|s)`` of a fresh policy sample.
      target_entropy: ``[]`` :math:`\bar{\mathcal H}`.

    Returns:
      ``[]`` float32.

    References:
      Haarnoja et al. 2018b, eq. 18 (parameterised by log alpha).

    Examples:
      >>> float(temperature_loss(0.5, -1.0, -2.0))
      1.5
    """
    log_alpha, log_pi, target_entropy = _f32(log_alpha, log_pi, target_entropy)
    chex.assert_rank([log_alpha, log_pi, target_entropy], 0)
    return -log_alpha * jax.lax.stop_gradient(log_pi + target_entropy)


def polyak_update(target: Any, online: Any, tau: ArrayLike) -> Any:
    r"""Return the Polyak average :math:`\tau \theta + (1 - \tau) \bar\theta` leaf-wise.

    Args:
      target: pytree of target parameters :math:`\bar\theta`.
      online: pytree of online parameters :math:`\theta` (same structure).
      tau: ``[]`` rate :math:`\tau \in [0, 1]` (1: copy; 0: keep).

    Returns:
      The new target pytree (dtypes of ``target`` kept).

    References:
      Lillicrap et al., "Continuous control with deep RL", ICLR 2016.

    Examples:
      >>> import jax.numpy as jnp
      >>> polyak_update({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, 0.25)["w"].tolist()
      [0.25, 0.25]
    """
    check_unit("tau", tau)
    chex.assert_trees_all_equal_structs(target, online)
    tau = jnp.asarray(tau, jnp.float32)
    chex.assert_rank(tau, 0)
    return jax.tree.map(
        lambda t, p: (tau * p + (1.0 - tau) * t).astype(jnp.result_type(t)),
        target,
        online,
    )
