"""The custom-environment example of docs/api.md ("Environment contract") works.

The example block is extracted from the document and executed; its corridor is
checked step by step against a NumPy reference of the gymnax 1.0 contract
(auto-reset, ``final_observation``, terminated vs. truncated), its slip rate
against the parameter, and a tiny ``dqn`` trains on it over seeds and over
stacked environment parameters, as the section claims.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl.agents import dqn
from tests.doc_examples import DOC, doc_module


def _example_code() -> str:
    text = DOC.read_text()
    match = re.search(
        r"<!-- example:custom-env -->\s*```python\n(.*?)```\s*<!-- /example:custom-env -->",
        text,
        re.S,
    )
    assert match, "docs/api.md lacks the custom-env example block"
    return match.group(1)


@pytest.fixture(scope="module")
def example():
    with doc_module("jaxrl_doc_custom_env", _example_code()) as module:
        yield module


def _np_step(pos, time, action, slipped, length, max_steps):
    """NumPy reference of one gymnax 1.0 step of the corridor (with auto-reset)."""
    move = (1 if action == 1 else -1) * (-1 if slipped else 1)
    reached = min(max(pos + move, 0), length - 1)
    time += 1
    terminated = reached == length - 1
    truncated = time >= max_steps
    done = terminated or truncated
    obs = 0 if done else reached  # the next episode starts at cell 0
    return obs, (0 if done else time), float(terminated), terminated, truncated, reached


@pytest.mark.parametrize("slip", [0.0, 1.0])
def test_step_and_reset_match_numpy(example, slip):
    env = example.Corridor()
    params = example.EnvParams(length=4, slip=slip, max_steps_in_episode=5)
    step = jax.jit(env.step)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (1,) and obs.dtype == jnp.float32 and float(obs[0]) == 0.0
    rng = np.random.default_rng(0)
    pos, time = 0, 0
    seen = {"terminated": 0, "truncated": 0, "both": 0}
    for i in range(60):
        action = int(rng.integers(2))
        obs, state, reward, term, trunc, info = step(
            jax.random.key(i + 1), state, action, params
        )
        pos, time, r_ref, term_ref, trunc_ref, final_ref = _np_step(
            pos, time, action, slip == 1.0, 4, 5
        )
        assert float(obs[0]) == pos and int(state.time) == time
        assert float(reward) == r_ref
        assert bool(term) == term_ref and bool(trunc) == trunc_ref
        assert float(info["final_observation"][0]) == final_ref
        seen["terminated"] += term_ref
        seen["truncated"] += trunc_ref
        seen["both"] += term_ref and trunc_ref
    assert seen["truncated"] > 0  # the time limit was exercised
    if slip == 0.0:
        assert seen["terminated"] > 0  # and the goal (right moves reach it)
    assert env.action_space(params).n == 2
    assert env.observation_space(params).shape == (1,)
    assert env.default_params == example.EnvParams()


def test_slip_rate_matches_the_parameter(example):
    env = example.Corridor()
    params = example.EnvParams(length=1000, slip=0.3, max_steps_in_episode=10_000)
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(pos=jnp.int32(500))  # far from both ends
    keys = jax.random.split(jax.random.key(1), 20_000)
    obs = jax.vmap(lambda k: env.step(k, state, 1, params)[0])(keys)
    slipped = float(np.mean(np.asarray(obs[:, 0]) == 499.0))
    assert np.all(np.isin(np.asarray(obs[:, 0]), [499.0, 501.0]))
    assert abs(slipped - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 20_000)


def _tiny_config():
    return dqn.Config(
        num_envs=2,
        buffer_size=64,
        batch_size=8,
        hidden_sizes=(8,),
        num_chunks=2,
        iters_per_chunk=12,
        learning_starts=8,
        num_eval_episodes=2,
        eval_max_steps=20,
        lr=1e-2,
        gamma=0.9,
        eps_end=0.2,
        target_update_period=3,
    )


def _check_runs(state, metrics, num_runs):
    loss = np.asarray(metrics["loss/td"])
    assert loss.shape == (num_runs, 24)
    # NaN only before the first update (not measured), finite from then on.
    measured = ~np.isnan(loss)
    assert np.all(measured[:, -20:]) and np.all(np.isfinite(loss[measured]))
    assert np.all(np.diff(measured.astype(int), axis=1) >= 0)
    # One greedy evaluation per chunk: a return of at most 1 (the goal's reward).
    ret = np.asarray(metrics["eval/return"])
    evals = ret[~np.isnan(ret)]
    assert evals.size == num_runs * 2
    assert np.all((evals >= 0.0) & (evals <= 1.0))
    for leaf in jax.tree.leaves(state.params):
        assert np.all(np.isfinite(np.asarray(leaf)))
    first = jax.tree.leaves(state.params)[0]
    assert not np.array_equal(np.asarray(first[0]), np.asarray(first[1]))


@pytest.mark.heavy
def test_dqn_trains_over_seeds_and_over_env_params(example):
    env, config = example.Corridor(), _tiny_config()
    p0, p1 = example.EnvParams(slip=0.0), example.EnvParams(slip=0.5)
    keys = jax.vmap(jax.random.key)(jnp.array([5, 6]))
    state, metrics = jax.jit(jax.vmap(dqn.make_train(config, env, p0)))(keys)
    _check_runs(state, metrics, 2)  # two seeds

    stacked = jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v) for v in x]), p0, p1)
    swept = jax.jit(jax.vmap(lambda k, p: dqn.make_train(config, env, p)(k)))
    same_seed = jax.vmap(jax.random.key)(jnp.array([5, 5]))
    state_s, metrics_s = swept(same_seed, stacked)
    _check_runs(state_s, metrics_s, 2)  # one seed, two slip probabilities
    np.testing.assert_allclose(
        metrics_s["loss/td"][0], metrics["loss/td"][0], rtol=1e-5, atol=1e-6
    )
