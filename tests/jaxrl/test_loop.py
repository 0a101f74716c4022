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


def test_tree_nbytes_counts_shapes_times_itemsize_without_allocating():
    tree = {
        "w": jax.ShapeDtypeStruct((3, 4), jnp.float32),  # 48
        # 4e12 bytes, never allocated
        "buffer": jax.ShapeDtypeStruct((10**12, 2), jnp.bfloat16),
        "done": np.zeros((5,), np.bool_),  # 5
        "step": jnp.int32(1),  # 4
        "keys": jax.random.split(jax.random.key(0), 3),  # 3 threefry keys of 8 bytes
        "scale": 2.0,  # a Python float: JAX's default float (4 bytes; 8 under x64)
        "none": None,  # not a leaf
    }
    scale_bytes = jnp.asarray(2.0).dtype.itemsize
    assert loop.tree_nbytes(tree) == 48 + 4 * 10**12 + 5 + 4 + 24 + scale_bytes
    assert loop.tree_nbytes(jax.eval_shape(lambda: tree["keys"])) == 24
    assert loop.tree_nbytes({}) == 0


def _np_tree_is_finite(tree):
    """NumPy reference: every floating (or complex) leaf finite; keys/ints ignored."""
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            continue
        if not jnp.issubdtype(leaf.dtype, jnp.inexact):  # bfloat16 is not np.inexact
            continue
        arr = np.asarray(leaf, np.complex128 if jnp.iscomplexobj(leaf) else np.float64)
        if not np.isfinite(arr).all():
            return False
    return True


def test_tree_is_finite_matches_numpy_and_ignores_keys_and_ints():
    rng = np.random.default_rng(0)
    base = {
        "w": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(4,)), jnp.bfloat16),
        "c": jnp.asarray([1 + 2j], jnp.complex64),
        "n": jnp.int32(7),
        "flag": jnp.array([True, False]),
        "key": jax.random.key(0),
    }
    cases = [
        base,
        {},
        {"n": jnp.arange(3)},
        {"key": jax.random.split(jax.random.key(1))},
    ]
    for name, bad in [("w", np.nan), ("w", np.inf), ("b", -np.inf), ("c", np.nan)]:
        tree = dict(base)
        tree[name] = tree[name].at[0].set(bad)
        cases.append(tree)
    fn = jax.jit(loop.tree_is_finite)
    for tree in cases:
        got = fn(tree)
        assert got.shape == () and got.dtype == jnp.bool_
        assert bool(got) == _np_tree_is_finite(tree), tree
    # Under vmap: one flag per seed.
    w = jnp.stack([jnp.ones(3), jnp.array([1.0, jnp.nan, 1.0])])
    key = jax.random.split(jax.random.key(0), 2)
    flags = jax.vmap(loop.tree_is_finite)({"w": w, "key": key})
    np.testing.assert_array_equal(flags, [True, False])


def test_health_metrics_flags_the_last_row_only():
    ok = loop.health_metrics(_State(x=jnp.ones(2), key=jax.random.key(0)), 4)
    bad = loop.health_metrics(
        _State(x=jnp.array([1.0, jnp.inf]), key=jax.random.key(0)), 4
    )
    assert set(ok) == {"health/finite"}
    np.testing.assert_array_equal(ok["health/finite"], [np.nan] * 3 + [1.0])
    np.testing.assert_array_equal(bad["health/finite"], [np.nan] * 3 + [0.0])
    assert ok["health/finite"].dtype == jnp.float32
