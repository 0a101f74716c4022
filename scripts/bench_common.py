"""``jaxrl bench`` plumbing: the result row, problem sizes per scale, the machine, timing.

Shared by the case modules (:mod:`jaxrl.scripts.bench_deep`,
:mod:`jaxrl.scripts.bench_peer`, :mod:`jaxrl.scripts.bench_tabular`), the
markdown (:mod:`jaxrl.scripts.bench_report`) and the command
(:mod:`jaxrl.scripts.bench`). Every timed function is compiled explicitly
(``jit(fn, donate_argnums=0).lower(...).compile()``, reported separately), run
to warm up, then timed over calls with ``block_until_ready``; the median is
reported.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = [
    "CASES",
    "SCALES",
    "BenchResult",
    "machine_info",
    "compile_chunk",
    "timed_calls",
]

CASES: tuple[str, ...] = ("dqn", "mvi", "peer", "vi_tabular", "mvi_tabular")
"""Every case ``--cases`` accepts, in the order they run."""

SCALES: dict[str, dict[str, Any]] = {
    "full": {
        # MinAtar on a 2-core CPU: ~4.6 s per iteration at 64 seeds (16 envs, 4
        # updates of batch 32 with a conv torso per iteration and seed).
        "iters": {"CartPole-v1": 1_000, "Breakout-MinAtar": 20},
        "deep_overrides": {},
        "vi": {"num_states": 50, "num_actions": 4, "sweeps": 100},
        "mvi": {"num_states": 500, "num_actions": 8, "sweeps": 50},
    },
    "quick": {
        "iters": {"CartPole-v1": 100, "Breakout-MinAtar": 5},
        "deep_overrides": {},
        "vi": {"num_states": 50, "num_actions": 4, "sweeps": 20},
        "mvi": {"num_states": 500, "num_actions": 8, "sweeps": 10},
    },
    # For tests: seconds on a laptop; not a meaningful benchmark.
    "tiny": {
        "iters": {"CartPole-v1": 4, "Breakout-MinAtar": 4},
        "deep_overrides": {"buffer_size": 256, "batch_size": 16},
        "vi": {"num_states": 10, "num_actions": 2, "sweeps": 3},
        "mvi": {"num_states": 12, "num_actions": 3, "sweeps": 3},
    },
}
"""Chunk and problem sizes per scale (``--quick`` selects ``"quick"``)."""


@dataclasses.dataclass
class BenchResult:
    """One benchmark row.

    Attributes:
      case: the case that produced the row (``"mvi"``, ``"peer"``, ...).
      agent: what ran (``"mvi"``, ``"rejax DQN"``, ``"numpy mvi"``, ...).
      env: environment id (with sizes for the Garnets).
      num_seeds: vmapped seeds (NumPy: seeds looped over).
      unit: ``"env steps/s"`` or ``"backups/s"``.
      work_per_call: env steps or backups done by one timed call.
      compile_s: ``lower`` + ``compile`` seconds (NaN for NumPy).
      call_s: median seconds of one timed call.
      throughput: ``work_per_call / call_s``.
      pair: key pairing a row with its comparison row (same settings).
      settings: short description of the settings shared with the pair.
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


def machine_info() -> dict[str, Any]:
    """Describe the machine: CPU, cores, load, jax/numpy versions, backend, date."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    device = jax.devices()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "load_1min": round(load, 2),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def compile_chunk(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``jit(fn, donate_argnums=0)``, lowered and compiled for ``args``; seconds."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=0).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def timed_calls(
    compiled: Any, state: Any, *rest: Any, repeats: int, warmups: int = 1
) -> float:
    """Run ``state = compiled(state, *rest)[0]`` ``warmups`` times, then time it.

    Returns:
      The median seconds over ``repeats`` calls (each ``block_until_ready``).
    """
    for _ in range(max(1, warmups)):
        state = compiled(state, *rest)[0]
        jax.block_until_ready(state)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        state = compiled(state, *rest)[0]
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
