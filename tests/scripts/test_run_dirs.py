"""Run dirs are never written over silently (scripts/common.py, train, sweep, reproduce).

A re-run into a dir holding results stops with one line unless ``--resume`` or
``--overwrite``; ``--overwrite`` removes only what runs write; one run at a time
holds a dir (flock); ``--resume`` falls back to the newest intact checkpoint.
One small tabular run is shared by the module (cheap to compile); every test
works on a copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxrl import checkpoint
from jaxrl.errors import ConfigError
from jaxrl.scripts import cli, common, reproduce
from tests.scripts.cli_helpers import VI_RUN, assert_one_line_error, run_cli


def _snapshot(root):
    """``{relative path: (mtime_ns, bytes)}`` of every file except the lock."""
    snap = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name == common.LOCK_NAME:
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                snap[os.path.relpath(path, root)] = (
                    os.stat(path).st_mtime_ns,
                    f.read(),
                )
    return snap


def _flat(state):
    return [
        np.asarray(jax.random.key_data(x))
        if jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key)
        else np.asarray(x)
        for x in jax.tree.leaves(state)
    ]


def _abstract_state():
    from jaxrl.agents import vi_tabular

    spec = common.resolve_run(
        "vi_tabular", None, "gridworld-noisy", ["noise_std=0.05"], (), 2
    )
    env, params = common.make_env(spec)
    keys = jax.eval_shape(lambda: jax.random.split(jax.random.key(0), 2))
    return jax.eval_shape(
        jax.vmap(lambda k: vi_tabular.init(k, env, params, spec.config)), keys
    )


def _garble(step_dir):
    """Flip the tail bytes of every array data file of one checkpoint step."""
    files = [
        os.path.join(d, n)
        for d, _, names in os.walk(os.path.join(step_dir, "state"))
        for n in names
        if os.path.basename(d) == "d"
    ]
    assert files
    for path in files:
        with open(path, "rb") as f:
            raw = bytearray(f.read())
        for i in range(len(raw) // 2, len(raw) - 1):
            raw[i] ^= 0xFF
        with open(path, "wb") as f:
            f.write(bytes(raw))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """An uninterrupted 4-chunk run (checkpoints 3 and 4 kept)."""
    run = str(tmp_path_factory.mktemp("finished") / "run")
    assert cli.main([*VI_RUN, "--run-dir", run]) == 0
    assert checkpoint.all_steps(os.path.join(run, "ckpt")) == [3, 4]
    return run


@pytest.fixture
def copy(finished, tmp_path):
    """A private copy of the finished run."""
    run = str(tmp_path / "run")
    shutil.copytree(finished, run)
    return run


class TestRefuse:
    def test_identical_rerun_is_refused_and_touches_nothing(self, copy, capsys):
        before = _snapshot(copy)
        status, out, err = run_cli([*VI_RUN, "--run-dir", copy], capsys)
        line = assert_one_line_error(status, err, copy, "--resume", "--overwrite")
        assert "summary.json" in line or "..." in line
        assert out == ""
        assert _snapshot(copy) == before

    def test_resume_with_overwrite_is_a_usage_error(self, copy, capsys):
        before = _snapshot(copy)
        status, _, err = run_cli(
            [*VI_RUN, "--run-dir", copy, "--resume", "--overwrite"], capsys
        )
        assert_one_line_error(status, err, "--overwrite", "--resume")
        assert _snapshot(copy) == before

    def test_a_dir_without_results_is_not_refused(self, tmp_path):
        (tmp_path / "notes.txt").write_text("mine")
        (tmp_path / common.LOCK_NAME).write_text("")
        assert common.existing_results(str(tmp_path)) == []
        assert common.existing_results(str(tmp_path / "missing")) == []

    def test_finished_run_without_checkpoints_cannot_resume(self, copy, capsys):
        shutil.rmtree(os.path.join(copy, "ckpt"))
        before = _snapshot(copy)
        status, _, err = run_cli([*VI_RUN, "--run-dir", copy, "--resume"], capsys)
        assert_one_line_error(status, err, "without checkpoints", "--overwrite")
        assert _snapshot(copy) == before


class TestOverwrite:
    def test_shorter_run_leaves_no_stale_files(self, copy, capsys):
        notes = os.path.join(copy, "notes.txt")
        with open(notes, "w") as f:
            f.write("mine")
        old_png = _snapshot(copy)["learning_curve.png"]
        argv = [*VI_RUN, "--run-dir", copy, "--overwrite", "--set", "num_chunks=2"]
        status, _, err = run_cli(argv, capsys)
        assert status == 0, err
        # Only this run's checkpoints: the longer run's 3 and 4 would otherwise
        # survive pruning and be resumed.
        assert checkpoint.all_steps(os.path.join(copy, "ckpt")) == [1, 2]
        with open(os.path.join(copy, "summary.json")) as f:
            assert json.load(f)["iterations"] == 2 * 3
        with open(os.path.join(copy, "config.json")) as f:
            assert json.load(f)["num_chunks"] == 2
        with open(os.path.join(copy, "metrics.jsonl")) as f:
            assert len(f.read().splitlines()) == 2 * 2 * 3
        new_png = _snapshot(copy)["learning_curve.png"]
        assert new_png[0] > old_png[0] and new_png[1] != old_png[1]
        with open(notes) as f:  # not ours: kept
            assert f.read() == "mine"

    def test_clear_results_removes_only_run_files(self, tmp_path):
        for name in ("config.json", "metrics.jsonl", "summary.json", "a.png", "x.txt"):
            (tmp_path / name).write_text("{}")
        (tmp_path / "ckpt" / "1").mkdir(parents=True)
        point = tmp_path / "lr=0.1"  # a sweep's grid point
        point.mkdir()
        (point / "config.json").write_text('{"runner": "sweep", "point": {"lr": 0.1}}')
        other = tmp_path / "other"  # another run's dir nested inside: kept
        other.mkdir()
        (other / "config.json").write_text('{"agent": "dqn"}')
        removed = common.clear_results(str(tmp_path))
        assert removed == [
            "a.png",
            "ckpt/",
            "config.json",
            "lr=0.1/",
            "metrics.jsonl",
            "summary.json",
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "x.txt"]


class TestLock:
    def test_held_by_another_process(self, copy, capsys):
        code = (
            "import fcntl, os, sys\n"
            f"fd = os.open({os.path.join(copy, common.LOCK_NAME)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "os.write(fd, f'pid {os.getpid()} on testhost'.encode())\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
        )
        with subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as holder:  # leaving the block closes its stdin (it exits) and waits
            assert holder.stdout.readline().strip() == "locked"
            before = _snapshot(copy)
            for extra in ([], ["--resume"], ["--overwrite"]):
                status, _, err = run_cli([*VI_RUN, "--run-dir", copy, *extra], capsys)
                assert_one_line_error(
                    status, err, copy, "in use", f"pid {holder.pid} on testhost"
                )
            assert _snapshot(copy) == before  # --overwrite removed nothing
        assert holder.returncode == 0
        # The holder is gone: its lock file does not block the next run.
        with common.RunLock(copy):
            pass

    def test_second_lock_in_one_process(self, tmp_path):
        with common.RunLock(str(tmp_path)):
            with pytest.raises(ConfigError, match=f"pid {os.getpid()} on "):
                with common.RunLock(str(tmp_path)):
                    pass
        with common.RunLock(str(tmp_path)):  # released
            pass
        assert (tmp_path / common.LOCK_NAME).read_text() == ""


class TestCorruptResume:
    def test_falls_back_to_the_older_checkpoint(self, finished, copy, capsys):
        _garble(os.path.join(copy, "ckpt", "4"))
        status, _, err = run_cli([*VI_RUN, "--run-dir", copy, "--resume"], capsys)
        assert status == 0, err
        lines = [line for line in err.splitlines() if "corrupt" in line]
        assert len(lines) == 1, err
        assert lines[0].startswith("checkpoint 4 is corrupt (")
        assert "resuming from 3" in lines[0] and "ckpt/4.corrupt" in lines[0]
        assert checkpoint.all_steps(os.path.join(copy, "ckpt")) == [3, 4]
        assert os.path.isdir(os.path.join(copy, "ckpt", "4.corrupt"))
        # Chunk 4 was run again: the result equals the uninterrupted run.
        target = _abstract_state()
        a, _ = checkpoint.restore(os.path.join(finished, "ckpt"), target, 4)
        b, _ = checkpoint.restore(os.path.join(copy, "ckpt"), target, 4)
        assert all(
            x.dtype == y.dtype and np.array_equal(x, y)
            for x, y in zip(_flat(a), _flat(b), strict=True)
        )
        for name in ("metrics.jsonl", "summary.json"):
            with (
                open(os.path.join(finished, name)) as f1,
                open(os.path.join(copy, name)) as f2,
            ):
                assert f1.read() == f2.read(), name

    def test_all_corrupt_is_one_error_line(self, copy, capsys):
        for step in ("3", "4"):
            _garble(os.path.join(copy, "ckpt", step))
        before = _snapshot(copy)
        status, _, err = run_cli([*VI_RUN, "--run-dir", copy, "--resume"], capsys)
        assert_one_line_error(status, err, "no intact checkpoint", "step 4:", "step 3:")
        assert _snapshot(copy) == before  # nothing renamed or rewritten


def test_sweep_refuses_and_overwrite_removes_stale_points(tmp_path, capsys):
    argv = [
        "sweep",
        "--agent",
        "vi_tabular",
        "--preset",
        "gridworld-noisy",
        "--num-seeds",
        "2",
        "--set",
        "iters_per_chunk=2",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    sweep_dir = tmp_path / "sweep" / "vi_tabular" / "gridworld-noisy"
    status, _, err = run_cli([*argv, "--grid", "noise_std=0.0,0.05"], capsys)
    assert status == 0, err
    before = _snapshot(sweep_dir)
    status, _, err = run_cli([*argv, "--grid", "noise_std=0.0,0.05"], capsys)
    line = assert_one_line_error(status, err, str(sweep_dir), "--overwrite")
    assert "--resume" in line  # a sweep resumes from its checkpoints
    assert _snapshot(sweep_dir) == before
    status, _, err = run_cli([*argv, "--grid", "noise_std=0.0", "--overwrite"], capsys)
    assert status == 0, err
    assert not (sweep_dir / "noise_std=0.05").exists()  # the old grid's point
    assert (sweep_dir / "noise_std=0" / "summary.json").exists()
    assert len((sweep_dir / "sweep.csv").read_text().splitlines()) == 1 + 1


class TestReproduce:
    """Cheap checks that run no table row (see test_cli.py for a full re-run)."""

    def test_earlier_results_refused_before_anything_runs(self, tmp_path, capsys):
        row_dir = tmp_path / "baseline" / "dqn" / "cartpole-tiny"
        row_dir.mkdir(parents=True)
        (row_dir / "summary.json").write_text("{}")
        argv = ["reproduce", "--table", "baseline", "--budget", "tiny"]
        status, _, err = run_cli([*argv, "--out", str(tmp_path), "--quiet"], capsys)
        assert_one_line_error(
            status, err, "dqn/cartpole-tiny/summary.json", "--resume", "--overwrite"
        )
        assert sorted(p.name for p in (tmp_path / "baseline").iterdir()) == [
            common.LOCK_NAME,
            "dqn",
        ]
        status, _, err = run_cli(
            [*argv, "--out", str(tmp_path), "--resume", "--overwrite"], capsys
        )
        assert_one_line_error(status, err, "--overwrite", "--resume")

    def test_custom_table_refused(self, tmp_path, capsys):
        (tmp_path / "mvi-tabular").mkdir()
        (tmp_path / "mvi-tabular" / "table.md").write_text("earlier")
        argv = ["reproduce", "--table", "mvi-tabular", "--budget", "tiny"]
        status, _, err = run_cli([*argv, "--out", str(tmp_path)], capsys)
        assert_one_line_error(status, err, "table.md", "--overwrite")
        assert (tmp_path / "mvi-tabular" / "table.md").read_text() == "earlier"

    def test_overwrite_clears_the_table_then_runs(self, tmp_path, monkeypatch):
        table_dir = tmp_path / "baseline"
        row_dir = table_dir / "dqn" / "cartpole-tiny"
        (row_dir / "ckpt" / "4").mkdir(parents=True)
        for path in (
            table_dir / "table.md",
            table_dir / "curves_eval_return.png",
            row_dir / "summary.json",
            row_dir / "metrics.jsonl",
        ):
            path.write_text("{}")
        (table_dir / "README.txt").write_text("mine")
        (row_dir / "notes.txt").write_text("mine")
        seen = []

        def fake_rows(table, budget, spec_table, specs, out, seed, resume, *rest):
            seen.append(
                sorted(p.name for p in table_dir.iterdir())
                + sorted(p.name for p in row_dir.iterdir())
            )
            return {"dir": str(table_dir), "rows": [], "wall_time": 0.0}

        monkeypatch.setattr(reproduce, "_run_rows", fake_rows)
        reproduce.reproduce("baseline", "tiny", out=str(tmp_path), overwrite=True)
        assert seen == [
            [common.LOCK_NAME, "README.txt", "dqn", common.LOCK_NAME, "notes.txt"]
        ]
