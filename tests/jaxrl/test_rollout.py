"""Tests for jaxrl.rollout against NumPy reference episodes.

``Walk`` is a tiny deterministic gymnax environment defined here (and reused by
tests/envs/test_wrappers.py): a walker on the integers starts at 0 (or at a
random point when ``random_start``), action 1 moves right and 0 left, the reward
is the new position (int32, to exercise the float32 cast), the episode
terminates at ``|x| >= bound`` and is truncated after ``max_steps_in_episode``
steps; ``info["cost"]`` is 1 for a left move. ``walk_reference`` replays recorded
actions in NumPy.
"""

from __future__ import annotations

from functools import partial
from typing import Any

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
from jaxrl.errors import ConfigError

# ----------------------------------------------------------------------------- test env


@struct.dataclass
class WalkState(environment.EnvState):
    x: jax.Array
    time: int


@struct.dataclass
class WalkParams(environment.EnvParams):
    max_steps_in_episode: int = 5
    bound: int = 3
    random_start: bool = False


class Walk(environment.Environment):
    """Deterministic walk on the integers (see module docstring)."""

    @property
    def default_params(self) -> WalkParams:
        return WalkParams()

    def reset_env(
        self, key: jax.Array, params: WalkParams
    ) -> tuple[jax.Array, WalkState]:
        start = jax.random.randint(key, (), -params.bound + 1, params.bound)
        x = jnp.where(params.random_start, start, 0).astype(jnp.int32)
        state = WalkState(x=x, time=jnp.zeros((), jnp.int32))
        return self._obs(state), state

    def step_env(self, key, state, action, params):
        del key
        x = state.x + 2 * jnp.asarray(action, jnp.int32) - 1
        new = WalkState(x=x, time=state.time + 1)
        terminated = jnp.abs(x) >= params.bound
        info = {"cost": (jnp.asarray(action) == 0).astype(jnp.float32)}
        return self._obs(new), new, x, terminated, info

    @staticmethod
    def _obs(state: WalkState) -> jax.Array:
        return jnp.stack([state.x, state.time]).astype(jnp.float32)

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params: Any) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)


WALK = Walk()  # one instance, so jitted helpers keyed on it are reused


def walk_reference(
    actions: np.ndarray, max_steps: int, bound: int = 3
) -> dict[str, np.ndarray]:
    """Replay ``actions[T, E]`` in NumPy from a start at 0; return per-step arrays."""
    num_steps, num_envs = actions.shape
    out = {
        "obs": np.zeros((num_steps, num_envs, 2), np.float32),
        "next_obs": np.zeros((num_steps, num_envs, 2), np.float32),
        "reward": np.zeros((num_steps, num_envs), np.float32),
        "terminated": np.zeros((num_steps, num_envs), bool),
        "truncated": np.zeros((num_steps, num_envs), bool),
        "cost": np.zeros((num_steps, num_envs), np.float32),
    }
    for e in range(num_envs):
        x, t = 0, 0
        for s in range(num_steps):
            out["obs"][s, e] = (x, t)
            a = int(actions[s, e])
            x, t = x + 2 * a - 1, t + 1
            out["next_obs"][s, e] = (x, t)
            out["reward"][s, e] = x
            out["cost"][s, e] = float(a == 0)
            out["terminated"][s, e] = abs(x) >= bound
            out["truncated"][s, e] = t >= max_steps
            if out["terminated"][s, e] or out["truncated"][s, e]:
                x, t = 0, 0
    return out


def random_policy(key: jax.Array, obs: jax.Array) -> jax.Array:
    return jax.random.randint(key, obs.shape[:1], 0, 2)


