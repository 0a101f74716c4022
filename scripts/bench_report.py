"""``jaxrl bench`` markdown: the ``BENCHMARKS.md`` tables from the result rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from jaxrl.scripts import common
from jaxrl.scripts.bench_common import CASES, BenchResult
from jaxrl.scripts.bench_deep import DEEP_ENVS, DEEP_PRESETS

__all__ = ["render"]


def _ratio(ours: BenchResult, other: BenchResult | None) -> str:
    if other is None:
        return "n/a"
    return f"{ours.throughput / other.throughput:.2f}x"


def _fmt(value: float) -> str:
    return f"{value:,.0f}"


def render(
    results: Sequence[BenchResult],
    info: dict[str, Any],
    command: str,
    notes: Sequence[str] = (),
) -> str:
    """Render the results, machine description and command as markdown."""
    lines = [
        "# Benchmarks",
        "",
        f"Generated {info['date']} by `{command}`.",
        "",
        f"Machine: {info['cpu']}; {info['usable_cores']} usable of {info['cores']} "
        f"cores; 1-min load average at start {info['load_1min']}; python "
        f"{info['python']}; jax {info['jax']}, backend `{info['backend']}`, device "
        f"`{info['device_kind']}` x{info['device_count']}; numpy {info['numpy']}.",
        "",
        "Throughput is the median over timed calls of one compiled, state-donating "
        "`jit(vmap(chunk))` call (after warm-up); compile time (`lower` + `compile`) "
        "is measured separately and excluded. Methodology: `docs/benchmarks.md`.",
        "",
    ]
    lines += [f"Note: {n}" for n in notes]
    if notes:
        lines.append("")
    by_pair: dict[str, dict[str, BenchResult]] = {}
    for r in results:
        if r.pair:
            by_pair.setdefault(r.pair, {})[r.case] = r

    env_order = {e: i for i, e in enumerate(DEEP_PRESETS)}
    deep = sorted(
        (r for r in results if r.case in DEEP_ENVS),
        key=lambda r: (CASES.index(r.case), env_order.get(r.env, 99), r.num_seeds),
    )
    if deep:
        lines += [
            "## Deep RL: env steps/s with learning, against the peer",
            "",
            "Ours and the peer run the same chunk sizes in the same process at "
            "identical settings: the same Q-network (`jaxrl.nets.QNetwork`), "
            "`num_envs`, batch, replay capacity, gradient steps per env step and "
            "target-copy period (`jaxrl.scripts.bench.peer_settings`); no evaluation. "
            "The peer is rejax's `DQN` (plain DQN target, `ddqn=False`): rejax has "
            "no Munchausen variant, so the `mvi` rows do more work per update than "
            "their peer (target-network pass on the current observations for the "
            "bonus, log-softmax of both target outputs); the `dqn` rows, at the "
            "same settings, are the like-for-like DQN-against-DQN comparison. "
            "MinAtar uses a 10k replay on both sides (memory at 64 seeds). "
            "`ours/peer` > 1 means we are faster.",
            "",
        ]
        rows = []
        for r in deep:
            peer = by_pair.get(r.pair, {}).get("peer")
            rows.append(
                {
                    "agent": r.agent,
                    "env": r.env,
                    "seeds": r.num_seeds,
                    "ours env steps/s": _fmt(r.throughput),
                    "peer env steps/s": _fmt(peer.throughput) if peer else "n/a",
                    "ours/peer": _ratio(r, peer),
                    "compile s (ours / peer)": (
                        f"{r.compile_s:.1f} / {peer.compile_s:.1f}"
                        if peer
                        else f"{r.compile_s:.1f} / n/a"
                    ),
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
                    "ours env steps/s",
                    "peer env steps/s",
                    "ours/peer",
                    "compile s (ours / peer)",
                    "settings",
                ],
            )
        )
    tab = sorted(
        (r for r in results if r.case == "mvi_tabular" and r.agent == "mvi_tabular"),
        key=lambda r: (r.env, r.num_seeds),
    )
    if tab:
        lines += [
            "## Tabular M-VI: Bellman backups/s, against a NumPy loop",
            "",
            "Both sides do the same sweeps on the same float32 Garnet "
            "(dense `P[S, A, S]`, shared by the seeds, zero initial tables): "
            "`mvi_tabular.update` (jax: `jit(vmap(scan(update)))` over seeds) and "
            "`jaxrl.scripts.bench.numpy_mvi_sweeps` (NumPy, vectorised over states and "
            "actions, Python loop over seeds and sweeps). Each sweep computes the "
            "backup, its residual `max|T q - q|` and the (zero-scaled) noise draw. "
            "The exact policy-evaluation metrics of `mvi_tabular.make_run` (linear "
            "solves) are excluded on both sides. The jax side uses the generic "
            "MVI(q) operator with q traced (the q = 1, q = 2 and bisection branches "
            "are all evaluated), the NumPy side only the q = 1 formulas. "
            "`tests/scripts/test_bench.py` checks that both give the same tables. "
            "A backup is one (state, action) entry of one sweep.",
            "",
        ]
        rows = []
        for r in tab:
            np_row = next(
                (x for x in results if x.pair == r.pair and x.agent == "numpy mvi"),
                None,
            )
            rows.append(
                {
                    "MDP": r.env,
                    "seeds": r.num_seeds,
                    "jax backups/s": _fmt(r.throughput),
                    "numpy backups/s": _fmt(np_row.throughput) if np_row else "n/a",
                    "jax/numpy": _ratio(r, np_row),
                    "compile s": f"{r.compile_s:.1f}",
                    "settings": r.settings,
                }
            )
        lines.append(
            common.markdown_table(
                rows,
                [
                    "MDP",
                    "seeds",
                    "jax backups/s",
                    "numpy backups/s",
                    "jax/numpy",
                    "compile s",
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
            "work/call": r.work_per_call,
            "compile s": "-" if math.isnan(r.compile_s) else f"{r.compile_s:.2f}",
            "call s": f"{r.call_s:.4g}",
            "throughput": f"{_fmt(r.throughput)} {r.unit}",
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
                "work/call",
                "compile s",
                "call s",
                "throughput",
            ],
        )
    )
    return "\n".join(lines)
