"""Tests for scripts/table_dual_rl.py (the dual-rl table)."""

from __future__ import annotations

import csv
import io
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from jaxrl.scripts import table_dual_rl as T


def test_summarize_metrics_matches_numpy():
    rng = np.random.default_rng(0)
    steps, period = 12, 4
    v = rng.normal(size=steps).astype(np.float32)
    v[7] = 50.0  # after the first divergence: not in max |V|
    diverged = np.zeros(steps, np.float32)
    diverged[[5, 9]] = 1.0
    score = np.full(steps, np.nan, np.float32)
    score[period - 1 :: period] = [10.0, 20.0, 30.0]
    metrics = {
        "train/diverged": jnp.asarray(diverged),
        "v/mean": jnp.asarray(v),
        "eval/normalized_score": jnp.asarray(score),
        "eval/return": jnp.asarray(2 * score),
    }
    out = jax.device_get(jax.jit(T.summarize_metrics, static_argnums=1)(metrics, 4))
    np.testing.assert_array_equal(out["score"], [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(out["return"], [20.0, 40.0, 60.0])
    assert bool(out["diverged"]) and int(out["first_diverged"]) == 5
    assert float(out["max_abs_v"]) == pytest.approx(np.abs(v[:5]).max())
    assert float(out["final_v"]) == pytest.approx(v[-1])
    calm = {**metrics, "train/diverged": jnp.zeros(steps)}
    out = T.summarize_metrics(calm, period)
    assert not bool(out["diverged"]) and int(out["first_diverged"]) == -1
    assert float(out["max_abs_v"]) == pytest.approx(50.0)


def _synthetic_datasets(root):
    """CartPole random data, one 'expert' episode and a mixture (labels only)."""
    env, params = envs.make("CartPole-v1")
    data = offline.collect_dataset(
        jax.random.key(0), env, params, offline.uniform_policy(env, params), 300, 4
    )
    ds = offline.make_dataset(
        data,
        env="CartPole-v1",
        kind="random",
        return_random=20.0,
        return_expert=500.0,
        policy="uniform random actions",
    )
    one = offline.expert_trajectories(ds, 1, kind="expert-1traj")
    mixture = offline.mix(
        ds, offline.expert_trajectories(ds, 2, skip=1), kind="random-plus-expert"
    )
    for d in (ds, one, mixture):
        offline.save_dataset(os.path.join(root, "CartPole-v1", d.meta.kind), d)
    return ds, one, mixture


MICRO = T.Budget(
    envs=("CartPole-v1",),
    datasets_budget="tiny",
    dataset_size=None,
    kinds=None,
    seeds=2,
    hidden_sizes=(8,),
    batch_size=16,
    num_chunks=1,
    iters_per_chunk=20,
    eval_episodes=1,
    betas=(1e-4, 1.0),
    instability_env="Pendulum-v1",  # absent: falls back to the first env
    instability_seeds=2,
    instability_iters=20,
    name="micro",
)


@pytest.mark.heavy
def test_table_plumbing_on_a_synthetic_dataset(tmp_path, monkeypatch):
    """All three tables and the files from synthetic data (no make_datasets run)."""
    root = str(tmp_path / "data")
    ds, one, mixture = _synthetic_datasets(root)
    monkeypatch.setitem(T.BUDGETS, "micro", MICRO)
    # three compilations: BC (every BC row), ReCOIL, the unstabilised XQL grid;
    # the other algorithms and variants: the tiny run (slow)
    monkeypatch.setattr(T, "ALGORITHMS", {"BC": T.ALGORITHMS["BC"]})
    variant = "XQL (no stabiliser)"
    monkeypatch.setattr(T, "INSTABILITY", {variant: T.INSTABILITY[variant]})
    T._sweeps.cache_clear()
    log = io.StringIO()
    out = T.run("micro", out=str(tmp_path), datasets=root, log=log)
    assert "reusing 3 CartPole-v1 datasets" in log.getvalue()
    d = out["dir"]
    for name in ("table.md", "table.csv", "instability.csv", "scores.png",
                 "instability.png", "results.json"):  # fmt: skip
        assert os.path.getsize(os.path.join(d, name)) > 0, name
    rows = out["rows"]
    offline_rows = [r for r in rows if r["table"] == "offline"]
    imitation = [r for r in rows if r["table"] == "imitation"]
    # imitation splits are not offline-RL datasets
    assert {(r["dataset"], r["algorithm"]) for r in offline_rows} == {("random", "BC")}
    assert {r["algorithm"] for r in imitation} == set(T.IMITATION)
    assert {r["dataset"] for r in imitation} == {"random-plus-expert"}
    for r in rows:
        assert r["seeds"] == 2 and r["steps"] == 20
        source = ds if r["table"] == "offline" else mixture
        assert r["transitions"] == source.meta.num_transitions
        if np.isfinite(r["score_mean"]):
            assert r["score_ci_low"] <= r["score_mean"] <= r["score_ci_high"]
            # the score is the normalised mean return of the final policy
            want = 100 * (r["return_mean"] - 20.0) / 480.0
            assert r["score_mean"] == pytest.approx(want, rel=1e-4, abs=1e-3)
    # datasets of different sizes were padded: BC on the data, on the mixture
    # and on the one expert episode share ONE compilation (+ ReCOIL)
    seeds_fn, grid_fn = T._sweeps("CartPole-v1")
    assert seeds_fn._cache_size() == 2
    assert grid_fn._cache_size() == 1  # beta traced: one call over beta x seeds
    inst = {(r["variant"], r["beta"]): r for r in out["instability"]}
    assert len(inst) == 2
    assert inst[(variant, 1e-4)]["divergence_rate"] == 1.0  # exp overflows
    assert out["facts"]["env"] == "CartPole-v1"
    scale = 1.0 / (1.0 - 0.99) * float(np.mean(np.asarray(ds.data.reward)))
    assert out["facts"]["return_scale"] == pytest.approx(scale)
    with open(os.path.join(d, "table.csv")) as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    with open(os.path.join(d, "table.md")) as f:
        text = f.read()
    for heading in ("## 1. Offline RL", "## 2. XQL instability", "## 3. Imitation"):
        assert heading in text
    again = T.run("micro", out=str(tmp_path), datasets=root, resume=True, log=log)
    assert again["wall_time"] == 0.0  # read back (NaN are stored as null)
    assert [r["score_mean"] for r in again["rows"]] == [
        r["score_mean"] for r in out["rows"]
    ]


def test_reward_scale_and_padding():
    env, params = envs.make("Pendulum-v1")
    data = offline.collect_dataset(
        jax.random.key(1), env, params, offline.uniform_policy(env, params), 50, 2
    )
    ds = offline.make_dataset(
        data,
        env="Pendulum-v1",
        kind="random",
        return_random=-1200.0,
        return_expert=-150.0,
        policy="uniform random actions",
    )
    r = np.asarray(data.reward)
    assert T.reward_scale(ds) == pytest.approx(1.0 / np.abs(r).max())
    padded = T.Padded.of(data, 130)
    assert padded.size == 100 and padded.data.extras == {}
    plain = data.replace(extras={})
    for a, b in zip(jax.tree.leaves(padded.data), jax.tree.leaves(plain), strict=True):
        assert a.shape == (130, *b.shape[1:])
        np.testing.assert_array_equal(np.asarray(a)[:100], np.asarray(b))
        assert not np.any(np.asarray(a)[100:])


def test_bad_inputs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="budget"):
        T.run("huge", out=str(tmp_path))
    bad = T.BUDGETS["tiny"].__class__(**{**T.BUDGETS["tiny"].__dict__,
                                          "envs": ("Pong-v9",)})  # fmt: skip
    with pytest.raises(ConfigError, match="Pong-v9"):
        T.ensure_datasets(bad, str(tmp_path), 0, io.StringIO())


@pytest.mark.slow  # generates the tiny CartPole datasets (~1 min) and trains
def test_tiny_budget_end_to_end(tmp_path):
    out = T.run("tiny", out=str(tmp_path), log=io.StringIO())
    root = os.path.join(out["dir"], "datasets", "CartPole-v1")
    assert os.path.isdir(os.path.join(root, "random"))
    kinds = {r["dataset"] for r in out["rows"] if r["table"] == "offline"}
    assert kinds == {"random", "medium", "expert", "medium-replay", "medium-expert"}
    assert {r["algorithm"] for r in out["rows"]} >= set(T.ALGORITHMS) | {"ReCOIL"}
    inst = {(r["variant"], r["beta"]): r for r in out["instability"]}
    assert inst[("XQL (no stabiliser)", 1e-4)]["divergence_rate"] == 1.0
    for beta in T.BUDGETS["tiny"].betas:
        assert inst[("XQL (clip + rescale)", beta)]["divergence_rate"] == 0.0
        assert inst[("f-DVL(chi2)", beta)]["divergence_rate"] == 0.0
        assert inst[("f-DVL(TV)", beta)]["divergence_rate"] == 0.0
