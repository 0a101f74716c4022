"""Tests for jaxrl.envs.wrappers: LogWrapper, FlattenObservation, GymnaxV0StepAdapter."""

from __future__ import annotations

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from flax import struct
from gymnax.environments import environment, spaces

from jaxrl import rollout
from jaxrl.envs.wrappers import (
    FlattenObservation,
    GymnaxV0StepAdapter,
    LogState,
    LogWrapper,
    V0AdapterState,
)
from jaxrl.errors import ConfigError
from tests.jaxrl.test_rollout import Walk, run_collect, walk_reference


def _np_episode_sums(reward, cost, ended):
    """NumPy recount of running episode return/length/cost, [T, E] inputs."""
    num_steps, num_envs = reward.shape
    ret = np.zeros((num_steps, num_envs), np.float32)
    length = np.zeros((num_steps, num_envs), np.int32)
    total_cost = np.zeros((num_steps, num_envs), np.float32)
    for e in range(num_envs):
        r = n = c = 0
        for t in range(num_steps):
            r, n, c = r + reward[t, e], n + 1, c + cost[t, e]
            ret[t, e], length[t, e], total_cost[t, e] = r, n, c
            if ended[t, e]:
                r = n = c = 0
    return ret, length, total_cost


class LogWrapperTest(parameterized.TestCase):
    def test_episode_stats_match_numpy_recount(self):
        max_steps, num_envs, num_steps = 5, 8, 40
        base = Walk()
        params = base.default_params.replace(max_steps_in_episode=max_steps)
        env = LogWrapper(base)
        tr, state, _, info = run_collect(
            jax.random.key(7), env, params, num_envs, num_steps, ("cost",)
        )
        # The wrapper does not change the dynamics or the auto-reset.
        ref = walk_reference(np.asarray(tr.action), max_steps)
        for name in ("obs", "next_obs", "reward", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(tr, name), ref[name], err_msg=name)
        ended = np.asarray(tr.terminated | tr.truncated)
        ret, length, cost = _np_episode_sums(ref["reward"], ref["cost"], ended)
        np.testing.assert_array_equal(info["returned_episode"], ended)
        np.testing.assert_array_equal(info["episode_return"], ret)
        np.testing.assert_array_equal(info["episode_length"], length)
        np.testing.assert_array_equal(info["episode_cost"], cost)
        self.assertEqual(info["episode_return"].dtype, jnp.float32)
        self.assertEqual(info["episode_length"].dtype, jnp.int32)
        self.assertGreater(ended.sum(), 10)
        # Completed-episode returns, as a metric would read them, equal a numpy sum.
        completed = np.asarray(info["episode_return"])[ended]
        expected = []
        for e in range(num_envs):
            acc = 0.0
            for t in range(num_steps):
                acc += ref["reward"][t, e]
                if ended[t, e]:
                    expected.append((t, e, acc))
                    acc = 0.0
        expected.sort()
        np.testing.assert_array_equal(completed, [x[2] for x in expected])
        # The carried state holds the running sums of the unfinished episodes.
        self.assertIsInstance(state, LogState)
        np.testing.assert_array_equal(
            state.episode_length, np.where(ended[-1], 0, length[-1])
        )
        np.testing.assert_array_equal(
            state.episode_return, np.where(ended[-1], 0, ret[-1])
        )

    def test_no_cost_and_int_reward(self):
        # OldWalk (below) pays int32 rewards and has no cost entry in info.
        env = LogWrapper(GymnaxV0StepAdapter(OldWalk(report_truncated=True)))
        tr, _, _, info = run_collect(jax.random.key(8), env, env.default_params, 4, 20)
        np.testing.assert_array_equal(info["episode_cost"], 0.0)
        self.assertEqual(info["episode_return"].dtype, jnp.float32)
        ended = np.asarray(tr.terminated | tr.truncated)
        self.assertTrue(ended.any())
        ret, length, _ = _np_episode_sums(
            np.asarray(tr.reward), np.zeros(ended.shape), ended
        )
        np.testing.assert_array_equal(info["episode_return"], ret)
        np.testing.assert_array_equal(info["episode_length"], length)

    def test_real_env(self):
        env, params = gymnax.make("CartPole-v1")
        env = LogWrapper(env)
        params = params.replace(max_steps_in_episode=6)
        tr, _, _, info = run_collect(jax.random.key(11), env, params, 3, 14)
        ended = np.asarray(tr.terminated | tr.truncated)
        self.assertTrue(ended.any())
        # CartPole pays 1 per step: the episode return equals its length.
        np.testing.assert_array_equal(info["episode_return"], info["episode_length"])
        _, length, _ = _np_episode_sums(
            np.ones(ended.shape), np.zeros(ended.shape), ended
        )
        np.testing.assert_array_equal(info["episode_length"], length)
        np.testing.assert_array_equal(info["episode_cost"], 0.0)

    def test_forwards_attributes_and_stacks(self):
        env, params = gymnax.make("Breakout-MinAtar")
        wrapped = FlattenObservation(LogWrapper(env))
        self.assertEqual(wrapped.num_actions, env.num_actions)
        self.assertIs(wrapped.unwrapped, env)
        self.assertEqual(wrapped.action_space(params).n, env.action_space(params).n)
        self.assertIn("Breakout", wrapped.name)
        self.assertEqual(wrapped.default_params, params)
        self.assertIsInstance(wrapped, environment.Environment)
        with pytest.raises(NotImplementedError, match="step()"):
            wrapped.step_env(None, None, 0, params)


