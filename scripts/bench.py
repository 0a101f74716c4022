"""``jaxrl bench``: throughput and compile time per agent/env at 1, 8 and 64 vmapped seeds.

Cases:

* ``dqn`` on ``CartPole-v1``: environment steps per second *with learning*
  (one gradient step per iteration from the first iteration, no evaluation),
  i.e. ``seeds * iters_per_chunk * num_envs / seconds`` for one chunk;
* ``vi_tabular`` on a Garnet: Bellman backups per second
  (``seeds * sweeps * S * A / seconds``; every sweep also evaluates the greedy
  policy exactly for the suboptimality metric, which is included).

For each case and seed count the chunk function ``jit(vmap(run))`` is lowered
and compiled explicitly (compile time, reported separately), run once to warm
up, then timed over ``--repeats`` calls with ``block_until_ready``; the median
is reported. The markdown table, with a machine description (CPU model, cores,
load, jax version, backend and device kind, date), is written to
``BENCHMARKS.md`` (``--out``).

Usage::

    jaxrl bench                 # full run (minutes on CPU)
    jaxrl bench --quick         # small chunks, fewer repeats
    jaxrl bench --seeds 1,8 --agents dqn --out /tmp/bench.md
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax

from jaxrl import logging as jlog
from jaxrl.errors import ConfigError
from scripts import common

__all__ = [
    "BenchResult",
    "machine_info",
    "bench_case",
    "run_bench",
    "build_parser",
    "main",
]


@dataclasses.dataclass
class BenchResult:
    """One benchmark row."""

    agent: str
    env: str
    num_seeds: int
    unit: str
    work_per_call: int
    compile_s: float
    call_s: float
    throughput: float


def machine_info() -> dict[str, Any]:
    """Describe the machine: CPU model, cores, load, jax version, backend, device, date."""
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
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _cases(quick: bool) -> dict[str, dict[str, Any]]:
    return {
        "dqn": {
            "env": "CartPole-v1",
            "env_kwargs": {},
            "overrides": {
                "num_chunks": 1,
                "iters_per_chunk": 100 if quick else 1_000,
                "learning_starts": 0,
                "num_eval_episodes": 0,
                "buffer_size": 10_000,
                "batch_size": 128,
            },
            "config": lambda: __import__(
                "agents.dqn", fromlist=["x"]
            ).cartpole_config(),
            "unit": "env steps/s",
            "work": lambda c, env_params: c.iters_per_chunk * c.num_envs,
        },
        "vi_tabular": {
            "env": "Garnet-v0",
            "env_kwargs": {
                "num_states": 50,
                "num_actions": 4,
                "branching": 5,
                "gamma": 0.99,
            },
            "overrides": {"num_chunks": 1, "iters_per_chunk": 20 if quick else 100},
            "config": lambda: __import__("agents.vi_tabular", fromlist=["x"]).Config(),
            "unit": "backups/s",
            "work": lambda c, env_params: (
                c.iters_per_chunk
                * env_params.mdp.num_states
                * env_params.mdp.num_actions
            ),
        },
    }


def bench_case(
    agent: str, num_seeds: int, *, quick: bool = False, repeats: int = 3
) -> BenchResult:
    """Benchmark one agent at ``num_seeds`` vmapped seeds (see the module docstring)."""
    case = _cases(quick)[agent]
    module = common.get_agent(agent)
    config = case["config"]().replace(**case["overrides"])
    config.validate()
    import envs

    env, env_params = envs.make(case["env"], **case["env_kwargs"])
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(jax.vmap(lambda k: module.init(k, env, env_params, config)))(keys)
    run = jax.jit(jax.vmap(module.make_run(config, env, env_params)))
    t0 = time.perf_counter()
    compiled = run.lower(state).compile()
    compile_s = time.perf_counter() - t0
    state, metrics = compiled(state)  # warm-up (fills DQN's replay buffer, too)
    jax.block_until_ready((state, metrics))
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        state, metrics = compiled(state)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - t0)
    call_s = statistics.median(times)
    work = int(case["work"](config, env_params)) * num_seeds
    return BenchResult(
        agent=agent,
        env=case["env"],
        num_seeds=num_seeds,
        unit=case["unit"],
        work_per_call=work,
        compile_s=compile_s,
        call_s=call_s,
        throughput=work / call_s,
    )


def render(results: Sequence[BenchResult], info: dict[str, Any], quick: bool) -> str:
    """Render the results and machine description as markdown."""
    lines = [
        "# Benchmarks",
        "",
        f"Generated {info['date']} by `jaxrl bench{' --quick' if quick else ''}`.",
        "",
        f"Machine: {info['cpu']}; {info['usable_cores']} usable of {info['cores']} cores; "
        f"1-min load average at start {info['load_1min']}; python {info['python']}; "
        f"jax {info['jax']}, backend `{info['backend']}`, device `{info['device_kind']}` "
        f"x{info['device_count']}.",
        "",
        "Throughput is the median over timed calls of one compiled `jit(vmap(run))` chunk "
        "(after a warm-up call); compile time (`lower` + `compile`) is measured separately. "
        "DQN: environment steps/s including one gradient step per iteration. "
        "VI: Bellman backups (S x A entries per sweep) per second, including the exact "
        "greedy-policy evaluation done every sweep for the suboptimality metric.",
        "",
        "",
    ]
    rows = [
        {
            "agent": r.agent,
            "env": r.env,
            "seeds": r.num_seeds,
            "work/call": r.work_per_call,
            "compile s": round(r.compile_s, 2),
            "call s": round(r.call_s, 4),
            "throughput": f"{r.throughput:,.0f} {r.unit}",
        }
        for r in results
    ]
    columns = [
        "agent",
        "env",
        "seeds",
        "work/call",
        "compile s",
        "call s",
        "throughput",
    ]
    return "\n".join(lines) + common.markdown_table(rows, columns)


def run_bench(
    agents_: Sequence[str],
    seeds: Sequence[int],
    *,
    quick: bool = False,
    repeats: int = 3,
    out: str | None = "BENCHMARKS.md",
    log: Any = None,
) -> tuple[list[BenchResult], str]:
    """Run every (agent, seed count) case and write the markdown to ``out``."""
    log = sys.stderr if log is None else log
    known = _cases(quick)
    for a in agents_:
        if a not in known:
            raise ConfigError(
                f"no benchmark for agent {a!r}; valid: {', '.join(known)}"
            )
    info = machine_info()
    results = []
    for a in agents_:
        for s in seeds:
            r = bench_case(a, s, quick=quick, repeats=repeats)
            print(
                f"{a} x{s}: compile {r.compile_s:.2f}s, {r.throughput:,.0f} {r.unit}",
                file=log,
            )
            results.append(r)
    text = render(results, info, quick)
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
        "--agents",
        type=lambda t: [a for a in t.split(",") if a],
        default=["dqn", "vi_tabular"],
        help="comma-separated agents (default: dqn,vi_tabular)",
    )
    parser.add_argument(
        "--repeats",
        type=common.positive_int,
        default=None,
        help="timed calls per case (default 3, 1 with --quick)",
    )
    parser.add_argument("--out", default="BENCHMARKS.md", help="markdown output file")
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``bench`` from parsed arguments and print the table."""
    repeats = args.repeats or (1 if args.quick else 3)
    _, text = run_bench(
        args.agents, args.seeds, quick=args.quick, repeats=repeats, out=args.out
    )
    print(text, end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m scripts.bench``."""
    parser = build_parser()
    return common.run_main(
        lambda: run_from_args(parser.parse_args(argv)), prog="jaxrl bench"
    )


if __name__ == "__main__":
    sys.exit(main())
