"""Tests of ``jaxrl train``'s progress report outside a terminal."""

from __future__ import annotations

import re

from jaxrl.scripts import cli


def test_one_progress_line_per_chunk_when_stderr_is_not_a_tty(capsys, tmp_path):
    """capsys streams are not TTYs: one plain line per chunk on stderr (no
    bar), monotone, in the run's units; the results stay on stdout."""
    argv = ["train", "--agent", "vi_tabular", "--preset", "gridworld-noisy"]
    argv += ["--num-seeds", "2", "--set", "num_chunks=4", "--set", "iters_per_chunk=3"]
    assert cli.main([*argv, "--no-checkpoint", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    pattern = re.compile(
        r"vi_tabular/gridworld-noisy: (\d+)/12 iterations per seed \((\d+)%\), "
        r"[\d.e+]+/s, (ETA [\dhms]+|done in [\dhms]+)"  # 6s, 2m05s, 1h02m
    )
    matches = [pattern.fullmatch(line) for line in err.splitlines()]
    assert all(matches) and len(matches) == 4, err
    assert [int(m.group(1)) for m in matches] == [3, 6, 9, 12]
    assert [int(m.group(2)) for m in matches] == [25, 50, 75, 100]
    assert matches[-1].group(3).startswith("done in")
    assert "per seed" not in out and out.strip().endswith("gridworld-noisy")
