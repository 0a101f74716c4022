"""Reproduction tables and their budgets: the one :class:`Table` and the one :class:`Budget` type.

``jaxrl reproduce --table NAME --budget tiny|small|full`` looks ``NAME`` up in
:data:`TABLES`. A :class:`Table` is either

* row-based: :class:`TableRow` s, each an agent preset (``scripts/presets.py``)
  per budget, run by :func:`jaxrl.scripts.reproduce.reproduce` (one headline
  metric per row); or
* custom: ``runner = "module:function"``, experiment code of its own (e.g.
  suboptimality against noise level) called as
  ``fn(budget, *, out, seed, resume, quiet, log)``.

Budgets (:data:`BUDGETS`): ``tiny`` (seconds; tests only, numbers are
meaningless), ``small`` (the README quick start; minutes on 2 CPU cores),
``full`` (paper scale). A custom table sizes each budget with a subclass of
:class:`Budget` (its typed fields, validated on construction) and looks the
requested one up with :func:`get_budget`, so every table reports an unknown
budget with the same one-line error.

Examples:
  >>> import dataclasses
  >>> @dataclasses.dataclass(frozen=True)
  ... class Sizes(Budget):
  ...     num_states: int
  ...     noise: tuple[float, ...]
  >>> sizes = budget_set(Sizes(8, (0.0, 0.1), name="tiny"),
  ...                    Sizes(30, (0.0, 0.1), name="small"),
  ...                    Sizes(50, (0.0, 0.1, 1.0), name="full"))
  >>> get_budget(sizes, "small", "demo").num_states
  30
  >>> get_budget(sizes, "huge", "demo")
  Traceback (most recent call last):
  ...
  jaxrl.errors.ConfigError: unknown budget 'huge' for table 'demo'; valid: tiny, small, full
  >>> Sizes(0, (0.0,), name="tiny")
  Traceback (most recent call last):
  ...
  jaxrl.errors.ConfigError: budget 'tiny': Sizes.num_states must be an integer >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from jaxrl.errors import ConfigError
from jaxrl.scripts import presets as jpresets
from jaxrl.scripts.presets import BUDGETS

__all__ = [
    "BUDGETS",
    "Budget",
    "budget_set",
    "get_budget",
    "TableRow",
    "Table",
    "TABLES",
    "CUSTOM_TABLES",
    "table_names",
    "get_table",
]


# ----------------------------------------------------------------------------- budgets


@dataclasses.dataclass(frozen=True, kw_only=True)
class Budget:
    """Base of every table's budget: a name plus the table's typed size fields.

    A table declares its fields in a frozen dataclass subclass (positional
    fields stay positional; ``name`` is keyword-only). Every field is checked
    against its annotation on construction: ``int`` must be an integer ``>= 1``
    (a field's ``metadata={"min": 0}`` lowers the bound), ``float`` finite,
    ``str`` non-empty, ``tuple[X, ...]`` a non-empty tuple of ``X``, and
    ``X | None`` either ``None`` or an ``X``.

    Attributes:
      name: the budget's name (``tiny``, ``small``, ``full``; tests may add more).
    """

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(
                f"a budget name must be a non-empty string, got {self.name!r}"
            )
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            if field.name == "name":
                continue
            where = f"{type(self).__name__}.{field.name}"
            problem = _check(
                getattr(self, field.name), hints[field.name], field.metadata
            )
            if problem:
                raise ConfigError(
                    f"budget {self.name!r}: {where} must be {problem}, "
                    f"got {getattr(self, field.name)!r}"
                )

    def sizes(self) -> dict[str, Any]:
        """Every field but ``name``, in declaration order (what results record)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "name"}


def _check(value: Any, hint: Any, metadata: Mapping[str, Any]) -> str | None:
    """Return what ``value`` must be if it does not fit ``hint``, else ``None``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        problems = [_check(value, a, metadata) for a in inner]
        if all(problems):
            return " or ".join(p for p in problems if p) + (
                " or None" if type(None) in args else ""
            )
        return None
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, tuple) or not value:
            return "a non-empty tuple"
        for v in value:
            problem = _check(v, item, metadata)
            if problem:
                return f"a tuple of {problem}"
        return None
    if hint is bool:
        return None if isinstance(value, bool) else "a bool"
    if hint is int:
        low = metadata.get("min", 1)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
        return None if ok else f"an integer >= {low}"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok and math.isfinite(value) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) and value else "a non-empty string"
    if isinstance(hint, type):
        return None if isinstance(value, hint) else f"a {hint.__name__}"
    return None


B = TypeVar("B", bound=Budget)


def budget_set(*budgets: B) -> dict[str, B]:
    """``{name: budget}`` of one table; the names must be :data:`BUDGETS`, in order.

    Raises:
      ConfigError: other names, or budgets of different types.
    """
    names = tuple(b.name for b in budgets)
    if names != BUDGETS:
        raise ConfigError(
            f"a table's budgets must be {', '.join(BUDGETS)}; got {names}"
        )
    kinds = {type(b) for b in budgets}
    if len(kinds) != 1:
        raise ConfigError(
            f"a table's budgets must share one type, got {sorted(k.__name__ for k in kinds)}"
        )
    return {b.name: b for b in budgets}


def get_budget(budgets: Mapping[str, B], name: str, table: str) -> B:
    """Return ``budgets[name]``.

    Raises:
      ConfigError: unknown ``name`` (one line listing the valid ones).
    """
    try:
        return budgets[name]
    except KeyError:
        raise ConfigError(
            f"unknown budget {name!r} for table {table!r}; valid: {', '.join(budgets)}"
        ) from None


# ----------------------------------------------------------------------------- tables


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One row of a row-based table: an agent/preset per budget, run over seeds.

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
    """A named results table: preset rows, or a custom runner.

    Attributes:
      name: the ``--table`` name.
      caption: what the table shows (row tables print it above the rows).
      rows: the rows of a row-based table (empty for a custom one).
      runner: ``"module:function"`` of a custom table (``None`` for a row one),
        called as ``fn(budget, *, out, seed, resume, quiet, log)`` and returning
        ``{"dir", "rows", "wall_time"}`` like :func:`jaxrl.scripts.reproduce.reproduce`.
    """

    name: str
    caption: str
    rows: tuple[TableRow, ...] = ()
    runner: str | None = None

    def __post_init__(self) -> None:
        if bool(self.rows) == (self.runner is not None):
            raise ConfigError(
                f"table {self.name!r} needs rows or a runner (exactly one)"
            )
        if self.runner is not None and ":" not in self.runner:
            raise ConfigError(f"table {self.name!r}: runner must be 'module:function'")
        for row in self.rows:
            for what in (row.presets, row.num_seeds):
                if set(what) != set(BUDGETS):
                    raise ConfigError(
                        f"table {self.name!r} row {row.label!r} must cover the budgets "
                        f"{', '.join(BUDGETS)}"
                    )

    def run_fn(self) -> Callable[..., dict[str, Any]]:
        """Import and return a custom table's function."""
        if self.runner is None:
            raise ConfigError(f"table {self.name!r} is row-based (no runner)")
        module_name, _, fn_name = self.runner.partition(":")
        return getattr(importlib.import_module(module_name), fn_name)


