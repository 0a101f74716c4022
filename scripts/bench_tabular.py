"""``jaxrl bench`` tabular cases: exact VI and M-VI sweeps, M-VI against a NumPy loop.

``mvi_tabular`` times :func:`jaxrl.agents.mvi_tabular.update` sweeps (the
registry's ``mvi_tabular/bench-garnet`` preset) against
:func:`jaxrl.testing.numpy_mvi_sweeps_batched`, the same sweeps in plain NumPy
vectorised over seeds, states and actions, in the same process, the calls interleaved (jax, NumPy, jax, NumPy, ...);
``vi_tabular`` times ``vi_tabular.make_run`` (with its exact greedy-policy
evaluation of every sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxrl.scripts import common, presets
from jaxrl.scripts.bench_common import (
    SCALES,
    BenchResult,
    Side,
    compile_chunk,
    jax_side,
    load_average,
    timed_rows,
)
from jaxrl.sweep import vmap_runs
from jaxrl.testing import numpy_mvi_sweeps_batched

__all__ = [
    "mvi_tabular_chunk",
    "numpy_side",
    "bench_mvi_tabular",
    "bench_vi_tabular",
]


def _garnet(sizes: dict[str, int]) -> tuple[Any, Any]:
    from jaxrl import envs

    return envs.make(
        "Garnet-v0",
        num_states=sizes["num_states"],
        num_actions=sizes["num_actions"],
        branching=5,
        gamma=0.99,
    )


def _garnet_name(sizes: dict[str, int]) -> str:
    return f"Garnet(S={sizes['num_states']}, A={sizes['num_actions']})"


def _tabular_config() -> Any:
    return presets.get_preset("mvi_tabular", "bench-garnet").make_config()


def mvi_tabular_chunk(config: Any, num_sweeps: int) -> Callable[..., Any]:
    """Return ``chunk(state, mdp) -> (state, residuals[sweeps])`` (``update`` x N)."""
    from jaxrl.agents import mvi_tabular

    def chunk(state: Any, mdp: Any) -> tuple[Any, Any]:
        def body(s: Any, _: None) -> tuple[Any, Any]:
            s, metrics = mvi_tabular.update(s, mdp, config)
            return s, metrics["dp/residual"]

        return jax.lax.scan(body, state, None, length=num_sweeps)

    return chunk


def numpy_side(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    q0: np.ndarray,
    sweeps: int,
    work: int,
    **kwargs: float,
) -> Side:
    """A :class:`Side` running ``sweeps`` NumPy M-VI sweeps from the last tables."""
    box = [q0]

    def call() -> None:
        box[0], _ = numpy_mvi_sweeps_batched(
            P, R, gamma, box[0], num_sweeps=sweeps, **kwargs
        )

    # warm-up: one sweep of every seed (allocations, BLAS threads)
    numpy_mvi_sweeps_batched(P, R, gamma, q0, num_sweeps=1, **kwargs)
    return Side(call=call, work=work, warmups=0)


def bench_mvi_tabular(
    num_seeds: int, scale: str, pairs: int
) -> tuple[BenchResult, BenchResult]:
    """Time jax M-VI sweeps against the NumPy loop, interleaved over ``pairs``.

    Returns:
      ``(jax row, NumPy row)``; the jax row's ``other`` is the NumPy row.
    """
    from jaxrl.agents import mvi_tabular

    load_start = load_average()
    sizes = SCALES[scale]["mvi"]
    env, env_params = _garnet(sizes)
    mdp = env_params.mdp
    config = _tabular_config()
    sweeps = sizes["sweeps"]
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(vmap_runs(lambda k: mvi_tabular.init(k, env, env_params, config)))(
        keys
    )
    chunk = vmap_runs(mvi_tabular_chunk(config, sweeps), in_axes=(0, None))
    compiled, compile_s = compile_chunk(chunk, state, mdp)
    num_states, num_actions = sizes["num_states"], sizes["num_actions"]
    work = num_seeds * sweeps * num_states * num_actions
    ours = jax_side(compiled, state, mdp, work=work, compile_s=compile_s)
    # NumPy: same MDP (float32), same sweeps, vectorised over the seeds too.
    P = np.asarray(mdp.P)
    R = np.asarray(mdp.R)
    q0 = np.zeros((num_seeds, num_states, num_actions), P.dtype)
    reference = numpy_side(
        P,
        R,
        float(mdp.gamma),
        q0,
        sweeps,
        work,
        alpha=float(config.alpha),
        tau=float(config.tau),
        l0=float(config.l0),
        noise_std=float(config.noise_std),
        q=float(config.q),
    )
    name = _garnet_name(sizes)
    label = {
        "case": "mvi_tabular",
        "env": name,
        "num_seeds": num_seeds,
        "unit": "backups/s",
        "pair": f"{name}|{num_seeds}",
        "settings": (
            f"M-VI alpha={config.alpha}, tau={config.tau}, l0={config.l0}, "
            f"{sweeps} sweeps per call"
        ),
    }
    jax_row, np_row = timed_rows(
        [{**label, "agent": "mvi_tabular"}, {**label, "agent": "numpy mvi"}],
        [ours, reference],
        pairs,
        load_start=load_start,
    )
    return jax_row, np_row


def bench_vi_tabular(num_seeds: int, scale: str, pairs: int) -> BenchResult:
    """Time exact VI chunks (``pairs`` calls; no comparison)."""
    from jaxrl.agents import vi_tabular

    load_start = load_average()
    sizes = SCALES[scale]["vi"]
    env, env_params = _garnet(sizes)
    config = vi_tabular.Config(num_chunks=1, iters_per_chunk=sizes["sweeps"])
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(vmap_runs(lambda k: vi_tabular.init(k, env, env_params, config)))(
        keys
    )
    compiled, compile_s = compile_chunk(
        vmap_runs(vi_tabular.make_run(config, env, env_params)), state
    )
    work = num_seeds * sizes["sweeps"] * sizes["num_states"] * sizes["num_actions"]
    (row,) = timed_rows(
        [
            {
                "case": "vi_tabular",
                "agent": "vi_tabular",
                "env": _garnet_name(sizes),
                "num_seeds": num_seeds,
                "unit": "backups/s",
                "settings": "includes the exact greedy-policy evaluation of every sweep",
            }
        ],
        [jax_side(compiled, state, work=work, compile_s=compile_s)],
        pairs,
        load_start=load_start,
    )
    return row
