"""Diverged runs are never silent: flags, summaries, tables, warnings, exit status 3.

A cheap genuine divergence: exact value iteration with evaluation noise of
standard deviation 1e38 overflows float32 within a few sweeps (the Q table
becomes inf/NaN), while its headline ``dp/suboptimality`` stays a finite,
healthy-looking number (the greedy policy of a NaN table is still a policy).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os

import numpy as np
import pytest

from jaxrl import logging as jlog
from jaxrl.scripts import cli
from jaxrl.scripts import sweep as jsweep
from jaxrl.scripts import train as jtrain

VI = [
    "--agent",
    "vi_tabular",
    "--preset",
    "gridworld-noisy",
    "--num-seeds",
    "2",
    "--set",
    "num_chunks=2",
    "--set",
    "iters_per_chunk=3",
    "--quiet",
]


def _cli(argv):
    """Run ``cli.main`` in-process; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as exit_:
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _warnings(err):
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def diverged_train(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("div") / "run")
    status, out, err = _cli(
        [
            "train",
            *VI,
            "--set",
            "noise_std=1e38",
            "--no-checkpoint",
            "--run-dir",
            run_dir,
        ]
    )
    return run_dir, status, out, err


@pytest.fixture(scope="module")
def partial_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    # The diverging point comes first in grid order, so ranking it last is checked.
    status, out, err = _cli(
        ["sweep", *VI, "--grid", "noise_std=1e38,0.01", "--out", str(root)]
    )
    return root / "sweep" / "vi_tabular" / "gridworld-noisy", status, out, err


class TestTrain:
    def test_every_seed_diverged_exits_3_and_warns_once(self, diverged_train):
        run_dir, status, out, err = diverged_train
        assert status == jtrain.EXIT_DIVERGED == 3
        (line,) = _warnings(err)
        assert "2 of 2 seeds diverged" in line
        assert "seed 0 at iteration" in line and "seed 1 at iteration" in line
        assert "Traceback" not in err
        assert out.strip().splitlines()[-1] == run_dir  # results written all the same

    def test_summary_lists_diverged_seeds_and_excludes_them(self, diverged_train):
        run_dir = diverged_train[0]
        rows = jlog.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
        # The state really went non-finite: the drivers' check failed ...
        checks = [(r["seed"], r["health/finite"]) for r in rows if r["iter"] == 5]
        assert checks == [(0, 0.0), (1, 0.0)]
        # ... and NaN/inf are written as strings, not null.
        assert {r["dp/residual"] for r in rows if r["iter"] == 5} <= {"nan", "inf"}
        assert all(None not in r.values() for r in rows)
        # The headline metric looks healthy: a silent summary would average it.
        last = [r["dp/suboptimality"] for r in rows if r["iter"] == 5]
        assert all(isinstance(v, float) and np.isfinite(v) for v in last)
        summary = _json(os.path.join(run_dir, "summary.json"))
        assert summary["n_diverged"] == 2
        assert [d["seed"] for d in summary["diverged"]] == [0, 1]
        assert all(0 <= d["iteration"] <= 5 for d in summary["diverged"])
        head = summary["headline"]
        assert head["n"] == 0 and head["n_diverged"] == 2
        assert head["mean"] == "nan"  # a string in strict JSON, not null
        assert "diverged" in summary["note"]
        assert "health/finite" not in summary["final"]
        back = jlog.from_jsonable(summary)
        assert np.isnan(back["headline"]["mean"])
        assert os.path.exists(os.path.join(run_dir, "learning_curve.png"))


