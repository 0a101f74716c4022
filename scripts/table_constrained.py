"""``jaxrl reproduce --table constrained``: GDA vs ReLOAD, tabular and deep.

Three parts (ALGORITHMS.md section 5):

1. **tabular**: random CMDPs (``jaxrl.envs.finite_mdp.random_cmdp``, budget in the
   middle of each CMDP's binding range ``budget_range``) x step sizes
   (``eta_pi = eta_lambda = eta``) x methods (``jaxrl.agents.cmdp_tabular``: exact GDA
   and ReLOAD), ONE jitted ``vmap`` call. Each last iterate is compared with
   the exact LP solution (``jaxrl.scripts.cmdp_lp.solve_cmdp_lp``): occupancy L1
   distance ``sum |d_K - d*|``, policy L1 distance (occupancy-weighted,
   ``sum_s d*(s) sum_a |pi_K - pi*|``) and ``|lambda_K - lambda*|``; mean and
   bootstrap CI over CMDPs. GDA's last iterate keeps cycling, ReLOAD's
   converges.
2. ``iterates.png``: ``lambda_k`` and ``J_c(pi_k)`` against ``k`` for GDA and
   ReLOAD on the first CMDP (the oscillation picture), with ``lambda*`` and
   the budget.
3. **deep**: on ``CartPole-Constrained-v0`` at several budgets, two policy
   players, each ``lagrangian`` and ``reload`` plus the unconstrained agent
   (``eta_lambda = 0``): ``jaxrl.agents.constrained`` (``base = mdqn``, seeds in one
   jitted call per budget and method) and ``jaxrl.agents.ppo_lagrangian``
   (``base = ppo``, with a cost critic; budgets x {unconstrained, lagrangian}
   x seeds in one jitted call, ReLOAD in a second); final greedy return and
   episode cost (mean of the last evaluations) over seeds. Next to them
   ``jaxrl.agents.cat`` (CaT, constraints as terminations, on the same PPO base,
   same rollouts and seeds as the PPO rows): it has no budget, so one run per
   seed serves every budget's row (``lambda_final`` is NaN: no multiplier).
4. **deep, continuous actions**: on ``Pendulum-Constrained-v0`` (a speed limit)
   at ``cal_budgets``, ``jaxrl.agents.cal`` (CAL: ensemble UCB cost estimate and
   augmented Lagrangian on SAC) vs SAC-Lagrangian (the same agent with one cost
   critic, ``k = c = 0``); budgets x seeds in one jitted call per agent; final
   greedy return and cost, and the mean cost of training episodes.

Writes ``<out>/constrained/``: ``table.md``, ``tabular.csv``, ``deep.csv``,
``deep_continuous.csv``, ``iterates.png`` and ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import envs
from jaxrl import logging as jlogging
from jaxrl import metrics as jmetrics
from jaxrl.agents import cal, cat, cmdp_tabular, ppo_lagrangian
from jaxrl.agents import constrained as deep
from jaxrl.agents.cmdp_tabular import lp as cmdp_lp
from jaxrl.config import stack_configs
from jaxrl.envs import finite_mdp as fm
from jaxrl.scripts import presets, tables

__all__ = [
    "TABLE",
    "Budget",
    "BUDGETS",
    "run_tabular",
    "run_deep",
    "run_deep_ppo",
    "run_deep_cat",
    "run_deep_cal",
    "run",
]

TABLE = "constrained"
METHODS = ("gda", "reload")


@dataclasses.dataclass(frozen=True)
class Budget(tables.Budget):
    """Sizes of one run of the table."""

    num_cmdps: int
    num_states: int
    num_actions: int
    iters: int
    step_sizes: tuple[float, ...]
    deep_seeds: int
    deep_chunks: int
    deep_iters_per_chunk: int
    deep_budgets: tuple[float, ...]
    x_band: float = 1.0
    ppo_chunks: int = 2  # PPO-Lagrangian: chunks of ppo_iters_per_chunk rollouts
    ppo_iters_per_chunk: int = 2  # (one rollout = 8 envs x 128 steps)
    cal_chunks: int = 1  # CAL vs SAC-Lagrangian on Pendulum-Constrained-v0:
    cal_iters_per_chunk: int = 40  # chunks of env steps (one env)
    cal_budgets: tuple[float, ...] = (5.0,)  # steps above the speed limit


BUDGETS: dict[str, Budget] = tables.budget_set(
    Budget(3, 4, 2, 300, (0.1, 0.5), 1, 2, 40, (25.0,), name="tiny"),
    Budget(16, 6, 3, 5000, (0.1, 0.5, 1.0), 2, 10, 1000, (10.0, 50.0),
           ppo_chunks=10, ppo_iters_per_chunk=20, cal_chunks=6,
           cal_iters_per_chunk=1000, cal_budgets=(2.0, 8.0), name="small"),  # 205k steps
    Budget(64, 10, 3, 20000, (0.05, 0.1, 0.5, 1.0, 2.0), 5, 25, 1000,
           (5.0, 10.0, 25.0, 50.0), ppo_chunks=10, ppo_iters_per_chunk=49,
           cal_chunks=10, cal_iters_per_chunk=2000, cal_budgets=(0.0, 2.0, 5.0, 10.0),
           name="full"),
)  # fmt: skip
"""Budgets (``--budget``)."""


def _cmdps(key: Any, budget: Budget):
    keys = jax.random.split(key, budget.num_cmdps)
    make = lambda k: fm.random_cmdp(k, budget.num_states, budget.num_actions, 2)
    mdps = jax.vmap(make)(keys)
    lo, hi = jax.vmap(cmdp_tabular.budget_range)(mdps)
    return mdps, 0.5 * (lo + hi)


def run_tabular(key: Any, budget: Budget) -> tuple[list[dict], dict[str, Any]]:
    """GDA vs ReLOAD last iterates vs the LP solution (one jitted vmapped call).

    Returns:
      ``(rows, trace)``: table rows per method x step size and the iterate trace
      (``lambda``, ``j_c`` ``[2 methods, K]``, ``lambda*``, budget) of CMDP 0 at
      the first step size >= 0.5 (else the last).
    """
    mdps, budgets = _cmdps(key, budget)
    etas = jnp.asarray(budget.step_sizes, jnp.float32)

    def one(method: str, mdp, b, eta):
        config = presets.get_preset("cmdp_tabular", "random-cmdp").make_config(
            method=method, budget=b, eta_pi=eta, eta_lambda=eta
        )
        state, metrics, _ = cmdp_tabular.primal_dual(
            mdp, config, jax.random.key(0), budget.iters
        )
        ev = cmdp_tabular.evaluate(mdp, cmdp_tabular.policy(state.params))
        return {
            "occupancy": ev.occupancy,
            "policy": cmdp_tabular.policy(state.params),
            "lam": state.params.lam,
            "lam_path": metrics["lagrange/lambda"],
            "j_c_path": metrics["cmdp/j_c"],
        }

    def all_methods(mdp, b, eta):
        return [one(m, mdp, b, eta) for m in METHODS]

    sweep = jax.jit(
        jax.vmap(jax.vmap(all_methods, in_axes=(None, None, 0)), in_axes=(0, 0, None))
    )
    out = jax.device_get(sweep(mdps, budgets, etas))  # list over methods of [N, E, ...]
    sols = []
    for n in range(budget.num_cmdps):
        mdp_n = jax.tree.map(lambda x, n=n: np.asarray(x[n], np.float64), mdps)
        sols.append(cmdp_lp.solve_cmdp_lp(mdp_n, float(budgets[n])))
    rows = []
    for m, method in enumerate(METHODS):
        for e, eta in enumerate(budget.step_sizes):
            occ, pol, lam = [], [], []
            for n, sol in enumerate(sols):
                d_k = out[m]["occupancy"][n, e]
                occ.append(np.abs(d_k - sol["occupancy"]).sum())
                d_s = sol["occupancy"].sum(-1)
                pol.append(
                    np.sum(d_s * np.abs(out[m]["policy"][n, e] - sol["policy"]).sum(-1))
                )
                lam.append(abs(float(out[m]["lam"][n, e]) - sol["lam"]))
            row = {"method": method, "eta": eta, "iters": budget.iters}
            for name, values in (
                ("occupancy_l1", occ),
                ("policy_l1", pol),
                ("lambda_err", lam),
            ):
                s = jmetrics.summarize(np.asarray(values))
                row[f"{name}_mean"] = s["mean"]
                row[f"{name}_ci_low"] = s["ci_low"]
                row[f"{name}_ci_high"] = s["ci_high"]
            rows.append(row)
    big = [e for e, eta in enumerate(budget.step_sizes) if eta >= 0.5]
    e = big[0] if big else len(budget.step_sizes) - 1
    trace = {
        "eta": budget.step_sizes[e],
        "lambda": np.stack([out[m]["lam_path"][0, e] for m in range(2)]),
        "j_c": np.stack([out[m]["j_c_path"][0, e] for m in range(2)]),
        "lambda_star": sols[0]["lam"],
        "budget": float(budgets[0]),
    }
    return rows, trace


def plot_iterates(trace: dict[str, Any], path: str) -> None:
    """Save lambda_k and J_c(pi_k) vs k for GDA and ReLOAD (one CMDP)."""
    from jaxrl.scripts.plotting import Figure, save_figure

    fig = Figure(figsize=(9, 3.5))
    ax_l, ax_c = fig.subplots(1, 2)
    for m, method in enumerate(METHODS):
        ax_l.plot(trace["lambda"][m], label=method, lw=1)
        ax_c.plot(trace["j_c"][m], label=method, lw=1)
    ax_l.axhline(trace["lambda_star"], color="k", ls="--", lw=1, label="lambda* (LP)")
    ax_c.axhline(trace["budget"], color="k", ls="--", lw=1, label="budget b")
    ax_l.set(
        xlabel="iteration k",
        ylabel="lambda_k",
        title=f"multiplier (eta={trace['eta']})",
    )
    ax_c.set(xlabel="iteration k", ylabel="J_c(pi_k)", title="cost of the iterate")
    ax_l.legend(fontsize=8)
    ax_c.legend(fontsize=8)
    save_figure(fig, path)


def run_deep(key: Any, budget: Budget) -> list[dict]:
    """Constrained M-DQN on CartPole-Constrained-v0: return and cost vs budget."""
    env, params = envs.make("CartPole-Constrained-v0")
    lagrangian = presets.get_preset("constrained", "cartpole")
    reload = presets.get_preset("constrained", "cartpole-reload")
    base = lagrangian.make_config().base.replace(
        num_chunks=budget.deep_chunks, iters_per_chunk=budget.deep_iters_per_chunk
    )
    if budget.deep_iters_per_chunk < 1000:  # tiny: a smoke run
        base = base.replace(learning_starts=16, buffer_size=256, num_eval_episodes=2)
    agents_ = (
        ("unconstrained", lagrangian.make_config(base=base, eta_lambda=0.0)),
        ("lagrangian", lagrangian.make_config(base=base)),
        ("reload", reload.make_config(base=base)),
    )
    rows = []
    keys = jax.random.split(key, budget.deep_seeds)
    period = base.iters_per_chunk
    for b in budget.deep_budgets:
        p = params.replace(cost_limit=b, x_band=budget.x_band)
        for name, config in agents_:
            # methods are static: one jitted call per method, vmapped over seeds.
            train = jax.jit(jax.vmap(deep.make_train(config, env, p)))
            _, metrics = train(jax.random.clone(keys))  # same seeds for all
            last = min(3, base.num_chunks)
            ret = np.asarray(metrics["eval/return"][:, period - 1 :: period])[:, -last:]
            cost = np.asarray(metrics["eval/cost"][:, period - 1 :: period])[:, -last:]
            lam = np.asarray(metrics["lagrange/lambda"][:, -1])
            rows.append(
                _deep_row(
                    b,
                    "mdqn",
                    name,
                    budget,
                    base.total_env_steps,
                    ret.mean(-1),
                    cost.mean(-1),
                    lam,
                )
            )
    return rows


def _deep_row(
    b: float,
    base: str,
    name: str,
    budget: Budget,
    steps: int,
    ret: np.ndarray,
    cost: np.ndarray,
    lam: np.ndarray,
) -> dict:
    r, c = jmetrics.summarize(ret), jmetrics.summarize(cost)
    return {
        "budget": b, "base": base, "agent": name, "seeds": budget.deep_seeds,
        "env_steps": steps,
        "return_mean": r["mean"], "return_ci_low": r["ci_low"],
        "return_ci_high": r["ci_high"], "cost_mean": c["mean"],
        "cost_ci_low": c["ci_low"], "cost_ci_high": c["ci_high"],
        "lambda_final": float(lam.mean()),
        "within_budget": float(np.mean(cost <= b)),
    }  # fmt: skip


def run_deep_ppo(key: Any, budget: Budget) -> list[dict]:
    """PPO-Lagrangian and PPO-ReLOAD on CartPole-Constrained-v0: return, cost vs budget.

    ``jaxrl.agents.ppo_lagrangian.cartpole_config`` (8 environments x 128 steps per
    rollout) with ``ppo_chunks * ppo_iters_per_chunk`` rollouts. Budgets (a
    ``vmap`` over the env params) x {unconstrained (``eta_lambda = 0``),
    lagrangian} x seeds is one jitted call, the same for ReLOAD (its method is
    static).
    """
    env, params = envs.make("CartPole-Constrained-v0")
    lagrangian = presets.get_preset("ppo_lagrangian", "cartpole")
    reload = presets.get_preset("ppo_lagrangian", "cartpole-reload")
    base = lagrangian.make_config().base.replace(
        num_chunks=budget.ppo_chunks, iters_per_chunk=budget.ppo_iters_per_chunk
    )
    if budget.ppo_chunks * budget.ppo_iters_per_chunk < 20:  # tiny: a smoke run
        base = base.replace(num_eval_episodes=2, eval_max_steps=100)
    else:
        base = base.replace(num_eval_episodes=8)
    groups = (
        (("unconstrained", "lagrangian"), [
            lagrangian.make_config(base=base, eta_lambda=0.0),
            lagrangian.make_config(base=base),
        ]),
        (("reload",), [reload.make_config(base=base)]),
    )  # fmt: skip
    env_params = [
        params.replace(cost_limit=b, x_band=budget.x_band) for b in budget.deep_budgets
    ]
    stacked_params = jax.tree.map(lambda *x: jnp.stack(x), *env_params)
    keys = jax.random.split(key, budget.deep_seeds)
    period = base.iters_per_chunk
    last = min(3, base.num_chunks)
    out: dict[tuple[float, str], dict] = {}

    def one(p: Any, c: ppo_lagrangian.Config, k: Any) -> dict:
        return ppo_lagrangian.make_train(c, env, p)(k)[1]

    for names, configs in groups:
        sweep = jax.vmap(jax.vmap(one, (None, None, 0)), (None, 0, None))
        sweep = jax.jit(jax.vmap(sweep, (0, None, None)))  # [budgets, configs, seeds]
        metrics = sweep(stacked_params, stack_configs(configs), jax.random.clone(keys))
        ret = np.asarray(metrics["eval/return"][..., period - 1 :: period])
        cost = np.asarray(metrics["eval/cost"][..., period - 1 :: period])
        lam = np.asarray(metrics["lagrange/lambda"][..., -1])
        for i, b in enumerate(budget.deep_budgets):
            for j, name in enumerate(names):
                out[(b, name)] = _deep_row(
                    b, "ppo", name, budget, base.total_env_steps,
                    ret[i, j][:, -last:].mean(-1), cost[i, j][:, -last:].mean(-1),
                    lam[i, j],
                )  # fmt: skip
    return [
        out[(b, name)]
        for b in budget.deep_budgets
        for name in ("unconstrained", "lagrangian", "reload")
    ]


def run_deep_cat(key: Any, budget: Budget) -> list[dict]:
    """CaT (``jaxrl.agents.cat``, preset ``cat/cartpole``) on CartPole-Constrained-v0.

    The PPO rows' base config, rollouts, evaluation and seeds (pass the same
    ``key`` as :func:`run_deep_ppo`); seeds in one jitted call. CaT does not
    read the budget, so the same run is reported in every budget's row.
    """
    env, params = envs.make("CartPole-Constrained-v0")
    preset = presets.get_preset("cat", "cartpole")
    base = preset.make_config().base.replace(
        num_chunks=budget.ppo_chunks, iters_per_chunk=budget.ppo_iters_per_chunk
    )
    if budget.ppo_chunks * budget.ppo_iters_per_chunk < 20:  # tiny: a smoke run
        base = base.replace(num_eval_episodes=2, eval_max_steps=100)
    else:
        base = base.replace(num_eval_episodes=8)
    config = preset.make_config(base=base)
    p = params.replace(x_band=budget.x_band)
    keys = jax.random.split(key, budget.deep_seeds)
    train = jax.jit(jax.vmap(lambda k: cat.make_train(config, env, p)(k)[1]))
    metrics = train(jax.random.clone(keys))
    period = base.iters_per_chunk
    last = min(3, base.num_chunks)
    ret = np.asarray(metrics["eval/return"][:, period - 1 :: period])[:, -last:]
    cost = np.asarray(metrics["eval/cost"][:, period - 1 :: period])[:, -last:]
    no_lambda = np.full(budget.deep_seeds, np.nan)
    steps = base.total_env_steps
    return [
        _deep_row(
            b, "ppo", "cat", budget, steps, ret.mean(-1), cost.mean(-1), no_lambda
        )
        for b in budget.deep_budgets
    ]


CAL_AGENTS = (("sac-lagrangian", "pendulum-lagrangian"), ("cal", "pendulum"))
"""CAL rows: (row name, ``cal`` preset); SAC-Lagrangian is CAL with E=1, k=c=0."""


def run_deep_cal(key: Any, budget: Budget) -> list[dict]:
    """CAL vs SAC-Lagrangian on Pendulum-Constrained-v0: return and cost vs budget.

    Presets ``cal/pendulum`` (E=4 cost critics, k=0.5, c=10) and
    ``cal/pendulum-lagrangian`` (E=1, k=c=0) with ``cal_chunks *
    cal_iters_per_chunk`` env steps; per agent, budgets (a ``vmap`` over the
    env params' ``cost_limit``) x seeds is one jitted call, the same seeds for
    both. Besides the final greedy return and cost (mean of the last <= 3
    evaluations) a row has ``train_cost_mean``: the mean cost of the training
    episodes that ended after the uniform-action warm-up (the paper's
    "violations during training").
    """
    env, params = envs.make("Pendulum-Constrained-v0")
    env_params = [params.replace(cost_limit=b) for b in budget.cal_budgets]
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *env_params)
    keys = jax.random.split(key, budget.deep_seeds)
    out: dict[tuple[float, str], dict] = {}
    for name, preset_name in CAL_AGENTS:
        preset = presets.get_preset("cal", preset_name)
        base = preset.make_config().base.replace(
            num_chunks=budget.cal_chunks, iters_per_chunk=budget.cal_iters_per_chunk
        )
        if budget.cal_chunks * budget.cal_iters_per_chunk < 1000:  # tiny: smoke run
            base = base.replace(
                learning_starts=16, buffer_size=256, batch_size=32,
                num_eval_episodes=2, eval_max_steps=50,
            )  # fmt: skip
        config = preset.make_config(base=base)

        def one(p: Any, k: Any, config: Any = config) -> dict:
            return cal.make_train(config, env, p)(k)[1]

        sweep = jax.jit(jax.vmap(jax.vmap(one, (None, 0)), (0, None)))
        metrics = sweep(stacked, jax.random.clone(keys))  # [budgets, seeds, T]
        period = base.iters_per_chunk
        last = min(3, base.num_chunks)
        ret = np.asarray(metrics["eval/return"][..., period - 1 :: period])
        cost = np.asarray(metrics["eval/cost"][..., period - 1 :: period])
        lam = np.asarray(metrics["lagrange/lambda"][..., -1])
        warm = np.asarray(metrics["train/env_steps"]) > base.learning_starts
        ep_cost = np.where(warm, np.asarray(metrics["episode/cost"]), np.nan)
        for i, b in enumerate(budget.cal_budgets):
            row = _deep_row(
                b, "sac", name, budget, base.total_env_steps,
                ret[i][:, -last:].mean(-1), cost[i][:, -last:].mean(-1), lam[i],
            )  # fmt: skip
            ended = ep_cost[i][np.isfinite(ep_cost[i])]  # seeds x finished episodes
            row["train_cost_mean"] = float(ended.mean()) if ended.size else np.nan
            out[(b, name)] = row
    return [out[(b, name)] for b in budget.cal_budgets for name, _ in CAL_AGENTS]


def _csv(path: str, rows: list[dict]) -> None:
    with open(path, "w") as f:
        f.write(",".join(rows[0]) + "\n")
        for row in rows:
            f.write(",".join(str(v) for v in row.values()) + "\n")


def _markdown(rows: list[dict], cols: list[str]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def run(
    budget: str = "small",
    *,
    out: str = "results",
    seed: int = 0,
    resume: bool = False,
    quiet: bool = False,
    log: Any = None,
) -> dict[str, Any]:
    """Build the ``constrained`` table (its ``jaxrl.scripts.tables.TABLES`` runner).

    Args:
      budget: ``"tiny"``, ``"small"`` or ``"full"``.
      out: results root; writes ``<out>/constrained/``.
      seed: root seed.
      resume: reuse ``results.json`` when written with the same budget and seed.
      quiet: accepted for the common signature.
      log: stream for status lines (default stderr).

    Returns:
      ``{"dir", "tabular", "deep", "deep_continuous", "wall_time"}``.

    Raises:
      ConfigError: on an unknown budget.
    """
    del quiet
    log = sys.stderr if log is None else log
    sizes = tables.get_budget(BUDGETS, budget, TABLE)
    table_dir = os.path.join(out, TABLE)
    os.makedirs(table_dir, exist_ok=True)
    cache = os.path.join(table_dir, "results.json")
    meta = {"budget": sizes.sizes(), "seed": seed, "version": 3}
    start = time.perf_counter()
    if resume and os.path.exists(cache):
        with open(cache) as f:
            saved = json.load(f)
        if saved.get("meta") == json.loads(json.dumps(meta)):
            print(f"[{TABLE}/{budget}] reusing {cache}", file=log)
            results = jlogging.from_jsonable(saved["results"])
            return {"dir": table_dir, **results, "wall_time": 0.0}
    k_tab, k_deep, k_ppo = jax.random.split(jax.random.key(seed), 3)
    print(f"[{TABLE}/{budget}] tabular: {sizes.num_cmdps} CMDPs", file=log)
    tab_rows, trace = run_tabular(k_tab, sizes)
    plot_iterates(trace, os.path.join(table_dir, "iterates.png"))
    print(f"[{TABLE}/{budget}] deep: CartPole-Constrained-v0", file=log)
    deep_rows = run_deep(k_deep, sizes)
    print(f"[{TABLE}/{budget}] deep: PPO-Lagrangian / ReLOAD", file=log)
    deep_rows += run_deep_ppo(jax.random.clone(k_ppo), sizes)
    print(f"[{TABLE}/{budget}] deep: CaT", file=log)
    deep_rows += run_deep_cat(k_ppo, sizes)  # the PPO rows' seeds
    print(f"[{TABLE}/{budget}] deep: CAL / SAC-Lagrangian, Pendulum", file=log)
    # a key of its own that leaves the other parts' keys unchanged
    cal_rows = run_deep_cal(jax.random.fold_in(jax.random.key(seed), 1), sizes)
    _csv(os.path.join(table_dir, "tabular.csv"), tab_rows)
    _csv(os.path.join(table_dir, "deep.csv"), deep_rows)
    _csv(os.path.join(table_dir, "deep_continuous.csv"), cal_rows)
    md = [
        f"# constrained ({budget})",
        "",
        "## Tabular: last iterate vs LP solution (mean over random CMDPs)",
        "",
        _markdown(tab_rows, ["method", "eta", "iters", "occupancy_l1_mean",
                             "policy_l1_mean", "lambda_err_mean"]),
        "",
        "## Deep: CartPole-Constrained-v0, final greedy return and episode cost",
        "",
        _markdown(deep_rows, ["budget", "base", "agent", "seeds", "env_steps",
                              "return_mean", "cost_mean", "lambda_final",
                              "within_budget"]),
        "",
        "## Deep, continuous actions: Pendulum-Constrained-v0 (speed limit), CAL",
        "",
        _markdown(cal_rows, ["budget", "base", "agent", "seeds", "env_steps",
                             "return_mean", "cost_mean", "train_cost_mean",
                             "lambda_final", "within_budget"]),
        "",
    ]  # fmt: skip
    with open(os.path.join(table_dir, "table.md"), "w") as f:
        f.write("\n".join(md))
    results = {"tabular": tab_rows, "deep": deep_rows, "deep_continuous": cal_rows}
    with open(cache, "w") as f:
        # strict JSON (D5): CaT's lambda_final is NaN, written "nan"
        json.dump(jlogging.to_jsonable({"meta": meta, "results": results}), f)
    return {"dir": table_dir, **results, "wall_time": time.perf_counter() - start}
