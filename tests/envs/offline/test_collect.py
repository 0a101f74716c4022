"""Tests for jaxrl.envs.offline.collect: collection and flattening against NumPy references, snapshot pickers.

Collection is checked against ``walk_reference`` of tests/jaxrl/test_rollout.py
(see tests/envs/offline/helpers.py) and CartPole's own termination rule; the
pickers against hand-worked examples.
"""

from __future__ import annotations

import itertools
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxrl import buffer, envs
from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition
from tests.envs.offline.helpers import MAX_STEPS, WALK_PARAMS, E, T, numpy_episodes
from tests.jaxrl.test_rollout import WALK, walk_reference


class TestCollectDataset:
    def test_matches_step_by_step_reference(self, walk_data):
        actions = np.asarray(walk_data.action).reshape(E, T).T  # back to [T, E]
        ref = walk_reference(actions, MAX_STEPS)
        for name in ("obs", "next_obs", "reward", "terminated", "truncated"):
            want = np.swapaxes(ref[name], 0, 1).reshape((E * T, *ref[name].shape[2:]))
            np.testing.assert_array_equal(getattr(walk_data, name), want, err_msg=name)
        # Both kinds of episode end occur, kept separate.
        assert (walk_data.terminated & ~walk_data.truncated).any()
        assert (walk_data.truncated & ~walk_data.terminated).any()

    def test_episode_ids_and_timesteps_match_numpy(self, walk_data):
        done = np.asarray(walk_data.terminated | walk_data.truncated).reshape(E, T).T
        reward = np.asarray(walk_data.reward).reshape(E, T).T
        ids, steps, _ = numpy_episodes(done, reward)
        np.testing.assert_array_equal(walk_data.extras[offline.EPISODE_ID], ids)
        np.testing.assert_array_equal(walk_data.extras[offline.TIMESTEP], steps)
        assert walk_data.extras[offline.EPISODE_ID].dtype == jnp.int32

    def test_no_pair_across_a_reset(self, walk_data):
        ep = np.asarray(walk_data.extras[offline.EPISODE_ID])
        obs, next_obs = np.asarray(walk_data.obs), np.asarray(walk_data.next_obs)
        done = np.asarray(walk_data.terminated | walk_data.truncated)
        same = ep[1:] == ep[:-1]
        # Inside an episode the next row starts where this one ended.
        np.testing.assert_array_equal(next_obs[:-1][same], obs[1:][same])
        # After an end inside a stream the next row is a reset (time 0), and the
        # stored next_obs is the pre-reset final observation (time > 0).
        ends = done[:-1] & ~same
        boundary_in_stream = ends & ((np.arange(E * T - 1) + 1) % T != 0)
        assert boundary_in_stream.any()
        np.testing.assert_array_equal(obs[1:][boundary_in_stream][:, 1], 0.0)
        assert (next_obs[:-1][boundary_in_stream][:, 1] > 0).all()
        # An end flag never sits inside an episode.
        assert not (done[:-1] & same).any()

    def test_cartpole_flags_against_env_step(self):
        """On a gymnax env: the last row of each episode ends it, next_obs pre-reset."""
        env, params = envs.make("CartPole-v1", max_steps_in_episode=20)
        data = jax.jit(
            lambda k: offline.collect_dataset(
                k, env, params, offline.uniform_policy(env, params), 100, 4
            )
        )(jax.random.key(3))
        assert data.terminated.any() and data.truncated.any()
        lengths = offline.episode_returns(data)["length"]
        trunc_rows = np.flatnonzero(np.asarray(data.truncated))
        np.testing.assert_array_equal(
            np.asarray(data.extras[offline.TIMESTEP])[trunc_rows], 19
        )
        assert (lengths <= 20).all()
        # Terminal next_obs lies outside CartPole's bounds (|x| > 2.4, |theta| > 12°).
        term = np.asarray(data.next_obs)[np.asarray(data.terminated)]
        assert ((np.abs(term[:, 0]) > 2.4) | (np.abs(term[:, 2]) > 0.2095)).all()

    def test_bad_sizes(self):
        env, params = envs.make("CartPole-v1")
        with pytest.raises(ConfigError, match="num_envs must be a positive"):
            offline.collect_dataset(
                jax.random.key(0),
                env,
                params,
                offline.uniform_policy(env, params),
                5,
                0,
            )


class FromRolloutTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("fresh", None), ("continuing", (3, 0, 7, 1)))
    def test_matches_numpy(self, timestep0):
        rng = np.random.default_rng(0)
        num_steps, num_envs = 9, 4
        term = rng.random((num_steps, num_envs)) < 0.2
        trunc = (rng.random((num_steps, num_envs)) < 0.15) & ~term
        reward = rng.normal(size=(num_steps, num_envs)).astype(np.float32)
        tr = Transition(
            obs=jnp.asarray(rng.normal(size=(num_steps, num_envs, 2)), jnp.float32),
            action=jnp.asarray(rng.integers(0, 3, (num_steps, num_envs)), jnp.int32),
            reward=jnp.asarray(reward),
            next_obs=jnp.zeros((num_steps, num_envs, 2), jnp.float32),
            terminated=jnp.asarray(term),
            truncated=jnp.asarray(trunc),
            extras={"cost": jnp.ones((num_steps, num_envs))},
        )
        fn = partial(offline.from_rollout, timestep0=timestep0)
        out = self.variant(fn)(tr)
        ids, steps, _ = numpy_episodes(term | trunc, reward)
        if timestep0 is not None:
            first = ids == ids.reshape(num_envs, num_steps)[:, :1].repeat(
                num_steps, 1
            ).reshape(-1)
            steps = steps + np.where(first, np.repeat(timestep0, num_steps), 0)
        np.testing.assert_array_equal(out.extras[offline.EPISODE_ID], ids)
        np.testing.assert_array_equal(out.extras[offline.TIMESTEP], steps)
        np.testing.assert_array_equal(
            out.obs, np.swapaxes(np.asarray(tr.obs), 0, 1).reshape(-1, 2)
        )
        np.testing.assert_array_equal(out.extras["cost"], 1.0)


class TestFromRolloutErrors:
    def test_rejects_flat_input_and_existing_extras(self, walk_data):
        with pytest.raises(ConfigError, match=r"Transition\[T, E\]"):
            offline.from_rollout(walk_data)
        tr = jax.tree.map(lambda x: x.reshape(E, T, *x.shape[1:]), walk_data)
        with pytest.raises(ConfigError, match="already carry extras"):
            offline.from_rollout(tr)


class TestBufferTail:
    def test_last_items_oldest_first_across_wraparound(self):
        state = buffer.init(jnp.int32(0), capacity=7)
        added = []
        for start, n in ((0, 3), (3, 5), (8, 4)):
            items = np.arange(start, start + n, dtype=np.int32)
            state = buffer.add(state, jnp.asarray(items))
            added.extend(items.tolist())
        for n in (1, 4, 7):
            got = jax.jit(lambda s, n=n: offline.buffer_tail(s, n))(state)
            assert got.tolist() == added[-n:]

    def test_bad_counts(self):
        state = buffer.add(buffer.init(jnp.float32(0), 5), jnp.ones(2))
        with pytest.raises(ConfigError, match="capacity=5"):
            offline.buffer_tail(state, 6)
        with pytest.raises(ConfigError, match="the buffer holds 2"):
            offline.buffer_tail(state, 3)


class TestUniformPolicy:
    def test_uniform_policy_rejects_other_spaces(self):
        env, params = envs.make("CartPole-v1")
        space = env.action_space(params)
        from gymnax.environments import spaces

        class Fake:
            name = "Fake"

            def action_space(self, params):
                return spaces.Dict({"a": space})

        with pytest.raises(ConfigError, match="Discrete and Box"):
            offline.uniform_policy(Fake(), params)


class TestLastSteps:
    def test_replay_cap_keeps_the_last_steps_of_every_stream(self):
        env, params = envs.make("CartPole-v1", max_steps_in_episode=7)
        data = jax.jit(
            lambda k: offline.collect_dataset(
                k, env, params, offline.uniform_policy(env, params), 30, 3
            )
        )(jax.random.key(0))
        capped = offline.last_steps(data, 3, 36)
        rows = np.r_[18:30, 48:60, 78:90]
        for got, want in zip(
            jax.tree.leaves(capped), jax.tree.leaves(data), strict=True
        ):
            np.testing.assert_array_equal(got, np.asarray(want)[rows])
        ds = offline.make_dataset(  # still a valid episode layout
            capped, env="CartPole-v1", kind="medium-replay", return_random=22.0,
            return_expert=500.0, policy="x", env_kwargs={"max_steps_in_episode": 7},
        )  # fmt: skip
        assert ds.meta.num_transitions == 36


