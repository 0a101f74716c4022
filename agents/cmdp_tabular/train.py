"""The agent contract of :mod:`jaxrl.agents.cmdp_tabular` and whole primal-dual runs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxrl import config as config_lib
from jaxrl.agents.cmdp_tabular.config import Config, Params, State
from jaxrl.agents.cmdp_tabular.exact import _check_cost, evaluate, solve_dual
from jaxrl.envs import finite_mdp
from jaxrl.loop import chunked_train
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import lagrangian
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "policy",
    "average_policy",
    "init_state",
    "init",
    "act",
    "loss",
    "update",
    "make_run",
    "make_train",
    "primal_dual",
]


def policy(params: Params) -> Array:
    """Return the softmax policy ``pi[S, A]`` of the logits."""
    return jax.nn.softmax(params.logits, axis=-1)


def average_policy(state: State) -> Array:
    """Return the policy of the average occupancy measure, ``[S, A]``.

    ``pi_bar(a|s) = d_bar(s, a) / sum_b d_bar(s, b)``: the Markov policy whose
    occupancy is the average ``d_bar`` of the iterates' occupancies, so its
    values are the averages of their values (``J`` is linear in ``d``). States
    the iterates never visit get the uniform policy; before the first step the
    current policy is returned.
    """
    d = state.avg_occupancy
    mass = jnp.sum(d, axis=-1, keepdims=True)
    uniform = jnp.full_like(d, 1.0 / d.shape[-1])
    avg = jnp.where(mass > 0, d / jnp.where(mass > 0, mass, 1.0), uniform)
    return jnp.where(state.step > 0, avg, policy(state.params))


def _normalise(logits: Array) -> Array:
    return logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)


def init_state(mdp: FiniteMDP, key: PRNGKey, config: Config) -> State:
    """Return the initial state for ``mdp`` (see :func:`init`)."""
    key, k_init = jax.random.split(key)
    dtype = mdp.P.dtype
    noise = jax.random.normal(k_init, mdp.R.shape, dtype)
    logits = _normalise(jnp.asarray(config.init_noise, dtype) * noise)
    lam = jnp.asarray(config.lambda0, dtype)
    zero = jnp.zeros((), dtype)
    return State(
        params=Params(logits=logits, lam=lam),
        prev_grad=Params(logits=jnp.zeros_like(logits), lam=zero),
        avg_occupancy=jnp.zeros_like(logits),
        avg_lam=zero,
        key=key,
        step=jnp.asarray(0, jnp.int32),
    )


def init(key: PRNGKey, env: object, env_params: ArrayTree, config: Config) -> State:
    """Return the initial state: logits ``init_noise * N(0, I)``, ``lambda0``, step 0.

    Args:
      key: typed key (one split for the initial logits; the rest is kept).
      env: the environment (unused; sizes come from ``env_params.mdp``).
      env_params: params holding the constrained ``FiniteMDP`` in ``.mdp``.
      config: the config.

    Returns:
      The :class:`State`.
    """
    del env
    mdp = finite_mdp.mdp_from_params(env_params, "cmdp_tabular")
    _check_cost(mdp)
    return init_state(mdp, key, config)


def act(
    params: Params, obs: Array, key: PRNGKey, config: Config, *, greedy: bool = False
) -> Array:
    """Pick an action for one observation from the softmax policy of ``params``.

    Args:
      params: the :class:`Params` (``logits[S, A]``; the multiplier is unused).
      obs: ``[S]`` one-hot or ``[]`` integer state index
        (:func:`jaxrl.envs.finite_mdp.state_index`; unbatched, vmap for a batch).
      key: typed key.
      config: the config (unused).
      greedy: take the most probable action (ties towards the lowest index)
        instead of sampling (static).

    Returns:
      ``[]`` int32 action.
    """
    del config
    logits = params.logits
    row = logits[finite_mdp.state_index(obs, logits.shape[0])]
    if greedy:
        return jnp.argmax(row).astype(jnp.int32)
    return jax.random.categorical(key, row).astype(jnp.int32)


def loss(
    params: Params, target_params: Params, batch: FiniteMDP, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the saddle objective ``-L(pi_theta, lambda)`` (exact) and metrics.

    ``-L = -J_r(pi_theta) + lambda (J_c(pi_theta) - b)`` is differentiable in both
    players (through the linear solve): gradient *descent* in ``logits`` ascends
    the Lagrangian (its gradient is the exact policy gradient
    :math:`-\frac{1}{1-\gamma} d^\pi(s) \pi(a|s) A^\pi_{r-\lambda c}(s, a)`),
    gradient *ascent* in ``lam`` follows ``J_c - b``. :func:`update` takes the
    natural-gradient steps instead.

    Args:
      params: the :class:`Params`.
      target_params: unused (the objective has no target).
      batch: the constrained MDP.
      config: the config (``budget``).

    Returns:
      ``(-L, {"cmdp/j_r", "cmdp/j_c", "lagrange/lagrangian"})``.
    """
    del target_params
    ev = evaluate(batch, policy(params))
    value = lagrangian.lagrangian(ev.j_r, ev.j_c, params.lam, config.budget)
    return -value, {
        "cmdp/j_r": ev.j_r,
        "cmdp/j_c": ev.j_c,
        "lagrange/lagrangian": value,
    }


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One primal-dual step (GDA or ReLOAD, per ``config.method``) with exact gradients.

    Args:
      state: the agent state at iterate ``k``.
      data: the constrained MDP.
      config: the config.

    Returns:
      ``(state_{k+1}, metrics of iterate k)`` (see the module docstring).
    """
    _check_cost(data)
    theta, lam = state.params.logits, state.params.lam
    ev = evaluate(data, jax.nn.softmax(theta, axis=-1))

    # GRADIENTS: NPG direction Q^pi_{r - lambda c} and the violation J_c - b.
    violation = ev.j_c - config.budget
    grad = Params(
        logits=lagrangian.lagrangian_reward(ev.q_r, ev.q_c, lam), lam=violation
    )
    key, k_q, k_g = jax.random.split(state.key, 3)
    sigma = jnp.asarray(config.noise_std, theta.dtype)
    grad = Params(
        logits=grad.logits + sigma * jax.random.normal(k_q, theta.shape, theta.dtype),
        lam=grad.lam + sigma * jax.random.normal(k_g, (), theta.dtype),
    )
    if config.method == "reload":
        first = state.step == 0  # g_{-1} = g_0: the first step is a GDA step
        prev = jax.tree.map(lambda g, p: jnp.where(first, g, p), grad, state.prev_grad)
        direction = lagrangian.optimistic_gradient(grad, prev)
    else:
        direction = grad

    # STEP: NPG ascent on the logits, projected step on the multiplier.
    new_params = Params(
        logits=_normalise(theta + config.eta_pi * direction.logits),
        lam=lagrangian.projected_multiplier_update(
            lam, direction.lam, config.eta_lambda, config.lambda_max
        ).astype(lam.dtype),
    )

    # AVERAGES over iterates 0..k (occupancy measures, multipliers).
    n = (state.step + 1).astype(theta.dtype)
    avg_occupancy = state.avg_occupancy + (ev.occupancy - state.avg_occupancy) / n
    avg_lam = state.avg_lam + (lam - state.avg_lam) / n
    one_minus_gamma = 1.0 - data.gamma
    metrics = {
        "cmdp/j_r": ev.j_r,
        "cmdp/j_c": ev.j_c,
        "lagrange/lambda": lam,
        "lagrange/lagrangian": lagrangian.lagrangian(
            ev.j_r, ev.j_c, lam, config.budget
        ),
        "cmdp/j_r_avg": jnp.sum(avg_occupancy * data.R) / one_minus_gamma,
        "cmdp/j_c_avg": jnp.sum(avg_occupancy * data.C) / one_minus_gamma,
        "lagrange/lambda_avg": avg_lam,
    }
    new_state = state.replace(
        params=new_params,
        prev_grad=grad,
        avg_occupancy=avg_occupancy,
        avg_lam=avg_lam,
        key=key,
        step=state.step + 1,
    )
    return new_state, metrics


def _step(
    state: State,
    _: None,
    *,
    mdp: FiniteMDP,
    config: Config,
    reference: tuple[Array, Array] | None,
) -> tuple[State, Metrics]:
    """Scan body of :func:`make_run`: one step plus the distances to the optimum."""
    state, metrics = update(state, mdp, config)
    if reference is None:
        return state, metrics
    j_star, lam_star = reference
    return state, {
        **metrics,
        "cmdp/reward_gap": j_star - metrics["cmdp/j_r"],
        "cmdp/reward_gap_avg": j_star - metrics["cmdp/j_r_avg"],
        "lagrange/lambda_error": jnp.abs(metrics["lagrange/lambda"] - lam_star),
        "lagrange/lambda_error_avg": jnp.abs(metrics["lagrange/lambda_avg"] - lam_star),
    }


def make_run(config: Config, env: object, env_params: ArrayTree):
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` steps.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the constrained MDP.

    Returns:
      ``run``; its metrics have shape ``[iters_per_chunk]``.

    Raises:
      ConfigError: on an invalid config or an MDP without costs.
    """
    config_lib.validate(config)
    mdp = finite_mdp.mdp_from_params(env_params, "cmdp_tabular")
    _check_cost(mdp)
    del env

    def run(state: State) -> tuple[State, Metrics]:
        reference = None
        if config.oracle_bisections > 0:
            # Computed before the scan and fed into its body, so the oracle's
            # solves never run concurrently with the steps' (docs D4).
            reference = solve_dual(
                mdp,
                config.budget,
                num_bisections=config.oracle_bisections,
                max_iters=config.oracle_iters,
            )
        body = functools.partial(_step, mdp=mdp, config=config, reference=reference)
        return jax.lax.scan(body, state, None, length=config.iters_per_chunk)

    return run


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` runs.

    Bitwise equal to calling :func:`init` and then ``make_run(...)`` chunk by
    chunk (the checkpoint/resume contract).

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the constrained MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    run = make_run(config, env, env_params)
    return chunked_train(
        lambda key: init(key, env, env_params, config), run, config.num_chunks
    )


def _trace_step(state: State, _: None, *, mdp: FiniteMDP, config: Config):
    state, metrics = update(state, mdp, config)
    return state, (metrics, state.params)


def primal_dual(
    mdp: FiniteMDP, config: Config, key: PRNGKey, num_iters: int
) -> tuple[State, Metrics, Params]:
    """Run ``num_iters`` primal-dual steps on ``mdp`` and return every iterate.

    Jit-able (``num_iters`` static) and vmappable over MDPs, keys and traced
    config fields. ``config.num_chunks`` and ``iters_per_chunk`` are ignored.

    Args:
      mdp: the constrained MDP.
      config: the config.
      key: typed key (used only with ``init_noise`` or ``noise_std`` > 0).
      num_iters: static number of steps ``K``.

    Returns:
      ``(state_K, metrics, iterates)``: the final state, the ``[K]`` metrics of
      :func:`update` (iterates ``0..K-1``) and the :class:`Params` after every
      step, stacked ``[K, ...]`` (``iterates[-1]`` is ``state_K.params``).

    Raises:
      ConfigError: on an invalid config or an MDP without costs.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
      >>> config = Config(method="reload", budget=1.0, eta_pi=0.5, eta_lambda=0.5)
      >>> state, metrics, iterates = primal_dual(mdp, config, jax.random.key(0), 400)
      >>> np.round(policy(state.params), 3), round(float(state.params.lam), 3)
      (Array([[0.5, 0.5]], dtype=float32), 1.0)
    """
    config_lib.validate(config)
    _check_cost(mdp)
    state = init_state(mdp, key, config)
    body = functools.partial(_trace_step, mdp=mdp, config=config)
    state, (metrics, iterates) = jax.lax.scan(body, state, None, length=num_iters)
    return state, metrics, iterates
