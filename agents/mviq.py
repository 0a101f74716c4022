r"""MVI(q)-DQN: Munchausen DQN with the Tsallis q-exponential policy.

MVI(q) (Zhu, Chen, Schlegel and White, NeurIPS 2023; ALGORITHMS.md §2.4)
replaces both logarithms of M-DQN (:mod:`jaxrl.agents.mvi`) by the q-logarithm
:math:`\ln_q x = (x^{q-1} - 1)/(q - 1)` and the softmax by the q-exponential
policy :math:`\bar\pi = \exp_q(\bar q/\tau - \psi(\bar q/\tau))` of the
*target* network :math:`\bar q`:

.. math::
   y = r_t + \alpha\,[\tau \ln_q \bar\pi(a_{t-1}|s_{t-1})]_{l_0}^{0}
       + \gamma_t \sum_b \bar\pi(b|s_t)
         \big(\bar q(s_t, b) - \tau \ln_q \bar\pi(b|s_t)\big).

``q = 1`` is M-DQN (the losses agree to float rounding); ``q = 2`` makes
:math:`\bar\pi` the sparsemax of :math:`\bar q/\tau`, and for ``q > 1`` the
bonus lies in :math:`[\alpha\max(l_0, -\tau/(q-1)), 0]`. The per-transition
target is :func:`jaxrl.ops.tsallis.mviq_q_learning`, vmapped over the batch;
``normalizer_iters`` (static) is the number of bisection steps for the
normalizer :math:`\psi` when ``q`` is neither 1 nor 2 (closed forms there).

Temperature convention for ``q > 1`` (docs/decisions.md, D17): the presets
(:func:`cartpole_config`, :func:`acrobot_config`, :func:`minatar_config` and
the ``mvi-minatar`` table) keep M-DQN's α = 0.9 and l0 = -1 but set
:math:`\tau_q = \max(\tau_1, (q - 1)|l_0|)` (:func:`bonus_matched_tau`; q = 2:
τ = 1), the temperature at which the q-logarithm's own floor
:math:`-\tau/(q-1)` equals M-DQN's clip l0, so the bonus spans M-DQN's range
:math:`[\alpha l_0, 0]`. At M-DQN's τ_1 = 0.03 the q = 2 bonus would lie in
:math:`[-0.027, 0]` and the target would be nearly DQN's. The paper's own τ
for q ≠ 1 could not be checked (ALGORITHMS.md §2.4). ``q = 1`` keeps τ_1 =
0.03 exactly; a bare :class:`Config` keeps M-DQN's τ = 0.03 whatever ``q``.

Everything else is :mod:`jaxrl.agents.mvi` (and the shared DQN loop):
``interact="stochastic"`` samples from the q-exponential policy of the online
network. :class:`Config` is :class:`jaxrl.agents.mvi.Config` plus ``q`` (traced, so
a vmap sweeps it) and ``normalizer_iters``.

References:
  Zhu, Chen, Schlegel and White, "Generalized Munchausen Reinforcement
  Learning using Tsallis KL Divergence", NeurIPS 2023.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from flax import struct

from jaxrl.agents import _value_loop, mvi
from jaxrl.agents._value_loop import State, epsilon_at
from jaxrl.config import check_range, static
from jaxrl.errors import ConfigError
from jaxrl.ops.tsallis import mviq_bonus, mviq_q_learning, tsallis_policy
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "Config",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "epsilon_at",
    "bonus_matched_tau",
    "cartpole_config",
    "acrobot_config",
    "minatar_config",
]


@struct.dataclass
class Config(mvi.Config):
    """MVI(q)-DQN hyperparameters: every :class:`jaxrl.agents.mvi.Config` field plus these.

    Attributes:
      normalizer_iters: static bisection steps of the policy normalizer ψ
        (used only when ``q`` is not 1 or 2).
      q: entropic index ``q >= 1`` (1: M-DQN, 2: sparsemax policy); traced.
    """

    normalizer_iters: int = static(default=50)
    q: float = 2.0  # q, entropic index of the Tsallis entropy / q-logarithm

    def validate(self) -> None:
        """Raise :class:`~jaxrl.errors.ConfigError` naming the first invalid field."""
        super().validate()
        iters = self.normalizer_iters
        if not isinstance(iters, int | np.integer) or iters < 1:
            raise ConfigError(
                "normalizer_iters must be a positive integer, "
                f"got {self.normalizer_iters!r}"
            )
        check_range("q", self.q, 1.0)


def bonus_matched_tau(q: float, l0: float = -1.0, tau_shannon: float = 0.03) -> float:
    r"""Return the presets' temperature for entropic index ``q`` (D17).

    :math:`\tau_q = \max(\tau_1, (q - 1)|l_0|)`: for ``q > 1`` the scaled
    q-log-policy lies in :math:`[-\tau/(q-1), 0]`, so at :math:`\tau_q` its
    floor equals M-DQN's clip ``l0`` and the Munchausen bonus
    :math:`\alpha[\tau\ln_q\bar\pi]_{l_0}^0` can reach :math:`\alpha l_0`
    as at ``q = 1`` (the clip is then just inactive). Never below M-DQN's
    :math:`\tau_1` (``tau_shannon``), which ``q = 1`` keeps exactly; with no
    clip (``l0 = -inf``) there is no floor to match and :math:`\tau_1` is kept.

    Args:
      q: entropic index ``>= 1`` (a Python number: presets are built eagerly).
      l0: M-DQN's clip of the scaled log-policy, ``<= 0``.
      tau_shannon: the ``q = 1`` temperature (M-DQN's 0.03).

    Returns:
      τ_q (``q = 2, l0 = -1``: 1.0).

    Raises:
      ConfigError: if ``q < 1``, ``l0 > 0`` or ``tau_shannon < 0``.
    """
    check_range("q", q, 1.0)
    check_range("l0", l0, high=0.0, allow_inf=True)
    check_range("tau_shannon", tau_shannon, 0.0)
    if not np.isfinite(l0):
        return float(tau_shannon)
    return float(max(tau_shannon, (q - 1.0) * abs(l0)))


def _from_mvi(config: mvi.Config, overrides: dict[str, Any]) -> Config:
    """M-DQN's preset with q = 2 and, unless overridden, τ by :func:`bonus_matched_tau`."""
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    merged = {"q": 2.0, **overrides}
    if "tau" not in overrides:
        l0 = merged.get("l0", config.l0)
        merged["tau"] = bonus_matched_tau(merged["q"], l0, config.tau)
    return Config(**fields).replace(**merged)


def cartpole_config(**overrides: Any) -> Config:
    """Return the MVI(q) preset for ``CartPole-v1``: M-DQN's, q = 2, τ = 1 (D17)."""
    return _from_mvi(mvi.cartpole_config(), overrides)


def acrobot_config(**overrides: Any) -> Config:
    """Return the MVI(q) preset for ``Acrobot-v1``: M-DQN's, q = 2, τ = 1 (D17)."""
    return _from_mvi(mvi.acrobot_config(), overrides)


def minatar_config(**overrides: Any) -> Config:
    """Return the MVI(q) preset for the MinAtar games: M-DQN's, q = 2, τ = 1 (D17)."""
    return _from_mvi(mvi.minatar_config(), overrides)


# ----------------------------------------------------------------------------- contract


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise networks, optimiser, replay buffer and ``num_envs`` environments.

    Args:
      key: a typed PRNG key (the only place keys enter).
      env: a gymnax environment with discrete actions.
      env_params: its parameters.
      config: the config.

    Returns:
      The initial :class:`State`.
    """
    return _value_loop.init(key, env, env_params, config)


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
    epsilon: Array | float | None = None,
) -> Array:
    """Choose an action for ONE observation (see :func:`jaxrl.agents.mvi.act`).

    ``interact="stochastic"`` samples from the q-exponential policy
    :func:`jaxrl.ops.tsallis.tsallis_policy` of ``Q(obs, .)``.

    Args:
      params: Q-network parameters.
      obs: ``[*obs_shape]`` one observation.
      key: PRNG key (unused when ``greedy``).
      config: the config.
      greedy: static switch: return ``argmax_a Q(obs, a)``.
      epsilon: ``[]`` ε for ``interact="greedy"`` (``None``: ``eps_end``).

    Returns:
      ``[]`` int32 action.
    """
    policy = lambda qv: tsallis_policy(
        qv, config.tau, config.q, config.normalizer_iters
    )
    return mvi.act_with(
        params, obs, key, config, policy, greedy=greedy, epsilon=epsilon
    )


def loss(
    params: Params, target_params: Params, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the mean Huber MVI(q) TD error of a batch.

    ``td_b = r_b + alpha * clip(tau * ln_q pi_bar(a_b | obs_b), l0, 0)
    + gamma * (1 - terminated_b) * sum_a pi_bar(a | next_obs_b)
    (q_bar(next_obs_b, a) - tau * ln_q pi_bar(a | next_obs_b)) - q(obs_b, a_b)``
    with :math:`\bar\pi` the q-exponential policy of the target network
    (:func:`jaxrl.ops.tsallis.mviq_q_learning`).

    Args:
      params: online parameters (differentiated).
      target_params: target parameters (no gradient).
      batch: ``Transition[B]``.
      config: the config.

    Returns:
      ``(loss, metrics)`` with ``"loss/td"``, ``"q/mean"``, ``"td/abs"``,
      ``"munchausen/bonus"``.
    """
    tau, alpha, q, l0 = config.tau, config.alpha, config.q, config.l0
    iters = config.normalizer_iters

    def td_fn(q_tm1, a_tm1, r_t, discount_t, q_tm1_target, q_t_target):
        return mviq_q_learning(
            q_tm1,
            a_tm1,
            r_t,
            discount_t,
            q_tm1_target,
            q_t_target,
            tau,
            alpha,
            q,
            l0,
            iters,
        )

    def bonus_fn(q_tm1_target, a_tm1):
        return mviq_bonus(q_tm1_target, a_tm1, tau, alpha, q, l0, iters)

    return mvi.loss_with(params, target_params, batch, config, td_fn, bonus_fn)


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one gradient step of :func:`loss` on ``data``, then maybe move the target.

    Args:
      state: the current state.
      data: ``Transition[B]`` sampled batch.
      config: the config.

    Returns:
      ``(state, metrics)``; ``state.num_updates`` is incremented.
    """
    return _value_loop.update(state, data, config, loss_fn=loss)


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk."""
    return _value_loop.make_run(config, env, env_params, loss_fn=loss, act_fn=act)


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` chunks.

    ``jax.jit(jax.vmap(train))(keys)`` for seeds; a ``vmap`` over a stacked
    config sweeps ``q``, α, τ, ... in one compiled program.
    """
    return _value_loop.make_train(config, env, env_params, loss_fn=loss, act_fn=act)
