"""End-to-end test of ``jaxrl reproduce --table mvi-tabular --budget tiny``."""

from __future__ import annotations

import csv
import io
import os

import jax
import numpy as np
import pytest

from jaxrl.agents import mvi_tabular as mvi
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.scripts import reproduce, tables
from jaxrl.scripts import table_mvi_tabular as table

TINY = table.BUDGETS["tiny"]


@jax.jit
def _final_suboptimality(config, params, key):
    """Final ``dp/suboptimality`` of one plain agent run (config and MDP traced)."""
    return mvi.make_train(config, None, params)(key)[1]["dp/suboptimality"][-1]


def _direct_final(family, algo, sigma, seed, num_seeds):
    """Final suboptimality per seed by plain agent runs, re-deriving the sweep keys."""
    family_key = jax.random.split(jax.random.key(seed), len(table.FAMILIES))[
        table.FAMILIES.index(family)
    ]
    keys = jax.random.split(family_key, num_seeds)  # jaxrl.sweep.seed_keys
    config = mvi.Config(
        iters_per_chunk=TINY.iters,
        oracle_iters=100,
        normalizer_iters=30,
        alpha=algo.alpha,
        tau=algo.tau,
        q=algo.q,
        noise_std=sigma,
    )
    finals = []
    for s in range(num_seeds):
        key = keys[s]
        if family == "garnet":
            k_mdp, key = jax.random.split(key)
            _, params = fm.make_garnet_env(
                key=k_mdp, num_states=TINY.num_states, **table.GARNET
            )
        else:
            _, params = fm.make_gridworld_env(**table.GRIDWORLD)
        finals.append(float(_final_suboptimality(config, params, key)))
    return np.array(finals)


@pytest.mark.slow  # end to end; CI's set-up command runs a reproduction table
def test_tiny_budget_end_to_end(tmp_path):
    assert tables.get_table(table.TABLE).runner == "jaxrl.scripts.table_mvi_tabular:run"
    log = io.StringIO()
    result = reproduce.reproduce(
        table.TABLE, "tiny", out=str(tmp_path), seed=3, quiet=True, log=log
    )
    table_dir = tmp_path / table.TABLE
    assert result["dir"] == str(table_dir)
    for name in (
        "table.md",
        "table.csv",
        "garnet_vs_noise.png",
        "gridworld_vs_noise.png",
    ):
        assert (table_dir / name).stat().st_size > 0, name
    curves = sorted(p.name for p in table_dir.glob("*_curves_sigma*.png"))
    assert curves == [
        "garnet_curves_sigma0.1.png",
        "garnet_curves_sigma1.png",
        "gridworld_curves_sigma0.01.png",
        "gridworld_curves_sigma0.1.png",
    ]

    # one CSV row per family x noise level x algorithm, same as the returned rows
    with open(table_dir / "table.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    grid = sum(len(table.NOISE_LEVELS[f]) for f in table.FAMILIES)
    assert len(csv_rows) == len(result["rows"]) == grid * len(table.ALGORITHMS)
    assert {int(r["n"]) for r in csv_rows} == {TINY.num_seeds}

    def row(family, label, sigma):
        (match,) = [
            r
            for r in result["rows"]
            if r["mdp"] == family
            and r["algorithm"] == label
            and r["noise_std"] == sigma
        ]
        return match

    # numbers equal direct agent runs with the sweep's per-seed keys
    by_label = {a.label: a for a in table.ALGORITHMS}
    for family, label, sigma in (
        ("gridworld", "M-VI (alpha=0.9, tau=0.01)", 0.03),
        ("garnet", "VI", 0.3),
    ):
        finals = _direct_final(family, by_label[label], sigma, 3, TINY.num_seeds)
        r = row(family, label, sigma)
        np.testing.assert_allclose(r["mean"], finals.mean(), rtol=1e-5, atol=1e-6)
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
        (csv_row,) = [
            c
            for c in csv_rows
            if c["mdp"] == family
            and c["algorithm"] == label
            and float(c["noise_std"]) == sigma
        ]
        np.testing.assert_allclose(float(csv_row["mean"]), finals.mean(), rtol=1e-5)
    # exact VI (sigma = 0) is optimal after 10 sweeps on the gridworld
    assert abs(row("gridworld", "VI", 0.0)["mean"]) < 1e-5

    md = (table_dir / "table.md").read_text()
    for text in (
        "## garnet",
        "## gridworld",
        "sigma=0.3",
        "M-VI (alpha=0.99, tau=0.01)",
    ):
        assert text in md
    assert f"K = {TINY.iters}" in md and f"Seeds: {TINY.num_seeds}" in md

    # --resume reuses the saved per-seed results (no recomputation) and agrees
    log = io.StringIO()
    again = table.run("tiny", out=str(tmp_path), seed=3, resume=True, log=log)
    assert log.getvalue().count("reusing") == len(table.FAMILIES)
    assert [r["mean"] for r in again["rows"]] == [r["mean"] for r in result["rows"]]


def test_unknown_budget_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="budget"):
        table.run("huge", out=str(tmp_path))
    assert not os.path.exists(tmp_path / table.TABLE)
