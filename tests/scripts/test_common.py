"""Tests of jaxrl.scripts.common's run-size check (refuse runs that cannot fit in
memory, before allocating them) and of the units of the progress lines."""

from __future__ import annotations

import os

import jax
import pytest

from jaxrl import loop
from jaxrl.errors import ConfigError
from jaxrl.scripts import common
from tests.scripts.cli_helpers import assert_one_line_error, run_cli

TINY = ["num_chunks=2", "iters_per_chunk=3"]


@pytest.fixture(scope="module")
def vi_spec():
    return common.resolve_run("vi_tabular", None, "gridworld-noisy", TINY, (), 3)


@pytest.mark.parametrize(
    ("num", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (72_000, "72 kB"),
        (21_060_000_000, "21.1 GB"),
        (7.2e12, "7.2 TB"),
        (3e18, "3000 PB"),
    ],
)
def test_format_bytes(num, text):
    assert common.format_bytes(num) == text


class TestEstimate:
    def test_one_seeds_state_and_one_chunk_of_metrics(self, vi_spec):
        """The estimate is the exact size of one seed's real state and one
        chunk's real metrics, times the runs."""
        module, config = vi_spec.module, vi_spec.config
        env, params = common.make_env(vi_spec)
        state = module.init(jax.random.key(0), env, params, config)
        after, metrics = module.make_run(config, env, params)(state)
        metrics = {**metrics, **loop.health_metrics(after, 3)}  # the drivers add it
        est = common.estimate_memory(vi_spec)
        assert est.exact and est.runs == 3
        assert est.state == loop.tree_nbytes(state) > 0
        assert est.metrics == sum(m.nbytes for m in metrics.values())
        assert est.metrics == len(metrics) * 3 * 4  # scalars [ipc] of 4 bytes
        assert est.per_run == common.STATE_COPIES * est.state + est.metrics
        assert est.total == 3 * est.per_run

    def test_sweep_holds_all_chunks_for_every_grid_point(self, vi_spec):
        chunk = common.estimate_memory(vi_spec)
        run = common.estimate_memory(vi_spec, num_points=5, whole_run=True)
        assert run.runs == 15 and run.state == chunk.state
        assert run.metrics == 2 * chunk.metrics

    def test_the_cheap_bound_is_above_the_exact_metrics(self, vi_spec):
        bound = common.estimate_memory(vi_spec, exact_metrics=False)
        exact = common.estimate_memory(vi_spec)
        assert not bound.exact and bound.state == exact.state
        assert bound.metrics > exact.metrics

    def test_an_environment_per_seed_counts_in_the_seeds_state(self):
        spec = common.resolve_run("vi_tabular", None, "garnet", TINY, (), 2)
        env, _ = common.make_env(spec, jax.random.key(0))
        params = jax.eval_shape(
            lambda k: common.make_env(spec, k)[1], jax.random.key(1)
        )
        state = jax.eval_shape(
            lambda k, p: spec.module.init(k, env, p, spec.config),
            jax.random.key(2),
            params,
        )
        assert loop.tree_nbytes(params) > loop.tree_nbytes(state) > 0  # P[s, a, s']
        est = common.estimate_memory(spec)
        assert est.state == loop.tree_nbytes(state) + loop.tree_nbytes(params)


class TestCheck:
    def test_passes_when_it_fits_and_refuses_with_one_line(self, vi_spec):
        exact = common.estimate_memory(vi_spec)
        assert common.check_memory(vi_spec, available=10**15) is not None
        # Between the exact need and the cheap bound: measured, then accepted.
        est = common.check_memory(vi_spec, available=exact.total)
        assert est == exact
        with pytest.raises(ConfigError) as err:
            common.check_memory(vi_spec, available=exact.total - 1)
        message = str(err.value)
        assert "\n" not in message
        assert message.startswith(
            f"--num-seeds 3 needs about {common.format_bytes(exact.total)} of memory "
            f"({common.format_bytes(exact.per_run)} per seed"
        )
        assert f"but {common.format_bytes(exact.total - 1)} are available" in message
        assert message.endswith("use fewer seeds")
        whole = common.estimate_memory(vi_spec, num_points=4, whole_run=True)
        with pytest.raises(ConfigError, match="x 4 grid points .* fewer seeds or grid"):
            common.check_memory(
                vi_spec, num_points=4, whole_run=True, available=whole.per_run
            )
        # One seed alone does not fit: the message names the sizes, not the seeds.
        with pytest.raises(ConfigError) as err:
            common.check_memory(vi_spec, available=exact.per_run - 1)
        message = str(err.value)
        assert "\n" not in message and message.startswith(
            f"one seed needs about {common.format_bytes(exact.per_run)} of memory "
            f"(2 x {common.format_bytes(exact.state)} of training state"
        )
        assert "--num-seeds" not in message and "reduce " in message

    def test_unknown_available_memory_skips_the_check(self, vi_spec, monkeypatch):
        monkeypatch.setattr(common, "available_memory", lambda devices=None: None)
        assert common.check_memory(vi_spec) is None

    def test_host_memory_is_known_here(self):
        available = common.available_memory()
        if os.path.exists("/proc/meminfo"):
            assert isinstance(available, int) and available > 0


class TestCommandLine:
    """``--num-seeds`` too large for the memory: exit 2 with one line, before
    anything is allocated or written."""

    def test_train_and_sweep_refuse_before_allocating(
        self, capsys, tmp_path, monkeypatch
    ):
        # more than one seed needs (about 1 kB here), less than four seeds
        monkeypatch.setattr(common, "available_memory", lambda devices=None: 2000)

        def no_keys(*args, **kwargs):
            raise AssertionError("seed keys allocated before the memory check")

        monkeypatch.setattr(common, "seed_keys", no_keys)
        base = ["--agent", "vi_tabular", "--preset", "gridworld-noisy", "--quiet"]
        base += ["--set", "num_chunks=2", "--out", str(tmp_path)]
        status, _, err = run_cli(["train", *base, "--num-seeds", "4"], capsys)
        assert_one_line_error(
            status, err, "--num-seeds 4 needs about", "memory", "2 kB are available"
        )
        status, _, err = run_cli(
            ["sweep", *base, "--num-seeds", "4", "--grid", "noise_std=0,0.1"], capsys
        )
        assert_one_line_error(status, err, "--num-seeds 4 x 2 grid points", "memory")
        assert os.listdir(tmp_path) == []  # nothing written

    def test_a_real_huge_num_seeds_returns_2(self, capsys, tmp_path):
        if common.available_memory() is None:
            pytest.skip("available memory unknown here: the check is skipped")
        argv = ["train", "--agent", "vi_tabular", "--preset", "gridworld-noisy"]
        argv += ["--num-seeds", "100000000000", "--out", str(tmp_path)]
        status, _, err = run_cli(argv, capsys)
        assert_one_line_error(
            status, err, "--num-seeds 100000000000 needs about", "memory"
        )
        assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("agent", "unit", "scale"),
    [
        ("dqn", "env steps per seed", 10),  # num_envs
        ("ppo", "env steps per seed", 512),  # num_envs * num_steps
        ("constrained", "env steps per seed", 10),  # the nested base config's
        ("vi_tabular", "iterations per seed", 1),  # one sweep an iteration
    ],
)
def test_progress_unit(agent, unit, scale):
    module = common.get_agent(agent)
    config = module.Config()
    assert common.progress_unit(config) == (unit, scale)
    if hasattr(config, "total_env_steps"):
        total = config.num_chunks * config.iters_per_chunk
        assert scale * total == config.total_env_steps
