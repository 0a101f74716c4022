"""Tests for jaxrl.envs.constrained: cost-emitting gymnax tasks, CostWrapper, cost_table_env.

Costs are checked against NumPy references computed from the recorded states,
actions and pre-reset observations of random rollouts; the dynamics against the
unwrapped gymnax environment run with the same keys.
"""

from __future__ import annotations

import functools

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxrl import envs, rollout
from jaxrl.config import validate
from jaxrl.envs.constrained import (
    ENV_FACTORIES,
    CartPoleCostParams,
    ConstrainedParams,
    CostWrapper,
    MountainCarCostParams,
    budget_from_params,
    cartpole_band_cost,
    cost_table_env,
    finite_mdp_cost,
    make_cartpole_constrained,
)
from jaxrl.envs.wrappers import LogWrapper
from jaxrl.errors import ConfigError

IDS = tuple(ENV_FACTORIES)
# The rollouts here test values, not speed: compile them with XLA's backend
# optimisation off, which cuts MinAtar compile times by about 3x.
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
FREEWAY_ROW = 9  # the chicken's start row (no car there)

# ------------------------------------------------------------------ helpers


def _random_policy(num_actions, bias_action=None, bias=0.0):
    """Uniform actions; with probability ``bias`` take ``bias_action`` instead."""

    def policy(key, obs):
        k_uniform, k_coin = jax.random.split(key)
        n = obs.shape[0]
        action = jax.random.randint(k_uniform, (n,), 0, num_actions)
        if bias_action is None:
            return action
        return jnp.where(jax.random.uniform(k_coin, (n,)) < bias, bias_action, action)

    return policy


def _pumping_policy(key, obs):
    """MountainCar: push along the velocity (75%), else a random action."""
    k_uniform, k_coin = jax.random.split(key)
    pump = jnp.where(obs[:, 1] >= 0, 2, 0)
    noise = jax.random.randint(k_uniform, obs.shape[:1], 0, 3)
    return jnp.where(jax.random.uniform(k_coin, obs.shape[:1]) < 0.75, pump, noise)


def _uniform_torque(key, obs):
    """Pendulum: uniform torques in [-2, 2], ``[E, 1]``."""
    return jax.random.uniform(key, (obs.shape[0], 1), jnp.float32, -2.0, 2.0)


def _continuous_pumping_policy(key, obs):
    """MountainCarContinuous: force +-1 along the velocity (75%), else uniform."""
    k_uniform, k_coin = jax.random.split(key)
    pump = jnp.where(obs[:, 1] >= 0, 1.0, -1.0)
    noise = jax.random.uniform(k_uniform, obs.shape[:1], jnp.float32, -1.0, 1.0)
    coin = jax.random.uniform(k_coin, obs.shape[:1]) < 0.75
    return jnp.where(coin, pump, noise)[:, None]


def _record(key, env, params, policy, num_envs, num_steps):
    """Reset then scan ``env.step`` (vmapped); record pre-step state and outputs."""
    k_reset, k_run = jax.random.split(key)
    obs, state = rollout.reset(k_reset, env, params, num_envs)

    def body(carry, _):
        key, state, obs = carry
        key, k_act, k_step = jax.random.split(key, 3)
        action = policy(k_act, obs)
        keys = jax.random.split(k_step, num_envs)
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
        next_obs, next_state, reward, terminated, truncated, info = out
        rec = {
            "state": state,
            "obs": obs,
            "action": action,
            "next_obs": next_obs,
            "reward": reward,
            "terminated": terminated,
            "truncated": truncated,
            "info": info,
        }
        return (key, next_state, next_obs), rec

    _, recs = jax.lax.scan(body, (k_run, state, obs), None, length=num_steps)
    return recs


def _np(tree):
    return jax.tree.map(np.asarray, tree)


def _np_time_in_episode(ended):
    """``t`` of each step within its episode, from the ``[T, E]`` end flags."""
    num_steps, num_envs = ended.shape
    time = np.zeros((num_steps, num_envs), np.int64)
    for e in range(num_envs):
        t = 0
        for s in range(num_steps):
            time[s, e] = t
            t = 0 if ended[s, e] else t + 1
    return time


