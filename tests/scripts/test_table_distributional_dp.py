"""Tests for scripts/table_distributional_dp.py (the distributional-dp table)."""

from __future__ import annotations

import csv
import io
import os

import jax
import numpy as np
import pytest

from jaxrl.scripts import table_distributional_dp as table


def test_law_stats_closed_forms():
    # ALGORITHMS.md 4.7: {-2, 0, 1, 3} w.p. {.1, .3, .4, .2}: CVaR_0.1 = -2
    z, p = np.array([3.0, -2.0, 1.0, 0.0]), np.array([0.2, 0.1, 0.4, 0.3])
    stats = table.law_stats(z, p, "cliff")
    assert stats["mean"] == pytest.approx(0.8)
    assert stats["cvar"] == pytest.approx(-2.0)
    assert stats["p_reach"] == pytest.approx(1.0)  # every atom >= -7.7
    z2 = np.array([-8.0, -7.7, -7.0])
    assert table.law_stats(z2, np.array([0.5, 0.25, 0.25]), "cliff")["p_reach"] == 0.5
    h = table.law_stats(np.array([0.0, 2.0, 2.4, 5.0]), np.full(4, 0.25), "homeostasis")
    assert h["abs_dev"] == pytest.approx((2.0 + 0.0 + 0.4 + 3.0) / 4)
    assert h["p_band"] == pytest.approx(0.5)
    g = np.random.default_rng(0).normal(size=1000)
    s = table.sample_stats(g, "cliff")
    assert s["cvar"] == pytest.approx(np.sort(g)[:100].mean())


@pytest.mark.heavy
def test_homeostasis_exact_mc_and_stock_advantage():
    """Exact laws agree with Monte Carlo; the stock policy beats stock-blind ones."""
    budget = table.Budget(
        num_atoms=121,
        num_stocks=33,
        iters=120,
        mc_episodes=4_000,
        horizon=150,
        deep_seeds=1,
        deep_iters=1,
        deep_atoms=3,
        name="exact-vs-mc",
    )
    rows = table._exact_and_mc("homeostasis", budget, jax.random.key(0), io.StringIO())
    by = {(r["objective"], r["method"].split(" ")[0]): r for r in rows}
    for objective in ("mean", "homeostatic", "markov"):
        exact, mc = by[(objective, "exact")], by[(objective, "Monte")]
        for name in ("mean", "abs_dev", "p_band"):
            tol = 0.04 if name == "p_band" else 0.08
            assert mc[name] == pytest.approx(exact[name], abs=tol), (objective, name)
    # the stock-augmented policy regulates the intake better than any stationary
    # stock-blind policy (and than the mean-optimal one), exactly and by MC
    for method in ("exact", "Monte"):
        home = by[("homeostatic", method)]["abs_dev"]
        assert home < by[("markov", method)]["abs_dev"] - 0.2
        assert home < by[("mean", method)]["abs_dev"] - 0.2
    assert by[("mean", "exact")]["mean"] > by[("homeostatic", "exact")]["mean"]


@pytest.mark.heavy
def test_achab_neu_rows_exact_mc_and_claims():
    """Safe/risky substate policies: exact laws agree with Monte Carlo; the safe
    policy has the better CVaR_0.1 tail, the risky one takes the shortcut; the
    sweep over alpha satisfies CVaR_alpha(G) <= V- <= E G (V- = E G at alpha 1)."""
    budget = table.Budget(
        num_atoms=151,
        num_stocks=2,
        iters=100,
        mc_episodes=3_000,
        horizon=150,
        deep_seeds=1,
        deep_iters=1,
        deep_atoms=3,
        name="achab-neu",
    )
    rows = table._achab_neu(budget, jax.random.key(1), io.StringIO())
    by = {
        (r["objective"], r["method"].split(" ")[0]): r
        for r in rows
        if r["task"] == "cliff"
    }
    for objective in ("split-safe", "split-risky"):
        exact, mc = by[(objective, "exact")], by[(objective, "Monte")]
        assert mc["mean"] == pytest.approx(exact["mean"], abs=0.1), objective
        assert mc["cvar"] == pytest.approx(exact["cvar"], abs=0.4), objective
        assert mc["p_reach"] == pytest.approx(exact["p_reach"], abs=0.04), objective
    safe, risky = by[("split-safe", "exact")], by[("split-risky", "exact")]
    assert safe["cvar"] > risky["cvar"] + 1.0
    assert risky["p_reach"] > 0.4 > safe["p_reach"]
    assert safe["split_worst"] > risky["split_worst"]  # safe maximises V-
    assert risky["split_best"] > safe["split_best"]  # risky maximises V+
    sweep = [r for r in rows if r["task"] == "cliff-alpha-sweep"]
    assert [r["alpha"] for r in sweep] == list(table.SPLIT_ALPHAS)
    tol = 5e-3  # float32 rounding of 100 projected sweeps (laws vs values)
    for r in sweep:
        assert r["cvar_alpha"] - tol <= r["split_worst"] <= r["mean"] + tol, r
    assert sweep[-1]["split_worst"] == pytest.approx(sweep[-1]["mean"], abs=tol)
    assert sweep[0]["split_worst"] > sweep[0]["cvar_alpha"] + 0.1  # strictly


@pytest.mark.slow
def test_tiny_run_writes_the_table(tmp_path):
    out = table.run("tiny", out=str(tmp_path), log=io.StringIO())
    directory = out["dir"]
    for name in ("table.md", "table.csv", "return_laws.png", "results.json"):
        assert os.path.getsize(os.path.join(directory, name)) > 0
    with open(os.path.join(directory, "table.csv")) as f:
        rows = list(csv.DictReader(f))
    # cliff: 3 policies x (exact, MC, deep) + 2 Achab-Neu x (exact, MC) + the
    # alpha sweep; homeostasis: 3 x (exact, MC) + 2 deep
    assert len(rows) == 9 + 4 + len(table.SPLIT_ALPHAS) + 8
    with open(os.path.join(directory, "table.md")) as f:
        text = f.read()
    assert "CVaR_0.1" in text and "homeostatic-optimal" in text
    assert "Achab-Neu safe" in text and "CVaR_alpha(G) <= V- <= E G" in text
