"""Tests for scripts/table_constrained.py (tiny budget)."""

from __future__ import annotations

import csv
import io
import os

import numpy as np
import pytest

from jaxrl.errors import ConfigError
from jaxrl.scripts import table_constrained as T


@pytest.mark.slow  # ~2 min: five deep agents compile; tabular claim: test_cmdp_tabular
def test_tiny_table_writes_outputs_and_reload_beats_gda(tmp_path):
    result = T.run("tiny", out=str(tmp_path), log=io.StringIO())
    d = result["dir"]
    for name in ("table.md", "tabular.csv", "deep.csv", "iterates.png", "results.json"):
        assert os.path.getsize(os.path.join(d, name)) > 0, name
    rows = {(r["method"], r["eta"]): r for r in result["tabular"]}
    assert len(rows) == 2 * len(T.BUDGETS["tiny"].step_sizes)
    # ReLOAD's last iterate is closer to the LP solution than GDA's at eta = 0.5.
    assert (
        rows[("reload", 0.5)]["lambda_err_mean"] < rows[("gda", 0.5)]["lambda_err_mean"]
    )
    for r in result["tabular"]:
        assert np.isfinite(r["occupancy_l1_mean"]) and 0 <= r["policy_l1_mean"] <= 2
    with open(os.path.join(d, "deep.csv")) as f:
        deep = list(csv.DictReader(f))
    agents = ("unconstrained", "lagrangian", "reload")
    budgets = T.BUDGETS["tiny"].deep_budgets
    assert sorted((float(r["budget"]), r["base"], r["agent"]) for r in deep) == sorted(
        (b, base, a) for b in budgets for base in ("mdqn", "ppo") for a in agents
    )
    for r in deep:
        assert 0.0 <= float(r["cost_mean"]) <= 500.0, r
        assert 0.0 < float(r["return_mean"]) <= 500.0, r
        assert float(r["within_budget"]) in (0.0, 1.0)  # one seed
    ppo_rows = {r["agent"]: r for r in deep if r["base"] == "ppo"}
    assert float(ppo_rows["unconstrained"]["lambda_final"]) == 0.0
    with open(os.path.join(d, "table.md")) as f:
        assert "| ppo | reload |" in f.read()
    again = T.run("tiny", out=str(tmp_path), resume=True, log=io.StringIO())
    assert again["tabular"] == result["tabular"]


def test_unknown_budget():
    with pytest.raises(ConfigError, match="budget"):
        T.run("huge", out="/nonexistent")
