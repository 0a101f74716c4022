"""``jaxrl bench`` deep cases: our DQN / M-DQN chunk, timed at the registry presets.

Each deep case starts from a preset of the registry (:data:`DEEP_PRESETS`,
``scripts/presets.py``) and changes only what the benchmark needs: one chunk of
``SCALES[scale]["iters"]`` iterations, learning from the first iteration
(``learning_starts = 0``, ``train_frequency = 1``), no evaluation, and the
per-environment overrides of :data:`ENV_OVERRIDES`.
"""

from __future__ import annotations

import importlib
from typing import Any

import jax

from jaxrl.scripts import common, presets
from jaxrl.scripts.bench_common import SCALES, BenchResult, compile_chunk, timed_calls

__all__ = [
    "DEEP_ENVS",
    "DEEP_PRESETS",
    "ENV_OVERRIDES",
    "deep_config",
    "settings_text",
    "pair_key",
    "bench_ours",
]

DEEP_ENVS: dict[str, tuple[str, ...]] = {
    "dqn": ("CartPole-v1", "Breakout-MinAtar"),
    "mvi": ("CartPole-v1", "Breakout-MinAtar"),
}
"""Environments of the deep cases (``--envs`` selects among them).

``jaxrl.agents.dqn`` has no MinAtar factory; its MinAtar preset (``dqn/minatar-breakout``)
takes the DQN fields of ``jaxrl.agents.mvi.minatar_config`` (the ``mvi`` row's settings), so that
``dqn`` against the peer is DQN against DQN at identical settings.
"""

DEEP_PRESETS: dict[str, str] = {
    "CartPole-v1": "cartpole",
    "Breakout-MinAtar": "minatar-breakout",
}
"""The registry preset (``scripts/presets.py``) of every deep case, per environment."""

ENV_OVERRIDES: dict[str, dict[str, Any]] = {
    # gymnax MinAtar observations are float32 [10, 10, 4]: a 100k replay of obs and
    # next_obs is 320 MB per seed, 20 GB at 64 seeds (for each implementation).
    "Breakout-MinAtar": {"buffer_size": 10_000},
}
"""Benchmark-wide config overrides per environment (both implementations)."""


def deep_config(agent: str, env_name: str, scale: str) -> Any:
    """The agent's registry preset for ``env_name`` with the benchmark overrides.

    Raises:
      ConfigError: if the agent has no such preset.
    """
    preset = presets.get_preset(agent, DEEP_PRESETS[env_name])
    config = preset.make_config().replace(
        num_chunks=1,
        iters_per_chunk=SCALES[scale]["iters"][env_name],
        learning_starts=0,
        train_frequency=1,
        num_eval_episodes=0,
        **{**ENV_OVERRIDES.get(env_name, {}), **SCALES[scale]["deep_overrides"]},
    )
    config.validate()
    return config


def settings_text(config: Any) -> str:
    net = (
        f"conv{list(config.conv_features)}+" if config.conv_features else ""
    ) + f"mlp{list(config.hidden_sizes)}"
    return (
        f"{net}, {config.num_envs} envs, batch {config.batch_size}, "
        f"buffer {config.buffer_size}, {config.updates_per_iter} update(s) per "
        f"{config.num_envs} env steps, target "
        + ("copy" if float(config.polyak) == 1.0 else f"polyak {config.polyak}")
        + f" every {config.target_update_period} updates"
    )


def pair_key(config: Any, env_name: str, num_seeds: int) -> str:
    return f"{env_name}|{num_seeds}|{settings_text(config)}"


def bench_ours(
    agent: str, env_name: str, num_seeds: int, scale: str, repeats: int
) -> tuple[BenchResult, Any]:
    from jaxrl import envs

    module = importlib.import_module(f"jaxrl.agents.{agent}")
    config = deep_config(agent, env_name, scale)
    env, env_params = envs.make(env_name)
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(jax.vmap(lambda k: module.init(k, env, env_params, config)))(keys)
    compiled, compile_s = compile_chunk(
        jax.vmap(module.make_run(config, env, env_params)), state
    )
    call_s = timed_calls(compiled, state, repeats=repeats)
    work = config.iters_per_chunk * config.num_envs * num_seeds
    result = BenchResult(
        case=agent,
        agent=agent,
        env=env_name,
        num_seeds=num_seeds,
        unit="env steps/s",
        work_per_call=work,
        compile_s=compile_s,
        call_s=call_s,
        throughput=work / call_s,
        pair=pair_key(config, env_name, num_seeds),
        settings=settings_text(config),
    )
    return result, config
