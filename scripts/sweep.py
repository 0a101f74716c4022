"""``jaxrl sweep``: a hyperparameter grid × seeds, vmapped and sharded (:mod:`jaxrl.sweep`).

Every ``--grid field=v1,v2,...`` adds an axis over a *traced* config field (a
static field such as a network width needs separate runs); the cartesian
product of the axes times ``--num-seeds`` seeds runs as one vmapped
computation sharded over all devices: ``jit`` of the vmapped ``init``, then
``num_chunks`` calls of the vmapped chunk over the ``[G, S]`` state, with the
metric rows appended and a checkpoint (``ckpt/<chunks done>``) saved after each
chunk (bitwise the results of the whole run as one jitted call). Seed ``s``
uses the same key at every grid point (common random numbers), so differences
between points are not seed noise.

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
with one line unless ``--resume`` continues them from the newest intact
checkpoint (bitwise the uninterrupted results; ``--max-chunks`` stops early) or
``--overwrite`` first removes them (only the files runs write, ``ckpt/`` and
stale grid-point folders included). The sweep holds ``<run dir>/.lock`` while
it runs, so a second run into the same dir stops with one line naming the
holder.

Several processes (``--distributed``; the same command in every process, with
``--coordinator-address``, ``--num-processes`` and ``--process-id`` or
``$JAX_COORDINATOR_ADDRESS``, ``$JAX_NUM_PROCESSES``, ``$JAX_PROCESS_ID``):
``jax.distributed.initialize()`` runs first, the grid × seeds are sharded over
every process's devices, the metrics are gathered to every process after each
chunk, all processes save the checkpoints together (orbax), and only process 0
takes the lock, writes the results files and prints.

Usage::

    jaxrl sweep --agent dqn --preset cartpole-small --grid lr=1e-3,3e-4 --grid gamma=0.9,0.99 \\
        --num-seeds 4
    jaxrl sweep --agent dqn --preset cartpole-small --grid lr=1e-3,3e-4 --overwrite  # run again
    jaxrl sweep --agent dqn --preset cartpole-small --grid lr=1e-3,3e-4 --resume  # after a crash
    # on each of 2 hosts (i = 0, 1):
    jaxrl sweep --agent dqn --preset cartpole --grid lr=1e-3,3e-4 --num-seeds 64 \\
        --distributed --coordinator-address host0:1234 --num-processes 2 --process-id i
    python -m jaxrl.scripts.sweep --agent vi_tabular --preset garnet --grid gamma=0.9,0.99 --num-seeds 20
"""

from __future__ import annotations

