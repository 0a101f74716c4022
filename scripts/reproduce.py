"""``jaxrl reproduce``: run every preset behind a named table and write the table.

A table (:data:`jaxrl.scripts.tables.TABLES`) either lists rows or names a custom
runner (its own experiment code, dispatched to). Each row names an agent and, per
budget, a preset (:data:`jaxrl.scripts.presets.PRESETS`) and a number of seeds.
Rows with ``runner="train"`` run chunked and checkpointed (``scripts/train.py``);
rows with ``runner="sweep"`` run all seeds in one jitted call (:mod:`jaxrl.sweep`).

Writes ``<out>/<table>/``:

* ``<agent>/<preset>/...``: each row's run directory (config, metrics, summary, PNG);
* ``table.md`` and ``table.csv``: per row the final headline metric, mean,
  95% bootstrap CI and IQM over seeds, seeds, wall time;
* ``curves_<metric>.png``: learning curves of all rows sharing a metric.

Budgets: ``tiny`` (tests, seconds), ``small`` (README quick start, a few minutes
on 2 CPU cores), ``full`` (paper scale).

Usage::

    jaxrl reproduce --table baseline --budget small
    jaxrl reproduce --table baseline --budget full --out results --resume
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax

from jaxrl import logging as jlog
from jaxrl.errors import ConfigError
from jaxrl.scripts import common
from jaxrl.scripts import tables as jtables

__all__ = ["reproduce", "build_parser", "run_from_args", "main"]

_COLUMNS = [
    "row",
    "agent",
    "env",
    "preset",
    "metric",
    "mean",
    "ci_low",
    "ci_high",
    "iqm",
    "n",
    "wall_s",
]


def reproduce(
    table: str,
    budget: str = "small",
    *,
    out: str = "results",
    seed: int = 0,
    resume: bool = False,
    quiet: bool = False,
    log: Any = None,
) -> dict[str, Any]:
    """Run every row of ``table`` at ``budget`` and write ``table.md``/``table.csv``.

    Args:
      table: a name in :data:`jaxrl.scripts.tables.TABLES` (a custom table is
        dispatched to its own function).
      budget: one of :data:`jaxrl.scripts.tables.BUDGETS`.
      out: results root; the table goes to ``<out>/<table>/``.
      seed: root seed of every row.
      resume: resume ``train`` rows from their checkpoints.
      quiet: no progress bars.
      log: stream for status lines (default stderr).

    Returns:
      ``{"dir", "rows", "wall_time"}``; ``rows`` are the table rows.

    Raises:
      ConfigError: unknown table or budget, or a preset that fails validation.
    """
    from jaxrl.scripts.sweep import sweep
    from jaxrl.scripts.train import train

    log = sys.stderr if log is None else log
    if budget not in jtables.BUDGETS:
        raise ConfigError(
            f"unknown budget {budget!r}; valid: {', '.join(jtables.BUDGETS)}"
        )
    spec_table = jtables.get_table(table)
    if spec_table.runner is not None:
        fn = spec_table.run_fn()
        return fn(budget, out=out, seed=seed, resume=resume, quiet=quiet, log=log)
    table_dir = os.path.join(out, table)
    start = time.perf_counter()
    # Resolve (and validate) every row before running anything.
    specs = []
    for row in spec_table.rows:
        preset = row.presets[budget]
        spec = common.resolve_run(
            row.agent,
            None,
            preset,
            list(row.overrides.get(budget, ())),
            (),
            row.num_seeds[budget],
        )
        specs.append((row, spec))

    results = []
    curves: dict[str, dict[str, Any]] = {}
    for row, spec in specs:
        run_dir = common.run_dir(out, table, spec.agent, spec.preset)
        print(
            f"[{table}/{budget}] {row.label}: {spec.agent}/{spec.preset} on {spec.env_name}, "
            f"{spec.num_seeds} seeds ({row.runner})",
            file=log,
        )
        t0 = time.perf_counter()
        if row.runner == "train":
            summary = (
                train(
                    spec,
                    seed=seed,
                    out_dir=run_dir,
                    resume=resume,
                    quiet=quiet,
                    log=log,
                ).summary
                or {}
            )
        elif row.runner == "sweep":
            summary = sweep(
                spec, None, seed=seed, out_dir=run_dir, quiet=quiet
            ).summaries[0]
        else:
            raise ConfigError(
                f"table {table!r} row {row.label!r} has unknown runner {row.runner!r}"
            )
        wall = time.perf_counter() - t0
        metric = common.default_metric(list(summary.get("final", {})), row.metric)
        head = summary.get("final", {}).get(metric, {}) if metric else {}
        results.append(
            {
                "row": row.label,
                "agent": spec.agent,
                "env": spec.env_name,
                "preset": spec.preset,
                "metric": metric,
                "mean": head.get("mean"),
                "ci_low": head.get("ci_low"),
                "ci_high": head.get("ci_high"),
                "iqm": head.get("iqm"),
                "n": head.get("n"),
                "wall_s": round(wall, 1),
                "dir": run_dir,
            }
        )
        if metric:
            arrays, _, iters = jlog.rows_to_metrics(
                jlog.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
            )
            if metric in arrays:
                curves.setdefault(metric, {})[row.label] = (arrays[metric], iters)
        print(
            f"  -> {metric} = {common.format_number(head.get('mean'))} "
            f"[{common.format_number(head.get('ci_low'))}, "
            f"{common.format_number(head.get('ci_high'))}] in {wall:.1f}s",
            file=log,
        )

    wall_time = time.perf_counter() - start
    _write_table(table_dir, spec_table, budget, results, wall_time)
    _plot_curves(table_dir, curves)
    return {"dir": table_dir, "rows": results, "wall_time": wall_time}


def _write_table(
    table_dir: str,
    spec_table: Any,
    budget: str,
    rows: list[dict[str, Any]],
    wall_time: float,
) -> None:
    os.makedirs(table_dir, exist_ok=True)
    jlog.write_csv_atomic(
        os.path.join(table_dir, "table.csv"), rows, [*_COLUMNS, "dir"]
    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"# Table `{spec_table.name}` (budget `{budget}`)\n\n"
        f"{spec_table.caption}\n\n"
        f"Generated {now} by `jaxrl reproduce --table {spec_table.name} --budget {budget}` "
        f"in {wall_time:.0f}s on {jax.default_backend()} ({jax.device_count()} device(s), "
        f"jax {jax.__version__}).\n\n"
    )
    body = common.markdown_table(rows, _COLUMNS)
    jlog.write_atomic(os.path.join(table_dir, "table.md"), [header, body])


def _plot_curves(table_dir: str, curves: dict[str, dict[str, Any]]) -> None:
    from jaxrl.scripts.plotting import plot_learning_curves

    for metric, by_label in curves.items():
        safe = metric.replace("/", "_")
        plot_learning_curves(
            {label: values for label, (values, _) in by_label.items()},
            os.path.join(table_dir, f"curves_{safe}.png"),
            x={label: iters for label, (_, iters) in by_label.items()},
            ylabel=metric,
        )


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add ``reproduce``'s arguments to ``parser`` (a new one if ``None``)."""
    parser = parser or common.ArgumentParser(
        prog="jaxrl reproduce", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--table", required=True, help=f"one of: {', '.join(jtables.table_names())}"
    )
    parser.add_argument("--budget", default="small", choices=jtables.BUDGETS)
    parser.add_argument(
        "--out", default="results", help="results root (default: results)"
    )
    parser.add_argument(
        "--seed", type=common.nonnegative_int, default=0, help="root seed"
    )
    parser.add_argument(
        "--resume", action="store_true", help="resume train rows from checkpoints"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``reproduce`` from parsed arguments."""
    result = reproduce(
        args.table,
        args.budget,
        out=args.out,
        seed=args.seed,
        resume=args.resume,
        quiet=args.quiet,
    )
    print(
        f"wrote {os.path.join(result['dir'], 'table.md')} in {result['wall_time']:.1f}s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jaxrl.scripts.reproduce``."""
    parser = build_parser()
    return common.run_main(
        lambda: run_from_args(parser.parse_args(argv)), prog="jaxrl reproduce"
    )


if __name__ == "__main__":
    sys.exit(main())
