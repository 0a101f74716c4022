"""``jaxrl reproduce --table dual-rl``: offline XQL / f-DVL / IQL / BC and ReCOIL.

Three tables on the self-generated D4RL-style datasets of
:mod:`jaxrl.scripts.make_datasets` (ALGORITHMS.md section 3), all trained with
:mod:`jaxrl.agents.dual_rl`:

1. **offline RL**: BC, IQL, XQL, f-DVL(chi2) and f-DVL(TV) on every
   non-imitation dataset present for the budget's environments (``random``,
   ``medium``, ``expert``, ``medium-replay``, ``medium-expert``; the
   ``scripted-*`` kinds of the continuous environments). One jitted call per
   algorithm x dataset, ``vmap`` over seeds with the dataset shared and the
   config an argument (numeric hyperparameters traced; the reference returns
   and the reward scale are config fields, so datasets of equal size share a
   compilation). The score of a seed is the D4RL normalised score
   ``100 (R - R_random) / (R_expert - R_random)`` (the dataset's frozen
   references) of the mean return of ``eval_episodes`` greedy episodes of the
   *final* policy; the table gives the mean over seeds and a 95% percentile
   bootstrap interval over seeds (:func:`jaxrl.metrics.summarize`, 2000
   resamples; seeds whose run produced a non-finite score are counted in the
   ``diverged`` column and left out of the mean).
2. **XQL instability**: on one random dataset (Pendulum-v1 when the budget has
   it), divergence rate against the temperature ``beta`` for XQL without its
   stabilisers (plain Gumbel loss ``e^z - z - 1``, ``z = (Q - V) / beta``),
   XQL with them (exponent clipped at ``max_clip`` and the batch
   max-normalisation, the reference code's default) and f-DVL chi2 / TV at the
   same temperature (``alpha = beta``: ``alpha * loss((Q - V) / alpha)``). One
   jitted call per variant, ``vmap`` over ``beta x seeds`` with ``beta`` (and
   ``alpha``) traced. A seed *diverges* when, at any gradient step, the loss is
   not finite or a batch ``|V|`` or ``|Q|`` exceeds ``diverge_threshold``
   (1e6; the data's return scale is ~1e2). The table also gives the largest
   batch-mean ``|V|`` before divergence and the final mean ``V`` next to the
   data's return scale ``mean(r) / (1 - gamma)``: a stabilised XQL at a small
   ``beta`` does not overflow, its ``V`` *stalls* far from the data's values
   instead (every step sees ``Q - V`` clipped, so ``V`` moves at Adam's step
   size).
3. **imitation** (ReCOIL vs BC): on every ``*-plus-expert`` mixture (random or
   medium data plus a few expert episodes) with the disjoint one-episode expert
   set (``expert-1traj``; ``scripted-expert-1traj`` for the continuous
   environments): BC on the mixture, BC on the one expert episode, and ReCOIL
   (mixture + expert set, no rewards). Same seeds and scoring as table 1.

The datasets are generated first (``jaxrl.scripts.make_datasets.make_datasets`` with
the budget's environments and sizes) into ``<out>/dual-rl/datasets`` or the
``datasets`` argument; environments whose datasets exist are reused as they
are.

Writes ``<out>/dual-rl/``: ``table.md``, ``table.csv`` (one row per
algorithm x dataset, imitation rows included), ``instability.csv``,
``scores.png`` (table 1 and 3 as bars with the intervals), ``instability.png``
(divergence rate and ``max |V|`` against ``beta``) and ``results.json``.

Budgets: ``tiny`` (CartPole-v1, three kinds, two seeds, a few hundred steps:
plumbing only, about two minutes on two CPU cores), ``small`` (CartPole-v1 and
Pendulum-v1, datasets of 20k transitions, 64-unit networks, five seeds, 3k
steps; about twenty-five minutes on two busy CPU cores, most of it XLA
compilation: one per algorithm and environment, as every dataset of an
environment is zero-padded to one size), ``full`` (the ``make_datasets``
``small`` environments including MountainCarContinuous-v0 and
Breakout-MinAtar, 256-unit networks, ten seeds, 100k steps; an accelerator).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import envs
from jaxrl import logging as jlog
from jaxrl import metrics as jmetrics
from jaxrl.agents import dual_rl
from jaxrl.config import stack_configs
from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from jaxrl.scripts import common, tables
from jaxrl.scripts import make_datasets as mkd

__all__ = [
    "TABLE",
    "ALGORITHMS",
    "IMITATION",
    "INSTABILITY",
    "Budget",
    "BUDGETS",
    "ensure_datasets",
    "find_datasets",
    "base_config",
    "reward_scale",
    "return_scale",
    "summarize_metrics",
    "train_scores",
    "offline_rows",
    "imitation_rows",
    "instability_rows",
    "run",
]

TABLE = "dual-rl"

ALGORITHMS: dict[str, dict[str, Any]] = {
    "BC": {"method": "bc"},
    "IQL": {"method": "iql"},
    "XQL": {"method": "xql"},
    "f-DVL(chi2)": {"method": "fdvl", "f": "chi_square"},
    "f-DVL(TV)": {"method": "fdvl", "f": "total_variation"},
}
"""Offline-RL algorithms of table 1: ``dual_rl.Config`` overrides."""

IMITATION: dict[str, dict[str, Any]] = {
    "BC (mixture)": {"method": "bc"},
    "BC (1 expert episode)": {"method": "bc"},
    "ReCOIL": {"method": "recoil"},
}
"""Imitation methods of table 3 (BC on the mixture / on the expert set)."""

INSTABILITY: dict[str, dict[str, Any]] = {
    "XQL (no stabiliser)": {"method": "xql", "gumbel_stabilizer": "none"},
    "XQL (clip + rescale)": {"method": "xql", "gumbel_stabilizer": "rescale"},
    "f-DVL(chi2)": {"method": "fdvl", "f": "chi_square"},
    "f-DVL(TV)": {"method": "fdvl", "f": "total_variation"},
}
"""Variants of table 2; ``beta`` (and ``alpha`` for f-DVL) is swept."""


@dataclasses.dataclass(frozen=True)
class Budget(tables.Budget):
    """Sizes of one run of the table.

    Attributes:
      envs: environments (each must be in ``jaxrl.scripts.make_datasets.CATALOGUE``).
      datasets_budget: the ``make_datasets`` budget used to generate them.
      dataset_size: transitions per collected dataset (``None``: that budget's).
      kinds: dataset kinds of table 1 (``None``: every non-imitation kind present).
      seeds: seeds per algorithm x dataset.
      hidden_sizes: MLP widths of every network.
      batch_size: transitions per gradient step.
      num_chunks: chunks per run (a greedy evaluation after each; the last one
        is the final policy's score).
      iters_per_chunk: gradient steps per chunk.
      eval_episodes: greedy episodes per evaluation.
      betas: temperatures of table 2.
      instability_env: environment of table 2 (its ``random`` dataset); the
        first of ``envs`` if absent.
      instability_seeds: seeds per temperature.
      instability_iters: gradient steps per run of table 2.
    """

    envs: tuple[str, ...]
    datasets_budget: str
    dataset_size: int | None
    kinds: tuple[str, ...] | None
    seeds: int
    hidden_sizes: tuple[int, ...]
    batch_size: int
    num_chunks: int
    iters_per_chunk: int
    eval_episodes: int
    betas: tuple[float, ...]
    instability_env: str
    instability_seeds: int
    instability_iters: int

    @property
    def steps(self) -> int:
        """Gradient steps per run of tables 1 and 3."""
        return self.num_chunks * self.iters_per_chunk


_BETAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)

BUDGETS: dict[str, Budget] = tables.budget_set(
    Budget(("CartPole-v1",), "tiny", 5_000, None,
           2, (32, 32), 64, 2, 250, 3, (1e-4, 1e-2, 1.0), "CartPole-v1",
           2, 300, name="tiny"),
    Budget(("CartPole-v1", "Pendulum-v1"), "tiny", 20_000, None, 5,
           (64, 64), 128, 3, 1_000, 5, _BETAS, "Pendulum-v1", 3, 2_000, name="small"),
    Budget(("CartPole-v1", "Acrobot-v1", "Breakout-MinAtar", "Pendulum-v1",
            "MountainCarContinuous-v0"), "small", None, None, 10,
           (256, 256), 256, 20, 5_000, 10, (1e-6, *_BETAS, 10.0),
           "Pendulum-v1", 10, 100_000, name="full"),
)  # fmt: skip
"""Budgets (``--budget``)."""

# ---------------------------------------------------------------------- datasets


def _is_imitation(kind: str) -> bool:
    return "1traj" in kind or "-plus-" in kind


def _expected_kinds(env: str) -> tuple[str, ...]:
    plan = mkd.CATALOGUE[env]
    return mkd.TRAINED_KINDS if plan.agent is not None else mkd.SCRIPTED_KINDS


def find_datasets(root: str, env: str) -> dict[str, str]:
    """Return ``{kind: path}`` of the datasets written under ``<root>/<env>``."""
    env_dir = os.path.join(root, env)
    if not os.path.isdir(env_dir):
        return {}
    return {
        kind: os.path.join(env_dir, kind)
        for kind in sorted(os.listdir(env_dir))
        if os.path.isfile(os.path.join(env_dir, kind, "dataset.json"))
    }


def ensure_datasets(
    budget: Budget, root: str, seed: int, log: Any
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Generate the budget's missing datasets under ``root``; return their paths.

    An environment with no dataset is generated with
    ``jaxrl.scripts.make_datasets.make_datasets`` (the budget's ``datasets_budget``
    and ``dataset_size``); one with some datasets is reused as it is.

    Returns:
      ``({env: {kind: path}}, {skipped env: reason})``: an environment whose
      generation fails with a ``ConfigError`` is skipped (and named in the
      table) rather than ending the run.
    """
    found, skipped = {}, {}
    for env in budget.envs:
        if env not in mkd.CATALOGUE:
            raise ConfigError(
                f"no dataset plan for {env}; known: {', '.join(mkd.CATALOGUE)}"
            )
        paths = find_datasets(root, env)
        if not paths:
            print(f"[{TABLE}] generating the {env} datasets under {root}", file=log)
            try:
                mkd.make_datasets(
                    budget.datasets_budget,
                    env_names=[env],
                    out=root,
                    seed=seed,
                    dataset_size=budget.dataset_size,
                    log=log,
                )
            except ConfigError as err:  # e.g. its data-collection agent is missing
                print(f"[{TABLE}] SKIPPING {env}: {err}", file=log)
                skipped[env] = str(err)
                continue
            paths = find_datasets(root, env)
        else:
            missing = set(_expected_kinds(env)) - set(paths)
            note = f" (missing: {', '.join(sorted(missing))})" if missing else ""
            print(f"[{TABLE}] reusing {len(paths)} {env} datasets{note}", file=log)
        found[env] = paths
    if not found:
        raise ConfigError(f"no datasets for any of {', '.join(budget.envs)}")
    return found, skipped


# ------------------------------------------------------------------------ configs


def reward_scale(dataset: offline.Dataset) -> float:
    """Return ``1 / max |r|`` of the dataset (1 if every reward is 0).

    The agents see ``r / max |r|`` (``|r| <= 1`` on every dataset: CartPole
    and Acrobot unchanged, Pendulum divided by ~16); the returns and scores
    are in the environment's units.
    """
    top = float(np.max(np.abs(np.asarray(dataset.data.reward))))
    return 1.0 / top if top > 0.0 else 1.0


def return_scale(dataset: offline.Dataset, gamma: float, scale: float) -> float:
    """Return the data's value scale ``scale * mean(r) / (1 - gamma)``."""
    return scale * float(np.mean(np.asarray(dataset.data.reward))) / (1.0 - gamma)


def base_config(
    budget: Budget, env_params: Any, dataset: offline.Dataset, **overrides: Any
) -> dual_rl.Config:
    """The table's ``dual_rl.Config`` for one dataset (``overrides`` last)."""
    meta = dataset.meta
    fields = dict(
        hidden_sizes=budget.hidden_sizes,
        batch_size=budget.batch_size,
        num_chunks=budget.num_chunks,
        iters_per_chunk=budget.iters_per_chunk,
        num_eval_episodes=budget.eval_episodes,
        eval_max_steps=int(env_params.max_steps_in_episode),
        reward_scale=reward_scale(dataset),
        random_return=float(meta.return_random),
        expert_return=float(meta.return_expert),
    )
    fields.update(overrides)
    return dual_rl.Config(**fields)


# ----------------------------------------------------------------------- training


def summarize_metrics(metrics: Mapping[str, Any], period: int) -> dict[str, Any]:
    """Reduce one seed's per-step metrics ``[T]`` to the table's facts.

    Args:
      metrics: ``dual_rl`` metrics of one run (``[num_chunks * period]`` each).
      period: ``iters_per_chunk`` (the evaluations sit on each chunk's last step).

    Returns:
      ``{"score" [C], "return" [C]}`` (per-chunk evaluations), ``"diverged"``
      (any step), ``"first_diverged"`` (its step, -1 if none), ``"max_abs_v"``
      (largest batch-mean ``|V|`` before the first divergence) and
      ``"final_v"`` (last batch-mean ``V``).
    """
    diverged = metrics["train/diverged"] > 0
    steps = diverged.shape[0]
    first = jnp.argmax(diverged)
    anything = diverged.any()
    before = jnp.arange(steps) < jnp.where(anything, first, steps)
    v = metrics["v/mean"]
    return {
        "score": metrics["eval/normalized_score"][period - 1 :: period],
        "return": metrics["eval/return"][period - 1 :: period],
        "diverged": anything,
        "first_diverged": jnp.where(anything, first, -1),
        "max_abs_v": jnp.max(jnp.where(before, jnp.abs(v), 0.0)),
        "final_v": v[-1],
    }


@functools.cache
def _sweeps(env_name: str) -> tuple[Any, Any]:
    """``(over_seeds, over_configs_x_seeds)`` jitted training for one environment.

    ``over_seeds(config, keys [S], data, expert, data_size, expert_size)`` and
    ``over_configs_x_seeds(stacked_config [C], keys [S], ...)``; the datasets
    are shared (not batched), only the summaries of :func:`summarize_metrics`
    come back. Padded datasets (:class:`Padded`) of one size share a
    compilation whatever their valid sizes.
    """
    env, env_params = envs.make(env_name)

    def one(config, key, data, expert, data_size, expert_size):
        train = dual_rl.make_train_from_data(config, env, env_params)
        _, metrics = train(key, data, expert, data_size, expert_size)
        return summarize_metrics(metrics, config.iters_per_chunk)

    seeds = jax.vmap(one, in_axes=(None, 0, None, None, None, None))
    grid = jax.vmap(seeds, in_axes=(0, None, None, None, None, None))
    return jax.jit(seeds), jax.jit(grid)


@dataclasses.dataclass(frozen=True)
class Padded:
    """A dataset zero-padded to ``rows`` rows; only the first ``size`` are sampled."""

    data: Any
    size: int

    @classmethod
    def of(cls, data: Any, rows: int) -> Padded:
        """Pad ``data`` (``Transition[N]``, ``N <= rows``) with zero rows.

        ``extras`` (episode ids, ``is_expert`` flags) are dropped: the agents do
        not read them, and one pytree structure keeps one compilation.
        """
        n = int(np.shape(data.reward)[0])
        data = data.replace(extras={})
        padded = jax.tree.map(
            lambda x: np.concatenate(
                [np.asarray(x), np.zeros((rows - n, *np.shape(x)[1:]), x.dtype)]
            ),
            jax.device_get(data),
        )
        return cls(jax.device_put(padded), n)


def train_scores(
    config: dual_rl.Config,
    env_name: str,
    keys: Any,
    data: Padded,
    expert: Padded | None = None,
) -> dict[str, np.ndarray]:
    """Train ``len(keys)`` seeds in one jitted call; return host summaries.

    Returns:
      ``{"score" [S, num_chunks], "return" [S, num_chunks], "diverged" [S],
      "first_diverged" [S], "max_abs_v" [S], "final_v" [S]}``.
    """
    seeds, _ = _sweeps(env_name)
    e_data, e_size = (None, None) if expert is None else (expert.data, expert.size)
    out = seeds(config, keys, data.data, e_data, data.size, e_size)
    return jax.device_get(out)


def _summary_row(scores: Mapping[str, np.ndarray], seed: int) -> dict[str, Any]:
    final = np.asarray(scores["score"])[:, -1]
    s = jmetrics.summarize(final, seed=seed)
    return {
        "score_mean": s["mean"],
        "score_ci_low": s["ci_low"],
        "score_ci_high": s["ci_high"],
        "return_mean": float(np.nanmean(np.asarray(scores["return"])[:, -1]))
        if np.isfinite(np.asarray(scores["return"])[:, -1]).any()
        else math.nan,
        "seeds": int(final.size),
        "diverged": int(np.sum(np.asarray(scores["diverged"]))),
    }


def _load(path: str, env_name: str) -> offline.Dataset:
    return offline.load_dataset(path, expected_env=env_name)


def _load_env(env_name: str, kinds: Mapping[str, str]) -> tuple[dict, int]:
    """Every dataset of one environment and the padded size (the largest N)."""
    loaded = {kind: _load(path, env_name) for kind, path in kinds.items()}
    return loaded, max(ds.meta.num_transitions for ds in loaded.values())


def offline_rows(
    budget: Budget, paths: Mapping[str, Mapping[str, str]], key: Any, log: Any
) -> list[dict[str, Any]]:
    """Table 1: every algorithm on every non-imitation dataset."""
    rows = []
    for env_name, kinds in paths.items():
        _, env_params = envs.make(env_name)
        chosen = [
            k
            for k in kinds
            if not _is_imitation(k) and (budget.kinds is None or k in budget.kinds)
        ]
        loaded, rows_n = _load_env(env_name, kinds) if chosen else ({}, 0)
        for kind in chosen:
            ds = loaded[kind]
            data = Padded.of(ds.data, rows_n)  # one compilation per algorithm
            key, k_cell = jax.random.split(key)
            seed_keys = jax.random.split(k_cell, budget.seeds)
            data_score = dict(ds.meta.info).get("score_mean", math.nan)
            for label, overrides in ALGORITHMS.items():
                t0 = time.perf_counter()
                config = base_config(budget, env_params, ds, **overrides)
                keys = jax.random.clone(seed_keys)  # paired: same seeds per cell
                scores = train_scores(config, env_name, keys, data)
                row = {"table": "offline", "env": env_name, "dataset": kind,
                       "algorithm": label, "transitions": ds.meta.num_transitions,
                       "data_score": float(data_score), "steps": budget.steps,
                       **_summary_row(scores, len(rows))}  # fmt: skip
                rows.append(row)
                print(
                    f"[{TABLE}] {env_name}/{kind} {label}: score "
                    f"{row['score_mean']:.1f} [{row['score_ci_low']:.1f}, "
                    f"{row['score_ci_high']:.1f}] ({time.perf_counter() - t0:.0f}s)",
                    file=log,
                )
    return rows


def _expert_kind(kinds: Sequence[str]) -> str | None:
    ones = [k for k in kinds if k.endswith("expert-1traj")]
    return ones[0] if ones else None


def imitation_rows(
    budget: Budget, paths: Mapping[str, Mapping[str, str]], key: Any, log: Any
) -> list[dict[str, Any]]:
    """Table 3: ReCOIL vs BC on every ``*-plus-*expert`` mixture."""
    rows = []
    for env_name, kinds in paths.items():
        one = _expert_kind(list(kinds))
        mixtures = [k for k in kinds if "-plus-" in k]
        if one is None or not mixtures:
            continue
        _, env_params = envs.make(env_name)
        loaded, rows_n = _load_env(env_name, kinds)
        expert = loaded[one]
        expert_data = Padded.of(expert.data, expert.meta.num_transitions)
        # BC on the expert set shares the offline table's BC compilation
        expert_as_data = Padded.of(expert.data, rows_n)
        for kind in mixtures:
            ds = loaded[kind]
            data = Padded.of(ds.data, rows_n)
            key, k_cell = jax.random.split(key)
            seed_keys = jax.random.split(k_cell, budget.seeds)
            for label, overrides in IMITATION.items():
                t0 = time.perf_counter()
                config = base_config(budget, env_params, ds, **overrides)
                keys = jax.random.clone(seed_keys)  # paired: same seeds per cell
                if label.startswith("BC (1"):
                    config = base_config(budget, env_params, expert, **overrides)
                    scores = train_scores(config, env_name, keys, expert_as_data)
                elif overrides["method"] == "recoil":
                    scores = train_scores(config, env_name, keys, data, expert_data)
                else:
                    scores = train_scores(config, env_name, keys, data)
                info = dict(ds.meta.info)
                row = {"table": "imitation", "env": env_name, "dataset": kind,
                       "algorithm": label, "transitions": ds.meta.num_transitions,
                       "expert_set": f"{one} ({expert.meta.num_transitions})",
                       "expert_episodes": info.get("expert_episodes"),
                       "data_score": float(info.get("score_mean", math.nan)),
                       "steps": budget.steps,
                       **_summary_row(scores, len(rows))}  # fmt: skip
                rows.append(row)
                print(
                    f"[{TABLE}] {env_name}/{kind} {label}: score "
                    f"{row['score_mean']:.1f} ({time.perf_counter() - t0:.0f}s)",
                    file=log,
                )
    return rows


def instability_rows(
    budget: Budget, paths: Mapping[str, Mapping[str, str]], key: Any, log: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Table 2: divergence rate vs ``beta`` (one call per variant over beta x seeds).

    Returns:
      ``(rows, facts)``: one row per variant x beta, and the dataset facts
      (env, kind, size, return scale).
    """
    env_name = budget.instability_env if budget.instability_env in paths else None
    env_name = env_name or next(iter(paths))
    kinds = paths[env_name]
    if "random" not in kinds:
        raise ConfigError(f"table 2 needs the {env_name} random dataset")
    ds = _load(kinds["random"], env_name)
    _, env_params = envs.make(env_name)
    scale = reward_scale(ds)
    facts = {
        "env": env_name,
        "dataset": "random",
        "transitions": ds.meta.num_transitions,
        "reward_scale": scale,
        "return_scale": return_scale(ds, 0.99, scale),
        "steps": budget.instability_iters,
        "seeds": budget.instability_seeds,
    }
    _, grid = _sweeps(env_name)
    keys = jax.random.split(key, budget.instability_seeds)
    rows = []
    for label, overrides in INSTABILITY.items():
        t0 = time.perf_counter()
        base = base_config(
            budget,
            env_params,
            ds,
            num_chunks=1,
            iters_per_chunk=budget.instability_iters,
            num_eval_episodes=budget.eval_episodes,
            **overrides,
        )
        configs = stack_configs([base.replace(beta=b, alpha=b) for b in budget.betas])
        n = ds.meta.num_transitions
        out = grid(configs, jax.random.clone(keys), ds.data, None, n, None)
        out = jax.device_get(out)
        for i, beta in enumerate(budget.betas):
            div = np.asarray(out["diverged"][i])
            first = np.asarray(out["first_diverged"][i])
            final_v = np.asarray(out["final_v"][i])
            score = np.asarray(out["score"][i])[:, -1]
            rows.append({
                "table": "instability", "env": env_name, "variant": label,
                "beta": beta, "seeds": int(div.size),
                "divergence_rate": float(div.mean()),
                "first_diverged_step": float(np.median(first[div])) if div.any()
                else math.nan,
                "max_abs_v": float(np.max(np.asarray(out["max_abs_v"][i]))),
                "final_v_mean": float(np.nanmean(final_v))
                if np.isfinite(final_v).any() else math.nan,
                "return_scale": facts["return_scale"],
                "score_mean": float(np.nanmean(score))
                if np.isfinite(score).any() else math.nan,
            })  # fmt: skip
        rates = [r["divergence_rate"] for r in rows[-len(budget.betas) :]]
        print(
            f"[{TABLE}] instability {label}: divergence {rates} "
            f"({time.perf_counter() - t0:.0f}s)",
            file=log,
        )
    return rows, facts


# ------------------------------------------------------------------------ outputs


def _fmt(v: Any, digits: int = 3) -> str:
    return common.format_number(v, digits)


def _score_cell(r: Mapping[str, Any]) -> str:
    if not np.isfinite(r["score_mean"]):
        return "n/a"
    return f"{r['score_mean']:.1f} [{r['score_ci_low']:.1f}, {r['score_ci_high']:.1f}]"


def _pivot(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[str]:
    """Markdown rows: one per env x dataset, one score column per algorithm."""
    head = ["env", "dataset", "N", "data score", *labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cells: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["env"], r["dataset"]), {})[r["algorithm"]] = r
    for (env, kind), by in cells.items():
        any_row = next(iter(by.values()))
        scores = []
        for label in labels:
            r = by.get(label)
            cell = _score_cell(r) if r else ""
            if r and r["diverged"]:
                cell += f" ({r['diverged']}/{r['seeds']} diverged)"
            scores.append(cell)
        lines.append(
            "| "
            + " | ".join(
                [
                    env,
                    kind,
                    str(any_row["transitions"]),
                    _fmt(any_row["data_score"]),
                    *scores,
                ]
            )  # fmt: skip
            + " |"
        )
    return lines


def _markdown(
    budget_name: str,
    budget: Budget,
    rows: Sequence[Mapping[str, Any]],
    inst: Sequence[Mapping[str, Any]],
    facts: Mapping[str, Any],
    wall: float,
    seed: int,
) -> list[str]:
    offline_ = [r for r in rows if r["table"] == "offline"]
    imitation = [r for r in rows if r["table"] == "imitation"]
    betas = list(budget.betas)
    md = [
        f"# dual-rl ({budget_name} budget)",
        "",
        f"Offline dual RL with `jaxrl.agents.dual_rl` on the datasets of "
        f"`jaxrl.scripts.make_datasets` ({', '.join(budget.envs)}; datasets of "
        f"{budget.dataset_size or 'the make_datasets ' + budget.datasets_budget}"
        f" transitions each; the mixtures and medium-replay are larger, see N). "
        f"{budget.seeds} seeds per cell (root seed {seed}), {budget.steps:,} "
        f"gradient steps of batch {budget.batch_size}, MLPs {budget.hidden_sizes}, "
        f"gamma 0.99, Adam 3e-4, AWR beta_pi 3, XQL beta 2 (clip 7 + rescale), "
        f"IQL expectile 0.7, f-DVL lambda 0.8, ReCOIL beta 2 / Q_gap 200 / r_gap 2; "
        f"rewards divided by the dataset's max |r|. Wall time {wall / 60:.1f} min "
        f"on this machine ({jax.devices()[0].platform}).",
        "",
        "Score: D4RL normalised score 100 (R - R_random) / (R_expert - R_random) "
        f"of the final policy's mean greedy return over {budget.eval_episodes} "
        "episodes, per seed; mean over seeds and 95% percentile-bootstrap interval "
        "over seeds (2000 resamples). 'data score': the dataset's own normalised "
        "score (its complete episodes). Diverged seeds (non-finite loss or "
        "|V|, |Q| > 1e6) are listed and left out of the mean.",
        "",
        *[
            f"**{env} was skipped**: its datasets could not be generated ({why})."
            for env, why in facts.get("skipped_envs", {}).items()
        ],
        "",
        "## 1. Offline RL: normalised score, mean [95% CI]",
        "",
        *_pivot(offline_, list(ALGORITHMS)),
        "",
        "## 2. XQL instability: divergence rate vs temperature beta",
        "",
        f"{facts.get('env')} `random` data ({facts.get('transitions')} "
        f"transitions), {facts.get('seeds')} seeds x {len(betas)} temperatures "
        f"in one vmapped call per variant, {facts.get('steps'):,} gradient steps. "
        "f-DVL runs at alpha = beta (loss alpha * l((Q - V) / alpha)); the "
        "total-variation loss is positively homogeneous, so alpha does not change "
        "it. Divergence: non-finite loss or a batch |V| or |Q| above 1e6. "
        f"Return scale of the data (reward-scaled): mean(r) / (1 - gamma) = "
        f"{_fmt(facts.get('return_scale'))}.",
        "",
        "| variant | " + " | ".join(f"beta={b:g}" for b in betas) + " |",
        "|---|" + "---|" * len(betas),
    ]
    variants = list(dict.fromkeys(r["variant"] for r in inst))
    for v in variants:
        cells = []
        for b in betas:
            r = next(x for x in inst if x["variant"] == v and x["beta"] == b)
            cells.append(f"{r['divergence_rate']:.2f}")
        md.append(f"| {v} divergence rate | " + " | ".join(cells) + " |")
    for v in variants:
        cells = []
        for b in betas:
            r = next(x for x in inst if x["variant"] == v and x["beta"] == b)
            cells.append(f"{_fmt(r['max_abs_v'])} / {_fmt(r['final_v_mean'])}")
        md.append(f"| {v} max\\|V\\| / final V | " + " | ".join(cells) + " |")
    md += [
        "",
        "max|V|: the largest batch-mean |V| before any divergence; final V: the "
        "last batch-mean V (NaN after an overflow). A final V far from the "
        "return scale without divergence is the stall of a stabilised Gumbel "
        "loss at small beta.",
        "",
        "## 3. Imitation: ReCOIL vs BC, normalised score, mean [95% CI]",
        "",
        "Each mixture is random or medium data plus a few complete expert episodes "
        "(N includes them); the expert set is one further expert episode. BC "
        "(mixture) clones the mixture, BC (1 expert episode) the expert set only, "
        "ReCOIL uses both and no rewards.",
        "",
        *_pivot(imitation, list(IMITATION)),
        "",
    ]
    return md


def _plot(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    from jaxrl.scripts.plotting import Figure, save_figure

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['env']}\n{r['dataset']}", []).append(r)
    labels = list(dict.fromkeys(r["algorithm"] for r in rows))
    fig = Figure(figsize=(max(6.0, 1.3 * len(groups)), 4.0))
    ax = fig.subplots()
    width = 0.8 / max(len(labels), 1)
    for j, label in enumerate(labels):
        xs, ys, lo, hi = [], [], [], []
        for i, members in enumerate(groups.values()):
            r = next((m for m in members if m["algorithm"] == label), None)
            if r is None or not np.isfinite(r["score_mean"]):
                continue
            xs.append(i + (j - (len(labels) - 1) / 2) * width)
            ys.append(r["score_mean"])
            lo.append(r["score_mean"] - r["score_ci_low"])
            hi.append(r["score_ci_high"] - r["score_mean"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=label)
    ax.set_xticks(range(len(groups)), list(groups), fontsize=7)
    ax.axhline(0.0, color="k", lw=0.5)
    ax.axhline(100.0, color="k", lw=0.5, ls="--")
    ax.set_ylabel("normalised score (95% CI)")
    ax.legend(fontsize=7, ncol=3)
    save_figure(fig, path)


def _plot_instability(path: str, inst: Sequence[Mapping[str, Any]]) -> None:
    from jaxrl.scripts.plotting import Figure, save_figure

    fig = Figure(figsize=(9, 3.5))
    ax_d, ax_v = fig.subplots(1, 2)
    for v in dict.fromkeys(r["variant"] for r in inst):
        rs = [r for r in inst if r["variant"] == v]
        b = [r["beta"] for r in rs]
        ax_d.plot(b, [r["divergence_rate"] for r in rs], "o-", label=v)
        ax_v.plot(b, [max(r["max_abs_v"], 1e-8) for r in rs], "o-", label=v)
    ax_d.set(xscale="log", xlabel="beta", ylabel="divergence rate", ylim=(-0.05, 1.05))
    ax_v.set(xscale="log", yscale="log", xlabel="beta", ylabel="max |V| (before div.)")
    if inst:
        ax_v.axhline(abs(inst[0]["return_scale"]), color="k", ls="--", lw=1,
                     label="|return scale|")  # fmt: skip
    ax_d.legend(fontsize=7)
    ax_v.legend(fontsize=7)
    save_figure(fig, path)


def run(
    budget: str = "small",
    *,
    out: str = "results",
    seed: int = 0,
    resume: bool = False,
    quiet: bool = False,
    log: Any = None,
    datasets: str | None = None,
) -> dict[str, Any]:
    """Build the ``dual-rl`` table (its ``jaxrl.scripts.tables.TABLES`` runner).

    Args:
      budget: ``"tiny"``, ``"small"`` or ``"full"``.
      out: results root; writes ``<out>/dual-rl/``.
      seed: root seed (datasets and training).
      resume: reuse ``results.json`` when written with the same budget and seed.
      quiet: accepted for the common signature.
      log: stream for status lines (default stderr).
      datasets: dataset root (default ``<out>/dual-rl/datasets``); existing
        datasets there are reused.

    Returns:
      ``{"dir", "rows", "instability", "wall_time"}``.

    Raises:
      ConfigError: on an unknown budget or environment.
    """
    del quiet
    log = sys.stderr if log is None else log
    sizes = tables.get_budget(BUDGETS, budget, TABLE)
    table_dir = os.path.join(out, TABLE)
    root = os.path.abspath(datasets or os.path.join(table_dir, "datasets"))
    os.makedirs(table_dir, exist_ok=True)
    cache = os.path.join(table_dir, "results.json")
    meta = {"budget": sizes.sizes(), "seed": seed, "datasets": root}
    meta = json.loads(json.dumps(meta))
    if resume and os.path.exists(cache):
        with open(cache) as f:
            saved = jlog.from_jsonable(json.load(f))  # "nan" strings -> floats
        if saved.get("meta") == meta:
            print(f"[{TABLE}/{budget}] reusing {cache}", file=log)
            return {"dir": table_dir, **saved["results"], "wall_time": 0.0}
    start = time.perf_counter()
    paths, skipped = ensure_datasets(sizes, root, seed, log)
    k_off, k_inst, k_imit = jax.random.split(jax.random.key(seed), 3)
    rows = offline_rows(sizes, paths, k_off, log)
    inst, facts = instability_rows(sizes, paths, k_inst, log)
    facts["skipped_envs"] = skipped
    rows += imitation_rows(sizes, paths, k_imit, log)
    wall = time.perf_counter() - start
    columns = list(dict.fromkeys(k for r in rows for k in r))
    jlog.write_csv_atomic(os.path.join(table_dir, "table.csv"), rows, columns)
    jlog.write_csv_atomic(
        os.path.join(table_dir, "instability.csv"), inst, list(inst[0])
    )
    jlog.write_atomic(
        os.path.join(table_dir, "table.md"),
        ["\n".join(_markdown(budget, sizes, rows, inst, facts, wall, seed))],
    )
    _plot(os.path.join(table_dir, "scores.png"), rows)
    _plot_instability(os.path.join(table_dir, "instability.png"), inst)
    results = {"rows": rows, "instability": inst, "facts": facts}
    jlog.write_json_atomic(cache, {"meta": meta, "results": results})
    return {"dir": table_dir, **results, "wall_time": wall}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jaxrl.scripts.table_dual_rl``: the table with a ``--datasets`` root."""
    parser = common.ArgumentParser(
        prog="python -m jaxrl.scripts.table_dual_rl", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--budget", default="small", choices=list(BUDGETS))
    parser.add_argument("--out", default="results", help="results root")
    parser.add_argument("--seed", type=common.nonnegative_int, default=0)
    parser.add_argument(
        "--datasets",
        default=None,
        help="dataset root (default <out>/dual-rl/datasets); existing datasets "
        "there are reused, missing environments are generated",
    )
    parser.add_argument("--resume", action="store_true")

    def go() -> int:
        args = parser.parse_args(argv)
        result = run(
            args.budget,
            out=args.out,
            seed=args.seed,
            resume=args.resume,
            datasets=args.datasets,
        )
        print(f"wrote {result['dir']} in {result['wall_time'] / 60:.1f} min")
        return 0

    return common.run_main(go, prog="table_dual_rl")


if __name__ == "__main__":
    sys.exit(main())
