"""``jaxrl bench`` markdown: the ``BENCHMARKS.md`` tables from the result rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from jaxrl.scripts import common
from jaxrl.scripts.bench_common import CASES, BenchResult, format_load
from jaxrl.scripts.bench_deep import DEEP_ENVS, DEEP_PRESETS

__all__ = ["render", "ratio_cell", "load_cell"]


def ratio_cell(row: BenchResult) -> str:
    """``"1.43x [1.30, 1.60]"``: median [min, max] of the per-pair ratios."""
    if row.other is None:
        return "n/a"
    med, lo, hi = row.ratio
    return f"{med:.2f}x [{lo:.2f}, {hi:.2f}]"


def load_cell(row: BenchResult) -> str:
    """``"1.20/1.10/0.90 -> 1.30/1.12/0.91"``: 1/5/15-min load before -> after."""
    return f"{format_load(row.load_start)} -> {format_load(row.load_end)}"


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def _compile(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _pairs_text(rows: Sequence[BenchResult]) -> str:
    counts = sorted({r.pairs for r in rows if r.other is not None})
    return f"{counts[0]} pairs" if len(counts) == 1 else "the row's pairs"


def render(
    results: Sequence[BenchResult],
    info: dict[str, Any],
    command: str,
    notes: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> str:
    """Render the results, machine description and command as markdown.

    Args:
      results: rows from :func:`jaxrl.scripts.bench.run_bench` (a compared row
        is followed by, and linked to, its comparison row).
      info: :func:`jaxrl.scripts.bench_common.machine_info`, plus
        ``"load_end"`` (load averages at the end of the run) if known.
      command: the command line that made the results.
      notes: sentences printed under the header (e.g. skipped peers).
      warnings: load warnings (:func:`jaxrl.scripts.bench_common.load_warning`),
        printed under the notes.
    """
    load_end = info.get("load_end")
    load_text = f"1/5/15-min load average at start {format_load(info['load'])}" + (
        f", at end {format_load(load_end)}" if load_end else ""
    )
    lines = [
        "# Benchmarks",
        "",
        f"Generated {info['date']} by `{command}`.",
        "",
        f"Machine: {info['cpu']}; {info['usable_cores']} usable of {info['cores']} "
        f"cores; {load_text}; python "
        f"{info['python']}; jax {info['jax']}, backend `{info['backend']}`, device "
        f"`{info['device_kind']}` x{info['device_count']}; numpy {info['numpy']}.",
        "",
        "Each row compiles (`lower` + `compile`, its own column, excluded from the "
        "throughput) and warms up one state-donating `jit(vmap(chunk))` call per "
        "side (ours at 1 seed: the unbatched chunk, `jaxrl.sweep.vmap_runs`, as "
        "`jaxrl train` runs it; the peer: its `jit(vmap(train))`), then calls the "
        "two sides *interleaved* in one process (ours, peer, ours, peer, ...; "
        "each call `block_until_ready`). Throughput is each "
        "side's median over its timed calls; `ours/peer` is the median of the "
        "per-pair ratios, with their min and max in brackets. `load avg` is the "
        "1/5/15-minute load average before the row was compiled and after its "
        "last call; above the usable cores, other processes shared the CPU and "
        "the row is noted below. Methodology: `docs/benchmarks.md`.",
        "",
    ]
    lines += [f"Note: {n}" for n in notes]
    lines += [f"Warning: {w}" for w in warnings]
    if notes or warnings:
        lines.append("")

    env_order = {e: i for i, e in enumerate(DEEP_PRESETS)}
    deep = sorted(
        (r for r in results if r.case in DEEP_ENVS),
        key=lambda r: (
            CASES.index(r.case),
            env_order.get(r.env, 99),
            r.num_seeds,
            -r.devices,
        ),
    )
    if deep:
        ratio_col = f"ours/peer median [min, max] over {_pairs_text(deep)}"
        lines += [
            "## Deep RL: env steps/s with learning, against the peer",
            "",
            "Ours and the peer run the same chunk sizes at identical settings "
            "(`settings` column). `dqn`, `mvi` and `mviq` run against rejax's "
            "`DQN` (plain DQN target, `ddqn=False`) with the Q-network "
            "architecture of `jaxrl.nets.QNetwork` (the peer's built from flax's "
            "stock layers: on MinAtar its convolution is `flax.linen.Conv`, ours "
            "`jaxrl.nets.PatchConv`, the same layer as one matrix product), "
            "`num_envs`, batch, replay capacity, "
            "gradient steps per env step and target-copy period "
            "(`jaxrl.scripts.bench_peer.peer_settings`); rejax has no Munchausen "
            "variant, so the `mvi` and `mviq` rows do more work per update than "
            "their peer (an extra target-network pass for the bonus, the "
            "regularised policy of both target outputs); the `dqn` rows are the "
            "like-for-like comparison. `ppo` runs against rejax's `PPO` with our "
            "actor and critic networks and the same rollout and epoch sizes "
            "(`jaxrl.scripts.bench_peer_ppo.peer_settings`). MinAtar uses a 10k "
            "replay on both sides (memory at 64 seeds); no evaluation. "
            "Ours shards its seeds over the local devices as `jaxrl train` does "
            "(`jaxrl.sweep.seed_sharding`: the most devices whose count divides "
            "the seeds; on a CPU, one JAX device per usable core, `--cpu-devices`), "
            "the peer runs `jit(vmap(train))` on one device as its users do; where "
            "ours spans several devices, ours on one device is timed too, "
            "interleaved with both (the row with `ours devices` 1). "
            "`ours/peer` > 1 means we are faster.",
            "",
        ]
        rows = []
        for r in deep:
            peer = r.other
            rows.append(
                {
                    "agent": r.agent,
                    "env": r.env,
                    "seeds": r.num_seeds,
                    "ours devices": r.devices,
                    "ours steps/s (median)": _fmt(r.throughput),
                    "peer steps/s (median)": _fmt(peer.throughput) if peer else "n/a",
                    ratio_col: ratio_cell(r),
                    "compile s (ours / peer)": (
                        f"{_compile(r.compile_s)} / "
                        + (_compile(peer.compile_s) if peer else "n/a")
                    ),
                    "load avg (1/5/15) start -> end": load_cell(r),
                    "peer": peer.agent if peer else "n/a",
                    "settings": r.settings,
                }
            )
        lines.append(
            common.markdown_table(
                rows,
                [
                    "agent",
                    "env",
                    "seeds",
                    "ours devices",
                    "ours steps/s (median)",
                    "peer steps/s (median)",
                    ratio_col,
                    "compile s (ours / peer)",
                    "load avg (1/5/15) start -> end",
                    "peer",
                    "settings",
                ],
            )
        )
    tab = sorted(
        (r for r in results if r.case == "mvi_tabular" and r.agent == "mvi_tabular"),
        key=lambda r: (r.env, r.num_seeds),
    )
    if tab:
        ratio_col = f"jax/numpy median [min, max] over {_pairs_text(tab)}"
        lines += [
            "## Tabular M-VI: Bellman backups/s, against a NumPy loop",
            "",
            "Both sides do the same sweeps on the same float32 Garnet "
            "(dense `P[S, A, S]`, shared by the seeds, zero initial tables), "
            "called interleaved (jax, NumPy, jax, NumPy, ...): "
            "`mvi_tabular.update` (jax: `jit(vmap(scan(update)))` over seeds, "
            "unbatched at 1 seed) and "
            "`jaxrl.testing.numpy_mvi_sweeps_batched` (NumPy, vectorised over seeds, "
            "states and actions, Python loop over sweeps). The config is closed over, "
            "so q = 1.0 is a Python number and only its normaliser is traced (D16). "
            "Each sweep computes the "
            "backup, its residual `max|T q - q|` and the (zero-scaled) noise draw. "
            "The exact policy-evaluation metrics of `mvi_tabular.make_run` (linear "
            "solves) are excluded on both sides. "
            "`tests/scripts/test_bench.py` checks that both give the same tables. "
            "A backup is one (state, action) entry of one sweep.",
            "",
        ]
        rows = []
        for r in tab:
            np_row = r.other
            rows.append(
                {
                    "MDP": r.env,
                    "seeds": r.num_seeds,
                    "jax backups/s (median)": _fmt(r.throughput),
                    "numpy backups/s (median)": (
                        _fmt(np_row.throughput) if np_row else "n/a"
                    ),
                    ratio_col: ratio_cell(r),
                    "compile s": _compile(r.compile_s),
                    "load avg (1/5/15) start -> end": load_cell(r),
                    "settings": r.settings,
                }
            )
        lines.append(
            common.markdown_table(
                rows,
                [
                    "MDP",
                    "seeds",
                    "jax backups/s (median)",
                    "numpy backups/s (median)",
                    ratio_col,
                    "compile s",
                    "load avg (1/5/15) start -> end",
                    "settings",
                ],
            )
        )
    lines += ["## All rows", ""]
    rows = [
        {
            "case": r.case,
            "agent": r.agent,
            "env": r.env,
            "seeds": r.num_seeds,
            "devices": r.devices,
            "work/call": r.work_per_call,
            "compile s": "-" if math.isnan(r.compile_s) else f"{r.compile_s:.2f}",
            "calls": r.pairs,
            "median call s": f"{r.call_s:.4g}",
            "median throughput": f"{_fmt(r.throughput)} {r.unit}",
            "load avg (1/5/15) start -> end": load_cell(r),
        }
        for r in results
    ]
    lines.append(
        common.markdown_table(
            rows,
            [
                "case",
                "agent",
                "env",
                "seeds",
                "devices",
                "work/call",
                "compile s",
                "calls",
                "median call s",
                "median throughput",
                "load avg (1/5/15) start -> end",
            ],
        )
    )
    return "\n".join(lines)
