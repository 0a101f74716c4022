"""jaxrl: JAX-native, purely functional reinforcement learning (core package).

The core holds data types, pure operators and loop/IO plumbing; algorithms live in
the top-level ``agents`` package and environments in ``envs``.
"""

from jaxrl import (
    buffer,
    checkpoint,
    config,
    errors,
    logging,
    loop,
    mdp,
    metrics,
    nets,
    ops,
    optim,
    rollout,
    sweep,
    transition,
    types,
)
from jaxrl.config import apply_overrides, grid, stack_configs, static, validate
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP, make_mdp
from jaxrl.sweep import make_sweep, run_sweep
from jaxrl.transition import Transition

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # modules
    "buffer",
    "checkpoint",
    "config",
    "errors",
    "logging",
    "loop",
    "mdp",
    "metrics",
    "nets",
    "ops",
    "optim",
    "rollout",
    "sweep",
    "transition",
    "types",
    # names
    "ConfigError",
    "FiniteMDP",
    "Transition",
    "apply_overrides",
    "grid",
    "make_mdp",
    "make_sweep",
    "run_sweep",
    "stack_configs",
    "static",
    "validate",
]
