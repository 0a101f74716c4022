"""The agents' shared loop plumbing: chunks, evaluation at a static cadence, runs.

Every agent exposes ``make_run(config, env, env_params) -> run`` (one chunk) and
``make_train(...) -> train`` (a whole run). The pieces every agent family's
loop is built from live here once:

* :func:`run_chunk`: one chunk, ``lax.scan`` of an iteration function, then an
  optional evaluation whose metrics fill the chunk's last row (``NaN`` on the
  others), so the cadence is static: once per chunk;
* :func:`greedy_evaluation`: the standard ``"eval/return"``, ``"eval/length"``
  (and per-step ``info`` means such as ``"eval/cost"``) of a greedy policy;
* :func:`chunked_train`: ``train(key)`` as ``init`` followed by ``num_chunks``
  calls of ``run``, by construction (the checkpoint/resume contract);
* :func:`tree_is_finite` and :func:`health_metrics`: whether a state has only
  finite floats, as a ``"health/finite"`` metric row (the drivers' per-chunk
  divergence check; agents' own ``make_run`` outputs do not carry it);
* :func:`tree_nbytes`: the bytes a state or metrics tree occupies, from
  ``jax.eval_shape`` results too (sizing a run before allocating it).

Environment wrappers are not core: an agent loop wraps its environment with
:func:`jaxrl.envs.wrappers.log_wrap` and reads the episode statistics of the
wrapper's ``info`` with :func:`jaxrl.envs.wrappers.episode_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl import rollout
from jaxrl.metrics import HEALTH_METRIC
from jaxrl.types import Array, ArrayTree, Metrics, Params, PRNGKey

__all__ = [
    "chunked_train",
    "flatten_chunks",
    "run_chunk",
    "split_state_key",
    "greedy_evaluation",
    "tree_nbytes",
    "tree_is_finite",
    "health_metrics",
    "EVAL_NAMES",
]

EVAL_NAMES: tuple[str, ...] = ("eval/return", "eval/length")
"""Metric names of :func:`greedy_evaluation` without ``extras_keys``."""


def split_state_key(state: Any) -> tuple[Any, PRNGKey]:
    """Split ``state.key`` into ``(key, sub)``; return ``(state with key, sub)``."""
    key, sub = jax.random.split(state.key)
    return state.replace(key=key), sub


def tree_is_finite(tree: ArrayTree) -> Array:
    """Return whether every floating leaf of ``tree`` is finite (a bool scalar).

    Floating and complex leaves count; integer, boolean and PRNG-key leaves are
    ignored, and a tree without floating leaves is finite. Pure and jit-able:
    the drivers evaluate it on each seed's state after every chunk (under
    ``vmap`` it gives one flag per seed) to detect a diverged run.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> bool(tree_is_finite({"w": jnp.ones(3), "key": jax.random.key(0), "n": 7}))
      True
      >>> bool(tree_is_finite({"w": jnp.array([1.0, jnp.inf])}))
      False
    """
    ok = jnp.asarray(True)
    for leaf in jax.tree.leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
            continue
        leaf = jnp.asarray(leaf)
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok


def health_metrics(state: Any, length: int) -> Metrics:
    """The drivers' per-chunk divergence check as a metric row.

    Returns ``{"health/finite": [length]}`` (float32): 1.0 if every float of
    ``state`` is finite (:func:`tree_is_finite`), else 0.0, on the last row
    (the state after the chunk) and NaN on the others, like an evaluation. The
    name is :data:`jaxrl.metrics.HEALTH_METRIC`; the host reads the rows with
    :func:`jaxrl.metrics.first_divergence`.

    Examples:
      >>> import jax.numpy as jnp
      >>> health_metrics({"w": jnp.array([jnp.nan])}, 3)["health/finite"]
      Array([nan, nan,  0.], dtype=float32)
    """
    flag = tree_is_finite(state).astype(jnp.float32)
    # concatenated, not ``.at[-1]``: no index arithmetic, so any length traces
    row = jnp.concatenate([jnp.full((length - 1,), jnp.nan, jnp.float32), flag[None]])
    return {HEALTH_METRIC: row}


def run_chunk(
    iteration: Callable[[Any, Any], tuple[Any, Metrics]],
    state: Any,
    length: int,
    *,
    evaluate: Callable[[Any, PRNGKey], Metrics] | None = None,
    eval_names: tuple[str, ...] = (),
    split_key: Callable[[Any], tuple[Any, PRNGKey]] = split_state_key,
) -> tuple[Any, Metrics]:
    """Run ``length`` iterations with ``lax.scan``, then maybe evaluate.

    Args:
      iteration: the scan body ``(state, None) -> (state, metrics)``.
      state: the carry.
      length: static number of iterations (``iters_per_chunk``).
      evaluate: ``evaluate(state, key) -> {name: []}`` run once after the
        iterations with a key split off the state by ``split_key``; its values
        fill the last row of each metric. ``None``: no evaluation this chunk.
      eval_names: metric names given all-``NaN`` rows when ``evaluate`` is
        ``None`` (so a run's metric names do not depend on whether it evaluates).
      split_key: ``state -> (state, key)``; default :func:`split_state_key`.

    Returns:
      ``(state, metrics)``: the iterations' metrics ``[length, ...]`` plus one
      float32 ``[length]`` row per evaluation metric, ``NaN`` except the last.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> body = lambda s, _: (s + 1, {"s": s})
      >>> _, m = run_chunk(body, jnp.int32(0), 3, evaluate=None, eval_names=("eval/x",))
      >>> m["s"], m["eval/x"]
      (Array([0, 1, 2], dtype=int32), Array([nan, nan, nan], dtype=float32))
    """
    state, metrics = jax.lax.scan(iteration, state, None, length=length)
    nan_row = jnp.full((length,), jnp.nan, jnp.float32)
    if evaluate is None:
        for name in eval_names:
            metrics[name] = nan_row
    else:
        state, k_eval = split_key(state)
        for name, value in evaluate(state, k_eval).items():
            # float32 rows as documented (a float64 value under x64 is cast)
            metrics[name] = nan_row.at[-1].set(jnp.asarray(value, jnp.float32))
    return state, metrics


def greedy_evaluation(
    act_fn: Callable[..., Array],
    params: Params,
    key: PRNGKey,
    config: Any,
    env: Any,
    env_params: Any,
    *,
    num_episodes: int,
    max_steps: int,
    extras_keys: tuple[str, ...] = (),
) -> Metrics:
    """Return the mean statistics of ``num_episodes`` greedy episodes.

    The policy is ``act_fn(params, obs, None, config, greedy=True)`` on one
    observation, vmapped over the episodes (:func:`jaxrl.rollout.evaluate`).

    Args:
      act_fn: the agent's ``act``.
      params: what ``act_fn`` takes as ``params``.
      key: typed key.
      config: the config passed to ``act_fn``.
      env: the environment (unwrapped).
      env_params: its parameters.
      num_episodes: static number of episodes.
      max_steps: static step cap per episode.
      extras_keys: step ``info`` keys summed per episode (e.g. ``("cost",)``).

    Returns:
      ``"eval/return"``, ``"eval/length"`` and ``"eval/<k>"`` per extras key,
      float32 means over the episodes.
    """

    def policy(k: PRNGKey, obs: ArrayTree) -> Array:
        del k
        return jax.vmap(lambda o: act_fn(params, o, None, config, greedy=True))(obs)

    out = rollout.evaluate(
        key,
        env,
        env_params,
        policy,
        num_episodes,
        max_steps,
        extras_keys=tuple(extras_keys),
    )
    metrics = {
        "eval/return": jnp.mean(out["return"].astype(jnp.float32)),
        "eval/length": jnp.mean(out["length"].astype(jnp.float32)),
    }
    for k in extras_keys:
        metrics[f"eval/{k}"] = jnp.mean(out[k])
    return metrics


def base_cost_evaluation(
    act_fn: Callable[..., Array],
) -> Callable[[Params, PRNGKey, Any, Any, Any], Metrics]:
    """Return ``evaluate(params, key, config, env, env_params)`` with episode costs.

    For an agent built on a base agent: the episode count and step cap come
    from ``config.base`` (``num_eval_episodes``, ``eval_max_steps``) and the
    step ``info["cost"]`` is summed per episode, so the metrics are
    ``"eval/return"``, ``"eval/length"`` and ``"eval/cost"``
    (:func:`greedy_evaluation` of ``act_fn``). Build it once per agent module
    so that the function keeps one identity.
    """

    def evaluate(
        params: Params, key: PRNGKey, config: Any, env: Any, env_params: Any
    ) -> Metrics:
        return greedy_evaluation(
            act_fn,
            params,
            key,
            config,
            env,
            env_params,
            num_episodes=config.base.num_eval_episodes,
            max_steps=config.base.eval_max_steps,
            extras_keys=("cost",),
        )

    return evaluate


def flatten_chunks(metrics: Metrics) -> Metrics:
    """Merge the leading ``[num_chunks, iters_per_chunk]`` axes of every metric."""
    return jax.tree.map(lambda x: jnp.reshape(x, (-1, *x.shape[2:])), metrics)


def chunked_train(
    init: Callable[[PRNGKey], Any],
    run: Callable[[Any], tuple[Any, Metrics]],
    num_chunks: int,
) -> Callable[[PRNGKey], tuple[Any, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: ``init(key)`` then ``num_chunks`` runs.

    Args:
      init: ``key -> state``.
      run: ``state -> (state, metrics)`` advancing one chunk; metrics ``[I, ...]``.
      num_chunks: static number of chunks.

    Returns:
      ``train``; its metrics have a leading ``[num_chunks * I]`` axis. Use
      ``jax.jit(jax.vmap(train))(keys)`` for several seeds.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> run = lambda s: (s + 1, {"step": s + jnp.arange(2)})
      >>> train = chunked_train(lambda key: jnp.int32(0), run, 3)
      >>> train(jax.random.key(0))[1]["step"]
      Array([0, 1, 1, 2, 2, 3], dtype=int32)
    """

    def train(key: PRNGKey) -> tuple[Any, Metrics]:
        state = init(key)
        state, metrics = jax.lax.scan(
            lambda s, _: run(s), state, None, length=num_chunks
        )
        return state, flatten_chunks(metrics)

    return train


def tree_nbytes(tree: ArrayTree) -> int:
    """Return the bytes held by the array leaves of ``tree``, without allocating.

    Leaves may be arrays, ``jax.ShapeDtypeStruct`` (what ``jax.eval_shape``
    returns) or Python scalars; each counts ``prod(shape) * itemsize`` in exact
    Python integers. A typed PRNG key counts its key data (8 bytes for the
    default threefry key). So ``tree_nbytes(jax.eval_shape(init, key))`` is the
    memory of one seed's state before any of it exists.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> tree = {"w": jax.ShapeDtypeStruct((3, 4), jnp.float32), "key": jax.random.key(0)}
      >>> tree_nbytes(tree)
      56
    """
    total = 0
    for leaf in jax.tree.leaves(tree):
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            leaf = jax.typeof(leaf)
        total += math.prod(leaf.shape) * leaf.dtype.itemsize
    return total
