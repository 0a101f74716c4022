"""End-to-end tests of the ``jaxrl`` command line (scripts/cli.py and the subcommands).

Kept small: the train/resume tests use exact tabular VI (cheap to compile); the
``reproduce --budget tiny`` test runs the whole baseline table at seconds scale.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxrl import checkpoint
from jaxrl import logging as jlog
from jaxrl.scripts import cli
from tests.fresh_process import fresh_env, result, run_python
from tests.scripts.cli_helpers import VI_RUN, assert_one_line_error, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TestBadArguments:
    """Argument handling beyond the one-line errors of tests/test_bad_input.py."""

    @pytest.mark.parametrize("command", ["train", "sweep"])
    def test_preset_list_prints_the_agents_presets(self, command, capsys):
        from jaxrl.scripts import presets

        status, out, err = run_cli(
            [command, "--agent", "sac", "--preset", "list"], capsys
        )
        assert status == 0 and not err
        names = [line.split()[0] for line in out.strip().splitlines()]
        assert names == presets.presets_for("sac")
        assert "Pendulum-v1" in out

    def test_help_exits_zero(self, capsys):
        status, out, _ = run_cli(["train", "--help"], capsys)
        assert status == 0 and "--resume" in out

    def test_console_script_subprocess(self, tmp_path):
        env = {
            **os.environ,
            "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        exe = os.path.join(os.path.dirname(sys.executable), "jaxrl")
        cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "jaxrl"]
        proc = subprocess.run(
            [
                *cmd,
                "train",
                "--agent",
                "dqn",
                "--preset",
                "cartpole",
                "--set",
                "gamma=1.5",
                "--out",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(tmp_path),
            timeout=120,
        )
        assert_one_line_error(proc.returncode, proc.stderr, "gamma")
        assert proc.stdout == ""


def _load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _flat(state):
    leaves = jax.tree.leaves(state)
    return [
        np.asarray(jax.random.key_data(x))
        if jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key)
        else np.asarray(x)
        for x in leaves
    ]


@pytest.fixture(scope="module")
def vi_runs(tmp_path_factory):
    """An uninterrupted 4-chunk run, and a 2-chunk run resumed for 2 more."""
    root = tmp_path_factory.mktemp("runs")
    full = str(root / "full")
    part = str(root / "part")
    assert cli.main([*VI_RUN, "--run-dir", full]) == 0
    assert cli.main([*VI_RUN, "--run-dir", part, "--max-chunks", "2"]) == 0
    assert checkpoint.latest_step(os.path.join(part, "ckpt")) == 2
    assert not os.path.exists(os.path.join(part, "summary.json"))
    assert cli.main([*VI_RUN, "--run-dir", part, "--resume"]) == 0
    return full, part


class TestTrain:
    def test_writes_expected_files(self, vi_runs):
        full, _ = vi_runs
        for name in (
            "config.json",
            "metrics.jsonl",
            "summary.json",
            "learning_curve.png",
        ):
            assert os.path.getsize(os.path.join(full, name)) > 0, name
        config = _load_json(os.path.join(full, "config.json"))
        assert config["agent"] == "vi_tabular" and config["config"]["noise_std"] == 0.05
        assert config["num_seeds"] == 2 and config["overrides"][-1] == "noise_std=0.05"
        rows = jlog.read_jsonl(os.path.join(full, "metrics.jsonl"))
        assert len(rows) == 2 * 4 * 3
        assert {(r["seed"], r["iter"]) for r in rows} == {
            (s, t) for s in (0, 1) for t in range(12)
        }
        # The two seeds differ (noise draws from different keys).
        by_seed = [[r["dp/residual"] for r in rows if r["seed"] == s] for s in (0, 1)]
        assert by_seed[0] != by_seed[1]
        summary = _load_json(os.path.join(full, "summary.json"))
        assert summary["metric"] == "dp/suboptimality"
        head = summary["headline"]
        assert head["n"] == 2 and head["ci_low"] <= head["mean"] <= head["ci_high"]
        # A healthy run: every chunk's state check passed, nothing left out.
        assert summary["n_diverged"] == 0 and summary["diverged"] == []
        assert head["n_diverged"] == 0
        assert [r["health/finite"] for r in rows if r["iter"] % 3 == 2] == [1.0] * 8
        last = [r["dp/suboptimality"] for r in rows if r["iter"] == 11]
        assert head["mean"] == pytest.approx(np.mean(last))
        with open(os.path.join(full, "learning_curve.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    def test_resume_is_bitwise_identical(self, vi_runs):
        full, part = vi_runs
        assert checkpoint.latest_step(os.path.join(full, "ckpt")) == 4
        assert checkpoint.latest_step(os.path.join(part, "ckpt")) == 4
        target, _ = checkpoint.restore(
            os.path.join(full, "ckpt"), _abstract_vi_state(), 4
        )
        resumed, meta = checkpoint.restore(
            os.path.join(part, "ckpt"), _abstract_vi_state(), 4
        )
        assert meta["chunks_done"] == 4
        a, b = _flat(target), _flat(resumed)
        assert len(a) == len(b) and all(
            x.dtype == y.dtype and np.array_equal(x, y)
            for x, y in zip(a, b, strict=True)
        )
        assert int(np.asarray(resumed.step)[0]) == 12
        with (
            open(os.path.join(full, "metrics.jsonl")) as f1,
            open(os.path.join(part, "metrics.jsonl")) as f2,
        ):
            assert f1.read() == f2.read()

    def test_resume_with_other_config_is_rejected(self, vi_runs, capsys):
        _, part = vi_runs
        argv = [*VI_RUN, "--run-dir", part, "--resume", "--set", "noise_std=0.5"]
        status, _, err = run_cli(argv, capsys)
        assert_one_line_error(status, err, "noise_std")


def test_failed_checkpoint_save_is_one_error_line(tmp_path, capsys, monkeypatch):
    """A background (async) checkpoint write that fails ends the run with one line."""
    from orbax.checkpoint._src.checkpointers import async_checkpointer

    real = async_checkpointer._background_wait_for_commit_futures

    def fail(directory, commit_futures, on_commit_callback, **kwargs):
        def no_space():
            raise OSError(28, "No space left on device")

        return real(directory, commit_futures, no_space, **kwargs)

    monkeypatch.setattr(async_checkpointer, "_background_wait_for_commit_futures", fail)
    run = tmp_path / "run"
    argv = [*VI_RUN, "--set", "num_chunks=2", "--run-dir", str(run)]
    status, _, err = run_cli(argv, capsys)
    assert_one_line_error(status, err, "ckpt/1 was not saved", "No space left")
    assert checkpoint.all_steps(run / "ckpt") == []


class TestCompileCache:
    """JAX's persistent compilation cache: on by default on the command line."""

    @pytest.fixture
    def cache_env(self, tmp_path, monkeypatch):
        """A per-test XDG cache home; the suite's opt-out (conftest) lifted."""
        from jaxrl.scripts import common

        monkeypatch.delenv(common.COMPILE_CACHE_OFF_ENV, raising=False)
        monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        # Cache every compile: tabular VI compiles faster than the threshold.
        monkeypatch.setattr(common, "COMPILE_CACHE_MIN_SECS", 0.0)
        # The suite's own cache (conftest) is set aside, as if on a user's machine.
        from jax.experimental.compilation_cache import compilation_cache as jcc

        suite_dir = jax.config.jax_compilation_cache_dir
        jax.config.update("jax_compilation_cache_dir", None)
        jcc.reset_cache()
        yield tmp_path / "xdg" / "jaxrl" / "jax-compilation-cache"
        jax.config.update("jax_compilation_cache_dir", suite_dir)
        jcc.reset_cache()

    def _run(self, tmp_path, capsys, *extra):
        argv = [*VI_RUN, "--set", "num_chunks=1", "--no-checkpoint"]
        status, _, err = run_cli(
            [*argv, "--run-dir", str(tmp_path / "run"), *extra], capsys
        )
        assert status == 0, err
        return err

    def test_run_leaves_cache_entries(self, cache_env, tmp_path, capsys):
        self._run(tmp_path, capsys)
        entries = [p.name for p in cache_env.iterdir()]
        assert any(name.endswith("-cache") for name in entries), entries
        # The global JAX config is restored once the command returns.
        assert jax.config.jax_compilation_cache_dir is None

    @pytest.mark.parametrize("how", ["flag", "env"])
    def test_opt_out_leaves_none(self, how, cache_env, tmp_path, capsys, monkeypatch):
        from jaxrl.scripts import common

        if how == "env":
            monkeypatch.setenv(common.COMPILE_CACHE_OFF_ENV, "1")
        self._run(tmp_path, capsys, *(["--no-compile-cache"] if how == "flag" else []))
        assert not cache_env.exists()

    def test_unwritable_or_user_dir(self, cache_env, tmp_path, monkeypatch):
        import io

        from jaxrl.scripts import common

        # A regular file where the cache home should be: run without a cache.
        (tmp_path / "xdg").write_text("not a directory")
        log = io.StringIO()
        with common.compile_cache(log=log) as path:
            assert path is None and jax.config.jax_compilation_cache_dir is None
        assert log.getvalue().startswith("warning: compilation cache off")
        assert len(log.getvalue().splitlines()) == 1
        # A user's own JAX_COMPILATION_CACHE_DIR wins: ours is left alone.
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg2"))
        monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "theirs"))
        with common.compile_cache() as path:
            assert path is None
        assert not (tmp_path / "xdg2").exists()


