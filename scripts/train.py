"""``jaxrl train``: one agent, one config, ``S`` vmapped seeds, chunked with checkpoints.

The run is ``jit(vmap(init))(keys)`` followed by ``num_chunks`` calls of
``jit(vmap(run))(state)``, with the ``[S]`` seed axis sharded over the local
devices (:func:`jaxrl.sweep.seed_sharding`: the most devices whose count
divides ``S``; no padding). After every chunk the per-seed metric rows are
appended to ``metrics.jsonl`` and the full vmapped state is checkpointed
(``ckpt/<chunks done>``). ``--resume`` restores the newest intact checkpoint
and continues; because every chunk is the same compiled function applied to the
same state, the result is bitwise identical to an uninterrupted run. (A corrupt
newest checkpoint is reported in one line, moved aside to
``ckpt/<step>.corrupt``, and the run continues from the older one.) At the end
``config.json``, ``summary.json`` (final value of every metric: mean, 95%
bootstrap CI, IQM over seeds) and ``learning_curve.png`` are written to
``<out>/<table>/<agent>/<preset>/``.

Divergence: after every chunk each seed's state is checked for non-finite
floats (the metric ``health/finite``). Diverged seeds are listed in
``summary.json`` and left out of its statistics, one ``warning:`` line names
them, and the command exits with status 3 when every seed diverged.

A run dir that already holds results is refused (one line, exit 2) unless
``--resume`` continues them or ``--overwrite`` first removes them (only the
files runs write, and ``ckpt/``). A run holds ``<run dir>/.lock`` (an flock,
released by the kernel even if the run crashes); a second run into the same dir
stops with one line naming the holder.

Usage::

    jaxrl train --agent dqn --preset cartpole-small --num-seeds 4
    jaxrl train --agent dqn --env CartPole-v1 --set lr=1e-3 --set num_chunks=4 --out /tmp/r
    jaxrl train --agent dqn --preset cartpole --resume          # continue after a crash
    jaxrl train --agent dqn --preset cartpole --overwrite       # replace the earlier run
    jaxrl train --agent dqn --preset list                       # the agent's presets
    python -m jaxrl.scripts.train --agent dqn --preset cartpole-tiny --max-chunks 1
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxrl import config as jconfig
from jaxrl import logging as jlog
from jaxrl import loop as jloop
from jaxrl import metrics as jmetrics
from jaxrl.errors import ConfigError
from jaxrl.scripts import common

__all__ = [
    "TrainResult",
    "EXIT_DIVERGED",
    "train",
    "write_summary",
    "diverged_seeds",
    "describe_diverged",
    "plot_curve",
    "build_parser",
    "main",
]

EXIT_DIVERGED = 3
"""Exit status of ``jaxrl train`` when every seed diverged (``jaxrl sweep``: every
seed of every grid point); the results files are written all the same."""


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      out_dir: the results directory.
      state: the final vmapped state (after the last chunk run).
      chunks_done: chunks completed so far (``num_chunks`` when finished).
      finished: whether the whole run is done (summary and plot written).
      summary: the ``summary.json`` content (``None`` until finished).
      wall_time: seconds spent in this call.
    """

    out_dir: str
    state: Any
    chunks_done: int
    finished: bool
    summary: dict[str, Any] | None
    wall_time: float


def _identity(spec: common.RunSpec, seed: int) -> dict[str, Any]:
    """The fields a checkpoint must match to be resumed."""
    return {
        "agent": spec.agent,
        "env": spec.env_name,
        "env_kwargs": jlog.to_jsonable(spec.env_kwargs),
        "config": jconfig.to_dict(spec.config),
        "seed": int(seed),
        "num_seeds": spec.num_seeds,
    }


def _check_identity(
    saved: dict[str, Any], wanted: dict[str, Any], ckpt_dir: str
) -> None:
    for name, value in wanted.items():
        have = saved.get(name)
        if name == "config" and isinstance(have, dict):
            diff = [
                k for k in sorted(set(value) | set(have)) if value.get(k) != have.get(k)
            ]
            if diff:
                k = diff[0]
                raise ConfigError(
                    f"checkpoint in {ckpt_dir} was written with {k}={have.get(k)!r}, this run "
                    f"has {k}={value.get(k)!r}; use the same settings or a fresh --out"
                )
        elif have != value:
            raise ConfigError(
                f"checkpoint in {ckpt_dir} was written with {name}={have!r}, this run has "
                f"{name}={value!r}; use the same settings or a fresh --out"
            )