import contextlib
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
    "make_chunk_fns",
    "sweep",
    "initialize_distributed",
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
      summaries: per-point ``summary.json`` contents (empty until the sweep
        finished, and on processes other than 0).
      metric: the headline metric.
      metrics: ``{name: [G, S, T]}`` host arrays, read back from the points'
        ``metrics.jsonl`` (empty when ``summaries`` is).
      wall_time: seconds including compilation.
      finished: whether every chunk has run (else summaries are empty and
        ``--resume`` continues).
    """

    out_dir: str
    points: list[dict[str, Any]]
    point_dirs: list[str]
    summaries: list[dict[str, Any]]
    metric: str | None
    metrics: dict[str, np.ndarray]
    wall_time: float
    finished: bool = True


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


def make_chunk_fns(spec: common.RunSpec, env: Any, env_params: Any) -> tuple[Any, Any]:
    """Return ``(init_fn, run_fn)`` for :func:`jaxrl.sweep.make_chunked_sweep`.

    ``init_fn(key, config) -> State`` and ``run_fn(key, state, config) ->
    (State, Metrics[iters_per_chunk])`` for one (grid point, seed) pair: the
    agent's ``init`` and one call of its ``make_run``, plus the drivers'
    divergence check (``"health/finite"``, :func:`jaxrl.loop.health_metrics`).
    ``init_fn`` followed by ``num_chunks`` calls of ``run_fn`` is the
    computation of :func:`make_chunked_train`. With ``spec.env_key_arg`` the
    seed key is first split into an environment key (this seed's environment
    instance, rebuilt from the same key in every chunk) and the agent's key.
    """
    module = spec.module

    def environment(key: Any) -> tuple[Any, Any, Any]:
        if spec.env_key_arg is None:
            return env, env_params, key
        k_env, key = jax.random.split(key)
        this_env, this_params = common.make_env(spec, k_env)
        return this_env, this_params, key

    def init_fn(key: Any, config: Any) -> Any:
        this_env, this_params, key = environment(key)
        return module.init(key, this_env, this_params, config)

    def run_fn(key: Any, state: Any, config: Any) -> tuple[Any, Any]:
        this_env, this_params, _ = environment(key)
        state, metrics = module.make_run(config, this_env, this_params)(state)
        # The divergence check: is every float of the state still finite?
        ipc = int(config.iters_per_chunk)
        return state, {**metrics, **jloop.health_metrics(state, ipc)}

    return init_fn, run_fn


def sweep(
    spec: common.RunSpec,
    axes: Mapping[str, Sequence[Any]] | None = None,
    *,
    seed: int = 0,
    out_dir: str,
    quiet: bool = False,
    plot: bool = True,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint: bool = True,
    max_chunks: int | None = None,
    keep_checkpoints: int = 2,
    log: Any = None,
) -> SweepResult:
    """Run ``spec`` over the grid ``axes`` × ``spec.num_seeds`` seeds, chunk by chunk.

    ``jit`` of the vmapped ``init`` over all ``[G, S]`` pairs, then
    ``num_chunks`` calls of the vmapped chunk (:func:`jaxrl.sweep.make_chunked_sweep`,
    sharded over all devices); after each chunk its metric rows are appended
    to every point's ``metrics.jsonl`` and the ``[G, S]`` state is
    checkpointed (``<out_dir>/ckpt/<chunks done>``), so ``resume`` continues a
    stopped sweep with bitwise the same results. The sweep holds
    ``out_dir``'s lock (:class:`jaxrl.scripts.common.RunLock`) throughout.

    Multi-process (after ``jax.distributed.initialize``, see
    :func:`initialize_distributed`): every process runs this with the same
    arguments; the mesh spans every process's devices, the metrics are
    gathered to every process (:func:`jaxrl.sweep.gather`), checkpoints are
    saved by all processes together, and only process 0 takes the lock and
    writes the results files; the others return a result with no summaries.

    Args:
      spec: the resolved run (base config).
      axes: ``{field: [values]}`` over traced fields (see :func:`parse_grid`).
      seed: root seed (seed ``s`` uses ``split(key(seed), S)[s]`` at every point).
      out_dir: results directory.
      quiet: no progress bar or progress lines.
      plot: write PNGs.
      overwrite: first remove the earlier results in ``out_dir`` (the files
        runs write, ``ckpt/`` and grid-point folders included; see
        :func:`jaxrl.scripts.common.existing_results`); without it (or
        ``resume``) a ``out_dir`` holding results is refused.
      resume: continue from the newest intact checkpoint in ``out_dir/ckpt``
        (a fresh start if there is none).
      checkpoint: save a checkpoint after every chunk.
      max_chunks: stop after this many chunks in this call (resume later).
      keep_checkpoints: how many of the newest checkpoints to keep.
      log: a text stream for status lines (default ``sys.stderr``).

    Returns:
      A :class:`SweepResult` (``summaries`` empty until the sweep finished,
      and on processes other than 0).

    Raises:
      ConfigError: unknown/static grid field or an invalid grid point;
        ``out_dir`` holds results and neither ``overwrite`` nor ``resume``
        was given (or both were); another run holds ``out_dir``; a checkpoint
        that does not match this sweep.
    """
    # Before anything that grows with the seeds and grid is allocated or written:
    num_points = math.prod(len(values) for values in (axes or {}).values())
    error = None
    try:
        common.check_memory(
            spec, num_points=num_points, whole_run=True, devices=jax.devices()
        )
    except ConfigError as err:
        error = err
    guard = (
        common.guarded_run_dir(out_dir, overwrite=overwrite, resume=resume)
        if jax.process_index() == 0
        else contextlib.nullcontext()
    )
    with contextlib.ExitStack() as stack:
        if error is None:
            try:
                stack.enter_context(guard)
            except ConfigError as err:
                error = err
        _agree(error)  # every process stops if one refused
        return _sweep(
            spec,
            axes,
            seed=seed,
            out_dir=out_dir,
            quiet=quiet,
            plot=plot,
            resume=resume,
            checkpoint=checkpoint,
            max_chunks=max_chunks,
            keep_checkpoints=keep_checkpoints,
            log=sys.stderr if log is None else log,
        )


def _agree(error: ConfigError | None) -> None:
    """Raise ``error``; with several processes, raise on every process if any has one."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        flags = multihost_utils.process_allgather(np.int32(error is not None))
        if error is None and np.any(flags):
            bad = [int(i) for i in np.flatnonzero(flags)]
            raise ConfigError(
                f"process {bad[0]} refused the sweep (see its error line); stopping"
            )
    if error is not None:
        raise error


