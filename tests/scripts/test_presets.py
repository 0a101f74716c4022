"""Presets and tables: every preset builds a valid config; table rows are consistent."""

from __future__ import annotations

import dataclasses

import pytest

from jaxrl import agents, envs
from jaxrl import config as cfg
from jaxrl.errors import ConfigError
from jaxrl.scripts import presets


@pytest.mark.parametrize("key", sorted(presets.PRESETS), ids=lambda k: "/".join(k))
def test_every_preset_builds_a_valid_config(key):
    preset = presets.PRESETS[key]
    assert preset.agent in agents.AGENTS
    assert preset.env in envs.registered_envs
    config = cfg.validate(preset.make_config())
    assert isinstance(config, agents.get(preset.agent).Config)


@pytest.mark.parametrize("name", sorted(presets.TABLES))
def test_table_rows_name_existing_presets_for_every_budget(name):
    table = presets.get_table(name)
    assert table.rows
    for row in table.rows:
        assert set(row.presets) == set(presets.BUDGETS)
        for budget in presets.BUDGETS:
            presets.get_preset(row.agent, row.presets[budget])
            assert row.num_seeds[budget] >= 1


def test_unknown_table_lists_custom_and_row_tables():
    with pytest.raises(ConfigError, match="mvi-minatar"):
        presets.get_table("nope")


@pytest.mark.parametrize("budget", presets.BUDGETS)
@pytest.mark.parametrize("game", presets.MINATAR_GAMES)
def test_minatar_agents_share_identical_settings(game, budget):
    """DQN, M-DQN and MVI(q) differ only in their own target fields."""
    short = game.split("-")[0].lower()
    configs = {
        agent: presets.get_preset(agent, f"minatar-{short}-{budget}").make_config()
        for agent in presets.MINATAR_AGENTS
    }
    shared = {f.name for f in dataclasses.fields(configs["dqn"])}
    base = {name: getattr(configs["dqn"], name) for name in shared}
    for agent, config in configs.items():
        assert {name: getattr(config, name) for name in shared} == base, agent
    assert configs["mvi"].alpha == 0.9 and configs["mvi"].tau == 0.03
    assert configs["mviq"].q == 2.0
    if game == "Freeway-MinAtar" and budget != "tiny":
        assert base["eval_max_steps"] == 2500
