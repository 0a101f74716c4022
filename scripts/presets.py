"""The preset registry: every named agent config, for every entry point.

A :class:`Preset` names an agent, an environment (with ``jaxrl.envs.make`` keyword
arguments), a config builder, a default number of seeds and the headline metric.
:data:`PRESETS` maps ``(agent, preset_name)`` to presets and is the ONLY list of
named configs: ``jaxrl train/sweep --preset``, ``jaxrl reproduce`` (the rows of
:data:`jaxrl.scripts.tables.TABLES`), ``jaxrl bench`` and the table scripts all
look their configs up here. Every agent in ``jaxrl.agents.AGENTS`` has at least
one preset.

Paper defaults live with their agent (factory functions such as
:func:`jaxrl.agents.dqn.cartpole_config`); a preset refers to one (or to the
agent's ``Config`` with a few fields) and adds only run-size changes. Builders
import the agent lazily, so importing this module does not import every agent.
:meth:`Preset.make_config` passes keyword overrides on to the builder, so a
table can size a preset per budget (``make_config(iters_per_chunk=K)``).

Budget names (:data:`BUDGETS`): ``tiny`` (seconds; tests only), ``small`` (the
README quick start), ``full`` (paper scale); tables and their budgets live in
:mod:`jaxrl.scripts.tables` (re-exported here under their old names).

Examples:
  >>> p = get_preset("dqn", "cartpole")
  >>> p.env, p.make_config().total_env_steps
  ('CartPole-v1', 500000)
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from jaxrl.errors import ConfigError

__all__ = [
    "Preset",
    "BUDGETS",
    "PRESETS",
    "MINATAR_GAMES",
    "MINATAR_AGENTS",
    "MINATAR_SEEDS",
    "MINATAR_FRAMES",
    "MINATAR_STICKY",
    "minatar_short",
    "get_preset",
    "presets_for",
    "describe_presets",
]

BUDGETS = ("tiny", "small", "full")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named, reproducible run configuration.

    Attributes:
      agent: agent name in ``jaxrl.agents.AGENTS``.
      env: environment id for ``jaxrl.envs.make``.
      config_fn: ``(**overrides) -> Config`` building the agent config.
      env_kwargs: keyword arguments for ``jaxrl.envs.make``.
      num_seeds: default number of vmapped seeds.
      metric: headline metric (its final value goes into tables).
      description: one line for humans.
      env_key_arg: draw one environment per seed by passing a per-seed key as
        this ``jaxrl.envs.make`` keyword (e.g. ``"key"`` for a random Garnet per seed).
    """

    agent: str
    env: str
    config_fn: Callable[[], Any]
    env_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_seeds: int = 4
    metric: str | None = None
    description: str = ""
    env_key_arg: str | None = None

    def make_config(self, **overrides: Any) -> Any:
        """Build the agent config (validated by the caller).

        Args:
          **overrides: config fields passed on to the builder (for factory
            presets, the factory's own keyword arguments such as ``base=``).
        """
        return self.config_fn(**overrides)


def _agent_attr(agent: str, name: str) -> Any:
    module = importlib.import_module(f"jaxrl.agents.{agent}")
    return getattr(module, name)


def _factory(agent: str, name: str, *args: Any, **fields: Any) -> Callable[..., Any]:
    """A builder calling the agent's factory ``name(*args, **fields, **overrides)``."""

    def build(**overrides: Any) -> Any:
        return _agent_attr(agent, name)(*args, **{**fields, **overrides})

    return build


def _config(agent: str, **fields: Any) -> Callable[..., Any]:
    """A builder calling the agent's ``Config(**fields, **overrides)``."""

    def build(**overrides: Any) -> Any:
        return _agent_attr(agent, "Config")(**{**fields, **overrides})

    return build


# ----------------------------------------------------------------------------- DQN


def _dqn(**fields: Any) -> Callable[..., Any]:
    return _factory("dqn", "cartpole_config", **fields)


