"""``jaxrl bench``: throughput and compile time per case at 1, 8 and 64 vmapped seeds.

Cases (``--cases``, comma-separated; default: all of them):

* ``dqn``: DQN on ``CartPole-v1`` (its :func:`jaxrl.agents.dqn.cartpole_config`)
  and ``Breakout-MinAtar`` (the DQN fields of ``jaxrl.agents.mvi.minatar_config``);
* ``mvi``: M-DQN (:mod:`jaxrl.agents.mvi`) on ``CartPole-v1`` and
  ``Breakout-MinAtar`` (its ``cartpole_config`` / ``minatar_config``);
* ``mviq``: MVI(q)-DQN (:mod:`jaxrl.agents.mviq`, q = 2), the same settings;
* ``ppo``: PPO (:mod:`jaxrl.agents.ppo`) on ``CartPole-v1`` and ``Breakout-MinAtar``
  (its ``cartpole_config`` / ``minatar_config``, MinAtar rollouts cut to 32 steps);
* ``peer``: run rejax (``pip install -e '.[bench]'``) in the same process
  beside every deep row at identical settings: its ``DQN``
  (:func:`jaxrl.scripts.bench_peer.peer_settings`) beside ``dqn``, ``mvi`` and
  ``mviq`` (rejax has no Munchausen variant, so the peer does plain DQN, which
  is *less* work per update), its ``PPO``
  (:mod:`jaxrl.scripts.bench_peer_ppo`) beside ``ppo``. Without rejax (or
  the PPO adapter) the peer is skipped with a note;
* ``vi_tabular``: exact VI on a Garnet(S=50, A=4) through ``make_run``
  (every sweep also evaluates the greedy policy exactly, which is included);
* ``mvi_tabular``: exact M-VI sweeps (:func:`jaxrl.agents.mvi_tabular.update`) on a
  Garnet(S=500, A=8), against :func:`jaxrl.testing.numpy_mvi_sweeps_batched`, plain
  NumPy (vectorised over seeds, states and actions, Python loop over sweeps) doing
  the same sweeps in the same process. Neither side computes the exact
  policy-evaluation metrics of ``mvi_tabular.make_run`` (linear solves that
  would dominate both timings); both compute the backup, the residual
  ``max |T q - q|`` and the (zero-scaled) noise draw of every sweep.

Configs come from the preset registry (``scripts/presets.py``). The code is
split by topic: :mod:`jaxrl.scripts.bench_common` (result row, scales, timing),
:mod:`jaxrl.scripts.bench_deep`, :mod:`jaxrl.scripts.bench_peer` (the rejax
DQN adapter and the peer of each case), :mod:`jaxrl.scripts.bench_peer_ppo`,
:mod:`jaxrl.scripts.bench_tabular`, :mod:`jaxrl.scripts.bench_report` (the
markdown); this module is the driver and the command line.

Deep cases report environment steps per second *with learning*: the presets'
network, ``num_envs``, ``batch_size``, ``buffer_size``, ``updates_per_iter``
and target period, with ``learning_starts = 0``, ``train_frequency = 1``, no
evaluation and, on MinAtar, a 10k replay (100k float32 observations would take
20 GB at 64 seeds), i.e. ``seeds * iters * num_envs / seconds`` for one chunk of
``iters`` iterations (PPO: ``seeds * iters * num_envs * num_steps``). Tabular
cases report Bellman backups per second (``seeds * sweeps * S * A / seconds``).

For each case and seed count, our chunk function ``jit(vmap(chunk))`` (state
donated; at one seed the chunk itself with the seed axis added back,
:func:`jaxrl.sweep.vmap_runs`, as ``jaxrl train`` runs it) and the
comparison's are lowered and compiled explicitly (compile
time, reported separately) and warmed up (the DQN peer until its replay buffer
holds ``fill_buffer`` transitions, so that every timed iteration learns).
Then the two are called *interleaved*, ours, peer, ours, peer, ... for
``--pairs`` pairs (each call ``block_until_ready``): the row reports each side's
median throughput and the median, min and max over the pairs of the per-pair
ratio ours/peer, and the 1/5/15-minute load averages before and after; a
warning is printed (and noted in the report) when the 1-minute load average
exceeds the usable cores. The markdown, with a machine description (CPU model,
cores, load at start and end, jax version, backend and device kind, date) and
the command that made it, is written to ``BENCHMARKS.md`` (``--out``).

Usage::

    jaxrl bench                         # full run (tens of minutes on CPU)
    jaxrl bench --quick --out /tmp/b.md # small chunks, 3 pairs
    jaxrl bench --cases mvi,peer,mvi_tabular --seeds 1,8 --pairs 7 --out /tmp/bench.md
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import jax

from jaxrl import logging as jlog
from jaxrl.errors import ConfigError
from jaxrl.scripts import common
from jaxrl.scripts.bench_common import (
    CASES,
    SCALES,
    BenchResult,
    format_load,
    load_average,
    load_warning,
    machine_info,
    timed_rows,
    usable_cores,
)
from jaxrl.scripts.bench_deep import DEEP_ENVS, ours_side, pair_key, settings_text
from jaxrl.scripts.bench_peer import (
    peer_available,
    peer_missing,
    peer_settings,
    peer_side,
)
from jaxrl.scripts.bench_report import render
from jaxrl.scripts.bench_tabular import bench_mvi_tabular, bench_vi_tabular
from jaxrl.testing import numpy_mvi_sweeps

__all__ = [
    "CASES",
    "DEEP_ENVS",
    "SCALES",
    "BenchResult",
    "machine_info",
    "peer_available",
    "peer_settings",
    "numpy_mvi_sweeps",
    "MIN_PAIRS",
    "row_line",
    "row_warning",
    "bench_case",
    "run_bench",
    "render",
    "build_parser",
    "main",
]


MIN_PAIRS = 3
"""Fewest ours/peer pairs ``run_bench`` accepts (a median and a range need 3)."""


def _ratio_text(ratio: tuple[float, float, float]) -> str:
    med, lo, hi = ratio
    return f"{med:.2f}x [{lo:.2f}, {hi:.2f}]"


def _compile_text(compile_s: float) -> str:
    return "-" if math.isnan(compile_s) else f"{compile_s:.2f}s"


def _row_name(row: BenchResult) -> str:
    """``"dqn CartPole-v1 x8"``, with ``" (2 devices)"`` when sharded."""
    where = f" ({row.devices} devices)" if row.devices > 1 else ""
    return f"{row.agent} {row.env} x{row.num_seeds}{where}"


def row_line(row: BenchResult) -> str:
    """One progress line for ``row`` (and its comparison row, if any)."""
    text = (
        f"{_row_name(row)}: {row.throughput:,.0f} {row.unit} "
        f"(compile {_compile_text(row.compile_s)})"
    )
    other = row.other
    if other is not None:
        text += (
            f"; {other.agent} {other.throughput:,.0f} {other.unit} "
            f"(compile {_compile_text(other.compile_s)}); ratio "
            f"{_ratio_text(row.ratio)} over {row.pairs} pairs"
        )
    else:
        text += f"; {row.pairs} calls"
    return text + f"; load {format_load(row.load_start)} -> {format_load(row.load_end)}"


def row_warning(row: BenchResult, cores: int | None = None) -> str | None:
    """The load warning of ``row`` (see :func:`load_warning`), or ``None``."""
    cores = usable_cores() if cores is None else cores
    return load_warning(
        _row_name(row),
        [row.load_start, row.load_end],
        cores,
    )


def _deep_rows(
    case: str, env_name: str, num_seeds: int, scale: str, pairs: int, with_peer: bool
) -> list[BenchResult]:
    """Ours (seeds over the local devices), the peer, and ours on one device.

    The peer runs as its users run it, ``jit(vmap(train))`` on the default
    device. When ours spans several devices, ours on one device is timed too
    (interleaved with the others), so each row shows what the devices add.
    """
    # The train states live only in this call (freed before the next row).
    load_start = load_average()
    side, config = ours_side(case, env_name, num_seeds, scale)
    label = {
        "case": case,
        "agent": case,
        "env": env_name,
        "num_seeds": num_seeds,
        "unit": "env steps/s",
        "pair": pair_key(config, env_name, num_seeds),
        "settings": settings_text(config),
        "devices": side.devices,
    }
    labels, sides, against = [label], [side], None
    if with_peer and peer_missing(case) is None:
        peer, peer_label = peer_side(case, config, env_name, num_seeds)
        labels.append({**label, "case": "peer", "agent": peer_label, "devices": 1})
        sides.append(peer)
        against = 1
    if side.devices > 1:
        one, _ = ours_side(case, env_name, num_seeds, scale, jax.local_devices()[:1])
        labels.append({**label, "devices": 1})
        sides.append(one)
    return timed_rows(labels, sides, pairs, load_start=load_start, against=against)


def bench_case(
    case: str,
    num_seeds: int,
    *,
    scale: str = "full",
    pairs: int = 5,
    envs_: Sequence[str] | None = None,
    with_peer: bool = False,
    log: Any = None,
) -> list[BenchResult]:
    """Benchmark one case at ``num_seeds`` vmapped seeds (see the module docstring).

    Args:
      case: ``"dqn"``, ``"mvi"``, ``"mviq"``, ``"ppo"``, ``"vi_tabular"`` or
        ``"mvi_tabular"``.
      num_seeds: vmapped seeds.
      scale: a key of :data:`SCALES`.
      pairs: timed calls per side, interleaved with the comparison's.
      envs_: restrict a deep case to these environments (default: all).
      with_peer: also run the peer beside each deep row, interleaved (skipped
        where :func:`peer_missing` gives a reason).
      log: stream for the progress line (and load warning) of every row as
        soon as it is measured (``None``: silent).

    Returns:
      The rows (deep: ours, then the peer's; ``mvi_tabular``: jax, then NumPy);
      a compared row's ``other`` is the row after it.
    """
    rows: list[BenchResult] = []

    def add(*new: BenchResult) -> None:
        rows.extend(new)
        if log is None:
            return
        compared = {id(r.other) for r in new if r.other is not None}
        for row in new:
            if id(row) in compared:  # a comparison row: printed with its partners
                continue
            print(row_line(row), file=log, flush=True)
        warning = row_warning(new[0])
        if warning:
            print(f"warning: {warning}", file=log, flush=True)

    if case in DEEP_ENVS:
        for env_name in DEEP_ENVS[case]:
            if envs_ is not None and env_name not in envs_:
                continue
            add(*_deep_rows(case, env_name, num_seeds, scale, pairs, with_peer))
    elif case == "mvi_tabular":
        add(*bench_mvi_tabular(num_seeds, scale, pairs))
    elif case == "vi_tabular":
        add(bench_vi_tabular(num_seeds, scale, pairs))
    else:
        raise ConfigError(f"no benchmark for case {case!r}; valid: {', '.join(CASES)}")
    return rows


def run_bench(
    cases: Sequence[str],
    seeds: Sequence[int],
    *,
    quick: bool = False,
    scale: str | None = None,
    pairs: int = 5,
    envs_: Sequence[str] | None = None,
    out: str | None = "BENCHMARKS.md",
    command: str = "jaxrl bench",
    log: Any = None,
) -> tuple[list[BenchResult], str]:
    """Run every (case, seed count) and write the markdown to ``out``.

    Args:
      cases: names from :data:`CASES` (``"peer"`` adds the peer beside the
        deep rows).
      seeds: vmapped seed counts.
      quick: use the ``"quick"`` scale (ignored when ``scale`` is given).
      scale: a key of :data:`SCALES` (default ``"quick"`` or ``"full"``).
      pairs: interleaved ours/peer pairs per row (at least :data:`MIN_PAIRS`).
      envs_: restrict the deep cases to these environment ids.
      out: markdown output path (``None``: do not write).
      command: the command line recorded in the output.
      log: progress stream (default stderr).

    Returns:
      ``(results, markdown)``.

    Raises:
      ConfigError: unknown case, environment or scale, or too few pairs.
    """
    log = sys.stderr if log is None else log
    scale = scale or ("quick" if quick else "full")
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    if pairs < MIN_PAIRS:
        raise ConfigError(
            f"pairs must be at least {MIN_PAIRS} (median and range of the "
            f"per-pair ratios), got {pairs}"
        )
    for c in cases:
        if c not in CASES:
            raise ConfigError(f"no benchmark for case {c!r}; valid: {', '.join(CASES)}")
    known_envs = sorted({e for es in DEEP_ENVS.values() for e in es})
    for e in envs_ or ():
        if e not in known_envs:
            raise ConfigError(
                f"no deep benchmark on {e!r}; valid: {', '.join(known_envs)}"
            )
    notes: list[str] = []
    with_peer = "peer" in cases
    deep = [c for c in cases if c in DEEP_ENVS]
    if with_peer and not peer_available():
        with_peer = False
        notes.append(
            "the peer (rejax) is not installed, so its rows are skipped; "
            "install it with `pip install -e '.[bench]'`."
        )
    if with_peer and not deep:
        notes.append("`peer` runs beside the deep cases; none was selected.")
    if with_peer:
        reasons = (peer_missing(c) for c in deep)
        notes.extend(dict.fromkeys(r for r in reasons if r))
    info = machine_info()
    cores = info["usable_cores"]
    warning = load_warning("at the start", [info["load"]], cores)
    if warning:
        print(f"warning: {warning}", file=log, flush=True)
    print(
        f"load average (1/5/15 min) at start: {format_load(info['load'])}; "
        f"{cores} usable cores",
        file=log,
        flush=True,
    )
    results: list[BenchResult] = []
    for c in cases:
        if c == "peer":
            continue
        for s in seeds:
            results.extend(
                bench_case(
                    c,
                    s,
                    scale=scale,
                    pairs=pairs,
                    envs_=envs_,
                    with_peer=with_peer,
                    log=log,
                )
            )
    info["load_end"] = load_average()
    print(
        f"load average (1/5/15 min) at end: {format_load(info['load_end'])}",
        file=log,
        flush=True,
    )
    warnings_ = [warning] if warning else []
    compared = {id(r.other) for r in results if r.other is not None}
    for r in results:
        if id(r) not in compared:
            w = row_warning(r, cores)
            if w:
                warnings_.append(w)
    text = render(results, info, command, notes, warnings_)
    if out:
        jlog.write_atomic(out, [text])
    return results, text


def _int_list(text: str) -> list[int]:
    import argparse

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers like 1,8,64, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected positive integers like 1,8,64, got {text!r}"
        )
    return values


def _pairs(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < MIN_PAIRS:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= {MIN_PAIRS} (pairs of interleaved calls), "
            f"got {text!r}"
        )
    return value


def _name_list(text: str) -> list[str]:
    return [a.strip() for a in text.split(",") if a.strip()]


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add ``bench``'s arguments to ``parser`` (a new one if ``None``)."""
    parser = parser or common.ArgumentParser(
        prog="jaxrl bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small chunks, 3 pairs by default"
    )
    parser.add_argument(
        "--seeds", type=_int_list, default=[1, 8, 64], help="e.g. 1,8,64"
    )
    parser.add_argument(
        "--cases",
        "--agents",
        dest="cases",
        type=_name_list,
        default=list(CASES),
        help=f"comma-separated cases (default: {','.join(CASES)}); "
        "'peer' runs rejax beside the deep rows",
    )
    parser.add_argument(
        "--envs",
        type=_name_list,
        default=None,
        help="restrict the deep cases to these env ids (e.g. CartPole-v1)",
    )
    parser.add_argument(
        "--pairs",
        "--repeats",
        dest="pairs",
        type=_pairs,
        default=None,
        help=f"interleaved ours/peer pairs per row, at least {MIN_PAIRS} "
        "(default 5, 3 with --quick)",
    )
    parser.add_argument("--out", default="BENCHMARKS.md", help="markdown output file")
    common.add_cpu_devices_arg(parser)
    return parser


def _command(args: Any) -> str:
    parts = ["jaxrl bench"]
    if args.quick:
        parts.append("--quick")
    parts += ["--seeds", ",".join(str(s) for s in args.seeds)]
    parts += ["--cases", ",".join(args.cases)]
    if args.envs:
        parts += ["--envs", ",".join(args.envs)]
    if args.pairs:
        parts += ["--pairs", str(args.pairs)]
    if getattr(args, "cpu_devices", None):
        parts += ["--cpu-devices", str(args.cpu_devices)]
    return " ".join(parts)


def run_from_args(args: Any) -> int:
    """Execute ``bench`` from parsed arguments and print the table."""
    pairs = args.pairs or (MIN_PAIRS if args.quick else 5)
    _, text = run_bench(
        args.cases,
        args.seeds,
        quick=args.quick,
        pairs=pairs,
        envs_=args.envs,
        out=args.out,
        command=_command(args),
    )
    print(text, end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jaxrl.scripts.bench``."""
    parser = build_parser()
    return common.run_main(
        lambda: common.run_command(run_from_args, parser.parse_args(argv)),
        prog="jaxrl bench",
    )


if __name__ == "__main__":
    sys.exit(main())
