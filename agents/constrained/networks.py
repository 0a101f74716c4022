"""The network of :mod:`jaxrl.agents.constrained`: the base agent's Q-network and its critics.

The ``"penalised"`` critic is the base network as it is (``A`` outputs); the
``"separate"`` critics share one network with a ``2 A`` head, action-major.
"""

from __future__ import annotations

from jaxrl.agents import _value_loop
from jaxrl.agents.constrained.config import Config
from jaxrl.types import Array, ArrayTree

__all__: list[str] = []


def _outputs_per_action(config: Config) -> int:
    return 2 if config.critic == "separate" else 1


def _critics(
    q: ArrayTree, obs: ArrayTree, config: Config, obs_ndim: int
) -> tuple[Array, Array]:
    """Return ``(q_r, q_c)`` ``[..., A]`` of the separate critics' network.

    The head is ``2 A`` wide, action-major: output ``2a`` is ``q_r(., a)``,
    ``2a + 1`` is ``q_c(., a)``.
    """
    out = _value_loop.q_values(q, obs, config.base, obs_ndim)
    pairs = out.reshape((*out.shape[:-1], out.shape[-1] // 2, 2))
    return pairs[..., 0], pairs[..., 1]
