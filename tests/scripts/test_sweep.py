"""Tests of ``jaxrl sweep``'s progress report outside a terminal."""

from __future__ import annotations

from jaxrl.scripts import cli


def test_one_progress_line_per_chunk_when_stderr_is_not_a_tty(capsys, tmp_path):
    """The sweep is one jitted call: its lines come from the in-jit callback,
    once per chunk for the whole grid and all seeds."""
    argv = ["sweep", "--agent", "vi_tabular", "--preset", "gridworld-noisy"]
    argv += ["--num-seeds", "2", "--set", "num_chunks=3", "--set", "iters_per_chunk=2"]
    argv += ["--grid", "noise_std=0.0,0.1", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().err.splitlines()
    head = "sweep vi_tabular/gridworld-noisy: "
    assert [line.split(" iterations")[0] for line in lines] == [
        f"{head}2/6",
        f"{head}4/6",
        f"{head}6/6",
    ], lines
    assert ", done in " in lines[-1]


def test_chunked_sweep_resumes_and_equals_the_one_call_sweep(capsys, tmp_path):
    """Stopped after one chunk and resumed from its checkpoint, the sweep gives
    bitwise the metrics of the whole run as one jitted call (make_chunked_train)."""
    import jax
    import numpy as np

    from jaxrl import logging as jlog
    from jaxrl import sweep as jsweep
    from jaxrl.scripts import common
    from jaxrl.scripts import sweep as ssweep

    argv = ["sweep", "--agent", "vi_tabular", "--preset", "gridworld-noisy"]
    argv += ["--num-seeds", "2", "--set", "num_chunks=3", "--set", "iters_per_chunk=2"]
    argv += ["--grid", "noise_std=0.0,0.1", "--out", str(tmp_path), "--quiet"]
    assert cli.main([*argv, "--max-chunks", "1"]) == 0
    assert "stopped after chunk 1/3" in capsys.readouterr().err
    run_dir = tmp_path / "sweep" / "vi_tabular" / "gridworld-noisy"
    assert not (run_dir / "sweep.csv").exists()
    assert cli.main([*argv, "--resume"]) == 0
    assert "after chunk 1/3" in capsys.readouterr().err
    assert sorted(p.name for p in (run_dir / "ckpt").iterdir()) == ["2", "3"]

    overrides = ["num_chunks=3", "iters_per_chunk=2"]
    spec = common.resolve_run("vi_tabular", None, "gridworld-noisy", overrides, [], 2)
    env, env_params = common.make_env(spec)
    train_fn = ssweep.make_chunked_train(spec, env, env_params)
    _, want, points = jsweep.run_sweep(
        train_fn, jax.random.key(0), spec.config, 2, noise_std=[0.0, 0.1]
    )
    want = jsweep.gather(want)
    for g, point in enumerate(points):
        rows = jlog.read_jsonl(run_dir / ssweep.point_label(point) / "metrics.jsonl")
        got, seeds, _ = jlog.rows_to_metrics(rows)
        assert seeds == [0, 1] and sorted(got) == sorted(want)
        for name, values in got.items():
            np.testing.assert_array_equal(values, want[name][g], err_msg=name)
