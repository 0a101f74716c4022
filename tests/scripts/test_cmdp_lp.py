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

    def test_infinite_budget_is_no_constraint(self, capsys):
        argv = ["--env", "HazardGrid-v0", "--budget", "inf"]
        assert cmdp_lp.main(argv) == 0
        out = capsys.readouterr().out
        report = json.loads(out)  # strict JSON: "inf" is a string (decisions D5)
        assert "Infinity" not in out and report["budget"] == "inf"
        assert report["lp"]["lambda"] == 0.0
        assert cmdp_lp.main(["--env", "HazardGrid-v0", "--budget", "1e6"]) == 0
        slack = json.loads(capsys.readouterr().out)["lp"]
        assert report["lp"]["J_r"] == pytest.approx(slack["J_r"], rel=1e-10)
        assert cmdp_lp.main(["--env", "HazardGrid-v0", "--budget=-inf"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("cmdp_lp: error: budget -inf is infeasible")
        assert "\n" not in err
