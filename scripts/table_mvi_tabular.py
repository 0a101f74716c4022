"""``jaxrl reproduce --table mvi-tabular``: exact M-VI / MVI(q) under noisy evaluation.

Approximate value iteration with i.i.d. Gaussian errors ``sigma * eps_k`` added
to every backed-up entry (``jaxrl.agents.mvi_tabular``, ``noise_std = sigma``). Plain
VI accumulates the errors, so its final suboptimality grows with ``sigma``; the
implicit KL regularisation of M-VI(alpha, tau) averages them over about
``1 / (1 - alpha)`` sweeps (Vieillard et al., "Leverage the Average" and
"Munchausen RL", NeurIPS 2020), so M-VI with ``alpha -> 1`` is far more robust.
MVI(q) (Zhu et al., NeurIPS 2023) replaces the logarithm by the Tsallis
q-logarithm; its bonus is bounded in ``[-tau / (q - 1), 0]``. The MVI(q) rows
sweep tau (``MVI_Q_TAUS``, one vmap with the rest of the grid, D17).

Two MDP families, each run as ONE jitted call (``jaxrl.sweep.make_sweep``) over
the whole grid (algorithms x noise levels, stacked traced configs) x seeds:

* ``garnet``: one random Garnet(S, A = 4, b = 5), gamma = 0.9, per seed
  (rewards ``U[0, 1)`` on every state-action pair; ``mu0`` uniform);
* ``gridworld``: the default 17-cell slippery gridworld of
  ``jaxrl.envs.finite_mdp`` (slip 0.1, gamma 0.95, goal +1, trap -1); the MDP is
  fixed, seeds only change the noise draws.

Seeds use common random numbers: seed ``s`` has the same MDP and the same noise
draws ``eps_k`` for every algorithm and noise level. Every run starts from
``q_0 = 0``. The reported number is the exact, *unregularised* suboptimality
``J(pi*) - J(pi_K)`` of the agent's regularised policy after the last sweep
(``dp/suboptimality``), mean and 95% percentile-bootstrap CI over seeds.

Writes ``<out>/mvi-tabular/``: ``table.md``, ``table.csv`` (one row per MDP
family x algorithm x noise level), ``<family>_vs_noise.png`` (final
suboptimality against sigma) and ``<family>_curves_sigma<sigma>.png``
(suboptimality against iteration at the smallest nonzero and the largest
sigma), plus ``<family>_results.npz`` (raw per-seed results, reused by
``--resume`` when the settings match).

Budgets: ``tiny`` (tests; seconds, meaningless numbers), ``small`` (about a
minute on 2 CPU cores), ``full`` (more states, seeds and sweeps).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxrl import config as jconfig
from jaxrl import logging as jlog
from jaxrl import metrics as jmetrics
from jaxrl.agents import mvi_tabular as mvi
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.scripts import common, presets, tables
from jaxrl.sweep import make_sweep

__all__ = [
    "TABLE",
    "Algorithm",
    "Budget",
    "ALGORITHMS",
    "BUDGETS",
    "FAMILIES",
    "grid_configs",
    "make_train_fn",
    "run_family",
    "run",
]

TABLE = "mvi-tabular"
METRIC = "dp/suboptimality"
_METRICS = ("dp/suboptimality", "dp/suboptimality_greedy", "dp/value_gap")


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """One row of the table: a point ``(alpha, tau, q)`` of ``jaxrl.agents.mvi_tabular``."""

    label: str
    alpha: float
    tau: float
    q: float = 1.0


def _algorithms() -> tuple[Algorithm, ...]:
    rows = [Algorithm("VI", 0.0, 0.0)]
    rows += [Algorithm(f"soft VI (tau={t:g})", 0.0, t) for t in (0.01, 0.1)]
    rows += [
        Algorithm(f"M-VI (alpha={a:g}, tau={t:g})", a, t)
        for a in (0.5, 0.9, 0.99)
        for t in (0.01, 0.1)
    ]
    rows += [
        Algorithm(f"MVI(q={q:g}) (alpha=0.9, tau={t:g})", 0.9, t, q)
        for q in MVI_Q_VALUES
        for t in MVI_Q_TAUS
    ]
    return tuple(rows)


MVI_Q_VALUES = (1.0, 1.5, 2.0, 3.0)
"""Entropic indices of the MVI(q) rows (q = 1 is M-VI, the reference)."""
MVI_Q_TAUS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
"""Temperatures of the MVI(q) rows, swept in the same vmap (docs/decisions.md,
D17): the paper's tau for q != 1 could not be checked, and for q > 1 tau sets
both the policy's support and the bonus floor -alpha * tau / (q - 1), so the
rows span M-DQN's 0.03 to 10 (0.1 and 1 were the table's earlier two)."""

ALGORITHMS: tuple[Algorithm, ...] = _algorithms()
"""VI, soft VI, an M-VI(alpha, tau) grid and MVI(q) over :data:`MVI_Q_TAUS`."""

FAMILIES = ("garnet", "gridworld")

NOISE_LEVELS = {
    "garnet": (0.0, 0.1, 0.3, 1.0),
    "gridworld": (0.0, 0.01, 0.03, 0.1),
}
"""sigma per family, on the scale of the rewards (Garnet: every reward in
[0, 1); gridworld: a single +1/-1 at the goal/trap, values below 1)."""

GARNET = {
    k: v
    for k, v in presets.get_preset("mvi_tabular", "garnet").env_kwargs.items()
    if k != "num_states"
}
"""Garnet settings but S (which the budget sets): the ``mvi_tabular/garnet`` preset's."""
GRIDWORLD = {"slip": 0.1, "gamma": 0.95}


