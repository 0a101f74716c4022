"""Chunked training: ``train(key)`` as ``init`` followed by ``num_chunks`` chunk calls.

Every agent exposes ``make_run(config, env, env_params) -> run`` (one chunk) and
``make_train(...) -> train`` (a whole run). :func:`chunked_train` builds the
latter from the former so that ``train(key)`` is, by construction, ``init``
followed by ``num_chunks`` calls of ``run``: the checkpoint/resume contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxrl.types import Metrics, PRNGKey

__all__ = ["chunked_train", "flatten_chunks"]


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
