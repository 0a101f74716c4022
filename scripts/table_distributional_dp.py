"""``jaxrl reproduce --table distributional-dp``: risk-sensitive control with stocks.

Two tasks with realised random rewards (:mod:`jaxrl.envs.risk`):

* **cliff**: a slippery gridworld with a risky shortcut along a cliff (8 moves,
  each move next to the cliff slips into a trap with probability ``slip / 2``)
  and a safe path (10 moves). Three policies, each optimal for one objective of
  the discounted return ``G``: the *mean*-optimal policy, the
  *CVaR_0.1*-optimal policy (outer search over the initial stock ``c_0``), and
  the *threshold*-optimal policy maximising ``P(G >= b)``. For each policy the
  table reports ``E G``, ``CVaR_0.1(G)`` and ``P(G >= b)``.
* **homeostasis**: foraging where food keeps coming; the *homeostatic* policy
  keeps the discounted intake near a set point (``f(x) = -|x|``), against the
  mean-optimal policy (always forage) and the best stock-blind (Markov)
  policy. Columns: ``E G``, ``E|G - set point|`` and ``P(|G - set point| <=
  0.5)``.

A fourth and fifth cliff policy come from the worst-/best-case substate DP of
Achab and Neu (:func:`jaxrl.agents.distributional_dp.split_solve`, our
reconstruction documented in :mod:`jaxrl.ops.split_dp`): the *safe* policy
(greedy for the worst-case substate at level ``alpha = 0.1``) and the *risky*
one (best-case substate), both stock-blind, evaluated exactly and by Monte Carlo
like the others; plus a sweep of the safe policy over ``alpha`` (one vmapped
call), exact only.

Every policy is computed three ways:

* **exact**: stock-augmented distributional DP (:mod:`jaxrl.agents.distributional_dp`)
  and the exact return law of the policy it returns (up to the return grid);
* **Monte Carlo**: rollouts of that same policy, executed with its stock memory
  (:func:`jaxrl.agents.distributional_dp.rollout`), mean and 95% CI;
* **deep**: the stock-augmented distributional DQN (:mod:`jaxrl.agents.dist_dqn`,
  quantile head) trained for the same objective on the sampling environment,
  seeds vmapped in one jitted call, then evaluated by Monte Carlo from its
  chosen ``c_0`` (mean over seeds of the per-seed statistics, with the 95%
  bootstrap CI over seeds).

Writes ``<out>/distributional-dp/``: ``table.md``, ``table.csv``,
``return_laws.png`` (the exact return laws of the policies of both tasks, and
the deep agents' empirical laws) and ``results.json``.

Budgets: ``tiny`` (tests; seconds, meaningless numbers), ``small`` (a few minutes
on 2 CPU cores), ``full`` (finer grids, more seeds and training).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import logging as jlog
from jaxrl import metrics as jmetrics
from jaxrl.agents import dist_dqn
from jaxrl.agents import distributional_dp as ddp
from jaxrl.envs import risk
from jaxrl.ops import distributional_dp as ops_ddp
from jaxrl.scripts import tables

__all__ = ["TABLE", "Budget", "BUDGETS", "CLIFF", "HOMEOSTASIS", "run"]

TABLE = "distributional-dp"

CLIFF = {"slip": 0.1, "gamma": 0.95, "step_reward": -1.0, "trap_reward": -10.0}
"""Cliff gridworld settings (:func:`jaxrl.envs.risk.cliff_gridworld`)."""

CLIFF_ALPHA = 0.1
CLIFF_THRESHOLD = -7.7  # reachable in at most 9 moves: only the shortcut can

HOMEOSTASIS = {"find_prob": 0.5, "end_prob": 0.05, "gamma": 0.95}
"""Foraging settings (:func:`jaxrl.envs.risk.homeostasis`)."""

SET_POINT = 2.0
BAND = 0.5

SPLIT_ALPHAS = (0.05, 0.1, 0.25, 0.5, 1.0)
"""Levels of the Achab-Neu safe-policy sweep (vmapped)."""


@dataclasses.dataclass(frozen=True)
class Budget(tables.Budget):
    """Sizes of one budget.

    Attributes:
      num_atoms: return atoms of the exact DP.
      num_stocks: grid stocks of the exact DP.
      iters: DP sweeps (value iteration; the same again for the evaluation).
      mc_episodes: Monte Carlo episodes per exact policy and per deep seed.
      horizon: Monte Carlo steps per episode (gamma^horizon is negligible).
      deep_seeds: seeds of the deep agent (vmapped).
      deep_iters: training iterations of the deep agent (x 16 envs = steps).
      deep_atoms: quantiles of the deep agent.
    """

    num_atoms: int
    num_stocks: int
    iters: int
    mc_episodes: int
    horizon: int
    deep_seeds: int
    deep_iters: int
    deep_atoms: int


BUDGETS: dict[str, Budget] = tables.budget_set(
    Budget(31, 21, 30, 200, 60, 1, 100, 11, name="tiny"),
    Budget(301, 81, 150, 20_000, 200, 2, 4_000, 51, name="small"),
    Budget(601, 161, 300, 100_000, 200, 5, 20_000, 101, name="full"),
)
"""Budgets (``--budget``)."""

_NUM_ENVS = 16


# ------------------------------------------------------------------------ statistics


def law_stats(support: np.ndarray, law: np.ndarray, task: str) -> dict[str, float]:
    """Return the task's three statistics of a categorical return law."""
    support = np.asarray(support, np.float64)
    law = np.asarray(law, np.float64)
    law = law / law.sum()
    mean = float(np.sum(support * law))
    if task == "cliff":
        order = np.argsort(support)
        x, p = support[order], law[order]
        before = np.concatenate([[0.0], np.cumsum(p)[:-1]])
        taken = np.clip(CLIFF_ALPHA - before, 0.0, p)
        cvar = float(np.sum(taken * x) / CLIFF_ALPHA)
        reach = float(np.sum(law[support >= CLIFF_THRESHOLD - 1e-9]))
        return {"mean": mean, "cvar": cvar, "p_reach": reach}
    gap = np.abs(support - SET_POINT)
    return {
        "mean": mean,
        "abs_dev": float(np.sum(law * gap)),
        "p_band": float(np.sum(law[gap <= BAND + 1e-9])),
    }