def config_record(spec: common.RunSpec, seed: int, **extra: Any) -> dict[str, Any]:
    """The ``config.json`` document: the resolved config plus how it was built."""
    return {
        **_identity(spec, seed),
        "preset": spec.preset,
        "overrides": list(spec.overrides),
        "metric": spec.metric,
        "seed_ids": list(range(spec.num_seeds)),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        **extra,
    }


def diverged_seeds(
    first: np.ndarray, seed_ids: Sequence[int], iters: np.ndarray
) -> list[dict[str, int]]:
    """``[{"seed", "iteration"}]`` of the diverged seeds, from
    :func:`jaxrl.metrics.first_divergence` indices over ``iters``."""
    return [
        {"seed": int(seed), "iteration": int(iters[i])}
        for seed, i in zip(seed_ids, first, strict=True)
        if i >= 0
    ]


def describe_diverged(diverged: Sequence[dict[str, int]], num_seeds: int) -> str:
    """``"2 of 2 seeds diverged (seed 0 at iteration 9, seed 1 at iteration 12)"``."""
    where = ", ".join(
        f"seed {d['seed']} at iteration {d['iteration']}" for d in diverged
    )
    return f"{len(diverged)} of {num_seeds} seeds diverged ({where})"


def plot_curve(label: str, values: np.ndarray, first: np.ndarray) -> tuple[str, Any]:
    """``(label, [S', T] curves)`` to plot for a run with divergence indices ``first``.

    The healthy seeds, with ``" (k diverged)"`` added to the label when some
    diverged; when every seed diverged, all of them up to their first diverged
    iteration (NaN after), labelled ``" (diverged)"``.
    """
    healthy = first < 0
    if healthy.all():
        return label, values
    if healthy.any():
        return f"{label} ({int(np.sum(~healthy))} diverged)", values[healthy]
    return f"{label} (diverged)", jmetrics.mask_after(values, first)


def write_summary(
    out_dir: str,
    spec_info: dict[str, Any],
    metric: str | None,
    *,
    plot: bool = True,
    title: str | None = None,
) -> dict[str, Any]:
    """Write ``summary.json`` and ``learning_curve.png`` from ``metrics.jsonl``.

    The final value of a metric for a seed is its last finite value (so
    evaluation metrics reported once per chunk count); the summary gives the
    mean, 95% bootstrap CI, IQM, std and count over seeds. Diverged seeds
    (:func:`jaxrl.metrics.first_divergence`: a non-finite float in the state
    after a chunk, or the agent's ``train/diverged`` flag) are listed under
    ``"diverged"`` with their first diverged iteration and left out of every
    statistic; each statistic also gives ``n_diverged``. The plot shows the
    healthy seeds (all seeds up to their divergence, labelled ``(diverged)``,
    when none is healthy).

    Args:
      out_dir: the run directory holding ``metrics.jsonl``.
      spec_info: identifying fields copied into the summary.
      metric: the headline metric (plotted); chosen automatically if ``None``
        or missing.
      plot: write the PNG.
      title: plot title.

    Returns:
      The summary dict.
    """
    rows = jlog.read_jsonl(os.path.join(out_dir, "metrics.jsonl"))
    arrays, seed_ids, iters = jlog.rows_to_metrics(rows)
    first = jmetrics.first_divergence(arrays)
    healthy = first < 0
    arrays.pop(jmetrics.HEALTH_METRIC, None)
    metric = common.default_metric(list(arrays), metric)
    n_diverged = int(np.sum(~healthy))
    final = {
        name: {
            **jmetrics.summarize(jmetrics.final_values(values[healthy])),
            "n_diverged": n_diverged,
        }
        for name, values in arrays.items()
    }
    summary = {
        **spec_info,
        "metric": metric,
        "iterations": int(iters.size),
        "seed_ids": seed_ids,
        "n_diverged": n_diverged,
        "diverged": diverged_seeds(first, seed_ids, iters),
        "final": final,
        "headline": final.get(metric) if metric else None,
        "note": "final = each seed's last finite value; mean and 95% percentile-bootstrap CI "
        "over seeds (2000 resamples, numpy seed 0); diverged seeds (a non-finite state "
        "after a chunk, or the agent's train/diverged flag; iteration = the first "
        "diverged one) are left out of every statistic (n counts the others)",
    }
    jlog.write_json_atomic(os.path.join(out_dir, "summary.json"), summary)
    if plot and metric is not None:
        from jaxrl.scripts.plotting import plot_learning_curves

        label = f"{spec_info.get('agent', '')}/{spec_info.get('preset', '')}"
        plot_learning_curves(
            dict([plot_curve(label, arrays[metric], first)]),
            os.path.join(out_dir, "learning_curve.png"),
            x=iters,
            ylabel=metric,
            title=title or f"{label} on {spec_info.get('env', '')}",
        )
    return summary