def _to_global(x: Any, sharding: Any) -> Any:
    """A global array with ``sharding`` from the whole value ``x`` held by every
    process (each keeps only its shards)."""
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _to_global(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])


def _identity(spec: common.RunSpec, seed: int, axes: Mapping[str, Any]) -> dict:
    """The fields a sweep checkpoint must match to be resumed."""
    from jaxrl.scripts.train import _identity as train_identity

    return {
        **train_identity(spec, seed),
        "grid": {k: jlog.to_jsonable(list(v)) for k, v in axes.items()},
    }


def _sweep(
    spec: common.RunSpec,
    axes: Mapping[str, Sequence[Any]] | None,
    *,
    seed: int,
    out_dir: str,
    quiet: bool,
    plot: bool,
    resume: bool,
    checkpoint: bool,
    max_chunks: int | None,
    keep_checkpoints: int,
    log: Any,
) -> SweepResult:
    """The body of :func:`sweep`, with ``out_dir`` locked and checked."""
    from jaxrl import checkpoint as jckpt
    from jaxrl import sweep as jsweep
    from jaxrl.scripts.train import _check_identity, _set_aside, config_record

    start = time.perf_counter()
    primary = jax.process_index() == 0
    axes = dict(axes or {})
    for point in _points(axes):  # validate every grid point on the host
        jconfig.validate(jconfig.apply_overrides(spec.config, point))
    # Build once on the host: checks the environment's name and arguments early.
    env, env_params = common.make_env(
        spec, jax.random.key(0) if spec.env_key_arg else None
    )
    config = spec.config
    num_chunks, ipc = int(config.num_chunks), int(config.iters_per_chunk)
    if axes:
        stacked, points = jconfig.grid(config, **axes)
    else:
        stacked, points = jconfig.stack_configs([config]), [{}]
    init_fn, run_fn = make_chunk_fns(spec, env, env_params)
    key = jax.random.key(seed)

    def lower_one_pair() -> tuple[Any, Any]:
        point = jax.tree.map(lambda x: x[0], stacked)
        state = jax.eval_shape(init_fn, key, point)
        return (
            jax.jit(init_fn).lower(key, point),
            jax.jit(run_fn).lower(key, state, point),
        )

    # All devices, or one per process if the program calls CPU LAPACK kernels
    # on several CPU devices, where they can hang (jaxrl.sweep.lapack_safe_devices).
    devices, lapack = jsweep.lapack_safe_devices(jax.devices(), lower_one_pair)
    if lapack and primary and not quiet:
        print(
            common.lapack_note(
                spec.agent, lapack, "the sweep runs on one device per process"
            ),
            file=sys.stderr if log is None else log,
        )
    chunked = jsweep.make_chunked_sweep(
        init_fn, run_fn, len(points), spec.num_seeds, devices=devices
    )
    ckpt_dir = os.path.abspath(os.path.join(out_dir, "ckpt"))
    identity = _identity(spec, seed, axes)

    # RESTORE OR START (sweep() has checked out_dir: without resume it holds
    # no earlier results)
    start_chunk, state = 0, None
    if resume and jckpt.all_steps(ckpt_dir):
        target = chunked.abstract_state(key, stacked)
        if jax.process_count() > 1:  # read whole leaves here, then make them global
            target = jax.tree.map(
                lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), target
            )
        restored = jckpt.restore_latest_intact(ckpt_dir, target)
        state, meta = restored.state, restored.metadata
        if jax.process_count() > 1:
            state = jax.tree.map(lambda x: _to_global(x, chunked.state_sharding), state)
        _check_identity(meta, identity, ckpt_dir)
        for bad, reason in restored.skipped:  # newest first
            if primary:
                aside = os.path.basename(_set_aside(ckpt_dir, bad))
                print(
                    f"checkpoint {bad} is corrupt ({reason}); resuming from "
                    f"{restored.step} (moved it to ckpt/{aside})",
                    file=log,
                )
        if jax.process_count() > 1:  # the set-aside steps are gone for everyone
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("jaxrl sweep restored")
        start_chunk = int(meta.get("chunks_done", restored.step))
        if primary:
            print(
                f"resuming from {ckpt_dir} after chunk {start_chunk}/{num_chunks}",
                file=log,
            )
    elif resume and any(
        os.path.exists(os.path.join(out_dir, name))
        for name in ("summary.json", "sweep.csv")
    ):
        raise ConfigError(
            f"{out_dir} holds a finished sweep without checkpoints; nothing to "
            "resume (pass --overwrite to run it again)"
        )
    if state is None:
        state = chunked.init(key, stacked)

    point_dirs = [
        out_dir if not axes else os.path.join(out_dir, point_label(p)) for p in points
    ]
    seed_ids = list(range(spec.num_seeds))
    records = [
        config_record(
            dataclasses.replace(spec, config=jconfig.apply_overrides(config, point)),
            seed,
            point=point,
            grid=list(axes),
            runner="sweep",
        )
        for point in points
    ]
    appenders = []
    if primary:  # only process 0 writes files
        for point_dir, record in zip(point_dirs, records, strict=True):
            os.makedirs(point_dir, exist_ok=True)
            jlog.write_json_atomic(os.path.join(point_dir, "config.json"), record)
            appenders.append(
                jlog.JsonlAppender(
                    os.path.join(point_dir, "metrics.jsonl"),
                    keep=lambda r: int(r["iter"]) < start_chunk * ipc,
                    fresh=start_chunk == 0,
                )
            )
    unit, scale = common.progress_unit(config)
    progress = jlog.make_progress_callback(
        num_chunks * ipc,
        f"sweep {spec.agent}/{spec.preset}",
        quiet=quiet or not primary,
        unit=unit,
        scale=scale,
    )
    end_chunk = (
        num_chunks if max_chunks is None else min(num_chunks, start_chunk + max_chunks)
    )
    progress.start_at(start_chunk * ipc)
    try:
        for chunk in range(start_chunk, end_chunk):
            state, metrics = chunked.run(key, state, stacked)
            metrics = jsweep.gather(metrics)  # every process, [G, S, ipc]
            for g, appender in enumerate(appenders):
                rows = jlog.metrics_to_rows(
                    {k: v[g] for k, v in metrics.items()}, seed_ids, chunk * ipc
                )
                appender.append(rows)
            if checkpoint:  # every process: orbax writes each one's shards
                meta = {**identity, "chunks_done": chunk + 1}
                jckpt.save(
                    ckpt_dir, chunk + 1, state, meta, max_to_keep=keep_checkpoints
                )
            progress.update_to((chunk + 1) * ipc)
    finally:
        progress.close()

    finished = end_chunk == num_chunks
    summaries: list[dict[str, Any]] = []
    all_metrics: dict[str, np.ndarray] = {}
    metric = None
    if not finished and primary:
        print(
            f"stopped after chunk {end_chunk}/{num_chunks}; continue with --resume",
            file=log,
        )
    if finished and primary:
        summaries, all_metrics = _write_results(
            spec, out_dir, points, point_dirs, records, axes, plot
        )
        metric = summaries[0]["metric"] if summaries else None
    return SweepResult(
        out_dir=out_dir,
        points=points,
        point_dirs=point_dirs,
        summaries=summaries,
        metric=metric,
        metrics=all_metrics,
        wall_time=time.perf_counter() - start,
        finished=finished,
    )


