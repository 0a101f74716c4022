"""Tests for jaxrl.buffer against a NumPy ring-buffer reference."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxrl import buffer
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition, example

OBS_DIM = 3

# Shared jitted entry points: tests reuse shapes so each compiles only a few times.
_add = jax.jit(buffer.add)
_sample = jax.jit(buffer.sample, static_argnums=2)
_init = jax.jit(buffer.init, static_argnums=1)


def _item() -> Transition:
    return example(jnp.zeros(OBS_DIM, jnp.float32), jnp.int32(0), {"cost": 0.0})


def _batch(ids: np.ndarray) -> Transition:
    """Transitions whose every field encodes the item id (samples are traceable)."""
    ids = np.asarray(ids)
    f = ids.astype(np.float32)
    return Transition(
        obs=jnp.asarray(np.repeat(f[:, None], OBS_DIM, axis=1)),
        action=jnp.asarray(ids, jnp.int32),
        reward=jnp.asarray(f * 2.0),
        next_obs=jnp.asarray(np.repeat(f[:, None] + 0.5, OBS_DIM, axis=1)),
        terminated=jnp.asarray(ids % 2 == 0),
        truncated=jnp.asarray(ids % 3 == 0),
        extras={"cost": jnp.asarray(f * 0.25)},
    )


class _RingReference:
    """Plain NumPy circular buffer: the independent reference for FIFO overwrite."""

    def __init__(self, capacity: int) -> None:
        self.slots = np.zeros(capacity, np.int64)
        self.insert = 0
        self.count = 0

    def add(self, ids: np.ndarray) -> None:
        for i in ids:  # one at a time, the obvious way
            self.slots[self.insert] = i
            self.insert = (self.insert + 1) % len(self.slots)
            self.count = min(self.count + 1, len(self.slots))


def _assert_consistent(sample: Transition) -> np.ndarray:
    """Check that all fields of each sampled item belong to one item; return ids."""
    ids = np.asarray(sample.action)
    f = ids.astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(sample.obs), np.repeat(f[:, None], OBS_DIM, 1)
    )
    np.testing.assert_array_equal(np.asarray(sample.reward), f * 2.0)
    np.testing.assert_array_equal(np.asarray(sample.next_obs)[:, 0], f + 0.5)
    np.testing.assert_array_equal(np.asarray(sample.terminated), ids % 2 == 0)
    np.testing.assert_array_equal(np.asarray(sample.truncated), ids % 3 == 0)
    np.testing.assert_array_equal(np.asarray(sample.extras["cost"]), f * 0.25)
    return ids


class InitTest(parameterized.TestCase):
    def test_shapes_and_dtypes(self):
        state = buffer.init(_item(), capacity=5)
        self.assertIsInstance(state.data, Transition)
        chex.assert_shape(state.data.obs, (5, OBS_DIM))
        chex.assert_shape(state.data.extras["cost"], (5,))
        self.assertEqual(state.data.action.dtype, jnp.int32)
        self.assertEqual(state.data.terminated.dtype, jnp.bool_)
        self.assertEqual(state.count.dtype, jnp.int32)
        self.assertEqual(state.insert.dtype, jnp.int32)
        self.assertEqual(int(buffer.size(state)), 0)
        self.assertEqual(buffer.capacity(state), 5)

    @parameterized.named_parameters(("zero", 0), ("negative", -2), ("float", 4.0))
    def test_bad_capacity(self, capacity):
        with pytest.raises(ConfigError, match="capacity"):
            buffer.init(_item(), capacity=capacity)


class AddTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_add_matches_numpy_ring(self):
        state = buffer.init(_item(), 8)
        state = self.variant(buffer.add)(state, _batch(np.arange(1, 5)))
        np.testing.assert_array_equal(
            np.asarray(state.data.action), [1, 2, 3, 4, 0, 0, 0, 0]
        )
        self.assertEqual((int(state.insert), int(buffer.size(state))), (4, 4))

    def test_fifo_overwrite_matches_numpy_ring(self):
        capacity = 7
        state = _init(_item(), capacity)
        ref = _RingReference(capacity)
        next_id = 1
        for n in (4, 4, 4, 12, 4):  # fills, crosses the end, wraps, and n > capacity
            ids = np.arange(next_id, next_id + n)
            next_id += n
            state = _add(state, _batch(ids))
            ref.add(ids)
            np.testing.assert_array_equal(np.asarray(state.data.action), ref.slots)
            self.assertEqual(int(state.insert), ref.insert)
            self.assertEqual(int(buffer.size(state)), ref.count)
        # Every field of every slot moved together.
        _assert_consistent(state.data)

    def test_dtype_mismatch_rejected(self):
        state = _init(_item(), 8)
        bad = _batch(np.arange(2)).replace(reward=jnp.zeros(2, jnp.int32))
        with pytest.raises(
            ConfigError, match=r"\.reward has dtype int32, the buffer stores float32"
        ):
            buffer.add(state, bad)

    def test_missing_extras_rejected(self):
        state = _init(_item(), 8)
        bad = _batch(np.arange(2)).replace(extras={})
        with pytest.raises(ConfigError, match=r"missing \[\"\.extras\['cost'\]\"\]"):
            buffer.add(state, bad)

    def test_shape_mismatch_rejected(self):
        state = _init(_item(), 8)
        bad = _batch(np.arange(2)).replace(obs=jnp.zeros((2, OBS_DIM + 1)))
        with pytest.raises(ConfigError, match=r"\.obs has shape \(2, 4\)"):
            buffer.add(state, bad)

    def test_unbatched_item_rejected(self):
        state = _init(_item(), 8)
        with pytest.raises(ConfigError, match="leading batch axis"):
            buffer.add(state, _item())

    def test_state_is_a_stable_scan_carry(self):
        state = _init(_item(), 8)
        xs = jnp.arange(1, 13, dtype=jnp.int32).reshape(3, 4)

        def body(s, ids):
            return buffer.add(s, _batch_traced(ids)), None

        state, _ = jax.lax.scan(body, state, xs)
        ref = _RingReference(8)
        ref.add(np.arange(1, 13))
        np.testing.assert_array_equal(np.asarray(state.data.action), ref.slots)


def _batch_traced(ids: jax.Array) -> Transition:
    f = ids.astype(jnp.float32)
    return Transition(
        obs=jnp.repeat(f[:, None], OBS_DIM, axis=1),
        action=ids.astype(jnp.int32),
        reward=f * 2.0,
        next_obs=jnp.repeat(f[:, None] + 0.5, OBS_DIM, axis=1),
        terminated=ids % 2 == 0,
        truncated=ids % 3 == 0,
        extras={"cost": f * 0.25},
    )


class SampleTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_only_filled_slots(self):
        state = _add(_init(_item(), 8), _batch(np.arange(1, 5)))
        sample = self.variant(buffer.sample, static_argnums=2)(
            state, jax.random.key(1), 256
        )
        self.assertIsInstance(sample, Transition)
        chex.assert_shape(sample.obs, (256, OBS_DIM))
        ids = _assert_consistent(sample)
        self.assertEqual(set(ids.tolist()), {1, 2, 3, 4})  # never an empty (zero) slot

    def test_only_live_items_after_overwrite(self):
        # Also covers batch_size (256) > capacity (8): sampling is with replacement.
        state = _add(_init(_item(), 8), _batch(np.arange(1, 13)))
        ids = _assert_consistent(_sample(state, jax.random.key(2), 256))
        self.assertEqual(set(ids.tolist()), set(range(5, 13)))

    @parameterized.named_parameters(("partially_filled", 8, 4), ("wrapped", 8, 12))
    def test_frequencies_roughly_uniform(self, capacity, num_added):
        state = _add(_init(_item(), capacity), _batch(np.arange(1, num_added + 1)))
        live = min(capacity, num_added)
        draws = 100_000
        ids = np.asarray(_sample(state, jax.random.key(3), draws).action)
        counts = np.bincount(ids, minlength=num_added + 1)[num_added + 1 - live :]
        self.assertEqual(counts.sum(), draws)
        expected = draws / live
        # Binomial sd is < sqrt(draws / live) < 160 here; 6 % of expected is > 4.7 sd.
        np.testing.assert_allclose(counts, expected, rtol=0.06)

    def test_empty_buffer_gives_zero_items(self):
        sample = _sample(_init(_item(), 8), jax.random.key(5), 256)
        for leaf in jax.tree.leaves(sample):
            self.assertFalse(np.any(np.asarray(leaf)))

    def test_same_key_reproduces(self):
        state = _add(_init(_item(), 8), _batch(np.arange(1, 13)))
        a = _sample(state, jax.random.key(6), 256)
        b = _sample(state, jax.random.key(6), 256)
        chex.assert_trees_all_equal(a, b)

    def test_vmap_over_seeds(self):
        num_seeds, capacity = 3, 8
        ids_in = jnp.arange(1, 1 + num_seeds * 10, dtype=jnp.int32)

        @jax.jit
        def fill(ids):
            def one(i):
                return buffer.add(buffer.init(_item(), capacity), _batch_traced(i))

            return jax.vmap(one)(ids)

        states = fill(ids_in.reshape(num_seeds, 10))
        chex.assert_shape(states.data.obs, (num_seeds, capacity, OBS_DIM))
        np.testing.assert_array_equal(np.asarray(states.count), [8] * 3)
        keys = jax.random.split(jax.random.key(7), num_seeds)
        samples = jax.jit(
            jax.vmap(buffer.sample, in_axes=(0, 0, None)), static_argnums=2
        )(states, keys, 256)
        chex.assert_shape(samples.obs, (num_seeds, 256, OBS_DIM))
        ids = np.asarray(samples.action)
        same_keys = jax.random.split(jax.random.key(7), num_seeds)  # fresh copy of keys
        for s in range(num_seeds):  # each seed samples only its own items
            self.assertEqual(set(ids[s].tolist()), set(range(3 + 10 * s, 11 + 10 * s)))
            one = jax.tree.map(lambda x, s=s: x[s], states)
            ref = _sample(one, same_keys[s], 256)  # unbatched: bitwise equal
            np.testing.assert_array_equal(np.asarray(ref.action), ids[s])
        # Different keys give different index patterns (positions within each seed).
        positions = ids - 10 * np.arange(num_seeds)[:, None]
        self.assertFalse(np.array_equal(positions[0], positions[1]))
        self.assertFalse(np.array_equal(positions[1], positions[2]))

    @parameterized.named_parameters(("zero", 0), ("float", 2.0))
    def test_bad_batch_size(self, batch_size):
        state = _init(_item(), 8)
        with pytest.raises(ConfigError, match="batch_size"):
            buffer.sample(state, jax.random.key(0), batch_size)

    def test_raw_key_rejected(self):
        state = _init(_item(), 8)
        with pytest.raises(ConfigError, match="typed PRNG key"):
            buffer.sample(state, jnp.zeros(2, jnp.uint32), 2)


class CanSampleTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_threshold_chosen_at_call_time(self):
        state = _add(_init(_item(), 8), _batch(np.arange(1, 5)))
        can = self.variant(buffer.can_sample, static_argnums=1)
        self.assertTrue(bool(can(state, 0)))
        self.assertTrue(bool(can(state, 4)))
        self.assertFalse(bool(can(state, 5)))
        state = _add(state, _batch(np.arange(5, 17)))
        self.assertTrue(bool(can(state, 8)))

    def test_min_size_above_capacity_rejected(self):
        with pytest.raises(
            ConfigError, match=r"min_size \(9\) exceeds the buffer capacity \(8\)"
        ):
            buffer.can_sample(_init(_item(), 8), 9)

    def test_negative_min_size_rejected(self):
        with pytest.raises(ConfigError, match="min_size"):
            buffer.can_sample(_init(_item(), 8), -1)


class SampleDatasetTest(parameterized.TestCase):
    def test_samples_uniformly_from_dataset(self):
        data = _batch(np.arange(1, 6))
        sample = jax.jit(buffer.sample_dataset, static_argnums=2)(
            data, jax.random.key(8), 50_000
        )
        ids = _assert_consistent(sample)
        counts = np.bincount(ids, minlength=6)[1:]
        np.testing.assert_allclose(counts, 10_000, rtol=0.06)

    def test_mismatched_leading_axes_rejected(self):
        data = _batch(np.arange(1, 6)).replace(reward=jnp.zeros(4))
        with pytest.raises(ConfigError, match="leading axis N"):
            buffer.sample_dataset(data, jax.random.key(0), 2)

    def test_empty_dataset_rejected(self):
        with pytest.raises(ConfigError, match="empty"):
            buffer.sample_dataset({"x": jnp.zeros((0, 2))}, jax.random.key(0), 2)
