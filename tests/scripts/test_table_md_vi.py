"""Tests of ``jaxrl reproduce --table md-vi`` (MD-VI vs M-VI under noisy evaluation)."""

from __future__ import annotations

import csv
import io
import os

import jax
import numpy as np
import pytest

from jaxrl import testing
from jaxrl.agents import mvi_tabular as mvi
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.scripts import reproduce, tables
from jaxrl.scripts import table_md_vi as table

TINY = table.BUDGETS["tiny"]

# ----------------------------------------------------------------------------- references


def _noise_draws(key, num_iters, shape):
    """The draws md_vi_metrics / mvi_tabular.update make from ``key`` (float32)."""
    draws = []
    for _ in range(num_iters):
        key, k_noise = jax.random.split(key)
        draws.append(np.asarray(jax.random.normal(k_noise, shape), np.float64))
    return draws


def _np_md_vi_metrics(P, R, mu0, gamma, lam, tau, noise):
    """MD-VI in NumPy (policy as pi^beta exp(q / (lam + tau)), no logs) + exact metrics."""
    S, A = R.shape
    beta = lam / (lam + tau)

    def greedy(q, pi):
        w = pi**beta * np.exp((q - q.max(-1, keepdims=True)) / (lam + tau))
        return w / w.sum(-1, keepdims=True)

    q_star = testing.np_policy_iteration(P, R, gamma)
    j_star = mu0 @ q_star.max(-1)
    q, pi = np.zeros((S, A)), np.full((S, A), 1.0 / A)
    gaps, subopts = [], []
    for eps in noise:
        pi_next = greedy(q, pi)
        inner = q - lam * np.log(pi_next / pi) - tau * np.log(pi_next)
        v = np.sum(pi_next * inner, -1)
        q, pi = R + gamma * np.einsum("sat,t->sa", P, v) + eps, pi_next
        policy = greedy(q, pi)  # the next policy, the one the metrics evaluate
        v_pi = testing.np_policy_evaluation(P, R, gamma, policy)
        q_pi = R + gamma * np.einsum("sat,t->sa", P, v_pi)
        gaps.append(np.max(np.abs(q_star - q_pi)))
        subopts.append(j_star - mu0 @ v_pi)
    return np.array(gaps), np.array(subopts)


# ----------------------------------------------------------------------------- MD-VI loop


@pytest.mark.parametrize(
    ("lam", "tau", "sigma"), [(0.05, 0.05, 0.3), (0.1, 0.0, 0.5), (0.0, 0.2, 0.0)]
)
def test_md_vi_metrics_match_numpy_reference(lam, tau, sigma):
    mdp = testing.random_mdp(np.random.default_rng(0), 5, 3, gamma=0.9)
    P, R, mu0, gamma = testing.np_mdp(mdp)
    config = table.MDVIConfig(
        iters=4, kl_weight=lam, entropy_weight=tau, noise_std=sigma
    )
    key = jax.random.key(7)
    got = jax.jit(table.md_vi_metrics)(mdp, jax.random.clone(key), config)
    noise = [sigma * e for e in _noise_draws(key, 4, R.shape)]
    gaps, subopts = _np_md_vi_metrics(P, R, mu0, gamma, lam, tau, noise)
    np.testing.assert_allclose(got["dp/value_gap"], gaps, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["dp/suboptimality"], subopts, rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"alphas": (0.5, 1.5)}, "alpha must lie in [0.0, 1.0], got 1.5"),
        ({"alphas": (-0.1, 0.5)}, "alpha must lie in [0.0, 1.0], got -0.1"),
        ({"tau": -0.1}, "tau must lie in (0.0, inf], got -0.1"),
        ({"tau": 0.0}, "tau must lie in (0.0, inf], got 0"),
        ({"noise_levels": (0.0, -1.0)}, "noise_std must lie in [0.0, inf], got -1"),
        ({"alphas": ()}, "alphas must be a non-empty sequence"),
    ],
    ids=[
        "alpha_above_one",
        "alpha_negative",
        "tau_negative",
        "tau_zero",
        "noise",
        "empty",
    ],
)
def test_bad_grid_is_one_line_and_writes_nothing(tmp_path, kwargs, needle):
    with pytest.raises(ConfigError) as info:
        table.run("tiny", out=str(tmp_path), **kwargs)
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    assert not os.path.exists(tmp_path / table.TABLE)


def test_bad_budget_and_config_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown budget 'huge' for table 'md-vi'"):
        table.run("huge", out=str(tmp_path))
    assert not os.path.exists(tmp_path / table.TABLE)
    cases = [
        (lambda: table.Budget(8, 10, 3, 11, ("garnet",), name="x"), "last must be <="),
        (lambda: table.Budget(8, 10, 3, 3, ("grid",), name="x"), "unknown MDP family"),
        (lambda: table.Budget(8, 10, 0, 3, ("garnet",), name="x"), "num_seeds"),
        (lambda: table.MDVIConfig(kl_weight=-1.0).validate(), "kl_weight must lie"),
        (
            lambda: table.MDVIConfig(kl_weight=0.0, entropy_weight=0.0).validate(),
            "kl_weight + entropy_weight",
        ),
        (lambda: table.make_train_fn("nope", TINY, "MD-VI"), "unknown MDP family"),
        (lambda: table.make_train_fn("garnet", TINY, "VI"), "unknown parameterisation"),
    ]
    for call, needle in cases:
        with pytest.raises(ConfigError) as info:
            call()
        assert needle in str(info.value) and "\n" not in str(info.value)