def _np_freeway_cost(rec, action_set):
    """Collision cost replayed from the pre-step state and pre-reset observation.

    The chicken's own move (up = code 2 / down = code 4, only when its move timer
    is 0; reaching row 0 scores and returns it to row 9) gives its row ``r``; it is
    hit iff ``r`` is a car row and that row's car is in column 4 before the cars
    move or after (read from the pre-reset observation's car channel).
    """
    state, final_obs = rec["state"], rec["info"]["final_observation"]
    codes = np.asarray(action_set)[rec["action"]]
    num_steps, num_envs = codes.shape
    cost = np.zeros((num_steps, num_envs), np.float32)
    for s in range(num_steps):
        for e in range(num_envs):
            row, timer = int(state.pos[s, e]), int(state.move_timer[s, e])
            if timer == 0 and codes[s, e] == 2:
                row = max(0, row - 1)
            elif timer == 0 and codes[s, e] == 4:
                row = min(9, row + 1)
            if row == 0:
                row = FREEWAY_ROW
            if row == FREEWAY_ROW:
                continue
            cars = state.cars[s, e]
            (car,) = np.flatnonzero(cars[:, 1] == row)
            before = cars[car, 0] == 4
            after = final_obs[s, e, row, 4, 1] > 0
            cost[s, e] = float(before or after)
    return cost


def _np_freeway_hits_by_return(rec, action_set):
    """Second Freeway reference: a hit is a move onto a car row ending on row 9.

    The chicken's row after the step is read from the pre-reset observation's
    chicken channel (column 4).
    """
    final_obs = rec["info"]["final_observation"]
    final_row = np.argmax(final_obs[:, :, :, 4, 0], axis=-1)
    state = rec["state"]
    codes = np.asarray(action_set)[rec["action"]]
    can_move = state.move_timer == 0
    row = np.where(can_move & (codes == 2), np.maximum(state.pos - 1, 0), state.pos)
    row = np.where(can_move & (codes == 4), np.minimum(state.pos + 1, 9), row)
    row = np.where(row == 0, FREEWAY_ROW, row)
    hit = (row != FREEWAY_ROW) & (final_row == FREEWAY_ROW)
    return hit.astype(np.float32)


@functools.cache
def _freeway_start(minimal):
    """A Freeway env, its params and a start state (built once per action set)."""
    env, params = envs.make(
        "Freeway-MinAtar-Constrained-v0", use_minimal_action_set=minimal
    )
    _, state = env.reset_env(jax.random.key(0), params)
    return env, params, state


def _reference_cost(name, rec, params, env):
    final_obs = rec["info"]["final_observation"]
    if name == "CartPole-Constrained-v0":
        return (np.abs(final_obs[..., 0]) > float(params.x_band)).astype(np.float32)
    if name in ("MountainCar-Constrained-v0", "MountainCarContinuous-Constrained-v0"):
        speed = np.abs(final_obs[..., 1])
        return (speed > float(params.speed_limit)).astype(np.float32)
    if name == "Pendulum-Constrained-v0":  # obs = (cos theta, sin theta, theta_dot)
        speed = np.abs(final_obs[..., 2])
        return (speed > float(params.speed_limit)).astype(np.float32)
    if name == "Acrobot-Constrained-v0":
        torque = np.asarray(params.env_params.available_torque)
        return np.abs(torque[rec["action"]]).astype(np.float32)
    if name == "Freeway-MinAtar-Constrained-v0":
        return _np_freeway_cost(rec, [int(a) for a in env.action_set])
    raise AssertionError(name)


