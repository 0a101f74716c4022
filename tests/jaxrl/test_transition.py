"""Tests for jaxrl.transition helpers."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxrl import transition as tr_lib
from jaxrl.transition import Transition


def _batch(shape=(3, 4), obs_dim=2, seed=0) -> Transition:
    rng = np.random.default_rng(seed)
    return Transition(
        obs=jnp.asarray(rng.normal(size=(*shape, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.integers(0, 3, size=shape), jnp.int32),
        reward=jnp.asarray(rng.normal(size=shape), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(*shape, obs_dim)), jnp.float32),
        terminated=jnp.asarray(rng.random(shape) < 0.3),
        truncated=jnp.asarray(rng.random(shape) < 0.3),
        extras={"cost": jnp.asarray(rng.random(shape), jnp.float32)},
    )


class DiscountTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("gamma_099", 0.99), ("gamma_zero", 0.0), ("gamma_one", 1.0)
    )
    def test_gamma_times_not_terminated(self, gamma):
        batch = _batch()
        got = self.variant(tr_lib.discount)(batch, gamma)
        term = np.asarray(batch.terminated)
        expected = np.array(
            [[gamma * (0.0 if t else 1.0) for t in row] for row in term]
        )
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        self.assertEqual(got.dtype, jnp.float32)

    def test_truncation_still_bootstraps(self):
        batch = _batch()
        batch = batch.replace(
            terminated=jnp.zeros_like(batch.terminated),
            truncated=jnp.ones_like(batch.truncated),
        )
        np.testing.assert_allclose(tr_lib.discount(batch, 0.9), 0.9, rtol=1e-6)

    def test_traced_gamma_vmaps(self):
        batch = _batch((5,))
        gammas = jnp.array([0.5, 0.9])
        got = jax.vmap(tr_lib.discount, in_axes=(None, 0))(batch, gammas)
        chex.assert_shape(got, (2, 5))


class EpisodeEndTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_or_of_flags(self):
        batch = _batch()
        got = self.variant(tr_lib.episode_end)(batch)
        np.testing.assert_array_equal(
            got, np.asarray(batch.terminated) | np.asarray(batch.truncated)
        )


class FlattenBatchTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_time_major_to_flat(self):
        batch = _batch((3, 4), obs_dim=5)
        flat = self.variant(tr_lib.flatten_batch)(batch)
        chex.assert_shape(flat.obs, (12, 5))
        chex.assert_shape(flat.next_obs, (12, 5))
        chex.assert_shape(
            [flat.action, flat.reward, flat.terminated, flat.extras["cost"]], (12,)
        )
        # Row-major: item t * E + e is (t, e).
        np.testing.assert_array_equal(flat.obs[1 * 4 + 2], batch.obs[1, 2])
        np.testing.assert_array_equal(flat.reward[2 * 4 + 3], batch.reward[2, 3])

    def test_three_axes(self):
        batch = _batch((2, 3, 4))
        flat = tr_lib.flatten_batch(batch, num_axes=3)
        chex.assert_shape(flat.obs, (24, 2))
        part = tr_lib.flatten_batch(batch, num_axes=2)
        chex.assert_shape(part.obs, (6, 4, 2))


class FromGymnaxStepTest(parameterized.TestCase):
    def _step_out(self):
        obs_after_reset = jnp.zeros((2,), jnp.float32)
        final = jnp.array([1.0, 2.0], jnp.float32)
        info = {"final_observation": final, "cost": jnp.int32(1)}
        # int32 reward (UmbrellaChain/BernoulliBandit) and int flags.
        return (obs_after_reset, None, jnp.int32(3), jnp.int32(1), jnp.int32(0), info)

    def test_casts_and_uses_pre_reset_obs(self):
        obs = jnp.array([5.0, 6.0], jnp.float32)
        out = tr_lib.from_gymnax_step(obs, jnp.int32(1), self._step_out(), ("cost",))
        self.assertEqual(out.reward.dtype, jnp.float32)
        self.assertEqual(float(out.reward), 3.0)
        self.assertEqual(out.terminated.dtype, jnp.bool_)
        self.assertEqual(out.truncated.dtype, jnp.bool_)
        self.assertTrue(bool(out.terminated))
        self.assertFalse(bool(out.truncated))
        np.testing.assert_array_equal(out.obs, obs)
        np.testing.assert_array_equal(out.next_obs, [1.0, 2.0])  # final_observation
        self.assertEqual(out.extras["cost"].dtype, jnp.float32)
        self.assertEqual(float(out.extras["cost"]), 1.0)

    def test_no_extras_by_default_and_missing_key(self):
        out = tr_lib.from_gymnax_step(jnp.zeros(2), 0, self._step_out())
        self.assertEqual(out.extras, {})
        with pytest.raises(KeyError):
            tr_lib.from_gymnax_step(jnp.zeros(2), 0, self._step_out(), ("nope",))

    def test_jit_and_vmap(self):
        obs = jnp.zeros((4, 2))
        reward = jnp.arange(4, dtype=jnp.int32)
        flags = jnp.array([0, 1, 0, 1], jnp.int32)
        info = {"final_observation": jnp.ones((4, 2)), "cost": jnp.ones(4)}

        @jax.jit
        def go(obs, reward, flags, info):
            return jax.vmap(
                lambda o, r, f, i: tr_lib.from_gymnax_step(
                    o, 0, (o, None, r, f, 1 - f, i), ("cost",)
                )
            )(obs, reward, flags, info)

        out = go(obs, reward, flags, info)
        chex.assert_shape(
            [out.reward, out.terminated, out.truncated, out.extras["cost"]], (4,)
        )
        np.testing.assert_array_equal(out.terminated, [False, True, False, True])
        np.testing.assert_array_equal(out.truncated, [True, False, True, False])


class ExampleTest(parameterized.TestCase):
    def test_zeros_shaped_like_inputs(self):
        ex = tr_lib.example(jnp.ones((3,), jnp.float32), jnp.int32(2), {"cost": 1.0})
        chex.assert_shape([ex.obs, ex.next_obs], (3,))
        np.testing.assert_array_equal(ex.obs, 0.0)
        self.assertEqual(ex.action.dtype, jnp.int32)
        self.assertEqual(ex.reward.dtype, jnp.float32)
        self.assertEqual(ex.terminated.dtype, jnp.bool_)
        self.assertEqual(ex.extras["cost"].dtype, jnp.float32)
        chex.assert_shape(
            [ex.reward, ex.terminated, ex.truncated, ex.extras["cost"]], ()
        )

    def test_pytree_roundtrip(self):
        batch = _batch()
        leaves, treedef = jax.tree.flatten(batch)
        self.assertEqual(len(leaves), 7)
        again = jax.tree.unflatten(treedef, leaves)
        chex.assert_trees_all_equal(again, batch)