def test_grid_configs_parameterisations():
    stacked, points = table.grid_configs(TINY, alphas=(0.0, 0.9), tau=0.2)
    assert len(points) == len(table.NOISE_LEVELS) * 2
    md, m = stacked["MD-VI"], stacked["M-VI"]
    np.testing.assert_allclose(md.kl_weight, np.tile([0.0, 0.18], 4), rtol=1e-6)
    np.testing.assert_allclose(md.entropy_weight, np.tile([0.2, 0.02], 4), rtol=1e-5)
    np.testing.assert_allclose(m.alpha, np.tile([0.0, 0.9], 4))
    np.testing.assert_allclose(m.tau, 0.2)
    np.testing.assert_allclose(md.noise_std, np.repeat(table.NOISE_LEVELS, 2))
    np.testing.assert_allclose(m.noise_std, np.repeat(table.NOISE_LEVELS, 2))


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow  # end to end (two compilations); like the other tables' tests
def test_tiny_budget_end_to_end(tmp_path):
    assert tables.get_table(table.TABLE).runner == "jaxrl.scripts.table_md_vi:run"
    seed = 3
    result = reproduce.reproduce(
        table.TABLE, "tiny", out=str(tmp_path), seed=seed, quiet=True, log=io.StringIO()
    )
    table_dir = tmp_path / table.TABLE
    assert result["dir"] == str(table_dir)
    for name in ("table.md", "table.csv", "error_vs_alpha.png", "garnet_results.npz"):
        assert (table_dir / name).stat().st_size > 0, name
    with open(table_dir / "table.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    grid = len(table.NOISE_LEVELS) * len(table.ALPHAS) * len(table.PARAMETERISATIONS)
    assert len(csv_rows) == len(result["rows"]) == grid * len(TINY.families)
    assert {int(r["n"]) for r in csv_rows} == {TINY.num_seeds}

    def row(p, alpha, sigma):
        (match,) = [
            r
            for r in result["rows"]
            if r["parameterisation"] == p
            and r["alpha"] == alpha
            and r["noise_std"] == sigma
        ]
        return match

    # the numbers equal independent runs with the sweep's per-seed keys
    family_key = jax.random.split(jax.random.key(seed), len(table.FAMILIES))[0]
    keys = jax.random.split(family_key, TINY.num_seeds)  # jaxrl.sweep.seed_keys
    alpha, sigma = 0.9, 0.3
    lam, tau = alpha * table.TAU, (1 - alpha) * table.TAU
    md_final, m_final = [], []
    for s in range(TINY.num_seeds):
        k_mdp, k_agent = jax.random.split(keys[s])
        _, params = fm.make_garnet_env(
            key=k_mdp, num_states=TINY.num_states, **table.FAMILIES["garnet"]
        )
        P, R, mu0, gamma = testing.np_mdp(params.mdp)
        noise = [
            sigma * e
            for e in _noise_draws(jax.random.clone(k_agent), TINY.iters, R.shape)
        ]
        gaps, _ = _np_md_vi_metrics(P, R, mu0, gamma, lam, tau, noise)
        md_final.append(gaps[-TINY.last :].mean())
        config = mvi.Config(
            iters_per_chunk=TINY.iters, alpha=alpha, tau=table.TAU, noise_std=sigma
        )
        _, metrics = jax.jit(mvi.make_train(config, None, params))(k_agent)
        m_final.append(float(np.mean(metrics["dp/value_gap"][-TINY.last :])))
    np.testing.assert_allclose(
        row("MD-VI", alpha, sigma)["mean"], np.mean(md_final), rtol=1e-3
    )
    np.testing.assert_allclose(
        row("M-VI", alpha, sigma)["mean"], np.mean(m_final), rtol=1e-4
    )
    # both parameterisations give the same numbers up to float32 rounding
    assert max(r["max_abs_diff_md_vs_m"] for r in result["rows"]) < 1e-3
    for r in result["rows"]:
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
        if r["noise_std"] == 0.0:
            assert r["excess_mean"] == 0.0
    # verdict and paper paragraph are written
    md = (table_dir / "table.md").read_text()
    for text in ("## Paper", "Leverage the Average", "## garnet", "sigma=0.3",
                 "MD-VI(lambda=0.09, tau=0.01)", "M-VI(alpha=0.9, tau=0.1)",
                 f"K = {TINY.iters}", "Verdict per family"):  # fmt: skip
        assert text in md, text
    assert set(result["verdicts"]) == {"garnet"}

    # --resume reuses the saved per-seed results and agrees
    log = io.StringIO()
    again = table.run("tiny", out=str(tmp_path), seed=seed, resume=True, log=log)
    assert log.getvalue().count("reusing") == len(TINY.families)
    assert [r["mean"] for r in again["rows"]] == [r["mean"] for r in result["rows"]]