# Per task: constructor kwargs, params overrides (through jaxrl.envs.make), policy, and
# a flag for tasks whose cost can be non-binary.
CASES = {
    "CartPole-Constrained-v0": (
        {},
        {"x_band": 0.04, "max_steps_in_episode": 30},
        _random_policy(2),
    ),
    "MountainCar-Constrained-v0": (
        {},
        {"speed_limit": 0.01, "max_steps_in_episode": 60},
        _pumping_policy,
    ),
    "Acrobot-Constrained-v0": (
        {},
        {"available_torque": jnp.array([-2.0, 0.0, 0.5]), "max_steps_in_episode": 30},
        _random_policy(3),
    ),
    "Freeway-MinAtar-Constrained-v0": (
        {},
        {"max_steps_in_episode": 60, "player_speed": 1},  # a faster chicken
        _random_policy(3, bias_action=1, bias=0.8),
    ),
    "Pendulum-Constrained-v0": (
        {},
        {"speed_limit": 1.5, "max_steps_in_episode": 30},
        _uniform_torque,
    ),
    "MountainCarContinuous-Constrained-v0": (
        {},
        {"speed_limit": 0.01, "max_steps_in_episode": 60},
        _continuous_pumping_policy,
    ),
}


# ------------------------------------------------------------ per-task checks


class CostAlongRolloutsTest(parameterized.TestCase):
    """Costs match NumPy; dynamics equal the unwrapped env's for the same keys."""

    @parameterized.named_parameters(*[(name.split("-")[0], name) for name in IDS])
    def test_cost_and_dynamics(self, name):
        kwargs, overrides, policy = CASES[name]
        env, params = envs.make(name, **kwargs, **overrides, cost_gamma=0.9)
        base, base_params = env.env, params.env_params
        num_envs, num_steps = 4, 90

        @jit
        def both(key):
            wrapped = _record(key, env, params, policy, num_envs, num_steps)
            plain = _record(
                jax.random.clone(key), base, base_params, policy, num_envs, num_steps
            )
            return wrapped, plain

        rec, plain = _np(both(jax.random.key(3)))
        cost = rec["info"]["cost"]
        ended = rec["terminated"] | rec["truncated"]

        # Cost: float32 [T, E], equal to the NumPy reference.
        self.assertEqual(cost.dtype, np.float32)
        chex.assert_shape(cost, (num_steps, num_envs))
        expected = _reference_cost(name, rec, params, env)
        np.testing.assert_array_equal(cost, expected)
        self.assertGreater((cost > 0).sum(), 3)  # costs of both kinds occur
        self.assertGreater((cost == 0).sum(), 3)
        self.assertGreater(ended.sum(), 2)  # and episodes end (auto-reset)
        if name.startswith("Freeway"):
            action_set = [int(a) for a in env.action_set]
            np.testing.assert_array_equal(
                cost, _np_freeway_hits_by_return(rec, action_set)
            )
            scored = rec["reward"] > 0  # crossings score and cost nothing
            self.assertTrue(scored.any())
            np.testing.assert_array_equal(cost[scored], 0.0)

        # Discounted cost: gamma_c^t c_t with t counted from the episode flags.
        time = _np_time_in_episode(ended)
        np.testing.assert_allclose(
            rec["info"]["discounted_cost"],
            np.float32(0.9) ** time.astype(np.float64) * expected,
            rtol=1e-5,
        )

        # Everything but the cost entries is the unwrapped env's, bit for bit.
        for field in ("obs", "action", "next_obs", "reward", "terminated", "truncated"):
            np.testing.assert_array_equal(rec[field], plain[field], err_msg=field)
        chex.assert_trees_all_equal(rec["state"], plain["state"])
        info = {k: v for k, v in rec["info"].items() if "cost" not in k}
        chex.assert_trees_all_equal(info, plain["info"])

    @parameterized.named_parameters(
        # (name, minimal action set?, action index, move timer, row before,
        #  row after, expected cost). A return to row 9 is a hit unless the
        # chicken's own move (decoded with the env's action set) took it there.
        ("minimal_down_to_start", True, 2, 0, 8, 9, 0.0),
        ("minimal_noop_hit", True, 0, 0, 8, 9, 1.0),
        ("minimal_up_hit", True, 1, 0, 5, 9, 1.0),
        ("minimal_up_safe", True, 1, 0, 5, 4, 0.0),
        ("minimal_scores", True, 1, 0, 1, 9, 0.0),
        ("timer_blocks_the_move", True, 2, 2, 8, 9, 1.0),
        ("full_index_2_is_up", False, 2, 0, 8, 9, 1.0),
        ("full_index_4_is_down", False, 4, 0, 8, 9, 0.0),
        ("full_index_1_is_noop", False, 1, 0, 8, 9, 1.0),
    )
    def test_freeway_cost_on_hand_made_states(
        self, minimal, action, timer, row, post_row, expected
    ):
        env, params, state = _freeway_start(minimal)
        state = state.replace(pos=row, move_timer=timer)
        next_state = state.replace(pos=post_row)
        cost = env.cost_fn(state, jnp.int32(action), next_state, params)
        self.assertEqual(cost.dtype, jnp.float32)
        self.assertEqual(float(cost), expected)