def sample_stats(g: np.ndarray, task: str) -> dict[str, float]:
    """Return the task's three statistics of a sample of discounted returns."""
    g = np.asarray(g, np.float64)
    return law_stats(g, np.full(g.shape, 1.0 / len(g)), task)


def _sample_ci(g: np.ndarray, task: str, seed: int) -> dict[str, tuple[float, float]]:
    """95% CIs: normal for means/probabilities, bootstrap for CVaR."""
    g = np.asarray(g, np.float64)
    n = len(g)
    stats = sample_stats(g, task)
    out = {}
    for name, value in stats.items():
        if name == "cvar":
            rng = np.random.default_rng(seed)
            boots = [
                sample_stats(g[rng.integers(0, n, n)], task)["cvar"] for _ in range(200)
            ]
            out[name] = (
                float(np.quantile(boots, 0.025)),
                float(np.quantile(boots, 0.975)),
            )
            continue
        if name in ("p_reach", "p_band"):
            se = np.sqrt(max(value * (1 - value), 1e-12) / n)
        elif name == "abs_dev":
            se = np.std(np.abs(g - SET_POINT), ddof=1) / np.sqrt(n)
        else:
            se = np.std(g, ddof=1) / np.sqrt(n)
        out[name] = (value - 1.96 * se, value + 1.96 * se)
    return out


# ---------------------------------------------------------------------------- exact