@dataclasses.dataclass(frozen=True)
class Budget(tables.Budget):
    """Sizes of one budget (all static: they fix shapes and loop lengths)."""

    num_states: int  # Garnet S
    iters: int  # sweeps K per run
    num_seeds: int


BUDGETS: dict[str, Budget] = tables.budget_set(
    Budget(num_states=8, iters=10, num_seeds=3, name="tiny"),
    Budget(num_states=30, iters=100, num_seeds=20, name="small"),
    Budget(num_states=50, iters=300, num_seeds=100, name="full"),
)
"""Budgets (``--budget``)."""


def grid_configs(
    budget: Budget, noise_levels: Sequence[float]
) -> tuple[mvi.Config, list[dict[str, Any]]]:
    """Return the stacked config over ``noise_levels x ALGORITHMS`` and its points.

    Row-major: grid point ``g = i * len(ALGORITHMS) + j`` is noise level ``i``
    and algorithm ``j``.
    """
    base = presets.get_preset("mvi_tabular", "garnet").make_config(
        iters_per_chunk=budget.iters
    )
    configs, points = [], []
    for sigma in noise_levels:
        for algo in ALGORITHMS:
            configs.append(
                base.replace(alpha=algo.alpha, tau=algo.tau, q=algo.q, noise_std=sigma)
            )
            points.append({"algorithm": algo.label, "noise_std": float(sigma)})
    for config in configs:
        jconfig.validate(config)
    return jconfig.stack_configs(configs), points


def make_train_fn(family: str, budget: Budget) -> Callable[[Any, Any], Any]:
    """Return ``train(key, config) -> (None, metrics[K])`` for one run of ``family``.

    For ``garnet`` the key is split into an MDP key (one Garnet per seed) and
    the agent key (noise draws); the gridworld is fixed.
    """
    if family == "garnet":
        S = budget.num_states

        def train(key: Any, config: mvi.Config) -> tuple[None, Any]:
            k_mdp, k_agent = jax.random.split(key)
            _, params = fm.make_garnet_env(key=k_mdp, num_states=S, **GARNET)
            _, metrics = mvi.make_train(config, None, params)(k_agent)
            return None, {name: metrics[name] for name in _METRICS}

    elif family == "gridworld":
        _, grid_params = fm.make_gridworld_env(**GRIDWORLD)

        def train(key: Any, config: mvi.Config) -> tuple[None, Any]:
            _, metrics = mvi.make_train(config, None, grid_params)(key)
            return None, {name: metrics[name] for name in _METRICS}

    else:
        raise ConfigError(
            f"unknown MDP family {family!r}; valid: {', '.join(FAMILIES)}"
        )
    return train


def _mdp_description(family: str, budget: Budget) -> str:
    if family == "garnet":
        return (
            f"Garnet(S={budget.num_states}, A={GARNET['num_actions']}, "
            f"b={GARNET['branching']}), gamma={GARNET['gamma']}, one per seed"
        )
    return (
        f"GridWorld (17 cells, slip={GRIDWORLD['slip']}, "
        f"gamma={GRIDWORLD['gamma']}), fixed"
    )


def _save_npz_atomic(path: str, arrays: dict[str, np.ndarray], meta: dict) -> None:
    with jlog.atomic_file(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)