# -------------------------------------------------------------- auto-reset


class AutoResetTest(parameterized.TestCase):
    def _env(self, **overrides):
        env, params = envs.make("CartPole-Constrained-v0", **overrides)
        return env, params

    def test_terminal_step_keeps_its_cost_and_next_episode_starts_clean(self):
        env, params = self._env(x_band=1.0, cost_gamma=0.5)
        _, state = env.reset(jax.random.key(0), params)
        # A cart about to leave the track at step 7 of its episode.
        state = state.replace(x=jnp.float32(2.39), x_dot=jnp.float32(3.0), time=7)
        step = jax.jit(env.step)
        k1, k2 = jax.random.split(jax.random.key(1))
        obs, state, _, terminated, truncated, info = step(k1, state, 1, params)
        self.assertTrue(bool(terminated) and not bool(truncated))
        self.assertGreater(float(info["final_observation"][0]), 2.4)
        self.assertEqual(float(info["cost"]), 1.0)  # the terminal step is costly
        self.assertEqual(float(info["discounted_cost"]), 0.5**7)
        self.assertLessEqual(float(jnp.abs(obs[0])), 0.05)  # a fresh episode
        self.assertEqual(int(state.time), 0)
        _, _, _, _, _, info = step(k2, state, 1, params)
        self.assertEqual(float(info["cost"]), 0.0)  # inside the band again

    def test_truncation_step_keeps_its_cost(self):
        env, params = self._env(x_band=0.0, max_steps_in_episode=5, cost_gamma=0.5)
        _, state = env.reset(jax.random.key(0), params)
        state = state.replace(time=4)
        _, state, _, terminated, truncated, info = jax.jit(env.step)(
            jax.random.key(1), state, 0, params
        )
        self.assertTrue(bool(truncated) and not bool(terminated))
        self.assertEqual(float(info["cost"]), 1.0)
        self.assertEqual(float(info["discounted_cost"]), 0.5**4)
        self.assertEqual(int(state.time), 0)

    def test_log_wrapper_episode_cost_is_the_sum_of_step_costs(self):
        env, params = self._env(x_band=0.03, max_steps_in_episode=12)
        env = LogWrapper(env)
        num_envs, num_steps = 5, 60

        @jit
        def go(key):
            k_reset, k_run = jax.random.split(key)
            obs, state = rollout.reset(k_reset, env, params, num_envs)
            return rollout.collect(
                k_run, env, params, state, obs, _random_policy(2), num_steps, ("cost",)
            )

        tr, state, _, info = go(jax.random.key(4))
        cost = np.asarray(tr.extras["cost"])
        np.testing.assert_array_equal(cost, info["cost"])
        np.testing.assert_array_equal(
            cost, (np.abs(np.asarray(tr.next_obs)[..., 0]) > 0.03).astype(np.float32)
        )
        ended = np.asarray(tr.terminated | tr.truncated)
        self.assertGreater(ended.sum(), 5)
        running = np.zeros((num_steps, num_envs), np.float32)
        completed = []
        for e in range(num_envs):
            acc = 0.0
            for t in range(num_steps):
                acc += cost[t, e]
                running[t, e] = acc
                if ended[t, e]:
                    completed.append(acc)
                    acc = 0.0
        np.testing.assert_allclose(info["episode_cost"], running, rtol=1e-6)
        np.testing.assert_array_equal(info["returned_episode"], ended)
        self.assertGreater(max(completed), 0.0)
        # The carried running sums restart at every episode end.
        np.testing.assert_allclose(
            state.episode_cost, np.where(ended[-1], 0.0, running[-1]), rtol=1e-6
        )


# ---------------------------------------------------------- rollout plumbing


