"""Tests for jaxrl.config: overrides, JSON round-trip, stacking, grids, validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxrl import config as cfg
from jaxrl.errors import ConfigError


@struct.dataclass
class Inner:
    tau: float = 0.03
    width: int = cfg.static(default=8)


@struct.dataclass
class Outer:
    num_envs: int = cfg.static(default=4)
    hidden: tuple = cfg.static(default=(64, 64))
    double: bool = cfg.static(default=False)
    lr: float = 1e-3
    gamma: float = 0.99
    base: Inner = Inner()

    def validate(self) -> None:
        cfg.check_range("gamma", self.gamma, 0.0, 1.0)
        cfg.check_positive("lr", self.lr)


class TestOverrides:
    def test_types_are_parsed_from_field_values(self):
        c = cfg.apply_overrides(
            Outer(),
            ["lr=0.01", "num_envs=8", "double=true", "hidden=32,16", "base.tau=0.1"],
        )
        assert c.lr == 0.01 and isinstance(c.lr, float)
        assert c.num_envs == 8 and isinstance(c.num_envs, int)
        assert c.double is True
        assert c.hidden == (32, 16)
        assert c.base.tau == pytest.approx(0.1)

    def test_original_is_unchanged(self):
        c = Outer()
        cfg.apply_overrides(c, ["lr=0.5"])
        assert c.lr == 1e-3

    @pytest.mark.parametrize(
        "item, match",
        [
            ("nope=1", "unknown config field 'nope'.*valid fields: num_envs"),
            ("lr", "not of the form name=value"),
            ("num_envs=2.5", "cannot parse num_envs='2.5' as int"),
            ("double=maybe", "cannot parse double"),
            ("base.nope=1", "unknown config field 'base.nope'"),
            ("base=1", "nested config"),
            ("lr.x=1", "no sub-field"),
        ],
    )
    def test_bad_overrides_name_the_problem(self, item, match):
        with pytest.raises(ConfigError, match=match):
            cfg.apply_overrides(Outer(), [item])

    def test_mapping_overrides(self):
        assert cfg.apply_overrides(Outer(), {"base.tau": 0.5}).base.tau == 0.5


class TestJson:
    def test_round_trip(self):
        c = cfg.apply_overrides(Outer(), ["lr=0.02", "hidden=8,4", "base.width=3"])
        back = cfg.from_json(Outer, cfg.to_json(c))
        assert back == c

    def test_arrays_become_numbers(self):
        c = Outer(lr=jnp.float32(0.5))
        assert cfg.to_dict(c)["lr"] == 0.5

    def test_unknown_field_and_malformed(self):
        with pytest.raises(ConfigError, match="unknown config field 'zzz'"):
            cfg.from_dict(Outer, {"zzz": 1})
        with pytest.raises(ConfigError, match="malformed"):
            cfg.from_json(Outer, "{not json")


class TestStacking:
    def test_stack_and_vmap_equals_loop(self):
        cs = [Outer(lr=0.1), Outer(lr=0.2), Outer(lr=0.3)]
        stacked = cfg.stack_configs(cs)
        assert stacked.lr.shape == (3,) and stacked.base.tau.shape == (3,)
        f = lambda c: c.lr * c.gamma + c.base.tau
        np.testing.assert_allclose(jax.vmap(f)(stacked), [f(c) for c in cs], rtol=1e-6)

    def test_static_difference_is_rejected(self):
        with pytest.raises(ConfigError, match="num_envs: 4 vs 8"):
            cfg.stack_configs([Outer(), Outer(num_envs=8)])
        with pytest.raises(ConfigError, match="base.width"):
            cfg.stack_configs([Outer(), Outer(base=Inner(width=2))])
        with pytest.raises(ConfigError, match="at least one"):
            cfg.stack_configs([])

    def test_grid_is_row_major_product(self):
        stacked, points = cfg.grid(
            Outer(), lr=[0.1, 0.2], **{"base.tau": [1.0, 2.0, 3.0]}
        )
        assert len(points) == 6
        assert points[1] == {"lr": 0.1, "base.tau": 2.0}
        np.testing.assert_allclose(stacked.lr, [0.1] * 3 + [0.2] * 3)
        np.testing.assert_allclose(stacked.base.tau, [1, 2, 3] * 2)

    def test_grid_rejects_static_and_unknown(self):
        with pytest.raises(ConfigError, match="static"):
            cfg.grid(Outer(), num_envs=[1, 2])
        with pytest.raises(ConfigError, match="unknown config field 'foo'"):
            cfg.grid(Outer(), foo=[1])

    def test_changing_traced_values_does_not_retrace(self):
        traces = []

        @jax.jit
        def f(c):
            traces.append(1)
            return c.lr * 2

        f(Outer(lr=0.1))
        f(Outer(lr=0.7))
        assert len(traces) == 1
        f(Outer(num_envs=9))
        assert len(traces) == 2


class TestValidation:
    def test_valid_passes_and_returns_config(self):
        c = Outer()
        assert cfg.validate(c) is c

    @pytest.mark.parametrize(
        "kw, match",
        [
            ({"gamma": 1.5}, r"gamma must lie in \[0.0, 1.0\], got 1.5"),
            ({"lr": 0.0}, "lr must lie in"),
        ],
    )
    def test_invalid_values(self, kw, match):
        with pytest.raises(ConfigError, match=match):
            cfg.validate(Outer(**kw))

    def test_stacked_configs_are_checked_elementwise(self):
        stacked = cfg.stack_configs([Outer(gamma=0.5), Outer(gamma=2.0)])
        with pytest.raises(ConfigError, match="got 2"):
            cfg.validate(stacked)

    def test_nan_is_rejected(self):
        with pytest.raises(ConfigError):
            cfg.check_range("x", float("nan"), 0, 1)

    def test_tracers_are_skipped(self):
        jax.jit(lambda x: cfg.check_range("x", x, 0, 1) or x)(5.0)


@pytest.mark.parametrize(
    "value, low, ok",
    [
        (3, 1, True),
        (np.int64(2), 2, True),
        (0, 0, True),
        (0, 1, False),
        (True, 0, False),
        (2.0, 1, False),
        ("2", 1, False),
    ],
)
def test_check_integer(value, low, ok):
    if ok:
        cfg.check_integer("n", value, low)
    else:
        with pytest.raises(ConfigError, match=rf"n must be an integer >= {low}, got"):
            cfg.check_integer("n", value, low)


class TestCheckOrder:
    @pytest.mark.parametrize(
        "low, high, strict, bad",
        [
            (-1.0, 1.0, True, False),
            (1.0, 1.0, True, True),
            (1.0, 1.0, False, False),
            (2.0, 1.0, False, True),
            (1e-7, 0.0, True, True),
        ],
    )
    def test_scalars(self, low, high, strict, bad):
        relation = "<" if strict else "<="
        if bad:
            with pytest.raises(
                ConfigError,
                match=rf"lo must be {relation} hi, got lo={low:g}, hi={high:g}",
            ):
                cfg.check_order("lo", low, "hi", high, strict=strict)
        else:
            cfg.check_order("lo", low, "hi", high, strict=strict)

    def test_stacked_values_name_the_first_bad_pair(self):
        low, high = np.array([0.0, 3.0, 5.0]), np.array([1.0, 2.0, 4.0])
        with pytest.raises(ConfigError, match="got lo=3, hi=2"):
            cfg.check_order("lo", low, "hi", high)
        cfg.check_order("lo", low[0], "hi", high)  # broadcast: 0 < every high
        grid_high = np.array([[1.0, 1.0], [-2.0, 0.0]])  # a 2 x 2 sweep
        with pytest.raises(ConfigError, match="got lo=0, hi=-2"):
            cfg.check_order("lo", np.zeros((2, 2)), "hi", grid_high)

    @pytest.mark.parametrize(
        "low, high, name", [(np.nan, 1.0, "lo"), (0.0, np.inf, "hi")]
    )
    def test_non_finite_bounds_are_rejected(self, low, high, name):
        with pytest.raises(ConfigError, match=rf"{name} must be finite, got"):
            cfg.check_order("lo", low, "hi", high)

    def test_tracers_are_skipped(self):
        out = jax.jit(lambda a, b: cfg.check_order("lo", a, "hi", b) or a - b)(2.0, 1.0)
        assert float(out) == 1.0


def test_non_finite_floats_round_trip_through_strict_json():
    import json
    import math

    from jaxrl.agents import mvi_tabular

    config = mvi_tabular.Config(l0=-math.inf)
    text = cfg.to_json(config)
    json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert cfg.from_json(mvi_tabular.Config, text).l0 == -math.inf


class TestNonFinite:
    """inf and NaN are rejected unless the field documents what infinity means."""

    @pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
    def test_check_range_rejects_non_finite_by_default(self, value):
        with pytest.raises(ConfigError, match=r"^x must be finite, got -?(inf|nan)$"):
            cfg.check_range("x", value)
        with pytest.raises(ConfigError, match=r"^x must be finite, got"):
            cfg.check_positive("x", value)

    def test_opt_in_accepts_infinity_inside_the_range_only(self):
        cfg.check_positive("x", np.inf, allow_inf=True)
        cfg.check_range("x", -np.inf, high=0.0, allow_inf=True)
        with pytest.raises(ConfigError, match=r"x must lie in \(0.0, inf\], got -inf"):
            cfg.check_positive("x", -np.inf, allow_inf=True)
        with pytest.raises(ConfigError, match="x must be finite, got nan"):
            cfg.check_positive("x", np.nan, allow_inf=True)
        with pytest.raises(ConfigError, match=r"must lie in \(-inf, 0.0\]"):
            cfg.check_range(
                "x", -np.inf, -np.inf, 0.0, low_inclusive=False, allow_inf=True
            )

    def test_infinity_needs_the_explicit_opt_in(self):
        """No field name is special: only the caller's allow_inf accepts inf."""
        with pytest.raises(ConfigError, match="l0 must be finite, got -inf"):
            cfg.check_range("l0", -np.inf, high=0.0)
        with pytest.raises(ConfigError, match="lambda_max must be finite"):
            cfg.check_positive("lambda_max", np.inf)
        with pytest.raises(ConfigError, match="l0 must be finite, got nan"):
            cfg.check_range("l0", np.nan, high=0.0, allow_inf=True)

    def test_stacked_sweep_names_the_non_finite_point(self):
        with pytest.raises(ConfigError, match="lr must be finite, got inf"):
            cfg.check_positive("lr", np.array([1e-3, np.inf, 1e-2]))

    @staticmethod
    def _agent_config(name):
        from jaxrl import agents

        return agents.get(name).Config()

    @pytest.mark.parametrize(
        "agent, field",
        [
            ("dqn", "lr"),
            ("dqn", "adam_eps"),
            ("dqn", "max_grad_norm"),
            ("mvi", "lr"),
            ("mvi", "tau"),
            ("mvi", "max_grad_norm"),
            ("mviq", "tau"),
            ("mviq", "adam_eps"),
            ("dist_dqn", "lr"),
            ("ppo", "lr"),
            ("ppo", "adam_eps"),
            ("ppo", "max_grad_norm"),
            ("sac", "lr"),
            ("sac", "adam_eps"),
            ("sac", "tau"),
            ("mvi_tabular", "tau"),
            ("dual_rl", "lr"),
            ("dual_rl", "adam_eps"),
        ],
    )
    @pytest.mark.parametrize("value", [np.inf, np.nan])
    def test_agent_configs_reject_non_finite(self, agent, field, value):
        config = self._agent_config(agent)
        cfg.validate(config)  # the defaults are valid
        bad = cfg.apply_overrides(config, {field: float(value)})
        with pytest.raises(ConfigError, match=rf"^{field} must (be finite|lie in)"):
            cfg.validate(bad)
        swept = cfg.stack_configs([config, bad])  # a sweep with one bad point
        with pytest.raises(ConfigError, match=rf"^{field} must"):
            cfg.validate(swept)

    @pytest.mark.parametrize("agent", ["mvi", "mviq", "mvi_tabular"])
    def test_l0_minus_inf_still_validates(self, agent):
        config = cfg.apply_overrides(self._agent_config(agent), {"l0": -np.inf})
        cfg.validate(config)
        with pytest.raises(ConfigError, match="l0 must be finite, got nan"):
            cfg.validate(config.replace(l0=np.nan))

    @pytest.mark.parametrize(
        "agent, field",
        [
            ("cmdp_tabular", "lambda_max"),
            ("constrained", "lambda_max"),
            ("ppo_lagrangian", "lambda_max"),
            ("ppo", "vf_clip_eps"),
            ("dual_rl", "max_grad_norm"),
            ("dual_rl", "max_clip"),
        ],
    )
    def test_documented_infinities_validate(self, agent, field):
        config = cfg.apply_overrides(self._agent_config(agent), {field: np.inf})
        cfg.validate(config)


def test_env_cost_limit_inf_means_no_constraint():
    from jaxrl import envs

    _, params = envs.make("CartPole-Constrained-v0", cost_limit=np.inf)
    assert params.cost_limit == np.inf
    with pytest.raises(ConfigError, match="cost_limit must be finite, got nan"):
        envs.make("CartPole-Constrained-v0", cost_limit=np.nan)
