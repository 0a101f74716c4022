"""Tests for the command line ``python -m jaxrl.scripts.cmdp_lp`` (the LP itself: tests/agents/test_cmdp_lp.py)."""

from __future__ import annotations

import json

import pytest

from jaxrl.scripts import cmdp_lp


class TestCommandLine:
    def test_reports_the_lp_and_both_methods(self, capsys):
        argv = [
            "--env",
            "RandomCMDP-v0",
            "--env-arg",
            "num_states=4",
            "--env-arg",
            "num_actions=2",
            "--iters",
            "3000",
            "--eta-pi",
            "0.5",
            "--eta-lambda",
            "0.5",
            "--env-arg",
            "seed=1",
        ]
        assert cmdp_lp.main(argv) == 0
        report = json.loads(capsys.readouterr().out)
        b_min, b_max = report["budget_range"]
        assert report["budget"] == pytest.approx((b_min + b_max) / 2)
        assert report["lp"]["lambda"] > 0.0
        last = report["reload"]["last"]
        assert last["lambda_error"] < 1e-3 and abs(last["reward_gap"]) < 1e-3
        assert set(report["gda"]) == {"last", "average"}

    def test_bad_budget_is_one_line_and_status_2(self, capsys):
        argv = ["--env", "HazardGrid-v0", "--budget", "-1"]
        assert cmdp_lp.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("cmdp_lp: error: budget -1 is infeasible")
        assert "\n" not in err