def _abstract_vi_state():
    from jaxrl.agents import vi_tabular
    from jaxrl.scripts import common

    spec = common.resolve_run(
        "vi_tabular", None, "gridworld-noisy", ["noise_std=0.05"], (), 2
    )
    env, params = common.make_env(spec)
    keys = jax.eval_shape(lambda: jax.random.split(jax.random.key(0), 2))
    return jax.eval_shape(
        jax.vmap(lambda k: vi_tabular.init(k, env, params, spec.config)), keys
    )


def test_sweep_writes_table(tmp_path, capsys):
    argv = [
        "sweep",
        "--agent",
        "vi_tabular",
        "--preset",
        "gridworld-noisy",
        "--num-seeds",
        "3",
        "--set",
        "iters_per_chunk=4",
        "--grid",
        "noise_std=0.0,0.05",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    status, out, _ = run_cli(argv, capsys)
    assert status == 0
    sweep_dir = tmp_path / "sweep" / "vi_tabular" / "gridworld-noisy"
    for name in ("sweep.md", "sweep.csv", "learning_curves.png"):
        assert (sweep_dir / name).exists(), name
    with open(sweep_dir / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(r["noise_std"]) for r in rows) == [0.0, 0.05]
    assert [r["n_diverged"] for r in rows] == ["0", "0"]
    for point in ("noise_std=0", "noise_std=0.05"):
        rows = jlog.read_jsonl(sweep_dir / point / "metrics.jsonl")
        assert len(rows) == 3 * 4
    # Exact VI (noise 0) is deterministic: all seeds agree; noisy seeds differ.
    exact = jlog.read_jsonl(sweep_dir / "noise_std=0" / "metrics.jsonl")
    assert len({r["dp/residual"] for r in exact if r["iter"] == 3}) == 1
    noisy = jlog.read_jsonl(sweep_dir / "noise_std=0.05" / "metrics.jsonl")
    assert len({r["dp/residual"] for r in noisy if r["iter"] == 3}) == 3
    assert "2 points x 3 seeds" in out


@pytest.fixture(scope="module")
def baseline_tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    assert (
        cli.main(
            [
                "reproduce",
                "--table",
                "baseline",
                "--budget",
                "tiny",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out


@pytest.mark.heavy
def test_reproduce_tiny_writes_table(baseline_tiny):
    table_dir = baseline_tiny / "baseline"
    text = (table_dir / "table.md").read_text()
    assert "DQN, CartPole-v1" in text and "| row |" in text
    with open(table_dir / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["agent"] for r in rows] == ["vi_tabular", "vi_tabular", "dqn"]
    assert [r["n"] for r in rows] == ["20", "20", "2"]
    assert [r["n_diverged"] for r in rows] == ["0", "0", "0"]
    for r in rows:
        assert float(r["ci_low"]) <= float(r["mean"]) <= float(r["ci_high"])
    assert (table_dir / "curves_dp_suboptimality.png").exists()
    assert (table_dir / "curves_eval_return.png").exists()
    assert (table_dir / "dqn" / "cartpole-tiny" / "learning_curve.png").exists()
    # Garnet row: one random MDP per seed, so the 20 suboptimalities are not all equal.
    garnet = jlog.read_jsonl(table_dir / "vi_tabular" / "garnet" / "metrics.jsonl")
    first = [r["dp/suboptimality"] for r in garnet if r["iter"] == 0]
    assert len(first) == 20 and len(set(first)) > 1


@pytest.mark.heavy
def test_reproduce_again_needs_resume_or_overwrite(baseline_tiny, tmp_path, capsys):
    """A second reproduce into the same --out is refused (nothing runs or changes);
    --resume reuses the finished rows and gives the same table."""
    out = tmp_path / "out"
    shutil.copytree(baseline_tiny, out)
    table_dir = out / "baseline"
    before = (table_dir / "table.csv").read_text()
    argv = ["reproduce", "--table", "baseline", "--budget", "tiny", "--quiet"]
    status, _, err = run_cli([*argv, "--out", str(out)], capsys)
    assert_one_line_error(status, err, str(table_dir), "--resume", "--overwrite")
    assert (table_dir / "table.csv").read_text() == before
    status, _, err = run_cli([*argv, "--out", str(out), "--resume"], capsys)
    assert status == 0, err
    assert err.count("finished earlier; reusing") == 2  # the two sweep rows
    assert "resuming from" in err and "after chunk 4/4" in err  # the train row

    def numbers(text):
        return [
            {k: r[k] for k in ("row", "mean", "ci_low", "ci_high", "n")}
            for r in csv.DictReader(text.splitlines())
        ]

    assert numbers((table_dir / "table.csv").read_text()) == numbers(before)


@pytest.mark.heavy
def test_aggregate(baseline_tiny, tmp_path, capsys):
    status, out, _ = run_cli(
        [
            "aggregate",
            str(baseline_tiny / "baseline"),
            "--out",
            str(tmp_path),
            "--no-plot",
        ],
        capsys,
    )
    assert status == 0
    assert (tmp_path / "aggregate.md").exists() and (
        tmp_path / "aggregate.csv"
    ).exists()
    assert "dqn/cartpole-tiny" in out and "vi_tabular/garnet" in out


def test_figures_without_matplotlib_are_one_error_line():
    """matplotlib is the optional `plots` extra: without it a command that draws
    figures stops with one `error:` line saying how to install it."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from jaxrl.scripts import common\n"
        "def body():\n"
        "    from jaxrl.scripts import plotting\n"
        "raise SystemExit(common.run_main(body))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "jaxrl[plots]" in lines[0], proc.stderr
    assert lines[0].startswith("jaxrl: error: figures need matplotlib")


def test_out_through_a_regular_file_is_one_error_line(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    status, _, err = run_cli([*VI_RUN, "--run-dir", str(blocker / "run")], capsys)
    assert_one_line_error(status, err, "Not a directory", "results")
    assert blocker.read_text() == "not a folder"


def test_sigterm_removes_the_half_written_file(tmp_path):
    """SIGTERM during a save: exit 143, the target untouched, no temp file left."""
    target = tmp_path / "table.md"
    target.write_text("earlier results")
    code = (
        "import os, signal, sys\n"
        "from jaxrl import logging as jlog\n"
        "from jaxrl.scripts import common\n"
        "def body():\n"
        f"    with jlog.atomic_file({str(target)!r}) as tmp:\n"
        "        with open(tmp, 'w') as f:\n"
        "            f.write('half')\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "raise SystemExit(common.run_main(body))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 143, proc.stderr
    assert proc.stderr.strip() == "jaxrl: terminated (resume with --resume)"
    assert target.read_text() == "earlier results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]


class TestCpuDevices:
    """``--cpu-devices`` / ``JAXRL_CPU_DEVICES``: one JAX CPU device per core by default."""

    def _decide(self, requested=None, configured=-1, cores=4, **environ):
        from jaxrl.scripts import common

        return common.cpu_device_count(requested, environ, cores, configured)

    def test_precedence(self):
        assert self._decide() == (4, None)  # one device per usable core
        assert self._decide(cores=0) == (1, None)
        assert self._decide(JAXRL_CPU_DEVICES="3") == (3, None)
        assert self._decide(JAXRL_CPU_DEVICES=" ") == (4, None)  # blank: unset
        assert self._decide(2, JAXRL_CPU_DEVICES="3") == (2, None)  # flag wins
        # The user's own JAX settings win over ours, flag or not.
        flags = "--xla_backend_optimization_level=1 --xla_force_host_platform_device_count=8"
        assert self._decide(XLA_FLAGS=flags) == (None, None)
        assert self._decide(JAX_NUM_CPU_DEVICES="8") == (None, None)
        assert self._decide(configured=8, JAXRL_CPU_DEVICES="3") == (None, None)
        count, note = self._decide(2, XLA_FLAGS=flags)
        assert count is None
        assert "--cpu-devices 2 ignored" in note and "xla_force_host" in note
        # Other XLA flags are not a device count.
        assert self._decide(XLA_FLAGS="--xla_cpu_use_thunk_runtime=true") == (4, None)

    @pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
    def test_bad_env_value_names_the_variable(self, value):
        from jaxrl.errors import ConfigError

        with pytest.raises(ConfigError, match="JAXRL_CPU_DEVICES must be a positive"):
            self._decide(JAXRL_CPU_DEVICES=value)

    @pytest.mark.parametrize("command", ["train", "sweep", "reproduce", "bench"])
    def test_bad_flag_is_one_line(self, command, capsys):
        status, _, err = run_cli([command, "--cpu-devices", "0"], capsys)
        assert_one_line_error(status, err, "--cpu-devices", "positive integer")

    def test_bad_env_is_one_line(self, tmp_path, capsys, monkeypatch):
        monkeypatch.setenv("JAXRL_CPU_DEVICES", "many")
        status, _, err = run_cli(
            [*VI_RUN, "--no-checkpoint", "--run-dir", str(tmp_path / "run")], capsys
        )
        assert_one_line_error(status, err, "JAXRL_CPU_DEVICES", "'many'")
        assert not (tmp_path / "run").exists()

    def test_after_jax_started_nothing_changes(self, monkeypatch):
        from jaxrl.scripts import common

        monkeypatch.delenv("JAXRL_CPU_DEVICES", raising=False)
        jax.devices()  # the backends have started in this process
        before = jax.local_device_count()
        assert common.use_cpu_devices(before + 3) is None
        assert jax.local_device_count() == before


_DEVICES_SCRIPT = """
import json, sys
from jaxrl.scripts import cli, common
argv = sys.argv[1:]
status = cli.main(argv)
import jax
print("RESULT " + json.dumps({"status": status, "cores": common.usable_cores(),
      "devices": jax.local_device_count(), "platform": jax.devices()[0].platform}))
"""


def _devices_run(tmp_path, name, extra_env, *flags, seeds=6):
    flags_env = " ".join(
        f
        for f in os.environ.get("XLA_FLAGS", "").split()
        if "xla_force_host_platform_device_count" not in f
    )
    env = fresh_env(
        {
            "JAXRL_CPU_DEVICES": None,
            "JAX_NUM_CPU_DEVICES": None,
            "XLA_FLAGS": flags_env,
            **extra_env,
        }
    )
    argv = [*VI_RUN, "--num-seeds", str(seeds), "--run-dir", str(tmp_path / name)]
    out = result(run_python(["-c", _DEVICES_SCRIPT, *argv, *flags], env))
    assert out["status"] == 0 and out["platform"] == "cpu"
    return out, jlog.read_jsonl(tmp_path / name / "metrics.jsonl")


@pytest.mark.heavy
def test_train_gets_one_cpu_device_per_core_in_a_fresh_process(tmp_path):
    """A fresh ``jaxrl train`` gets one CPU device per core (or as many as
    asked for, or as many as XLA_FLAGS sets); the rows match a one-device run.
    (Tabular VI then keeps its seeds on one of them: see the LAPACK tests.)"""
    auto, rows_auto = _devices_run(tmp_path, "auto", {})
    assert auto["devices"] == auto["cores"]
    three, rows_three = _devices_run(tmp_path, "env3", {"JAXRL_CPU_DEVICES": "3"})
    assert three["devices"] == 3
    one, rows_one = _devices_run(
        tmp_path, "flag1", {"JAXRL_CPU_DEVICES": "3"}, "--cpu-devices", "1"
    )
    assert one["devices"] == 1
    # Theirs wins: a device count in XLA_FLAGS is kept over --cpu-devices.
    forced = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    two, rows_two = _devices_run(tmp_path, "xla2", forced, "--cpu-devices", "3")
    assert two["devices"] == 2
    for rows in (rows_auto, rows_three, rows_two):
        assert len(rows) == len(rows_one)
        for a, b in zip(rows, rows_one, strict=True):
            assert sorted(a) == sorted(b)
            for name, want in b.items():
                if isinstance(want, float):
                    np.testing.assert_allclose(a[name], want, rtol=1e-6, atol=1e-7)
                else:
                    assert a[name] == want, name


@pytest.mark.heavy
@pytest.mark.parametrize("command", ["train", "sweep"])
def test_lapack_program_on_two_cpu_devices_does_not_hang(command, tmp_path):
    """20 seeds of exact VI on a 50-state Garnet with 2 CPU devices: batched
    LU solves on both devices hung jax 0.10.2's CPU thread pool; the command
    line keeps such programs on one device (jaxrl.sweep.lapack_safe_devices)."""
    where = ["--run-dir", str(tmp_path / "run")] if command == "train" else []
    where = where or ["--out", str(tmp_path), "--grid", "noise_std=0.0,0.05"]
    argv = ["-m", "jaxrl", command, "--agent", "vi_tabular", "--preset", "garnet"]
    proc = run_python(
        [*argv, "--num-seeds", "20", *where],
        fresh_env({"JAXRL_CPU_DEVICES": "2"}),
        timeout=180,
    )
    assert "calls CPU LAPACK kernels (lapack_sgetrf_ffi" in proc.stderr