def _dp_config(budget: Budget, task: str, objective: str) -> ddp.Config:
    """Grids per task and objective.

    The stock grid only needs the stocks the objective can visit: the cliff's
    threshold problem starts at ``c_0 = 7.7`` and every reward is ``<= 0``, so
    stocks below ``-2.3`` have lost already; a finer grid there (spacing
    ``0.4``/``0.1``/``0.05``, with ``c_0`` on the grid) keeps the rounding of
    the policy's stock memory small. The mean objective ignores the stock.
    """
    num_stocks = budget.num_stocks
    if task == "cliff":
        grids = {"v_min": -30.0, "v_max": 0.0, "stock_min": -10.0, "stock_max": 30.0}
        if objective == "threshold":
            grids.update(stock_min=-2.3, stock_max=9.7)
            num_stocks = (budget.num_stocks - 1) * 3 // 2 + 1
    else:
        grids = {"v_min": 0.0, "v_max": 12.0, "stock_min": -12.0, "stock_max": 4.0}
    if objective == "mean":
        num_stocks = 2
    return ddp.Config(
        objective=objective,
        utility="neg_abs",
        num_atoms=budget.num_atoms,
        num_stocks=num_stocks,
        iters_per_chunk=budget.iters,
        eval_iters=budget.iters,
        alpha=CLIFF_ALPHA,
        threshold=CLIFF_THRESHOLD,
        set_point=SET_POINT,
        **grids,
    )


def _policies(task: str) -> list[tuple[str, str]]:
    """``(label, objective)`` rows of a task."""
    if task == "cliff":
        return [
            ("mean-optimal", "mean"),
            (f"CVaR_{CLIFF_ALPHA:g}-optimal", "cvar"),
            (f"P(G >= {CLIFF_THRESHOLD:g})-optimal", "threshold"),
        ]
    return [
        ("mean-optimal", "mean"),
        (f"homeostatic-optimal (set point {SET_POINT:g})", "homeostatic"),
        ("best stock-blind (stationary)", "markov"),
    ]


def _task_env(task: str, max_steps: int) -> tuple[Any, Any, Any]:
    if task == "cliff":
        env, params = risk.make_cliff_env(max_steps=max_steps, **CLIFF)
    else:
        env, params = risk.make_homeostasis_env(max_steps=max_steps, **HOMEOSTASIS)
    return env, params, params.mdp


def _markov_best(mdp: Any, config: ddp.Config) -> tuple[np.ndarray, np.ndarray, float]:
    """Best stationary stock-blind policy for the homeostatic objective.

    Only the idle state's choice matters in :func:`jaxrl.envs.risk.homeostasis`; the
    search is over ``pi(forage | idle)`` on a grid of 21 probabilities
    (stochastic policies included), each evaluated exactly.
    """

    @jax.jit
    def evaluate(p_forage: Any) -> tuple[Any, Any, Any]:
        probs = jnp.zeros((mdp.num_states, mdp.num_actions)).at[:, 0].set(1.0)
        probs = probs.at[0].set(jnp.stack([1.0 - p_forage, p_forage]))
        laws = ddp.evaluate(mdp, probs, config)
        law = ops_ddp.initial_return_law(
            mdp, laws, probs, config.stocks, config.initial_stock
        )
        value = jnp.sum(law * -jnp.abs(config.support - config.set_point))
        return value, law, probs

    best = None
    for p in np.linspace(0.0, 1.0, 21):
        value, law, probs = evaluate(jnp.float32(p))
        if best is None or float(value) > best[2]:
            best = (np.asarray(probs), np.asarray(law), float(value))
    return best


