r"""``jaxrl reproduce --table md-vi``: MD-VI vs M-VI and the error-averaging claim, tabular.

Approximate mirror-descent value iteration MD-VI(lambda, tau) (Vieillard et al.,
"Leverage the Average", NeurIPS 2020; ``jaxrl.ops.mirror_descent``) with i.i.d.
Gaussian errors ``sigma * eps_k`` added to every entry of every evaluation step:

* ``pi_{k+1} ∝ pi_k^beta exp(q_k / (lambda + tau))``, ``beta = lambda / (lambda + tau)``;
* ``q_{k+1} = r + gamma P <pi_{k+1}, q_k - lambda ln(pi_{k+1}/pi_k) - tau ln pi_{k+1}>
  + sigma eps_{k+1}``.

The paper's claim: the policy is a softmax of a (beta-discounted) sum of past
q-functions, so the errors are *averaged* over about ``1 / (1 - beta)``
iterations instead of accumulated; noise robustness grows as ``beta -> 1``.

The study fixes the total temperature ``tau_M = lambda + tau`` and varies
``alpha = beta`` over :data:`ALPHAS` (``lambda = alpha tau_M``, ``tau = (1 -
alpha) tau_M``), for each noise level in :data:`NOISE_LEVELS`, in both
parameterisations:

* ``MD-VI``: the direct operator :func:`jaxrl.ops.mirror_descent.md_vi_operator`
  on ``(q_k, ln pi_k)`` from ``q_0 = 0`` and a uniform ``pi_0``
  (:func:`md_vi_metrics`, this module);
* ``M-VI``: ``jaxrl.agents.mvi_tabular`` with ``(alpha, tau_M)`` from ``q'_0 = 0``.

Both get the same MDP and the same noise draws per seed (common random
numbers), so they produce the same policies (M-VI's ``q'_0 = 0`` is MD-VI's
``q_0`` shifted by a constant, which changes no policy) and the same numbers up
to float rounding: the table reports the largest difference.

Each (family, parameterisation) is ONE jitted call (``jaxrl.sweep.make_sweep``)
over the grid (noise levels x alphas, stacked traced configs: changing alpha
never recompiles) x seeds. Garnet families (:data:`FAMILIES`): one random
Garnet(S, A = 4, b) per seed, rewards ``U[0, 1)``, ``mu0`` uniform.

Reported per cell: ``||q* - q^{pi_k}||_inf`` (``q*`` the *unregularised*
optimum, by policy iteration; ``pi_k`` the algorithm's next policy after sweep
``k``, computed exactly by a linear solve), averaged over the last ``last``
sweeps, then mean and 95% percentile-bootstrap CI over seeds. Also the same
for ``J* - J(pi_k)`` and the noise-induced excess ``error(sigma) - error(0)``
per seed (same MDP), which removes the regularisation bias of ``tau > 0``.

Writes ``<out>/md-vi/``: ``table.md``, ``table.csv`` (one row per family x
parameterisation x noise level x alpha), ``error_vs_alpha.png``, and
``<family>_results.npz`` (raw per-seed curves, reused by ``--resume`` when the
settings match).

Budgets: ``tiny`` (tests; seconds, meaningless numbers), ``small`` (well under
two minutes on 2 CPU cores), ``full`` (more states, sweeps and seeds).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import config as jconfig
from jaxrl import logging as jlog
from jaxrl import metrics as jmetrics
from jaxrl.agents import mvi_tabular as mvi
from jaxrl.config import static
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import exact_dp, mirror_descent
from jaxrl.scripts import common, presets, table_mvi_tabular, tables
from jaxrl.sweep import make_sweep
from jaxrl.types import Metrics, PRNGKey

__all__ = [
    "TABLE",
    "MDVIConfig",
    "Budget",
    "BUDGETS",
    "ALPHAS",
    "TAU",
    "NOISE_LEVELS",
    "FAMILIES",
    "PARAMETERISATIONS",
    "md_vi_metrics",
    "grid_configs",
    "make_train_fn",
    "run_family",
    "run",
]

TABLE = "md-vi"
METRIC = "dp/value_gap"
_METRICS = ("dp/value_gap", "dp/suboptimality")

ALPHAS: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99)
"""alpha = beta = lambda / (lambda + tau): 0 is soft VI, -> 1 is pure KL."""

TAU = 0.1
"""tau_M = lambda + tau, fixed across alphas (rewards in [0, 1))."""

NOISE_LEVELS: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
"""sigma, std of the error added to every entry of every evaluation step."""

FAMILIES: dict[str, dict[str, Any]] = {
    "garnet": {"num_actions": 4, "branching": 5, "gamma": 0.9},
    "garnet-sparse": {"num_actions": 4, "branching": 2, "gamma": 0.95},
}
"""Garnet settings but S (which the budget sets); one MDP per seed."""

PARAMETERISATIONS = ("MD-VI", "M-VI")


@struct.dataclass
class MDVIConfig:
    """One run of approximate MD-VI(lambda, tau) (the table's direct parameterisation).

    Attributes:
      iters: static number of iterations K.
      oracle_iters: static policy-iteration steps for ``q*``.
      kl_weight: lambda >= 0, weight of ``KL(pi || pi_k)``.
      entropy_weight: tau >= 0, weight of the entropy; ``lambda + tau > 0``.
      noise_std: sigma >= 0, std of the evaluation error.
    """

    iters: int = static(default=100)
    oracle_iters: int = static(default=100)
    kl_weight: float = 0.09  # lambda
    entropy_weight: float = 0.01  # tau
    noise_std: float = 0.0  # sigma

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        jconfig.check_integer("iters", self.iters)
        jconfig.check_integer("oracle_iters", self.oracle_iters)
        jconfig.check_range("kl_weight", self.kl_weight, 0.0)
        jconfig.check_range("entropy_weight", self.entropy_weight, 0.0)
        jconfig.check_positive(
            "kl_weight + entropy_weight", self.kl_weight + self.entropy_weight
        )
        jconfig.check_range("noise_std", self.noise_std, 0.0)


@dataclasses.dataclass(frozen=True)
class Budget(tables.Budget):
    """Sizes of one budget (all static: they fix shapes and loop lengths)."""

    num_states: int  # Garnet S
    iters: int  # iterations K per run
    num_seeds: int
    last: int  # the error is averaged over the last `last` iterations
    families: tuple[str, ...]  # keys of FAMILIES

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ConfigError(
                f"budget {self.name!r}: unknown MDP family {unknown[0]!r}; "
                f"valid: {', '.join(FAMILIES)}"
            )
        if self.last > self.iters:
            raise ConfigError(
                f"budget {self.name!r}: Budget.last must be <= iters "
                f"({self.iters}), got {self.last}"
            )


BUDGETS: dict[str, Budget] = tables.budget_set(
    Budget(8, 10, 3, 3, ("garnet",), name="tiny"),
    Budget(30, 100, 20, 10, tuple(FAMILIES), name="small"),
    Budget(50, 300, 100, 30, tuple(FAMILIES), name="full"),
)
"""Budgets (``--budget``): ``tiny`` runs one family (two compilations, not four)."""


# ----------------------------------------------------------------------------- MD-VI run


def md_vi_metrics(mdp: FiniteMDP, key: PRNGKey, config: MDVIConfig) -> Metrics:
    """Run ``config.iters`` noisy MD-VI iterations; return exact metrics ``[K]``.

    Starts from ``q_0 = 0`` and a uniform ``pi_0``. Iteration ``k`` applies
    :func:`jaxrl.ops.mirror_descent.md_vi_operator`, adds
    ``noise_std * N(0, I)`` (the key is split as ``jaxrl.agents.mvi_tabular.update``
    splits it, so both see the same draws from the same key), and records the
    exact ``max |Q* - Q^pi|`` and ``J* - J(pi)`` of the *next* policy
    ``pi ∝ pi_{k}^beta exp(q_k / (lambda + tau))`` (what M-VI's metrics measure
    for ``softmax(q'_k / tau_M)``).

    Args:
      mdp: the MDP.
      key: typed key of the noise draws.
      config: the run's config.

    Returns:
      ``{"dp/value_gap": [K], "dp/suboptimality": [K]}``.
    """
    S, A = mdp.num_states, mdp.num_actions
    lam, tau = config.kl_weight, config.entropy_weight
    next_log_policy = jax.vmap(mirror_descent.md_log_policy, (0, 0, None, None))
    q_star = exact_dp.optimal_q(mdp, config.oracle_iters)
    j_star = jnp.dot(mdp.mu0, jnp.max(q_star, axis=-1))

    def body(carry, _):
        q, log_pi, key = carry
        key, k_noise = jax.random.split(key)
        q, log_pi = mirror_descent.md_vi_operator(mdp, q, log_pi, lam, tau)
        q = q + config.noise_std * jax.random.normal(k_noise, q.shape, q.dtype)
        pi = jnp.exp(next_log_policy(q, log_pi, lam, tau))
        v_pi = exact_dp.policy_evaluation(mdp, pi)
        q_pi = exact_dp.q_from_v(mdp, v_pi)
        metrics = {
            "dp/value_gap": jnp.max(jnp.abs(q_star - q_pi)),
            "dp/suboptimality": j_star - jnp.dot(mdp.mu0, v_pi),
        }
        return (q, log_pi, key), metrics

    dtype = mdp.P.dtype
    init = (jnp.zeros((S, A), dtype), jnp.full((S, A), -math.log(A), dtype), key)
    _, metrics = jax.lax.scan(body, init, None, length=config.iters)
    return metrics


# ----------------------------------------------------------------------------- grid


def _check_grid(alphas: Sequence[float], tau: float, levels: Sequence[float]) -> None:
    """One-line ``ConfigError`` for an invalid grid (before anything runs)."""
    for name, values in (("alphas", alphas), ("noise_levels", levels)):
        if not isinstance(values, Sequence) or isinstance(values, str) or not values:
            raise ConfigError(f"{name} must be a non-empty sequence, got {values!r}")
    jconfig.check_range("alpha", np.asarray(alphas, np.float64), 0.0, 1.0)
    jconfig.check_positive("tau", tau)
    jconfig.check_range("noise_std", np.asarray(levels, np.float64), 0.0)


def grid_configs(
    budget: Budget,
    alphas: Sequence[float] = ALPHAS,
    tau: float = TAU,
    noise_levels: Sequence[float] = NOISE_LEVELS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the stacked configs of both parameterisations and the grid points.

    Row-major: grid point ``g = i * len(alphas) + j`` is noise level ``i`` and
    alpha ``j``; the MD-VI weights are ``(alpha tau, (1 - alpha) tau)``.

    Returns:
      ``({"MD-VI": MDVIConfig[G], "M-VI": mvi.Config[G]}, points)``.

    Raises:
      ConfigError: an alpha outside ``[0, 1]``, ``tau <= 0`` or a negative
        noise level (one line naming it).
    """
    _check_grid(alphas, tau, noise_levels)
    base = presets.get_preset("mvi_tabular", "garnet").make_config(
        iters_per_chunk=budget.iters
    )
    md, m, points = [], [], []
    for sigma in noise_levels:
        for alpha in alphas:
            # munchausen_to_md on the host, in float64 (the op is float32)
            lam, ent = round(alpha * tau, 12), round((1.0 - alpha) * tau, 12)
            md.append(
                MDVIConfig(
                    iters=budget.iters,
                    oracle_iters=base.oracle_iters,
                    kl_weight=lam,
                    entropy_weight=ent,
                    noise_std=float(sigma),
                )
            )
            m.append(
                base.replace(alpha=float(alpha), tau=float(tau), noise_std=float(sigma))
            )
            points.append(
                {
                    "alpha": float(alpha),
                    "tau": float(tau),
                    "kl_weight": lam,
                    "entropy_weight": ent,
                    "noise_std": float(sigma),
                }
            )
    for config in md + m:
        jconfig.validate(config)
    stacked = {"MD-VI": jconfig.stack_configs(md), "M-VI": jconfig.stack_configs(m)}
    return stacked, points


def make_train_fn(
    family: str, budget: Budget, parameterisation: str
) -> Callable[[Any, Any], Any]:
    """Return ``train(key, config) -> (None, metrics[K])`` for one run.

    The key is split into the MDP key (one Garnet per seed) and the noise key,
    identically for both parameterisations (common random numbers).
    """
    if family not in FAMILIES:
        raise ConfigError(
            f"unknown MDP family {family!r}; valid: {', '.join(FAMILIES)}"
        )
    if parameterisation not in PARAMETERISATIONS:
        raise ConfigError(
            f"unknown parameterisation {parameterisation!r}; "
            f"valid: {', '.join(PARAMETERISATIONS)}"
        )
    garnet = FAMILIES[family]
    S = budget.num_states

    def train(key: Any, config: Any) -> tuple[None, Any]:
        k_mdp, k_agent = jax.random.split(key)
        _, params = fm.make_garnet_env(key=k_mdp, num_states=S, **garnet)
        if parameterisation == "MD-VI":
            metrics = md_vi_metrics(params.mdp, k_agent, config)
        else:
            _, metrics = mvi.make_train(config, None, params)(k_agent)
        return None, {name: metrics[name] for name in _METRICS}

    return train


def run_family(
    family: str,
    budget: Budget,
    key: Any,
    *,
    alphas: Sequence[float] = ALPHAS,
    tau: float = TAU,
    noise_levels: Sequence[float] = NOISE_LEVELS,
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Run both parameterisations over the whole grid x seeds of one family.

    Returns:
      ``(metrics, points)``: ``metrics[f"{p}/{name}"]`` is ``[G, num_seeds, K]``
      (numpy) for parameterisation ``p`` and ``name`` in ``dp/value_gap``,
      ``dp/suboptimality``; ``points[g]`` describes grid point ``g``.
    """
    stacked, points = grid_configs(budget, alphas, tau, noise_levels)
    out = {}
    for p in PARAMETERISATIONS:
        sweep = make_sweep(make_train_fn(family, budget, p), budget.num_seeds)
        _, metrics = sweep(key, stacked[p])
        out.update({f"{p}/{k}": np.asarray(v) for k, v in metrics.items()})
    return out, points


# ----------------------------------------------------------------------------- summaries


def _avg_factor(alpha: float) -> float:
    """``sqrt((1 - beta) / (1 + beta))``: std of a beta-weighted average of i.i.d.
    unit errors (weights ``beta^j`` normalised to sum one), the averaging heuristic."""
    return math.sqrt((1.0 - alpha) / (1.0 + alpha))


def _summaries(
    family: str,
    budget: Budget,
    metrics: dict[str, np.ndarray],
    points: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    last = budget.last

    def tail(p: str, name: str) -> np.ndarray:  # [G, seeds]
        return metrics[f"{p}/{name}"][..., -last:].mean(-1)

    zero = {pt["alpha"]: g for g, pt in enumerate(points) if pt["noise_std"] == 0.0}
    rows = []
    for p in PARAMETERISATIONS:
        gap, subopt = tail(p, METRIC), tail(p, "dp/suboptimality")
        other = [q for q in PARAMETERISATIONS if q != p][0]
        diff = np.max(
            np.abs(metrics[f"{p}/{METRIC}"] - metrics[f"{other}/{METRIC}"]),
            axis=(1, 2),
        )
        for g, pt in enumerate(points):
            head = jmetrics.summarize(gap[g])
            sub = jmetrics.summarize(subopt[g])
            if pt["alpha"] in zero:
                excess = jmetrics.summarize(gap[g] - gap[zero[pt["alpha"]]])
            else:
                excess = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}
            rows.append(
                {
                    "mdp": family,
                    "parameterisation": p,
                    "alpha": pt["alpha"],
                    "tau_m": pt["tau"],
                    "kl_weight": pt["kl_weight"],
                    "entropy_weight": pt["entropy_weight"],
                    "noise_std": pt["noise_std"],
                    "iters": budget.iters,
                    "last": last,
                    "metric": f"{METRIC} (mean of last {last})",
                    "mean": head["mean"],
                    "ci_low": head["ci_low"],
                    "ci_high": head["ci_high"],
                    "iqm": head["iqm"],
                    "std": head["std"],
                    "n": head["n"],
                    "excess_mean": excess["mean"],
                    "excess_ci_low": excess["ci_low"],
                    "excess_ci_high": excess["ci_high"],
                    "subopt_mean": sub["mean"],
                    "subopt_ci_low": sub["ci_low"],
                    "subopt_ci_high": sub["ci_high"],
                    "max_abs_diff_md_vs_m": float(diff[g]),
                    "avg_factor": _avg_factor(pt["alpha"]),
                }
            )
    return rows


_CSV_COLUMNS = [
    "mdp",
    "parameterisation",
    "alpha",
    "tau_m",
    "kl_weight",
    "entropy_weight",
    "noise_std",
    "iters",
    "last",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
    "iqm",
    "std",
    "n",
    "excess_mean",
    "excess_ci_low",
    "excess_ci_high",
    "subopt_mean",
    "subopt_ci_low",
    "subopt_ci_high",
    "max_abs_diff_md_vs_m",
    "avg_factor",
    "wall_s",
]


def _cell(row: dict[str, Any], prefix: str = "") -> str:
    mean = row[f"{prefix}mean"]
    if not math.isfinite(mean):
        return "-"
    low, high = row[f"{prefix}ci_low"], row[f"{prefix}ci_high"]
    return (
        f"{common.format_number(mean, 3)} "
        f"[{common.format_number(low, 3)}, {common.format_number(high, 3)}]"
    )


def _label(row: dict[str, Any]) -> str:
    if row["parameterisation"] == "MD-VI":
        return f"MD-VI(lambda={row['kl_weight']:.4g}, tau={row['entropy_weight']:.4g})"
    return f"M-VI(alpha={row['alpha']:g}, tau={row['tau_m']:g})"


def _rows_at(rows, p, alpha):
    return {
        r["noise_std"]: r
        for r in rows
        if r["parameterisation"] == p and r["alpha"] == alpha
    }


def _family_tables(
    rows: list[dict[str, Any]], alphas: Sequence[float], levels: Sequence[float]
) -> list[str]:
    sig = [f"sigma={s:g}" for s in levels]
    main, excess = [], []
    for alpha in alphas:
        for p in PARAMETERISATIONS:
            at = _rows_at(rows, p, alpha)
            first = at[levels[0]]
            cells = {"alpha (beta)": f"{alpha:g}", "run": _label(first)}
            cells.update({c: _cell(at[s]) for c, s in zip(sig, levels, strict=True)})
            cells["max abs diff MD vs M"] = common.format_number(
                max(r["max_abs_diff_md_vs_m"] for r in at.values()), 2
            )
            main.append(cells)
        at = _rows_at(rows, "MD-VI", alpha)
        cells = {"alpha (beta)": f"{alpha:g}"}
        cells.update(
            {c: _cell(at[s], "excess_") for c, s in zip(sig, levels, strict=True)}
        )
        cells["sqrt((1-beta)/(1+beta))"] = common.format_number(_avg_factor(alpha), 3)
        excess.append(cells)
    return [
        common.markdown_table(
            main, ["alpha (beta)", "run", *sig, "max abs diff MD vs M"]
        ),
        "\nNoise-induced excess `error(sigma) - error(0)` per seed (same MDP), MD-VI "
        "(M-VI is identical up to the difference above); last column: the std of a "
        "beta-weighted average of i.i.d. unit errors, the averaging heuristic:\n\n",
        common.markdown_table(
            excess, ["alpha (beta)", *sig, "sqrt((1-beta)/(1+beta))"]
        ),
    ]


def _verdict(
    rows: list[dict[str, Any]], alphas: Sequence[float], levels: Sequence[float]
) -> dict[str, Any]:
    """Whether the error decreases with alpha at every noise level > 0.

    Checked on the means of both parameterisations; the reported ratio
    ``error(max alpha) / error(min alpha)`` is MD-VI's.
    """
    order = sorted(alphas)
    per_sigma = {}
    for s in levels:
        if s <= 0:
            continue
        monotone, ratio = True, math.nan
        for p in PARAMETERISATIONS:
            means = [_rows_at(rows, p, a)[s]["mean"] for a in order]
            monotone &= all(b < a for a, b in zip(means, means[1:], strict=False))
            if p == "MD-VI" and means[0] > 0:
                ratio = means[-1] / means[0]
        per_sigma[s] = {"monotone": monotone, "ratio": ratio}
    return {
        "holds": bool(per_sigma) and all(v["monotone"] for v in per_sigma.values()),
        "per_sigma": per_sigma,
        "alphas": order,
    }


def _verdict_text(family: str, verdict: dict[str, Any]) -> str:
    lo, hi = verdict["alphas"][0], verdict["alphas"][-1]
    parts = [
        f"sigma={s:g}: {'decreasing' if v['monotone'] else 'NOT monotone'}, "
        f"error(alpha={hi:g}) / error(alpha={lo:g}) = "
        f"{common.format_number(v['ratio'], 3)}"
        for s, v in verdict["per_sigma"].items()
    ]
    head = "holds" if verdict["holds"] else "does not hold everywhere"
    return f"* `{family}`: {head} ({'; '.join(parts)}).\n"


def _paper_paragraph(verdicts: dict[str, dict[str, Any]], tau: float) -> list[str]:
    held = [f for f, v in verdicts.items() if v["holds"]]
    failed = [f for f, v in verdicts.items() if not v["holds"]]
    if not failed:
        ours = (
            "**It holds here**: on every family and at every noise level sigma > 0, "
            "the MD-VI error decreases monotonically as alpha = beta grows, in both "
            "parameterisations."
        )
    elif held:
        ours = (
            f"**It holds on {', '.join(held)} but not everywhere on "
            f"{', '.join(failed)}** (details below)."
        )
    else:
        ours = "**It does not hold everywhere here** (details below)."
    return [
        "## Paper\n\n",
        'Vieillard, Kozuno, Scherrer, Pietquin, Munos and Geist, "Leverage the '
        'Average: an Analysis of KL Regularization in RL" (NeurIPS 2020) analyse '
        "approximate MD-VI, `pi_{k+1} ∝ pi_k^beta exp(q_k / (lambda + tau))`, "
        "`q_{k+1} = r + gamma P <pi_{k+1}, q_k - lambda ln(pi_{k+1}/pi_k) - tau ln "
        "pi_{k+1}> + eps_{k+1}`. The policy is a softmax of a beta-discounted sum "
        "of all past q-functions; for pure KL (tau = 0, beta = 1) their bound on "
        "`||q* - q^{pi_k}||_inf` involves the norm of the *average* of the errors "
        "`(1/k) sum_j eps_j` (errors averaged, horizon dependence linear) instead "
        "of the accumulated norms of approximate VI; with tau > 0 (beta < 1) "
        "convergence is faster but the errors are only averaged over about "
        "`1/(1 - beta)` iterations. Munchausen VI (Vieillard, Pietquin and Geist, "
        "NeurIPS 2020) is the same algorithm with `alpha = beta`, `tau_M = lambda "
        "+ tau`. Qualitative claim tested: with i.i.d. zero-mean errors, the "
        "asymptotic error shrinks as beta -> 1 (noise robustness grows with "
        "alpha). The paper illustrates its bounds on Garnets (random MDPs with a "
        "few successors per state-action pair) with noisy evaluation steps and "
        "runs its main empirical study with deep agents on Atari; the exact "
        "Garnet sizes, noise model and figures were not re-read for this table "
        "(from memory), so only the qualitative claim is compared. Our setting: "
        "Garnets of the families below, i.i.d. Gaussian errors N(0, sigma^2) on "
        f"every entry of every evaluation step, alpha varied at fixed tau_M = "
        f"{tau:g} (so the entropy weight (1 - alpha) tau_M shrinks with it: the "
        "excess table removes the resulting bias). " + ours + "\n\n",
    ]


def _markdown(
    budget_name: str,
    budget: Budget,
    rows: list[dict[str, Any]],
    verdicts: dict[str, dict[str, Any]],
    alphas: Sequence[float],
    tau: float,
    levels: Sequence[float],
    wall_time: float,
    seed: int,
) -> list[str]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    families = ", ".join(
        f"`{f}` = {_mdp_description(f, budget)}" for f in budget.families
    )
    parts = [
        f"# Table `{TABLE}` (budget `{budget_name}`)\n\n",
        "Approximate MD-VI(lambda, tau) (`jaxrl.ops.mirror_descent.md_vi_operator`, "
        "from `q_0 = 0` and a uniform `pi_0`) and M-VI(alpha, tau_M) "
        "(`jaxrl.agents.mvi_tabular`, from `q'_0 = 0`) with Gaussian errors "
        "`sigma * eps_k`, `eps_k ~ N(0, I)`, added to every entry of every "
        f"evaluation step. alpha = beta = lambda / (lambda + tau) varies at fixed "
        f"tau_M = lambda + tau = {tau:g}: lambda = alpha tau_M, tau = (1 - alpha) "
        "tau_M (alpha = 0: soft VI; alpha -> 1: pure KL). Both parameterisations "
        "get the same MDP and noise draws per seed, hence the same policies.\n\n",
        f"* Iterations per run: K = {budget.iters}; the error is averaged over the "
        f"last {budget.last} iterations of each run.\n",
        f"* Seeds: {budget.num_seeds} per cell (root seed {seed}); common random "
        "numbers: a seed has the same MDP and the same noise draws in every cell.\n",
        f"* MDPs (one random Garnet per seed; rewards U[0, 1)): {families}.\n",
        "* Cell: `||q* - q^{pi_k}||_inf` (unregularised optimum `q*`; `pi_k` the "
        "algorithm's policy after iteration k, evaluated exactly by a linear "
        "solve), mean over the last iterations, then mean and 95% "
        "percentile-bootstrap CI `[low, high]` over seeds. Lower is better.\n",
        "* `max abs diff MD vs M`: the largest |difference| of the per-iteration "
        "error between the two parameterisations over all seeds, iterations and "
        "noise levels (float32 rounding).\n",
        "* `table.csv` also has `J* - J(pi_k)` (`subopt_*`), the IQM and std.\n\n",
        f"Generated {now} by `jaxrl reproduce --table {TABLE} --budget "
        f"{budget_name}` in {wall_time:.0f}s on {jax.default_backend()} "
        f"({jax.device_count()} device(s), jax {jax.__version__}).\n\n",
    ]
    parts += _paper_paragraph(verdicts, tau)
    parts.append(
        "Verdict per family (means over alphas at each sigma > 0, both "
        "parameterisations; the ratio is MD-VI's):\n\n"
    )
    parts += [_verdict_text(f, v) for f, v in verdicts.items()]
    parts.append("\n")
    for family in budget.families:
        fam_rows = [r for r in rows if r["mdp"] == family]
        if not fam_rows:
            continue
        parts.append(f"## {family}: {_mdp_description(family, budget)}\n\n")
        parts += _family_tables(fam_rows, alphas, levels)
        parts.append("\n")
    parts.append("![error against alpha](error_vs_alpha.png)\n")
    return parts


def _mdp_description(family: str, budget: Budget) -> str:
    g = FAMILIES[family]
    return (
        f"Garnet(S={budget.num_states}, A={g['num_actions']}, b={g['branching']}), "
        f"gamma={g['gamma']}"
    )


def _plot(
    path: str,
    families: Sequence[str],
    rows: list[dict[str, Any]],
    alphas: Sequence[float],
    levels: Sequence[float],
) -> None:
    from jaxrl.scripts.plotting import Figure, save_figure

    fig = Figure(figsize=(5.2 * len(families), 4.0))
    x = np.arange(len(alphas))
    for i, family in enumerate(families):
        ax = fig.add_subplot(1, len(families), i + 1)
        for j, sigma in enumerate(levels):
            for p, style in (("MD-VI", "-o"), ("M-VI", "--x")):
                sel = [
                    next(
                        r
                        for r in rows
                        if r["mdp"] == family
                        and r["parameterisation"] == p
                        and r["alpha"] == a
                        and r["noise_std"] == sigma
                    )
                    for a in alphas
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
                    fmt=style,
                    color=f"C{j}",
                    capsize=3,
                    label=f"{p}, sigma={sigma:g}",
                )
        ax.set_yscale("log")
        ax.set_xticks(x, [f"{a:g}" for a in alphas])
        ax.set_xlabel("alpha = beta = lambda / (lambda + tau)")
        ax.set_ylabel("||q* - q^pi_k||_inf (last iterations)")
        ax.set_title(family, fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small", ncol=2)
    save_figure(fig, path)


# ----------------------------------------------------------------------------- cache


# The cache file format is the mvi-tabular table's (one writer, one reader).
_save_npz_atomic = table_mvi_tabular._save_npz_atomic
_load_npz = table_mvi_tabular._load_npz


def _encode(name: str) -> str:
    return name.replace("/", "__")


def _decode(name: str) -> str:
    return name.replace("__", "/")


# ----------------------------------------------------------------------------- entry


def run(
    budget: str = "small",
    *,
    out: str = "results",
    seed: int = 0,
    resume: bool = False,
    quiet: bool = False,
    log: Any = None,
    alphas: Sequence[float] = ALPHAS,
    tau: float = TAU,
    noise_levels: Sequence[float] = NOISE_LEVELS,
) -> dict[str, Any]:
    """Build the ``md-vi`` table (its :data:`jaxrl.scripts.tables.TABLES` runner).

    Args:
      budget: ``"tiny"``, ``"small"`` or ``"full"``.
      out: results root; writes ``<out>/md-vi/``.
      seed: root seed (family keys are split from ``jax.random.key(seed)``).
      resume: reuse ``<family>_results.npz`` when it was written with the same
        budget, seed and grid (otherwise recompute).
      quiet: accepted for the common signature (there is no progress bar).
      log: stream for status lines (default stderr).
      alphas: alpha (= beta) values, each in ``[0, 1]``.
      tau: tau_M = lambda + tau > 0, fixed across alphas.
      noise_levels: sigma values, each ``>= 0`` (include 0 for the excess table).

    Returns:
      ``{"dir", "rows", "wall_time", "verdicts"}``; ``rows`` are the
      ``table.csv`` rows.

    Raises:
      ConfigError: an unknown budget or an invalid grid (one line naming it),
        before anything is written.
    """
    del quiet
    log = sys.stderr if log is None else log
    sizes = tables.get_budget(BUDGETS, budget, TABLE)
    alphas = tuple(alphas) if isinstance(alphas, list) else alphas
    noise_levels = (
        tuple(noise_levels) if isinstance(noise_levels, list) else noise_levels
    )
    _check_grid(alphas, tau, noise_levels)
    table_dir = os.path.join(out, TABLE)
    os.makedirs(table_dir, exist_ok=True)
    start = time.perf_counter()
    family_keys = jax.random.split(jax.random.key(seed), len(FAMILIES))
    rows: list[dict[str, Any]] = []
    verdicts: dict[str, dict[str, Any]] = {}
    for family, key in zip(FAMILIES, family_keys, strict=True):
        if family not in sizes.families:
            continue
        _, points = grid_configs(sizes, alphas, tau, noise_levels)
        meta = {
            "budget": sizes.sizes(),
            "seed": seed,
            "family": family,
            "garnet": FAMILIES[family],
            "points": points,
            "version": 1,
        }
        cache = os.path.join(table_dir, f"{family}_results.npz")
        t0 = time.perf_counter()
        metrics = _load_npz(cache, meta) if resume else None
        if metrics is not None:
            print(f"[{TABLE}/{budget}] {family}: reusing {cache}", file=log)
            metrics = {_decode(k): v for k, v in metrics.items()}
        else:
            print(
                f"[{TABLE}/{budget}] {family}: {len(points)} grid points x "
                f"{sizes.num_seeds} seeds x {sizes.iters} iterations, one jitted "
                f"call per parameterisation",
                file=log,
            )
            metrics, points = run_family(
                family, sizes, key, alphas=alphas, tau=tau, noise_levels=noise_levels
            )
            _save_npz_atomic(cache, {_encode(k): v for k, v in metrics.items()}, meta)
        wall = time.perf_counter() - t0
        fam_rows = _summaries(family, sizes, metrics, points)
        for row in fam_rows:
            row["wall_s"] = round(wall, 1)
        rows += fam_rows
        verdicts[family] = _verdict(fam_rows, alphas, noise_levels)
        print(f"  -> {_verdict_text(family, verdicts[family]).strip()}", file=log)
        print(f"     ({wall:.1f}s)", file=log)
    wall_time = time.perf_counter() - start
    _plot(
        os.path.join(table_dir, "error_vs_alpha.png"),
        sizes.families,
        rows,
        alphas,
        noise_levels,
    )
    jlog.write_csv_atomic(os.path.join(table_dir, "table.csv"), rows, _CSV_COLUMNS)
    jlog.write_atomic(
        os.path.join(table_dir, "table.md"),
        _markdown(
            budget,
            sizes,
            rows,
            verdicts,
            alphas,
            tau,
            noise_levels,
            wall_time,
            seed,
        ),
    )
    return {
        "dir": table_dir,
        "rows": rows,
        "wall_time": wall_time,
        "verdicts": verdicts,
    }
