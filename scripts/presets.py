"""Named config presets per agent and the tables that are built from them.

A :class:`Preset` names an agent, an environment (with ``jaxrl.envs.make`` keyword
arguments), a config factory, a default number of seeds and the headline metric.
:data:`PRESETS` maps ``(agent, preset_name)`` to presets; :data:`TABLES` maps a
table name to the rows ``jaxrl reproduce --table NAME`` runs, with one preset
per budget:

* ``tiny``: seconds; for tests only (numbers are meaningless);
* ``small``: the README quick-start; a few minutes on 2 CPU cores;
* ``full``: the paper-scale budget (DQN: 500k environment steps, 8 seeds).

Configs come from the agent modules (e.g. :func:`jaxrl.agents.dqn.cartpole_config`),
built lazily so importing this module does not import every agent.

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
    "TableRow",
    "Table",
    "BUDGETS",
    "PRESETS",
    "TABLES",
    "CUSTOM_TABLES",
    "MINATAR_GAMES",
    "MINATAR_AGENTS",
    "MINATAR_SEEDS",
    "table_names",
    "get_preset",
    "get_table",
    "presets_for",
]

BUDGETS = ("tiny", "small", "full")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named, reproducible run configuration.

    Attributes:
      agent: agent name in ``jaxrl.agents.AGENTS``.
      env: environment id for ``jaxrl.envs.make``.
      config_fn: ``() -> Config`` building the agent config.
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

    def make_config(self) -> Any:
        """Build the agent config (validated by the caller)."""
        return self.config_fn()


def _agent_attr(agent: str, name: str) -> Any:
    module = importlib.import_module(f"jaxrl.agents.{agent}")
    return getattr(module, name)


# ----------------------------------------------------------------------------- DQN


def _dqn(**overrides: Any) -> Callable[[], Any]:
    def build() -> Any:
        return _agent_attr("dqn", "cartpole_config")(**overrides)

    return build


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


def _vi(**overrides: Any) -> Callable[[], Any]:
    def build() -> Any:
        config_cls = _agent_attr("vi_tabular", "Config")
        return config_cls(**overrides)

    return build


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


def _factory(agent: str, name: str, **overrides: Any) -> Callable[[], Any]:
    def build() -> Any:
        return _agent_attr(agent, name)(**overrides)

    return build


def _mvi_presets() -> dict[tuple[str, str], Preset]:
    out = {}
    for agent, label in (("mvi", "M-DQN"), ("mviq", "MVI(q=2)-DQN")):
        out[(agent, "cartpole")] = Preset(
            agent,
            "CartPole-v1",
            _factory(agent, "cartpole_config"),
            num_seeds=4,
            metric="eval/return",
            description=f"{label} on CartPole-v1, 500k env steps (alpha=0.9, tau=0.03)",
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
_MINATAR_FRAMES = {"tiny": 32, "small": 50_000, "full": 5_000_000}
MINATAR_SEEDS = {"tiny": 1, "small": 2, "full": 5}
"""Seeds per budget in the ``mvi-minatar`` table."""


def _minatar_short(game: str) -> str:
    return game.split("-")[0].lower()


def _minatar(agent: str, game: str, budget: str) -> Callable[[], Any]:
    def build() -> Any:
        config_cls = _agent_attr(agent, "Config")
        fields = {**_MINATAR_COMMON, **_MINATAR_BUDGETS[budget]}
        fields.setdefault("eval_max_steps", _MINATAR_MAX_STEPS.get(game, 1000))
        return config_cls(**fields)

    return build


def _minatar_presets() -> dict[tuple[str, str], Preset]:
    names = {"dqn": "DQN", "mvi": "M-DQN", "mviq": "MVI(q=2)-DQN"}
    out = {}
    for agent in MINATAR_AGENTS:
        for game in MINATAR_GAMES:
            for budget in BUDGETS:
                name = f"minatar-{_minatar_short(game)}-{budget}"
                out[(agent, name)] = Preset(
                    agent,
                    game,
                    _minatar(agent, game, budget),
                    num_seeds=MINATAR_SEEDS[budget],
                    metric="eval/return",
                    description=(
                        f"{names[agent]} on {game}, {_MINATAR_FRAMES[budget]:,} "
                        f"frames per seed ({budget} budget)"
                    ),
                )
    return out


PRESETS.update(_minatar_presets())


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


# ----------------------------------------------------------------------------- tables


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One row of a results table: an agent/preset per budget, run over seeds.

    Attributes:
      label: the row's name in the table.
      agent: agent name.
      presets: ``{budget: preset name}``.
      num_seeds: ``{budget: seeds}``.
      runner: ``"train"`` (chunked, checkpointed; learning curve) or
        ``"sweep"`` (one jitted call over seeds via :mod:`jaxrl.sweep`).
      metric: the reported metric (final value per seed).
      overrides: ``{budget: ["k=v", ...]}`` config overrides on top of the preset.
    """

    label: str
    agent: str
    presets: Mapping[str, str]
    num_seeds: Mapping[str, int]
    runner: str = "train"
    metric: str | None = None
    overrides: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Table:
    """A named table: rows plus a caption."""

    name: str
    caption: str
    rows: tuple[TableRow, ...]


