"""Tests for the environment registry in envs/__init__.py."""

from __future__ import annotations

import urllib.error

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from jaxrl import envs, rollout
from jaxrl.errors import ConfigError
from jaxrl.transition import from_gymnax_step

OWN_IDS = (
    tuple(envs.finite_mdp.ENV_FACTORIES)
    + tuple(envs.risk.ENV_FACTORIES)
    + tuple(envs.constrained.ENV_FACTORIES)
)
# Built at make time from a network download; tested separately below.
NEEDS_NETWORK = ("MNISTBandit-bsuite",)
OFFLINE_IDS = tuple(n for n in envs.registered_envs if n not in NEEDS_NETWORK)


def test_registered_envs_lists_every_gymnax_id_and_ours():
    assert isinstance(envs.registered_envs, tuple)
    assert len(set(envs.registered_envs)) == len(envs.registered_envs)
    assert set(gymnax.registered_envs) <= set(envs.registered_envs)
    assert set(OWN_IDS) <= set(envs.registered_envs)
    assert set(envs.registered_envs) == set(gymnax.registered_envs) | set(OWN_IDS)


@pytest.mark.parametrize("name", OFFLINE_IDS)
def test_make_reset_step_under_jit(name):
    """Every id (except the download-only MNIST bandit) builds, resets, steps.

    One unbatched environment keeps compile time down; ``tests/jaxrl/test_rollout.py``
    covers the vmapped path.
    """
    env, params = envs.make(name)
    obs_shape = envs.obs_shape(env, params)

    @jax.jit
    def go(key):
        k_reset, k_act, k_step = jax.random.split(key, 3)
        obs, state = env.reset(k_reset, params)
        action = env.action_space(params).sample(k_act)
        out = env.step(k_step, state, action, params)
        return obs, out[0], from_gymnax_step(obs, action, out)

    obs, next_obs, tr = go(jax.random.key(0))
    chex.assert_shape([obs, next_obs, tr.next_obs], obs_shape)
    chex.assert_shape([tr.reward, tr.terminated, tr.truncated], ())
    assert tr.reward.dtype == jnp.float32  # UmbrellaChain/BernoulliBandit pay int32
    assert tr.terminated.dtype == jnp.bool_ and tr.truncated.dtype == jnp.bool_
    assert np.isfinite(float(tr.reward))
    if envs.is_discrete(env, params):
        assert 1 <= envs.num_actions(env, params) == env.action_space(params).n


def test_mnist_bandit_without_network_is_a_config_error(monkeypatch):
    from gymnax.utils import load_mnist

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(load_mnist, "load_mnist", offline)
    with pytest.raises(
        ConfigError, match=r"MNISTBandit-bsuite downloads .*network"
    ) as info:
        envs.make("MNISTBandit-bsuite")
    assert "\n" not in str(info.value)


class TestUnknownNames:
    def test_unknown_name_lists_valid_names_and_suggests(self):
        with pytest.raises(ConfigError) as info:
            envs.make("CartPole-v0")
        msg = str(info.value)
        assert "unknown environment 'CartPole-v0'" in msg
        assert "did you mean 'CartPole-v1'?" in msg
        assert all(name in msg for name in envs.registered_envs)
        assert "\n" not in msg

    def test_case_mismatch_suggestion(self):
        with pytest.raises(ConfigError, match="did you mean 'GridWorld-v0'"):
            envs.make("gridworld-v0")

    def test_no_suggestion_for_nonsense(self):
        with pytest.raises(ConfigError) as info:
            envs.make("zzzz")
        assert "did you mean" not in str(info.value)

    def test_unknown_field_lists_valid_fields(self):
        with pytest.raises(ConfigError) as info:
            envs.make("CartPole-v1", max_step=10)
        msg = str(info.value)
        assert "unknown option(s) 'max_step' for CartPole-v1" in msg
        assert "max_steps_in_episode" in msg and "gravity" in msg

    def test_unknown_field_for_own_env(self):
        with pytest.raises(ConfigError) as info:
            envs.make("Chain-v0", num_state=3)
        msg = str(info.value)
        assert (
            "'num_state'" in msg
            and "num_states" in msg
            and "max_steps_in_episode" in msg
        )

    @pytest.mark.parametrize("value", [0, -3, "10", 2.5])
    def test_bad_override_values(self, value):
        with pytest.raises(ConfigError, match="max_steps_in_episode"):
            envs.make("CartPole-v1", max_steps_in_episode=value)

    def test_constructor_rejecting_its_argument(self):
        with pytest.raises(ConfigError, match="cannot build FrozenLake-misc"):
            envs.make("FrozenLake-misc", map_name="9x9")


class TestOverrides:
    def test_params_override_changes_truncation(self):
        env, params = envs.make("CartPole-v1", max_steps_in_episode=3, gravity=9.0)
        assert params.max_steps_in_episode == 3 and params.gravity == 9.0
        always_left_right = lambda key, obs: jnp.arange(obs.shape[0]) % 2

        @jax.jit
        def go(key):
            k_reset, k_run = jax.random.split(key)
            obs, state = rollout.reset(k_reset, env, params, 2)
            return rollout.collect(
                k_run, env, params, state, obs, always_left_right, 6
            )[0]

        tr = go(jax.random.key(1))
        np.testing.assert_array_equal(tr.truncated[:, 0], [False, False, True] * 2)
        np.testing.assert_array_equal(tr.terminated, False)

    def test_constructor_kwarg(self):
        env, params = envs.make("DeepSea-bsuite", size=5)
        assert envs.obs_shape(env, params) == (5, 5)
        assert params.max_steps_in_episode == 5

    def test_own_env_factory_kwarg_and_param_override(self):
        env, params = envs.make("Chain-v0", num_states=4, max_steps_in_episode=7)
        assert envs.obs_shape(env, params) == (4,)
        assert int(params.max_steps_in_episode) == 7
        assert envs.num_actions(env, params) == env.num_actions


class TestSpaceHelpers:
    def test_discrete(self):
        env, params = envs.make("Breakout-MinAtar")
        assert envs.is_discrete(env, params)
        assert envs.num_actions(env, params) == 3
        assert envs.obs_shape(env, params) == (10, 10, 4)

    def test_continuous(self):
        env, params = envs.make("Pendulum-v1")
        assert not envs.is_discrete(env, params)
        assert isinstance(env.action_space(params), spaces.Box)
        with pytest.raises(ConfigError, match="Discrete"):
            envs.num_actions(env, params)
        assert envs.obs_shape(env, params) == (3,)

    def test_discrete_observation(self):
        env, params = envs.make("FrozenLake-misc")
        assert envs.obs_shape(env, params) == ()

    def test_through_wrappers(self):
        env, params = envs.make("Breakout-MinAtar")
        env = envs.LogWrapper(envs.FlattenObservation(env))
        assert envs.obs_shape(env, params) == (400,)
        assert envs.num_actions(env, params) == 3