class RolloutExtrasTest(parameterized.TestCase):
    def test_step_puts_cost_in_extras(self):
        env, params = envs.make("MountainCar-Constrained-v0", speed_limit=0.0)

        @jit
        def go(key):
            k_reset, k_step = jax.random.split(key)
            obs, state = rollout.reset(k_reset, env, params, 3)
            action = jnp.array([0, 1, 2])
            return rollout.step(k_step, env, params, state, obs, action, ("cost",))

        tr, _, _, info = go(jax.random.key(0))
        chex.assert_shape(tr.extras["cost"], (3,))
        self.assertEqual(tr.extras["cost"].dtype, jnp.float32)
        speed = np.abs(np.asarray(tr.next_obs)[:, 1])
        np.testing.assert_array_equal(tr.extras["cost"], (speed > 0).astype(np.float32))
        np.testing.assert_array_equal(tr.extras["cost"], info["cost"])
        # The start is at rest: only a push (actions 0 and 2) moves the car.
        np.testing.assert_array_equal(speed > 0, [True, True, True])

    def test_evaluate_sums_both_costs(self):
        env, params = envs.make(
            "Acrobot-Constrained-v0", max_steps_in_episode=9, cost_gamma=0.8
        )
        always_push = lambda key, obs: jnp.full(obs.shape[:1], 2, jnp.int32)
        out = jax.jit(
            lambda k: rollout.evaluate(
                k, env, params, always_push, 3, 20, ("cost", "discounted_cost")
            )
        )(jax.random.key(0))
        np.testing.assert_array_equal(out["length"], 9)
        np.testing.assert_allclose(out["cost"], 9.0)
        np.testing.assert_allclose(
            out["discounted_cost"], sum(0.8**t for t in range(9)), rtol=1e-6
        )


# -------------------------------------------------------------------- vmap


class VmapTest(parameterized.TestCase):
    def test_vmap_over_band_widths_and_budgets(self):
        env, params = envs.make("CartPole-Constrained-v0", max_steps_in_episode=25)
        bands = jnp.array([0.0, 0.02, 0.05, 10.0])
        limits = jnp.array([0.0, 1.0, 5.0, 25.0])

        @jit
        @chex.assert_max_traces(n=1)
        def run(key, band, limit):
            p = params.replace(x_band=band, cost_limit=limit)
            rec = _record(key, env, p, _random_policy(2), 3, 40)
            return rec, budget_from_params(p, "test")

        # One key for all: the trajectories coincide and only the costs differ.
        batched = jax.vmap(run, in_axes=(None, 0, 0))
        rec, (b, gamma_c) = _np(batched(jax.random.key(6), bands, limits))
        np.testing.assert_array_equal(b, limits)
        np.testing.assert_array_equal(gamma_c, 1.0)
        final_x = np.abs(rec["info"]["final_observation"][..., 0])
        for i, band in enumerate(np.asarray(bands)):
            np.testing.assert_array_equal(
                rec["info"]["cost"][i], (final_x[i] > band).astype(np.float32)
            )
            np.testing.assert_array_equal(rec["obs"][i], rec["obs"][0])  # same dynamics
        totals = rec["info"]["cost"].sum(axis=(1, 2))
        self.assertTrue(np.all(np.diff(totals) <= 0) and totals[0] > totals[2] > 0)
        self.assertEqual(totals[-1], 0.0)
        # A new traced value reuses the compiled function (no retrace).
        run(jax.random.key(7), jnp.float32(0.3), jnp.float32(2.0))

    def test_vmap_over_stacked_params(self):
        env, params = make_cartpole_constrained()
        stacked = jax.tree.map(
            lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]),
            params.replace(cost_gamma=0.5, x_band=0.0),
            params.replace(cost_gamma=1.0, x_band=0.0),
        )

        @jit
        def one_step(p):
            k_reset, k_step = jax.random.split(jax.random.key(0))
            _, state = env.reset(k_reset, p)
            state = state.replace(time=jnp.int32(3))
            return env.step(k_step, state, 1, p)[-1]

        info = jax.vmap(one_step)(stacked)
        np.testing.assert_array_equal(info["cost"], [1.0, 1.0])
        np.testing.assert_allclose(info["discounted_cost"], [0.125, 1.0])