_DQN_SMALL = (
    dict(  # 100k env steps; the README quick start (about a minute on 2 CPU cores)
        num_envs=10,
        buffer_size=10_000,
        batch_size=64,
        num_chunks=10,
        iters_per_chunk=1_000,
        learning_starts=1_000,
        eps_decay=0.3,
        lr=5e-4,
        lr_end_fraction=0.05,
        target_update_period=400,
        num_eval_episodes=10,
    )
)

_DQN_TINY = dict(  # seconds; for tests (meaningless numbers)
    num_envs=2,
    buffer_size=256,
    batch_size=16,
    hidden_sizes=(16,),
    num_chunks=4,
    iters_per_chunk=10,
    learning_starts=8,
    num_eval_episodes=2,
    eval_max_steps=20,
    target_update_period=5,
)


# ----------------------------------------------------------------------------- VI (tabular)


def _vi(**fields: Any) -> Callable[..., Any]:
    return _config("vi_tabular", **fields)


_GARNET = {"num_states": 50, "num_actions": 4, "branching": 5, "gamma": 0.99}
_GRID = {
    "gamma": 0.95,
    "slip": 0.1,
}  # the default 17-cell layout with a goal and a trap

PRESETS: dict[tuple[str, str], Preset] = {
    ("dqn", "cartpole"): Preset(
        "dqn",
        "CartPole-v1",
        _dqn(),
        num_seeds=8,
        metric="eval/return",
        description="DQN on CartPole-v1, 500k env steps (Mnih et al. 2015 settings scaled down)",
    ),
    ("dqn", "cartpole-small"): Preset(
        "dqn",
        "CartPole-v1",
        _dqn(**_DQN_SMALL),
        num_seeds=4,
        metric="eval/return",
        description="DQN on CartPole-v1, 100k env steps (quick start)",
    ),
    ("dqn", "cartpole-tiny"): Preset(
        "dqn",
        "CartPole-v1",
        _dqn(**_DQN_TINY),
        num_seeds=2,
        metric="eval/return",
        description="DQN on CartPole-v1, 80 env steps (tests only)",
    ),
    ("vi_tabular", "garnet"): Preset(
        "vi_tabular",
        "Garnet-v0",
        _vi(num_chunks=1, iters_per_chunk=3),
        env_kwargs=_GARNET,
        num_seeds=20,
        metric="dp/suboptimality",
        env_key_arg="key",
        description="exact VI, K=3 sweeps, one random Garnet(50, 4, 5), gamma=0.99, per seed",
    ),
    ("vi_tabular", "garnet-long"): Preset(
        "vi_tabular",
        "Garnet-v0",
        _vi(num_chunks=2, iters_per_chunk=10),
        env_kwargs=_GARNET,
        num_seeds=20,
        metric="dp/suboptimality",
        env_key_arg="key",
        description="exact VI, K=20 sweeps, one random Garnet(50, 4, 5), gamma=0.99, per seed",
    ),
    ("vi_tabular", "gridworld-noisy"): Preset(
        "vi_tabular",
        "GridWorld-v0",
        _vi(num_chunks=1, iters_per_chunk=40, noise_std=0.01),
        env_kwargs=_GRID,
        num_seeds=20,
        metric="dp/suboptimality",
        description="approximate VI (Gaussian backup noise sigma=0.01), K=40 sweeps, gridworld",
    ),
    ("vi_tabular", "gridworld"): Preset(
        "vi_tabular",
        "GridWorld-v0",
        _vi(num_chunks=1, iters_per_chunk=40),
        env_kwargs=_GRID,
        num_seeds=1,
        metric="dp/suboptimality",
        description="exact VI, K=40 sweeps, gridworld (deterministic: one seed suffices)",
    ),
}


# ----------------------------------------------------------------------------- M-DQN, MVI(q)


