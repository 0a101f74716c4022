"""Agents, one algorithm per module, all with the same contract (see docs/api.md).

``AGENTS`` maps a registry name to the agent module; every module exposes
``Config``, ``State``, ``init``, ``act``, ``loss``, ``update``, ``make_train``
and ``make_run`` (see ``docs/api.md``).

Examples:
  >>> from jaxrl import agents
  >>> agents.get("dqn").__name__
  'jaxrl.agents.dqn'
  >>> {"dqn", "mvi", "mvi_tabular", "mviq", "vi_tabular"} <= set(agents.AGENTS)
  True
"""

from __future__ import annotations

if __name__ != "jaxrl.agents":  # the repo folder agents/ imported under its folder name
    raise ImportError(
        "agents/ is the package jaxrl.agents: write `from jaxrl import agents` "
        "(or `import jaxrl.agents`), not `import agents`"
    )

from types import ModuleType

from jaxrl.agents import (
    cal,
    cat,
    cmdp_tabular,
    constrained,
    dist_dqn,
    distributional_dp,
    dqn,
    dual_rl,
    dual_tabular,
    mvi,
    mvi_tabular,
    mviq,
    ppo,
    ppo_lagrangian,
    sac,
    vi_tabular,
)
from jaxrl.errors import ConfigError

__all__ = [
    "AGENTS",
    "get",
    "cal",
    "cat",
    "cmdp_tabular",
    "constrained",
    "dist_dqn",
    "distributional_dp",
    "dqn",
    "dual_rl",
    "dual_tabular",
    "mvi",
    "mvi_tabular",
    "mviq",
    "ppo",
    "ppo_lagrangian",
    "sac",
    "vi_tabular",
]

AGENTS: dict[str, ModuleType] = {
    "cal": cal,
    "cat": cat,
    "cmdp_tabular": cmdp_tabular,
    "constrained": constrained,
    "dist_dqn": dist_dqn,
    "distributional_dp": distributional_dp,
    "dqn": dqn,
    "dual_rl": dual_rl,
    "dual_tabular": dual_tabular,
    "mvi": mvi,
    "mvi_tabular": mvi_tabular,
    "mviq": mviq,
    "ppo": ppo,
    "ppo_lagrangian": ppo_lagrangian,
    "sac": sac,
    "vi_tabular": vi_tabular,
}
"""Registered agents by name."""


def get(name: str) -> ModuleType:
    """Return the agent module registered as ``name``.

    Raises:
      ConfigError: if ``name`` is not registered (the message lists the names).
    """
    try:
        return AGENTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown agent {name!r}; registered agents: {', '.join(sorted(AGENTS))}"
        ) from None