def _exact_and_mc(task: str, budget: Budget, key: Any, log: Any) -> list[dict]:
    env, params, mdp = _task_env(task, budget.horizon)
    rows = []
    keys = jax.random.split(key, len(_policies(task)))
    for (label, objective), k in zip(_policies(task), keys, strict=True):
        t0 = time.perf_counter()
        config = _dp_config(
            budget, task, "homeostatic" if objective == "markov" else objective
        )
        if objective == "markov":
            policy, law, _ = _markov_best(mdp, config)
            stock0 = float(config.initial_stock)
        else:
            sol = jax.jit(ddp.solve, static_argnums=1)(mdp, config)
            policy, law, stock0 = (
                np.asarray(sol.policy),
                np.asarray(sol.law),
                float(sol.stock0),
            )
        table = jnp.asarray(policy)  # int [S, K], or [S, A] probabilities (markov)

        def episode(kk: Any, table: Any = table, c: Any = config, s0=stock0):
            out = ddp.rollout(kk, env, params, table, c, s0, budget.horizon)
            return out["return"]

        keys = jax.random.split(k, budget.mc_episodes)
        g = np.asarray(jax.jit(jax.vmap(episode))(keys), np.float64)
        support = np.asarray(config.support)
        exact = law_stats(support, law, task)
        mc = sample_stats(g, task)
        ci = _sample_ci(g, task, seed=0)
        rows.append(
            {
                "task": task,
                "policy": label,
                "objective": objective,
                "method": "exact DP",
                **exact,
                "stock0": stock0,
                "law": (support.tolist(), np.asarray(law).tolist()),
            }
        )
        rows.append(
            {
                "task": task,
                "policy": label,
                "objective": objective,
                "method": f"Monte Carlo ({budget.mc_episodes} episodes)",
                **mc,
                **{f"{k}_ci": v for k, v in ci.items()},
                "stock0": stock0,
            }
        )
        print(
            f"[{TABLE}] {task}/{label}: exact "
            + ", ".join(f"{n}={v:.3f}" for n, v in exact.items())
            + " | MC "
            + ", ".join(f"{n}={v:.3f}" for n, v in mc.items())
            + f" ({time.perf_counter() - t0:.0f}s)",
            file=log,
        )
    return rows


# ----------------------------------------------------- Achab-Neu worst/best case


def _split_labels() -> list[tuple[str, str]]:
    """``(label, objective)`` of the two substate policies (row 0 safe, 1 risky)."""
    return [
        (f"Achab-Neu safe (argmax Q^-, alpha {CLIFF_ALPHA:g})", "split-safe"),
        (f"Achab-Neu risky (argmax Q^+, alpha {CLIFF_ALPHA:g})", "split-risky"),
    ]