# ------------------------------------------------------------ registry, errors


class RegistryTest(parameterized.TestCase):
    def test_registered_and_described(self):
        shapes = {
            "CartPole-Constrained-v0": ((4,), 2),
            "MountainCar-Constrained-v0": ((2,), 3),
            "Acrobot-Constrained-v0": ((6,), 3),
            "Freeway-MinAtar-Constrained-v0": ((10, 10, 7), 3),
        }
        continuous = {
            "Pendulum-Constrained-v0": ((3,), (1,)),
            "MountainCarContinuous-Constrained-v0": ((2,), (1,)),
        }
        for name, (shape, action_shape) in continuous.items():
            self.assertIn(name, envs.registered_envs)
            env, params = envs.make(name)
            self.assertIsInstance(env, CostWrapper)
            self.assertEqual(env.name, name)
            self.assertEqual(envs.obs_shape(env, params), shape)
            self.assertFalse(envs.is_discrete(env, params))
            self.assertEqual(tuple(env.action_space(params).shape), action_shape)
            validate(params)
            self.assertGreater(float(params.cost_limit), 0.0)
        for name, (shape, num_actions) in shapes.items():
            self.assertIn(name, envs.registered_envs)
            env, params = envs.make(name)
            self.assertIsInstance(env, CostWrapper)
            self.assertIsInstance(params, ConstrainedParams)
            self.assertEqual(env.name, name)
            self.assertEqual(envs.obs_shape(env, params), shape)
            self.assertEqual(envs.num_actions(env, params), num_actions)
            self.assertEqual(env.action_space(params.env_params).n, num_actions)
            self.assertEqual(
                params.max_steps_in_episode, env.env.default_params.max_steps_in_episode
            )
            validate(params)  # the defaults are valid
            self.assertGreater(float(params.cost_limit), 0.0)
        self.assertEqual(len(set(envs.registered_envs)), len(envs.registered_envs))

    def test_overrides_reach_outer_and_nested_params(self):
        env, params = envs.make(
            "CartPole-Constrained-v0",
            x_band=0.5,
            cost_limit=3.0,
            cost_gamma=0.99,
            gravity=9.0,
            max_steps_in_episode=50,
        )
        self.assertIsInstance(params, CartPoleCostParams)
        self.assertEqual(
            (params.x_band, params.cost_limit, params.cost_gamma), (0.5, 3.0, 0.99)
        )
        self.assertEqual(params.env_params.gravity, 9.0)
        self.assertEqual(params.max_steps_in_episode, 50)
        _, mc = envs.make("MountainCar-Constrained-v0", speed_limit=0.03)
        self.assertIsInstance(mc, MountainCarCostParams)
        self.assertEqual(mc.speed_limit, 0.03)
        # The same env object serves every parameter value.
        self.assertIs(type(env.env), type(gymnax.make("CartPole-v1")[0]))

    @parameterized.named_parameters(
        ("negative_band", "CartPole-Constrained-v0", {"x_band": -0.1}, "x_band"),
        ("nan_band", "CartPole-Constrained-v0", {"x_band": float("nan")}, "x_band"),
        (
            "negative_speed",
            "MountainCar-Constrained-v0",
            {"speed_limit": -1.0},
            "speed",
        ),
        (
            "negative_budget",
            "Acrobot-Constrained-v0",
            {"cost_limit": -1.0},
            "cost_limit",
        ),
        ("zero_gamma", "Freeway-MinAtar-Constrained-v0", {"cost_gamma": 0.0}, "gamma"),
        ("big_gamma", "CartPole-Constrained-v0", {"cost_gamma": 1.5}, "cost_gamma"),
        ("string", "CartPole-Constrained-v0", {"x_band": "0.5"}, "x_band"),
        ("base_string", "CartPole-Constrained-v0", {"gravity": "9"}, "gravity"),
        (
            "bad_steps",
            "CartPole-Constrained-v0",
            {"max_steps_in_episode": 0},
            "max_steps",
        ),
        (
            "unknown",
            "CartPole-Constrained-v0",
            {"x_bnd": 1.0},
            "x_bnd.*x_band.*gravity",
        ),
    )
    def test_bad_params(self, name, kwargs, match):
        with pytest.raises(ConfigError, match=match):
            envs.make(name, **kwargs)

    def test_unknown_id(self):
        with pytest.raises(ConfigError, match="did you mean 'CartPole-Constrained-v0'"):
            envs.make("CartPole-Constrained-v1")
        with pytest.raises(ConfigError, match="unknown environment 'Pong-Constrained"):
            envs.make("Pong-Constrained-v0")

    def test_validate_replaced_params(self):
        _, params = make_cartpole_constrained()
        with pytest.raises(ConfigError, match="band half-width"):
            validate(params.replace(x_band=-1.0))
        with pytest.raises(ConfigError, match="cost_limit"):
            validate(params.replace(cost_limit=jnp.array([1.0, -2.0])))
        validate(params.replace(cost_limit=float("inf")))  # no constraint: allowed

    def test_wrapper_errors(self):
        base, base_params = gymnax.make("CartPole-v1")
        with pytest.raises(ConfigError, match="overrides step"):
            CostWrapper(LogWrapper(base), cartpole_band_cost)
        with pytest.raises(ConfigError, match="ConstrainedParams"):
            CostWrapper(base, cartpole_band_cost, base_params)
        with pytest.raises(ConfigError, match="cost_gamma"):
            CostWrapper(
                base,
                cartpole_band_cost,
                ConstrainedParams(env_params=base_params, cost_gamma=2.0),
            )
        vector_cost = CostWrapper(base, lambda s, a, s1, p: jnp.zeros(2))
        _, state = vector_cost.reset(jax.random.key(0))
        with pytest.raises(ConfigError, match="scalar"):
            vector_cost.step(jax.random.key(1), state, 0)
        with pytest.raises(ConfigError, match="needs a constrained environment"):
            budget_from_params(base_params, "lagrangian")

    def test_generic_wrapper_defaults_and_forwarding(self):
        base, base_params = gymnax.make("CartPole-v1")
        cost_fn = functools.partial(cartpole_band_cost)
        env = CostWrapper(
            base, cost_fn, CartPoleCostParams(env_params=base_params, x_band=0.0)
        )
        self.assertEqual(env.name, "CartPole-v1-Constrained")
        self.assertEqual(env.obs_shape, (4,))  # forwarded attribute
        self.assertIs(env.unwrapped, base)
        self.assertIs(env.cost_fn, cost_fn)
        obs, state = env.reset(jax.random.key(0))  # default params
        np.testing.assert_array_equal(env.get_obs(state, env.default_params), obs)
        self.assertFalse(bool(env.is_terminated(state, env.default_params)))
        far = state.replace(x=jnp.float32(3.0))
        self.assertTrue(bool(env.is_terminated(far, env.default_params)))
        info = env.step(jax.random.key(1), state, 0)[-1]
        self.assertEqual(float(info["cost"]), 1.0)
        flat = envs.FlattenObservation(envs.make("Freeway-MinAtar-Constrained-v0")[0])
        self.assertEqual(flat.observation_space(flat.default_params).shape, (700,))


