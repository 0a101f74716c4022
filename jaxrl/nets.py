"""Flax (linen) network modules shared by the value-based agents.

All modules accept any number of leading batch axes: an unbatched observation
``[*obs_shape]`` gives ``[A]`` outputs and a batch ``[B, *obs_shape]`` gives
``[B, A]``. Module attributes (layer sizes, activation, torso kind) are static;
they come from ``static`` Config fields.

Examples:
  >>> import jax, jax.numpy as jnp
  >>> net = QNetwork(num_actions=2, hidden_sizes=(8, 8))
  >>> params = net.init(jax.random.key(0), jnp.zeros(4))
  >>> net.apply(params, jnp.zeros((5, 4))).shape
  (5, 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxrl.types import Array, ArrayLike

__all__ = ["MLP", "PatchConv", "ConvTorso", "QNetwork", "ACTIVATIONS", "get_activation"]

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": nn.relu,
    "tanh": nn.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "leaky_relu": nn.leaky_relu,
}
"""Activation functions by name (Config fields hold the name, a static string)."""


def get_activation(name: str) -> Callable[[Array], Array]:
    """Return the activation function called ``name`` (see :data:`ACTIVATIONS`).

    Raises:
      ValueError: if the name is unknown (the message lists the valid names).
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; valid: {', '.join(sorted(ACTIVATIONS))}"
        ) from None


class MLP(nn.Module):
    """A multilayer perceptron torso: ``Dense -> activation`` per hidden size.

    Attributes:
      hidden_sizes: widths of the hidden layers (static tuple); ``()`` is the
        identity.
      activation: activation name (a key of :data:`ACTIVATIONS`).
      activate_final: apply the activation after the last layer too.
      layer_norm: insert a LayerNorm before each activation.
    """

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    activate_final: bool = True
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        """Map ``[..., D]`` inputs to ``[..., hidden_sizes[-1]]`` features."""
        x = jnp.asarray(x, jnp.float32)
        act = get_activation(self.activation)
        n = len(self.hidden_sizes)
        for i, size in enumerate(self.hidden_sizes):
            x = nn.Dense(size, name=f"dense_{i}")(x)
            if i < n - 1 or self.activate_final:
                if self.layer_norm:
                    x = nn.LayerNorm(name=f"norm_{i}")(x)
                x = act(x)
        return x


