"""Configuration and state of :mod:`jaxrl.agents.cmdp_tabular`."""

from __future__ import annotations

import math

import numpy as np
from flax import struct

from jaxrl import config as config_lib
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.types import Array, PRNGKey

__all__ = [
    "METHODS",
    "Config",
    "Params",
    "State",
]


METHODS = ("gda", "reload")
"""``Config.method``: plain gradient descent-ascent or optimistic (ReLOAD)."""


@struct.dataclass
class Config:
    """Configuration of the exact primal-dual dynamics.

    Attributes:
      method: static, ``"gda"`` or ``"reload"`` (:data:`METHODS`).
      num_chunks: static number of chunks in a run.
      iters_per_chunk: static primal-dual steps per chunk.
      oracle_bisections: static bisection steps of the exact dual solver
        (:func:`solve_dual`) behind the ``*_gap`` / ``*_error`` metrics, run once
        per chunk; 0 (default) drops those metrics (e.g. 40 for float32).
      oracle_iters: static bound on policy-iteration steps of that solver.
      eta_pi: eta_pi >= 0, policy (NPG) step size.
      eta_lambda: eta_lambda >= 0, multiplier step size (0 freezes the
        multiplier at ``lambda0``).
      budget: b, the cost budget; ``inf``: no constraint (the violation is
        ``-inf``, the multiplier goes to 0 at the first step and the run is
        unconstrained NPG; written as ``"inf"`` in JSON). ``-inf`` and NaN are
        rejected.
      lambda0: lambda_0 in ``[0, lambda_max]``, initial multiplier.
      lambda_max: upper bound of the multiplier projection (``inf``: none).
      init_noise: std of the Gaussian initial logits (0: uniform policy).
      noise_std: sigma >= 0, std of Gaussian noise added to both gradients
        (``Q`` entries and the violation); 0 gives the exact dynamics.
    """

    method: str = static(default="reload")
    num_chunks: int = static(default=1)
    iters_per_chunk: int = static(default=1000)
    oracle_bisections: int = static(default=0)
    oracle_iters: int = static(default=100)
    eta_pi: float = 0.5  # eta_pi
    eta_lambda: float = 0.5  # eta_lambda
    budget: float = 0.5  # b
    lambda0: float = 0.0  # lambda_0
    lambda_max: float = math.inf  # lambda_max
    init_noise: float = 0.0
    noise_std: float = 0.0  # sigma

    @property
    def num_iters(self) -> int:
        """Total steps of a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        if self.method not in METHODS:
            raise ConfigError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        for name, low in (
            ("num_chunks", 1),
            ("iters_per_chunk", 1),
            ("oracle_bisections", 0),
            ("oracle_iters", 1),
        ):
            config_lib.check_integer(name, getattr(self, name), low)
        config_lib.check_range("eta_pi", self.eta_pi, 0.0, math.inf)
        config_lib.check_range("eta_lambda", self.eta_lambda, 0.0, math.inf)
        config_lib.check_range(  # inf: no constraint
            "budget", self.budget, low_inclusive=False, allow_inf=True
        )
        # inf: no upper bound
        config_lib.check_positive("lambda_max", self.lambda_max, allow_inf=True)
        config_lib.check_range("lambda0", self.lambda0, 0.0, math.inf)
        if config_lib.is_concrete(self.lambda0) and config_lib.is_concrete(
            self.lambda_max
        ):
            if np.any(np.asarray(self.lambda0) > np.asarray(self.lambda_max)):
                raise ConfigError(
                    f"lambda0 must not exceed lambda_max, got {self.lambda0} > "
                    f"{self.lambda_max}"
                )
        config_lib.check_range("init_noise", self.init_noise, 0.0, math.inf)
        config_lib.check_range("noise_std", self.noise_std, 0.0, math.inf)


@struct.dataclass
class Params:
    """The two players of the saddle problem (also the shape of their gradients).

    Attributes:
      logits: ``[S, A]`` policy logits (log-probabilities); as a gradient, the
        NPG direction ``Q^pi_{r - lambda c}``.
      lam: ``[]`` multiplier; as a gradient, the violation ``J_c - b``.
    """

    logits: Array
    lam: Array


@struct.dataclass
class State:
    """Agent state.

    Attributes:
      params: the current iterate :class:`Params` ``(theta_k, lambda_k)``.
      prev_grad: the previous gradients ``(Q_{k-1}, J_c(pi_{k-1}) - b)`` (used by
        ``"reload"``; zeros before the first step).
      avg_occupancy: ``[S, A]`` mean normalised occupancy measure of
        ``pi_0 .. pi_{k-1}`` (zeros at step 0).
      avg_lam: ``[]`` mean of ``lambda_0 .. lambda_{k-1}``.
      key: typed key (split before every noisy step).
      step: ``[]`` int32 number of steps taken ``k``.
    """

    params: Params
    prev_grad: Params
    avg_occupancy: Array
    avg_lam: Array
    key: PRNGKey
    step: Array
