"""In-process command-line helpers shared by the tests in tests/scripts/."""

from __future__ import annotations

from jaxrl.scripts import cli

# 4 chunks of 3 noisy sweeps, 2 seeds: the key in the state is used every sweep,
# so a resume that restored the wrong checkpoint, key or step would not be
# bitwise equal.
VI_RUN = [
    "train",
    "--agent",
    "vi_tabular",
    "--preset",
    "gridworld-noisy",
    "--num-seeds",
    "2",
    "--set",
    "num_chunks=4",
    "--set",
    "iters_per_chunk=3",
    "--set",
    "noise_std=0.05",
    "--quiet",
]


def run_cli(argv, capsys):
    """Run ``cli.main`` in-process; return (status, stdout, stderr)."""
    try:
        status = cli.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *needles):
    """Status 2, one stderr line without a traceback, holding every needle;
    return the line."""
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
