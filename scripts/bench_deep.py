"""``jaxrl bench`` deep cases: our DQN / M-DQN / MVI(q) / PPO chunk at the registry presets.

Each deep case starts from a preset of the registry (:data:`DEEP_PRESETS`,
``scripts/presets.py``) and changes only what the benchmark needs: one chunk of
``SCALES[scale]["iters"]`` iterations (PPO: ``"ppo_iters"``), no evaluation,
for the value agents learning from the first iteration (``learning_starts =
0``, ``train_frequency = 1``), and the per-environment overrides of
:data:`ENV_OVERRIDES` (PPO: :data:`PPO_ENV_OVERRIDES`). PPO takes the fields its peer hard-codes
(:func:`jaxrl.scripts.bench_peer_ppo.peer_config`: value clipping at
``clip_eps``, advantage normalisation), so that both sides do the same work.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import jax

from jaxrl.scripts import common, presets
from jaxrl.scripts.bench_common import SCALES, Side, compile_chunk, jax_side

__all__ = [
    "DEEP_ENVS",
    "DEEP_PRESETS",
    "ENV_OVERRIDES",
    "PPO_ENV_OVERRIDES",
    "ON_POLICY",
    "deep_config",
    "env_steps_per_iter",
    "settings_text",
    "pair_key",
    "ours_side",
]

DEEP_ENVS: dict[str, tuple[str, ...]] = {
    "dqn": ("CartPole-v1", "Breakout-MinAtar"),
    "mvi": ("CartPole-v1", "Breakout-MinAtar"),
    "mviq": ("CartPole-v1", "Breakout-MinAtar"),
    "ppo": ("CartPole-v1", "Breakout-MinAtar"),
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
"""Benchmark-wide config overrides per environment (value agents, both sides)."""

PPO_ENV_OVERRIDES: dict[str, dict[str, Any]] = {
    # rejax's PPO with flax's nn.Conv runs about 580 env steps/s at 8 seeds on a
    # 2-core CPU (a grouped convolution under the seed vmap): at the preset's 128
    # steps per rollout one 64-seed peer call would take minutes.
    "Breakout-MinAtar": {"num_steps": 32},
}
"""Benchmark-wide PPO config overrides per environment (both sides)."""

ON_POLICY: frozenset[str] = frozenset({"ppo"})
"""Deep cases without replay (a chunk is ``iters`` rollouts plus their SGD epochs)."""


def deep_config(agent: str, env_name: str, scale: str) -> Any:
    """The agent's registry preset for ``env_name`` with the benchmark overrides.

    Raises:
      ConfigError: if the agent has no such preset.
    """
    preset = presets.get_preset(agent, DEEP_PRESETS[env_name])
    sizes = SCALES[scale]
    if agent in ON_POLICY:
        config = preset.make_config().replace(
            num_chunks=1,
            iters_per_chunk=sizes["ppo_iters"][env_name],
            num_eval_episodes=0,
            **{**PPO_ENV_OVERRIDES.get(env_name, {}), **sizes.get("ppo_overrides", {})},
        )
        try:
            from jaxrl.scripts import bench_peer_ppo
        except ImportError:
            pass
        else:
            config = bench_peer_ppo.peer_config(config)
    else:
        config = preset.make_config().replace(
            num_chunks=1,
            iters_per_chunk=sizes["iters"][env_name],
            learning_starts=0,
            train_frequency=1,
            num_eval_episodes=0,
            **{**ENV_OVERRIDES.get(env_name, {}), **sizes["deep_overrides"]},
        )
    config.validate()
    return config


def env_steps_per_iter(config: Any) -> int:
    """Environment steps of one iteration of ``config`` (one seed)."""
    return config.num_envs * getattr(config, "num_steps", 1)


def settings_text(config: Any) -> str:
    """The settings both sides share, in words (the ``settings`` column)."""
    if hasattr(config, "num_steps"):  # PPO
        net = (
            f"conv{list(config.conv_features)}+" if config.conv_features else ""
        ) + f"mlp{list(config.hidden_sizes)}"
        return (
            f"actor and critic {net} {config.activation}, {config.num_envs} envs "
            f"x {config.num_steps} steps, {config.update_epochs} epochs x "
            f"{config.num_minibatches} minibatches of {config.minibatch_size}, "
            f"value clip {config.vf_clip_eps}"
        )
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


def ours_side(
    agent: str,
    env_name: str,
    num_seeds: int,
    scale: str,
    devices: Sequence[Any] | None = None,
) -> tuple[Side, Any]:
    """Our compiled chunk for ``agent`` on ``env_name`` at ``num_seeds`` seeds.

    The seeds are sharded over the local devices as ``jaxrl train`` shards them
    (:func:`jaxrl.sweep.seed_sharding`: the most devices whose count divides
    ``num_seeds``); on a CPU, ``jaxrl bench`` gives JAX one device per usable
    core (``--cpu-devices``).

    Args:
      agent, env_name, num_seeds, scale: the row.
      devices: the devices to shard over (default ``jax.local_devices()``).

    Returns:
      ``(side, config)``: ``side`` runs one donated ``jit(vmap(run))`` call
        (:func:`jaxrl.sweep.vmap_runs`: unbatched at one seed)
      (``iters_per_chunk`` iterations for every seed); ``side.devices`` is the
      number of devices it uses.
    """
    from jaxrl import envs
    from jaxrl import sweep as jsweep

    module = importlib.import_module(f"jaxrl.agents.{agent}")
    config = deep_config(agent, env_name, scale)
    env, env_params = envs.make(env_name)
    sharding = jsweep.seed_sharding(num_seeds, devices)
    keys = jax.device_put(common.seed_keys(0, num_seeds), sharding)
    state = jax.jit(
        jsweep.vmap_runs(lambda k: module.init(k, env, env_params, config)),
        out_shardings=sharding,
    )(keys)
    compiled, compile_s = compile_chunk(
        jsweep.vmap_runs(module.make_run(config, env, env_params)),
        state,
        sharding=sharding,
    )
    work = config.iters_per_chunk * env_steps_per_iter(config) * num_seeds
    side = jax_side(
        compiled,
        state,
        work=work,
        compile_s=compile_s,
        devices=len(sharding.device_set),
    )
    return side, config
