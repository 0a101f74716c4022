"""Tests for jaxrl.nets: shapes, batching, flattening and a NumPy forward pass."""

from __future__ import annotations

import flax.linen as nn
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


def _numpy_conv_same(x, kernel, bias):
    """Stride-1 SAME cross-correlation by explicit loops (float64 reference)."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    lo_h, lo_w = (kh - 1) // 2, (kw - 1) // 2
    padded = np.zeros((n, h + kh - 1, w + kw - 1, c))
    padded[:, lo_h : lo_h + h, lo_w : lo_w + w] = x
    out = np.zeros((n, h, w, f)) + np.asarray(bias, np.float64)
    for r in range(h):
        for s in range(w):
            window = padded[:, r : r + kh, s : s + kw, :]  # [n, kh, kw, c]
            out[:, r, s] += np.einsum("nijc,ijcf->nf", window, kernel)
    return out


@pytest.mark.parametrize("kernel_size", [(3, 3), (2, 2), (1, 1), (5, 3), (2, 4)])
@pytest.mark.parametrize("jit", [False, True])
def test_patch_conv_matches_numpy_loops_and_flax_conv(kernel_size, jit):
    x = jax.random.normal(jax.random.key(3), (2, 6, 7, 3))
    conv = nets.PatchConv(5, kernel_size)
    flax_conv = nn.Conv(5, kernel_size, padding="SAME")
    params = conv.init(jax.random.key(4), x)
    flax_params = flax_conv.init(jax.random.key(4), x)
    # Same parameter tree and the same initial values as nn.Conv.
    assert jax.tree.structure(params) == jax.tree.structure(flax_params)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(flax_params), strict=True):
        np.testing.assert_array_equal(a, b)
    # A non-zero bias so that it is checked too.
    params = jax.tree.map(
        lambda p: p + 0.1 * jnp.arange(p.size).reshape(p.shape) / p.size, params
    )
    apply = jax.jit(conv.apply) if jit else conv.apply
    y = apply(params, x)
    p = params["params"]
    expected = _numpy_conv_same(x, p["kernel"], p["bias"])
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)


def test_patch_conv_gradient_and_seed_vmap_match_flax_conv():
    x = (jax.random.uniform(jax.random.key(0), (4, 10, 10, 4)) < 0.2).astype(
        jnp.float32
    )
    keys = jax.random.split(jax.random.key(1), 3)
    conv = nets.PatchConv(16)
    flax_conv = nn.Conv(16, (3, 3), padding="SAME")
    params = jax.vmap(lambda k: conv.init(k, x))(keys)  # one kernel per seed

    def loss(module):
        return lambda p: jnp.sum(jnp.tanh(module.apply(p, x)) ** 2)

    ours = jax.jit(jax.vmap(jax.grad(loss(conv))))(params)
    theirs = jax.jit(jax.vmap(jax.grad(loss(flax_conv))))(params)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        assert float(jnp.max(jnp.abs(b))) > 0.0
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_patch_conv_rejects_non_image_input(key):
    with pytest.raises(ValueError, match="N, H, W, C"):
        nets.PatchConv(4).init(key, jnp.ones((10, 10, 4)))


def test_conv_torso_uses_patch_conv_not_a_convolution_primitive(key):
    """QNetwork's conv torso lowers to matrix products (D24), not to XLA's convolution."""
    net = nets.QNetwork(
        num_actions=3, hidden_sizes=(8,), obs_ndim=3, conv_features=(4,)
    )
    obs = jnp.ones((2, 10, 10, 4))
    params = net.init(key, obs)
    assert nets.ConvTorso.conv_layer is nets.PatchConv
    jaxpr = str(jax.make_jaxpr(lambda p: net.apply(p, obs))(params))
    assert "conv_general_dilated" not in jaxpr and "dot_general" in jaxpr
