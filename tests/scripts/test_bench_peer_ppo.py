"""Tests for jaxrl.scripts.bench_peer_ppo: the rejax PPO adapter maps our settings."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.agents import ppo
from jaxrl.errors import ConfigError
from jaxrl.scripts import bench_peer_ppo as bp

pytestmark = pytest.mark.skipif(
    not bp.available(), reason="rejax (the peer) not installed"
)

CONFIG = bp.peer_config(
    ppo.cartpole_config(
        num_envs=3,
        num_steps=8,
        num_minibatches=2,
        update_epochs=3,
        hidden_sizes=(16, 8),
        num_chunks=1,
        iters_per_chunk=5,
        lr=1e-3,
        gamma=0.9,
        gae_lambda=0.8,
        clip_eps=0.3,
        ent_coef=0.02,
        vf_coef=0.7,
        max_grad_norm=0.4,
    )
)


def test_peer_config_matches_what_rejax_hard_codes():
    base = ppo.cartpole_config(normalize_advantages=False)
    c = bp.peer_config(base)
    assert c.vf_clip_eps == c.clip_eps and c.normalize_advantages
    assert c.num_eval_episodes == 0
    assert (c.num_envs, c.num_steps, c.lr) == (base.num_envs, base.num_steps, base.lr)


def test_peer_settings_copy_every_setting():
    s = bp.peer_settings(CONFIG)
    steps = 5 * 8 * 3
    assert s == {
        "num_envs": 3,
        "num_steps": 8,
        "num_epochs": 3,
        "num_minibatches": 2,
        "learning_rate": pytest.approx(1e-3),
        "gamma": pytest.approx(0.9),
        "gae_lambda": pytest.approx(0.8),
        "clip_eps": pytest.approx(0.3),
        "vf_coef": pytest.approx(0.7),
        "ent_coef": pytest.approx(0.02),
        "max_grad_norm": pytest.approx(0.4),
        "normalize_observations": False,
        "normalize_rewards": False,
        "total_timesteps": steps,
        "eval_freq": steps,
        "skip_initial_evaluation": True,
        "agent_kwargs": {"hidden_layer_sizes": (16, 8), "activation": "tanh"},
    }


@pytest.mark.parametrize(
    "field, value",
    [("vf_clip_eps", 0.5), ("normalize_advantages", False), ("num_eval_episodes", 2)],
)
def test_peer_settings_reject_what_rejax_cannot_do(field, value):
    with pytest.raises(ConfigError, match="rejax|evaluation"):
        bp.peer_settings(CONFIG.replace(**{field: value}))


def _peer_chunk_and_shapes(config, env, env_params):
    """The peer's 2-seed chunk, its state's shapes and both sides' parameter shapes.

    Returns ``(chunk_fn, work, state, shapes)`` with ``shapes[part] = (peer,
    ours)``: the sorted leaf shapes of the peer's ``part`` (``"actor"`` or
    ``"critic"``, one seed) and of our parameters under that prefix.
    """
    init_fn, chunk_fn, work = bp.make_peer_chunk(config, env, env_params, 2)
    keys = jax.random.split(jax.random.key(0), 2)
    state = jax.eval_shape(init_fn, keys)
    ours = jax.eval_shape(lambda k: ppo.init(k, env, env_params, config), keys[0])
    shapes = {}
    for part, peer in (("actor", state.actor_ts), ("critic", state.critic_ts)):
        mine = {k: v for k, v in ours.params["params"].items() if k.startswith(part)}
        shapes[part] = (
            sorted(x.shape[1:] for x in jax.tree.leaves(peer.params)),
            sorted(x.shape for x in jax.tree.leaves(mine)),
        )
    return chunk_fn, work, state, shapes


def test_peer_chunk_has_our_networks_and_work():
    env, env_params = envs.make("CartPole-v1")
    algo = bp.make_peer(CONFIG, env, env_params)
    assert (algo.num_envs, algo.num_steps, algo.num_epochs) == (3, 8, 3)
    assert algo.num_minibatches == 2 and not algo.normalize_observations
    chunk_fn, work, state, shapes = _peer_chunk_and_shapes(CONFIG, env, env_params)
    assert work == 5 * 8 * 3 * 2
    assert shapes["actor"][0] == shapes["actor"][1]
    assert shapes["critic"][0] == shapes["critic"][1]
    # one chunk keeps the state's shapes and does no evaluation
    out, evaluation = jax.eval_shape(chunk_fn, state)
    assert jax.tree.structure(out) == jax.tree.structure(state)
    np.testing.assert_array_equal(
        [x.shape for x in jax.tree.leaves(evaluation)], [(2, 1)]
    )


def test_peer_on_minatar_has_our_conv_network_shapes():
    """On MinAtar the peer's actor and critic carry our conv torsos' parameter shapes."""
    env, env_params = envs.make("Breakout-MinAtar")
    config = CONFIG.replace(conv_features=(4,), hidden_sizes=(8,), activation="relu")
    _, work, _, shapes = _peer_chunk_and_shapes(config, env, env_params)
    assert work == 5 * 8 * 3 * 2
    assert (3, 3, 4, 4) in shapes["actor"][0]  # the 3x3 conv kernel
    assert shapes["actor"][0] == shapes["actor"][1]
    assert shapes["critic"][0] == shapes["critic"][1]
