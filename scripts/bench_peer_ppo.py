"""``jaxrl bench`` peer for ``ppo``: the rejax 0.1.3 ``PPO`` adapter.

The benchmark times our :mod:`jaxrl.agents.ppo` chunk against rejax's ``PPO``
doing the same work per iteration (:func:`peer_settings`). API, for the bench
scripts:

* :func:`available` -- whether rejax can be imported;
* :func:`peer_config` -- our benchmark config with the fields rejax hard-codes
  set to rejax's behaviour (value clipping at ``clip_eps``, advantage
  normalisation, no evaluation); time *this* config on our side;
* :func:`peer_settings` -- that config as ``rejax.PPO.create`` keyword
  arguments (without ``env``);
* :func:`make_peer` -- the rejax ``PPO`` object (our actor/critic modules, no
  evaluation);
* :func:`make_peer_chunk` -- ``(init_fn, chunk_fn, env_steps_per_call)`` for
  ``num_seeds`` vmapped seeds: ``init_fn(keys)`` (typed keys ``[num_seeds]``)
  returns the peer state, ``chunk_fn(state) -> (state, evaluation)`` is one
  chunk (``iters_per_chunk`` iterations, un-jitted: the caller jits it, e.g.
  with ``donate_argnums=0``), like our ``run(state) -> (state, metrics)``.

What rejax's PPO does per iteration (``rejax/algos/ppo.py``): collect
``num_steps`` steps of ``num_envs`` environments (actor sample + log-prob and
critic value per step), GAE(λ) with the critic on the last observation, then
``num_epochs`` epochs, each a fresh permutation of the ``num_envs *
num_steps`` transitions split into ``num_minibatches`` minibatches; per
minibatch an actor step (clipped surrogate on advantages normalised per
minibatch, entropy bonus) then a critic step (value loss clipped at
``clip_eps``, times ``vf_coef``), each its own backward pass and
``optax.chain(optax.clip(max_grad_norm), optax.adam(learning_rate))``.
Observation and reward normalisation are off here; evaluation is a no-op.

Differences that stay (they do not change the work per step beyond a few
scalar ops): rejax clips gradients elementwise (``optax.clip``), ours by
global norm; rejax keeps the learning rate constant and Adam's ε at 1e-8 (ours
anneals and uses ``adam_eps``); rejax's GAE treats truncation as termination,
ours bootstraps from the critic on the pre-reset observation (one extra
critic pass over the rollout's ``next_obs``, part of our algorithm).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.errors import ConfigError
from jaxrl.nets import MLP
from jaxrl.ops.policy_gradient import categorical_entropy, categorical_log_prob
from jaxrl.scripts import bench_peer

__all__ = [
    "PEER",
    "PEER_LABEL",
    "available",
    "version",
    "peer_config",
    "peer_settings",
    "PeerActor",
    "PeerCritic",
    "make_peer",
    "make_peer_chunk",
]

PEER = "rejax"
PEER_LABEL = "rejax PPO"

_log_prob = jnp.vectorize(categorical_log_prob, signature="(a),()->()")
_entropy = jnp.vectorize(categorical_entropy, signature="(a)->()")


available = bench_peer.peer_available
"""Whether the peer (``rejax``) can be imported."""


def version() -> str:
    """The installed rejax version (``importlib.metadata``)."""
    return importlib.metadata.version(PEER)


def peer_config(config: Any) -> Any:
    """Our benchmark :class:`jaxrl.agents.ppo.Config` made comparable to rejax.

    rejax always clips the value error at ``clip_eps`` and normalises
    advantages per minibatch, and the benchmark times no evaluation:
    ``vf_clip_eps = clip_eps``, ``normalize_advantages = True``,
    ``num_eval_episodes = 0``. Everything else is kept.
    """
    return config.replace(
        vf_clip_eps=config.clip_eps, normalize_advantages=True, num_eval_episodes=0
    )


def peer_settings(config: Any) -> dict[str, Any]:
    """Map a benchmark ppo config to ``rejax.PPO.create`` keyword arguments.

    ``num_envs``, ``num_steps``, ``num_minibatches`` are copied,
    ``num_epochs = update_epochs``; the traced numbers (``learning_rate = lr``,
    ``gamma``, ``gae_lambda``, ``clip_eps``, ``vf_coef``, ``ent_coef``,
    ``max_grad_norm``) are copied; ``total_timesteps = eval_freq`` is one chunk
    (``iters_per_chunk * num_steps * num_envs`` env steps), the initial
    evaluation is skipped, observation and reward normalisation are off.
    ``agent_kwargs`` (rejax's own networks) name the same widths and
    activation; :func:`make_peer` swaps in our modules (:class:`PeerActor`,
    :class:`PeerCritic`): the same layers, with flax's stock
    ``nn.Conv`` where ours has a conv torso.

    Args:
      config: a ppo config, usually :func:`peer_config` of the benchmark config.

    Returns:
      Keyword arguments for ``rejax.PPO.create`` (without ``env``/``env_params``).

    Raises:
      ConfigError: if the config does something rejax cannot (value clipping
        at another radius than ``clip_eps``, no advantage normalisation, or
        evaluation during the chunk).
    """
    if float(config.vf_clip_eps) != float(config.clip_eps):
        raise ConfigError(
            "rejax PPO clips the value error at clip_eps: set vf_clip_eps = "
            f"clip_eps ({config.clip_eps!r}), got {config.vf_clip_eps!r}"
        )
    if not config.normalize_advantages:
        raise ConfigError("rejax PPO always normalises advantages per minibatch")
    if config.num_eval_episodes:
        raise ConfigError("the benchmark times no evaluation: num_eval_episodes=0")
    steps = config.iters_per_chunk * config.batch_size
    return {
        "num_envs": config.num_envs,
        "num_steps": config.num_steps,
        "num_epochs": config.update_epochs,
        "num_minibatches": config.num_minibatches,
        "learning_rate": float(config.lr),
        "gamma": float(config.gamma),
        "gae_lambda": float(config.gae_lambda),
        "clip_eps": float(config.clip_eps),
        "vf_coef": float(config.vf_coef),
        "ent_coef": float(config.ent_coef),
        "max_grad_norm": float(config.max_grad_norm),
        "normalize_observations": False,
        "normalize_rewards": False,
        "total_timesteps": steps,
        "eval_freq": steps,
        "skip_initial_evaluation": True,
        "agent_kwargs": {
            "hidden_layer_sizes": tuple(config.hidden_sizes),
            "activation": config.activation,
        },
    }


class _Torso(nn.Module):
    """Our PPO torso's layers (as :class:`jaxrl.agents.ppo.ActorCritic`), stock flax convolutions.

    An optional conv torso (:class:`jaxrl.scripts.bench_peer.StockConvTorso`:
    ``flax.linen.Conv``, what a rejax user writes; ours is
    :class:`jaxrl.nets.PatchConv`), then :class:`MLP`.
    """

    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int
    conv_features: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: Any) -> Any:
        x = jnp.asarray(obs, jnp.float32)
        if self.conv_features:
            x = bench_peer.StockConvTorso(self.conv_features, self.activation)(x)
        else:
            x = jnp.reshape(x, (*x.shape[: x.ndim - self.obs_ndim], -1))
        return MLP(self.hidden_sizes, self.activation)(x)


class PeerActor(nn.Module):
    """Our PPO actor (torso + orthogonal(0.01) logits head) with rejax's actor methods."""

    num_actions: int
    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int
    conv_features: tuple[int, ...]

    def setup(self) -> None:
        self.torso = _Torso(
            self.hidden_sizes, self.activation, self.obs_ndim, self.conv_features
        )
        self.head = nn.Dense(
            self.num_actions, kernel_init=nn.initializers.orthogonal(0.01)
        )

    def logits(self, obs: Any) -> Any:
        return self.head(self.torso(obs))

    def __call__(self, obs: Any, rng: Any) -> Any:
        logits = self.logits(obs)
        action = jax.random.categorical(rng, logits)
        return action, _log_prob(logits, action), _entropy(logits)

    def act(self, obs: Any, rng: Any) -> Any:
        return jax.random.categorical(rng, self.logits(obs))

    def action_log_prob(self, obs: Any, rng: Any) -> Any:
        logits = self.logits(obs)
        action = jax.random.categorical(rng, logits)
        return action, _log_prob(logits, action)

    def log_prob_entropy(self, obs: Any, action: Any) -> Any:
        logits = self.logits(obs)
        return _log_prob(logits, action.astype(jnp.int32)), _entropy(logits)


class PeerCritic(nn.Module):
    """Our PPO critic (torso + orthogonal(1) value head): ``[B, *obs] -> [B]``."""

    hidden_sizes: tuple[int, ...]
    activation: str
    obs_ndim: int
    conv_features: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: Any) -> Any:
        x = _Torso(
            self.hidden_sizes, self.activation, self.obs_ndim, self.conv_features
        )(obs)
        return nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(x)[..., 0]