def train(
    spec: common.RunSpec,
    *,
    seed: int = 0,
    out_dir: str,
    resume: bool = False,
    overwrite: bool = False,
    max_chunks: int | None = None,
    checkpoint: bool = True,
    quiet: bool = False,
    plot: bool = True,
    log: Any = None,
    keep_checkpoints: int = 2,
) -> TrainResult:
    """Run (or resume) a chunked, vmapped training run and write its results.

    The run holds ``out_dir``'s lock (:class:`jaxrl.scripts.common.RunLock`)
    throughout, and writes over earlier results there only if asked.

    Args:
      spec: the resolved run (:func:`jaxrl.scripts.common.resolve_run`).
      seed: root seed; seed ``i`` uses ``split(key(seed), S)[i]``.
      out_dir: results directory.
      resume: continue from the newest intact checkpoint in ``out_dir/ckpt``
        (a fresh start if there is none). A corrupt newer checkpoint is
        reported on ``log``, moved aside to ``ckpt/<step>.corrupt`` and the
        run continues from the newest intact one.
      overwrite: first remove the earlier results in ``out_dir`` (the files
        runs write and ``ckpt/``; see
        :func:`jaxrl.scripts.common.existing_results`). Without ``resume`` or
        ``overwrite``, a run dir holding results is refused.
      max_chunks: stop after this many chunks in this call (resume later).
      checkpoint: save a checkpoint after every chunk.
      quiet: no progress bar or progress lines.
      plot: write ``learning_curve.png``.
      log: a text stream for status lines (default ``sys.stderr``).
      keep_checkpoints: how many of the newest checkpoints to keep (older
        ones of this run are deleted after each successful save).

    Returns:
      A :class:`TrainResult`.

    Raises:
      ConfigError: bad environment; ``out_dir`` holds results and neither
        ``resume`` nor ``overwrite`` was given (or both were); another run
        holds ``out_dir``; a checkpoint that does not match; no intact
        checkpoint; a finished run without checkpoints to resume.
    """
    # Before anything that grows with the seeds is allocated or written:
    common.check_memory(spec)
    with common.guarded_run_dir(out_dir, resume=resume, overwrite=overwrite):
        return _train(
            spec,
            seed=seed,
            out_dir=out_dir,
            resume=resume,
            max_chunks=max_chunks,
            checkpoint=checkpoint,
            quiet=quiet,
            plot=plot,
            log=log,
            keep_checkpoints=keep_checkpoints,
        )


def _set_aside(ckpt_dir: str, step: int) -> str:
    """Rename the corrupt step ``ckpt/<step>`` to ``ckpt/<step>.corrupt`` (kept
    for inspection; :func:`jaxrl.checkpoint.all_steps` ignores it)."""
    src = os.path.join(ckpt_dir, str(step))
    dst, n = src + ".corrupt", 1
    while os.path.exists(dst):
        dst, n = f"{src}.corrupt-{n}", n + 1
    os.rename(src, dst)
    return dst


