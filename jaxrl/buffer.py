"""Uniform replay buffer and offline sampler over ``Transition`` pytrees.

A :class:`BufferState` is a plain pytree (a ``flax.struct`` dataclass), so it is a
field of an agent ``State``: it is vmapped over seeds, carried through
``lax.scan``, donated to ``jit`` and checkpointed with everything else. Every
function here is pure; ``capacity``, ``batch_size`` and ``min_size`` are Python
ints (static), everything else may be traced.

Contract:

* ``add`` writes ``N`` items in order into a circular store of ``capacity`` slots
  (first in, first out): once full, the oldest items are overwritten. Adding
  ``N > capacity`` items at once is allowed and equals adding them one by one
  (only the last ``capacity`` survive).
* ``sample`` draws ``batch_size`` items uniformly **with replacement** from the
  filled slots only. Sampling an empty buffer returns copies of the all-zero item
  (guard with :func:`can_sample`).
* ``can_sample(state, min_size)`` is ``size(state) >= min_size`` with ``min_size``
  chosen at call time.

Why not ``flashbax.make_item_buffer``: the design planned a thin wrapper over the
flashbax item buffer, but it does not meet this contract cleanly:

* its sample batch size and ``min_length`` are fixed when the buffer object is
  made, and it rejects ``sample_batch_size > max_length`` even though sampling
  is with replacement (an artificial limit for ``batch_size > capacity``);
* ``min_length=0`` (or any ``min_length`` below the sequence length of 1) emits a
  ``UserWarning``, which our test suite turns into an error;
* its state carries an extra ``add_batch`` axis of size one, and its index is a
  weakly typed ``jnp.array(0)`` whose dtype follows ``jax_enable_x64``, so
  checkpoints and carried state would change with a global flag;
* input errors surface as bare ``AssertionError`` from ``chex`` instead of one
  line naming the problem.

Flashbax's sampling distribution itself is right (uniform over the filled part,
with a wrap-aware head), and this module keeps its verbs (``init``, ``add``,
``sample``, ``can_sample``) and its dtype guard on ``add``. The own store below
is about sixty lines: ``data`` holds ``[C, ...]`` leaves, ``insert`` is the next
slot to write and ``count`` the number of filled slots (both ``int32``). Filled
slots are always the physical slots ``[0, count)``, so uniform sampling needs no
head offset.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> from jaxrl import transition
  >>> item = transition.example(jnp.zeros(3), jnp.int32(0), {"cost": 0.0})
  >>> state = init(item, capacity=8)
  >>> batch = jax.tree.map(lambda x: jnp.stack([x] * 4), item)   # 4 items
  >>> state = add(state, batch)
  >>> int(size(state)), bool(can_sample(state, 4)), bool(can_sample(state, 5))
  (4, True, False)
  >>> sample(state, jax.random.key(0), 16).obs.shape
  (16, 3)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl.errors import ConfigError
from jaxrl.ops.sampling import uniform_index
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = [
    "MAX_CAPACITY",
    "BufferState",
    "init",
    "add",
    "sample",
    "can_sample",
    "size",
    "capacity",
    "sample_dataset",
]


@struct.dataclass
class BufferState:
    """Circular replay store.

    Attributes:
      data: the stored items, the structure of the ``example`` given to
        :func:`init` with every leaf shaped ``[C, ...]``.
      insert: ``int32[]``, the slot the next item is written to.
      count: ``int32[]``, number of filled slots, ``0 <= count <= C``.
    """

    data: ArrayTree
    insert: Array
    count: Array


MAX_CAPACITY = 2**30
"""The largest capacity: slot indices are int32 and ``insert + N < 2 * capacity``."""


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a Python int (static), got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    return value


def _check_key(key: Any) -> None:
    dtype = getattr(key, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jax.dtypes.prng_key):
        raise ConfigError(
            f"key must be a typed PRNG key from jax.random.key, got dtype {dtype}"
        )
    if key.shape != ():
        raise ConfigError(f"key must be a single key (shape ()), got shape {key.shape}")


def _leaves_with_paths(tree: ArrayTree) -> list[tuple[str, Any]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(path) or "<root>", leaf) for path, leaf in flat]


def capacity(state: BufferState) -> int:
    """Return the number of slots ``C`` of the buffer (a Python int)."""
    leaves = jax.tree.leaves(state.data)
    if not leaves:
        raise ConfigError("buffer holds no arrays (the example item had no leaves)")
    return int(leaves[0].shape[0])


def init(example: ArrayTree, capacity: int) -> BufferState:
    """Return an empty buffer for items shaped like ``example``.

    Args:
      example: ONE unbatched item, typically a :class:`~jaxrl.transition.Transition`
        (e.g. from :func:`jaxrl.transition.example`); only shapes and dtypes are used.
      capacity: number of slots ``C`` (Python int >= 1).

    Returns:
      A :class:`BufferState` whose ``data`` leaves are zeros shaped ``[C, ...]``.

    Raises:
      ConfigError: if ``capacity`` is not an int in ``[1, MAX_CAPACITY]`` or
        ``example`` has no arrays.

    Examples:
      >>> import jax.numpy as jnp
      >>> state = init({"x": jnp.zeros(2)}, capacity=5)
      >>> state.data["x"].shape, int(state.count)
      ((5, 2), 0)
    """
    _check_int("capacity", capacity, 1)
    if capacity > MAX_CAPACITY:  # slot arithmetic (insert + N) must fit in int32
        raise ConfigError(
            f"capacity must be <= {MAX_CAPACITY} (int32 slot indices), got {capacity}"
        )
    leaves = jax.tree.leaves(example)
    if not leaves:
        raise ConfigError("buffer example item has no array leaves")
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.result_type(x)), example
    )
    zero = jnp.zeros((), jnp.int32)
    return BufferState(data=data, insert=zero, count=zero)


def _check_batch(state: BufferState, batch: ArrayTree) -> int:
    """Check structure, per-item shapes and dtypes; return the batch size ``N``."""
    want = jax.tree.structure(state.data)
    got = jax.tree.structure(batch)
    if want != got:
        want_paths = {p for p, _ in _leaves_with_paths(state.data)}
        got_paths = {p for p, _ in _leaves_with_paths(batch)}
        missing = sorted(want_paths - got_paths)
        extra = sorted(got_paths - want_paths)
        detail = (
            f"missing {missing}, unexpected {extra}"
            if missing or extra
            else (f"{got} vs stored {want}")
        )
        raise ConfigError(
            f"buffer add: batch structure differs from the stored items: {detail}"
        )
    sizes = set()
    for (path, stored), (_, new) in zip(
        _leaves_with_paths(state.data), _leaves_with_paths(batch), strict=True
    ):
        new_shape = jnp.shape(new)
        if len(new_shape) != stored.ndim or new_shape[1:] != stored.shape[1:]:
            raise ConfigError(
                f"buffer add: leaf {path} has shape {new_shape}, expected "
                f"[N, *{stored.shape[1:]}] (a leading batch axis over items)"
            )
        new_dtype = jnp.result_type(new)
        if new_dtype != stored.dtype:
            raise ConfigError(
                f"buffer add: leaf {path} has dtype {new_dtype}, "
                f"the buffer stores {stored.dtype}"
            )
        sizes.add(new_shape[0])
    if len(sizes) != 1:
        raise ConfigError(
            f"buffer add: leaves disagree on the batch size N: {sorted(sizes)}"
        )
    return sizes.pop()


def add(state: BufferState, batch: ArrayTree) -> BufferState:
    """Append ``N`` items (first in, first out), overwriting the oldest once full.

    Args:
      state: the buffer.
      batch: items with a leading axis ``[N, ...]`` and exactly the structure and
        dtypes of the ``example`` given to :func:`init` (e.g. one per environment,
        or a flattened ``[T*E]`` rollout).

    Returns:
      The new buffer; equal to adding the ``N`` items one at a time in order.

    Raises:
      ConfigError: on a structure, shape or dtype mismatch with the stored items.

    Examples:
      >>> import jax.numpy as jnp
      >>> state = add(init(jnp.int32(0), capacity=3), jnp.arange(5, dtype=jnp.int32))
      >>> state.data.tolist(), int(state.insert), int(state.count)
      ([3, 4, 2], 2, 3)
    """
    n = _check_batch(state, batch)
    cap = capacity(state)
    if n == 0:
        return state
    if n > cap:  # only the last `cap` items survive; keep scatter indices unique
        skip = n - cap
        batch = jax.tree.map(lambda x: x[skip:], batch)
        start = (state.insert + skip) % cap
        n_write = cap
    else:
        start = state.insert
        n_write = n
    idx = (start + jnp.arange(n_write, dtype=jnp.int32)) % cap
    data = jax.tree.map(
        lambda buf, x: buf.at[idx].set(jnp.asarray(x), unique_indices=True),
        state.data,
        batch,
    )
    insert = ((state.insert + n) % cap).astype(jnp.int32)
    count = jnp.minimum(state.count + n, cap).astype(jnp.int32)
    return BufferState(data=data, insert=insert, count=count)


def sample(state: BufferState, key: PRNGKey, batch_size: int) -> Transition:
    """Draw ``batch_size`` items uniformly with replacement from the filled slots.

    Args:
      state: the buffer.
      key: a typed PRNG key (consumed; pass a fresh subkey).
      batch_size: ``B``, a Python int >= 1 (may exceed the capacity).

    Returns:
      The items, ``Transition[B]`` (the structure of the stored items, every leaf
      ``[B, ...]``). From an empty buffer: ``B`` copies of the all-zero item.

    Raises:
      ConfigError: if ``batch_size`` is not a positive int or ``key`` is not a
        typed key.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> state = add(init(jnp.int32(0), capacity=4), jnp.array([7, 9], jnp.int32))
      >>> s = sample(state, jax.random.key(0), 6)
      >>> s.shape, set(s.tolist()) <= {7, 9}
      ((6,), True)
    """
    _check_int("batch_size", batch_size, 1)
    _check_key(key)
    idx = uniform_index(key, (batch_size,), jnp.maximum(state.count, 1))
    return jax.tree.map(lambda x: x[idx], state.data)


def can_sample(state: BufferState, min_size: int) -> Array:
    """Return ``bool[]``: the buffer holds at least ``min_size`` items.

    Args:
      state: the buffer.
      min_size: a Python int with ``0 <= min_size <= capacity``.

    Raises:
      ConfigError: if ``min_size`` is negative or exceeds the capacity (the
        answer would never become true).

    Examples:
      >>> import jax.numpy as jnp
      >>> bool(can_sample(init(jnp.float32(0), capacity=4), 1))
      False
    """
    _check_int("min_size", min_size, 0)
    cap = capacity(state)
    if min_size > cap:
        raise ConfigError(
            f"min_size ({min_size}) exceeds the buffer capacity ({cap}); "
            "can_sample would never be true"
        )
    return state.count >= min_size


def size(state: BufferState) -> Array:
    """Return ``int32[]``: the number of filled slots (at most the capacity).

    Examples:
      >>> import jax.numpy as jnp
      >>> int(size(add(init(jnp.float32(0), 4), jnp.ones(6))))
      4
    """
    return state.count


def sample_dataset(data: Transition, key: PRNGKey, batch_size: int) -> Transition:
    """Draw ``batch_size`` items uniformly with replacement from an offline dataset.

    Args:
      data: a device-resident dataset, every leaf ``[N, ...]`` with ``N >= 1``.
      key: a typed PRNG key (consumed).
      batch_size: ``B``, a Python int >= 1.

    Returns:
      ``Transition[B]`` (the structure of ``data``, leaves ``[B, ...]``).

    Raises:
      ConfigError: if the leaves disagree on ``N``, ``N == 0``, ``batch_size`` is
        not a positive int or ``key`` is not a typed key.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sample_dataset({"x": jnp.arange(10)}, jax.random.key(0), 3)["x"].shape
      (3,)
    """
    _check_int("batch_size", batch_size, 1)
    _check_key(key)
    leaves = _leaves_with_paths(data)
    if not leaves:
        raise ConfigError("sample_dataset: the dataset has no array leaves")
    sizes = {p: (jnp.shape(x)[0] if jnp.ndim(x) else None) for p, x in leaves}
    if len(set(sizes.values())) != 1:
        raise ConfigError(
            f"sample_dataset: leaves disagree on the leading axis N: {sizes}"
        )
    n = next(iter(sizes.values()))
    if not n:
        raise ConfigError(
            "sample_dataset: the dataset is empty (N == 0) or has scalar leaves"
        )
    if n >= 2**31:
        raise ConfigError(
            f"sample_dataset: N = {n} items is more than int32 indices reach"
        )
    idx = uniform_index(key, (batch_size,), n)
    return jax.tree.map(lambda x: jnp.asarray(x)[idx], data)
