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
  targets with ``alpha = tau = 0``) trained on the *penalised reward*
  :math:`r_t - \lambda c_t` (:func:`jaxrl.ops.lagrangian.lagrangian_reward`).
  Design choice: ONE critic learns
  :math:`Q_{r - \lambda c} = Q_r - \lambda Q_c` (policy values are linear in the
  reward) and the policy acts on it exactly as the base agent acts on its
  ``Q``; the multiplier is applied to the sampled cost inside the loss (never
  stored), so the critic always regresses onto the current Lagrangian. Separate
  reward and cost critics with a policy on :math:`Q_r - \lambda Q_c` represent
  the same function for on-policy values, but need two networks and a joint
  soft-greedy policy inside the Munchausen target; the penalised critic keeps
  the base agent's loss untouched, which gives the exact identity
  "``lambda = 0`` is the base agent" (tested bitwise). The critic discounts the
  cost with the agent's ``gamma``; the budget is on the environment's episode
  cost (the multiplier's signal below).
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

The optimistic correction here acts on the multiplier only: the policy player is
a value-based learner (no explicit policy gradient to extrapolate), which is the
deep variant for which ALGORITHMS.md section 8 leaves the paper's choice open.

Data: the replay buffer stores ``Transition.extras["cost"]`` (the loss needs it;
a batch without it fails with ``KeyError`` at trace time). The loop is
:mod:`agents._value_loop`'s, step for step and key split for key split (so with
``eta_lambda = lambda0 = 0`` a whole run equals :mod:`agents.mvi`'s bitwise),
plus the multiplier step and the cost bookkeeping.

Contract. :class:`Config` nests the base agent's config (``config.base``;
override it with dotted keys, ``base.lr=1e-3``) and :class:`State` nests the base
state (``state.base``) next to the multiplier state; ``state.params`` is
:class:`Params` ``(q, lam)`` (the base network and the multiplier), which is what
:func:`act` and :func:`loss` take; ``state.key`` is the base state's key.

Metrics (besides the base agent's): ``"lagrange/lambda"`` (after the
iteration), ``"lagrange/violation"`` (:math:`g_k`, NaN when no episode ended),
``"episode/cost"`` (mean undiscounted cost of the episodes ended, NaN if none),
``"episode/discounted_cost"`` (:math:`\hat J_c`), ``"loss/penalised_reward"``
(batch mean of :math:`r - \lambda c` seen by the critic), and at the end of each
chunk ``"eval/return"``, ``"eval/length"``, ``"eval/cost"`` of the greedy policy.

Usage::

    env, env_params = envs.make("CartPole-Constrained-v0")
    config = constrained.Config(method="reload", base=mvi.cartpole_config())
    train = jax.jit(jax.vmap(constrained.make_train(config, env, env_params)))
    state, metrics = train(jax.random.split(jax.random.key(0), 4))
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from agents import _value_loop, mvi
from envs.constrained import budget_from_params
from envs.wrappers import LogWrapper
from jaxrl import buffer as buffer_lib
from jaxrl import config as config_lib
from jaxrl import rollout
from jaxrl import transition as transition_lib
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.ops import lagrangian
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics, PRNGKey

