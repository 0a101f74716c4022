r"""Deep constrained agents: Lagrangian GDA and ReLOAD on top of M-DQN.

The problem is the constrained MDP of :mod:`envs.constrained`: maximise the
return subject to the per-episode cost budget

.. math:: J_c(\pi) = \mathbb{E}_\pi\Big[\sum_t \gamma_c^t c_t\Big] \le b,

with :math:`b` (``cost_limit``) and :math:`\gamma_c` (``cost_gamma``) read from the
environment parameters (:func:`envs.constrained.budget_from_params`), so a grid
of budgets is a ``vmap`` over the params. The saddle problem
:math:`\max_\pi \min_{\lambda \ge 0} J_r(\pi) - \lambda (J_c(\pi) - b)` is played
by two learners:

* **the policy player** is the base value agent (static ``base_agent``;
  ``"mdqn"``: :mod:`agents.mvi`, whose M-DQN loss also covers DQN-style
  targets with ``alpha = tau = 0``) acting on the Lagrangian action values
  :math:`Q_\lambda = Q_r - \lambda Q_c` (policy values are linear in the
  reward, so :math:`Q_\lambda` is the value of the penalised reward
  :math:`r - \lambda c`, :func:`jaxrl.ops.lagrangian.lagrangian_reward`). The
  static ``critic`` chooses how :math:`Q_\lambda` is learned (below). The
  multiplier is a constant of the critic's loss (no gradient flows into it),
  so the critic always regresses onto the current Lagrangian. The critics
  discount the cost with the agent's ``gamma``; the budget is on the
  environment's episode cost (the multiplier's signal below).
* **the multiplier player** uses a Monte Carlo estimate of :math:`J_c`: every
  iteration, the mean :math:`\hat J_c` of the discounted episode costs
  :math:`\sum_t \gamma_c^t c_t` of the episodes that ended in that iteration
  (summed per environment from ``info["discounted_cost"]``) gives the violation
  :math:`g_k = \hat J_c - b`, and (:func:`multiplier_update`)

  - ``method="lagrangian"`` (projected GDA):
    :math:`\lambda_{k+1} = [\lambda_k + \eta_\lambda g_k]_0^{\lambda_{max}}`;
  - ``method="reload"`` (ReLOAD's optimistic step, Moskovitz et al. ICML 2023):
    :math:`\lambda_{k+1} =
    [\lambda_k + \eta_\lambda (2 g_k - g_{k-1})]_0^{\lambda_{max}}`
    with :math:`g_{-1} = g_0` (:func:`jaxrl.ops.lagrangian.optimistic_gradient`),
    where :math:`g_{k-1}` is the previous *observed* violation.

  Iterations in which no episode ends leave the multiplier (and ReLOAD's memory)
  unchanged. ``eta_lambda``, ``lambda0`` and ``lambda_max`` are traced: a sweep
  over seeds x multiplier step sizes is one jitted ``vmap``.

Critics (static ``Config.critic``, :data:`CRITICS`). Notation: :math:`q` the
online network, :math:`\bar q` the target network,
:math:`\gamma_t = \gamma (1 - \text{terminated}_t)`, :math:`(\alpha, \tau, l_0)`
the base config's Munchausen parameters, :math:`[x]_{l_0}^0` clipping,
:math:`\mathrm{h}` the Huber loss with ``huber_delta``, means over the batch.

* ``"penalised"`` (default): ONE critic :math:`q = Q_\lambda` with the base
  agent's M-DQN loss on the penalised reward (:func:`penalised_batch`),
  :math:`\bar\pi = \mathrm{softmax}(\bar q/\tau)`,

  .. math::
     y = r_t - \lambda c_t + \alpha[\tau\ln\bar\pi(a_{t-1}|s_{t-1})]_{l_0}^0
         + \gamma_t \textstyle\sum_b \bar\pi(b|s_t)
           \big(\bar q(s_t,b) - \tau\ln\bar\pi(b|s_t)\big),
     \qquad L = \mathrm{mean}\,\mathrm{h}(y - q(s_{t-1}, a_{t-1})).

  The base agent's loss and acting are untouched, which gives the exact
  identity "``lambda = 0`` is the base agent" (tested bitwise).
* ``"separate"``: a reward critic :math:`q_r` and a cost critic :math:`q_c`,
  the two heads of ONE network (shared torso, ``2 A`` outputs, action-major:
  output ``2a`` is :math:`q_r(s, a)`, ``2a + 1`` is :math:`q_c(s, a)`; the
  target network likewise), each regressed onto its own target under the
  agent's current soft-greedy policy
  :math:`\bar\pi = \mathrm{softmax}(\bar q_\lambda/\tau)`,
  :math:`\bar q_\lambda = \bar q_r - \lambda \bar q_c`:

  .. math::
     y_r &= r_t + \alpha[\tau\ln\bar\pi(a_{t-1}|s_{t-1})]_{l_0}^0
           + \gamma_t \textstyle\sum_b \bar\pi(b|s_t)
             \big(\bar q_r(s_t,b) - \tau\ln\bar\pi(b|s_t)\big),\\
     y_c &= c_t + \gamma_t \textstyle\sum_b \bar\pi(b|s_t)\,\bar q_c(s_t,b),\\
     L &= \mathrm{mean}\,\mathrm{h}(y_r - q_r(s_{t-1},a_{t-1}))
        + \mathrm{mean}\,\mathrm{h}(y_c - q_c(s_{t-1},a_{t-1})).

  The Munchausen bonus and the entropy term are on the reward critic; the
  cost critic is plain (expected-SARSA) policy evaluation of :math:`\bar\pi`,
  so at a fixed policy its fixed point is the policy's cost value
  :math:`Q_c^{\bar\pi}` (tested against exact policy evaluation). Because
  :math:`y_r - \lambda y_c` is the penalised critic's target on
  :math:`\bar q_\lambda`, the two choices regress :math:`q_\lambda` towards the
  same target; the separate heads also give the cost value itself, keep the
  cost's scale out of the reward head's targets when :math:`\lambda` moves
  (the heads do not have to re-learn when the multiplier changes), at the
  price of a shared torso trained on both losses. The policy acts with the
  base agent's rule (:func:`act`) on :math:`q_\lambda = q_r - \lambda q_c`; at
  ``tau = 0`` :math:`\bar\pi` is uniform over the maximisers of
  :math:`\bar q_\lambda`.

Data and loop: the replay buffer stores ``Transition.extras["cost"]`` (the loss
needs it; a batch without it fails with ``KeyError`` at trace time). The
iteration is :mod:`agents._value_loop`'s, through its
:class:`~agents._value_loop.Extension` hook: the multiplier state lives next to
the base state, ``act``/``loss``/evaluation receive :class:`Params` ``(q, lam)``,
and after every iteration the multiplier steps on the collected costs. The key
splits are the base agent's, so with ``eta_lambda = lambda0 = 0`` a whole run
of the penalised critic equals :mod:`agents.mvi`'s bitwise.

Contract. :class:`Config` nests the base agent's config (``config.base``;
override it with dotted keys, ``base.lr=1e-3``) and :class:`State` nests the base
state (``state.base``) next to the multiplier state; ``state.params`` is
:class:`Params` ``(q, lam)`` (the network and the multiplier), which is what
:func:`act` and :func:`loss` take; ``state.key`` is the base state's key.

Metrics (besides the base agent's): ``"lagrange/lambda"`` (after the
iteration), ``"lagrange/violation"`` (:math:`g_k`, NaN when no episode ended),
``"episode/cost"`` (mean undiscounted cost of the episodes ended, NaN if none),
``"episode/discounted_cost"`` (:math:`\hat J_c`), ``"loss/penalised_reward"``
(batch mean of :math:`r - \lambda c`), and at the end of each chunk
``"eval/return"``, ``"eval/length"``, ``"eval/cost"`` of the greedy policy. The
separate critics report ``"loss/td"``, ``"q/mean"``, ``"td/abs"`` for the reward
critic and ``"loss/cost_td"``, ``"q_cost/mean"``, ``"td_cost/abs"`` for the cost
critic (the loss is their sum).

Usage::

    env, env_params = envs.make("CartPole-Constrained-v0")
    config = constrained.Config(method="reload", base=mvi.cartpole_config())
    train = jax.jit(jax.vmap(constrained.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from agents import _value_loop, mvi
from envs.constrained import budget_from_params
from jaxrl import config as config_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.ops import lagrangian
from jaxrl.ops.bellman import expected_sarsa
from jaxrl.ops.losses import huber_loss
from jaxrl.ops.regularized import munchausen_bonus, scaled_log_softmax, softmax_policy
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics, PRNGKey

__all__ = [
    "METHODS",
    "BASE_AGENTS",
    "CRITICS",
    "Config",
    "Params",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "multiplier_update",
    "penalised_batch",
    "make_train",
    "make_run",
    "cartpole_config",
]

METHODS = ("lagrangian", "reload")
"""``Config.method``: projected GDA or optimistic (ReLOAD) multiplier steps."""

BASE_AGENTS = ("mdqn",)
"""``Config.base_agent``: the policy player (``"mdqn"``: :mod:`agents.mvi`)."""

CRITICS = ("penalised", "separate")
"""``Config.critic``: one critic of ``r - lambda c``, or reward and cost critics."""

_INFO_KEYS = ("cost", "discounted_cost")


@struct.dataclass
class Config:
    """Constrained-agent configuration: the base agent's config plus the multiplier.

    Attributes:
      method: static, ``"lagrangian"`` or ``"reload"`` (:data:`METHODS`).
      base_agent: static, the policy player (:data:`BASE_AGENTS`).
      critic: static, ``"penalised"`` (one critic of ``r - lambda c``) or
        ``"separate"`` (reward and cost heads, :data:`CRITICS`).
      base: the base agent's config (:class:`agents.mvi.Config`); its static
        fields set shapes and loop lengths, its traced fields are sweepable.
      eta_lambda: eta_lambda >= 0, multiplier step size per observed violation
        (0 freezes the multiplier at ``lambda0``).
      lambda0: lambda_0 in ``[0, lambda_max]``, initial multiplier.
      lambda_max: upper bound of the multiplier projection (``inf``: none).
    """

    method: str = static(default="lagrangian")
    base_agent: str = static(default="mdqn")
    critic: str = static(default="penalised")
    base: mvi.Config = struct.field(default_factory=mvi.Config)
    eta_lambda: float = 0.01  # eta_lambda
    lambda0: float = 0.0  # lambda_0
    lambda_max: float = 100.0  # lambda_max

    @property
    def num_chunks(self) -> int:
        """Static number of chunks (the base config's)."""
        return self.base.num_chunks

    @property
    def iters_per_chunk(self) -> int:
        """Static iterations per chunk (the base config's)."""
        return self.base.iters_per_chunk

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        if self.method not in METHODS:
            raise ConfigError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        if self.base_agent not in BASE_AGENTS:
            raise ConfigError(
                f"base_agent must be one of {', '.join(BASE_AGENTS)}, got "
                f"{self.base_agent!r}"
            )
        if self.critic not in CRITICS:
            raise ConfigError(
                f"critic must be one of {', '.join(CRITICS)}, got {self.critic!r}"
            )
        if not isinstance(self.base, mvi.Config):
            raise ConfigError(
                f"base must be an agents.mvi.Config for base_agent='mdqn', got "
                f"{type(self.base).__name__}"
            )
        config_lib.validate(self.base)
        config_lib.check_range("eta_lambda", self.eta_lambda, 0.0, math.inf)
        config_lib.check_positive("lambda_max", self.lambda_max)
        config_lib.check_range("lambda0", self.lambda0, 0.0, math.inf)
        if config_lib.is_concrete(self.lambda0) and config_lib.is_concrete(
            self.lambda_max
        ):
            if float(self.lambda0) > float(self.lambda_max):
                raise ConfigError(
                    f"lambda0 must not exceed lambda_max, got {self.lambda0} > "
                    f"{self.lambda_max}"
                )


@struct.dataclass
class Params:
    """What acting and the loss need: the network and the multiplier.

    Attributes:
      q: the network parameters (a critic of ``r - lambda c``, or the reward
        and cost heads, see :data:`CRITICS`).
      lam: ``[]`` multiplier :math:`\\lambda \\ge 0`.
    """

    q: ArrayTree
    lam: Array


@struct.dataclass
class State:
    """Training state (one seed; ``vmap`` adds ``[S]``).

    Attributes:
      base: the base agent's state (networks, optimiser, replay buffer with
        ``extras["cost"]``, environments, key, counters).
      lam: ``[]`` float32 multiplier :math:`\\lambda_k`.
      prev_violation: ``[]`` float32 last observed violation :math:`g_{k-1}`
        (ReLOAD's memory; 0 before the first).
      num_violations: ``[]`` int32 number of observed violations (multiplier
        steps taken).
      episode_cost: ``[E]`` float32 discounted cost of each environment's
        running episode so far.
    """

    base: _value_loop.State
    lam: Array
    prev_violation: Array
    num_violations: Array
    episode_cost: Array

    @property
    def params(self) -> Params:
        """The :class:`Params` ``(q, lam)`` used by :func:`act` and :func:`loss`."""
        return Params(q=self.base.params, lam=self.lam)

    @property
    def key(self) -> PRNGKey:
        """The agent's key (the base state's)."""
        return self.base.key


def cartpole_config(method: str = "lagrangian", **overrides: Any) -> Config:
    """Return a constrained M-DQN preset for ``CartPole-Constrained-v0``.

    The base is :func:`agents.mvi.cartpole_config` shortened to 100k environment
    steps (4 environments, 25 chunks of 1000 iterations, learning after 2k
    steps, ε decayed over the first 20%), which learns to balance on CartPole;
    the multiplier uses ``eta_lambda = 0.002`` per observed episode-cost
    violation (violations are in cost units per episode, up to ~500) and
    ``lambda_max = 10`` (a cost step then outweighs ten reward steps).

    Args:
      method: ``"lagrangian"`` or ``"reload"``.
      **overrides: top-level fields to replace (``base=...`` included).

    Returns:
      The config.
    """
    base = mvi.cartpole_config(
        num_envs=4,
        num_chunks=25,
        iters_per_chunk=1_000,
        learning_starts=2_000,
        eps_decay=0.2,
        buffer_size=50_000,
        num_eval_episodes=8,
        eval_max_steps=500,
    )
    config = Config(
        method=method, base=base, eta_lambda=0.002, lambda0=0.0, lambda_max=10.0
    )
    return config.replace(**overrides)


# ------------------------------------------------------------------------- agent API


def _check_extras(batch: Transition) -> Array:
    if "cost" not in batch.extras:
        raise KeyError(
            "constrained agents need Transition.extras['cost'] (collect with "
            "jaxrl.rollout.step(..., extras_keys=('cost',)) on a cost-emitting "
            "environment such as envs.constrained.CostWrapper)"
        )
    return batch.extras["cost"]


def _outputs_per_action(config: Config) -> int:
    return 2 if config.critic == "separate" else 1


def init(key: PRNGKey, env: Any, env_params: Any, config: Config) -> State:
    """Initialise the base agent (with a cost-carrying buffer) and the multiplier.

    Args:
      key: typed PRNG key (split exactly as the base agent's ``init`` splits it).
      env: a cost-emitting gymnax environment (``info["cost"]``,
        ``info["discounted_cost"]``), e.g. ``envs.make("CartPole-Constrained-v0")``.
      env_params: its params, carrying ``cost_limit`` (and ``cost_gamma``).
      config: the config.

    Returns:
      The initial :class:`State` (``lambda = lambda0``).

    Raises:
      ConfigError: on an invalid config or params without a budget.
    """
    config_lib.validate(config)
    budget_from_params(env_params, "agents.constrained")
    return _value_loop.init(
        key,
        env,
        env_params,
        config.base,
        outputs_per_action=_outputs_per_action(config),
        extension=_extension(config, env_params),
    )


def _critics(
    q: ArrayTree, obs: ArrayTree, config: Config, obs_ndim: int
) -> tuple[Array, Array]:
    """Return ``(q_r, q_c)`` ``[..., A]`` of the separate critics' network.

    The head is ``2 A`` wide, action-major: output ``2a`` is ``q_r(., a)``,
    ``2a + 1`` is ``q_c(., a)``.
    """
    out = _value_loop.q_values(q, obs, config.base, obs_ndim)
    pairs = out.reshape((*out.shape[:-1], out.shape[-1] // 2, 2))
    return pairs[..., 0], pairs[..., 1]


def _act_on(
    q: Array,
    key: PRNGKey,
    config: mvi.Config,
    *,
    greedy: bool,
    epsilon: Array | float | None,
) -> Array:
    """The base agent's acting rule (:func:`agents.mvi.act`) on given ``q[A]``."""
    if greedy:
        del key
        return jnp.argmax(q).astype(jnp.int32)
    if config.interact == "stochastic":
        probs = softmax_policy(q, config.tau)
        return jax.random.categorical(key, jnp.log(probs)).astype(jnp.int32)
    eps = config.eps_end if epsilon is None else epsilon
    return _value_loop.epsilon_greedy(q, key, eps)


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
    epsilon: Array | float | None = None,
) -> Array:
    r"""Choose an action for ONE observation with the base agent's policy.

    The policy acts on the Lagrangian values :math:`q_\lambda`: the penalised
    critic's output (then this is exactly :func:`agents.mvi.act`; the
    multiplier is in the critic), or :math:`q_r - \lambda q_c` of the separate
    critics, with ``argmax`` (greedy), ε-greedy or ``softmax(q_lambda / tau)``
    sampling as the base config's ``interact`` says.

    Args:
      params: :class:`Params` (``lam`` is used by the separate critics only).
      obs: ``[*obs_shape]`` one observation.
      key: PRNG key (unused when ``greedy``).
      config: the config.
      greedy: static, take ``argmax_a q_lambda(obs, a)``.
      epsilon: ε for ε-greedy acting (``None``: ``config.base.eps_end``).

    Returns:
      ``[]`` int32 action.
    """
    if config.critic == "penalised":
        return mvi.act(params.q, obs, key, config.base, greedy=greedy, epsilon=epsilon)
    q_r, q_c = _critics(params.q, obs, config, jnp.ndim(obs))
    q_lam = lagrangian.lagrangian_reward(q_r, q_c, params.lam)
    return _act_on(q_lam, key, config.base, greedy=greedy, epsilon=epsilon)


def penalised_batch(batch: Transition, lam: ArrayLike) -> Transition:
    """Return ``batch`` with rewards ``r - lam * extras["cost"]`` (``lam`` stopped).

    Args:
      batch: ``Transition[B]`` with ``extras["cost"]`` ``[B]``.
      lam: ``[]`` multiplier.

    Returns:
      The same batch with the penalised reward.

    Raises:
      KeyError: if the batch carries no cost.
    """
    cost = _check_extras(batch)
    lam = jax.lax.stop_gradient(jnp.asarray(lam, batch.reward.dtype))
    return batch.replace(reward=lagrangian.lagrangian_reward(batch.reward, cost, lam))


def _separate_td(
    q_r_tm1: Array,
    q_c_tm1: Array,
    a_tm1: Array,
    r_t: Array,
    c_t: Array,
    discount_t: Array,
    q_lam_tm1_target: Array,
    q_r_t_target: Array,
    q_c_t_target: Array,
    q_lam_t_target: Array,
    config: mvi.Config,
) -> tuple[Array, Array, Array]:
    """TD errors ``(td_r, td_c)`` of ONE transition and the Munchausen bonus.

    ``pi_bar = softmax(q_lam_target / tau)``; see the module docstring.
    """
    tau = config.tau
    bonus = munchausen_bonus(q_lam_tm1_target, a_tm1, tau, config.alpha, config.l0)
    pi_t = softmax_policy(q_lam_t_target, tau)
    # sum_b pi(b) (q_r(b) - tau ln pi(b)): the soft value of q_r under pi_bar.
    soft_q_r_t = q_r_t_target - scaled_log_softmax(q_lam_t_target, tau)
    td_r = expected_sarsa(q_r_tm1, a_tm1, r_t + bonus, discount_t, soft_q_r_t, pi_t)
    td_c = expected_sarsa(q_c_tm1, a_tm1, c_t, discount_t, q_c_t_target, pi_t)
    return td_r, td_c, bonus


def _separate_loss(
    params: Params, target_params: ArrayTree, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    bc = config.base
    cost = _check_extras(batch)
    lam = jax.lax.stop_gradient(jnp.asarray(params.lam, batch.reward.dtype))
    obs_ndim = jnp.ndim(jax.tree.leaves(batch.obs)[0]) - 1
    q_r, q_c = _critics(params.q, batch.obs, config, obs_ndim)  # [B, A] each
    # One target-network pass over [obs; next_obs] instead of two.
    both = jax.tree.map(
        lambda o, n: jnp.concatenate([o, n], axis=0), batch.obs, batch.next_obs
    )
    target_r, target_c = _critics(target_params, both, config, obs_ndim)
    target_lam = lagrangian.lagrangian_reward(target_r, target_c, lam)  # [2B, A]
    q_lam_tm1_target, q_lam_t_target = jnp.split(target_lam, 2, axis=0)
    _, q_r_t_target = jnp.split(target_r, 2, axis=0)
    _, q_c_t_target = jnp.split(target_c, 2, axis=0)
    discount_t = transition_lib.discount(batch, bc.gamma)  # [B]
    action = batch.action.astype(jnp.int32)
    td_r, td_c, bonus = jax.vmap(lambda *x: _separate_td(*x, bc))(
        q_r,
        q_c,
        action,
        batch.reward,
        cost,
        discount_t,
        q_lam_tm1_target,
        q_r_t_target,
        q_c_t_target,
        q_lam_t_target,
    )
    loss_r = jnp.mean(huber_loss(td_r, bc.huber_delta))
    loss_c = jnp.mean(huber_loss(td_c, bc.huber_delta))
    taken = lambda x: jnp.mean(jnp.take_along_axis(x, action[:, None], axis=-1))
    return loss_r + loss_c, {
        "loss/td": loss_r,
        "loss/cost_td": loss_c,
        "q/mean": taken(q_r),
        "q_cost/mean": taken(q_c),
        "td/abs": jnp.mean(jnp.abs(td_r)),
        "td_cost/abs": jnp.mean(jnp.abs(td_c)),
        "munchausen/bonus": jnp.mean(bonus),
        "loss/penalised_reward": jnp.mean(
            lagrangian.lagrangian_reward(batch.reward, cost, lam)
        ),
    }


def loss(
    params: Params, target_params: ArrayTree, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the critic loss at the multiplier ``params.lam`` (see :data:`CRITICS`).

    ``"penalised"``: the base agent's loss on the penalised reward
    :math:`r - \lambda c` (with ``lam = 0`` exactly :func:`agents.mvi.loss`).
    ``"separate"``: the sum of the reward critic's Munchausen loss and the cost
    critic's expected-SARSA loss, both under
    :math:`\bar\pi = \mathrm{softmax}((\bar q_r - \lambda \bar q_c)/\tau)` (the
    equations are in the module docstring). The multiplier is a constant of
    the loss (no gradient flows into it; it moves by :func:`multiplier_update`).

    Args:
      params: :class:`Params` (``q`` differentiated, ``lam`` stopped).
      target_params: the target-network parameters.
      batch: ``Transition[B]`` with ``extras["cost"]``.
      config: the config.

    Returns:
      ``(loss, metrics)``: the base agent's metrics plus
      ``"loss/penalised_reward"`` (and the cost critic's, module docstring).

    Raises:
      KeyError: if the batch carries no cost.
    """
    if config.critic == "separate":
        return _separate_loss(params, target_params, batch, config)
    penalised = penalised_batch(batch, params.lam)
    value, metrics = mvi.loss(params.q, target_params, penalised, config.base)
    return value, {**metrics, "loss/penalised_reward": jnp.mean(penalised.reward)}


def update(state: State, data: Transition, config: Config) -> tuple[State, Metrics]:
    """Do one critic gradient step on ``data`` at the current multiplier.

    Args:
      state: the current state.
      data: ``Transition[B]`` with ``extras["cost"]``.
      config: the config.

    Returns:
      ``(state, metrics)``; the multiplier is unchanged (see
      :func:`multiplier_update`).
    """
    base, metrics = _value_loop.update(
        state.base, data, config.base, loss_fn=_network_loss(state.lam, config)
    )
    return state.replace(base=base), metrics


def _network_loss(lam: Array, config: Config) -> _value_loop.LossFn:
    """:func:`loss` as a function of the network parameters at multiplier ``lam``."""

    def loss_fn(q, target_params, batch, base_config):
        del base_config
        return loss(Params(q=q, lam=lam), target_params, batch, config)

    return loss_fn


def multiplier_update(
    lam: ArrayLike,
    prev_violation: ArrayLike,
    num_violations: ArrayLike,
    episode_costs: ArrayLike,
    ended: ArrayLike,
    budget: ArrayLike,
    config: Config,
) -> tuple[Array, Array, Array, Array]:
    r"""Take one multiplier step from the episodes that ended (GDA or ReLOAD).

    With :math:`\hat J_c` the mean of ``episode_costs`` over ``ended`` and
    :math:`g_k = \hat J_c - b`: ``"lagrangian"`` steps
    :math:`[\lambda + \eta_\lambda g_k]_0^{\lambda_{max}}`, ``"reload"`` steps
    :math:`[\lambda + \eta_\lambda (2 g_k - g_{k-1})]_0^{\lambda_{max}}` with
    :math:`g_{-1} = g_k` at the first observed violation. If no episode ended,
    everything is returned unchanged.

    Args:
      lam: ``[]`` multiplier :math:`\lambda_k`.
      prev_violation: ``[]`` previous observed violation :math:`g_{k-1}`.
      num_violations: ``[]`` int32 violations observed so far.
      episode_costs: ``[E]`` (discounted) episode costs.
      ended: ``[E]`` bool, which entries of ``episode_costs`` are finished episodes.
      budget: ``[]`` budget :math:`b`.
      config: the config (``method``, ``eta_lambda``, ``lambda_max``).

    Returns:
      ``(lam, prev_violation, num_violations, violation)``: the new state and
      :math:`g_k` (NaN if no episode ended).
    """
    lam = jnp.asarray(lam, jnp.float32)
    ended = jnp.asarray(ended, bool)
    costs = jnp.asarray(episode_costs, jnp.float32)
    count = jnp.sum(ended)
    mean_cost = jnp.sum(jnp.where(ended, costs, 0.0)) / jnp.maximum(count, 1)
    violation = mean_cost - jnp.asarray(budget, jnp.float32)
    if config.method == "reload":
        prev = jnp.where(num_violations > 0, prev_violation, violation)
        direction = lagrangian.optimistic_gradient(violation, prev)
    else:
        direction = violation
    stepped = lagrangian.projected_multiplier_update(
        lam, direction, config.eta_lambda, config.lambda_max
    ).astype(jnp.float32)
    observed = count > 0
    return (
        jnp.where(observed, stepped, lam),
        jnp.where(observed, violation, prev_violation).astype(jnp.float32),
        num_violations + observed.astype(jnp.int32),
        jnp.where(observed, violation, jnp.nan),
    )


# ----------------------------------------------------------------------- training loop


def _after_iteration(
    state: State,
    tr: Transition,
    info: dict[str, Array],
    config: Config,
    env_params: Any,
) -> tuple[State, Metrics]:
    """Step the multiplier on the discounted costs of the episodes that ended."""
    budget, _ = budget_from_params(env_params, "agents.constrained")
    running = state.episode_cost + tr.extras["discounted_cost"]
    ended = jnp.logical_or(tr.terminated, tr.truncated)
    lam, prev_violation, num_violations, violation = multiplier_update(
        state.lam,
        state.prev_violation,
        state.num_violations,
        running,
        ended,
        budget,
        config,
    )
    done = info["returned_episode"].astype(bool)
    count = jnp.sum(done)
    mean_cost = jnp.where(
        count > 0,
        jnp.sum(jnp.where(done, info["episode_cost"], 0.0)) / jnp.maximum(count, 1),
        jnp.nan,
    )
    metrics = {
        "episode/cost": mean_cost,
        "episode/discounted_cost": violation + budget,
        "lagrange/lambda": lam,
        "lagrange/violation": violation,
    }
    new_state = state.replace(
        lam=lam,
        prev_violation=prev_violation,
        num_violations=num_violations,
        episode_cost=jnp.where(ended, 0.0, running),
    )
    return new_state, metrics


def _extension(config: Config, env_params: Any) -> _value_loop.Extension:
    """The multiplier as an extension of the base agent's iteration."""

    def init_state(base: _value_loop.State) -> State:
        return State(
            base=base,
            lam=jnp.asarray(config.lambda0, jnp.float32),
            prev_violation=jnp.zeros((), jnp.float32),
            num_violations=jnp.zeros((), jnp.int32),
            episode_cost=jnp.zeros((config.base.num_envs,), jnp.float32),
        )

    def after_iteration(state, tr, info):
        return _after_iteration(state, tr, info, config, env_params)

    return _value_loop.Extension(
        init=init_state,
        params=lambda q, state: Params(q=q, lam=state.lam),
        after_iteration=after_iteration,
        info_keys=_INFO_KEYS,
        buffer_keys=("cost",),
    )


def _evaluate(
    params: Params, key: PRNGKey, config: Config, env: Any, env_params: Any
) -> Metrics:
    def policy(k: PRNGKey, obs: ArrayTree) -> Array:
        del k
        return jax.vmap(lambda o: act(params, o, None, config, greedy=True))(obs)

    out = rollout.evaluate(
        key,
        env,
        env_params,
        policy,
        config.base.num_eval_episodes,
        config.base.eval_max_steps,
        extras_keys=("cost",),
    )
    return {
        "eval/return": jnp.mean(out["return"]),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
        "eval/cost": jnp.mean(out["cost"]),
    }


def _loop_fns(config: Config) -> dict[str, Any]:
    """``loss_fn``, ``act_fn`` and ``eval_fn`` for the shared loop.

    The loop passes the base config (``config.base``, or a variant of it, e.g.
    the loop's one-episode probe of the evaluation's metric names), which is
    put back into the constrained config.
    """

    def loss_fn(params, target_params, batch, base_config):
        return loss(params, target_params, batch, config.replace(base=base_config))

    def act_fn(params, obs, key, base_config, *, greedy=False, epsilon=None):
        cfg = config.replace(base=base_config)
        return act(params, obs, key, cfg, greedy=greedy, epsilon=epsilon)

    def eval_fn(params, key, base_config, env, env_params):
        cfg = config.replace(base=base_config)
        return _evaluate(params, key, cfg, env, env_params)

    return {"loss_fn": loss_fn, "act_fn": act_fn, "eval_fn": eval_fn}


def make_run(config: Config, env: Any, env_params: Any):
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    Args:
      config: the config (validated here).
      env: the cost-emitting environment.
      env_params: its params (with the budget).

    Returns:
      ``run``; metrics have a leading ``[iters_per_chunk]`` axis.

    Raises:
      ConfigError: on an invalid config or params without a budget.
    """
    config_lib.validate(config)
    budget_from_params(env_params, "agents.constrained")
    return _value_loop.make_run(
        config.base,
        env,
        env_params,
        extension=_extension(config, env_params),
        **_loop_fns(config),
    )


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis. Seeds are a
    ``jax.vmap`` over keys; multiplier step sizes, budgets (in ``env_params``)
    and the base agent's traced fields are further ``vmap`` axes.
    """
    config_lib.validate(config)
    budget_from_params(env_params, "agents.constrained")
    return _value_loop.make_train(
        config.base,
        env,
        env_params,
        outputs_per_action=_outputs_per_action(config),
        extension=_extension(config, env_params),
        **_loop_fns(config),
    )
