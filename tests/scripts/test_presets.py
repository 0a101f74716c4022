"""The preset registry: every agent has presets; every preset builds a valid config."""

from __future__ import annotations

import dataclasses

import pytest

from jaxrl import agents, envs
from jaxrl import config as cfg
from jaxrl.agents import constrained, dqn, mvi, mviq, ppo, ppo_lagrangian
from jaxrl.envs.wrappers import StickyActions
from jaxrl.errors import ConfigError
from jaxrl.scripts import common, presets, tables


@pytest.mark.parametrize("key", sorted(presets.PRESETS), ids=lambda k: "/".join(k))
def test_every_preset_builds_a_valid_config(key):
    preset = presets.PRESETS[key]
    assert preset.agent in agents.AGENTS
    assert preset.env in envs.registered_envs
    config = cfg.validate(preset.make_config())
    assert isinstance(config, agents.get(preset.agent).Config)
    assert preset.num_seeds >= 1 and preset.description


def test_every_registered_agent_has_a_preset():
    assert {agent for agent, _ in presets.PRESETS} == set(agents.AGENTS)
    for agent in agents.AGENTS:
        assert presets.presets_for(agent), agent


@pytest.mark.parametrize(
    "key",
    [k for k in sorted(presets.PRESETS) if presets.PRESETS[k].env_kwargs],
    ids=lambda k: "/".join(k),
)
def test_preset_env_kwargs_are_accepted(key):
    preset = presets.PRESETS[key]
    env, env_params = envs.make(preset.env, **preset.env_kwargs)
    assert env_params is not None


def test_presets_refer_to_the_agents_factories():
    """A factory preset is the factory's config; overrides reach the factory."""
    assert presets.get_preset("dqn", "cartpole").make_config() == dqn.cartpole_config()
    assert presets.get_preset("mvi", "minatar-breakout").make_config() == (
        mvi.minatar_config()
    )
    reload = presets.get_preset("constrained", "cartpole-reload")
    base = constrained.cartpole_config().base.replace(num_chunks=3)
    assert reload.make_config(base=base, eta_lambda=0.0) == constrained.cartpole_config(
        "reload", base=base, eta_lambda=0.0
    )
    ppo_minatar = presets.get_preset("ppo", "minatar-breakout").make_config()
    assert ppo_minatar == ppo.minatar_config()
    assert ppo_minatar.total_env_steps == 5_017_600  # MinAtar's usual 5M frames
    assert ppo_minatar.conv_features == mvi.minatar_config().conv_features
    ppo_lag = presets.get_preset("ppo_lagrangian", "cartpole").make_config()
    assert ppo_lag == ppo_lagrangian.cartpole_config("lagrangian")
    tab = presets.get_preset("mvi_tabular", "garnet").make_config(iters_per_chunk=7)
    assert (tab.iters_per_chunk, tab.oracle_iters, tab.normalizer_iters) == (7, 100, 30)


def test_dqn_minatar_preset_is_the_mvi_dqn_fields():
    ours = presets.get_preset("dqn", "minatar-breakout").make_config()
    theirs = mvi.minatar_config()
    for field in dataclasses.fields(ours):
        assert getattr(ours, field.name) == getattr(theirs, field.name), field.name


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: acrobot, cartpole, cartpole-small"):
        presets.get_preset("mvi", "nope")


def test_describe_presets_has_one_line_per_preset():
    lines = presets.describe_presets("dqn").splitlines()
    assert [line.split()[0] for line in lines] == presets.presets_for("dqn")
    assert all(presets.get_preset("dqn", line.split()[0]).env in line for line in lines)


def test_table_names_still_resolve_from_presets():
    assert presets.TABLES is tables.TABLES
    assert presets.Table is tables.Table and presets.TableRow is tables.TableRow
    assert presets.get_table("baseline") is tables.get_table("baseline")
    assert presets.CUSTOM_TABLES == tables.CUSTOM_TABLES
    with pytest.raises(AttributeError):
        presets.nope  # noqa: B018


@pytest.mark.parametrize("budget", presets.BUDGETS)
@pytest.mark.parametrize("game", presets.MINATAR_GAMES)
def test_minatar_agents_share_identical_settings(game, budget):
    """DQN, M-DQN and MVI(q) differ only in their own target fields."""
    short = presets.minatar_short(game)
    configs = {
        agent: presets.get_preset(agent, f"minatar-{short}-{budget}").make_config()
        for agent in presets.MINATAR_AGENTS
    }
    shared = {f.name for f in dataclasses.fields(configs["dqn"])}
    base = {name: getattr(configs["dqn"], name) for name in shared}
    for agent, config in configs.items():
        assert {name: getattr(config, name) for name in shared} == base, agent
    assert configs["mvi"].alpha == 0.9 and configs["mvi"].tau == 0.03
    # MVI(q): M-DQN's alpha and l0, tau by the bonus-range convention (D17).
    mviq_config = configs["mviq"]
    assert mviq_config.q == 2.0 and mviq_config.alpha == configs["mvi"].alpha
    assert mviq_config.l0 == configs["mvi"].l0 == -1.0
    assert mviq_config.tau == mviq.bonus_matched_tau(2.0, -1.0) == 1.0
    assert mviq_config.tau == mviq.minatar_config().tau
    assert configs["mviq"].q == 2.0
    if game == "Freeway-MinAtar" and budget != "tiny":
        assert base["eval_max_steps"] == 2500


def test_full_minatar_budget_plays_with_sticky_actions():
    """Only the full budget of the mvi-minatar presets/table turns them on (p = 0.1)."""
    for agent in presets.MINATAR_AGENTS:
        for game in presets.MINATAR_GAMES:
            short = presets.minatar_short(game)
            for budget in presets.BUDGETS:
                preset = presets.get_preset(agent, f"minatar-{short}-{budget}")
                full = budget == "full"
                want = {"sticky_action_prob": 0.1} if full else {}
                assert dict(preset.env_kwargs) == want
                assert ("sticky actions p=0.1" in preset.description) == full
    assert "sticky actions" in tables.get_table("mvi-minatar").caption
    spec = common.resolve_run("mvi", None, "minatar-breakout-full")
    env, params = common.make_env(spec)
    assert isinstance(env, StickyActions) and params.sticky_action_prob == 0.1
    spec = common.resolve_run("mvi", None, "minatar-breakout-small")
    assert not isinstance(common.make_env(spec)[0], StickyActions)
