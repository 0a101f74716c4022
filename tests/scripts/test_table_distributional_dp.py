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


@pytest.mark.slow
def test_tiny_run_writes_the_table(tmp_path):
    out = table.run("tiny", out=str(tmp_path), log=io.StringIO())
    directory = out["dir"]
    for name in ("table.md", "table.csv", "return_laws.png", "results.json"):
        assert os.path.getsize(os.path.join(directory, name)) > 0
    with open(os.path.join(directory, "table.csv")) as f:
        rows = list(csv.DictReader(f))
    # cliff: 3 policies x (exact, MC, deep); homeostasis: 3 x (exact, MC) + 2 deep
    assert len(rows) == 9 + 8
    with open(os.path.join(directory, "table.md")) as f:
        text = f.read()
    assert "CVaR_0.1" in text and "homeostatic-optimal" in text
