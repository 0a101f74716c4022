"""Tests of jaxrl.loop: the chunk and its evaluation cadence.

(``greedy_evaluation`` runs in every agent's contract case with evaluation.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import loop


@struct.dataclass
class _State:
    x: jax.Array
    key: jax.Array


def _body(state, _):
    return state.replace(x=state.x + 1), {"train/x": state.x}


def test_run_chunk_evaluates_once_on_the_last_row_with_a_key_split_off():
    key = jax.random.key(7)
    seen = []

    def evaluate(state, k):
        seen.append(k)
        return {"eval/x": state.x * 10.0, "eval/u": jax.random.uniform(k)}

    state, metrics = loop.run_chunk(
        _body, _State(x=jnp.int32(0), key=key), 4, evaluate=evaluate
    )
    key_next, k_eval = jax.random.split(jax.random.key(7))  # the same split
    np.testing.assert_array_equal(metrics["train/x"], [0, 1, 2, 3])
    np.testing.assert_array_equal(metrics["eval/x"], [np.nan] * 3 + [40.0])
    assert metrics["eval/x"].dtype == jnp.float32
    np.testing.assert_array_equal(
        metrics["eval/u"][-1], jax.random.uniform(k_eval).astype(jnp.float32)
    )
    np.testing.assert_array_equal(
        jax.random.key_data(state.key), jax.random.key_data(key_next)
    )
    assert len(seen) == 1


def test_run_chunk_without_evaluation_keeps_the_key_and_names_nan_rows():
    key = jax.random.key(1)
    state, metrics = loop.run_chunk(
        _body, _State(x=jnp.int32(5), key=key), 3, eval_names=loop.EVAL_NAMES
    )
    assert int(state.x) == 8
    np.testing.assert_array_equal(
        jax.random.key_data(state.key), jax.random.key_data(key)
    )
    for name in ("eval/return", "eval/length"):
        assert np.isnan(np.asarray(metrics[name])).all()
        assert metrics[name].shape == (3,)
