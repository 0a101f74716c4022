"""``jaxrl reproduce``: run every preset behind a named table and write the table.

A table (:data:`jaxrl.scripts.tables.TABLES`) either lists rows or names a custom
runner (its own experiment code, dispatched to). Each row names an agent and, per
budget, a preset (:data:`jaxrl.scripts.presets.PRESETS`) and a number of seeds.
Rows with ``runner="train"`` run chunked and checkpointed (``scripts/train.py``);
rows with ``runner="sweep"`` run all seeds in one jitted call (:mod:`jaxrl.sweep`).

Writes ``<out>/<table>/``:

* ``<agent>/<preset>/...``: each row's run directory (config, metrics, summary, PNG);
* ``table.md`` and ``table.csv``: per row the final headline metric, mean,
  95% bootstrap CI and IQM over the healthy seeds, their number ``n``, the
  diverged seeds ``n_diverged`` (left out of the statistics), wall time;
* ``curves_<metric>.png``: learning curves of all rows sharing a metric
  (healthy seeds; a row whose seeds all diverged is labelled ``(diverged)``).

Budgets: ``tiny`` (tests, seconds), ``small`` (README quick start, a few minutes
on 2 CPU cores), ``full`` (paper scale).

Earlier results are never replaced silently: if ``<out>/<table>/`` holds table
files or any row's run dir holds results, the command stops with one line
before running anything, unless ``--resume`` continues that run (train rows
resume from their checkpoints, finished sweep rows with the same settings are
reused, custom tables reuse their caches) or ``--overwrite`` first removes them
(only the files runs write: table files, each row's results and checkpoints;
other folders such as dual-rl's ``datasets/`` stay). The table dir and each row's
run dir are locked (``.lock``, an flock) while the command runs.

Usage::

    jaxrl reproduce --table baseline --budget small
    jaxrl reproduce --table baseline --budget full --out results --resume
    jaxrl reproduce --table baseline --budget small --overwrite   # run it again from scratch
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax

from jaxrl import logging as jlog
from jaxrl import metrics as jmetrics
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
    "n_diverged",
    "wall_s",
]


def reproduce(
    table: str,
    budget: str = "small",
    *,
    out: str = "results",
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
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
      resume: continue an earlier run of the table: ``train`` rows resume from
        their checkpoints, finished ``sweep`` rows with the same settings are
        reused (unfinished ones run again), custom tables get ``resume=True``.
      overwrite: first remove the earlier results of this table (the table
        files in ``<out>/<table>/`` and the results in each row's run dir; see
        :func:`jaxrl.scripts.common.existing_results`).
      quiet: no progress bars.
      log: stream for status lines (default stderr).

    Returns:
      ``{"dir", "rows", "wall_time"}``; ``rows`` are the table rows.

    Raises:
      ConfigError: unknown table or budget, or a preset that fails validation;
        ``<out>/<table>/`` holds results and neither ``resume`` nor
        ``overwrite`` was given (or both were), checked before anything runs;
        another run holds the table's or a row's directory.
    """
    log = sys.stderr if log is None else log
    if resume and overwrite:
        raise ConfigError("pass either --resume or --overwrite, not both")
    if budget not in jtables.BUDGETS:
        raise ConfigError(
            f"unknown budget {budget!r}; valid: {', '.join(jtables.BUDGETS)}"
        )
    spec_table = jtables.get_table(table)
    table_dir = os.path.join(out, table)
    if spec_table.runner is not None:
        fn = spec_table.run_fn()
        with common.RunLock(table_dir):
            _check_earlier(table_dir, [], resume=resume, overwrite=overwrite)
            return fn(budget, out=out, seed=seed, resume=resume, quiet=quiet, log=log)
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
    with common.RunLock(table_dir):
        _check_earlier(
            table_dir,
            [common.run_dir(out, table, s.agent, s.preset) for _, s in specs],
            resume=resume,
            overwrite=overwrite,
        )
        return _run_rows(
            table, budget, spec_table, specs, out, seed, resume, quiet, log
        )