TABLES: dict[str, Table] = {
    "baseline": Table(
        name="baseline",
        caption=(
            "Baselines. Value iteration: suboptimality J(pi*) - J(pi_K) (exact, by policy "
            "evaluation) of the greedy policy after K sweeps; Garnet: one random MDP per "
            "seed; GridWorld: Gaussian noise on every backup (approximate VI), one noise "
            "draw per seed. DQN: final greedy-evaluation return on CartPole-v1. Mean, 95% "
            "percentile-bootstrap CI and IQM over seeds."
        ),
        rows=(
            TableRow(
                label="VI (exact), random Garnet(50,4,5), gamma=0.99, K=3",
                agent="vi_tabular",
                presets={"tiny": "garnet", "small": "garnet", "full": "garnet"},
                num_seeds={"tiny": 20, "small": 20, "full": 100},
                runner="sweep",
                metric="dp/suboptimality",
            ),
            TableRow(
                label="VI (noisy, sigma=0.01), GridWorld, gamma=0.95, K=40",
                agent="vi_tabular",
                presets={
                    "tiny": "gridworld-noisy",
                    "small": "gridworld-noisy",
                    "full": "gridworld-noisy",
                },
                num_seeds={"tiny": 20, "small": 20, "full": 100},
                runner="sweep",
                metric="dp/suboptimality",
            ),
            TableRow(
                label="DQN, CartPole-v1",
                agent="dqn",
                presets={
                    "tiny": "cartpole-tiny",
                    "small": "cartpole-small",
                    "full": "cartpole",
                },
                num_seeds={"tiny": 2, "small": 4, "full": 8},
                runner="train",
                metric="eval/return",
            ),
        ),
    ),
}


def _minatar_table() -> Table:
    labels = {"dqn": "DQN", "mvi": "M-DQN", "mviq": "MVI(q=2)"}
    rows = []
    for game in MINATAR_GAMES:
        short = _minatar_short(game)
        for agent in MINATAR_AGENTS:
            rows.append(
                TableRow(
                    label=f"{labels[agent]}, {game}",
                    agent=agent,
                    presets={b: f"minatar-{short}-{b}" for b in BUDGETS},
                    num_seeds=dict(MINATAR_SEEDS),
                    runner="train",
                    metric="eval/return",
                )
            )
    frames = ", ".join(f"{b}: {n:,}" for b, n in _MINATAR_FRAMES.items())
    return Table(
        name="mvi-minatar",
        caption=(
            "DQN vs M-DQN (alpha=0.9, tau=0.03, l0=-1) vs MVI(q=2) on the five "
            "MinAtar games (gymnax), identical network (conv 16x3x3, 128 units), "
            "replay, batch 32, Adam 2.5e-4, epsilon 1 -> 0.1 and update ratio "
            "(small: 1 gradient step per 8 frames, full: 1 per 4); only the "
            "regression target differs. "
            f"Frames per seed by budget: {frames}. Final greedy-evaluation return "
            "(episodes capped at the gymnax limit); mean, 95% percentile-bootstrap "
            "CI and IQM over seeds. The small budget is a CPU smoke-scale run: far "
            "from convergence (the MinAtar paper trains 5M frames, the full budget)."
        ),
        rows=tuple(rows),
    )


TABLES["mvi-minatar"] = _minatar_table()


CUSTOM_TABLES: dict[str, str] = {
    "mvi-tabular": "jaxrl.scripts.table_mvi_tabular:run",
    "distributional-dp": "jaxrl.scripts.table_distributional_dp:run",
    "constrained": "jaxrl.scripts.table_constrained:run",
    "dual-rl": "jaxrl.scripts.table_dual_rl:run",
}
"""Tables built by their own experiment code rather than from :class:`TableRow` s.

Maps a table name to ``"module:function"``; the function is called as
``fn(budget, *, out, seed, resume, quiet, log)`` and returns
``{"dir": table_dir, "rows": [...], "wall_time": seconds}`` like
:func:`jaxrl.scripts.reproduce.reproduce`. Used for experiments whose table is not
one headline metric per row (e.g. suboptimality against noise level).
"""


def table_names() -> list[str]:
    """Return every table name ``jaxrl reproduce --table`` accepts, sorted."""
    return sorted({*TABLES, *CUSTOM_TABLES})


def get_table(name: str) -> Table:
    """Return table ``name`` (row-based tables only; see :data:`CUSTOM_TABLES`).

    Raises:
      ConfigError: if unknown (the message lists the valid tables).
    """
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown table {name!r}; valid: {', '.join(table_names())}"
        ) from None
