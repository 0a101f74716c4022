"""``jaxrl bench`` peers: the rejax ``DQN`` adapter and the dispatch per case.

rejax (``pip install -e '.[bench]'``) runs beside every ``dqn``/``mvi``/``mviq``
row at identical settings (:func:`peer_settings`) with the same Q-network
architecture (:class:`PeerQNetwork`, flax's stock layers); :class:`GymnaxV0View`
shows our gymnax 1.0 environments through the 0.0.9 ``step`` rejax calls. The
``ppo`` rows get rejax's ``PPO`` through :mod:`jaxrl.scripts.bench_peer_ppo`
(:func:`peer_side` picks the adapter, :func:`peer_missing` says why a peer
cannot run).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import math
import types
import warnings
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.errors import ConfigError
from jaxrl.nets import ConvTorso, QNetwork
from jaxrl.scripts import common
from jaxrl.scripts.bench_common import Side, compile_chunk, jax_side

__all__ = [
    "PEER",
    "PEER_LABEL",
    "peer_available",
    "peer_settings",
    "quiet",
    "PeerQNetwork",
    "StockConvTorso",
    "GymnaxV0View",
    "make_peer",
    "peer_keys",
    "PEER_OF",
    "ppo_adapter",
    "peer_missing",
    "peer_side",
]

PEER = "rejax"
PEER_LABEL = "rejax DQN"

PEER_OF: dict[str, str] = {"dqn": "dqn", "mvi": "dqn", "mviq": "dqn", "ppo": "ppo"}
"""The peer algorithm of every deep case (rejax has no Munchausen variant: the
``mvi``/``mviq`` rows run against its plain DQN at the same settings)."""


def peer_available() -> bool:
    """Whether the peer (``rejax``) can be imported."""
    try:
        with quiet():
            importlib.import_module(PEER)
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

    The network is set separately (:class:`PeerQNetwork`: our architecture).

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
def quiet() -> Iterator[None]:
    """Silence the deprecation warnings rejax and its dependencies emit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


class StockConvTorso(ConvTorso):
    """:class:`jaxrl.nets.ConvTorso` built from ``flax.linen.Conv`` (its default ``SAME`` padding)."""

    conv_layer = nn.Conv


class _StockQNetwork(QNetwork):
    """:class:`jaxrl.nets.QNetwork` (same layers and parameter tree) with :class:`StockConvTorso`."""

    conv_torso = StockConvTorso


