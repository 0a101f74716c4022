"""Tables and budgets: one Table type, one validated Budget type, one-line lookup errors."""

from __future__ import annotations

import dataclasses
import doctest
import importlib

import pytest

from jaxrl.errors import ConfigError
from jaxrl.scripts import presets, tables


@dataclasses.dataclass(frozen=True)
class _Sizes(tables.Budget):
    count: int
    noise: tuple[float, ...]
    label: str = "x"
    cap: int | None = None
    offset: int = dataclasses.field(default=0, metadata={"min": 0})


def _sizes(name="tiny", **fields):
    return _Sizes(**{"count": 2, "noise": (0.0, 0.5), **fields}, name=name)


@pytest.mark.parametrize("name", sorted(n for n, t in tables.TABLES.items() if t.rows))
def test_table_rows_name_existing_presets_for_every_budget(name):
    table = tables.get_table(name)
    for row in table.rows:
        assert set(row.presets) == set(tables.BUDGETS)
        for budget in tables.BUDGETS:
            presets.get_preset(row.agent, row.presets[budget])
            assert row.num_seeds[budget] >= 1


@pytest.mark.parametrize(
    "name", sorted(n for n, t in tables.TABLES.items() if t.runner is not None)
)
def test_custom_tables_have_a_runner_and_one_budget_per_name(name):
    table = tables.get_table(name)
    assert callable(table.run_fn())
    module = importlib.import_module(table.runner.partition(":")[0])
    assert module.TABLE == name
    assert tuple(module.BUDGETS) == tables.BUDGETS
    for budget_name, budget in module.BUDGETS.items():
        assert isinstance(budget, tables.Budget) and type(budget) is module.Budget
        assert budget.name == budget_name
        assert "name" not in budget.sizes()
    with pytest.raises(ConfigError, match=f"unknown budget 'huge' for table '{name}'"):
        tables.get_budget(module.BUDGETS, "huge", name)


def test_table_names_and_unknown_table():
    assert tables.table_names() == sorted(
        ["baseline", "mvi-minatar", "mvi-tabular", "distributional-dp", "constrained",
         "dual-rl", "md-vi"]
    )  # fmt: skip
    with pytest.raises(
        ConfigError, match="valid: baseline, constrained, distributional-dp"
    ):
        tables.get_table("nope")
    assert tables.CUSTOM_TABLES["dual-rl"] == "jaxrl.scripts.table_dual_rl:run"


def test_table_needs_rows_or_a_runner_and_full_rows():
    with pytest.raises(ConfigError, match="exactly one"):
        tables.Table("t", "c")
    row = tables.get_table("baseline").rows[0]
    with pytest.raises(ConfigError, match="exactly one"):
        tables.Table("t", "c", rows=(row,), runner="m:f")
    with pytest.raises(ConfigError, match="module:function"):
        tables.Table("t", "c", runner="nofunction")
    partial = dataclasses.replace(row, presets={"tiny": "garnet"})
    with pytest.raises(ConfigError, match="must cover the budgets tiny, small, full"):
        tables.Table("t", "c", rows=(partial,))
    with pytest.raises(ConfigError, match="row-based"):
        tables.get_table("baseline").run_fn()


def test_budget_fields_are_validated_against_their_types():
    ok = _sizes(cap=None, offset=0)
    assert ok.sizes() == {
        "count": 2, "noise": (0.0, 0.5), "label": "x", "cap": None, "offset": 0
    }  # fmt: skip
    assert _sizes(cap=5).cap == 5
    bad = {
        "count": (0, "an integer >= 1"),
        "noise": ((), "a non-empty tuple"),
        "label": ("", "a non-empty string"),
        "cap": (1.5, "an integer >= 1 or None"),
        "offset": (-1, "an integer >= 0"),
    }
    for field, (value, message) in bad.items():
        with pytest.raises(ConfigError, match=f"_Sizes.{field} must be {message}"):
            _sizes(**{field: value})
    with pytest.raises(ConfigError, match="an integer"):
        _sizes(count=True)
    with pytest.raises(ConfigError, match="a tuple of a finite number"):
        _sizes(noise=(0.0, float("nan")))
    with pytest.raises(ConfigError, match="non-empty string"):
        _sizes(name="")
    with pytest.raises(TypeError, match="name"):
        _Sizes(2, (0.0,))  # the name is required (keyword-only)


def test_budget_set_and_lookup():
    budgets = tables.budget_set(
        _sizes("tiny"), _sizes("small", count=3), _sizes("full")
    )
    assert tables.get_budget(budgets, "small", "demo").count == 3
    with pytest.raises(ConfigError) as err:
        tables.get_budget(budgets, "huge", "demo")
    assert str(err.value) == (
        "unknown budget 'huge' for table 'demo'; valid: tiny, small, full"
    )
    with pytest.raises(ConfigError, match="must be tiny, small, full"):
        tables.budget_set(_sizes("tiny"), _sizes("full"))


@pytest.mark.parametrize("module", [presets, tables], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    """The registry's and the tables' docstring examples run (tests/test_doctests.py
    covers the library; D10 keeps jaxrl.scripts out of it)."""
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
