"""``jaxrl bench`` tabular cases: exact VI and M-VI sweeps, M-VI against a NumPy loop.

``mvi_tabular`` times :func:`jaxrl.agents.mvi_tabular.update` sweeps (the
registry's ``mvi_tabular/bench-garnet`` preset) against
:func:`jaxrl.testing.numpy_mvi_sweeps`, the same sweeps in plain NumPy in the
same process; ``vi_tabular`` times ``vi_tabular.make_run`` (with its exact
greedy-policy evaluation of every sweep).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxrl.scripts import common, presets
from jaxrl.scripts.bench_common import SCALES, BenchResult, compile_chunk, timed_calls
from jaxrl.testing import numpy_mvi_sweeps

__all__ = ["mvi_tabular_chunk", "bench_mvi_tabular", "bench_vi_tabular"]


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


def bench_mvi_tabular(
    num_seeds: int, scale: str, repeats: int
) -> tuple[BenchResult, BenchResult]:
    from jaxrl.agents import mvi_tabular

    sizes = SCALES[scale]["mvi"]
    env, env_params = _garnet(sizes)
    mdp = env_params.mdp
    config = _tabular_config()
    sweeps = sizes["sweeps"]
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(jax.vmap(lambda k: mvi_tabular.init(k, env, env_params, config)))(
        keys
    )
    chunk = jax.vmap(mvi_tabular_chunk(config, sweeps), in_axes=(0, None))
    compiled, compile_s = compile_chunk(chunk, state, mdp)
    call_s = timed_calls(compiled, state, mdp, repeats=repeats)
    num_states, num_actions = sizes["num_states"], sizes["num_actions"]
    work = num_seeds * sweeps * num_states * num_actions
    name = _garnet_name(sizes)
    settings = (
        f"M-VI alpha={config.alpha}, tau={config.tau}, l0={config.l0}, "
        f"{sweeps} sweeps per call"
    )
    pair = f"{name}|{num_seeds}"
    ours = BenchResult(
        case="mvi_tabular",
        agent="mvi_tabular",
        env=name,
        num_seeds=num_seeds,
        unit="backups/s",
        work_per_call=work,
        compile_s=compile_s,
        call_s=call_s,
        throughput=work / call_s,
        pair=pair,
        settings=settings,
    )
    # The NumPy loop: same MDP (float32), same sweeps, seeds looped over.
    P = np.asarray(mdp.P)
    R = np.asarray(mdp.R)
    q0 = np.zeros((num_seeds, num_states, num_actions), P.dtype)
    kwargs = {
        "alpha": float(config.alpha),
        "tau": float(config.tau),
        "l0": float(config.l0),
        "noise_std": float(config.noise_std),
    }
    numpy_mvi_sweeps(P, R, float(mdp.gamma), q0[:1], num_sweeps=1, **kwargs)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        q0, _ = numpy_mvi_sweeps(
            P, R, float(mdp.gamma), q0, num_sweeps=sweeps, **kwargs
        )
        times.append(time.perf_counter() - t0)
    np_s = statistics.median(times)
    reference = BenchResult(
        case="mvi_tabular",
        agent="numpy mvi",
        env=name,
        num_seeds=num_seeds,
        unit="backups/s",
        work_per_call=work,
        compile_s=float("nan"),
        call_s=np_s,
        throughput=work / np_s,
        pair=pair,
        settings=settings,
    )
    return ours, reference


def bench_vi_tabular(num_seeds: int, scale: str, repeats: int) -> BenchResult:
    from jaxrl.agents import vi_tabular

    sizes = SCALES[scale]["vi"]
    env, env_params = _garnet(sizes)
    config = vi_tabular.Config(num_chunks=1, iters_per_chunk=sizes["sweeps"])
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(jax.vmap(lambda k: vi_tabular.init(k, env, env_params, config)))(
        keys
    )
    compiled, compile_s = compile_chunk(
        jax.vmap(vi_tabular.make_run(config, env, env_params)), state
    )
    call_s = timed_calls(compiled, state, repeats=repeats)
    work = num_seeds * sizes["sweeps"] * sizes["num_states"] * sizes["num_actions"]
    return BenchResult(
        case="vi_tabular",
        agent="vi_tabular",
        env=_garnet_name(sizes),
        num_seeds=num_seeds,
        unit="backups/s",
        work_per_call=work,
        compile_s=compile_s,
        call_s=call_s,
        throughput=work / call_s,
        settings="includes the exact greedy-policy evaluation of every sweep",
    )
