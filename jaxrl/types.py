"""Type aliases and Protocols for the agent contract.

Every agent module in ``agents/`` exposes ``Config``, ``State``, ``init``, ``act``,
``loss``, ``update``, ``make_train`` and ``make_run`` with the signatures below
(see ``docs/`` and ``tests/test_agent_contract.py``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
from jax.typing import ArrayLike

Array = jax.Array
ArrayTree = Any
PRNGKey = jax.Array  # a typed key, made by jax.random.key
Params = Any
Metrics = dict[str, Array]

__all__ = [
    "Array",
    "ArrayLike",
    "ArrayTree",
    "PRNGKey",
    "Params",
    "Metrics",
    "InitFn",
    "ActFn",
    "UpdateFn",
    "TrainFn",
    "RunFn",
]


@runtime_checkable
class InitFn(Protocol):
    """``init(key, env, env_params, config) -> State``."""

    def __call__(self, key: PRNGKey, env: Any, env_params: Any, config: Any) -> Any: ...


@runtime_checkable
class ActFn(Protocol):
    """``act(params, obs, key, config, *, greedy=False) -> action`` (unbatched obs)."""

    def __call__(
        self, params: Params, obs: ArrayTree, key: PRNGKey, config: Any, *, greedy: bool = False
    ) -> Array: ...


@runtime_checkable
class UpdateFn(Protocol):
    """``update(state, data, config) -> (State, Metrics)``: one learning step."""

    def __call__(self, state: Any, data: Any, config: Any) -> tuple[Any, Metrics]: ...


@runtime_checkable
class TrainFn(Protocol):
    """``train(key) -> (State, Metrics)``: a whole run fused into one ``lax.scan``."""

    def __call__(self, key: PRNGKey) -> tuple[Any, Metrics]: ...


@runtime_checkable
class RunFn(Protocol):
    """``run(state) -> (State, Metrics)``: advance one chunk of ``iters_per_chunk``."""

    def __call__(self, state: Any) -> tuple[Any, Metrics]: ...