class PatchConv(nn.Module):
    r"""A stride-1, ``SAME``-padded 2-D convolution computed as one matrix product.

    ``y[n, h, w, f] = bias[f] + sum_{i, j, c} x_pad[n, h + i, w + j, c] *
    kernel[i, j, c, f]``, the cross-correlation of :class:`flax.linen.Conv`
    with ``padding="SAME"`` (``(k - 1) // 2`` zeros before, the rest after).
    The ``kh * kw`` shifted windows of the zero-padded input are concatenated
    along the channel axis (``[N, H, W, kh * kw * C]``, "im2col") and
    multiplied by the kernel reshaped to ``[kh * kw * C, F]``.

    Why not ``nn.Conv``: under a ``vmap`` over seeds (each with its own
    kernel) a convolution becomes a *grouped* convolution, which XLA's CPU
    backend runs several times slower than the batched matrix product this
    formulation becomes (MinAtar's 10x10x4 observations, 16 3x3 filters,
    8 seeds: the Q-network's gradient 13.5 -> 7.1 ms on 2 cores, D24). The
    parameters (names ``kernel [kh, kw, C, F]`` and ``bias [F]``, LeCun-normal
    and zero initialisers) are those of ``nn.Conv``, so a parameter tree and
    its initial values are the same for both; the outputs agree to float32
    rounding (the sums are ordered differently).

    Attributes:
      features: output channels ``F``.
      kernel_size: ``(kh, kw)`` (static).
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        """Map ``[N, H, W, C]`` inputs to ``[N, H, W, features]``."""
        x = jnp.asarray(x, jnp.float32)
        if x.ndim != 4:
            raise ValueError(
                f"PatchConv expects [N, H, W, C] inputs, got shape {x.shape}"
            )
        kh, kw = self.kernel_size
        n, h, w, c = x.shape
        # float32 parameters as nn.Conv's default param_dtype (also under x64)
        kernel = self.param(
            "kernel",
            nn.initializers.lecun_normal(),
            (kh, kw, c, self.features),
            jnp.float32,
        )
        bias = self.param(
            "bias", nn.initializers.zeros_init(), (self.features,), jnp.float32
        )
        pad = ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0))
        padded = jnp.pad(x, pad)
        windows = [
            jax.lax.slice(padded, (0, i, j, 0), (n, i + h, j + w, c))
            for i in range(kh)
            for j in range(kw)
        ]
        cols = jnp.concatenate(windows, axis=-1)
        y = jnp.dot(cols, jnp.reshape(kernel, (kh * kw * c, self.features)))
        return y + bias


class ConvTorso(nn.Module):
    """A small convolutional torso for image-like ``[H, W, C]`` observations (MinAtar).

    ``Conv(features, kernel 3x3, stride 1, SAME) -> activation`` per entry of
    ``features``, then the spatial map is flattened. The convolutions are
    :class:`PatchConv` (``nn.Conv``'s parameters and values, computed as one
    matrix product: fast under a seed ``vmap``).

    Attributes:
      features: channel counts of the conv layers (static tuple).
      activation: activation name.
      conv_layer: class-level, not a field: ``(features, kernel_size, name=)
        -> module``, the layer every entry builds (:class:`PatchConv`); a
        subclass may swap in another implementation of the same layer.
    """

    conv_layer: ClassVar[Callable[..., nn.Module]] = PatchConv

    features: Sequence[int] = (16,)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        """Map ``[..., H, W, C]`` inputs to ``[..., H*W*features[-1]]`` features."""
        x = jnp.asarray(x, jnp.float32)
        batch = x.shape[:-3]
        x = jnp.reshape(x, (-1, *x.shape[-3:]))
        act = get_activation(self.activation)
        for i, f in enumerate(self.features):
            x = act(self.conv_layer(f, (3, 3), name=f"conv_{i}")(x))
        return jnp.reshape(x, (*batch, -1))


class QNetwork(nn.Module):
    """Action-value network: torso then a linear head with ``num_actions`` outputs.

    The observation's ``obs_ndim`` trailing axes are flattened before the MLP,
    so vector (``[D]``) and image (``[H, W, C]``, MinAtar) observations both
    work; with ``conv_features`` non-empty a :class:`ConvTorso` runs first
    (``obs_ndim`` must then be 3).

    Attributes:
      num_actions: number of discrete actions ``A``.
      hidden_sizes: MLP hidden widths (static tuple).
      activation: activation name.
      obs_ndim: number of trailing observation axes (1 for vectors, 3 for images).
      conv_features: conv channels; ``()`` means no conv torso.
      layer_norm: LayerNorm in the MLP torso.
      conv_torso: class-level, not a field: the conv torso module
        (:class:`ConvTorso`); a subclass may swap in another one with the
        same constructor.
    """

    conv_torso: ClassVar[type[ConvTorso]] = ConvTorso

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"
    obs_ndim: int = 1
    conv_features: Sequence[int] = ()
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: ArrayLike) -> Array:
        """Return ``[..., A]`` action values for ``[..., *obs_shape]`` observations."""
        x = jnp.asarray(obs, jnp.float32)
        if x.ndim < self.obs_ndim:
            raise ValueError(
                f"observation has {x.ndim} axes, fewer than obs_ndim={self.obs_ndim}"
            )
        if self.conv_features:
            if self.obs_ndim != 3:
                raise ValueError("conv_features needs image observations (obs_ndim=3)")
            x = self.conv_torso(self.conv_features, self.activation, name="conv")(x)
        else:
            lead = x.shape[: x.ndim - self.obs_ndim]
            x = jnp.reshape(x, (*lead, -1))
        x = MLP(
            self.hidden_sizes, self.activation, layer_norm=self.layer_norm, name="torso"
        )(x)
        return nn.Dense(self.num_actions, name="head")(x)
