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
  Garnet(S=500, A=8), against :func:`numpy_mvi_sweeps`, a plain NumPy loop
  (vectorised over states and actions, Python loop over seeds and sweeps) doing
  the same sweeps in the same process. Neither side computes the exact
  policy-evaluation metrics of ``mvi_tabular.make_run`` (linear solves that
  would dominate both timings); both compute the backup, the residual
  ``max |T q - q|`` and the (zero-scaled) noise draw of every sweep.

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

import contextlib
import dataclasses
import datetime
import importlib
import importlib.metadata
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxrl import logging as jlog
from jaxrl.errors import ConfigError
from jaxrl.nets import QNetwork
from jaxrl.scripts import common

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

CASES: tuple[str, ...] = ("dqn", "mvi", "peer", "vi_tabular", "mvi_tabular")
"""Every case ``--cases`` accepts, in the order they run."""

DEEP_ENVS: dict[str, tuple[str, ...]] = {
    "dqn": ("CartPole-v1", "Breakout-MinAtar"),
    "mvi": ("CartPole-v1", "Breakout-MinAtar"),
}
"""Environments of the deep cases (``--envs`` selects among them).

``jaxrl.agents.dqn`` has no MinAtar preset; its MinAtar row uses the DQN fields of
``jaxrl.agents.mvi.minatar_config`` (the same settings as the ``mvi`` row), so that
``dqn`` against the peer is DQN against DQN at identical settings.
"""

_PRESETS: dict[str, str] = {
    "CartPole-v1": "cartpole_config",
    "Breakout-MinAtar": "minatar_config",
}

_ENV_OVERRIDES: dict[str, dict[str, Any]] = {
    # gymnax MinAtar observations are float32 [10, 10, 4]: a 100k replay of obs and
    # next_obs is 320 MB per seed, 20 GB at 64 seeds (for each implementation).
    "Breakout-MinAtar": {"buffer_size": 10_000},
}
"""Benchmark-wide config overrides per environment (both implementations)."""

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

_PEER = "rejax"
_PEER_LABEL = "rejax DQN"


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


# ----------------------------------------------------------------------------- timing


