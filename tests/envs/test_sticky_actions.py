"""Tests for MinAtar sticky actions: jaxrl.envs.StickyActions and make(..., sticky_action_prob=p)."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs.wrappers import StickyActions, StickyState, with_sticky_actions
from jaxrl.errors import ConfigError

GAME = "Breakout-MinAtar"  # 3 actions, short episodes under random play
E, T = 16, 150


def _play(env, params, key, actions):
    """Reset ``E`` copies and step them with ``actions[T, E]``; return per-step outputs."""
    k_reset, k_steps = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(k_reset, E), params
    )

    def body(carry, inp):
        state = carry
        key, action = inp
        out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key, E), state, action, params
        )
        obs, new_state, reward, terminated, truncated, info = out
        last = getattr(new_state, "last_action", jnp.zeros(E, jnp.int32))
        prev = getattr(state, "last_action", jnp.zeros(E, jnp.int32))
        step = (obs, reward, terminated, truncated, info["final_observation"])
        return new_state, (step, prev, last)

    keys = jax.random.split(k_steps, actions.shape[0])
    _, (steps, prev, last) = jax.lax.scan(body, state, (keys, actions))
    return obs, steps, prev, last


_play_jit = jax.jit(_play, static_argnums=0)


def _actions(seed: int, n: int = 3) -> jax.Array:
    return jax.random.randint(jax.random.key(seed), (T, E), 0, n, jnp.int32)


def _bitwise(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


@pytest.fixture(scope="module")
def plain():
    return envs.make(GAME)


@pytest.fixture(scope="module")
def sticky():
    return envs.make(GAME, sticky_action_prob=0.1)


class TestSticky:
    def test_make_wraps_and_keeps_params(self, sticky):
        env, params = sticky
        assert isinstance(env, StickyActions)
        assert isinstance(params, type(gymnax.make(GAME)[1]))
        assert params.sticky_action_prob == 0.1
        env, params = envs.make(GAME, sticky_action_prob=0.25, max_steps_in_episode=50)
        assert (params.max_steps_in_episode, params.sticky_action_prob) == (50, 0.25)
        assert envs.num_actions(env, params) == 3
        assert envs.obs_shape(env, params) == (10, 10, 4)
        assert not isinstance(envs.make(GAME)[0], StickyActions)

    def test_probability_zero_is_the_plain_env_bitwise(self, plain, sticky):
        env, params = sticky
        params = params.replace(sticky_action_prob=0.0)
        actions = _actions(1)
        want_obs, want, _, _ = _play_jit(
            plain[0], plain[1], jax.random.key(11), actions
        )
        got_obs, got, _, last = _play_jit(env, params, jax.random.key(11), actions)
        _bitwise((got_obs, got), (want_obs, want))
        done = np.asarray(want[2] | want[3])
        assert done.sum() > 10  # the runs cross many auto-resets
        # executed = chosen, and 0 after every auto-reset
        np.testing.assert_array_equal(last, np.where(done, 0, actions))

    def test_probability_one_repeats_the_previous_action(self, plain, sticky):
        """The first action of an episode repeats the reset's 0, and so on:
        the run is the plain env's under all-zero actions, whatever is chosen."""
        env, params = sticky
        params = params.replace(sticky_action_prob=1.0)
        actions = _actions(2)
        got_obs, got, prev, last = _play_jit(env, params, jax.random.key(12), actions)
        zeros = jnp.zeros_like(actions)
        want_obs, want, _, _ = _play_jit(plain[0], plain[1], jax.random.key(12), zeros)
        _bitwise((got_obs, got), (want_obs, want))
        np.testing.assert_array_equal(last, prev)  # executed == previous, always
        np.testing.assert_array_equal(last, 0)

    @pytest.mark.parametrize("p", [0.1, 0.35])
    def test_repeat_frequency_is_p(self, sticky, p):
        """Monte Carlo: among steps whose chosen action differs from the
        previous executed one, the previous one is executed with frequency p."""
        env, params = sticky
        actions = _actions(3)
        params = params.replace(sticky_action_prob=p)
        _, steps, prev, last = _play_jit(env, params, jax.random.key(13), actions)
        done = np.asarray(steps[2] | steps[3])
        prev, last, chosen = np.asarray(prev), np.asarray(last), np.asarray(actions)
        informative = (chosen != prev) & ~done
        repeated = (last == prev)[informative]
        n = repeated.size
        assert n > 1000
        # executed is either the chosen or the previous action
        assert ((last == chosen) | (last == prev))[~done].all()
        assert abs(repeated.mean() - p) < 4 * np.sqrt(p * (1 - p) / n), (
            repeated.mean(),
            n,
        )

    def test_reset_clears_the_previous_action(self, sticky):
        env, params = sticky
        obs, state = env.reset(jax.random.key(5), params)
        assert isinstance(state, StickyState) and int(state.last_action) == 0
        # Choose 2 with p = 0 until an auto-reset, then switch to p = 1: the
        # first executed action of the new episode is 0, not the 2 before it.
        p0, p1 = (
            params.replace(sticky_action_prob=0.0),
            params.replace(sticky_action_prob=1.0),
        )
        step = jax.jit(env.step)
        for i in range(2000):
            obs, state, _, term, trunc, _ = step(
                jax.random.fold_in(jax.random.key(7), i), state, 2, p0
            )
            if bool(term | trunc):
                break
            assert int(state.last_action) == 2
        else:
            pytest.fail("no episode ended")
        assert int(state.last_action) == 0
        obs, state, _, term, trunc, _ = step(jax.random.key(6), state, 1, p1)
        assert not bool(term | trunc) and int(state.last_action) == 0
        # an explicit reset clears it too
        state = state.replace(last_action=jnp.int32(2))
        _, state = env.reset(jax.random.key(8), params)
        assert int(state.last_action) == 0

    def test_probability_is_traced(self, sticky, plain):
        """One compiled program for every p (vmap over params); p = 0 row is plain."""
        env, params = sticky
        probs = jnp.array([0.0, 0.5, 1.0])
        batched = jax.vmap(lambda p: params.replace(sticky_action_prob=p))(probs)
        actions = _actions(4)
        run = jax.jit(
            jax.vmap(
                lambda prm: _play(env, prm, jax.random.key(14), actions)[1:],
                in_axes=(0,),
            )
        )
        steps, _, last = run(batched)
        _, want, _, _ = _play_jit(plain[0], plain[1], jax.random.key(14), actions)
        _bitwise(jax.tree.map(lambda x: x[0], steps), want)
        np.testing.assert_array_equal(last[2], 0)
        assert (np.asarray(last[1]) != 0).any()

    def test_replay_still_stores_bool_observations(self, sticky):
        from jaxrl.agents._value_loop import _binary_obs

        assert _binary_obs(sticky[0]) and _binary_obs(gymnax.make(GAME)[0])
        assert not _binary_obs(envs.make("CartPole-v1")[0])


class TestBadInput:
    @pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "0.1", True, None])
    def test_probability_outside_unit_interval(self, value):
        with pytest.raises(ConfigError, match="sticky_action_prob must be") as err:
            envs.make(GAME, sticky_action_prob=value)
        assert "\n" not in str(err.value)

    def test_only_minatar(self):
        with pytest.raises(ConfigError, match="applies to the MinAtar games") as err:
            envs.make("CartPole-v1", sticky_action_prob=0.1)
        assert "\n" not in str(err.value) and "Breakout-MinAtar" in str(err.value)

    def test_wrapper_needs_discrete_actions(self):
        with pytest.raises(ConfigError, match="Discrete"):
            StickyActions(gymnax.make("Pendulum-v1")[0])

    def test_with_sticky_actions_keeps_fields(self):
        base = gymnax.make("Freeway-MinAtar")[1]
        params = with_sticky_actions(base, 0.2)
        assert params.max_steps_in_episode == base.max_steps_in_episode == 2500
        assert params.player_speed == base.player_speed
        again = with_sticky_actions(params, 0.3)
        assert type(again) is type(params) and again.sticky_action_prob == 0.3