def _mvi_presets() -> dict[tuple[str, str], Preset]:
    out = {}
    for agent, label in (("mvi", "M-DQN"), ("mviq", "MVI(q=2)-DQN")):
        out[(agent, "cartpole")] = Preset(
            agent,
            "CartPole-v1",
            _factory(agent, "cartpole_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"{label} on CartPole-v1, 500k env steps "
            + (
                "(alpha=0.9, tau=0.03)" if agent == "mvi" else "(alpha=0.9, tau=1, D17)"
            ),
        )
        out[(agent, "cartpole-small")] = Preset(
            agent,
            "CartPole-v1",
            _factory(agent, "cartpole_config", **_DQN_SMALL),
            num_seeds=4,
            metric="eval/return",
            description=f"{label} on CartPole-v1, 100k env steps (quick start)",
        )
        out[(agent, "cartpole-tiny")] = Preset(
            agent,
            "CartPole-v1",
            _factory(agent, "cartpole_config", **_DQN_TINY),
            num_seeds=2,
            metric="eval/return",
            description=f"{label} on CartPole-v1, 80 env steps (tests only)",
        )
        out[(agent, "acrobot")] = Preset(
            agent,
            "Acrobot-v1",
            _factory(agent, "acrobot_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"{label} on Acrobot-v1, 500k env steps (untuned)",
        )
    return out


PRESETS.update(_mvi_presets())


# ----------------------------------------------------------------------------- SAC

_SAC_TINY = dict(  # seconds; for tests (meaningless numbers)
    num_envs=2,
    buffer_size=256,
    batch_size=16,
    hidden_sizes=(16,),
    num_chunks=4,
    iters_per_chunk=10,
    learning_starts=8,
    num_eval_episodes=2,
    eval_max_steps=20,
)


def _sac_presets() -> dict[tuple[str, str], Preset]:
    pendulum = "SAC on Pendulum-v1"
    car = "SAC on MountainCarContinuous-v0"
    return {
        ("sac", "pendulum"): Preset(
            "sac",
            "Pendulum-v1",
            _factory("sac", "pendulum_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"{pendulum}, 20k env steps (lr 1e-3, 64x64, learned alpha)",
        ),
        ("sac", "pendulum-long"): Preset(
            "sac",
            "Pendulum-v1",
            _factory("sac", "pendulum_config", num_chunks=25),
            num_seeds=4,
            metric="eval/return",
            description=f"{pendulum}, 50k env steps",
        ),
        ("sac", "pendulum-tiny"): Preset(
            "sac",
            "Pendulum-v1",
            _factory("sac", "pendulum_config", **_SAC_TINY),
            num_seeds=2,
            metric="eval/return",
            description=f"{pendulum}, 80 env steps (tests only)",
        ),
        ("sac", "mountaincar"): Preset(
            "sac",
            "MountainCarContinuous-v0",
            _factory("sac", "mountaincar_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"{car}, 50k env steps (often learns to stand still)",
        ),
        ("sac", "mountaincar-long"): Preset(
            "sac",
            "MountainCarContinuous-v0",
            _factory("sac", "mountaincar_config", num_chunks=40),
            num_seeds=4,
            metric="eval/return",
            description=f"{car}, 200k env steps",
        ),
    }


PRESETS.update(_sac_presets())


def _cal_presets() -> dict[tuple[str, str], Preset]:
    env = "Pendulum-Constrained-v0"
    return {
        ("cal", "pendulum"): Preset(
            "cal",
            env,
            _factory("cal", "pendulum_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"CAL (E=4, k=0.5, c=10) on {env}, 10k env steps",
        ),
        ("cal", "pendulum-lagrangian"): Preset(
            "cal",
            env,
            _factory("cal", "pendulum_lagrangian_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"SAC-Lagrangian (CAL with E=1, k=c=0) on {env}, 10k env steps",
        ),
    }


PRESETS.update(_cal_presets())


# ----------------------------------------------------------------------------- MinAtar

MINATAR_GAMES = (
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
)
"""The five MinAtar games (Young and Tian 2019) as gymnax ids."""

MINATAR_AGENTS = ("dqn", "mvi", "mviq")
"""Agents compared in the ``mvi-minatar`` table, all at identical settings."""

_MINATAR_MAX_STEPS = {"Freeway-MinAtar": 2500}  # gymnax episode limits; others 1000

# Shared by DQN, M-DQN and MVI(q) so that only the target differs. Network and
# replay follow Young and Tian (2019): one 3x3 conv with 16 channels, a 128-unit
# layer, batch 32, replay 100k, target copy every 1000 updates, epsilon 1 -> 0.1,
# Huber(1) loss; Adam instead of RMSProp.
_MINATAR_COMMON = dict(
    conv_features=(16,),
    hidden_sizes=(128,),
    batch_size=32,
    lr=2.5e-4,
    adam_eps=3.125e-4,
    gamma=0.99,
    eps_start=1.0,
    eps_end=0.1,
    huber_delta=1.0,
    polyak=1.0,
)
_MINATAR_BUDGETS = {
    # seconds; tests only (meaningless numbers)
    "tiny": dict(
        num_envs=2,
        buffer_size=256,
        batch_size=8,
        conv_features=(4,),
        hidden_sizes=(16,),
        num_chunks=2,
        iters_per_chunk=8,
        learning_starts=8,
        target_update_period=4,
        eps_decay=0.5,
        num_eval_episodes=1,
        eval_max_steps=20,
    ),
    # CPU-feasible: 50k frames per seed (2 seeds), 1 update per 8 frames
    "small": dict(
        num_envs=8,
        buffer_size=50_000,
        num_chunks=5,
        iters_per_chunk=1_250,
        updates_per_iter=1,
        learning_starts=2_000,
        target_update_period=250,
        eps_decay=0.4,
        num_eval_episodes=8,
    ),
    # GPU scale: 5M frames per seed (MinAtar paper budget), 1 update per 4 frames
    "full": dict(
        num_envs=16,
        buffer_size=100_000,
        num_chunks=50,
        iters_per_chunk=6_250,
        updates_per_iter=4,
        learning_starts=5_000,
        target_update_period=1_000,
        eps_decay=0.02,
        num_eval_episodes=16,
    ),
}
MINATAR_FRAMES = {"tiny": 32, "small": 50_000, "full": 5_000_000}
"""Frames per seed per budget in the ``mvi-minatar`` table."""
MINATAR_SEEDS = {"tiny": 1, "small": 2, "full": 5}
"""Seeds per budget in the ``mvi-minatar`` table."""
MINATAR_STICKY = {"tiny": None, "small": None, "full": 0.1}
"""``sticky_action_prob`` per budget in the ``mvi-minatar`` table (``None``: off).

The full budget plays MinAtar as in the original benchmark (Young and Tian
2019): with probability 0.1 the previous action is executed instead of the
chosen one (:class:`jaxrl.envs.StickyActions`, in training and evaluation)."""


def minatar_short(game: str) -> str:
    """``"Breakout-MinAtar" -> "breakout"`` (the game part of preset names)."""
    return game.split("-")[0].lower()


def _minatar(agent: str, game: str, budget: str) -> Callable[..., Any]:
    fields = {**_MINATAR_COMMON, **_MINATAR_BUDGETS[budget]}
    fields.setdefault("eval_max_steps", _MINATAR_MAX_STEPS.get(game, 1000))
    build = _config(agent, **fields)
    if agent != "mviq":
        return build

    def build_mviq(**overrides: Any) -> Any:
        # D17: unless given, tau = mviq.bonus_matched_tau(q, l0) (q = 2, l0 = -1: 1)
        config = build(**overrides)
        if "tau" in overrides:
            return config
        tau = _agent_attr("mviq", "bonus_matched_tau")(config.q, config.l0)
        return config.replace(tau=tau)

    return build_mviq


def _minatar_presets() -> dict[tuple[str, str], Preset]:
    names = {"dqn": "DQN", "mvi": "M-DQN", "mviq": "MVI(q=2)-DQN"}
    out = {}
    for agent in MINATAR_AGENTS:
        for game in MINATAR_GAMES:
            for budget in BUDGETS:
                name = f"minatar-{minatar_short(game)}-{budget}"
                sticky = MINATAR_STICKY[budget]
                out[(agent, name)] = Preset(
                    agent,
                    game,
                    _minatar(agent, game, budget),
                    env_kwargs={} if sticky is None else {"sticky_action_prob": sticky},
                    num_seeds=MINATAR_SEEDS[budget],
                    metric="eval/return",
                    description=(
                        f"{names[agent]} on {game}, {MINATAR_FRAMES[budget]:,} "
                        f"frames per seed ({budget} budget"
                        + ("" if sticky is None else f", sticky actions p={sticky}")
                        + ")"
                    ),
                )
    return out


PRESETS.update(_minatar_presets())


# ----------------------------------------------------------------------------- paper factories
#
# One preset per agent factory (and per method where the factory takes one), so
# that every registered agent has a preset and the table scripts and the
# benchmark take their base configs from here.


def _dqn_from_mvi(factory: str) -> Callable[..., Any]:
    """DQN at the DQN fields of an M-DQN factory (DQN has no such preset of its own)."""

    def build(**overrides: Any) -> Any:
        config_cls = _agent_attr("dqn", "Config")
        preset = _agent_attr("mvi", factory)()
        names = [f.name for f in dataclasses.fields(config_cls)]
        return config_cls(**{n: getattr(preset, n) for n in names}).replace(**overrides)

    return build


def _factory_presets() -> dict[tuple[str, str], Preset]:
    minatar = "Breakout-MinAtar"
    out = {
        ("dqn", "minatar-breakout"): Preset(
            "dqn",
            minatar,
            _dqn_from_mvi("minatar_config"),
            num_seeds=4,
            metric="eval/return",
            description="DQN at the DQN fields of mvi.minatar_config on Breakout-MinAtar, 5M frames",
        ),
        ("ppo", "cartpole"): Preset(
            "ppo",
            "CartPole-v1",
            _factory("ppo", "cartpole_config"),
            num_seeds=4,
            metric="eval/return",
            description="PPO on CartPole-v1 (ppo.cartpole_config)",
        ),
        ("ppo", "minatar-breakout"): Preset(
            "ppo",
            minatar,
            _factory("ppo", "minatar_config"),
            num_seeds=4,
            metric="eval/return",
            description="PPO on Breakout-MinAtar, 5M frames (ppo.minatar_config)",
        ),
        ("dual_rl", "cartpole"): Preset(
            "dual_rl",
            "CartPole-v1",
            _config("dual_rl"),
            num_seeds=4,
            metric="eval/return",
            description="offline XQL (paper defaults) on a generated CartPole-v1 dataset",
        ),
        ("dual_tabular", "gridworld"): Preset(
            "dual_tabular",
            "GridWorld-v0",
            _config("dual_tabular"),
            env_kwargs=_GRID,
            num_seeds=4,
            description="exact tabular dual RL (Gumbel value loss) on the gridworld",
        ),
        ("distributional_dp", "cliff-cvar"): Preset(
            "distributional_dp",
            "CliffGrid-v0",
            _config(
                "distributional_dp",
                objective="cvar",
                alpha=0.1,
                v_min=-30.0,
                v_max=0.0,
                stock_min=-10.0,
                stock_max=30.0,
            ),
            num_seeds=1,
            description="exact CVaR_0.1-optimal stock-augmented DP on the cliff gridworld",
        ),
        ("dist_dqn", "cliff-cvar"): Preset(
            "dist_dqn",
            "CliffGrid-v0",
            _config(
                "dist_dqn",
                objective="cvar",
                alpha=0.1,
                gamma=0.95,
                stock0_low=0.0,
                stock0_high=20.0,
                num_envs=16,
                hidden_sizes=(64, 64),
                buffer_size=50_000,
                batch_size=64,
                num_chunks=4,
                iters_per_chunk=1_000,
                learning_starts=2_000,
                lr=1e-3,
            ),
            num_seeds=2,
            metric="eval/objective",
            description="deep CVaR_0.1 distributional DQN on the cliff gridworld (the README example)",
        ),
        ("cmdp_tabular", "random-cmdp"): Preset(
            "cmdp_tabular",
            "RandomCMDP-v0",
            _config("cmdp_tabular"),
            env_kwargs={"num_states": 6, "num_actions": 3},
            num_seeds=4,
            env_key_arg="key",
            description="exact ReLOAD primal-dual on a random CMDP per seed",
        ),
        ("mvi_tabular", "garnet"): Preset(
            "mvi_tabular",
            "Garnet-v0",
            _config(
                "mvi_tabular",
                num_chunks=1,
                iters_per_chunk=100,
                oracle_iters=100,
                normalizer_iters=30,
            ),
            env_kwargs={
                "num_states": 30,
                "num_actions": 4,
                "branching": 5,
                "gamma": 0.9,
            },
            num_seeds=20,
            metric="dp/suboptimality",
            env_key_arg="key",
            description="exact M-VI(0.9, 0.03), K=100 sweeps, one random Garnet(30, 4, 5) per "
            "seed (the mvi-tabular table's base config)",
        ),
        ("mvi_tabular", "bench-garnet"): Preset(
            "mvi_tabular",
            "Garnet-v0",
            _config("mvi_tabular", alpha=0.9, tau=0.03, q=1.0, l0=-1.0, noise_std=0.0),
            env_kwargs={
                "num_states": 500,
                "num_actions": 8,
                "branching": 5,
                "gamma": 0.99,
            },
            num_seeds=1,
            metric="dp/suboptimality",
            description="exact M-VI(0.9, 0.03, l0=-1) on a Garnet(500, 8, 5) (jaxrl bench)",
        ),
    }
    for agent, label in (("mvi", "M-DQN"), ("mviq", "MVI(q=2)-DQN")):
        out[(agent, "minatar-breakout")] = Preset(
            agent,
            minatar,
            _factory(agent, "minatar_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"{label} on Breakout-MinAtar, 5M frames ({agent}.minatar_config)",
        )
    for agent in ("constrained", "ppo_lagrangian"):
        base = "M-DQN" if agent == "constrained" else "PPO"
        for method, suffix in (("lagrangian", ""), ("reload", "-reload")):
            out[(agent, f"cartpole{suffix}")] = Preset(
                agent,
                "CartPole-Constrained-v0",
                _factory(agent, "cartpole_config", method),
                num_seeds=4,
                metric="eval/return",
                description=f"{base}-{method} on CartPole-Constrained-v0 ({agent}.cartpole_config)",
            )
    out[("cat", "cartpole")] = Preset(
        "cat",
        "CartPole-Constrained-v0",
        _factory("cat", "cartpole_config"),
        num_seeds=4,
        metric="eval/return",
        description="CaT (constraints as terminations, p_max 0.1) on PPO, "
        "CartPole-Constrained-v0 (cat.cartpole_config)",
    )
    return out


PRESETS.update(_factory_presets())


def presets_for(agent: str) -> list[str]:
    """Return the preset names defined for ``agent``."""
    return sorted(name for a, name in PRESETS if a == agent)


def get_preset(agent: str, name: str) -> Preset:
    """Return the preset ``name`` of ``agent``.

    Raises:
      ConfigError: if there is no such preset (the message lists the valid ones).
    """
    try:
        return PRESETS[(agent, name)]
    except KeyError:
        names = presets_for(agent)
        valid = ", ".join(names) if names else "(none; use --env and --set)"
        raise ConfigError(
            f"unknown preset {name!r} for agent {agent!r}; valid: {valid}"
        ) from None


def describe_presets(agent: str) -> str:
    """One line per preset of ``agent``: ``name  env  description`` (``--preset list``)."""
    names = presets_for(agent)
    if not names:
        return f"agent {agent!r} has no presets"
    width = max(len(n) for n in names)
    return "\n".join(
        f"{n:<{width}}  {PRESETS[(agent, n)].env}  {PRESETS[(agent, n)].description}"
        for n in names
    )


_TABLE_NAMES = (
    "TableRow",
    "Table",
    "TABLES",
    "CUSTOM_TABLES",
    "table_names",
    "get_table",
)


def __getattr__(name: str) -> Any:
    """The table names moved to :mod:`jaxrl.scripts.tables`; they still resolve here."""
    if name in _TABLE_NAMES:
        from jaxrl.scripts import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
