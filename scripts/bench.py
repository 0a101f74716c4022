"""``jaxrl bench``: throughput and compile time per case at 1, 8 and 64 vmapped seeds.

Cases (``--cases``, comma-separated; default: all of them):

* ``dqn``: DQN on ``CartPole-v1`` (its :func:`jaxrl.agents.dqn.cartpole_config`)
  and ``Breakout-MinAtar`` (the DQN fields of ``jaxrl.agents.mvi.minatar_config``);
* ``mvi``: M-DQN (:mod:`jaxrl.agents.mvi`) on ``CartPole-v1`` and
  ``Breakout-MinAtar`` (its ``cartpole_config`` / ``minatar_config``);
* ``peer``: the fastest installable peer, rejax's ``DQN``
  (``pip install -e '.[bench]'``), run in the same process beside every
  ``dqn``/``mvi`` row at identical settings (:func:`peer_settings`); rejax has
  no Munchausen variant, so the peer does plain DQN, which is *less* work per
  update than M-DQN (two network passes per batch instead of three, no
  log-softmax). Without rejax installed the peer rows are skipped with a note;
* ``vi_tabular``: exact VI on a Garnet(S=50, A=4) through ``make_run``
  (every sweep also evaluates the greedy policy exactly, which is included);
* ``mvi_tabular``: exact M-VI sweeps (:func:`jaxrl.agents.mvi_tabular.update`) on a
  Garnet(S=500, A=8), against :func:`jaxrl.testing.numpy_mvi_sweeps`, a plain NumPy loop
  (vectorised over states and actions, Python loop over seeds and sweeps) doing
  the same sweeps in the same process. Neither side computes the exact
  policy-evaluation metrics of ``mvi_tabular.make_run`` (linear solves that
  would dominate both timings); both compute the backup, the residual
  ``max |T q - q|`` and the (zero-scaled) noise draw of every sweep.

Configs come from the preset registry (``scripts/presets.py``). The code is
split by topic: :mod:`jaxrl.scripts.bench_common` (result row, scales, timing),
:mod:`jaxrl.scripts.bench_deep`, :mod:`jaxrl.scripts.bench_peer` (the rejax
adapter), :mod:`jaxrl.scripts.bench_tabular`, :mod:`jaxrl.scripts.bench_report`
(the markdown); this module is the driver and the command line.

Deep cases report environment steps per second *with learning*: the presets'
network, ``num_envs``, ``batch_size``, ``buffer_size``, ``updates_per_iter``
and target period, with ``learning_starts = 0``, ``train_frequency = 1``, no
evaluation and, on MinAtar, a 10k replay (100k float32 observations would take
20 GB at 64 seeds), i.e. ``seeds * iters * num_envs / seconds`` for one chunk of
``iters`` iterations. Tabular cases report Bellman backups per second
(``seeds * sweeps * S * A / seconds``).

For each case and seed count the chunk function ``jit(vmap(chunk))`` (state
donated) is lowered and compiled explicitly (compile time, reported
separately), run to warm up (and, for the peer, until its replay buffer holds
``fill_buffer`` transitions so that every timed iteration learns), then timed
over ``--repeats`` calls with ``block_until_ready``; the median is reported.
The markdown, with a machine description (CPU model, cores, load, jax version,
backend and device kind, date) and the command that made it, is written to
``BENCHMARKS.md`` (``--out``).

Usage::

    jaxrl bench                         # full run (tens of minutes on CPU)
    jaxrl bench --quick                 # small chunks, one timed call
    jaxrl bench --cases mvi,peer,mvi_tabular --seeds 1,8 --out /tmp/bench.md
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from jaxrl import logging as jlog
from jaxrl.errors import ConfigError
from jaxrl.scripts import common
from jaxrl.scripts.bench_common import CASES, SCALES, BenchResult, machine_info
from jaxrl.scripts.bench_deep import DEEP_ENVS, bench_ours
from jaxrl.scripts.bench_peer import bench_peer, peer_available, peer_settings
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
    "bench_case",
    "run_bench",
    "render",
    "build_parser",
    "main",
]


def bench_case(
    case: str,
    num_seeds: int,
    *,
    scale: str = "full",
    repeats: int = 3,
    envs_: Sequence[str] | None = None,
    with_peer: bool = False,
    peer_cache: dict[str, BenchResult] | None = None,
    log: Any = None,
) -> list[BenchResult]:
    """Benchmark one case at ``num_seeds`` vmapped seeds (see the module docstring).

    Args:
      case: ``"dqn"``, ``"mvi"``, ``"vi_tabular"`` or ``"mvi_tabular"``.
      num_seeds: vmapped seeds.
      scale: a key of :data:`SCALES`.
      repeats: timed calls (the median is reported).
      envs_: restrict a deep case to these environments (default: all).
      with_peer: also run the peer beside each deep row (needs rejax).
      peer_cache: peer rows already measured, by settings (``BenchResult.pair``);
        a deep row whose settings are in it reuses that row (e.g. ``dqn`` and
        ``mvi`` on CartPole share one peer run); new peer rows are added to it.
      log: stream for one progress line per row as soon as it is measured
        (``None``: silent).

    Returns:
      The rows (deep: ours, then the peer's; ``mvi_tabular``: jax, then NumPy).
    """
    rows: list[BenchResult] = []

    def add(row: BenchResult) -> None:
        rows.append(row)
        if log is not None:
            compile_s = "-" if math.isnan(row.compile_s) else f"{row.compile_s:.2f}s"
            print(
                f"{row.agent} {row.env} x{row.num_seeds}: compile {compile_s}, "
                f"{row.throughput:,.0f} {row.unit}",
                file=log,
                flush=True,
            )

    if case in DEEP_ENVS:
        for env_name in DEEP_ENVS[case]:
            if envs_ is not None and env_name not in envs_:
                continue
            row, config = bench_ours(case, env_name, num_seeds, scale, repeats)
            add(row)
            if with_peer:
                cache = {} if peer_cache is None else peer_cache
                if row.pair not in cache:
                    cache[row.pair] = bench_peer(config, env_name, num_seeds, repeats)
                    add(cache[row.pair])
    elif case == "mvi_tabular":
        ours, reference = bench_mvi_tabular(num_seeds, scale, repeats)
        add(ours)
        add(reference)
    elif case == "vi_tabular":
        add(bench_vi_tabular(num_seeds, scale, repeats))
    else:
        raise ConfigError(f"no benchmark for case {case!r}; valid: {', '.join(CASES)}")
    return rows


def run_bench(
    cases: Sequence[str],
    seeds: Sequence[int],
    *,
    quick: bool = False,
    scale: str | None = None,
    repeats: int = 3,
    envs_: Sequence[str] | None = None,
    out: str | None = "BENCHMARKS.md",
    command: str = "jaxrl bench",
    log: Any = None,
) -> tuple[list[BenchResult], str]:
    """Run every (case, seed count) and write the markdown to ``out``.

    Args:
      cases: names from :data:`CASES` (``"peer"`` adds the peer beside the
        ``dqn``/``mvi`` rows).
      seeds: vmapped seed counts.
      quick: use the ``"quick"`` scale (ignored when ``scale`` is given).
      scale: a key of :data:`SCALES` (default ``"quick"`` or ``"full"``).
      repeats: timed calls per row.
      envs_: restrict the deep cases to these environment ids.
      out: markdown output path (``None``: do not write).
      command: the command line recorded in the output.
      log: progress stream (default stderr).

    Returns:
      ``(results, markdown)``.

    Raises:
      ConfigError: unknown case, environment or scale.
    """
    log = sys.stderr if log is None else log
    scale = scale or ("quick" if quick else "full")
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    for c in cases:
        if c not in CASES:
            raise ConfigError(f"no benchmark for case {c!r}; valid: {', '.join(CASES)}")
    known_envs = sorted({e for es in DEEP_ENVS.values() for e in es})
    for e in envs_ or ():
        if e not in known_envs:
            raise ConfigError(
                f"no deep benchmark on {e!r}; valid: {', '.join(known_envs)}"
            )
    notes = []
    with_peer = "peer" in cases
    if with_peer and not peer_available():
        with_peer = False
        notes.append(
            "the peer (rejax) is not installed, so its rows are skipped; "
            "install it with `pip install -e '.[bench]'`."
        )
    if with_peer and not any(c in DEEP_ENVS for c in cases):
        notes.append("`peer` runs beside the `dqn`/`mvi` cases; none was selected.")
    info = machine_info()
    results: list[BenchResult] = []
    peer_cache: dict[str, BenchResult] = {}
    for c in cases:
        if c == "peer":
            continue
        for s in seeds:
            rows = bench_case(
                c,
                s,
                scale=scale,
                repeats=repeats,
                envs_=envs_,
                with_peer=with_peer,
                peer_cache=peer_cache,
                log=log,
            )
            results.extend(rows)
    text = render(results, info, command, notes)
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


def _name_list(text: str) -> list[str]:
    return [a.strip() for a in text.split(",") if a.strip()]


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add ``bench``'s arguments to ``parser`` (a new one if ``None``)."""
    parser = parser or common.ArgumentParser(
        prog="jaxrl bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small chunks, one timed call"
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
        "'peer' runs rejax beside the dqn/mvi rows",
    )
    parser.add_argument(
        "--envs",
        type=_name_list,
        default=None,
        help="restrict the deep cases to these env ids (e.g. CartPole-v1)",
    )
    parser.add_argument(
        "--repeats",
        type=common.positive_int,
        default=None,
        help="timed calls per case (default 3, 1 with --quick)",
    )
    parser.add_argument("--out", default="BENCHMARKS.md", help="markdown output file")
    return parser


def _command(args: Any) -> str:
    parts = ["jaxrl bench"]
    if args.quick:
        parts.append("--quick")
    parts += ["--seeds", ",".join(str(s) for s in args.seeds)]
    parts += ["--cases", ",".join(args.cases)]
    if args.envs:
        parts += ["--envs", ",".join(args.envs)]
    if args.repeats:
        parts += ["--repeats", str(args.repeats)]
    return " ".join(parts)


def run_from_args(args: Any) -> int:
    """Execute ``bench`` from parsed arguments and print the table."""
    repeats = args.repeats or (1 if args.quick else 3)
    _, text = run_bench(
        args.cases,
        args.seeds,
        quick=args.quick,
        repeats=repeats,
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
        lambda: run_from_args(parser.parse_args(argv)), prog="jaxrl bench"
    )


if __name__ == "__main__":
    sys.exit(main())