__all__ = [
    "METHODS",
    "BASE_AGENTS",
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

_EXTRAS = ("cost", "discounted_cost")


@struct.dataclass
class Config:
    """Constrained-agent configuration: the base agent's config plus the multiplier.

    Attributes:
      method: static, ``"lagrangian"`` or ``"reload"`` (:data:`METHODS`).
      base_agent: static, the policy player (:data:`BASE_AGENTS`).
      base: the base agent's config (:class:`agents.mvi.Config`); its static
        fields set shapes and loop lengths, its traced fields are sweepable.
      eta_lambda: eta_lambda >= 0, multiplier step size per observed violation
        (0 freezes the multiplier at ``lambda0``).
      lambda0: lambda_0 in ``[0, lambda_max]``, initial multiplier.
      lambda_max: upper bound of the multiplier projection (``inf``: none).
    """

    method: str = static(default="lagrangian")
    base_agent: str = static(default="mdqn")
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
    """What acting and the loss need: the base network and the multiplier.

    Attributes:
      q: the base agent's network parameters (a critic of ``r - lambda c``).
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
    base = _value_loop.init(key, _inner_env(env), env_params, config.base)
    obs_0 = jax.tree.map(lambda x: x[0], base.obs)
    example = transition_lib.example(
        obs_0, jnp.zeros((), jnp.int32), {"cost": jnp.zeros((), jnp.float32)}
    )
    base = base.replace(buffer=buffer_lib.init(example, config.base.buffer_size))
    zero = jnp.zeros((), jnp.float32)
    return State(
        base=base,
        lam=jnp.asarray(config.lambda0, jnp.float32),
        prev_violation=zero,
        num_violations=jnp.zeros((), jnp.int32),
        episode_cost=jnp.zeros((config.base.num_envs,), jnp.float32),
    )


def act(
    params: Params,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
    epsilon: Array | float | None = None,
) -> Array:
    """Choose an action for ONE observation with the base agent's policy.

    The network is a critic of the penalised reward, so ``argmax_a Q`` (or the
    base agent's softmax) is the policy of the current Lagrangian.

    Args:
      params: :class:`Params` (the multiplier is unused: it is in the critic).
      obs: ``[*obs_shape]`` one observation.
      key: PRNG key (unused when ``greedy``).
      config: the config.
      greedy: static, take ``argmax_a Q(obs, a)``.
      epsilon: ε for ε-greedy acting (``None``: ``config.base.eps_end``).

    Returns:
      ``[]`` int32 action.
    """
    return mvi.act(params.q, obs, key, config.base, greedy=greedy, epsilon=epsilon)


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


def loss(
    params: Params, target_params: ArrayTree, batch: Transition, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the base agent's loss on the penalised reward :math:`r - \lambda c`.

    The multiplier ``params.lam`` is a constant of the critic's loss (no gradient
    flows into it; it moves by :func:`multiplier_update`). With ``lam = 0`` this
    is exactly :func:`agents.mvi.loss`.

    Args:
      params: :class:`Params` (``q`` differentiated, ``lam`` stopped).
      target_params: the base agent's target-network parameters.
      batch: ``Transition[B]`` with ``extras["cost"]``.
      config: the config.

    Returns:
      ``(loss, metrics)``: the base agent's metrics plus
      ``"loss/penalised_reward"``.
    """
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
        state.base, data, config.base, loss_fn=_critic_loss(state.lam, config)
    )
    return state.replace(base=base), metrics


def _critic_loss(lam: Array, config: Config):
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


def _log_env(env: Any) -> Any:
    return env if isinstance(env, LogWrapper) else LogWrapper(env)


def _inner_env(env: Any) -> Any:
    return env.env if isinstance(env, LogWrapper) else env


def _iteration(
    state: State, _: Any, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    """One iteration: act, store (with cost), maybe learn, step the multiplier."""
    bc = config.base
    base = state.base
    # Same key splits as agents._value_loop._iteration (lambda = 0 identity).
    key, k_act, k_step, k_learn = jax.random.split(base.key, 4)
    # COLLECT
    epsilon = _value_loop.epsilon_at(base.step, bc)
    act_keys = jax.random.split(k_act, bc.num_envs)
    params = state.params
    policy = lambda o, k: act(params, o, k, config, epsilon=epsilon)
    action = jax.vmap(policy)(base.obs, act_keys)
    tr, env_state, obs, info = rollout.step(
        k_step, env, env_params, base.env_state, base.obs, action, _EXTRAS
    )
    buffer = buffer_lib.add(base.buffer, tr.replace(extras={"cost": tr.extras["cost"]}))
    step = base.step + 1
    base = base.replace(buffer=buffer, env_state=env_state, obs=obs, key=key, step=step)
    # LEARN (the critic, at the multiplier of this iteration)
    batch_keys = jax.random.split(k_learn, bc.updates_per_iter)
    batches = jax.vmap(lambda k: buffer_lib.sample(buffer, k, bc.batch_size))(
        batch_keys
    )
    env_steps = step * bc.num_envs
    frequency = jnp.maximum(jnp.asarray(bc.train_frequency, jnp.int32), 1)
    should_learn = (env_steps >= bc.learning_starts) & (jnp.mod(step, frequency) == 0)
    learner = base.replace(key=None, buffer=None)
    learn = functools.partial(
        _value_loop._learn, config=bc, loss_fn=_critic_loss(state.lam, config)
    )
    metric_shapes = jax.eval_shape(learn, learner, batches)[1]

    def skip(s: Any, b: Transition) -> tuple[Any, Metrics]:
        del b
        return s, jax.tree.map(
            lambda x: jnp.full(x.shape, jnp.nan, x.dtype), metric_shapes
        )

    learner, learn_metrics = jax.lax.cond(should_learn, learn, skip, learner, batches)
    base = learner.replace(key=key, buffer=buffer)
    # MULTIPLIER: discounted episode costs of the episodes that ended.
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
        **learn_metrics,
        **_value_loop._episode_metrics(info),
        "episode/cost": mean_cost,
        "episode/discounted_cost": violation + budget,
        "lagrange/lambda": lam,
        "lagrange/violation": violation,
        "train/epsilon": epsilon,
        "train/env_steps": env_steps,
        "train/num_updates": base.num_updates,
    }
    new_state = state.replace(
        base=base,
        lam=lam,
        prev_violation=prev_violation,
        num_violations=num_violations,
        episode_cost=jnp.where(ended, 0.0, running),
    )
    return new_state, metrics


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


def _run_chunk(
    state: State, config: Config, env: Any, env_params: Any
) -> tuple[State, Metrics]:
    body = functools.partial(
        _iteration, config=config, env=_log_env(env), env_params=env_params
    )
    state, metrics = jax.lax.scan(body, state, None, length=config.iters_per_chunk)
    # EVALUATE (greedy, at the end of the chunk; NaN on the chunk's other rows)
    nan_row = jnp.full((config.iters_per_chunk,), jnp.nan, jnp.float32)
    names = ("eval/return", "eval/length", "eval/cost")
    if config.base.num_eval_episodes > 0:
        key, k_eval = jax.random.split(state.base.key)
        state = state.replace(base=state.base.replace(key=key))
        out = _evaluate(state.params, k_eval, config, env, env_params)
        for name in names:
            metrics[name] = nan_row.at[-1].set(out[name])
    else:
        for name in names:
            metrics[name] = nan_row
    return state, metrics


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
    inner = _inner_env(env)

    def run(state: State) -> tuple[State, Metrics]:
        return _run_chunk(state, config, inner, env_params)

    return run


def make_train(config: Config, env: Any, env_params: Any):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` chunks.

    Metrics have a leading ``[num_chunks * iters_per_chunk]`` axis. Seeds are a
    ``jax.vmap`` over keys; multiplier step sizes, budgets (in ``env_params``)
    and the base agent's traced fields are further ``vmap`` axes.
    """
    run = make_run(config, env, env_params)
    return chunked_train(
        lambda key: init(key, env, env_params, config), run, config.num_chunks
    )
