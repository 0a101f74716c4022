"""Tests for jaxrl.nets: shapes, batching, flattening and a NumPy forward pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import nets


def _np_mlp(params, x, final_act):
    layers = sorted(params, key=lambda n: int(n.split("_")[1]))
    for i, name in enumerate(layers):
        x = x @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"])
        if i < len(layers) - 1 or final_act:
            x = np.maximum(x, 0.0)
    return x


@pytest.mark.parametrize("activate_final", [True, False])
def test_mlp_matches_numpy(key, activate_final):
    mlp = nets.MLP((5, 3), activate_final=activate_final)
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    params = mlp.init(key, x)
    got = mlp.apply(params, x)
    want = _np_mlp(params["params"], x, activate_final)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_mlp_empty_is_identity(key):
    x = jnp.arange(6.0).reshape(2, 3)
    mlp = nets.MLP(())
    np.testing.assert_array_equal(mlp.apply(mlp.init(key, x), x), x)


def test_qnetwork_matches_numpy(key):
    net = nets.QNetwork(num_actions=3, hidden_sizes=(8,))
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    params = net.init(key, x[0])["params"]
    h = np.maximum(
        x @ params["torso"]["dense_0"]["kernel"] + params["torso"]["dense_0"]["bias"], 0
    )
    want = h @ params["head"]["kernel"] + params["head"]["bias"]
    got = net.apply({"params": params}, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_qnetwork_unbatched_equals_batched(key):
    net = nets.QNetwork(num_actions=2, hidden_sizes=(16, 16))
    x = jax.random.normal(key, (6, 4))
    params = net.init(jax.random.key(1), x[0])
    batched = net.apply(params, x)
    single = jax.vmap(lambda o: net.apply(params, o))(x)
    assert batched.shape == (6, 2)
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)


def test_qnetwork_flattens_image_obs(key):
    net = nets.QNetwork(num_actions=4, hidden_sizes=(8,), obs_ndim=3)
    obs = jnp.ones((10, 10, 3), bool)  # MinAtar-like, bool observations
    params = net.init(key, obs)
    assert params["params"]["torso"]["dense_0"]["kernel"].shape == (300, 8)
    assert net.apply(params, obs).shape == (4,)
    assert net.apply(params, jnp.ones((2, 7, 10, 10, 3))).shape == (2, 7, 4)


def test_qnetwork_conv_torso(key):
    net = nets.QNetwork(
        num_actions=5, hidden_sizes=(8,), obs_ndim=3, conv_features=(4,)
    )
    obs = jnp.ones((10, 10, 2))
    params = net.init(key, obs)
    single = net.apply(params, obs)
    batch = net.apply(params, jnp.stack([obs, obs]))
    assert single.shape == (5,) and batch.shape == (2, 5)
    np.testing.assert_allclose(batch[0], single, rtol=1e-5, atol=1e-6)


def test_conv_needs_image_obs(key):
    net = nets.QNetwork(num_actions=2, conv_features=(4,))
    with pytest.raises(ValueError, match="obs_ndim"):
        net.init(key, jnp.ones(4))


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        nets.get_activation("nope")