class TestSnapshotPickers:
    def test_pick_expert_and_medium(self):
        assert offline.pick_expert({0: 10.0, 3: 500.0, 5: 500.0, 7: 480.0}) == 5
        returns = {0: 10.0, 1: 150.0, 2: 260.0, 4: 500.0, 6: 212.0}
        assert offline.pick_medium(returns, 4, 212.0) == 2  # 6 comes after the expert
        assert offline.pick_medium({1: 100.0, 2: 300.0}, 3, 200.0) == 1  # tie: earliest
        assert offline.pick_medium({0: 500.0, 1: 100.0, 2: 300.0}, 0, 250.0) == 2
        with pytest.raises(ConfigError, match="two training snapshots"):
            offline.pick_medium({0: 1.0}, 0, 0.4)
        with pytest.raises(ConfigError, match="no training snapshots"):
            offline.pick_expert({})

    def test_first_reaching(self):
        quick = [10.0, 12.0, 300.0, 90.0, 480.0]
        assert offline.first_reaching(quick, 4, 200.0) == 2
        assert offline.first_reaching(quick, 1, 200.0) == 1  # none before: the expert
        assert offline.first_reaching(quick, 4, 5.0) == 0

    def test_candidates(self):
        quick = [10.0, 480.0, 150.0, 500.0, 260.0, 499.0, 30.0]
        assert offline.expert_candidates(quick, 3) == [1, 3, 5]
        assert offline.medium_candidates(quick, 3, 200.0, 2) == [0, 2]
        assert offline.medium_candidates(quick, 5, 200.0, 3) == [0, 2, 4]
        assert offline.medium_candidates(quick, 0, 200.0, 2) == [2, 4]


def _always_right(key, obs):
    del key
    return jnp.ones(obs.shape[:1], jnp.int32)


def _exact_walk_return(p: float) -> float:
    """Expected first-episode return on ``Walk`` (``MAX_STEPS`` steps) of the policy
    "right, but a uniform action with probability ``p``", by enumerating every
    action sequence of length ``MAX_STEPS`` with its probability (NumPy)."""
    seqs = np.array(list(itertools.product((0, 1), repeat=MAX_STEPS))).T  # [T, K]
    ref = walk_reference(seqs, MAX_STEPS)
    right = 1.0 - p / 2.0
    prob = np.prod(np.where(seqs == 1, right, 1.0 - right), axis=0)  # [K]
    done = ref["terminated"] | ref["truncated"]
    first = np.cumsum(np.cumsum(done, axis=0), axis=0) <= 1  # up to the first end
    returns = (ref["reward"].astype(np.float64) * first).sum(0)
    return float(prob @ returns)


class TestReferencesAndCollectors:
    def test_mean_and_grid_returns_match_exact_expectations(self):
        assert offline.max_episode_steps(WALK_PARAMS) == MAX_STEPS + 1
        key_a, key_b, key_c = jax.random.split(jax.random.key(0), 3)
        right = offline.mean_return(key_a, WALK, WALK_PARAMS, _always_right, 50)
        assert right == 6.0 == _exact_walk_return(0.0)  # 1 + 2 + 3, terminated
        uniform = offline.uniform_policy(WALK, WALK_PARAMS)
        got = offline.mean_return(key_b, WALK, WALK_PARAMS, uniform, 4000)
        assert abs(got - _exact_walk_return(1.0)) < 0.25  # about 4 standard errors

        def family(theta):
            return offline.noisy_policy(_always_right, uniform, theta[1])

        grid = np.array([0.0, 0.5, 1.0])
        out = offline.grid_returns(WALK, WALK_PARAMS, family, None, grid, 4000, key_c)
        assert out.dtype == np.float64 and out.shape == (3,)
        want = [_exact_walk_return(p) for p in grid]
        np.testing.assert_allclose(out, want, atol=0.25)
        # p = 0 is the policy itself (a float32 mean over the episodes)
        assert out[0] == pytest.approx(6.0, rel=1e-6) and want[0] > want[1] > want[2]

    def test_collector_compiles_once_for_the_family(self):
        uniform = offline.uniform_policy(WALK, WALK_PARAMS)
        family = lambda p: offline.noisy_policy(_always_right, uniform, p)  # noqa: E731
        collect = offline.make_collector(WALK, WALK_PARAMS, family, 25, 3)
        right = collect(jax.random.key(0), 0.0)
        # 25 // 3 = 8 steps per stream; always right: x = 1, 2, 3 (terminated), ...
        assert right.reward.shape == (24,)
        np.testing.assert_array_equal(right.action, 1)
        np.testing.assert_array_equal(
            np.asarray(right.reward).reshape(3, 8), [[1, 2, 3, 1, 2, 3, 1, 2]] * 3
        )
        mixed = collect(jax.random.key(1), 1.0)
        assert (np.asarray(mixed.action) == 0).any()
        assert collect._cache_size() == 1  # theta is traced: one compilation