def run_collect(key, env, params, num_envs, num_steps, extras_keys=()):
    """Reset then collect (jitted); returns collect's outputs."""

    @jax.jit
    def go(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = rollout.reset(k_reset, env, params, num_envs)
        return rollout.collect(
            k_run, env, params, state, obs, random_policy, num_steps, extras_keys
        )

    return go(key)


# ---------------------------------------------------------------------- reset / step


class ResetTest(parameterized.TestCase):
    def test_shapes_and_per_env_keys(self):
        env = WALK
        params = env.default_params.replace(random_start=True)
        obs, state = jax.jit(lambda k: rollout.reset(k, env, params, 32))(
            jax.random.key(1)
        )
        chex.assert_shape(obs, (32, 2))
        chex.assert_shape(state.x, (32,))
        np.testing.assert_array_equal(obs[:, 1], 0.0)
        self.assertGreater(len(np.unique(np.asarray(obs[:, 0]))), 1)  # one key per env

    @parameterized.named_parameters(("zero", 0), ("negative", -2), ("float", 2.0))
    def test_bad_num_envs(self, num_envs):
        env = WALK
        with pytest.raises(ConfigError, match="num_envs must be a positive"):
            rollout.reset(jax.random.key(0), env, env.default_params, num_envs)


class StepTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_one_step_matches_reference_and_auto_resets(self):
        env = WALK
        # Every step truncates.
        params = env.default_params.replace(max_steps_in_episode=1)

        def go(key):
            k_reset, k_step = jax.random.split(key)
            obs, state = rollout.reset(k_reset, env, params, 3)
            action = jnp.array([0, 1, 1], jnp.int32)
            return rollout.step(k_step, env, params, state, obs, action, ("cost",))

        tr, state, obs, info = self.variant(go)(jax.random.key(0))
        np.testing.assert_array_equal(tr.obs, [[0, 0]] * 3)
        # next_obs is pre-reset, obs post-reset.
        np.testing.assert_array_equal(tr.next_obs, [[-1, 1], [1, 1], [1, 1]])
        np.testing.assert_array_equal(obs, [[0, 0]] * 3)
        np.testing.assert_array_equal(info["final_observation"], tr.next_obs)
        self.assertEqual(tr.reward.dtype, jnp.float32)
        np.testing.assert_array_equal(tr.reward, [-1.0, 1.0, 1.0])
        np.testing.assert_array_equal(tr.truncated, [True] * 3)
        np.testing.assert_array_equal(tr.terminated, [False] * 3)
        np.testing.assert_array_equal(tr.extras["cost"], [1.0, 0.0, 0.0])
        np.testing.assert_array_equal(state.time, [0, 0, 0])

    def test_missing_extras_key_fails_at_trace_time(self):
        env = WALK
        params = env.default_params

        def go(key):
            k_reset, k_step = jax.random.split(key)
            obs, state = rollout.reset(k_reset, env, params, 2)
            action = jnp.zeros(2, jnp.int32)
            return rollout.step(k_step, env, params, state, obs, action, ("nope",))

        with pytest.raises(KeyError):
            jax.eval_shape(go, jax.random.key(0))


# ----------------------------------------------------------------------------- collect


class CollectTest(parameterized.TestCase):
    def test_matches_numpy_reference(self):
        max_steps, num_envs, num_steps = 5, 8, 30
        env = WALK
        params = env.default_params.replace(max_steps_in_episode=max_steps)
        tr, state, obs, info = run_collect(
            jax.random.key(3), env, params, num_envs, num_steps, ("cost",)
        )
        chex.assert_shape(tr.obs, (num_steps, num_envs, 2))
        chex.assert_shape(tr.reward, (num_steps, num_envs))
        ref = walk_reference(np.asarray(tr.action), max_steps)
        for name in ("obs", "next_obs", "reward", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(tr, name), ref[name], err_msg=name)
        np.testing.assert_array_equal(tr.extras["cost"], ref["cost"])
        self.assertEqual(tr.reward.dtype, jnp.float32)
        # Both kinds of episode end occur, and a step can be both (|x| = 3 at t = 5).
        self.assertTrue(ref["terminated"].any() and ref["truncated"].any())
        # No (s, s') pair straddles a reset: every pair is one step of the same episode.
        np.testing.assert_array_equal(tr.next_obs[..., 1], tr.obs[..., 1] + 1)
        np.testing.assert_array_equal(np.abs(tr.next_obs[..., 0] - tr.obs[..., 0]), 1)
        # After an end the next obs is the reset obs; otherwise it is next_obs.
        ended = np.asarray(tr.terminated | tr.truncated)
        following = np.asarray(tr.obs[1:])
        np.testing.assert_array_equal(following[ended[:-1]], 0.0)
        np.testing.assert_array_equal(
            following[~ended[:-1]], np.asarray(tr.next_obs[:-1])[~ended[:-1]]
        )
        # The returned carry continues the rollout and info is time-major.
        last_obs = np.where(ended[-1][:, None], 0.0, tr.next_obs[-1])
        np.testing.assert_array_equal(obs, last_obs)
        chex.assert_shape(info["final_observation"], (num_steps, num_envs, 2))
        chex.assert_shape(state.x, (num_envs,))

    def test_cartpole_matches_numpy_physics(self):
        """Replay CartPole transitions with NumPy Euler physics and episode counters."""
        max_steps, num_envs, num_steps = 15, 16, 60
        env, params = gymnax.make("CartPole-v1")
        params = params.replace(max_steps_in_episode=max_steps)
        tr, _, _, _ = run_collect(jax.random.key(4), env, params, num_envs, num_steps)
        obs, nxt = np.asarray(tr.obs, np.float64), np.asarray(tr.next_obs, np.float64)
        actions = np.asarray(tr.action)
        expected_next = _np_cartpole_step(obs, actions)
        np.testing.assert_allclose(nxt, expected_next, rtol=1e-5, atol=1e-5)
        terminated = (np.abs(expected_next[..., 0]) > 2.4) | (
            np.abs(expected_next[..., 2]) > 12 * 2 * np.pi / 360
        )
        np.testing.assert_array_equal(tr.terminated, terminated)
        np.testing.assert_array_equal(tr.reward, 1.0)
        truncated = np.zeros_like(terminated)
        for e in range(num_envs):
            t = 0
            for s in range(num_steps):
                t += 1
                truncated[s, e] = t >= max_steps
                if terminated[s, e] or truncated[s, e]:
                    t = 0
        np.testing.assert_array_equal(tr.truncated, truncated)
        self.assertTrue(terminated.any() and truncated.any())
        ended = terminated | truncated
        following = obs[1:]
        np.testing.assert_array_equal(following[~ended[:-1]], nxt[:-1][~ended[:-1]])
        resets = following[ended[:-1]]
        self.assertTrue(np.all(np.abs(resets) <= 0.05))  # fresh start state
        self.assertFalse(np.any(np.all(resets == nxt[:-1][ended[:-1]], axis=-1)))

    def test_vmapped_seeds_differ_and_same_key_reproduces(self):
        env = WALK
        params = env.default_params.replace(random_start=True)

        @jax.jit
        def go(keys):
            def one(key):
                k_reset, k_run = jax.random.split(key)
                obs, state = rollout.reset(k_reset, env, params, 2)
                return rollout.collect(
                    k_run, env, params, state, obs, random_policy, 8
                )[0]

            return jax.vmap(one)(keys)

        tr = go(jax.random.split(jax.random.key(0), 3))
        chex.assert_shape(tr.obs, (3, 8, 2, 2))
        for i in range(3):
            for j in range(i + 1, 3):
                self.assertFalse(np.array_equal(tr.obs[i], tr.obs[j]))
                self.assertFalse(np.array_equal(tr.action[i], tr.action[j]))
        again = go(jax.random.split(jax.random.key(0), 3))
        chex.assert_trees_all_equal(tr, again)

    def test_bad_num_steps(self):
        env = WALK
        params = env.default_params
        k_reset, k_run = jax.random.split(jax.random.key(0))
        obs, state = rollout.reset(k_reset, env, params, 2)
        with pytest.raises(ConfigError, match="num_steps"):
            rollout.collect(k_run, env, params, state, obs, random_policy, 0)


def _np_cartpole_step(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """One Euler step of the classic cart-pole (Barto et al. 1983) in float64."""
    gravity, masspole, half_len, force_mag, dt = 9.8, 0.1, 0.5, 10.0, 0.02
    total = 1.0 + masspole  # cart mass 1.0
    x, x_dot, th, th_dot = (s[..., i] for i in range(4))
    force = np.where(a == 1, force_mag, -force_mag)
    cos, sin = np.cos(th), np.sin(th)
    tmp = (force + masspole * half_len * th_dot**2 * sin) / total
    th_acc = (gravity * sin - cos * tmp) / (
        half_len * (4.0 / 3.0 - masspole * cos**2 / total)
    )
    x_acc = tmp - masspole * half_len * th_acc * cos / total
    return np.stack(
        [x + dt * x_dot, x_dot + dt * x_acc, th + dt * th_dot, th_dot + dt * th_acc],
        axis=-1,
    )


# ----------------------------------------------------------------------------- evaluate


def _np_episode(x0: int, max_env_steps: int, cap: int, bound: int = 3):
    """Greedy "walk away from 0" episode from ``x0`` in NumPy.

    Returns:
      ``(return, length, completed, cost)``.
    """
    x, ret, cost = x0, 0.0, 0.0
    for t in range(1, cap + 1):
        a = 1 if x >= 0 else 0
        x += 2 * a - 1
        ret += x
        cost += float(a == 0)
        if abs(x) >= bound or t >= max_env_steps:
            return ret, t, True, cost
    return ret, cap, False, cost


def _greedy_walk_policy(key, obs):
    del key
    return (obs[:, 0] >= 0).astype(jnp.int32)


@partial(jax.jit, static_argnames="max_steps")
def _evaluate_walk(key, params, max_steps):
    """64 greedy episodes on WALK; ``params`` traced so cases share one compile."""
    return rollout.evaluate(
        key, WALK, params, _greedy_walk_policy, 64, max_steps, ("cost",)
    )


class EvaluateTest(parameterized.TestCase):
    @parameterized.named_parameters(
        ("all_finish", 10, 50),  # every episode terminates
        ("env_time_limit", 2, 50),  # env truncation still counts as completed
        ("max_steps_cuts", 10, 2),  # x0 = 0 needs 3 steps: partial and not completed
    )
    def test_matches_numpy_loop(self, max_env_steps, max_steps):
        params = WALK.default_params.replace(
            random_start=True, max_steps_in_episode=max_env_steps
        )
        out = _evaluate_walk(jax.random.key(5), params, max_steps)
        chex.assert_shape(
            [out["return"], out["length"], out["completed"], out["cost"]], (64,)
        )
        self.assertEqual(out["return"].dtype, jnp.float32)
        self.assertEqual(out["length"].dtype, jnp.int32)
        # Each start x0 in {-2..2} gives a distinct outcome; every result must be one.
        refs = {x0: _np_episode(x0, max_env_steps, max_steps) for x0 in range(-2, 3)}
        cols = [
            np.asarray(out[k]).tolist()
            for k in ("return", "length", "completed", "cost")
        ]
        got = list(zip(*cols, strict=True))
        for row in got:
            self.assertIn(tuple(row), set(refs.values()))
        self.assertGreaterEqual(len(set(got)), 3)  # different starts across episodes
        if max_steps == 2:
            self.assertIn((3.0, 2, False, 0.0), got)  # x0 = 0 cut at 1 + 2

    def test_discounted_return_matches_numpy(self):
        """CartPole pays 1 per step: G = sum_{t<L} gamma^t, also for traced gamma."""
        env, params = gymnax.make("CartPole-v1")
        policy = lambda key, obs: jax.random.randint(key, obs.shape[:1], 0, 2)
        run = jax.jit(
            lambda g: rollout.evaluate(
                jax.random.key(3), env, params, policy, 8, 40, gamma=g
            )
        )
        for gamma in (0.9, 1.0):
            out = run(jnp.float32(gamma))
            length = np.asarray(out["length"])
            want = [sum(gamma**t for t in range(n)) for n in length]
            np.testing.assert_allclose(out["discounted_return"], want, rtol=1e-5)
        plain = rollout.evaluate(jax.random.key(3), env, params, policy, 8, 40)
        self.assertNotIn("discounted_return", plain)

    def test_vmap_over_seeds_equals_separate_runs(self):
        params = WALK.default_params.replace(random_start=True, max_steps_in_episode=10)
        keys = jax.random.split(jax.random.key(6), 3)
        batched = jax.jit(
            jax.vmap(_evaluate_walk, in_axes=(0, None, None)), static_argnums=2
        )(jax.random.clone(keys), params, 50)
        for i in range(3):  # reuses the compile of the "all_finish" case above
            chex.assert_trees_all_equal(
                jax.tree.map(lambda x, i=i: x[i], batched),
                _evaluate_walk(keys[i], params, 50),
            )
        self.assertFalse(np.array_equal(batched["return"][0], batched["return"][1]))

    def test_bad_sizes(self):
        env = WALK
        with pytest.raises(ConfigError, match="num_episodes"):
            rollout.evaluate(
                jax.random.key(0), env, env.default_params, random_policy, 0, 5
            )
        with pytest.raises(ConfigError, match="max_steps"):
            rollout.evaluate(
                jax.random.key(0), env, env.default_params, random_policy, 2, 0
            )
