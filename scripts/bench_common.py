"""``jaxrl bench`` plumbing: the result row, problem sizes per scale, the machine, timing.

Shared by the case modules (:mod:`jaxrl.scripts.bench_deep`,
:mod:`jaxrl.scripts.bench_peer`, :mod:`jaxrl.scripts.bench_tabular`), the
markdown (:mod:`jaxrl.scripts.bench_report`) and the command
(:mod:`jaxrl.scripts.bench`). Every timed jax function is compiled explicitly
(``jit(fn, donate_argnums=0).lower(...).compile()``, reported separately) and
wrapped in a :class:`Side` that carries its state from call to call. The two
sides of a comparison are warmed up, then called *interleaved*
(:func:`interleave`: ours, peer, ours, peer, ...) so that both see the same
machine load; :func:`pair_stats` reports the median, min and max of the
per-pair throughput ratios and each side's median throughput.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxrl.scripts.common import usable_cores

__all__ = [
    "CASES",
    "SCALES",
    "BenchResult",
    "Load",
    "PairStats",
    "Side",
    "load_average",
    "format_load",
    "usable_cores",
    "load_warning",
    "machine_info",
    "compile_chunk",
    "jax_side",
    "interleave",
    "pair_stats",
    "side_stats",
    "timed_rows",
]

CASES: tuple[str, ...] = (
    "dqn",
    "mvi",
    "mviq",
    "ppo",
    "peer",
    "vi_tabular",
    "mvi_tabular",
)
"""Every case ``--cases`` accepts, in the order they run."""

SCALES: dict[str, dict[str, Any]] = {
    "full": {
        # MinAtar on a 2-core CPU: ~4.6 s per iteration at 64 seeds (16 envs, 4
        # updates of batch 32 with a conv torso per iteration and seed).
        "iters": {"CartPole-v1": 1_000, "Breakout-MinAtar": 20},
        # PPO iterations (rollouts of num_envs x num_steps, then the SGD epochs)
        "ppo_iters": {"CartPole-v1": 20, "Breakout-MinAtar": 2},
        "deep_overrides": {},
        "vi": {"num_states": 50, "num_actions": 4, "sweeps": 100},
        "mvi": {"num_states": 500, "num_actions": 8, "sweeps": 50},
    },
    "quick": {
        "iters": {"CartPole-v1": 100, "Breakout-MinAtar": 5},
        "ppo_iters": {"CartPole-v1": 4, "Breakout-MinAtar": 1},
        "deep_overrides": {},
        "vi": {"num_states": 50, "num_actions": 4, "sweeps": 20},
        "mvi": {"num_states": 500, "num_actions": 8, "sweeps": 10},
    },
    # For tests: seconds on a laptop; not a meaningful benchmark.
    "tiny": {
        "iters": {"CartPole-v1": 4, "Breakout-MinAtar": 4},
        "ppo_iters": {"CartPole-v1": 1, "Breakout-MinAtar": 1},
        "deep_overrides": {"buffer_size": 256, "batch_size": 16},
        "ppo_overrides": {"num_steps": 16, "num_minibatches": 2},
        "vi": {"num_states": 10, "num_actions": 2, "sweeps": 3},
        "mvi": {"num_states": 12, "num_actions": 3, "sweeps": 3},
    },
}
"""Chunk and problem sizes per scale (``--quick`` selects ``"quick"``)."""


Load = tuple[float, float, float]
"""The 1-, 5- and 15-minute load averages (``os.getloadavg``)."""

_NO_LOAD: Load = (math.nan, math.nan, math.nan)


@dataclasses.dataclass
class BenchResult:
    """One benchmark row (one side of a comparison).

    Attributes:
      case: the case that produced the row (``"mvi"``, ``"peer"``, ...).
      agent: what ran (``"mvi"``, ``"rejax DQN 0.1.3"``, ``"numpy mvi"``, ...).
      env: environment id (with sizes for the Garnets).
      num_seeds: vmapped seeds (NumPy: seeds looped over).
      unit: ``"env steps/s"`` or ``"backups/s"``.
      work_per_call: env steps or backups done by one timed call.
      compile_s: ``lower`` + ``compile`` seconds (NaN for NumPy).
      call_s: median seconds of one timed call.
      throughput: median over the timed calls of ``work_per_call / seconds``.
      pair: key of the settings shared with the comparison row.
      settings: short description of those settings.
      times: seconds of every timed call, in order.
      other: the row timed interleaved with this one (ours: the peer's or
        NumPy's row; ``None`` for the comparison row itself and unpaired rows).
      ratio: ``(median, min, max)`` over the pairs of this row's throughput
        divided by ``other``'s in the same pair (NaN without ``other``).
      load_start, load_end: 1/5/15-minute load averages before compiling and
        after the last timed call of the row.
      devices: devices the row's seeds were sharded over (1: one device).
    """

    case: str
    agent: str
    env: str
    num_seeds: int
    unit: str
    work_per_call: int
    compile_s: float
    call_s: float
    throughput: float
    pair: str = ""
    settings: str = ""
    times: tuple[float, ...] = ()
    other: BenchResult | None = None
    ratio: tuple[float, float, float] = _NO_LOAD
    load_start: Load = _NO_LOAD
    load_end: Load = _NO_LOAD
    devices: int = 1

    @property
    def pairs(self) -> int:
        """Number of timed calls (for a compared row: of ours/peer pairs)."""
        return len(self.times)


def load_average() -> Load:
    """The 1/5/15-minute load averages, rounded to 0.01 (NaN where unsupported)."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return _NO_LOAD
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def format_load(load: Load) -> str:
    """``"1.20/1.05/0.90"`` (1/5/15 minutes)."""
    return "/".join("nan" if math.isnan(x) else f"{x:.2f}" for x in load)


def load_warning(where: str, loads: Sequence[Load], cores: int) -> str | None:
    """A warning when a 1-minute load average in ``loads`` exceeds ``cores``.

    Args:
      where: what was measured (``"dqn CartPole-v1 x8"``), named in the text.
      loads: load averages taken around the measurement.
      cores: the usable cores.

    Returns:
      The warning (without a ``warning:`` prefix), or ``None``.
    """
    worst = max((x[0] for x in loads if not math.isnan(x[0])), default=math.nan)
    if math.isnan(worst) or worst <= cores:
        return None
    return (
        f"{where}: 1-minute load average {worst:.2f} exceeds the {cores} usable "
        "cores; other processes shared the CPU, so its timings are noisy"
    )


def machine_info() -> dict[str, Any]:
    """Describe the machine: CPU, cores, load, jax/numpy versions, backend, date.

    ``"load"`` holds the 1/5/15-minute load averages at the time of the call.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    device = jax.devices()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "load": load_average(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def compile_chunk(
    fn: Callable[..., Any], *args: Any, sharding: Any = None
) -> tuple[Any, float]:
    """``jit(fn, donate_argnums=0)``, lowered and compiled for ``args``; seconds.

    With ``sharding`` (e.g. :func:`jaxrl.sweep.seed_sharding`), the state (the
    first argument) and every output are laid out with it; the other arguments
    keep their own placement.
    """
    t0 = time.perf_counter()
    jit_kwargs: dict[str, Any] = {}
    if sharding is not None:
        jit_kwargs = {
            "in_shardings": (sharding,) + (None,) * (len(args) - 1),
            "out_shardings": sharding,
        }
    compiled = jax.jit(fn, donate_argnums=0, **jit_kwargs).lower(*args).compile()
    return compiled, time.perf_counter() - t0


@dataclasses.dataclass
class Side:
    """One side of a comparison: a call that does one unit of timed work.

    Attributes:
      call: runs one call to completion (blocking); it carries its own state
        from call to call (e.g. a donated jax train state).
      work: env steps or backups done by one call.
      compile_s: seconds to compile ``call`` (NaN for NumPy).
      warmups: untimed calls before the first timed one.
      devices: devices the call's work is sharded over.
      latest: returns the side's newest state (jax sides; None otherwise).
    """

    call: Callable[[], Any]
    work: int
    compile_s: float = math.nan
    warmups: int = 1
    devices: int = 1
    latest: Callable[[], Any] | None = None


def jax_side(
    compiled: Any,
    state: Any,
    *rest: Any,
    work: int,
    compile_s: float,
    warmups: int = 1,
    devices: int = 1,
) -> Side:
    """A :class:`Side` calling ``state = compiled(state, *rest)[0]``.

    The state is donated to every call (``compile_chunk``), so the side keeps
    only the newest one; each call ends with ``block_until_ready``.
    """
    box = [state]

    def call() -> None:
        box[0] = compiled(box[0], *rest)[0]
        jax.block_until_ready(box[0])

    return Side(
        call=call,
        work=work,
        compile_s=compile_s,
        warmups=warmups,
        devices=devices,
        latest=lambda: box[0],
    )


def interleave(
    sides: Sequence[Side],
    pairs: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> list[list[float]]:
    """Warm every side up, then time the sides' calls in turn, ``pairs`` rounds.

    The order is ``A``'s warm-ups, ``B``'s warm-ups, then ``A, B, A, B, ...``
    (for two sides), so both sides of a pair run under nearly the same load.

    Args:
      sides: the sides (one for an unpaired row).
      pairs: timed calls per side.
      clock: seconds (injectable for tests).

    Returns:
      ``times[i][k]``: seconds of side ``i``'s ``k``-th timed call.
    """
    for side in sides:
        for _ in range(side.warmups):
            side.call()
    times: list[list[float]] = [[] for _ in sides]
    for _ in range(max(1, pairs)):
        for side, out in zip(sides, times, strict=True):
            t0 = clock()
            side.call()
            out.append(clock() - t0)
    return times


@dataclasses.dataclass(frozen=True)
class PairStats:
    """Statistics of two interleaved sides (``a`` over ``b``).

    Attributes:
      ratios: per pair, ``a``'s throughput over ``b``'s.
      ratio: ``(median, min, max)`` of ``ratios``.
      a_throughput, b_throughput: each side's median throughput.
    """

    ratios: tuple[float, ...]
    ratio: tuple[float, float, float]
    a_throughput: float
    b_throughput: float


def side_stats(times: Sequence[float], work: int) -> tuple[float, float]:
    """``(median seconds, median throughput)`` of one side's timed calls."""
    return (
        statistics.median(times),
        statistics.median(work / t for t in times),
    )


def pair_stats(
    a_times: Sequence[float], b_times: Sequence[float], a_work: int, b_work: int
) -> PairStats:
    """The median, min and max over pairs of ``a``'s throughput over ``b``'s.

    Pair ``k`` is ``a``'s ``k``-th call and ``b``'s ``k``-th call (timed one
    after the other); its ratio is ``(a_work / a_times[k]) / (b_work /
    b_times[k])``. A ratio per pair, rather than a ratio of medians, cancels
    load that changes between pairs.
    """
    if len(a_times) != len(b_times) or not a_times:
        raise ValueError(
            f"need the same positive number of calls per side, got "
            f"{len(a_times)} and {len(b_times)}"
        )
    ratios = tuple(
        (a_work / ta) / (b_work / tb) for ta, tb in zip(a_times, b_times, strict=True)
    )
    return PairStats(
        ratios=ratios,
        ratio=(statistics.median(ratios), min(ratios), max(ratios)),
        a_throughput=side_stats(a_times, a_work)[1],
        b_throughput=side_stats(b_times, b_work)[1],
    )


def timed_rows(
    labels: Sequence[dict[str, Any]],
    sides: Sequence[Side],
    pairs: int,
    *,
    load_start: Load,
    against: int | None = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> list[BenchResult]:
    """Time ``sides`` interleaved and return one :class:`BenchResult` per side.

    Args:
      labels: per side, the :class:`BenchResult` fields that describe it
        (``case``, ``agent``, ``env``, ``num_seeds``, ``unit``, and optionally
        ``pair``, ``settings``, ``devices``).
      sides: the sides, timed in turn (ours first).
      pairs: timed calls per side.
      load_start: load averages taken before the sides were compiled.
      against: index of the comparison side (the peer, NumPy) every other side
        is compared with; None, or a single side: no comparison.
      clock: seconds (injectable for tests).

    Returns:
      The rows in the order of ``sides``; every row but the comparison's has
      ``other`` set to the comparison's row and ``ratio`` to its per-pair
      statistics against it.
    """
    if len(labels) != len(sides) or not sides:
        raise ValueError("timed_rows needs one label per side and at least one side")
    if against is not None and len(sides) > 1 and not 0 <= against < len(sides):
        raise ValueError(f"against={against} is not one of the {len(sides)} sides")
    times = interleave(sides, pairs, clock=clock)
    load_end = load_average()
    rows = []
    for label, side, ts in zip(labels, sides, times, strict=True):
        call_s, throughput = side_stats(ts, side.work)
        rows.append(
            BenchResult(
                work_per_call=side.work,
                compile_s=side.compile_s,
                call_s=call_s,
                throughput=throughput,
                times=tuple(ts),
                load_start=load_start,
                load_end=load_end,
                **label,
            )
        )
    if against is None or len(rows) == 1:
        return rows
    for i, row in enumerate(rows):
        if i != against:
            stats = pair_stats(
                times[i], times[against], sides[i].work, sides[against].work
            )
            row.other = rows[against]
            row.ratio = stats.ratio
    return rows
