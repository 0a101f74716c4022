"""Every registered agent honours the shared contract (docs/api.md).

Each agent in ``jaxrl.agents.AGENTS`` must have a tiny case in ``CASES``; a new agent
without one fails ``test_every_agent_has_a_case``.
"""

from __future__ import annotations

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import agents, envs, types
from jaxrl import config as cfg

# name -> (env id, env kwargs, config overrides, {traced field: other value})
CASES = {
    "cal": (
        "Pendulum-Constrained-v0",
        {"cost_limit": 2.0},
        {
            "base.num_envs": 2,
            "base.buffer_size": 64,
            "base.batch_size": 8,
            "base.hidden_sizes": (8,),
            "base.num_chunks": 2,
            "base.iters_per_chunk": 12,
            "base.learning_starts": 8,
            "base.num_eval_episodes": 2,
            "base.eval_max_steps": 20,
            "num_cost_critics": 3,
            "eta_lambda": 0.1,
        },
        {"k": 2.0, "c": 3.0, "eta_lambda": 0.5, "lambda0": 1.0, "base.lr": 1e-2},
    ),
    "cat": (
        "CartPole-Constrained-v0",
        {},
        {
            "base.num_envs": 2,
            "base.num_steps": 8,
            "base.num_minibatches": 2,
            "base.update_epochs": 2,
            "base.hidden_sizes": (8,),
            "base.num_chunks": 2,
            "base.iters_per_chunk": 3,
            "base.num_eval_episodes": 2,
            "base.eval_max_steps": 20,
        },
        {"p_max": 0.5, "scale_decay": 0.5, "base.lr": 1e-2},
    ),
    "cmdp_tabular": (
        "RandomCMDP-v0",
        {"num_states": 4, "num_actions": 2, "branching": 2},
        {"num_chunks": 2, "iters_per_chunk": 5, "init_noise": 0.5, "budget": 4.0},
        {"eta_pi": 0.2, "eta_lambda": 1.0, "budget": 3.0, "lambda0": 0.5},
    ),
    "constrained": (
        "CartPole-Constrained-v0",
        {},
        {
            "base.num_envs": 2,
            "base.buffer_size": 64,
            "base.batch_size": 8,
            "base.hidden_sizes": (8,),
            "base.num_chunks": 2,
            "base.iters_per_chunk": 12,
            "base.learning_starts": 8,
            "base.num_eval_episodes": 2,
            "base.eval_max_steps": 20,
        },
        {"eta_lambda": 0.5, "lambda0": 1.0, "base.lr": 1e-2},
    ),
    "dist_dqn": (
        "Chain-v0",
        {"num_states": 4, "max_steps": 6},
        {
            "num_envs": 2,
            "buffer_size": 64,
            "batch_size": 8,
            "hidden_sizes": (8,),
            "num_atoms": 5,
            "objective": "cvar",
            "num_stock0": 3,
            "num_chunks": 2,
            "iters_per_chunk": 12,
            "learning_starts": 8,
            "num_eval_episodes": 2,
            "eval_max_steps": 10,
            "gamma": 0.9,
            "stock0_low": -2.0,
            "stock0_high": 1.0,
        },
        {"alpha": 0.5, "lr": 1e-2, "stock0_low": -1.0, "kappa": 0.5},
    ),
    "distributional_dp": (
        "Garnet-v0",
        {"num_states": 4, "num_actions": 2, "branching": 2},
        {
            "objective": "cvar",
            "num_atoms": 11,
            "v_min": 0.0,
            "v_max": 10.0,
            "num_stocks": 6,
            "stock_min": -5.0,
            "stock_max": 0.0,
            "num_chunks": 2,
            "iters_per_chunk": 3,
            "eval_iters": 3,
            "init_noise": 0.5,
        },
        {"alpha": 0.7, "stock_min": -3.0, "init_noise": 0.1},
    ),
    "dqn": (
        "CartPole-v1",
        {},
        {
            "num_envs": 2,
            "buffer_size": 64,
            "batch_size": 8,
            "hidden_sizes": (8,),
            "num_chunks": 2,
            "iters_per_chunk": 12,
            "learning_starts": 8,
            "num_eval_episodes": 2,
            "eval_max_steps": 20,
        },
        {"lr": 1e-2, "gamma": 0.9, "eps_end": 0.2, "target_update_period": 3},
    ),
    "mvi": (
        "CartPole-v1",
        {},
        {
            "num_envs": 2,
            "buffer_size": 64,
            "batch_size": 8,
            "hidden_sizes": (8,),
            "num_chunks": 2,
            "iters_per_chunk": 12,
            "learning_starts": 8,
            "num_eval_episodes": 2,
            "eval_max_steps": 20,
        },
        {"alpha": 0.5, "tau": 0.3, "l0": -0.5, "lr": 1e-2, "gamma": 0.9},
    ),
    "mviq": (
        "CartPole-v1",
        {},
        {
            "num_envs": 2,
            "buffer_size": 64,
            "batch_size": 8,
            "hidden_sizes": (8,),
            "num_chunks": 2,
            "iters_per_chunk": 12,
            "learning_starts": 8,
            "num_eval_episodes": 2,
            "eval_max_steps": 20,
        },
        {"q": 3.0, "alpha": 0.5, "tau": 0.3, "lr": 1e-2, "gamma": 0.9},
    ),
    "dual_rl": (
        "CartPole-v1",
        {},
        {
            "method": "xql",
            "hidden_sizes": (8,),
            "batch_size": 8,
            "data_num_envs": 2,
            "data_steps": 16,
            "num_chunks": 2,
            "iters_per_chunk": 5,
            "num_eval_episodes": 2,
            "eval_max_steps": 10,
        },
        {"beta": 0.5, "awr_beta": 1.0, "lr": 1e-2, "gamma": 0.9},
    ),
    "dual_tabular": (
        "Garnet-v0",
        {"num_states": 6, "num_actions": 3, "branching": 2},
        {
            "num_chunks": 2,
            "iters_per_chunk": 5,
            "noise_std": 0.1,
            "oracle_iters": 20,
            "data_epsilon": 0.5,
        },
        {"beta": 0.3, "awr_beta": 1.0, "data_epsilon": 0.9, "noise_std": 0.5},
    ),
    "mvi_tabular": (
        "Garnet-v0",
        {"num_states": 6, "num_actions": 3, "branching": 2},
        {"num_chunks": 2, "iters_per_chunk": 5, "noise_std": 0.1, "oracle_iters": 20},
        {"alpha": 0.5, "tau": 0.2, "q": 2.0, "noise_std": 0.5},
    ),
    "ppo": (
        "CartPole-v1",
        {},
        {
            "num_envs": 2,
            "num_steps": 8,
            "num_minibatches": 2,
            "update_epochs": 2,
            "hidden_sizes": (8,),
            "num_chunks": 2,
            "iters_per_chunk": 3,
            "num_eval_episodes": 2,
            "eval_max_steps": 20,
        },
        {"lr": 1e-2, "gamma": 0.9, "gae_lambda": 0.5, "clip_eps": 0.1, "ent_coef": 0.1},
    ),
    "ppo_lagrangian": (
        "CartPole-Constrained-v0",
        {},
        {
            "base.num_envs": 2,
            "base.num_steps": 8,
            "base.num_minibatches": 2,
            "base.update_epochs": 2,
            "base.hidden_sizes": (8,),
            "base.num_chunks": 2,
            "base.iters_per_chunk": 3,
            "base.num_eval_episodes": 2,
            "base.eval_max_steps": 20,
        },
        {"eta_lambda": 0.5, "lambda0": 1.0, "base.lr": 1e-2, "cost_vf_coef": 1.0},
    ),
    "sac": (
        "Pendulum-v1",
        {},
        {
            "num_envs": 2,
            "buffer_size": 64,
            "batch_size": 8,
            "hidden_sizes": (8,),
            "num_chunks": 2,
            "iters_per_chunk": 12,
            "learning_starts": 8,
            "num_eval_episodes": 2,
            "eval_max_steps": 20,
        },
        {
            "lr": 1e-2,
            "gamma": 0.9,
            "tau": 0.5,
            "init_alpha": 0.3,
            "target_entropy_per_dim": 0.5,
        },
    ),
    "vi_tabular": (
        "Garnet-v0",
        {"num_states": 6, "num_actions": 3, "branching": 2},
        {"num_chunks": 2, "iters_per_chunk": 5, "noise_std": 0.1, "oracle_iters": 20},
        {"noise_std": 0.5, "epsilon": 0.3},
    ),
}

