"""Tests for scripts/table_constrained.py (tiny budget)."""

from __future__ import annotations

import csv
import io
import json
import os

import jax
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
    want = [(b, base, a) for b in budgets for base in ("mdqn", "ppo") for a in agents]
    want += [(b, "ppo", "cat") for b in budgets]
    assert sorted((float(r["budget"]), r["base"], r["agent"]) for r in deep) == sorted(
        want
    )
    for r in deep:
        assert 0.0 <= float(r["cost_mean"]) <= 500.0, r
        assert 0.0 < float(r["return_mean"]) <= 500.0, r
        assert float(r["within_budget"]) in (0.0, 1.0)  # one seed
    ppo_rows = {r["agent"]: r for r in deep if r["base"] == "ppo"}
    assert float(ppo_rows["unconstrained"]["lambda_final"]) == 0.0
    with open(os.path.join(d, "table.md")) as f:
        text = f.read()
    assert "| ppo | reload |" in text and "| ppo | cat |" in text
    with open(os.path.join(d, "results.json")) as f:
        json.load(f, parse_constant=_reject)  # strict JSON: CaT's NaN is "nan"
    again = T.run("tiny", out=str(tmp_path), resume=True, log=io.StringIO())
    assert again["tabular"] == result["tabular"]
    cat_again = [r for r in again["deep"] if r["agent"] == "cat"]
    assert cat_again and all(np.isnan(r["lambda_final"]) for r in cat_again)


def _reject(name):
    raise ValueError(f"non-strict JSON constant {name}")


@pytest.mark.heavy
def test_cat_rows_at_tiny():
    """CaT's rows: one run (the PPO rows' seeds) reported at every budget."""
    sizes = T.BUDGETS["tiny"]
    rows = T.run_deep_cat(jax.random.key(0), sizes)
    assert [(r["budget"], r["base"], r["agent"]) for r in rows] == [
        (b, "ppo", "cat") for b in sizes.deep_budgets
    ]
    steps = 8 * 128 * sizes.ppo_chunks * sizes.ppo_iters_per_chunk
    for r in rows:
        assert r["env_steps"] == steps and r["seeds"] == sizes.deep_seeds
        assert 0.0 < r["return_mean"] <= 100.0  # eval_max_steps = 100 at tiny
        assert 0.0 <= r["cost_mean"] <= r["return_mean"]  # cost <= 1 per step
        assert np.isnan(r["lambda_final"])
        assert r["within_budget"] == float(r["cost_mean"] <= r["budget"])


@pytest.mark.slow  # ~1 min: two SAC-based agents compile (3 min on a busy CPU)
def test_cal_rows_at_tiny():
    """CAL and SAC-Lagrangian on Pendulum-Constrained-v0, every budget."""
    sizes = T.BUDGETS["tiny"]
    rows = T.run_deep_cal(jax.random.key(0), sizes)
    assert [(r["budget"], r["base"], r["agent"]) for r in rows] == [
        (b, "sac", a) for b in sizes.cal_budgets for a in ("sac-lagrangian", "cal")
    ]
    steps = sizes.cal_chunks * sizes.cal_iters_per_chunk
    for r in rows:
        assert r["env_steps"] == steps and r["seeds"] == sizes.deep_seeds
        assert -16.3 * 50 <= r["return_mean"] <= 0.0  # 50 steps of reward >= -16.3
        assert 0.0 <= r["cost_mean"] <= 50.0  # cost <= 1 per step
        assert r["lambda_final"] >= 0.0
        assert r["within_budget"] == float(r["cost_mean"] <= r["budget"])
        assert np.isnan(r["train_cost_mean"])  # no training episode ends in 40 steps


def test_unknown_budget():
    with pytest.raises(ConfigError, match="budget"):
        T.run("huge", out="/nonexistent")
