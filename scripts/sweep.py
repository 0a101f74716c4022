"""``jaxrl sweep``: a hyperparameter grid × seeds in ONE jitted call (:mod:`jaxrl.sweep`).

Every ``--grid field=v1,v2,...`` adds an axis over a *traced* config field (a
static field such as a network width needs separate runs); the cartesian
product of the axes times ``--num-seeds`` seeds runs as one vmapped, sharded
computation. Seed ``s`` uses the same key at every grid point (common random
numbers), so differences between points are not seed noise.

Writes, under ``<out>/<table>/<agent>/<preset>/``:

* ``<point>/{config.json, metrics.jsonl, summary.json}`` per grid point
  (``<point>`` like ``lr=0.001,gamma=0.9``; the run dir itself when there is no grid);
* ``sweep.md`` and ``sweep.csv``: final headline metric per point (mean, 95%
  bootstrap CI, IQM over the healthy seeds, ``n``, ``n_diverged``), best point
  first and points whose seeds all diverged last (marked ``diverged``);
* ``learning_curves.png``: one mean line with CI band per point (healthy seeds;
  diverged points labelled).

Diverged seeds (a non-finite state after a chunk, as in ``jaxrl train``) are
named in one ``warning:`` line; the command exits with status 3 when every seed
of every point diverged.

A run dir that already holds results (these files, or ``train``'s) is refused
with one line unless ``--overwrite`` first removes them (only the files runs
write, stale grid-point folders included); a sweep cannot resume. The sweep
holds ``<run dir>/.lock`` while it runs, so a second run into the same dir
stops with one line naming the holder.

Usage::

    jaxrl sweep --agent dqn --preset cartpole-small --grid lr=1e-3,3e-4 --grid gamma=0.9,0.99 \\
        --num-seeds 4
    jaxrl sweep --agent dqn --preset cartpole-small --grid lr=1e-3,3e-4 --overwrite  # run again
    python -m jaxrl.scripts.sweep --agent vi_tabular --preset garnet --grid gamma=0.9,0.99 --num-seeds 20
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import config as jconfig
from jaxrl import logging as jlog
from jaxrl import loop as jloop
from jaxrl import metrics as jmetrics
from jaxrl.errors import ConfigError
from jaxrl.scripts import common

__all__ = [
    "SweepResult",
    "parse_grid",
    "make_chunked_train",
    "sweep",
    "point_label",
    "build_parser",
    "run_from_args",
    "main",
]


@dataclasses.dataclass
class SweepResult:
    """What :func:`sweep` returns.

    Attributes:
      out_dir: the sweep's results directory.
      points: ``G`` dicts naming each grid point.
      point_dirs: the per-point results directories.
      summaries: per-point ``summary.json`` contents.
      metric: the headline metric.
      metrics: ``{name: [G, S, T]}`` host arrays.
      wall_time: seconds including compilation.
    """

    out_dir: str
    points: list[dict[str, Any]]
    point_dirs: list[str]
    summaries: list[dict[str, Any]]
    metric: str | None
    metrics: dict[str, np.ndarray]
    wall_time: float


def _get_path(config: Any, name: str) -> Any:
    value = config
    for part in name.split("."):
        value = getattr(value, part)
    return value


def parse_grid(config: Any, items: Sequence[str]) -> dict[str, list[Any]]:
    """Parse ``["lr=1e-3,3e-4", "gamma=0.9,0.99"]`` into ``{field: [values]}``.

    Values are parsed to the field's type with :func:`jaxrl.config.apply_overrides`.

    Raises:
      ConfigError: malformed item, unknown field, unparsable or repeated axis.
    """
    axes: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"grid axis {item!r} is not of the form field=v1,v2,...")
        name, text = (s.strip() for s in item.split("=", 1))
        values = [v.strip() for v in text.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"grid axis {name!r} has no values")
        if name in axes:
            raise ConfigError(f"grid axis {name!r} given twice")
        axes[name] = [
            _get_path(jconfig.apply_overrides(config, [f"{name}={v}"]), name)
            for v in values
        ]
    return axes


def point_label(point: Mapping[str, Any]) -> str:
    """``{"lr": 0.001, "gamma": 0.9}`` -> ``"lr=0.001,gamma=0.9"`` (``"base"`` if empty)."""
    if not point:
        return "base"
    return ",".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in point.items()
    )


def make_chunked_train(
    spec: common.RunSpec, env: Any, env_params: Any, progress: Any = None
) -> Any:
    """Return ``train(key, config) -> (State, Metrics[T])``: init then all chunks.

    The same computation as the agent's ``make_train`` (``init`` followed by
    ``num_chunks`` calls of ``run``), with an optional in-jit progress report
    after every chunk and the drivers' divergence check: the metrics gain
    ``"health/finite"`` (:func:`jaxrl.loop.health_metrics`) on each chunk's
    last iteration. ``config`` may be traced (a grid point inside a vmap).
    With ``spec.env_key_arg`` the key is first split into an environment key
    (drawing this seed's environment instance, e.g. a random Garnet) and the
    agent's key, exactly as :func:`jaxrl.scripts.train.train` does.
    """
    module = spec.module

    def train(key: Any, config: Any) -> tuple[Any, Any]:
        ipc = int(config.iters_per_chunk)
        this_env, this_params = env, env_params
        if spec.env_key_arg is not None:
            k_env, key = jax.random.split(key)
            this_env, this_params = common.make_env(spec, k_env)
        state = module.init(key, this_env, this_params, config)
        run = module.make_run(config, this_env, this_params)

        def body(state: Any, chunk: Any) -> tuple[Any, Any]:
            state, metrics = run(state)
            if progress is not None:
                progress(0, (chunk + 1) * ipc - 1)
            # The divergence check: is every float of the state still finite?
            return state, {**metrics, **jloop.health_metrics(state, ipc)}

        state, metrics = jax.lax.scan(body, state, jnp.arange(int(config.num_chunks)))
        metrics = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), metrics)
        return state, metrics

    return train


def _write_point(
    point_dir: str,
    record: dict[str, Any],
    metrics: Mapping[str, np.ndarray],
    metric: str | None,
    plot: bool,
) -> dict[str, Any]:
    from jaxrl.scripts.train import write_summary

    os.makedirs(point_dir, exist_ok=True)
    jlog.write_json_atomic(os.path.join(point_dir, "config.json"), record)
    rows = jlog.metrics_to_rows(metrics, record["seed_ids"], 0)
    jlog.write_jsonl_atomic(os.path.join(point_dir, "metrics.jsonl"), rows)
    info = {
        k: record[k]
        for k in ("agent", "env", "env_kwargs", "preset", "seed", "num_seeds")
    }
    info["point"] = record.get("point", {})
    return write_summary(point_dir, info, metric, plot=plot)


def sweep(
    spec: common.RunSpec,
    axes: Mapping[str, Sequence[Any]] | None = None,
    *,
    seed: int = 0,
    out_dir: str,
    quiet: bool = False,
    plot: bool = True,
    overwrite: bool = False,
) -> SweepResult:
    """Run ``spec`` over the grid ``axes`` × ``spec.num_seeds`` seeds in one jitted call.

    The sweep holds ``out_dir``'s lock (:class:`jaxrl.scripts.common.RunLock`)
    throughout.

    Args:
      spec: the resolved run (base config).
      axes: ``{field: [values]}`` over traced fields (see :func:`parse_grid`).
      seed: root seed (seed ``s`` uses ``split(key(seed), S)[s]`` at every point).
      out_dir: results directory.
      quiet: no progress bar or progress lines.
      plot: write PNGs.
      overwrite: first remove the earlier results in ``out_dir`` (the files
        runs write, grid-point folders included; see
        :func:`jaxrl.scripts.common.existing_results`); without it a
        ``out_dir`` holding results is refused.

    Returns:
      A :class:`SweepResult`.

    Raises:
      ConfigError: unknown/static grid field or an invalid grid point;
        ``out_dir`` holds results and ``overwrite`` is false; another run holds
        ``out_dir``.
    """
    # Before anything that grows with the seeds and grid is allocated or written:
    num_points = math.prod(len(values) for values in (axes or {}).values())
    common.check_memory(
        spec, num_points=num_points, whole_run=True, devices=jax.devices()
    )
    with common.guarded_run_dir(out_dir, overwrite=overwrite, resumable=False):
        return _sweep(spec, axes, seed=seed, out_dir=out_dir, quiet=quiet, plot=plot)


def _sweep(
    spec: common.RunSpec,
    axes: Mapping[str, Sequence[Any]] | None,
    *,
    seed: int,
    out_dir: str,
    quiet: bool,
    plot: bool,
) -> SweepResult:
    """The body of :func:`sweep`, with ``out_dir`` locked and checked."""
    from jaxrl import sweep as jsweep
    from jaxrl.scripts.train import config_record

    start = time.perf_counter()
    axes = dict(axes or {})
    for point in _points(axes):  # validate every grid point on the host
        jconfig.validate(jconfig.apply_overrides(spec.config, point))
    # Build once on the host: checks the environment's name and arguments early.
    env, env_params = common.make_env(
        spec, jax.random.key(0) if spec.env_key_arg else None
    )
    config = spec.config
    total = int(config.num_chunks) * int(config.iters_per_chunk)
    unit, scale = common.progress_unit(config)
    progress = jlog.make_progress_callback(
        total,
        f"sweep {spec.agent}/{spec.preset}",
        quiet=quiet,
        ordered=jax.device_count() == 1,
        unit=unit,
        scale=scale,
    )
    train_fn = make_chunked_train(spec, env, env_params, progress)
    try:
        _, metrics, points = jsweep.run_sweep(
            train_fn, jax.random.key(seed), config, spec.num_seeds, **axes
        )
        metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
    finally:
        progress.close()

    point_dirs, summaries = [], []
    for g, point in enumerate(points):
        point_dir = out_dir if not axes else os.path.join(out_dir, point_label(point))
        record = config_record(
            dataclasses.replace(spec, config=jconfig.apply_overrides(config, point)),
            seed,
            point=point,
            grid=list(axes),
            runner="sweep",
        )
        summaries.append(
            _write_point(
                point_dir,
                record,
                {k: v[g] for k, v in metrics.items()},
                spec.metric,
                plot=plot and not axes,
            )
        )
        point_dirs.append(point_dir)
    metric = summaries[0]["metric"] if summaries else None
    if axes:
        _write_sweep_table(out_dir, points, summaries, metric, axes)
        if plot and metric is not None:
            from jaxrl.scripts.plotting import plot_learning_curves
            from jaxrl.scripts.train import plot_curve

            firsts = [
                jmetrics.first_divergence({k: v[g] for k, v in metrics.items()})
                for g in range(len(points))
            ]
            plot_learning_curves(
                dict(
                    plot_curve(point_label(p), metrics[metric][g], firsts[g])
                    for g, p in enumerate(points)
                ),
                os.path.join(out_dir, "learning_curves.png"),
                ylabel=metric,
                title=f"sweep {spec.agent}/{spec.preset} on {spec.env_name}",
            )
    return SweepResult(
        out_dir=out_dir,
        points=points,
        point_dirs=point_dirs,
        summaries=summaries,
        metric=metric,
        metrics=metrics,
        wall_time=time.perf_counter() - start,
    )


def _points(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    import itertools

    names = list(axes)
    return [
        dict(zip(names, vals, strict=True))
        for vals in itertools.product(*axes.values())
    ]


def _lower_is_better(metric: str | None) -> bool:
    return metric is not None and any(
        s in metric for s in ("loss", "subopt", "error", "regret")
    )


def _write_sweep_table(
    out_dir: str,
    points: list[dict[str, Any]],
    summaries: list[dict[str, Any]],
    metric: str | None,
    axes: Mapping[str, Any],
) -> None:
    """Write ``sweep.csv``/``sweep.md``: one row per point, best first.

    ``n`` counts the healthy seeds behind the statistics and ``n_diverged`` the
    diverged ones (left out). Points with a finite mean come first (best
    first), then the others; a point whose seeds all diverged comes last, and
    its mean reads ``diverged`` in ``sweep.md``.
    """
    rows = []
    for point, summary in zip(points, summaries, strict=True):
        head = summary.get("headline") or {}
        n_diverged = int(summary.get("n_diverged") or 0)
        rows.append(
            {
                **point,
                "metric": metric,
                "mean": head.get("mean"),
                "ci_low": head.get("ci_low"),
                "ci_high": head.get("ci_high"),
                "iqm": head.get("iqm"),
                "n": head.get("n"),
                "n_diverged": n_diverged,
                "_all_diverged": n_diverged > 0
                and n_diverged == len(summary.get("seed_ids") or ()),
            }
        )
    sign = 1.0 if _lower_is_better(metric) else -1.0

    def rank(row: dict[str, Any]) -> tuple[int, float]:
        mean = row["mean"]
        if row["_all_diverged"]:
            return 2, 0.0
        if mean is None or not math.isfinite(mean):
            return 1, 0.0
        return 0, sign * mean

    rows.sort(key=rank)
    columns = [*axes, "metric", "mean", "ci_low", "ci_high", "iqm", "n", "n_diverged"]
    jlog.write_csv_atomic(
        os.path.join(out_dir, "sweep.csv"),
        [{c: r[c] for c in columns} for r in rows],
        columns,
    )
    shown = [{**r, "mean": "diverged"} if r["_all_diverged"] else r for r in rows]
    caption = (
        f"Sweep: final {metric}, best first; diverged seeds (n_diverged) are left "
        "out of the statistics, and points whose seeds all diverged come last."
    )
    jlog.write_atomic(
        os.path.join(out_dir, "sweep.md"),
        [common.markdown_table(shown, columns, caption=caption)],
    )


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add ``sweep``'s arguments to ``parser`` (a new one if ``None``)."""
    parser = parser or common.ArgumentParser(
        prog="jaxrl sweep", description=__doc__.split("\n")[0]
    )
    common.add_common_run_args(parser)
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2",
        help="a grid axis over a traced config field (repeatable)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="remove the run dir's earlier results first (without it a run dir "
        "holding results is refused)",
    )
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``sweep`` from parsed arguments.

    Returns:
      0, or 3 (:data:`jaxrl.scripts.train.EXIT_DIVERGED`) when every seed of
      every grid point diverged; a warning line on stderr names diverged
      points and seeds either way.
    """
    if common.list_presets(args):
        return 0
    spec = common.resolve_run(
        args.agent,
        args.env,
        args.preset,
        args.overrides,
        args.env_overrides,
        args.num_seeds,
    )
    axes = parse_grid(spec.config, args.grid)
    out_dir = common.run_dir(args.out, args.table or "sweep", spec.agent, spec.preset)
    result = sweep(
        spec,
        axes,
        seed=args.seed,
        out_dir=out_dir,
        quiet=args.quiet,
        overwrite=args.overwrite,
    )
    for point, summary in zip(result.points, result.summaries, strict=True):
        head = summary.get("headline") or {}
        if head:
            print(
                f"{point_label(point)}: final {result.metric} = "
                f"{common.format_headline(head)}"
            )
    print(
        f"{len(result.points)} points x {spec.num_seeds} seeds in {result.wall_time:.1f}s"
    )
    print(out_dir)
    return _report_divergence(result)


def _report_divergence(result: SweepResult) -> int:
    """Print one warning line naming the diverged points and seeds; return the
    exit status (:data:`jaxrl.scripts.train.EXIT_DIVERGED` when every seed of
    every point diverged, else 0)."""
    from jaxrl.scripts.train import EXIT_DIVERGED, describe_diverged

    parts, all_diverged = [], bool(result.summaries)
    for point, summary in zip(result.points, result.summaries, strict=True):
        diverged, seeds = summary.get("diverged") or [], summary.get("seed_ids") or []
        all_diverged = all_diverged and bool(seeds) and len(diverged) == len(seeds)
        if diverged:
            parts.append(
                f"{point_label(point)}: {describe_diverged(diverged, len(seeds))}"
            )
    if parts:
        print(
            f"warning: {'; '.join(parts)}; left out of the statistics",
            file=sys.stderr,
        )
    return EXIT_DIVERGED if all_diverged else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jaxrl.scripts.sweep``."""
    parser = build_parser()
    return common.run_main(
        lambda: run_from_args(parser.parse_args(argv)), prog="jaxrl sweep"
    )


if __name__ == "__main__":
    sys.exit(main())