CONTRACT = (
    "Config",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
)
NAMES = sorted(agents.AGENTS)


def _setup(name):
    env_id, env_kwargs, overrides, _ = CASES[name]
    env, env_params = envs.make(env_id, **env_kwargs)
    module = agents.get(name)
    config = cfg.validate(cfg.apply_overrides(module.Config(), overrides))
    return module, env, env_params, config


def test_every_agent_has_a_case():
    assert set(agents.AGENTS) == set(CASES)


def test_unknown_agent_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown agent.*dqn"):
        agents.get("nope")


@pytest.mark.parametrize("name", NAMES)
def test_module_exposes_the_contract(name):
    module = agents.get(name)
    for attr in CONTRACT:
        assert hasattr(module, attr), f"jaxrl.agents.{name} lacks {attr}"
    params = lambda f: list(inspect.signature(f).parameters)
    assert params(module.init) == ["key", "env", "env_params", "config"]
    assert params(module.act)[:4] == ["params", "obs", "key", "config"]
    assert "greedy" in params(module.act)
    assert params(module.loss)[:4] == ["params", "target_params", "batch", "config"]
    assert params(module.update) == ["state", "data", "config"]
    assert params(module.make_train) == ["config", "env", "env_params"]
    assert params(module.make_run) == ["config", "env", "env_params"]
    assert isinstance(module.init, types.InitFn)