def _load_npz(path: str, meta: dict) -> dict[str, np.ndarray] | None:
    """Return the cached arrays if ``path`` holds results for exactly ``meta``."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as data:
            if str(data["meta"]) != json.dumps(meta, sort_keys=True):
                return None
            return {k: np.asarray(data[k]) for k in data.files if k != "meta"}
    except (OSError, ValueError, KeyError):
        return None


def run_family(
    family: str,
    budget: Budget,
    key: Any,
    *,
    noise_levels: Sequence[float] | None = None,
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Run the whole grid x seeds of one family in one jitted sweep.

    Args:
      family: ``"garnet"`` or ``"gridworld"``.
      budget: sizes.
      key: typed key of the family (split into per-seed keys).
      noise_levels: sigma values (default :data:`NOISE_LEVELS`).

    Returns:
      ``(metrics, points)``: ``metrics[name]`` is ``[G, num_seeds, K]`` (numpy)
      for ``name`` in ``dp/suboptimality``, ``dp/suboptimality_greedy``,
      ``dp/value_gap``; ``points[g]`` names grid point ``g``.
    """
    levels = NOISE_LEVELS[family] if noise_levels is None else noise_levels
    stacked, points = grid_configs(budget, levels)
    sweep = make_sweep(make_train_fn(family, budget), budget.num_seeds)
    _, metrics = sweep(key, stacked)
    return {k: np.asarray(v) for k, v in metrics.items()}, points


def _summaries(
    family: str,
    budget: Budget,
    metrics: dict[str, np.ndarray],
    points: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    by_label = {a.label: a for a in ALGORITHMS}
    rows = []
    for g, point in enumerate(points):
        algo = by_label[point["algorithm"]]
        final = {k: v[g, :, -1] for k, v in metrics.items()}
        head = jmetrics.summarize(final[METRIC])
        greedy = jmetrics.summarize(final["dp/suboptimality_greedy"])
        rows.append(
            {
                "mdp": family,
                "algorithm": algo.label,
                "alpha": algo.alpha,
                "tau": algo.tau,
                "q": algo.q,
                "noise_std": point["noise_std"],
                "iters": budget.iters,
                "metric": METRIC,
                "mean": head["mean"],
                "ci_low": head["ci_low"],
                "ci_high": head["ci_high"],
                "iqm": head["iqm"],
                "std": head["std"],
                "n": head["n"],
                "greedy_mean": greedy["mean"],
                "greedy_ci_low": greedy["ci_low"],
                "greedy_ci_high": greedy["ci_high"],
                "value_gap_mean": float(np.mean(final["dp/value_gap"])),
            }
        )
    return rows


_CSV_COLUMNS = [
    "mdp",
    "algorithm",
    "alpha",
    "tau",
    "q",
    "noise_std",
    "iters",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
    "iqm",
    "std",
    "n",
    "greedy_mean",
    "greedy_ci_low",
    "greedy_ci_high",
    "value_gap_mean",
    "wall_s",
]


def _cell(row: dict[str, Any], prefix: str = "") -> str:
    mean = row[f"{prefix}mean"]
    low, high = row[f"{prefix}ci_low"], row[f"{prefix}ci_high"]
    return (
        f"{common.format_number(mean, 3)} "
        f"[{common.format_number(low, 3)}, {common.format_number(high, 3)}]"
    )


def _family_table(
    rows: list[dict[str, Any]], levels: Sequence[float], prefix: str
) -> str:
    columns = ["algorithm", *[f"sigma={s:g}" for s in levels]]
    table_rows = []
    for algo in ALGORITHMS:
        cells = {"algorithm": algo.label}
        for s in levels:
            match = [
                r for r in rows if r["algorithm"] == algo.label and r["noise_std"] == s
            ]
            cells[f"sigma={s:g}"] = _cell(match[0], prefix) if match else "-"
        table_rows.append(cells)
    return common.markdown_table(table_rows, columns)


def _markdown(
    budget_name: str,
    budget: Budget,
    rows: list[dict[str, Any]],
    levels: dict[str, Sequence[float]],
    wall_time: float,
    seed: int,
) -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# Table `{TABLE}` (budget `{budget_name}`)\n\n",
        "Exact tabular M-VI(alpha, tau) and MVI(q) (`jaxrl.agents.mvi_tabular`) with "
        "Gaussian noise `sigma * eps_k`, `eps_k ~ N(0, I)`, added to every "
        "backed-up entry at every sweep (approximate value iteration). "
        "VI is `alpha = tau = 0`; soft VI is `alpha = 0, tau > 0`; "
        "M-VI is `q = 1`; the log-policy clip is off (`l0 = -inf`).\n\n",
        f"* Sweeps per run: K = {budget.iters}, from `q_0 = 0`.\n",
        f"* Seeds: {budget.num_seeds} per cell (root seed {seed}); common random "
        "numbers: a seed has the same MDP and the same noise draws in every cell.\n",
        f"* MDPs: {_mdp_description('garnet', budget)} (rewards U[0, 1)); "
        f"{_mdp_description('gridworld', budget)}.\n",
        "* Cell: final *unregularised* suboptimality `J(pi*) - J(pi_K)` of the "
        "agent's regularised policy (softmax / q-exponential of `q_K`, what "
        "`act` samples from), computed exactly by linear solves; mean and 95% "
        "percentile-bootstrap CI `[low, high]` over seeds. Lower is better; 0 "
        "is optimal.\n",
        "* MVI(q) rows: alpha = 0.9, q in "
        f"{{{', '.join(f'{q:g}' for q in MVI_Q_VALUES)}}} x tau in "
        f"{{{', '.join(f'{t:g}' for t in MVI_Q_TAUS)}}} (a tau sweep in the "
        "same vmap; for q > 1 tau sets both the policy's support and the bonus "
        "floor `-alpha * tau / (q - 1)`).\n",
        "* Columns `sigma=...`: the noise level. `table.csv` also has the IQM, "
        "std, the greedy policy's suboptimality (`greedy_*`) and the mean "
        "`max |Q* - Q^pi_K|` (`value_gap_mean`).\n\n",
        f"Generated {now} by `jaxrl reproduce --table {TABLE} --budget "
        f"{budget_name}` in {wall_time:.0f}s on {jax.default_backend()} "
        f"({jax.device_count()} device(s), jax {jax.__version__}).\n\n",
    ]
    for family in FAMILIES:
        fam_rows = [r for r in rows if r["mdp"] == family]
        if not fam_rows:
            continue
        parts.append(f"## {family}: {_mdp_description(family, budget)}\n\n")
        parts.append(_family_table(fam_rows, levels[family], ""))
        parts.append("\nGreedy policy of `q_K` (`argmax_a q_K(s, a)`), same runs:\n\n")
        parts.append(_family_table(fam_rows, levels[family], "greedy_"))
        parts.append("\n")
    return parts


