"""Configuration of :mod:`jaxrl.agents.distributional_dp`: objectives, grids, checks."""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from jaxrl import config as config_lib
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.ops import distributional as dist
from jaxrl.ops import distributional_dp as ddp
from jaxrl.types import Array, PRNGKey

__all__ = [
    "OBJECTIVES",
    "METHODS",
    "check_objective",
    "inner_utility",
    "initial_stock",
    "Config",
    "State",
]


OBJECTIVES = ("mean", "cvar", "threshold", "homeostatic", "utility")
"""Objective names of ``Config.objective``."""

METHODS = ("vi", "pi")
"""``Config.method``: distributional value iteration or policy iteration."""

_HOMEOSTATIC = ("neg_abs", "neg_square")
_INNER = {"mean": "identity", "cvar": "min_zero", "threshold": "indicator"}


def check_objective(objective: str, utility: str) -> None:
    """Raise :class:`ConfigError` for an unknown objective or a utility it cannot use.

    Shared by the exact agent and :mod:`jaxrl.agents.dist_dqn`.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if objective == "homeostatic" and utility not in _HOMEOSTATIC:
        raise ConfigError(
            f"utility must be one of {', '.join(_HOMEOSTATIC)} for the "
            f"homeostatic objective, got {utility!r}"
        )
    if objective == "utility" and utility not in dist.UTILITY_NAMES:
        raise ConfigError(
            f"utility must be one of {', '.join(dist.UTILITY_NAMES)}, got {utility!r}"
        )


def inner_utility(objective: str, utility: str) -> str:
    """Return the utility ``f`` of the objective's inner expected-utility problem."""
    return _INNER.get(objective, utility)


def initial_stock(config: object, dtype: object = None) -> Array:
    """Return the objective's ``c0`` (``"mean"``/``"cvar"``: 0; CVaR searches it).

    ``config`` needs the fields ``objective``, ``threshold``, ``set_point`` and
    ``stock0`` (this module's or :mod:`jaxrl.agents.dist_dqn`'s config).
    """
    if config.objective == "threshold":
        return -jnp.asarray(config.threshold, dtype)
    if config.objective == "homeostatic":
        return -jnp.asarray(config.set_point, dtype)
    if config.objective == "utility":
        return jnp.asarray(config.stock0, dtype)
    return jnp.asarray(0.0, dtype)


@struct.dataclass
class Config:
    """Configuration of stock-augmented distributional DP.

    Attributes:
      objective: static, one of :data:`OBJECTIVES`.
      utility: static utility of ``"homeostatic"`` (``neg_abs`` or
        ``neg_square``) and ``"utility"`` (any name in
        :data:`jaxrl.ops.distributional.UTILITY_NAMES`); unused otherwise.
      method: static, ``"vi"`` (one update = one sweep) or ``"pi"`` (one
        update = ``eval_iters`` evaluation sweeps + one greedy improvement).
      num_atoms: static ``N >= 2`` return atoms.
      num_stocks: static ``K >= 2`` grid stocks.
      num_chunks: static number of chunks in a run.
      iters_per_chunk: static updates per chunk.
      eval_iters: static sweeps per policy evaluation (``"pi"``, and the final
        evaluation of :func:`solve`).
      v_min: smallest return atom (traced).
      v_max: largest return atom (traced).
      stock_min: smallest grid stock (traced).
      stock_max: largest grid stock (traced).
      alpha: alpha, CVaR level in ``(0, 1]`` (``"cvar"``; traced).
      threshold: return threshold b of ``"threshold"`` (traced); c0 = -b.
      set_point: target return of ``"homeostatic"`` (traced); c0 = -set_point.
      stock0: c0, initial stock of ``"utility"`` (traced).
      init_noise: weight in ``[0, 1]`` of a random (Dirichlet(1)) law mixed into
        the initial delta_0 laws (traced; 0 gives a deterministic agent).
      epsilon: epsilon, exploration rate of ``act(..., greedy=False)`` (traced).
    """

    objective: str = static(default="mean")
    utility: str = static(default="neg_abs")
    method: str = static(default="vi")
    num_atoms: int = static(default=51)
    num_stocks: int = static(default=41)
    num_chunks: int = static(default=1)
    iters_per_chunk: int = static(default=100)
    eval_iters: int = static(default=50)
    v_min: float = -10.0
    v_max: float = 10.0
    stock_min: float = -10.0
    stock_max: float = 10.0
    alpha: float = 0.1  # alpha
    threshold: float = 0.0
    set_point: float = 0.0
    stock0: float = 0.0  # c_0
    init_noise: float = 0.0
    epsilon: float = 0.0  # epsilon

    @property
    def num_iters(self) -> int:
        """Total updates of a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    @property
    def inner_utility(self) -> str:
        """The utility ``f`` of the (inner) expected-utility problem (static)."""
        return inner_utility(self.objective, self.utility)

    @property
    def support(self) -> Array:
        """``[N]`` the return support (:func:`ddp.return_support`)."""
        return ddp.return_support(self.v_min, self.v_max, self.num_atoms)

    @property
    def stocks(self) -> Array:
        """``[K]`` the stock grid (:func:`ddp.stock_grid`)."""
        return ddp.stock_grid(self.stock_min, self.stock_max, self.num_stocks)

    @property
    def initial_stock(self) -> Array:
        """``[]`` c0 of the objective (``"cvar"``: 0, the search is over the grid)."""
        return initial_stock(self)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        check_objective(self.objective, self.utility)
        if self.method not in METHODS:
            raise ConfigError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        for name, low in (
            ("num_atoms", 2),
            ("num_stocks", 2),
            ("num_chunks", 1),
            ("iters_per_chunk", 1),
            ("eval_iters", 1),
        ):
            config_lib.check_integer(name, getattr(self, name), low)
        config_lib.check_range("alpha", self.alpha, 0.0, 1.0, low_inclusive=False)
        config_lib.check_range("init_noise", self.init_noise, 0.0, 1.0)
        config_lib.check_range("epsilon", self.epsilon, 0.0, 1.0)
        for name in ("threshold", "set_point", "stock0"):
            config_lib.check_range(name, getattr(self, name))  # finite, not NaN
        config_lib.check_order("v_min", self.v_min, "v_max", self.v_max)
        config_lib.check_order("stock_min", self.stock_min, "stock_max", self.stock_max)


@struct.dataclass
class State:
    """Agent state.

    Attributes:
      laws: ``[S, K, A, N]`` categorical return laws.
      policy: ``[S, K]`` int32 stock-Markov policy (greedy w.r.t. ``laws``
        for ``"vi"``; the next policy to evaluate for ``"pi"``).
      key: typed key (split once by ``init``; updates are deterministic).
      step: ``[]`` int32 number of updates done.
    """

    laws: Array
    policy: Array
    key: PRNGKey
    step: Array

    @property
    def params(self) -> dict[str, Array]:
        """``{"laws": laws, "policy": policy}``, what ``act`` takes as ``params``."""
        return {"laws": self.laws, "policy": self.policy}
