"""Tests for jaxrl.agents.vi_tabular: exactness, chunked runs, randomness, contract pieces."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import testing
from jaxrl.agents import vi_tabular as vi
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError

CONFIG = vi.Config(num_chunks=3, iters_per_chunk=4)  # shared static shape: few compiles


@pytest.fixture(scope="module")
def garnet_env():
    return fm.make_garnet_env(
        seed=0, num_states=5, num_actions=2, branching=3, gamma=0.9
    )


@pytest.fixture(scope="module")
def fns(garnet_env):
    """Jitted train functions taking the config as a traced argument (one compile)."""
    env, params = garnet_env

    def train_with(config, k):
        return vi.make_train(config, env, params)(k)

    return {
        "train": jax.jit(chex.assert_max_traces(train_with, n=1)),
        "seeds": jax.jit(jax.vmap(train_with, in_axes=(None, 0))),
        "sweep": jax.jit(jax.vmap(train_with, in_axes=(0, None))),
    }


def _train(config, env, params):
    return jax.jit(vi.make_train(config, env, params))


class TestExactness:
    def test_matches_numpy_value_iteration_and_metrics(self, garnet_env, fns, key):
        env, params = garnet_env
        state, metrics = fns["train"](CONFIG, key)
        P, R, mu0, g = testing.np_mdp(params.mdp)
        q_ref, res_ref = testing.np_value_iteration(P, R, g, 12)
        np.testing.assert_allclose(state.q, q_ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            metrics["dp/residual"], res_ref, rtol=1e-4, atol=1e-5
        )
        # suboptimality of the greedy policy after each sweep, by linear solves
        q_star = testing.np_policy_iteration(P, R, g)
        j_star = mu0 @ q_star.max(-1)
        q = np.zeros_like(R)
        sub_ref = []
        for _ in range(12):
            q = testing.np_bellman_optimality(P, R, g, q)
            pi = testing.np_greedy(q)
            sub_ref.append(j_star - mu0 @ testing.np_policy_evaluation(P, R, g, pi))
        np.testing.assert_allclose(metrics["dp/suboptimality"], sub_ref, atol=1e-4)
        assert int(state.step) == 12
        assert set(metrics) == {"dp/residual", "dp/suboptimality"}
        assert metrics["dp/residual"].shape == (12,)

    def test_probe_closed_form(self, key):
        # (exact_dp's tests cover all probes; the agent runs the episodic one)
        probe = testing.discounting_chain(6, 0.8)
        env, params = fm.make_finite_mdp_env(probe.mdp, terminal=probe.terminal)
        state, metrics = _train(vi.Config(iters_per_chunk=120), env, params)(key)
        scale = np.abs(probe.q_star).max()
        np.testing.assert_allclose(state.q, probe.q_star, rtol=1e-4, atol=1e-4 * scale)
        # value iteration's greedy policy has (linear-solve) value V*
        P, R, _, g = testing.np_mdp(probe.mdp)
        v_greedy = testing.np_policy_evaluation(
            P, R, g, testing.np_greedy(np.asarray(state.q))
        )
        np.testing.assert_allclose(v_greedy, probe.v_star, rtol=1e-4, atol=1e-4 * scale)
        assert abs(float(metrics["dp/suboptimality"][-1])) < 1e-4 * scale
        assert float(metrics["dp/residual"][-1]) < 1e-3 * scale


class TestChunksAndRandomness:
    def test_train_bitwise_equals_init_plus_run_chunks(self, garnet_env, fns, key):
        env, params = garnet_env
        config = CONFIG.replace(noise_std=0.3)
        k_train, k_init = key, jax.random.clone(key)
        state, metrics = fns["train"](config, k_train)
        run = jax.jit(vi.make_run(config, env, params))
        s = vi.init(k_init, env, params, config)
        chunks = []
        for _ in range(config.num_chunks):
            s, m = run(s)
            chunks.append(m)
        np.testing.assert_array_equal(state.q, s.q)
        np.testing.assert_array_equal(state.step, s.step)
        np.testing.assert_array_equal(
            jax.random.key_data(state.key), jax.random.key_data(s.key)
        )
        for name, value in metrics.items():
            np.testing.assert_array_equal(
                value, np.concatenate([c[name] for c in chunks])
            )

    def test_seeds_differ_with_noise_and_reproduce(self, fns, key):
        keys = jax.random.split(key, 3)
        states, metrics = fns["seeds"](CONFIG.replace(noise_std=0.5), keys)
        assert metrics["dp/residual"].shape == (3, 12)
        q = np.asarray(states.q)
        assert not np.allclose(q[0], q[1]) and not np.allclose(q[1], q[2])
        again, _ = fns["seeds"](CONFIG.replace(noise_std=0.5), jax.random.clone(keys))
        np.testing.assert_array_equal(again.q, states.q)
        # without noise the key does not matter (same compiled function)
        exact, _ = fns["seeds"](CONFIG, jax.random.split(jax.random.key(1), 3))
        np.testing.assert_array_equal(exact.q[0], exact.q[1])

    def test_traced_noise_sweep_no_retrace(self, fns, key):
        k0 = key
        noisy = CONFIG.replace(noise_std=0.7)
        s0, _ = fns["train"](CONFIG, k0)
        s1, _ = fns["train"](noisy, jax.random.clone(k0))  # traced field: no retrace
        # a hyperparameter vmap equals separate runs
        swept, _ = fns["sweep"](stack_configs([CONFIG, noisy]), jax.random.clone(k0))
        np.testing.assert_allclose(swept.q[0], s0.q, rtol=1e-6)
        np.testing.assert_allclose(swept.q[1], s1.q, rtol=1e-5, atol=1e-6)
        assert not np.allclose(s1.q, s0.q)


class TestContractPieces:
    def test_update_keeps_shapes_and_splits_key(self, garnet_env, key):
        env, params = garnet_env
        config = vi.Config(noise_std=0.1)
        state = vi.init(key, env, params, config)
        new, metrics = jax.jit(vi.update)(state, params.mdp, config)
        chex.assert_trees_all_equal_shapes_and_dtypes(state, new)
        assert int(new.step) == 1 and set(metrics) == {"dp/residual"}
        assert state.q.shape == (5, 2) and state.q.dtype == params.mdp.R.dtype
        assert new.params is new.q  # generic code reads the table as state.params

    def test_loss_is_bellman_residual(self, garnet_env):
        env, params = garnet_env
        mdp = params.mdp
        q = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2)), mdp.R.dtype)
        res, metrics = vi.loss(q, q, mdp, vi.Config())
        P, R, _, g = testing.np_mdp(mdp)
        q64 = np.asarray(q, np.float64)
        ref = np.abs(q64 - testing.np_bellman_optimality(P, R, g, q64))
        np.testing.assert_allclose(res, ref.max(), rtol=1e-5)
        np.testing.assert_allclose(metrics["dp/mse"], (ref**2).mean(), rtol=1e-5)
        q_star = jnp.asarray(testing.np_policy_iteration(P, R, g), mdp.R.dtype)
        assert float(vi.loss(q_star, q_star, mdp, vi.Config())[0]) < 1e-5

    def test_act_greedy_and_epsilon(self, key):
        q = jnp.array([[0.0, 1.0, 0.5], [2.0, 2.0, -1.0]])

        @jax.jit
        def acts(k, epsilon):
            k_a, k_b, k_c, k_d = jax.random.split(k, 4)
            cfg = vi.Config(epsilon=epsilon)
            return (
                vi.act(q, jnp.array([1.0, 0.0]), k_a, cfg, greedy=True),
                vi.act(q, jnp.int32(1), k_b, cfg, greedy=True),
                vi.act(q, jnp.int32(0), k_c, cfg),
                jax.vmap(lambda kk: vi.act(q, jnp.int32(0), kk, cfg))(
                    jax.random.split(k_d, 600)
                ),
            )

        one_hot, tie, eps0, _ = acts(key, 0.0)
        assert (int(one_hot), int(tie), int(eps0)) == (1, 0, 1)  # tie: lowest index
        *_, explored = acts(jax.random.key(3), 1.0)
        freq = np.bincount(np.asarray(explored), minlength=3) / 600
        np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.07)

    def test_act_same_for_both_observation_formats(self):
        # every state, greedy and exploring: the one-hot and the index of a state
        # select the same row (equal keys, same action); greedy is argmax of the row
        q = jax.random.normal(jax.random.key(1), (4, 3))
        config = vi.Config(epsilon=0.5)
        states = jnp.arange(4)

        @functools.partial(jax.jit, static_argnums=1)
        def acts(obs, greedy):
            keys = jax.random.split(jax.random.key(2), 16)  # equal keys every call
            act = functools.partial(vi.act, q, config=config, greedy=greedy)
            return jax.vmap(lambda o: jax.vmap(lambda k: act(o, k))(keys))(obs)

        for greedy in (True, False):
            np.testing.assert_array_equal(
                acts(states, greedy), acts(jax.nn.one_hot(states, 4), greedy)
            )
        greedy_acts = np.asarray(acts(states, True))
        np.testing.assert_array_equal(
            greedy_acts, np.repeat(np.argmax(np.asarray(q), axis=1)[:, None], 16, 1)
        )
        with pytest.raises(ConfigError, match="one-hot observations must have 4"):
            vi.act(q, jnp.ones(3), jax.random.key(3), config)

    @pytest.mark.parametrize(
        "changes,message",
        [
            (dict(noise_std=-0.1), r"noise_std must lie in \[0.0, inf\]"),
            (dict(epsilon=1.5), r"epsilon must lie in \[0.0, 1.0\]"),
            (dict(iters_per_chunk=0), "iters_per_chunk must be an integer >= 1"),
            (dict(num_chunks=1.5), "num_chunks must be an integer >= 1"),
        ],
    )
    def test_config_errors(self, garnet_env, changes, message):
        env, params = garnet_env
        with pytest.raises(ConfigError, match=message):
            vi.make_train(vi.Config().replace(**changes), env, params)

    def test_needs_finite_mdp_params(self, key):
        with pytest.raises(ConfigError, match="vi_tabular needs a FiniteMDPEnv"):
            vi.init(key, None, object(), vi.Config())