_CURVE_LABELS = (
    "VI",
    "soft VI (tau=0.1)",
    "M-VI (alpha=0.5, tau=0.01)",
    "M-VI (alpha=0.9, tau=0.01)",
    "M-VI (alpha=0.99, tau=0.01)",
    "MVI(q=2) (alpha=0.9, tau=0.1)",
    "MVI(q=2) (alpha=0.9, tau=1)",
)


def _plot_family(
    table_dir: str,
    family: str,
    rows: list[dict[str, Any]],
    metrics: dict[str, np.ndarray],
    points: list[dict[str, Any]],
    levels: Sequence[float],
) -> list[str]:
    from jaxrl.scripts.plotting import Figure, plot_learning_curves, save_figure

    written = []
    fig = Figure(figsize=(11.0, 4.2))
    groups = (
        (
            "VI, soft VI, M-VI(alpha, tau)",
            lambda a: a.q == 1.0 and "MVI(q" not in a.label,
        ),
        (
            "MVI(q=2) by tau, and MVI(q=1), alpha=0.9",
            lambda a: (
                "MVI(q" in a.label and (a.q == 2.0 or (a.q == 1.0 and a.tau == 0.1))
            ),
        ),
    )
    x = np.arange(len(levels))
    for i, (title, keep) in enumerate(groups):
        ax = fig.add_subplot(1, 2, i + 1)
        for algo in ALGORITHMS:
            if not keep(algo):
                continue
            sel = [
                next(
                    r
                    for r in rows
                    if r["algorithm"] == algo.label and r["noise_std"] == s
                )
                for s in levels
            ]
            mean = np.array([r["mean"] for r in sel])
            err = np.array(
                [
                    [r["mean"] - r["ci_low"] for r in sel],
                    [r["ci_high"] - r["mean"] for r in sel],
                ]
            )
            ax.errorbar(
                x,
                mean,
                yerr=np.maximum(err, 0.0),
                marker="o",
                capsize=3,
                label=algo.label,
            )
        ax.set_xticks(x, [f"{s:g}" for s in levels])
        ax.set_xlabel("noise std sigma")
        ax.set_ylabel("final suboptimality J* - J(pi_K)")
        ax.set_title(f"{family}: {title}", fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    path = os.path.join(table_dir, f"{family}_vs_noise.png")
    save_figure(fig, path)
    written.append(path)

    curves = metrics[METRIC]
    nonzero = [s for s in levels if s > 0]
    for sigma in sorted({min(nonzero), max(nonzero)} if nonzero else {levels[0]}):
        by_label = {}
        for g, point in enumerate(points):
            if point["noise_std"] == sigma and point["algorithm"] in _CURVE_LABELS:
                by_label[point["algorithm"]] = curves[g]
        path = os.path.join(table_dir, f"{family}_curves_sigma{sigma:g}.png")
        plot_learning_curves(
            by_label,
            path,
            x=np.arange(1, curves.shape[-1] + 1),
            title=f"{family}, sigma={sigma:g}: suboptimality of pi_k (mean, 95% CI)",
            xlabel="sweep k",
            ylabel="J* - J(pi_k)",
            num_resamples=300,
        )
        written.append(path)
    return written


def run(
    budget: str = "small",
    *,
    out: str = "results",
    seed: int = 0,
    resume: bool = False,
    quiet: bool = False,
    log: Any = None,
) -> dict[str, Any]:
    """Build the ``mvi-tabular`` table (its :data:`jaxrl.scripts.tables.TABLES` runner).

    Args:
      budget: ``"tiny"``, ``"small"`` or ``"full"``.
      out: results root; writes ``<out>/mvi-tabular/``.
      seed: root seed (family keys are split from ``jax.random.key(seed)``).
      resume: reuse ``<family>_results.npz`` when it was written with the same
        budget, seed and grid (otherwise recompute).
      quiet: accepted for the common signature (there is no progress bar).
      log: stream for status lines (default stderr).

    Returns:
      ``{"dir", "rows", "wall_time"}``; ``rows`` are the ``table.csv`` rows.

    Raises:
      ConfigError: on an unknown budget.
    """
    del quiet
    log = sys.stderr if log is None else log
    sizes = tables.get_budget(BUDGETS, budget, TABLE)
    table_dir = os.path.join(out, TABLE)
    os.makedirs(table_dir, exist_ok=True)
    start = time.perf_counter()
    family_keys = jax.random.split(jax.random.key(seed), len(FAMILIES))
    rows: list[dict[str, Any]] = []
    for family, key in zip(FAMILIES, family_keys, strict=True):
        levels = NOISE_LEVELS[family]
        _, points = grid_configs(sizes, levels)
        meta = {
            "budget": sizes.sizes(),
            "seed": seed,
            "family": family,
            "points": points,
            "version": 1,
        }
        cache = os.path.join(table_dir, f"{family}_results.npz")
        t0 = time.perf_counter()
        metrics = _load_npz(cache, meta) if resume else None
        if metrics is not None:
            print(f"[{TABLE}/{budget}] {family}: reusing {cache}", file=log)
        else:
            print(
                f"[{TABLE}/{budget}] {family}: {len(points)} grid points x "
                f"{sizes.num_seeds} seeds x {sizes.iters} sweeps in one jitted call",
                file=log,
            )
            metrics, points = run_family(family, sizes, key, noise_levels=levels)
            _save_npz_atomic(
                cache, {k.replace("/", "__"): v for k, v in metrics.items()}, meta
            )
        metrics = {k.replace("__", "/"): v for k, v in metrics.items()}
        wall = time.perf_counter() - t0
        fam_rows = _summaries(family, sizes, metrics, points)
        for row in fam_rows:
            row["wall_s"] = round(wall, 1)
        rows += fam_rows
        _plot_family(table_dir, family, fam_rows, metrics, points, levels)
        vi_row = [r for r in fam_rows if r["algorithm"] == "VI"]
        print(
            "  -> VI suboptimality by sigma: "
            + ", ".join(f"{r['noise_std']:g}: {r['mean']:.3g}" for r in vi_row)
            + f" ({wall:.1f}s)",
            file=log,
        )
    wall_time = time.perf_counter() - start
    jlog.write_csv_atomic(os.path.join(table_dir, "table.csv"), rows, _CSV_COLUMNS)
    jlog.write_atomic(
        os.path.join(table_dir, "table.md"),
        _markdown(budget, sizes, rows, NOISE_LEVELS, wall_time, seed),
    )
    return {"dir": table_dir, "rows": rows, "wall_time": wall_time}