def _train(
    spec: common.RunSpec,
    *,
    seed: int,
    out_dir: str,
    resume: bool,
    max_chunks: int | None,
    checkpoint: bool,
    quiet: bool,
    plot: bool,
    log: Any,
    keep_checkpoints: int,
) -> TrainResult:
    """The body of :func:`train`, with ``out_dir`` locked and checked."""
    from jaxrl import checkpoint as jckpt
    from jaxrl import sweep as jsweep

    log = sys.stderr if log is None else log
    start_time = time.perf_counter()
    config, module = spec.config, spec.module
    num_chunks, ipc = int(config.num_chunks), int(config.iters_per_chunk)
    keys = common.seed_keys(seed, spec.num_seeds)
    env_keys, agent_keys = common.split_env_keys(spec, keys)
    if env_keys is None:  # one environment shared by every seed
        env, env_params = common.make_env(spec)
    else:  # one environment instance per seed: params get a leading [S] axis
        env, _ = common.make_env(spec, jax.random.key(0))  # the static structure only
        env_params = jax.jit(jax.vmap(lambda k: common.make_env(spec, k)[1]))(env_keys)
    params_axis = None if env_keys is None else 0
    seed_ids = list(range(spec.num_seeds))
    ckpt_dir = os.path.abspath(os.path.join(out_dir, "ckpt"))
    identity = _identity(spec, seed)
    os.makedirs(out_dir, exist_ok=True)

    unit, scale = common.progress_unit(config)
    progress = jlog.make_progress_callback(
        num_chunks * ipc,
        f"{spec.agent}/{spec.preset}",
        quiet=quiet,
        ordered=jax.device_count() == 1,
        unit=unit,
        scale=scale,
    )

    def init_one(key: Any, params: Any) -> Any:
        return module.init(key, env, params, config)

    def chunk_one(state: Any, params: Any, seed_index: Any, chunk: Any) -> Any:
        # Progress is reported by the host loop after each chunk (an in-jit
        # callback under the seed vmap would be unrolled once per seed).
        del seed_index, chunk
        state, metrics = module.make_run(config, env, params)(state)
        # The divergence check: is every float of the state still finite?
        return state, {**metrics, **jloop.health_metrics(state, ipc)}

    # Seeds are sharded over the local devices (jaxrl.sweep.seed_sharding), or
    # one device if the program calls CPU LAPACK kernels on several CPU
    # devices, where they can hang (jaxrl.sweep.lapack_safe_devices).
    def lower_one_seed() -> tuple[Any, Any]:
        # One seed's init and chunk, env_params closed over as in the real ones.
        key = agent_keys[0]
        params = env_params
        if env_keys is not None:
            params = jax.tree.map(lambda x: x[0], env_params)
        init_1 = jax.jit(lambda k: init_one(k, params))
        state = jax.eval_shape(init_1, key)
        run_1 = jax.jit(lambda st: chunk_one(st, params, 0, 0))
        return init_1.lower(key), run_1.lower(state)

    # Only the devices the seeds would use are checked: a seed count that
    # shards over one device anyway needs no lowering here.
    shard = jsweep.seed_sharding(spec.num_seeds)
    devices, lapack = jsweep.lapack_safe_devices(
        list(shard.mesh.devices.flat), lower_one_seed
    )
    if lapack:
        if not quiet:
            print(
                common.lapack_note(spec.agent, lapack, "its seeds run on one device"),
                file=log,
            )
        shard = jsweep.seed_sharding(spec.num_seeds, devices)
    agent_keys = jax.device_put(agent_keys, shard)

    # env_params are closed over (constants), never traced: gymnax params may
    # hold Python numbers that environments use statically.
    init_fn = jax.jit(
        lambda ks: jsweep.vmap_runs(init_one, in_axes=(0, params_axis))(ks, env_params),
        out_shardings=shard,
    )
    run_fn = jax.jit(
        lambda state, si, chunk: jsweep.vmap_runs(
            chunk_one, in_axes=(0, params_axis, 0, None)
        )(state, env_params, si, chunk),
        out_shardings=shard,
    )

    # RESTORE OR START (train() has checked out_dir: without resume it holds
    # no earlier results)
    start_chunk = 0
    state = None
    if resume:
        if jckpt.all_steps(ckpt_dir):
            target = jax.eval_shape(init_fn, agent_keys)
            restored = jckpt.restore_latest_intact(ckpt_dir, target)
            state, meta = restored.state, restored.metadata
            _check_identity(meta, identity, ckpt_dir)
            for bad, reason in restored.skipped:  # newest first
                aside = os.path.basename(_set_aside(ckpt_dir, bad))
                print(
                    f"checkpoint {bad} is corrupt ({reason}); resuming from "
                    f"{restored.step} (moved it to ckpt/{aside})",
                    file=log,
                )
            start_chunk = int(meta.get("chunks_done", restored.step))
            print(
                f"resuming from {ckpt_dir} after chunk {start_chunk}/{num_chunks}",
                file=log,
            )
        elif os.path.exists(os.path.join(out_dir, "summary.json")):
            raise ConfigError(
                f"{out_dir} holds a finished run without checkpoints; nothing to "
                "resume (pass --overwrite to run it again)"
            )
        else:
            print(f"no checkpoint in {ckpt_dir}; starting from scratch", file=log)
    if state is None:
        state = init_fn(agent_keys)
    metrics_log = jlog.JsonlAppender(
        os.path.join(out_dir, "metrics.jsonl"),
        keep=lambda r: int(r["iter"]) < start_chunk * ipc,
        fresh=start_chunk == 0,
    )
    record = config_record(spec, seed, num_chunks=num_chunks, iters_per_chunk=ipc)
    jlog.write_json_atomic(os.path.join(out_dir, "config.json"), record)

    # CHUNKS
    end_chunk = (
        num_chunks if max_chunks is None else min(num_chunks, start_chunk + max_chunks)
    )
    seed_index = np.arange(spec.num_seeds, dtype=np.int32)
    progress.start_at(start_chunk * ipc)
    # Async saves: each returns once the state is on the host; the files are
    # written while the next chunk runs. The writer waits for the previous
    # save before the next one and on the way out (Ctrl-C and SIGTERM too),
    # keeps the newest `keep_checkpoints` steps, and raises a failed save as
    # one line.
    writer = (
        jckpt.CheckpointWriter(ckpt_dir, max_to_keep=keep_checkpoints)
        if checkpoint
        else contextlib.nullcontext()
    )
    with writer:
        try:
            for chunk in range(start_chunk, end_chunk):
                state, metrics = run_fn(state, seed_index, chunk)
                metrics = jax.device_get(metrics)
                metrics_log.append(jlog.metrics_to_rows(metrics, seed_ids, chunk * ipc))
                if checkpoint:
                    meta = {
                        **identity,
                        "chunks_done": chunk + 1,
                        "iteration": (chunk + 1) * ipc,
                    }
                    writer.save(chunk + 1, state, meta)
                progress.update_to((chunk + 1) * ipc)  # a bar, or one line per chunk
        finally:
            progress.close()

    finished = end_chunk == num_chunks
    summary = None
    if finished:
        info = {
            k: record[k] for k in ("agent", "env", "env_kwargs", "seed", "num_seeds")
        }
        info["preset"] = spec.preset
        summary = write_summary(out_dir, info, spec.metric, plot=plot)
        if summary["diverged"]:
            print(
                f"warning: {spec.agent}/{spec.preset}: "
                f"{describe_diverged(summary['diverged'], spec.num_seeds)}; "
                "left out of the statistics",
                file=log,
            )
    else:
        print(
            f"stopped after chunk {end_chunk}/{num_chunks}; continue with --resume",
            file=log,
        )
    return TrainResult(
        out_dir=out_dir,
        state=state,
        chunks_done=end_chunk,
        finished=finished,
        summary=summary,
        wall_time=time.perf_counter() - start_time,
    )


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add ``train``'s arguments to ``parser`` (a new one if ``None``)."""
    parser = parser or common.ArgumentParser(
        prog="jaxrl train", description=__doc__.split("\n")[0]
    )
    common.add_common_run_args(parser)
    common.add_chunked_run_args(parser)
    parser.add_argument(
        "--run-dir", default=None, help="exact results dir (overrides --out)"
    )
    common.add_compile_cache_arg(parser)
    common.add_cpu_devices_arg(parser)
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``train`` from parsed arguments; print the results dir and headline.

    Returns:
      0, or :data:`EXIT_DIVERGED` (3) when the run finished and every seed
      diverged (the results are written all the same).
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
    out_dir = args.run_dir or common.run_dir(
        args.out, args.table or "train", spec.agent, spec.preset
    )
    result = train(
        spec,
        seed=args.seed,
        out_dir=out_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        max_chunks=args.max_chunks,
        checkpoint=not args.no_checkpoint,
        quiet=args.quiet,
        keep_checkpoints=args.keep_checkpoints,
    )
    if result.finished and result.summary is not None:
        head = result.summary.get("headline") or {}
        metric = result.summary.get("metric")
        if head:
            print(
                f"{spec.agent}/{spec.preset} on {spec.env_name}: final {metric} = "
                f"{common.format_headline(head)} (mean, 95% CI) "
                f"in {result.wall_time:.1f}s"
            )
    print(out_dir)
    if result.finished and result.summary is not None:
        seeds = result.summary["seed_ids"]
        if seeds and result.summary["n_diverged"] == len(seeds):
            return EXIT_DIVERGED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jaxrl.scripts.train``."""
    parser = build_parser()
    return common.run_main(
        lambda: common.run_command(run_from_args, parser.parse_args(argv)),
        prog="jaxrl train",
    )


if __name__ == "__main__":
    sys.exit(main())
