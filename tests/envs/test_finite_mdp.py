"""Tests for jaxrl.envs.finite_mdp: sampling env semantics and factories.

The generators are tested in test_mdp_generators.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.mdp import make_mdp
from jaxrl.ops import exact_dp


@pytest.fixture(scope="module")
def chain4():
    """One env object shared by tests, so gymnax's jitted step compiles once."""
    return fm.make_chain_env(num_states=4, small_reward=0.25, max_steps=50)


def _keys(key, n):
    return jax.random.split(key, n)


class TestStep:
    def test_matches_numpy_reference_on_deterministic_chain(self, chain4, key):
        env, params = chain4
        R = np.asarray(params.mdp.R)
        step = env.step  # jitted by gymnax
        k_reset, k_steps = jax.random.split(key)
        obs, state = env.reset(k_reset, params)
        s = 0
        actions = [1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
        for k, a in zip(_keys(k_steps, len(actions)), actions, strict=True):
            obs, state, reward, terminated, truncated, info = step(k, state, a, params)
            s_next = min(s + 1, 3) if a == 1 else max(s - 1, 0)
            assert float(reward) == pytest.approx(R[s, a])
            np.testing.assert_array_equal(obs, np.eye(4, dtype=np.float32)[s_next])
            assert (
                int(state.state) == s_next
                and not bool(terminated)
                and not bool(truncated)
            )
            assert "cost" not in info
            s = s_next
        assert obs.dtype == jnp.float32

    def test_index_observation_and_cost_in_info(self, key):
        probe_P = np.zeros((2, 1, 2))
        probe_P[0, 0, 1] = probe_P[1, 0, 0] = 1.0
        mdp = make_mdp(probe_P, [[1.0], [2.0]], mu0=[1.0, 0.0], C=[[0.5], [0.25]])
        env, params = fm.make_finite_mdp_env(mdp, observation="index")
        k1, k2 = jax.random.split(key)
        obs, state = env.reset(k1, params)
        assert obs.dtype == jnp.int32 and int(obs) == 0
        obs, state, reward, _, _, info = env.step(k2, state, 0, params)
        assert int(obs) == 1 and float(reward) == 1.0 and float(info["cost"]) == 0.5
        assert env.observation_space(params).n == 2 and env.action_space(params).n == 1

    def test_spaces(self):
        env, params = fm.make_gridworld_env()
        assert env.observation_space(params).shape == (17,)
        assert env.action_space(params).n == 4
        assert env.name == "GridWorld-v0" and env.num_actions == 4
        assert set(env.state_space(params).spaces) == {"time", "state"}


class TestStateIndex:
    """``state_index`` inverts the env's observation encoding."""

    @pytest.mark.parametrize("observation", fm.OBSERVATIONS)
    def test_round_trip_every_state(self, observation):
        S = 6
        env, params = fm.make_garnet_env(
            seed=0, num_states=S, num_actions=2, observation=observation
        )
        states = [fm.EnvState(time=jnp.int32(0), state=jnp.int32(s)) for s in range(S)]
        obs = [env.get_obs(st, params) for st in states]
        got = [int(fm.state_index(o, S)) for o in obs]
        assert got == list(range(S))
        batch = jnp.stack(obs)  # [S] indices or [S, S] one-hot vectors
        np.testing.assert_array_equal(
            jax.jit(lambda o: fm.state_index(o, S, batch_ndim=1))(batch), np.arange(S)
        )
        assert fm.state_index(batch, S, batch_ndim=1).dtype == jnp.int32

    def test_batched_and_vmapped_inputs(self):
        S = 5
        idx = np.random.default_rng(0).integers(0, S, size=(3, 4))
        one_hot = np.eye(S, dtype=np.float32)[idx]  # [3, 4, S]
        for obs in (one_hot, one_hot.astype(bool), idx):
            np.testing.assert_array_equal(fm.state_index(obs, S, batch_ndim=2), idx)
        row = jax.vmap(lambda o: fm.state_index(o, S))(jnp.asarray(one_hot[0]))
        np.testing.assert_array_equal(row, idx[0])

    @pytest.mark.parametrize(
        "obs, kwargs, message",
        [
            (np.zeros((2, 3)), {}, r"0 axes \(state index\) or 1"),
            (np.float32(1.0), {}, "index observation must be an integer"),
            (np.eye(3)[0], {"num_states": 4}, "must have 4 entries"),
            (np.int32(2), {"batch_ndim": 1}, r"1 axes \(state index\) or 2"),
        ],
    )
    def test_bad_observations(self, obs, kwargs, message):
        with pytest.raises(ConfigError, match=message):
            fm.state_index(obs, **kwargs)


class TestSamplingFrequencies:
    def test_transition_frequencies_match_P(self, key):
        S, A, N = 5, 2, 4000
        k_mdp, k_samples = jax.random.split(key)
        env, params = fm.make_finite_mdp_env(fm.garnet(k_mdp, S, A, branching=3))
        s_idx, a_idx = np.meshgrid(np.arange(S), np.arange(A), indexing="ij")
        s_flat = jnp.repeat(jnp.asarray(s_idx.ravel(), jnp.int32), N)
        a_flat = jnp.repeat(jnp.asarray(a_idx.ravel(), jnp.int32), N)
        keys = _keys(k_samples, S * A * N)

        def sample(k, s, a):
            state = fm.EnvState(time=jnp.int32(0), state=s)
            _, new_state, _, _, _ = env.step_env(k, state, a, params)
            return new_state.state

        nxt = np.asarray(jax.jit(jax.vmap(sample))(keys, s_flat, a_flat)).reshape(
            S, A, N
        )
        P = np.asarray(params.mdp.P, np.float64)
        freq = np.stack(
            [
                [np.bincount(nxt[s, a], minlength=S) / N for a in range(A)]
                for s in range(S)
            ]
        )
        std = np.sqrt(P * (1 - P) / N)
        assert np.all(np.abs(freq - P) <= 5 * std + 1.0 / N), np.abs(freq - P).max()
        assert np.all(freq[P == 0] == 0)  # impossible successors are never sampled
        # chi-square goodness of fit, pooled over all (s, a): dof = sum(support - 1)
        support = P > 0
        chi2 = float(np.sum(((freq - P) ** 2 / np.where(support, P, 1.0))[support]) * N)
        dof = int(support.sum() - S * A)
        assert chi2 < dof + 5 * np.sqrt(2 * dof), (chi2, dof)

    def test_reset_frequencies_match_mu0(self, key):
        env, params = fm.make_finite_mdp_env(
            make_mdp(np.ones((3, 1, 3)) / 3, np.zeros((3, 1)), mu0=[0.2, 0.0, 0.8])
        )
        N = 5000
        obs, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(
            _keys(key, N), params
        )
        freq = np.bincount(np.asarray(state.state), minlength=3) / N
        np.testing.assert_allclose(freq, [0.2, 0.0, 0.8], atol=5 * np.sqrt(0.16 / N))
        assert freq[1] == 0


class TestEpisodeBoundaries:
    def test_terminated_on_entering_absorbing_state(self, key):
        env, params = fm.make_gridworld_env(("S.G",), slip=0.0, max_steps=10)
        step = env.step
        keys = _keys(key, 3)
        obs, state = env.reset(keys[0], params)
        np.testing.assert_array_equal(obs, [1.0, 0.0, 0.0])
        obs, state, reward, terminated, truncated, _ = step(keys[1], state, 1, params)
        assert not bool(terminated) and float(reward) == 0.0
        obs, state, reward, terminated, truncated, info = step(
            keys[2], state, 1, params
        )
        assert bool(terminated) and not bool(truncated)
        assert float(reward) == pytest.approx(1.0)
        np.testing.assert_array_equal(
            info["final_observation"], [0.0, 0.0, 1.0]
        )  # pre-reset
        np.testing.assert_array_equal(obs, [1.0, 0.0, 0.0])  # auto-reset to the start
        assert int(state.time) == 0 and int(state.state) == 0
        assert bool(env.is_terminated(fm.EnvState(time=0, state=jnp.int32(2)), params))

    def test_truncated_at_max_steps(self, chain4, key):
        env, params = chain4
        params = params.replace(max_steps_in_episode=3)  # a leaf: same compiled step
        step = env.step
        keys = _keys(key, 4)
        _, state = env.reset(keys[0], params)
        flags = []
        for k in keys[1:]:
            obs, state, _, terminated, truncated, info = step(k, state, 1, params)
            flags.append((bool(terminated), bool(truncated)))
        assert flags == [(False, False), (False, False), (False, True)]
        np.testing.assert_array_equal(info["final_observation"], np.eye(4)[3])
        np.testing.assert_array_equal(obs, np.eye(4)[0])
        assert int(state.time) == 0

    def test_monte_carlo_return_matches_exact_value(self, key):
        """Discounted returns of the env equal J(pi) by linear solve (reward timing)."""
        gamma, T, N = 0.8, 60, 3000
        env, params = fm.make_gridworld_env(
            ("S..", ".#T", "..G"),
            slip=0.2,
            gamma=gamma,
            step_reward=-0.1,
            max_steps=T + 1,
        )
        pi = np.full((env.num_states, 4), 0.25)
        j_exact = float(exact_dp.performance(params.mdp, pi))

        def episode(k):
            # keys are carried (not scanned over as xs): under vmap, scanning over a
            # key array trips jax 0.10's key-reuse checker (a false positive).
            k_reset, k_steps = jax.random.split(k)
            obs, state = env.reset(k_reset, params)

            def body(carry, _):
                state, key, alive, ret, disc = carry
                key, k_a, k_s = jax.random.split(key, 3)
                a = jax.random.randint(k_a, (), 0, 4)
                _, state, r, term, trunc, _ = env.step(k_s, state, a, params)
                ret = ret + alive * disc * r
                alive = alive * (1.0 - jnp.logical_or(term, trunc))
                return (state, key, alive, ret, disc * gamma), None

            one = jnp.ones((), params.mdp.R.dtype)  # float64 under JAX_ENABLE_X64
            init = (state, k_steps, one, 0.0 * one, one)
            (_, _, _, ret, _), _ = jax.lax.scan(body, init, None, length=T)
            return ret

        returns = np.asarray(jax.jit(jax.vmap(episode))(_keys(key, N)))
        se = returns.std() / np.sqrt(N)
        assert abs(returns.mean() - j_exact) < 4 * se + gamma**T, (
            returns.mean(),
            j_exact,
            se,
        )


class TestFactories:
    @pytest.mark.parametrize("name", sorted(fm.ENV_FACTORIES))
    def test_default_factories_run(self, name, key):
        env, params = fm.ENV_FACTORIES[name]()

        @jax.jit
        def reset_and_step(k):
            k1, k2 = jax.random.split(k)
            obs, state = env.reset(k1, params)
            return obs, env.step(k2, state, 0, params)[0]

        obs, obs2 = reset_and_step(key)
        assert obs.shape == obs2.shape == env.observation_space(params).shape
        assert env.default_params is params

    def test_garnet_seed_and_key(self, key):
        kw = dict(num_states=5, num_actions=2, branching=3)
        _, p1 = fm.make_garnet_env(seed=1, **kw)
        _, p1b = fm.make_garnet_env(seed=1, **kw)
        _, p2 = fm.make_garnet_env(seed=2, **kw)
        _, pk = fm.make_garnet_env(key=key, **kw)
        np.testing.assert_array_equal(p1.mdp.P, p1b.mdp.P)
        assert not np.array_equal(p1.mdp.P, p2.mdp.P)
        np.testing.assert_array_equal(pk.mdp.P, fm.garnet(jax.random.key(0), **kw).P)

    def test_vmap_step_over_batch_of_params(self, key):
        k_mdp, k_reset, k_step = jax.random.split(key, 3)
        mdps = jax.vmap(lambda k: fm.garnet(k, 5, 2, 3))(_keys(k_mdp, 4))
        env, _ = fm.make_finite_mdp_env(jax.tree.map(lambda x: x[0], mdps))
        params = jax.vmap(lambda m: fm.EnvParams(mdp=m, terminal=jnp.zeros(5, bool)))(
            mdps
        )

        @jax.jit
        def reset_and_step(k_r, k_s, p):
            _, state0 = jax.vmap(env.reset)(k_r, p)
            out = jax.vmap(env.step)(k_s, state0, jnp.ones(4, jnp.int32), p)
            return state0, out

        state0, (obs, _, reward, *_) = reset_and_step(
            _keys(k_reset, 4), _keys(k_step, 4), params
        )
        assert obs.shape == (4, 5) and reward.shape == (4,)
        s0 = np.asarray(state0.state)
        np.testing.assert_allclose(reward, np.asarray(mdps.R)[np.arange(4), s0, 1])

    @pytest.mark.parametrize(
        "kwargs,message",
        [
            (
                dict(terminal=[True] + [False] * 9),
                r"mu0 puts mass on terminal states \[0\]",
            ),
            (
                dict(terminal=[True, False]),
                r"terminal must be a bool mask of shape \[10\]",
            ),
            (dict(max_steps=0), "max_steps must be an integer >= 1"),
            (dict(observation="pixels"), "observation must be one of one_hot, index"),
        ],
    )
    def test_config_errors(self, kwargs, message):
        with pytest.raises(ConfigError, match=message):
            fm.make_finite_mdp_env(fm.chain(), **kwargs)

    def test_bad_slip_and_no_default_params(self):
        with pytest.raises(ConfigError, match=r"slip must lie in \[0, 1\]"):
            fm.make_chain_env(slip=1.5)
        with pytest.raises(ConfigError, match="no default params"):
            _ = fm.FiniteMDPEnv(3, 2).default_params
