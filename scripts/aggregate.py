"""``jaxrl aggregate``: IQM / bootstrap-CI tables and learning curves from results dirs.

Finds every run directory (one holding ``metrics.jsonl``) under the given
paths, takes each seed's final value of a metric (its last finite value) and
reports mean, 95% percentile-bootstrap CI, IQM and seed count per run, one row
per run (agent/preset, or grid point), plus a learning-curve PNG with one mean
line and CI band per run. Diverged seeds (:func:`jaxrl.metrics.first_divergence`)
are never averaged in: they are counted in ``n_diverged`` and left out of the
statistics and curves (a run whose seeds all diverged is plotted up to the
divergence and labelled ``(diverged)``). With ``--random`` and ``--expert`` scores are
normalised (0 = random, 1 = expert) before aggregation.

Usage::

    jaxrl aggregate results/baseline
    jaxrl aggregate results/train/dqn results/sweep/dqn --metric eval/return --out results/agg
    jaxrl aggregate results/train/dqn --random 22 --expert 500
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxrl import logging as jlog
from jaxrl import metrics as jmetrics
from jaxrl.errors import ConfigError
from jaxrl.scripts import common
from jaxrl.scripts.train import plot_curve

__all__ = ["find_runs", "aggregate", "build_parser", "run_from_args", "main"]

_COLUMNS = [
    "run",
    "agent",
    "env",
    "preset",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
    "iqm",
    "n",
    "n_diverged",
]


def find_runs(paths: Sequence[str]) -> list[str]:
    """Return the run directories (holding ``metrics.jsonl``) under ``paths``, sorted.

    Raises:
      ConfigError: if a path does not exist or no run is found.
    """
    found: set[str] = set()
    for path in paths:
        if not os.path.exists(path):
            raise ConfigError(f"no such results path: {path}")
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if d != "ckpt"]
            if "metrics.jsonl" in files:
                found.add(os.path.normpath(root))
    if not found:
        raise ConfigError(
            f"no run directories (with metrics.jsonl) under {', '.join(paths)}"
        )
    return sorted(found)


def _label(run: str, config: dict[str, Any], common_root: str) -> str:
    rel = os.path.relpath(run, common_root)
    return rel if rel != "." else os.path.basename(run)


def aggregate(
    paths: Sequence[str],
    *,
    metric: str | None = None,
    out: str | None = None,
    random_score: float | None = None,
    expert_score: float | None = None,
    num_resamples: int = 2000,
    seed: int = 0,
    plot: bool = True,
) -> list[dict[str, Any]]:
    """Aggregate the runs under ``paths`` into ``aggregate.md``/``.csv``/``.png`` in ``out``.

    Args:
      paths: results dirs (searched recursively for run directories).
      metric: the metric to aggregate (default: each run's headline metric).
      out: output directory (default: the first path).
      random_score: ``R_random`` for normalisation (needs ``expert_score``).
      expert_score: ``R_expert`` for normalisation.
      num_resamples: bootstrap resamples.
      seed: bootstrap numpy seed.
      plot: write ``aggregate.png``.

    Returns:
      The table rows.

    Raises:
      ConfigError: no runs, a metric missing from every run, only one of
        the normalisation scores, or scores that are equal or not finite.
    """
    if (random_score is None) != (expert_score is None):
        raise ConfigError("pass both --random and --expert to normalise scores")
    if random_score is not None and not (
        np.isfinite([random_score, expert_score]).all() and random_score != expert_score
    ):
        raise ConfigError(
            f"--random and --expert must be finite and differ, got {random_score:g} "
            f"and {expert_score:g}"
        )
    runs = find_runs(paths)
    out = out or paths[0]
    common_root = (
        os.path.commonpath(runs) if len(runs) > 1 else os.path.dirname(runs[0])
    )
    rows, curves, xs = [], {}, {}
    for run in runs:
        config = {}
        cfg_path = os.path.join(run, "config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                config = json.load(f)
        arrays, _, iters = jlog.rows_to_metrics(
            jlog.read_jsonl(os.path.join(run, "metrics.jsonl"))
        )
        first = jmetrics.first_divergence(arrays)
        arrays.pop(jmetrics.HEALTH_METRIC, None)
        name = common.default_metric(list(arrays), metric or config.get("metric"))
        if metric is not None and metric not in arrays:
            continue
        if name is None:
            continue
        values = arrays[name]
        if random_score is not None:
            values = jmetrics.normalized_score(values, random_score, expert_score)
        finals = jmetrics.final_values(values[first < 0])
        finals = finals[np.isfinite(finals)]
        label = _label(run, config, common_root)
        if finals.size:
            low, high = jmetrics.bootstrap_ci(finals, num_resamples, 0.95, seed)
            stats = {
                "mean": float(jmetrics.mean(finals)),
                "ci_low": float(low),
                "ci_high": float(high),
                "iqm": float(jmetrics.iqm(finals)),
            }
        else:  # no healthy seed with a finite value (as in summary.json: NaN)
            stats = dict.fromkeys(("mean", "ci_low", "ci_high", "iqm"), float("nan"))
        rows.append(
            {
                "run": label,
                "agent": config.get("agent"),
                "env": config.get("env"),
                "preset": config.get("preset"),
                "metric": name + (" (normalised)" if random_score is not None else ""),
                **stats,
                "n": int(finals.size),
                "n_diverged": int(np.sum(first >= 0)),
            }
        )
        shown, curve = plot_curve(label, values, first)
        curves[shown], xs[shown] = curve, iters
    if not rows:
        raise ConfigError(
            f"metric {metric!r} not found in any run under {', '.join(paths)}"
        )
    os.makedirs(out, exist_ok=True)
    jlog.write_csv_atomic(os.path.join(out, "aggregate.csv"), rows, _COLUMNS)
    caption = (
        "Final value per seed (last finite); mean, 95% percentile-bootstrap CI "
        f"({num_resamples} resamples) and IQM over seeds; diverged seeds "
        "(n_diverged) are left out."
    )
    jlog.write_atomic(
        os.path.join(out, "aggregate.md"),
        [common.markdown_table(rows, _COLUMNS, caption)],
    )
    if plot:
        from jaxrl.scripts.plotting import plot_learning_curves

        metrics_used = sorted({r["metric"] for r in rows})
        plot_learning_curves(
            curves,
            os.path.join(out, "aggregate.png"),
            x=xs,
            ylabel=", ".join(metrics_used),
        )
    return rows


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add ``aggregate``'s arguments to ``parser`` (a new one if ``None``)."""
    parser = parser or common.ArgumentParser(
        prog="jaxrl aggregate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("paths", nargs="+", help="results directories")
    parser.add_argument(
        "--metric", default=None, help="metric (default: each run's headline)"
    )
    parser.add_argument(
        "--out", default=None, help="output dir (default: the first path)"
    )
    parser.add_argument(
        "--random", type=float, default=None, help="random-policy score"
    )
    parser.add_argument(
        "--expert", type=float, default=None, help="expert/reference score"
    )
    parser.add_argument("--num-resamples", type=common.positive_int, default=2000)
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``aggregate`` from parsed arguments and print the markdown table."""
    rows = aggregate(
        args.paths,
        metric=args.metric,
        out=args.out,
        random_score=args.random,
        expert_score=args.expert,
        num_resamples=args.num_resamples,
        plot=not args.no_plot,
    )
    print(common.markdown_table(rows, _COLUMNS), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jaxrl.scripts.aggregate``."""
    parser = build_parser()
    return common.run_main(
        lambda: run_from_args(parser.parse_args(argv)), prog="jaxrl aggregate"
    )


if __name__ == "__main__":
    sys.exit(main())