def _write_results(
    spec: common.RunSpec,
    out_dir: str,
    points: list[dict[str, Any]],
    point_dirs: list[str],
    records: list[dict[str, Any]],
    axes: Mapping[str, Any],
    plot: bool,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Write every point's summary, the sweep table and the curves from the
    points' ``metrics.jsonl``; return the summaries and ``{name: [G, S, T]}``."""
    from jaxrl.scripts.train import write_summary

    summaries, per_point = [], []
    for point_dir, record in zip(point_dirs, records, strict=True):
        info = {
            k: record[k]
            for k in ("agent", "env", "env_kwargs", "preset", "seed", "num_seeds")
        }
        info["point"] = record.get("point", {})
        summaries.append(
            write_summary(point_dir, info, spec.metric, plot=plot and not axes)
        )
        rows = jlog.read_jsonl(os.path.join(point_dir, "metrics.jsonl"))
        per_point.append(jlog.rows_to_metrics(rows)[0])
    metrics = {
        name: np.stack([arrays[name] for arrays in per_point]) for name in per_point[0]
    }
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
    return summaries, metrics


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
    common.add_chunked_run_args(parser)
    dist = parser.add_argument_group("multi-process (jax.distributed)")
    dist.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize() first; run the same command in "
        "every process (only process 0 writes results)",
    )
    dist.add_argument(
        "--coordinator-address",
        default=None,
        metavar="HOST:PORT",
        help="process 0's address (default $JAX_COORDINATOR_ADDRESS or the cluster's)",
    )
    dist.add_argument(
        "--num-processes",
        type=common.positive_int,
        default=None,
        help="number of processes (default $JAX_NUM_PROCESSES or the cluster's)",
    )
    dist.add_argument(
        "--process-id",
        type=common.nonnegative_int,
        default=None,
        help="this process's index (default $JAX_PROCESS_ID or the cluster's)",
    )
    common.add_compile_cache_arg(parser)
    common.add_cpu_devices_arg(parser)
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``sweep`` from parsed arguments.

    Returns:
      0, or 3 (:data:`jaxrl.scripts.train.EXIT_DIVERGED`) when every seed of
      every grid point diverged; a warning line on stderr names diverged
      points and seeds either way.
    """
    if getattr(args, "distributed", False):  # before anything touches devices
        initialize_distributed(
            args.coordinator_address, args.num_processes, args.process_id
        )
    elif args.coordinator_address or args.num_processes or args.process_id is not None:
        raise ConfigError(
            "--coordinator-address, --num-processes and --process-id need --distributed"
        )
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
        resume=args.resume,
        checkpoint=not args.no_checkpoint,
        max_chunks=args.max_chunks,
        keep_checkpoints=args.keep_checkpoints,
    )
    if jax.process_index() != 0 or not result.finished:  # process 0 reports
        if jax.process_index() == 0:
            print(out_dir)
        return 0
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


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Call ``jax.distributed.initialize`` (before anything touches JAX devices).

    Arguments left ``None`` come from ``$JAX_COORDINATOR_ADDRESS``,
    ``$JAX_NUM_PROCESSES`` and ``$JAX_PROCESS_ID``, else from JAX's cluster
    detection (SLURM, Open MPI, Cloud TPU, ...). On CPU the processes exchange
    data through gloo (JAX's default ``jax_cpu_collectives_implementation``).

    Raises:
      ConfigError: one line if JAX cannot start or join the job.
    """

    def from_env(name: str, value: int | None) -> int | None:
        text = os.environ.get(name)
        if value is not None or not text:
            return value
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"${name} must be an integer, got {text!r}") from None

    num_processes = from_env("JAX_NUM_PROCESSES", num_processes)
    process_id = from_env("JAX_PROCESS_ID", process_id)
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
        )
    except (RuntimeError, ValueError, TypeError) as err:
        raise ConfigError(
            f"jax.distributed.initialize failed: {common.one_line(str(err))}"
        ) from None


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
        lambda: common.run_command(run_from_args, parser.parse_args(argv)),
        prog="jaxrl sweep",
    )


if __name__ == "__main__":
    sys.exit(main())