def _compile(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``jit(fn, donate_argnums=0)``, lowered and compiled for ``args``; seconds."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=0).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _timed_calls(
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


# ----------------------------------------------------------------------------- deep RL


def _deep_config(agent: str, env_name: str, scale: str) -> Any:
    """The agent's preset for ``env_name`` with the benchmark overrides."""
    module = importlib.import_module(f"jaxrl.agents.{agent}")
    factory = getattr(module, _PRESETS[env_name], None)
    if factory is None and agent == "dqn":
        mvi = importlib.import_module("jaxrl.agents.mvi")
        preset = getattr(mvi, _PRESETS[env_name])()
        names = [f.name for f in dataclasses.fields(module.Config)]
        factory = lambda: module.Config(**{n: getattr(preset, n) for n in names})
    if factory is None:
        raise ConfigError(f"jaxrl.agents.{agent} has no {_PRESETS[env_name]} preset")
    config = factory().replace(
        num_chunks=1,
        iters_per_chunk=SCALES[scale]["iters"][env_name],
        learning_starts=0,
        train_frequency=1,
        num_eval_episodes=0,
        **{**_ENV_OVERRIDES.get(env_name, {}), **SCALES[scale]["deep_overrides"]},
    )
    config.validate()
    return config


def _settings_text(config: Any) -> str:
    net = (
        f"conv{list(config.conv_features)}+" if config.conv_features else ""
    ) + f"mlp{list(config.hidden_sizes)}"
    return (
        f"{net}, {config.num_envs} envs, batch {config.batch_size}, "
        f"buffer {config.buffer_size}, {config.updates_per_iter} update(s) per "
        f"{config.num_envs} env steps, target "
        + ("copy" if float(config.polyak) == 1.0 else f"polyak {config.polyak}")
        + f" every {config.target_update_period} updates"
    )


def _pair_key(config: Any, env_name: str, num_seeds: int) -> str:
    return f"{env_name}|{num_seeds}|{_settings_text(config)}"


def _bench_ours(
    agent: str, env_name: str, num_seeds: int, scale: str, repeats: int
) -> tuple[BenchResult, Any]:
    from jaxrl import envs

    module = importlib.import_module(f"jaxrl.agents.{agent}")
    config = _deep_config(agent, env_name, scale)
    env, env_params = envs.make(env_name)
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(jax.vmap(lambda k: module.init(k, env, env_params, config)))(keys)
    compiled, compile_s = _compile(
        jax.vmap(module.make_run(config, env, env_params)), state
    )
    call_s = _timed_calls(compiled, state, repeats=repeats)
    work = config.iters_per_chunk * config.num_envs * num_seeds
    result = BenchResult(
        case=agent,
        agent=agent,
        env=env_name,
        num_seeds=num_seeds,
        unit="env steps/s",
        work_per_call=work,
        compile_s=compile_s,
        call_s=call_s,
        throughput=work / call_s,
        pair=_pair_key(config, env_name, num_seeds),
        settings=_settings_text(config),
    )
    return result, config


def peer_available() -> bool:
    """Whether the peer (``rejax``) can be imported."""
    try:
        with _quiet():
            importlib.import_module(_PEER)
    except ImportError:
        return False
    return True


def peer_settings(config: Any) -> dict[str, Any]:
    """Map a benchmark :class:`jaxrl.agents.dqn.Config` to rejax ``DQN.create`` arguments.

    The mapping keeps the work per environment step identical:

    * ``num_envs``, ``buffer_size``, ``batch_size``: the same;
    * ``num_epochs`` (gradient steps per iteration of ``num_envs`` env steps)
      ``= updates_per_iter`` (our ``train_frequency`` must be 1);
    * ``target_update_freq`` (counted in env steps) ``= target_update_period *
      num_envs / updates_per_iter``, ``polyak`` (rejax keeps that fraction of the
      old target) ``= 1 - polyak``;
    * ``fill_buffer = batch_size``: rejax samples without replacement and
      needs that many transitions before learning (the benchmark warms up past
      it; ours learns from the first iteration);
    * ``ddqn = False`` (plain DQN target), no observation/reward normalisation;
    * traced numbers (lr, gamma, clipping, ε schedule) copied where rejax has
      them (they do not change the cost); ``total_timesteps`` and ``eval_freq``
      are one chunk, and evaluation is replaced by a no-op.

    The network is set separately (the very same :class:`jaxrl.nets.QNetwork`).

    Args:
      config: a ``dqn``/``mvi`` config with ``train_frequency == 1``.

    Returns:
      Keyword arguments for ``rejax.DQN.create`` (without ``env``).

    Raises:
      ConfigError: if ``train_frequency != 1`` (rejax learns every iteration).
    """
    if int(config.train_frequency) != 1:
        raise ConfigError(
            "peer_settings needs train_frequency == 1 (rejax has no "
            f"train-frequency setting), got {config.train_frequency!r}"
        )
    steps = config.iters_per_chunk * config.num_envs
    return {
        "num_envs": config.num_envs,
        "buffer_size": config.buffer_size,
        "batch_size": config.batch_size,
        "fill_buffer": config.batch_size,
        "num_epochs": config.updates_per_iter,
        "target_update_freq": max(
            1,
            round(
                config.target_update_period * config.num_envs / config.updates_per_iter
            ),
        ),
        "polyak": 1.0 - float(config.polyak),
        "ddqn": False,
        "normalize_observations": False,
        "normalize_rewards": False,
        "learning_rate": float(config.lr),
        "gamma": float(config.gamma),
        "max_grad_norm": float(config.max_grad_norm),
        "eps_start": float(config.eps_start),
        "eps_end": float(config.eps_end),
        "exploration_fraction": float(config.eps_decay),
        "total_timesteps": steps,
        "eval_freq": steps,
        "skip_initial_evaluation": True,
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the deprecation warnings rejax and its dependencies emit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


class _PeerQNetwork(nn.Module):
    """Our :class:`jaxrl.nets.QNetwork` with the ``take`` method rejax's DQN calls."""

    action_dim: int
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int
    conv_features: tuple[int, ...]

    def setup(self) -> None:
        self.q = QNetwork(
            num_actions=self.action_dim,
            hidden_sizes=self.hidden_sizes,
            activation=self.activation,
            obs_ndim=self.obs_ndim,
            conv_features=self.conv_features,
        )

    def __call__(self, obs: Any) -> Any:
        """``[B, *obs_shape] -> [B, A]`` action values."""
        return self.q(obs)

    def take(self, obs: Any, action: Any) -> Any:
        """``[B]`` action values of the taken actions."""
        q = self(obs)
        return jnp.take_along_axis(q, action[:, None].astype(jnp.int32), axis=-1)[:, 0]


class _GymnaxV0View:
    """Show a gymnax 1.0 environment through the 0.0.9 ``step`` rejax 0.1.3 calls.

    gymnax 1.0's ``step`` returns ``(obs, state, reward, terminated, truncated,
    info)``; rejax 0.1.3 unpacks five values ``(obs, state, reward, done,
    info)``. This view calls the same ``step`` (same auto-reset, same work) and
    returns ``done = terminated | truncated``. Everything else is forwarded.
    """

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    def reset(self, key: Any, params: Any = None) -> Any:
        return self._env.reset(key, params)

    def step(self, key: Any, state: Any, action: Any, params: Any = None) -> Any:
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, params
        )
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


def _make_peer(config: Any, env_name: str) -> Any:
    """A rejax ``DQN`` at :func:`peer_settings` of ``config`` with our network."""
    from jaxrl import envs

    with _quiet():
        rejax = importlib.import_module(_PEER)
        from rejax.networks import EpsilonGreedyPolicy

    env, env_params = envs.make(env_name)
    obs_ndim = len(envs.obs_shape(env, env_params))
    network = EpsilonGreedyPolicy(_PeerQNetwork)(
        action_dim=envs.num_actions(env, env_params),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_ndim=obs_ndim,
        conv_features=tuple(config.conv_features),
    )
    algo = rejax.DQN.create(
        env=_GymnaxV0View(env), env_params=env_params, **peer_settings(config)
    )
    return algo.replace(agent=network, eval_callback=_no_evaluation)


def _no_evaluation(algo: Any, train_state: Any, key: Any) -> Any:
    del algo, train_state, key
    return jnp.zeros(())


def _peer_keys(num_seeds: int) -> Any:
    """rejax expects raw ``uint32[2]`` keys: the data of our typed keys."""
    return jax.random.key_data(common.seed_keys(0, num_seeds))


def _bench_peer(
    config: Any, env_name: str, num_seeds: int, repeats: int
) -> BenchResult:
    algo = _make_peer(config, env_name)
    with _quiet():
        state = jax.jit(jax.vmap(algo.init_state))(_peer_keys(num_seeds))
        chunk = jax.vmap(lambda ts: (algo.train(train_state=ts)[0],))
        compiled, compile_s = _compile(chunk, state)
        steps = config.iters_per_chunk * config.num_envs
        # rejax learns once global_step > fill_buffer: after these calls, always
        warmups = math.ceil((config.batch_size + 1) / steps)
        call_s = _timed_calls(compiled, state, repeats=repeats, warmups=warmups)
    version = importlib.metadata.version(_PEER)
    work = steps * num_seeds
    return BenchResult(
        case="peer",
        agent=f"{_PEER_LABEL} {version}",
        env=env_name,
        num_seeds=num_seeds,
        unit="env steps/s",
        work_per_call=work,
        compile_s=compile_s,
        call_s=call_s,
        throughput=work / call_s,
        pair=_pair_key(config, env_name, num_seeds),
        settings=_settings_text(config),
    )


# ----------------------------------------------------------------------------- tabular


def numpy_mvi_sweeps(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    q0: np.ndarray,
    *,
    alpha: float,
    tau: float,
    l0: float,
    num_sweeps: int,
    noise_std: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact M-VI(alpha, tau) sweeps in plain NumPy: the benchmark's reference loop.

    Per seed and sweep (Vieillard et al. 2020, eq. 4, Shannon entropy ``q = 1``):

    ``tau ln pi = q - tau logsumexp(q / tau)``, ``pi = softmax(q / tau)``,
    ``v = <pi, q - tau ln pi>``,
    ``q <- R + alpha clip(tau ln pi, l0, 0) + gamma P v + noise_std * eps``,

    vectorised over states and actions (one ``[S*A, S] @ [S]`` product) with a
    Python loop over seeds and sweeps, in ``P``'s dtype. Also returns the
    residual ``max |T q - q|`` of every sweep, as :func:`jaxrl.agents.mvi_tabular.update`.

    Args:
      P: ``[S, A, S]`` transition probabilities.
      R: ``[S, A]`` rewards.
      gamma: discount.
      q0: ``[N, S, A]`` initial tables, one per seed.
      alpha: Munchausen scaling.
      tau: temperature, ``> 0``.
      l0: lower clip of the scaled log-policy (``-inf``: none).
      num_sweeps: sweeps per seed.
      noise_std: std of the Gaussian noise added after every backup.
      rng: NumPy generator for the noise (default: ``default_rng(0)``).

    Returns:
      ``(q[N, S, A], residuals[N, num_sweeps])``.
    """
    if not tau > 0:
        raise ValueError(f"numpy_mvi_sweeps needs tau > 0, got {tau!r}")
    num_states, num_actions = R.shape
    dtype = P.dtype
    p_flat = np.ascontiguousarray(P.reshape(num_states * num_actions, num_states))
    rewards = R.astype(dtype)
    rng = np.random.default_rng(0) if rng is None else rng
    out = np.empty((len(q0), num_states, num_actions), dtype)
    residuals = np.empty((len(q0), num_sweeps), dtype)
    scale = dtype.type(noise_std)
    for n in range(len(q0)):
        q = np.array(q0[n], dtype)
        for k in range(num_sweeps):
            z = q / dtype.type(tau)
            top = z.max(axis=1, keepdims=True)
            lse = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
            log_pi = q - dtype.type(tau) * lse  # tau ln pi   [S, A]
            pi = np.exp(z - lse)
            v = (pi * (q - log_pi)).sum(axis=1)  # [S]
            target = (
                rewards
                + dtype.type(alpha) * np.clip(log_pi, l0, 0.0)
                + dtype.type(gamma) * (p_flat @ v).reshape(num_states, num_actions)
            )
            residuals[n, k] = np.abs(target - q).max()
            noise = rng.standard_normal((num_states, num_actions), dtype=dtype)
            q = target + scale * noise
        out[n] = q
    return out, residuals


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
    from jaxrl.agents import mvi_tabular

    return mvi_tabular.Config(alpha=0.9, tau=0.03, q=1.0, l0=-1.0, noise_std=0.0)


def _mvi_tabular_chunk(config: Any, num_sweeps: int) -> Callable[..., Any]:
    """Return ``chunk(state, mdp) -> (state, residuals[sweeps])`` (``update`` x N)."""
    from jaxrl.agents import mvi_tabular

    def chunk(state: Any, mdp: Any) -> tuple[Any, Any]:
        def body(s: Any, _: None) -> tuple[Any, Any]:
            s, metrics = mvi_tabular.update(s, mdp, config)
            return s, metrics["dp/residual"]

        return jax.lax.scan(body, state, None, length=num_sweeps)

    return chunk


def _bench_mvi_tabular(
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
    chunk = jax.vmap(_mvi_tabular_chunk(config, sweeps), in_axes=(0, None))
    compiled, compile_s = _compile(chunk, state, mdp)
    call_s = _timed_calls(compiled, state, mdp, repeats=repeats)
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


def _bench_vi_tabular(num_seeds: int, scale: str, repeats: int) -> BenchResult:
    from jaxrl.agents import vi_tabular

    sizes = SCALES[scale]["vi"]
    env, env_params = _garnet(sizes)
    config = vi_tabular.Config(num_chunks=1, iters_per_chunk=sizes["sweeps"])
    keys = common.seed_keys(0, num_seeds)
    state = jax.jit(jax.vmap(lambda k: vi_tabular.init(k, env, env_params, config)))(
        keys
    )
    compiled, compile_s = _compile(
        jax.vmap(vi_tabular.make_run(config, env, env_params)), state
    )
    call_s = _timed_calls(compiled, state, repeats=repeats)
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


# ----------------------------------------------------------------------------- driver


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
            row, config = _bench_ours(case, env_name, num_seeds, scale, repeats)
            add(row)
            if with_peer:
                cache = {} if peer_cache is None else peer_cache
                if row.pair not in cache:
                    cache[row.pair] = _bench_peer(config, env_name, num_seeds, repeats)
                    add(cache[row.pair])
    elif case == "mvi_tabular":
        ours, reference = _bench_mvi_tabular(num_seeds, scale, repeats)
        add(ours)
        add(reference)
    elif case == "vi_tabular":
        add(_bench_vi_tabular(num_seeds, scale, repeats))
    else:
        raise ConfigError(f"no benchmark for case {case!r}; valid: {', '.join(CASES)}")
    return rows


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

    env_order = {e: i for i, e in enumerate(_PRESETS)}
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