_BASELINE = Table(
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
)


def _minatar_table() -> Table:
    labels = {"dqn": "DQN", "mvi": "M-DQN", "mviq": "MVI(q=2)"}
    rows = []
    for game in jpresets.MINATAR_GAMES:
        short = jpresets.minatar_short(game)
        for agent in jpresets.MINATAR_AGENTS:
            rows.append(
                TableRow(
                    label=f"{labels[agent]}, {game}",
                    agent=agent,
                    presets={b: f"minatar-{short}-{b}" for b in BUDGETS},
                    num_seeds=dict(jpresets.MINATAR_SEEDS),
                    runner="train",
                    metric="eval/return",
                )
            )
    frames = ", ".join(f"{b}: {n:,}" for b, n in jpresets.MINATAR_FRAMES.items())
    return Table(
        name="mvi-minatar",
        caption=(
            "DQN vs M-DQN (alpha=0.9, tau=0.03, l0=-1) vs MVI(q=2) (alpha=0.9, "
            "tau=1, l0=-1: the temperature at which its bonus floor -alpha*tau/(q-1) "
            "equals M-DQN's clip alpha*l0, docs/decisions.md D17) on the five "
            "MinAtar games (gymnax), identical network (conv 16x3x3, 128 units), "
            "replay, batch 32, Adam 2.5e-4, epsilon 1 -> 0.1 and update ratio "
            "(small: 1 gradient step per 8 frames, full: 1 per 4); only the "
            "regression target differs. "
            f"Frames per seed by budget: {frames}. Full budget: sticky actions "
            "as in the original MinAtar (with probability 0.1 the previous action is "
            "executed, in training and evaluation; tiny/small: none). Final "
            "greedy-evaluation return "
            "(episodes capped at the gymnax limit); mean, 95% percentile-bootstrap "
            "CI and IQM over seeds. The small budget is a CPU smoke-scale run: far "
            "from convergence (the MinAtar paper trains 5M frames, the full budget)."
        ),
        rows=tuple(rows),
    )


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        _BASELINE,
        _minatar_table(),
        Table(
            "mvi-tabular",
            "Exact M-VI / MVI(q) under noisy evaluation: final suboptimality against "
            "the noise level on Garnets and a gridworld.",
            runner="jaxrl.scripts.table_mvi_tabular:run",
        ),
        Table(
            "md-vi",
            "MD-VI(lambda, tau) vs M-VI(alpha, tau_M) under noisy evaluation on "
            "Garnets: error against alpha = beta at fixed tau_M (error averaging).",
            runner="jaxrl.scripts.table_md_vi:run",
        ),
        Table(
            "distributional-dp",
            "Stock-augmented distributional DP (exact and deep) on the cliff and "
            "homeostasis tasks: mean, CVaR, threshold and homeostatic objectives.",
            runner="jaxrl.scripts.table_distributional_dp:run",
        ),
        Table(
            "constrained",
            "Constrained RL: GDA vs ReLOAD last iterates against the LP on random "
            "CMDPs; Lagrangian/ReLOAD M-DQN and PPO on CartPole-Constrained-v0.",
            runner="jaxrl.scripts.table_constrained:run",
        ),
        Table(
            "dual-rl",
            "Offline dual RL: normalized scores (BC, IQL, XQL, f-DVL), XQL instability "
            "against beta, ReCOIL against BC on the imitation splits.",
            runner="jaxrl.scripts.table_dual_rl:run",
        ),
    )
}
"""Every table ``jaxrl reproduce --table`` accepts, by name."""

CUSTOM_TABLES: dict[str, str] = {t.name: t.runner for t in TABLES.values() if t.runner}
"""``{name: "module:function"}`` of the custom tables (a view of :data:`TABLES`)."""


def table_names() -> list[str]:
    """Return every table name ``jaxrl reproduce --table`` accepts, sorted."""
    return sorted(TABLES)


def get_table(name: str) -> Table:
    """Return table ``name``.

    Raises:
      ConfigError: if unknown (the message lists the valid tables).
    """
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown table {name!r}; valid: {', '.join(table_names())}"
        ) from None