def _achab_neu(budget: Budget, key: Any, log: Any) -> list[dict]:
    """Cliff rows of the worst-/best-case substate DP, and its sweep over alpha.

    The safe and risky policies of :func:`ddp.split_solve` at ``CLIFF_ALPHA``
    (the same ``alpha`` as the CVaR row), each with its exact law (exact DP row,
    stock-blind: ``c0`` is unused and shown as 0) and a Monte Carlo row; then the
    safe policy for every level of :data:`SPLIT_ALPHAS` in one vmapped call
    (task ``"cliff-alpha-sweep"``, exact only).
    """
    env, params, mdp = _task_env("cliff", budget.horizon)
    config = _dp_config(budget, "cliff", "mean")  # grids; the stock is unused
    t0 = time.perf_counter()
    solve = jax.jit(ddp.split_solve, static_argnums=1)
    sol = solve(mdp, config.replace(alpha=CLIFF_ALPHA))
    support = np.asarray(config.support)
    rows = []
    keys = jax.random.split(key, 2)
    for i, ((label, objective), k) in enumerate(
        zip(_split_labels(), keys, strict=True)
    ):
        probs = jax.nn.one_hot(sol.policies[i], mdp.num_actions)  # [S, A] stock-blind

        def episode(kk: Any, probs: Any = probs) -> Any:
            out = ddp.rollout(kk, env, params, probs, config, 0.0, budget.horizon)
            return out["return"]

        g = np.asarray(
            jax.jit(jax.vmap(episode))(jax.random.split(k, budget.mc_episodes)),
            np.float64,
        )
        law = np.asarray(sol.laws[i])
        exact = law_stats(support, law, "cliff")
        common = {
            "task": "cliff",
            "policy": label,
            "objective": objective,
            "stock0": 0.0,
            "split_worst": float(sol.split_values[i, 0]),
            "split_best": float(sol.split_values[i, 1]),
        }
        rows.append(
            {
                **common,
                "method": "exact DP",
                **exact,
                "law": (support.tolist(), law.tolist()),
            }
        )
        ci = _sample_ci(g, "cliff", seed=0)
        rows.append(
            {
                **common,
                "method": f"Monte Carlo ({budget.mc_episodes} episodes)",
                **sample_stats(g, "cliff"),
                **{f"{n}_ci": v for n, v in ci.items()},
            }
        )
        print(
            f"[{TABLE}] cliff/{label}: exact "
            + ", ".join(f"{n}={v:.3f}" for n, v in exact.items())
            + f", V-={common['split_worst']:.3f}"
            + " | MC "
            + ", ".join(f"{n}={v:.3f}" for n, v in sample_stats(g, "cliff").items()),
            file=log,
        )
    # SWEEP the level: one vmapped call over a traced alpha.
    sweep = jax.jit(jax.vmap(lambda a: ddp.split_solve(mdp, config.replace(alpha=a))))(
        jnp.asarray(SPLIT_ALPHAS, jnp.float32)
    )
    for j, alpha in enumerate(SPLIT_ALPHAS):
        law = np.asarray(sweep.laws[j, 0])
        rows.append(
            {
                "task": "cliff-alpha-sweep",
                "policy": f"Achab-Neu safe, alpha {alpha:g}",
                "objective": "split-safe",
                "method": "exact DP",
                "stock0": 0.0,
                "alpha": alpha,
                "split_worst": float(sweep.split_values[j, 0, 0]),
                "cvar_alpha": float(sweep.cvar[j, 0]),
                **law_stats(support, law, "cliff"),
            }
        )
    print(f"[{TABLE}] cliff/Achab-Neu ({time.perf_counter() - t0:.0f}s)", file=log)
    return rows


# ----------------------------------------------------------------------------- deep