class CostTableEnvTest(parameterized.TestCase):
    """cost_table_env: tabular CMDPs as budgeted, cost-emitting environments."""

    @parameterized.named_parameters(
        ("random_cmdp", "RandomCMDP-v0", {"num_states": 6, "max_steps": 12}, 0.8),
        ("hazard_grid", "HazardGrid-v0", {"max_steps": 15, "slip": 0.3}, None),
    )
    def test_cost_is_the_table_along_a_rollout(self, name, kwargs, cost_gamma):
        base, base_params = envs.make(name, **kwargs)
        env, params = cost_table_env(
            base, base_params, cost_limit=2.5, cost_gamma=cost_gamma
        )
        mdp = base_params.mdp
        gamma_c = float(mdp.gamma) if cost_gamma is None else cost_gamma
        self.assertIsInstance(env, CostWrapper)
        self.assertIs(env.env, base)
        self.assertIs(params.env_params, base_params)
        self.assertEqual(env.name, name.replace("-v0", "-Constrained-v0"))
        # The budget the agents read is the one given (gamma_c: the MDP's default).
        limit, gamma = budget_from_params(params, "test")
        self.assertEqual(float(limit), 2.5)
        self.assertAlmostEqual(float(gamma), gamma_c, places=6)

        num_envs, num_steps = 4, 60
        policy = _random_policy(int(mdp.R.shape[1]))

        @jit
        def both(key):
            wrapped = _record(key, env, params, policy, num_envs, num_steps)
            plain = _record(
                jax.random.clone(key), base, base_params, policy, num_envs, num_steps
            )
            return wrapped, plain

        rec, plain = _np(both(jax.random.key(5)))
        cost_table = np.asarray(mdp.C, np.float64)
        s, a = rec["state"].state, rec["action"]
        cost = rec["info"]["cost"]
        ended = rec["terminated"] | rec["truncated"]
        self.assertEqual(cost.dtype, np.float32)
        chex.assert_shape(cost, (num_steps, num_envs))
        # Per-step cost: C[s_t, a_t] of the pre-step state, the env's own cost.
        np.testing.assert_array_equal(cost, cost_table[s, a].astype(np.float32))
        np.testing.assert_array_equal(cost, plain["info"]["cost"])
        self.assertGreater((cost > 0).sum(), 3)
        self.assertGreater(ended.sum(), 3)
        # discounted_cost: gamma_c^t C[s_t, a_t], t counted by a NumPy loop.
        time = _np_time_in_episode(ended)
        np.testing.assert_allclose(
            rec["info"]["discounted_cost"],
            gamma_c**time * cost_table[s, a],
            rtol=1e-5,
            atol=1e-7,
        )
        # Summed over each finished episode: the NumPy discounted episode cost.
        for e in range(num_envs):
            start, disc, t = 0, 0.0, 0
            for step in range(num_steps):
                disc += gamma_c**t * cost_table[s[step, e], a[step, e]]
                t += 1
                if ended[step, e]:
                    emitted = rec["info"]["discounted_cost"][start : step + 1, e]
                    np.testing.assert_allclose(emitted.sum(), disc, rtol=1e-5)
                    start, disc, t = step + 1, 0.0, 0
        # The dynamics are the unwrapped env's, bit for bit.
        for field in ("obs", "next_obs", "reward", "terminated", "truncated"):
            np.testing.assert_array_equal(rec[field], plain[field], err_msg=field)
        chex.assert_trees_all_equal(rec["state"], plain["state"])

    def test_defaults_and_vmap_over_budgets(self):
        base, base_params = envs.make("RandomCMDP-v0", num_states=4)
        env, params = cost_table_env(base, cost_limit=1.0)  # default params
        self.assertIs(params.env_params, base.default_params)
        self.assertIs(env.cost_fn, finite_mdp_cost)
        np.testing.assert_allclose(
            float(params.cost_gamma), float(base_params.mdp.gamma)
        )
        named, zero = cost_table_env(base, base_params, cost_limit=0.0, name="Mine")
        self.assertEqual(named.name, "Mine")
        self.assertEqual(float(zero.cost_limit), 0.0)
        limits = jnp.asarray([0.5, 1.0, 3.0])
        batched = jax.vmap(lambda b: params.replace(cost_limit=b))(limits)
        got = jax.vmap(lambda p: budget_from_params(p, "test")[0])(batched)
        np.testing.assert_array_equal(got, limits)

    def test_errors(self):
        chain, chain_params = envs.make("Chain-v0")
        with pytest.raises(ConfigError, match="cost table C"):
            cost_table_env(chain, chain_params, cost_limit=1.0)
        cartpole, cartpole_params = envs.make("CartPole-v1")
        with pytest.raises(ConfigError, match="FiniteMDP"):
            cost_table_env(cartpole, cartpole_params, cost_limit=1.0)
        grid, grid_params = envs.make("HazardGrid-v0")
        with pytest.raises(ConfigError, match="cost_limit"):
            cost_table_env(grid, grid_params, cost_limit=-1.0)
        with pytest.raises(ConfigError, match="cost_gamma"):
            cost_table_env(grid, grid_params, cost_limit=1.0, cost_gamma=1.5)