def _check_earlier(
    table_dir: str, run_dirs: list[str], *, resume: bool, overwrite: bool
) -> None:
    """Refuse earlier results of the table unless ``resume``; remove them if
    ``overwrite`` (each row's run dir under its own lock)."""
    found = common.existing_results(table_dir, table=True)
    for run_dir in run_dirs:
        rel = os.path.relpath(run_dir, table_dir)
        found += [f"{rel}/{name}" for name in common.existing_results(run_dir)]
    if not found:
        return
    if overwrite:
        common.clear_results(table_dir, table=True)
        for run_dir in run_dirs:
            if common.existing_results(run_dir):
                with common.RunLock(run_dir):
                    common.clear_results(run_dir)
    elif not resume:
        raise common.results_exist_error(table_dir, found)


def _finished_sweep(run_dir: str, spec: common.RunSpec, seed: int) -> dict | None:
    """The summary of a finished sweep row in ``run_dir`` run with the same
    settings, or None if it is not finished.

    Raises:
      ConfigError: the row was run with other settings.
    """
    from jaxrl.scripts.train import config_record

    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
            saved = json.load(f)
        with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
            summary = jlog.from_jsonable(json.load(f))
    except (OSError, ValueError):
        return None
    wanted = json.loads(json.dumps(jlog.to_jsonable(config_record(spec, seed))))
    for name in ("agent", "env", "env_kwargs", "config", "seed", "num_seeds"):
        if saved.get(name) != wanted[name]:
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({name} differs); "
                "pass --overwrite to replace it"
            )
    return summary


def _run_rows(
    table: str,
    budget: str,
    spec_table: Any,
    specs: list[tuple[Any, common.RunSpec]],
    out: str,
    seed: int,
    resume: bool,
    quiet: bool,
    log: Any,
) -> dict[str, Any]:
    """Run the rows (``<out>/<table>/`` is locked and checked)."""
    from jaxrl.scripts.sweep import sweep
    from jaxrl.scripts.train import describe_diverged, plot_curve, train

    table_dir = os.path.join(out, table)
    start = time.perf_counter()
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
            done = _finished_sweep(run_dir, spec, seed) if resume else None
            if done is not None:
                print(f"  finished earlier; reusing {run_dir}", file=log)
                summary = done
            else:  # under resume, an unfinished row's partial files are replaced
                summary = sweep(
                    spec,
                    None,
                    seed=seed,
                    out_dir=run_dir,
                    quiet=quiet,
                    overwrite=resume,
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
                "n_diverged": head.get("n_diverged"),
                "wall_s": round(wall, 1),
                "dir": run_dir,
            }
        )
        if metric:
            arrays, _, iters = jlog.rows_to_metrics(
                jlog.read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
            )
            if metric in arrays:  # diverged seeds are left out (or labelled)
                label, values = plot_curve(
                    row.label, arrays[metric], jmetrics.first_divergence(arrays)
                )
                curves.setdefault(metric, {})[label] = (values, iters)
        diverged = summary.get("diverged") or []
        print(
            f"  -> {metric} = {common.format_number(head.get('mean'))} "
            f"[{common.format_number(head.get('ci_low'))}, "
            f"{common.format_number(head.get('ci_high'))}] in {wall:.1f}s"
            + (f" ({len(diverged)} diverged)" if diverged else ""),
            file=log,
        )
        if diverged and row.runner == "sweep":  # train() has warned already
            print(
                f"warning: {spec.agent}/{spec.preset}: "
                f"{describe_diverged(diverged, spec.num_seeds)}; "
                "left out of the statistics",
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
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier run: train rows resume from checkpoints, "
        "finished sweep rows are reused",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="remove the table's earlier results first (without --resume or "
        "--overwrite a table dir holding results is refused)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_compile_cache_arg(parser)
    common.add_cpu_devices_arg(parser)
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``reproduce`` from parsed arguments."""
    result = reproduce(
        args.table,
        args.budget,
        out=args.out,
        seed=args.seed,
        resume=args.resume,
        overwrite=args.overwrite,
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
        lambda: common.run_command(run_from_args, parser.parse_args(argv)),
        prog="jaxrl reproduce",
    )


if __name__ == "__main__":
    sys.exit(main())
