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