@pytest.mark.heavy  # a whole train() and a chunked run compiled per agent; CI runs it
@pytest.mark.parametrize("name", NAMES)
def test_train_shapes_run_keeps_state_and_equals_train(name):
    module, env, env_params, config = _setup(name)
    train = module.make_train(config, env, env_params)
    run = jax.jit(module.make_run(config, env, env_params))

    abstract_state, abstract_metrics = jax.eval_shape(train, jax.random.key(0))
    iters = config.num_chunks * config.iters_per_chunk
    for metric, leaf in abstract_metrics.items():
        assert "/" in metric, f"metric {metric!r} lacks a namespace"
        assert leaf.shape == (iters,), f"{metric}: {leaf.shape}"

    state = module.init(jax.random.key(0), env, env_params, config)
    chunks = []
    for _ in range(config.num_chunks):
        new_state, metrics = run(state)
        chex.assert_trees_all_equal_shapes_and_dtypes(new_state, state)
        state = new_state
        chunks.append(metrics)
    chex.assert_trees_all_equal_shapes_and_dtypes(state, abstract_state)

    final, metrics = jax.jit(train)(jax.random.key(0))
    chex.assert_trees_all_equal(
        jax.random.key_data(final.key), jax.random.key_data(state.key)
    )
    joined = jax.tree.map(lambda *xs: jnp.concatenate(xs), *chunks)
    # The chunk program and the whole-run program are fused differently by XLA,
    # so float32 results may differ by rounding. The loosest case is a metric
    # that is a difference of exactly solved values (dual_tabular's
    # dp/suboptimality = J* - J(pi), two float32 linear solves): its absolute
    # error is about eps * |J| / (1 - gamma), seen 4.3e-6 on a value of 0.27.
    # A chunk boundary that lost or reset state would differ by O(1).
    chex.assert_trees_all_close(joined, metrics, rtol=1e-5, atol=1e-5)


@pytest.mark.heavy  # one whole-run jit(vmap(train)) compile per agent; CI runs it
@pytest.mark.parametrize("name", NAMES)
def test_traced_hyperparameters_and_vmapped_seeds(name):
    """One compiled ``jit(vmap(train))`` over seeds, the config a traced argument.

    Changing a traced hyperparameter neither retraces nor recompiles and changes
    the results; the seeds of one call differ; the same keys reproduce the run.
    (One program serves both checks: each compilation costs seconds.)
    """
    module, env, env_params, config = _setup(name)
    other = cfg.apply_overrides(config, CASES[name][3])
    traces = []

    def train(c, key):
        traces.append(1)
        return module.make_train(c, env, env_params)(key)

    f = jax.jit(jax.vmap(train, in_axes=(None, 0)))
    keys = lambda: jax.random.split(jax.random.key(3), 3)
    state, metrics = f(config, keys())
    for leaf in jax.tree.leaves(metrics):
        assert leaf.shape[0] == 3
    params = jax.tree.leaves(state.params)
    for i in range(3):
        for j in range(i + 1, 3):
            assert any(not np.array_equal(p[i], p[j]) for p in params), (
                f"seeds {i},{j} equal"
            )
    again, _ = f(config, keys())
    chex.assert_trees_all_equal(state.params, again.params)

    _, other_metrics = f(other, keys())
    assert len(traces) == 1, "changing a traced hyperparameter recompiled train"
    differs = jax.tree.leaves(
        jax.tree.map(
            lambda a, b: not np.array_equal(a, b, equal_nan=True),
            metrics,
            other_metrics,
        )
    )
    assert any(differs), "the traced hyperparameters had no effect"