class FlattenObservationTest(parameterized.TestCase):
    def test_minatar_shapes(self):
        env, params = gymnax.make("Breakout-MinAtar")
        flat = FlattenObservation(env, dtype=jnp.float32)
        self.assertEqual(flat.observation_space(params).shape, (400,))
        self.assertEqual(flat.observation_space(params).dtype, jnp.float32)
        obs, _ = flat.reset(jax.random.key(0), params)
        chex.assert_shape(obs, (400,))
        self.assertEqual(obs.dtype, jnp.float32)

    def test_flattens_obs_and_final_observation(self):
        env, params = gymnax.make("Catch-bsuite")  # [10, 5] observations
        params = params.replace(max_steps_in_episode=2)  # force an auto-reset
        flat = FlattenObservation(env)
        self.assertEqual(flat.observation_space(params).shape, (50,))

        def both(key):
            policy = lambda k, o: jnp.ones(o.shape[:1], jnp.int32)

            def run(e, k):
                k_reset, k_run = jax.random.split(k)
                obs, state = rollout.reset(k_reset, e, params, 2)
                return rollout.collect(k_run, e, params, state, obs, policy, 3)

            # Same key for both environments so the trajectories coincide.
            return run(env, key), run(flat, jax.random.clone(key))

        (tr, _, obs, info), (ftr, _, fobs, finfo) = jax.jit(both)(jax.random.key(0))
        chex.assert_shape(ftr.obs, (3, 2, 50))
        chex.assert_shape(ftr.next_obs, (3, 2, 50))
        np.testing.assert_array_equal(ftr.obs, np.reshape(tr.obs, (3, 2, -1)))
        np.testing.assert_array_equal(ftr.next_obs, np.reshape(tr.next_obs, (3, 2, -1)))
        np.testing.assert_array_equal(fobs, np.reshape(obs, (2, -1)))
        np.testing.assert_array_equal(finfo["final_observation"], ftr.next_obs)
        np.testing.assert_array_equal(ftr.truncated[1], True)  # step 2 hit the limit
        self.assertFalse(np.array_equal(ftr.obs[2], ftr.next_obs[1]))  # reset happened

    def test_rejects_non_box_observation(self):
        env, _ = gymnax.make("FrozenLake-misc")
        with pytest.raises(ConfigError, match="Box observation space"):
            FlattenObservation(env)


