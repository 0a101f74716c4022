"""Shared loop of the exact (tabular) agents on a known ``FiniteMDP``.

The agents built on this module (vi_tabular, mvi_tabular, dual_tabular,
cmdp_tabular, distributional_dp) read the model from the environment
parameters (``env_params.mdp``, :func:`jaxrl.envs.finite_mdp.mdp_from_params`)
and draw no samples: one ``update(state, mdp, config)`` is one sweep (or one
primal-dual step) on the whole table. They differ in their ``Config``,
``State``, initial state and ``update`` (noisy backups, regularisation, duals
stay agent-specific); this module holds the rest once:

* :func:`mdp_of` / :func:`init`: the MDP of the environment (with an optional
  agent check, e.g. "has costs") and the agent's initial state built from it;
* :func:`make_run`: ``run(state)`` is ``iters_per_chunk`` updates in one
  ``lax.scan`` (:func:`jaxrl.loop.run_chunk`). An optional
  ``reference_fn(mdp, config)`` is computed once per chunk *before* the scan
  (an oracle such as ``J*`` or ``Q*``; outside the scan so its solves never run
  concurrently with the updates', docs D4) and handed to
  ``metrics_fn(state, metrics, mdp, reference, config) -> metrics``, whose
  entries join each update's metrics (exact suboptimality, distances to the
  optimum, ...);
* :func:`make_train`: ``init`` then ``num_chunks`` runs
  (:func:`jaxrl.loop.chunked_train`), bitwise equal to calling them in turn.

The loop reads ``iters_per_chunk`` and ``num_chunks`` of the config and
nothing of the state. This module is private to ``agents``; its names are not
part of the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxrl import config as config_lib
from jaxrl.envs import finite_mdp
from jaxrl.loop import chunked_train, run_chunk
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import exact_dp
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "optimal_performance",
    "UpdateFn",
    "ReferenceFn",
    "MetricsFn",
    "mdp_of",
    "init",
    "make_run",
    "make_train",
]

UpdateFn = Callable[[Any, FiniteMDP, Any], tuple[Any, Metrics]]
"""``update(state, mdp, config) -> (state, metrics)``: one sweep."""

ReferenceFn = Callable[[FiniteMDP, Any], Any]
"""``reference(mdp, config) -> reference``: computed once per chunk."""

MetricsFn = Callable[[Any, Metrics, FiniteMDP, Any, Any], Metrics]
"""``metrics(state, update_metrics, mdp, reference, config) -> extra metrics``."""


def mdp_of(
    env_params: ArrayTree,
    agent: str,
    check: Callable[[FiniteMDP], None] | None = None,
) -> FiniteMDP:
    """Return the ``FiniteMDP`` in ``env_params`` (``ConfigError`` naming ``agent``).

    Args:
      env_params: params holding the MDP in ``.mdp``.
      agent: the agent's name, for the error message.
      check: optional ``check(mdp)`` raising ``ConfigError`` (e.g. no costs).
    """
    mdp = finite_mdp.mdp_from_params(env_params, agent)
    if check is not None:
        check(mdp)
    return mdp


def init(
    key: PRNGKey,
    env_params: ArrayTree,
    config: Any,
    *,
    agent: str,
    init_fn: Callable[[PRNGKey, FiniteMDP, Any], Any],
    check: Callable[[FiniteMDP], None] | None = None,
) -> Any:
    """Return ``init_fn(key, mdp, config)`` for the MDP of ``env_params``."""
    return init_fn(key, mdp_of(env_params, agent, check), config)


def optimal_performance(mdp: FiniteMDP, config: Any) -> Array:
    """``J*`` by policy iteration (``config.oracle_iters`` steps): a ``reference_fn``
    for agents whose metrics are suboptimalities ``J* - J(pi)``."""
    return exact_dp.optimal_performance(mdp, config.oracle_iters)


def make_run(
    config: Any,
    env: object,
    env_params: ArrayTree,
    *,
    agent: str,
    update_fn: UpdateFn,
    reference_fn: ReferenceFn | None = None,
    metrics_fn: MetricsFn | None = None,
    check: Callable[[FiniteMDP], None] | None = None,
) -> Callable[[Any], tuple[Any, Metrics]]:
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` updates.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the MDP.
      agent: the agent's name (error messages).
      update_fn: ``update(state, mdp, config) -> (state, metrics)``.
      reference_fn: ``reference(mdp, config)``, once per chunk before the scan
        (``None``: the reference is ``None``).
      metrics_fn: ``metrics_fn(state, metrics, mdp, reference, config)``, extra
        metrics of the updated state (``None``: none).
      check: optional MDP check (see :func:`mdp_of`).

    Returns:
      ``run``; its metrics have a leading ``[iters_per_chunk]`` axis.
    """
    del env
    config_lib.validate(config)
    mdp = mdp_of(env_params, agent, check)

    def run(state: Any) -> tuple[Any, Metrics]:
        reference = None if reference_fn is None else reference_fn(mdp, config)

        def body(state: Any, _: None) -> tuple[Any, Metrics]:
            state, metrics = update_fn(state, mdp, config)
            if metrics_fn is None:
                return state, metrics
            return state, {
                **metrics,
                **metrics_fn(state, metrics, mdp, reference, config),
            }

        return run_chunk(body, state, config.iters_per_chunk)

    return run


def make_train(
    config: Any,
    env: object,
    env_params: ArrayTree,
    *,
    init_fn: Callable[[PRNGKey, Any, ArrayTree, Any], Any],
    **run_kw: Any,
) -> Callable[[PRNGKey], tuple[Any, Metrics]]:
    """Return ``train(key) -> (state, metrics)``: ``init_fn`` then ``num_chunks`` runs.

    ``init_fn(key, env, env_params, config)`` is the agent's ``init``;
    ``run_kw`` are :func:`make_run`'s keyword arguments. Metrics have a leading
    ``[num_chunks * iters_per_chunk]`` axis.
    """
    run = make_run(config, env, env_params, **run_kw)
    return chunked_train(
        lambda key: init_fn(key, env, env_params, config), run, config.num_chunks
    )