def deep_config(task: str, objective: str, budget: Budget) -> dist_dqn.Config:
    """The ``dist_dqn`` config of one task and objective."""
    base = dist_dqn.Config(
        head="quantile",
        num_atoms=budget.deep_atoms,
        num_envs=_NUM_ENVS,
        buffer_size=50_000,
        batch_size=64,
        hidden_sizes=(64, 64),
        num_chunks=4,
        iters_per_chunk=max(budget.deep_iters // 4, 1),
        learning_starts=min(2_000, budget.deep_iters * _NUM_ENVS // 4),
        num_eval_episodes=min(budget.mc_episodes, 2_000),
        eval_max_steps=budget.horizon,
        lr=1e-3,
        gamma=CLIFF["gamma"] if task == "cliff" else HOMEOSTASIS["gamma"],
        eps_start=1.0,
        eps_end=0.05,
        eps_decay=0.5,
        target_update_period=100,
        objective=objective,
        utility="neg_abs",
        alpha=CLIFF_ALPHA,
        threshold=CLIFF_THRESHOLD,
        set_point=SET_POINT,
        stock_scale=10.0,
    )
    ranges = {
        "cvar": (0.0, 20.0),
        "threshold": (-CLIFF_THRESHOLD - 4.0, -CLIFF_THRESHOLD + 4.0),
        "homeostatic": (-SET_POINT - 2.0, -SET_POINT + 2.0),
    }
    low, high = ranges.get(objective, (0.0, 0.0))
    return base.replace(stock0_low=low, stock0_high=high, num_stock0=41)


def _deep(task: str, budget: Budget, key: Any, log: Any) -> list[dict]:
    env, params, _ = _task_env(task, budget.horizon)
    rows = []
    objectives = [o for _, o in _policies(task) if o != "markov"]
    labels = {o: label for label, o in _policies(task)}
    keys = jax.random.split(key, len(objectives))
    for objective, k in zip(objectives, keys, strict=True):
        t0 = time.perf_counter()
        config = deep_config(task, objective, budget)
        k_train, k_eval = jax.random.split(k)
        train = jax.jit(jax.vmap(dist_dqn.make_train(config, env, params)))
        state, _ = train(jax.random.split(k_train, budget.deep_seeds))
        evaluate = jax.jit(
            jax.vmap(
                lambda p, kk, c=config: dist_dqn.evaluate(
                    p, kk, c, env, params, budget.mc_episodes, budget.horizon
                )
            )
        )
        out = evaluate(state.params, jax.random.split(k_eval, budget.deep_seeds))
        g = np.asarray(out["discounted_return"], np.float64)  # [seeds, episodes]
        per_seed = [sample_stats(row, task) for row in g]
        names = list(per_seed[0])
        row = {
            "task": task,
            "policy": labels[objective],
            "objective": objective,
            "method": f"deep dist_dqn ({budget.deep_seeds} seeds)",
            "stock0": float(np.mean(np.asarray(out["stock0"]))),
            "law": (None, g.reshape(-1).tolist()),
        }
        for name in names:
            values = np.array([s[name] for s in per_seed])
            row[name] = float(values.mean())
            if len(values) > 1:
                low, high = jmetrics.bootstrap_ci(values)
                row[f"{name}_ci"] = (float(low), float(high))
        rows.append(row)
        print(
            f"[{TABLE}] {task}/{labels[objective]}: deep "
            + ", ".join(f"{n}={row[n]:.3f}" for n in names)
            + f" ({time.perf_counter() - t0:.0f}s)",
            file=log,
        )
    return rows


# ---------------------------------------------------------------------------- output

_COLUMNS = {
    "cliff": (
        ("mean", "E G"),
        ("cvar", f"CVaR_{CLIFF_ALPHA:g}(G)"),
        ("p_reach", f"P(G >= {CLIFF_THRESHOLD:g})"),
    ),
    "homeostasis": (
        ("mean", "E G"),
        ("abs_dev", f"E|G - {SET_POINT:g}|"),
        ("p_band", f"P(|G - {SET_POINT:g}| <= {BAND:g})"),
    ),
}


def _cell(row: dict[str, Any], name: str) -> str:
    text = f"{row[name]:.3f}"
    ci = row.get(f"{name}_ci")
    if ci is not None:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def _markdown(
    budget_name: str, budget: Budget, rows: list[dict], wall: float, seed: int
):
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# Table `{TABLE}` (budget `{budget_name}`)\n\n",
        "Stock-augmented distributional DP (`jaxrl.agents.distributional_dp`), Monte "
        "Carlo rollouts of the same policies executed with their stock memory, and "
        "the deep stock-augmented distributional DQN (`jaxrl.agents.dist_dqn`, quantile "
        "head) trained for the same objectives. `G` is the discounted return. "
        "Brackets: 95% CIs (Monte Carlo: normal, CVaR bootstrap; deep: bootstrap "
        "over seeds of the per-seed statistics).\n\n",
        f"* Exact DP: {budget.num_atoms} return atoms, {budget.num_stocks} grid "
        f"stocks, {budget.iters} sweeps (+ {budget.iters} evaluation sweeps).\n",
        f"* Monte Carlo: {budget.mc_episodes} episodes of {budget.horizon} steps per "
        "policy.\n",
        f"* Deep: {budget.deep_seeds} seeds x {budget.deep_iters * _NUM_ENVS} env "
        f"steps, {budget.deep_atoms} quantiles; evaluated on {budget.mc_episodes} "
        "episodes per seed.\n\n",
        f"Generated {now} by `jaxrl reproduce --table {TABLE} --budget "
        f"{budget_name}` (seed {seed}) in {wall:.0f}s on {jax.default_backend()} "
        f"(jax {jax.__version__}).\n\n",
    ]
    titles = {
        "cliff": "## Cliff gridworld: risky shortcut vs safe path\n\n"
        f"Slip {CLIFF['slip']:g}, gamma {CLIFF['gamma']:g}, -1 per move, trap "
        f"{CLIFF['trap_reward']:g} (`jaxrl.envs.risk.cliff_gridworld`).\n\n",
        "homeostasis": "## Homeostatic regulation: keep the intake near a set point\n\n"
        f"Foraging finds food w.p. {HOMEOSTASIS['find_prob']:g}, the day ends w.p. "
        f"{HOMEOSTASIS['end_prob']:g} per step, gamma {HOMEOSTASIS['gamma']:g}; "
        f"objective E f(G - {SET_POINT:g}) with f(x) = -|x| "
        "(`jaxrl.envs.risk.homeostasis`).\n\n",
    }
    for task in ("cliff", "homeostasis"):
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        cols = _COLUMNS[task]
        parts.append(titles[task])
        parts.append(
            "| policy | method | " + " | ".join(t for _, t in cols) + " | c0 |\n"
        )
        parts.append("|---|---|" + "---|" * len(cols) + "---|\n")
        for r in task_rows:
            cells = " | ".join(_cell(r, n) for n, _ in cols)
            parts.append(
                f"| {r['policy']} | {r['method']} | {cells} | {r['stock0']:.2f} |\n"
            )
        parts.append("\n")
        if task == "cliff":
            parts += _split_markdown(rows)
    return parts


def _split_markdown(rows: list[dict]) -> list[str]:
    """The Achab-Neu notes and alpha sweep under the cliff table (if present)."""
    exact = [
        r
        for r in rows
        if r["objective"].startswith("split-")
        and r["task"] == "cliff"
        and r["method"] == "exact DP"
    ]
    sweep = [r for r in rows if r["task"] == "cliff-alpha-sweep"]
    if not exact:
        return []
    parts = [
        "Achab-Neu rows: worst-/best-case substate DP (`ddp.split_solve`, our "
        "reconstruction, `jaxrl.ops.split_dp`), stock-blind Markov policies. "
        "Their own substate values at the start (worst case V-, best case V+): "
        + "; ".join(
            f"{r['objective'].split('-')[1]}: V- = {r['split_worst']:.3f}, "
            f"V+ = {r['split_best']:.3f}"
            for r in exact
        )
        + ".\n\n",
    ]
    if sweep:
        parts += [
            "Safe policy (argmax Q^-) across the level alpha (one vmapped call; "
            "exact laws). Derived bound: CVaR_alpha(G) <= V- <= E G.\n\n",
            "| alpha | V-_alpha (own) | CVaR_alpha(G) | E G | "
            f"CVaR_{CLIFF_ALPHA:g}(G) | P(G >= {CLIFF_THRESHOLD:g}) |\n",
            "|---|---|---|---|---|---|\n",
        ]
        for r in sweep:
            parts.append(
                f"| {r['alpha']:g} | {r['split_worst']:.3f} | {r['cvar_alpha']:.3f} "
                f"| {r['mean']:.3f} | {r['cvar']:.3f} | {r['p_reach']:.3f} |\n"
            )
        parts.append("\n")
    return parts


def _plot(path: str, rows: list[dict]) -> None:
    from jaxrl.scripts.plotting import Figure, save_figure

    fig = Figure(figsize=(12, 4.5))
    for i, task in enumerate(("cliff", "homeostasis")):
        ax = fig.add_subplot(1, 2, i + 1)
        exact = [r for r in rows if r["task"] == task and r["method"] == "exact DP"]
        deep = [r for r in rows if r["task"] == task and r["method"].startswith("deep")]
        for j, r in enumerate(exact):
            z, p = (np.asarray(x) for x in r["law"])
            cdf = np.cumsum(p)
            ax.step(z, cdf, where="post", color=f"C{j}", label=f"{r['policy']} (exact)")
        for r in deep:
            j = [e["objective"] for e in exact].index(r["objective"])
            g = np.sort(np.asarray(r["law"][1]))
            ax.step(
                g,
                np.arange(1, len(g) + 1) / len(g),
                where="post",
                color=f"C{j}",
                linestyle="--",
                label=f"{r['policy']} (deep)",
            )
        if task == "cliff":
            ax.axvline(CLIFF_THRESHOLD, color="gray", linewidth=0.8)
            ax.set_xlim(-24, -5)
        else:
            ax.axvline(SET_POINT, color="gray", linewidth=0.8)
            ax.set_xlim(-0.2, 8)
        ax.set_title(f"{task}: CDF of the discounted return")
        ax.set_xlabel("G")
        ax.set_ylabel("P(return <= G)")
        ax.legend(fontsize=7)
    save_figure(fig, path)


def run(
    budget: str = "small",
    *,
    out: str = "results",
    seed: int = 0,
    resume: bool = False,
    quiet: bool = False,
    log: Any = None,
) -> dict[str, Any]:
    """Build the ``distributional-dp`` table (its ``jaxrl.scripts.tables.TABLES`` runner).

    Args:
      budget: ``"tiny"``, ``"small"`` or ``"full"``.
      out: results root; writes ``<out>/distributional-dp/``.
      seed: root seed.
      resume: accepted for the common signature (everything is recomputed).
      quiet: accepted for the common signature.
      log: stream for status lines (default stderr).

    Returns:
      ``{"dir", "rows", "wall_time"}``.

    Raises:
      ConfigError: on an unknown budget.
    """
    del resume, quiet
    log = sys.stderr if log is None else log
    sizes = tables.get_budget(BUDGETS, budget, TABLE)
    table_dir = os.path.join(out, TABLE)
    os.makedirs(table_dir, exist_ok=True)
    start = time.perf_counter()
    rows: list[dict] = []
    k_tasks = jax.random.split(jax.random.key(seed), 2)
    for task, key in zip(("cliff", "homeostasis"), k_tasks, strict=True):
        k_exact, k_deep = jax.random.split(key)
        task_rows = _exact_and_mc(task, sizes, k_exact, log)
        task_rows += _deep(task, sizes, k_deep, log)
        order = {label: i for i, (label, _) in enumerate(_policies(task))}
        rows += sorted(task_rows, key=lambda r: order[r["policy"]])
        if task == "cliff":  # own key: the rows above keep their numbers
            k_split = jax.random.fold_in(jax.random.key(seed), 2)
            rows += _achab_neu(sizes, k_split, log)
    wall = time.perf_counter() - start
    _plot(os.path.join(table_dir, "return_laws.png"), rows)
    flat = [{k: v for k, v in r.items() if k != "law"} for r in rows]
    columns = ["task", "policy", "objective", "method", "stock0"]
    columns += sorted({k for r in flat for k in r} - set(columns))
    csv_rows = [
        {k: (json.dumps(v) if isinstance(v, tuple) else v) for k, v in r.items()}
        for r in flat
    ]
    jlog.write_csv_atomic(os.path.join(table_dir, "table.csv"), csv_rows, columns)
    jlog.write_atomic(
        os.path.join(table_dir, "table.md"), _markdown(budget, sizes, rows, wall, seed)
    )
    jlog.write_atomic(
        os.path.join(table_dir, "results.json"),
        [
            json.dumps(
                {"budget": sizes.sizes(), "seed": seed, "rows": flat},
                indent=1,
            )
        ],
    )
    return {"dir": table_dir, "rows": flat, "wall_time": wall}