# --------------------------------------------------------------------- 0.0.9 adapter


@struct.dataclass
class OldWalkState:
    x: jax.Array
    time: jax.Array


class OldWalk(environment.Environment):
    """Walk dynamics under the gymnax 0.0.9 contract: ``done`` includes time."""

    def __init__(self, report_truncated: bool):
        super().__init__()
        self.report_truncated = report_truncated

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=5)

    def reset_env(self, key, params):
        del key
        state = OldWalkState(x=jnp.zeros((), jnp.int32), time=jnp.zeros((), jnp.int32))
        return jnp.stack([state.x, state.time]).astype(jnp.float32), state

    def step_env(self, key, state, action, params):
        del key
        x = state.x + 2 * jnp.asarray(action, jnp.int32) - 1
        new = OldWalkState(x=x, time=state.time + 1)
        terminal = jnp.abs(x) >= 3
        time_up = new.time >= params.max_steps_in_episode
        done = jnp.logical_or(terminal, time_up)
        info = {"discount": 1.0 - done}
        if self.report_truncated:
            info["truncated"] = jnp.logical_and(time_up, jnp.logical_not(terminal))
        obs = jnp.stack([new.x, new.time]).astype(jnp.float32)
        return obs, new, x, done, info

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)


class GymnaxV0StepAdapterTest(parameterized.TestCase):
    @parameterized.named_parameters(("info_truncated", True), ("time_rule", False))
    def test_flags_and_auto_reset_match_numpy(self, report_truncated):
        env = GymnaxV0StepAdapter(OldWalk(report_truncated))
        params = env.default_params
        tr, state, _, info = run_collect(jax.random.key(9), env, params, 8, 30)
        self.assertIsInstance(state, V0AdapterState)
        ref = walk_reference(np.asarray(tr.action), max_steps=5)
        np.testing.assert_array_equal(tr.obs, ref["obs"])
        np.testing.assert_array_equal(tr.next_obs, ref["next_obs"])  # pre-reset
        np.testing.assert_array_equal(tr.reward, ref["reward"])
        done = ref["terminated"] | ref["truncated"]
        both = ref["terminated"] & ref["truncated"]  # |x| = 3 on the last allowed step
        if report_truncated:  # info["truncated"] decides: a true end wins
            exp_term, exp_trunc = ref["terminated"], done & ~ref["terminated"]
        else:  # time rule: documented ambiguity, such a step reads as truncated
            exp_term, exp_trunc = ref["terminated"] & ~both, ref["truncated"]
        np.testing.assert_array_equal(tr.terminated, exp_term)
        np.testing.assert_array_equal(tr.truncated, exp_trunc)
        np.testing.assert_array_equal(info["terminated"], exp_term)
        self.assertTrue(exp_term.any() and exp_trunc.any())
        self.assertFalse(np.any(np.asarray(tr.terminated & tr.truncated)))

    def test_without_time_field_done_is_terminated(self):
        @struct.dataclass
        class S:
            n: jax.Array

        class NoTime(environment.Environment):
            default_params = environment.EnvParams(max_steps_in_episode=100)

            def reset_env(self, key, params):
                return jnp.zeros(()), S(n=jnp.zeros((), jnp.int32))

            def step_env(self, key, state, action, params):
                s = S(n=state.n + 1)
                return s.n.astype(jnp.float32), s, 1.0, s.n >= 2, {}

        env = GymnaxV0StepAdapter(NoTime())
        tr, _, _, _ = run_collect(jax.random.key(10), env, env.default_params, 1, 4)
        np.testing.assert_array_equal(tr.terminated[:, 0], [False, True, False, True])
        np.testing.assert_array_equal(tr.truncated, False)
        np.testing.assert_array_equal(tr.next_obs[:, 0], [1, 2, 1, 2])