class PeerQNetwork(nn.Module):
    """The architecture of :class:`jaxrl.nets.QNetwork`, built from flax's stock layers.

    The same layers, sizes and parameter tree as ours, plus the ``take``
    method rejax's DQN calls. rejax ships no convolutional network, so a rejax
    user on MinAtar writes one with ``flax.linen.Conv``; the peer does that.
    Ours computes the same convolution as one matrix product
    (:class:`jaxrl.nets.PatchConv`, D24), so on MinAtar the rows compare the
    two implementations of that layer too (on CartPole the modules are the
    same layers).
    """

    action_dim: int
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int
    conv_features: tuple[int, ...]

    def setup(self) -> None:
        self.q = _StockQNetwork(
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


class GymnaxV0View:
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


def make_peer(config: Any, env_name: str) -> Any:
    """A rejax ``DQN`` at :func:`peer_settings` of ``config`` with our network."""
    from jaxrl import envs

    with quiet():
        rejax = importlib.import_module(PEER)
        from rejax.networks import EpsilonGreedyPolicy

    env, env_params = envs.make(env_name)
    obs_ndim = len(envs.obs_shape(env, env_params))
    network = EpsilonGreedyPolicy(PeerQNetwork)(
        action_dim=envs.num_actions(env, env_params),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_ndim=obs_ndim,
        conv_features=tuple(config.conv_features),
    )
    algo = rejax.DQN.create(
        env=GymnaxV0View(env), env_params=env_params, **peer_settings(config)
    )
    return algo.replace(agent=network, eval_callback=no_evaluation)


def no_evaluation(algo: Any, train_state: Any, key: Any) -> Any:
    """A rejax ``eval_callback`` that does nothing (no evaluation in timed chunks)."""
    del algo, train_state, key
    return jnp.zeros(())


def peer_keys(num_seeds: int) -> Any:
    """rejax expects raw ``uint32[2]`` keys: the data of our typed keys."""
    return jax.random.key_data(common.seed_keys(0, num_seeds))


def ppo_adapter() -> types.ModuleType | None:
    """:mod:`jaxrl.scripts.bench_peer_ppo`, or ``None`` if it is not there."""
    try:
        return importlib.import_module("jaxrl.scripts.bench_peer_ppo")
    except ModuleNotFoundError as err:
        if err.name != "jaxrl.scripts.bench_peer_ppo":
            raise
        return None


def peer_missing(case: str) -> str | None:
    """Why the peer of ``case`` cannot run here (``None``: it can).

    Returns:
      A sentence for the report's notes, e.g. rejax not installed.
    """
    kind = PEER_OF.get(case)
    if kind is None:
        return f"`{case}` has no peer."
    if not peer_available():
        return (
            "the peer (rejax) is not installed, so its rows are skipped; "
            "install it with `pip install -e '.[bench]'`."
        )
    if kind == "ppo":
        adapter = ppo_adapter()
        if adapter is None:
            return (
                "the PPO peer adapter (`jaxrl/scripts/bench_peer_ppo.py`) is "
                "missing, so the `ppo` rows have no peer."
            )
        if not adapter.available():
            return "rejax's PPO cannot be imported, so the `ppo` rows have no peer."
    return None


def _dqn_peer_side(config: Any, env_name: str, num_seeds: int) -> Side:
    algo = make_peer(config, env_name)
    with quiet():
        state = jax.jit(jax.vmap(algo.init_state))(peer_keys(num_seeds))
        chunk = jax.vmap(lambda ts: (algo.train(train_state=ts)[0],))
        compiled, compile_s = compile_chunk(chunk, state)
    steps = config.iters_per_chunk * config.num_envs
    # rejax learns once global_step > fill_buffer: after these calls, always
    warmups = math.ceil((config.batch_size + 1) / steps)
    # the compiled call runs no Python: no warning filter inside the timed calls
    return jax_side(
        compiled, state, work=steps * num_seeds, compile_s=compile_s, warmups=warmups
    )


def _ppo_peer_side(config: Any, env_name: str, num_seeds: int) -> Side:
    from jaxrl import envs

    adapter = ppo_adapter()
    if adapter is None:
        raise ConfigError(peer_missing("ppo") or "no PPO peer")
    env, env_params = envs.make(env_name)
    init_fn, chunk_fn, work = adapter.make_peer_chunk(
        config, env, env_params, num_seeds
    )
    with quiet():
        state = init_fn(common.seed_keys(0, num_seeds))
        compiled, compile_s = compile_chunk(chunk_fn, state)
    return jax_side(compiled, state, work=work, compile_s=compile_s)


def peer_side(
    case: str, config: Any, env_name: str, num_seeds: int
) -> tuple[Side, str]:
    """The compiled peer chunk beside our ``case`` row (same chunk sizes).

    Args:
      case: the deep case (a key of :data:`PEER_OF`).
      config: our benchmark config for the row.
      env_name: the environment id.
      num_seeds: vmapped seeds.

    Returns:
      ``(side, label)``, e.g. label ``"rejax DQN 0.1.3"``.

    Raises:
      ConfigError: if the peer cannot run (:func:`peer_missing`).
    """
    reason = peer_missing(case)
    if reason is not None:
        raise ConfigError(reason)
    version = importlib.metadata.version(PEER)
    if PEER_OF[case] == "ppo":
        label = getattr(ppo_adapter(), "PEER_LABEL", "rejax PPO")
        return _ppo_peer_side(config, env_name, num_seeds), f"{label} {version}"
    return _dqn_peer_side(config, env_name, num_seeds), f"{PEER_LABEL} {version}"