class TestWriteSummary:
    """write_summary on a hand-written metrics.jsonl: one of three seeds diverged."""

    def test_partial_divergence_is_left_out(self, tmp_path):
        nan = "nan"
        rows = []
        for seed, (ret, health) in enumerate([(10.0, 1.0), (100.0, 0.0), (20.0, 1.0)]):
            for t, loss in enumerate([1.0, 1.0 if health else nan, 1.0, 1.0]):
                rows.append(
                    {
                        "seed": seed,
                        "iter": t,
                        "loss": loss if health or t < 1 else nan,
                        "eval/return": ret if t in (1, 3) else nan,
                        "health/finite": health if t in (1, 3) else nan,
                    }
                )
        jlog.write_jsonl_atomic(tmp_path / "metrics.jsonl", rows)
        summary = jtrain.write_summary(str(tmp_path), {}, "eval/return", plot=False)
        assert summary["diverged"] == [{"seed": 1, "iteration": 1}]
        head = summary["headline"]
        assert head["n"] == 2 and head["n_diverged"] == 1
        assert head["mean"] == pytest.approx(15.0)  # seed 1's 100 is left out
        assert summary["final"]["loss"]["n"] == 2
        assert _json(tmp_path / "summary.json")["n_diverged"] == 1

    def test_healthy_and_older_files(self, tmp_path):
        """No health column (files from before the check): nothing diverged."""
        rows = [{"seed": s, "iter": 0, "eval/return": None} for s in (0, 1)]
        rows += [{"seed": s, "iter": 1, "eval/return": 5.0 + s} for s in (0, 1)]
        jlog.write_jsonl_atomic(tmp_path / "metrics.jsonl", rows)
        summary = jtrain.write_summary(str(tmp_path), {}, None, plot=False)
        assert summary["n_diverged"] == 0 and summary["diverged"] == []
        assert summary["headline"]["mean"] == pytest.approx(5.5)


class TestSweep:
    def test_partial_divergence_exits_0_and_names_the_point(self, partial_sweep):
        _, status, out, err = partial_sweep
        assert status == 0
        (line,) = _warnings(err)
        assert "noise_std=1e+38: 2 of 2 seeds diverged" in line
        assert "noise_std=0.01" not in line
        assert "(n=0, 2 diverged)" in out and "2 points x 2 seeds" in out

    def test_table_ranks_the_diverged_point_last(self, partial_sweep):
        sweep_dir = partial_sweep[0]
        with open(sweep_dir / "sweep.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["noise_std"] for r in rows] == ["0.01", "1e+38"]
        assert [r["n_diverged"] for r in rows] == ["0", "2"]
        assert [r["n"] for r in rows] == ["2", "0"]
        assert rows[1]["mean"] == "nan" and np.isfinite(float(rows[0]["mean"]))
        md = (sweep_dir / "sweep.md").read_text().splitlines()
        table = [line for line in md if line.startswith("| ")]
        assert "n_diverged" in table[0]
        assert table[-1].startswith("| 1e+38 |") and "| diverged |" in table[-1]
        point = _json(sweep_dir / "noise_std=1e+38" / "summary.json")
        assert point["n_diverged"] == 2 and point["headline"]["n"] == 0
        assert (sweep_dir / "learning_curves.png").exists()

    def test_aggregate_counts_and_excludes_diverged_seeds(
        self, partial_sweep, tmp_path
    ):
        status, _, _ = _cli(
            ["aggregate", str(partial_sweep[0]), "--out", str(tmp_path), "--no-plot"]
        )
        assert status == 0
        with open(tmp_path / "aggregate.csv", newline="") as f:
            rows = {r["run"]: r for r in csv.DictReader(f)}
        bad, good = rows["noise_std=1e+38"], rows["noise_std=0.01"]
        assert (bad["n"], bad["n_diverged"], bad["mean"]) == ("0", "2", "nan")
        assert (good["n"], good["n_diverged"]) == ("2", "0")
        assert np.isfinite(float(good["mean"]))


@pytest.mark.parametrize(
    ("diverged", "status"), [([2, 2], 3), ([2, 0], 0), ([0, 0], 0)]
)
def test_sweep_exit_status_3_only_when_every_point_diverged(diverged, status, capsys):
    summaries = [
        {
            "seed_ids": [0, 1],
            "diverged": [{"seed": s, "iteration": 4} for s in range(k)],
        }
        for k in diverged
    ]
    result = jsweep.SweepResult(
        out_dir="x",
        points=[{"lr": 1.0}, {"lr": 2.0}],
        point_dirs=["a", "b"],
        summaries=summaries,
        metric="m",
        metrics={},
        wall_time=0.0,
    )
    assert jsweep._report_divergence(result) == status
    err = capsys.readouterr().err
    assert len(_warnings(err)) == (1 if any(diverged) else 0)
    if diverged[0]:
        assert "lr=1: 2 of 2 seeds diverged (seed 0 at iteration 4, seed 1" in err