def make_peer(config: Any, env: Any, env_params: Any) -> Any:
    """The rejax ``PPO`` at :func:`peer_settings` of ``config``, with our networks.

    Args:
      config: a ppo config (see :func:`peer_settings`).
      env: our (gymnax 1.0, unwrapped) environment with discrete actions.
      env_params: its parameters.
    """
    from jaxrl import envs

    with bench_peer.quiet():
        rejax = importlib.import_module(PEER)
    obs_ndim = len(envs.obs_shape(env, env_params))
    net = {
        "hidden_sizes": tuple(config.hidden_sizes),
        "activation": config.activation,
        "obs_ndim": obs_ndim,
        "conv_features": tuple(config.conv_features),
    }
    with bench_peer.quiet():
        algo = rejax.PPO.create(
            env=bench_peer.GymnaxV0View(env),
            env_params=env_params,
            **peer_settings(config),
        )
    return algo.replace(
        actor=PeerActor(num_actions=envs.num_actions(env, env_params), **net),
        critic=PeerCritic(**net),
        eval_callback=bench_peer.no_evaluation,
    )


def make_peer_chunk(
    config: Any, env: Any, env_params: Any, num_seeds: int
) -> tuple[Callable[[Any], Any], Callable[[Any], tuple[Any, Any]], int]:
    """One peer chunk over ``num_seeds`` vmapped seeds.

    Args:
      config: a ppo config accepted by :func:`peer_settings`.
      env: our (gymnax 1.0) environment.
      env_params: its parameters.
      num_seeds: the seed batch.

    Returns:
      ``(init_fn, chunk_fn, env_steps_per_call)``: ``init_fn(keys)`` maps typed
      keys ``[num_seeds]`` to the vmapped peer state (jitted);
      ``chunk_fn(state) -> (state, evaluation)`` runs ``iters_per_chunk``
      iterations for every seed (pure, not jitted); ``env_steps_per_call =
      iters_per_chunk * num_steps * num_envs * num_seeds``.
    """
    algo = make_peer(config, env, env_params)

    def init_fn(keys: Any) -> Any:
        with bench_peer.quiet():
            # rejax splits raw uint32[2] keys
            return jax.jit(jax.vmap(algo.init_state))(jax.random.key_data(keys))

    def chunk_fn(state: Any) -> tuple[Any, Any]:
        with bench_peer.quiet():
            return jax.vmap(lambda ts: algo.train(train_state=ts))(state)

    return init_fn, chunk_fn, config.iters_per_chunk * config.batch_size * num_seeds
