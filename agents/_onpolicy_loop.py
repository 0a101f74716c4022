"""Shared on-policy training loop of the policy-gradient agents (ppo, ppo_lagrangian).

The replay loop of the value agents is :mod:`jaxrl.agents._value_loop`; this is
its on-policy counterpart. An agent passes its own pieces:

* ``collect_fn(state, config, env, env_params) -> (state, rollout, info)``:
  roll the current policy (``rollout`` a time-major ``Transition[T, E]`` with
  whatever ``extras`` the update reads; ``info`` the ``[T, E]`` step info of
  the :class:`~jaxrl.envs.wrappers.LogWrapper`-wrapped environment);
* ``update_fn(state, rollout, config) -> (state, metrics)``: advantages, then
  the SGD epochs (:func:`sgd_epochs`, the minibatch optimisation of any
  parameter pytree under any loss);
* ``eval_fn(params, key, config, env, env_params) -> metrics``: the chunk's
  evaluation (usually :func:`jaxrl.loop.greedy_evaluation` of the agent's
  ``act``).

One *iteration* is COLLECT -> (extension) -> LEARN; its metrics are the
update's, the rollout's episode statistics
(:func:`jaxrl.envs.wrappers.episode_metrics`) and ``"train/lr"`` (the
learning rate of the iteration's first step), ``"train/env_steps"``,
``"train/num_updates"``. A *chunk* is ``iters_per_chunk`` iterations and one
evaluation (:func:`jaxrl.loop.run_chunk`), split off the state's key at the
end of the chunk.

The loop reads these fields of the (base) config: ``iters_per_chunk``,
``num_chunks``, ``num_eval_episodes``, ``lr``, ``total_updates``,
``lr_end_fraction``, ``batch_size`` (env steps per iteration), and these of
the (base) state: ``key``, ``step``, ``num_updates``.

With an :class:`Extension` (PPO-Lagrangian's multiplier), the state is the
agent's own flax struct whose field ``base`` holds the base state (and the
config's ``base`` the base config); ``extension.before_update(state,
rollout) -> (state, metrics)`` runs between COLLECT and LEARN (e.g. a dual
step on the rollout's costs) and ``with_cost`` adds ``"episode/cost"``.

This module is private to ``agents``; its names are not part of the public API.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxrl.envs.wrappers import episode_metrics, log_unwrap, log_wrap
from jaxrl.loop import EVAL_NAMES, chunked_train, run_chunk
from jaxrl.optim import learning_rate_at
from jaxrl.transition import Transition
from jaxrl.types import Array, Metrics, Params, PRNGKey

__all__ = [
    "LossFn",
    "CollectFn",
    "UpdateFn",
    "EvalFn",
    "Extension",
    "sgd_epochs",
    "make_run",
    "make_train",
]

LossFn = Callable[[Params, Any, Transition, Any], tuple[Array, Metrics]]
"""``loss(params, target_params, batch, config) -> (loss, metrics)``."""

CollectFn = Callable[[Any, Any, Any, Any], tuple[Any, Transition, dict[str, Array]]]
"""``collect(state, config, env, env_params) -> (state, rollout[T, E], info[T, E])``."""

UpdateFn = Callable[[Any, Transition, Any], tuple[Any, Metrics]]
"""``update(state, rollout, config) -> (state, metrics)``."""

EvalFn = Callable[[Any, PRNGKey, Any, Any, Any], Metrics]
"""``evaluate(params, key, config, env, env_params) -> metrics`` (scalars)."""


@dataclasses.dataclass(frozen=True)
class Extension:
    """Extra agent state and work around the on-policy iteration.

    Attributes:
      before_update: ``(state, rollout) -> (state, metrics)``, called after
        COLLECT and before LEARN with the agent's state (field ``base``) and
        the rollout; its metrics join the iteration's.
      with_cost: static switch: the episode statistics include
        ``"episode/cost"``.
    """

    before_update: Callable[[Any, Transition], tuple[Any, Metrics]]
    with_cost: bool = False


def _base(tree: Any, extension: Extension | None) -> Any:
    return tree if extension is None else tree.base


# ------------------------------------------------------------------------- SGD epochs


def _sgd_step(
    carry: tuple[Params, Any],
    minibatch: Transition,
    config: Any,
    loss_fn: LossFn,
    target_params: Any,
    opt: Any,
) -> tuple[tuple[Params, Any], Metrics]:
    """One optimiser step of ``loss_fn`` on a minibatch (scan body)."""
    params, opt_state = carry
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (_, metrics), grads = grad_fn(params, target_params, minibatch, config)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
    return (params, opt_state), {**metrics, "train/grad_norm": optax.tree.norm(grads)}


def _sgd_epoch(
    carry: tuple[Params, Any, PRNGKey],
    _: Any,
    batch: Transition,
    config: Any,
    loss_fn: LossFn,
    target_params: Any,
    opt: Any,
) -> tuple[tuple[Params, Any, PRNGKey], Metrics]:
    """Shuffle ``batch`` into ``num_minibatches`` minibatches and step on each."""
    params, opt_state, key = carry
    key, k_perm = jax.random.split(key)
    n = jax.tree.leaves(batch)[0].shape[0]
    perm = jax.random.permutation(k_perm, n)
    shuffled = jax.tree.map(
        lambda x: jnp.reshape(x[perm], (config.num_minibatches, -1, *x.shape[1:])),
        batch,
    )
    step = functools.partial(
        _sgd_step,
        config=config,
        loss_fn=loss_fn,
        target_params=target_params,
        opt=opt,
    )
    (params, opt_state), metrics = jax.lax.scan(step, (params, opt_state), shuffled)
    return (params, opt_state, key), metrics


def sgd_epochs(
    params: Params,
    opt_state: Any,
    key: PRNGKey,
    batch: Transition,
    config: Any,
    *,
    loss_fn: LossFn,
    opt: Any,
    target_params: Any = None,
) -> tuple[Params, Any, Metrics]:
    """Do ``update_epochs`` passes of minibatch steps over a flat batch.

    Each epoch splits the carried key, draws a fresh permutation of the ``N``
    transitions and cuts it into ``num_minibatches`` minibatches
    ``Transition[N / M]``, one ``opt`` step of ``loss_fn`` on each.

    Args:
      params: parameters to optimise (any pytree).
      opt_state: ``opt``'s state for them.
      key: PRNG key for the permutations.
      batch: ``Transition[N]`` with whatever ``extras`` ``loss_fn`` reads.
      config: passed to ``loss_fn``; ``update_epochs`` and ``num_minibatches``
        (static) are read from it.
      loss_fn: ``loss_fn(params, target_params, minibatch, config)``.
      opt: an optax transformation.
      target_params: passed through to ``loss_fn``.

    Returns:
      ``(params, opt_state, metrics)``: the loss metrics and
      ``"train/grad_norm"`` (:func:`optax.tree.norm` of the raw gradient),
      each averaged over the ``update_epochs * num_minibatches`` steps.
    """
    epoch = functools.partial(
        _sgd_epoch,
        batch=batch,
        config=config,
        loss_fn=loss_fn,
        target_params=target_params,
        opt=opt,
    )
    (params, opt_state, _), metrics = jax.lax.scan(
        epoch, (params, opt_state, key), None, length=config.update_epochs
    )
    return params, opt_state, jax.tree.map(jnp.mean, metrics)


# ------------------------------------------------------------------------ training loop


def _iteration(
    state: Any,
    _: Any,
    config: Any,
    env: Any,
    env_params: Any,
    collect_fn: CollectFn,
    update_fn: UpdateFn,
    extension: Extension | None,
) -> tuple[Any, Metrics]:
    """One iteration: collect a rollout, (extension), one update (scan body)."""
    bc = _base(config, extension)
    # COLLECT
    state, rollout, info = collect_fn(state, config, env, env_params)
    lr = learning_rate_at(
        _base(state, extension).num_updates,
        bc.lr,
        decay_steps=bc.total_updates,
        end_fraction=bc.lr_end_fraction,
    )
    extra = {}
    if extension is not None:
        state, extra = extension.before_update(state, rollout)
    # LEARN
    state, metrics = update_fn(state, rollout, config)
    base = _base(state, extension)
    with_cost = extension is not None and extension.with_cost
    return state, {
        **metrics,
        **extra,
        **episode_metrics(info, with_cost=with_cost),
        "train/lr": lr,
        "train/env_steps": base.step * bc.batch_size,
        "train/num_updates": base.num_updates,
    }


def _split_key(state: Any, extension: Extension | None) -> tuple[Any, PRNGKey]:
    base = _base(state, extension)
    key, sub = jax.random.split(base.key)
    base = base.replace(key=key)
    return (base if extension is None else state.replace(base=base)), sub


def make_run(
    config: Any,
    env: Any,
    env_params: Any,
    *,
    collect_fn: CollectFn,
    update_fn: UpdateFn,
    eval_fn: EvalFn,
    eval_names: tuple[str, ...] = EVAL_NAMES,
    extension: Extension | None = None,
) -> Callable[[Any], tuple[Any, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing one chunk.

    A chunk is ``iters_per_chunk`` iterations then, when ``num_eval_episodes >
    0``, ``eval_fn(state.params, key, config, env, env_params)`` (``NaN`` rows
    named ``eval_names`` otherwise); metrics have a leading
    ``[iters_per_chunk]`` axis. ``env`` is wrapped in the log wrapper for
    collecting; ``eval_fn`` sees it unwrapped.
    """
    bc = _base(config, extension)
    inner = log_unwrap(env)
    body = functools.partial(
        _iteration,
        config=config,
        env=log_wrap(inner),
        env_params=env_params,
        collect_fn=collect_fn,
        update_fn=update_fn,
        extension=extension,
    )

    def evaluate(state: Any, key: PRNGKey) -> Metrics:
        return eval_fn(state.params, key, config, inner, env_params)

    def run(state: Any) -> tuple[Any, Metrics]:
        return run_chunk(
            body,
            state,
            bc.iters_per_chunk,
            evaluate=evaluate if bc.num_eval_episodes > 0 else None,
            eval_names=eval_names,
            split_key=functools.partial(_split_key, extension=extension),
        )

    return run


def make_train(
    config: Any,
    env: Any,
    env_params: Any,
    *,
    init_fn: Callable[[PRNGKey, Any, Any, Any], Any],
    **run_kw: Any,
) -> Callable[[PRNGKey], tuple[Any, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: ``init_fn``, then the chunks.

    ``init_fn(key, env, env_params, config)`` (``env`` unwrapped) then
    ``num_chunks`` calls of :func:`make_run`'s ``run`` (``run_kw`` its keyword
    arguments); metrics have a leading ``[num_chunks * iters_per_chunk]``
    axis.
    """
    run = make_run(config, env, env_params, **run_kw)
    inner = log_unwrap(env)
    bc = _base(config, run_kw.get("extension"))
    return chunked_train(
        lambda key: init_fn(key, inner, env_params, config), run, bc.num_chunks
    )
