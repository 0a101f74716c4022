"""Configuration of the deep offline dual-RL agents (see :mod:`jaxrl.agents.dual_rl`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from flax import struct

from jaxrl import config as config_lib
from jaxrl.config import check_positive, check_range, static
from jaxrl.errors import ConfigError
from jaxrl.nets import ACTIVATIONS
from jaxrl.transition import Transition
from jaxrl.types import Array, ArrayTree, PRNGKey

if TYPE_CHECKING:
    from jaxrl.agents.dual_rl.networks import Networks

METHODS = ("xql", "fdvl", "iql", "bc", "recoil")
"""Values of ``Config.method``."""

DIVERGENCES = ("chi_square", "total_variation", "reverse_kl")
"""Values of ``Config.f`` (the f-DVL divergence)."""

STABILIZERS = ("none", "clip", "rescale", "log")
"""Values of ``Config.gumbel_stabilizer``."""

_F_TO_LOSS = {
    "chi_square": "chi_square",
    "total_variation": "total_variation",
    "reverse_kl": "gumbel",
}


@struct.dataclass
class Config:
    """Hyperparameters of the deep offline dual-RL agents.

    Static fields fix shapes, loop lengths and code paths; every other field is
    traced (sweep it with ``vmap``, no recompilation). Defaults follow the XQL
    / IQL MuJoCo settings (1M steps in 200 chunks of 5k, evaluation of 10
    episodes per chunk; the actor's cosine decay is linear here).

    Attributes:
      method: ``"xql"``, ``"fdvl"``, ``"iql"``, ``"bc"`` or ``"recoil"``.
      f: f-DVL divergence: ``"chi_square"``, ``"total_variation"`` or
        ``"reverse_kl"`` (= XQL); used by ``"fdvl"`` only.
      gumbel_stabilizer: Gumbel-loss form, ``"rescale"``, ``"log"``,
        ``"clip"`` or ``"none"`` (see the module docstring).
      double_q: two critics and their minimum (else one).
      hidden_sizes: MLP widths of every network.
      activation: activation name (``jaxrl.nets.ACTIVATIONS``).
      value_layer_norm: LayerNorm in the value network (XQL: on).
      batch_size: B, transitions per gradient step (ReCOIL: B data + B expert).
      num_chunks: chunks per run.
      iters_per_chunk: gradient steps per chunk.
      num_eval_episodes: greedy episodes after each chunk (0: none).
      eval_max_steps: step cap of an evaluation episode.
      data_num_envs: environments of the default random dataset.
      data_steps: steps per environment of the default random dataset.
      gamma: discount.
      lr: initial Adam step size of the critics and the value network.
      lr_end_fraction: their final step size as a fraction of ``lr`` (linear
        decay over the run; 1: constant).
      actor_lr: initial Adam step size of the policy.
      actor_lr_end_fraction: final actor step size as a fraction of
        ``actor_lr`` (linear decay over the run; 1: constant).
      adam_eps: Adam epsilon.
      max_grad_norm: global-norm clip per network (``inf``: none).
      polyak: Polyak rate of the target critics per step.
      beta: Gumbel temperature (XQL, f-DVL reverse KL, ReCOIL).
      lam: f-DVL trade-off (chi-square ``(0, 1]``, total variation
        ``[1/2, 1]``).
      alpha: f-DVL temperature of the chi-square and total-variation losses,
        used as ``alpha * loss((Q - V) / alpha)`` (the dual-V objective's
        ``alpha E[f*(x / alpha)]``; 1: the reference code's losses). The
        total-variation loss is positively homogeneous, so it does not depend
        on ``alpha``; the chi-square loss becomes
        ``lam max(x + x^2 / (4 alpha), 0) - (1 - lam) x``.
      expectile: IQL expectile tau in ``(0, 1)``.
      awr_beta: AWR inverse temperature beta_pi >= 0 (0: behaviour cloning).
      max_weight: AWR weight clip.
      max_clip: clip of the Gumbel exponent (``"rescale"``, ``"log"``,
        ``"clip"``; ``inf``: none).
      huber_delta: Huber threshold of the TD loss (XQL: 20; ``inf``: squared).
      reward_scale: rewards are used as ``reward_scale * r + reward_shift``.
      reward_shift: see ``reward_scale`` (antmaze: -1).
      reward_gap: ReCOIL's pseudo-reward gap r_gap.
      q_gap: ReCOIL's expert target Q_gap.
      log_std_min: lower clip of the Gaussian policy's log-std.
      log_std_max: upper clip of the Gaussian policy's log-std.
      diverge_threshold: ``|V|`` or ``|Q|`` above it counts as diverged.
      random_return: R_random of the normalised score (NaN: no score).
      expert_return: R_expert of the normalised score (NaN: no score).
    """

    # STATIC: code paths, shapes, loop lengths.
    method: str = static(default="xql")
    f: str = static(default="chi_square")
    gumbel_stabilizer: str = static(default="rescale")
    double_q: bool = static(default=True)
    hidden_sizes: tuple[int, ...] = static(default=(256, 256))
    activation: str = static(default="relu")
    value_layer_norm: bool = static(default=True)
    batch_size: int = static(default=256)  # B
    num_chunks: int = static(default=200)
    iters_per_chunk: int = static(default=5_000)
    num_eval_episodes: int = static(default=10)
    eval_max_steps: int = static(default=1_000)
    data_num_envs: int = static(default=10)
    data_steps: int = static(default=1_000)

    # TRACED: numeric hyperparameters.
    gamma: float = 0.99  # γ
    lr: float = 3e-4  # η (critics, value)
    lr_end_fraction: float = 1.0
    actor_lr: float = 3e-4  # η_π
    actor_lr_end_fraction: float = 0.0
    adam_eps: float = 1e-8
    max_grad_norm: float = math.inf
    polyak: float = 0.005  # Polyak rate of the target critics
    beta: float = 2.0  # β, Gumbel temperature
    lam: float = 0.8  # λ, f-DVL trade-off
    alpha: float = 1.0  # α, f-DVL temperature (chi-square, total variation)
    expectile: float = 0.7  # τ, IQL
    awr_beta: float = 3.0  # β_π, AWR inverse temperature
    max_weight: float = 100.0  # w_max
    max_clip: float = 7.0  # clip of (Q - V) / β in the Gumbel loss
    huber_delta: float = 20.0  # δ
    reward_scale: float = 1.0
    reward_shift: float = 0.0
    reward_gap: float = 2.0  # r_gap (ReCOIL)
    q_gap: float = 200.0  # Q_gap (ReCOIL)
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    diverge_threshold: float = 1e6
    random_return: float = math.nan  # R_random
    expert_return: float = math.nan  # R_expert

    @property
    def num_iters(self) -> int:
        """Gradient steps in a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    @property
    def dataset_size(self) -> int:
        """Transitions of the default dataset, ``data_num_envs * data_steps``."""
        return self.data_num_envs * self.data_steps

    @property
    def value_loss_name(self) -> str | None:
        """The ``jaxrl.ops.dual.VALUE_LOSSES`` name of the method (None for BC)."""
        if self.method in ("xql", "recoil"):
            return "gumbel"
        if self.method == "iql":
            return "expectile"
        if self.method == "fdvl":
            return _F_TO_LOSS[self.f]
        return None

    @property
    def value_param(self) -> Any:
        """The value loss's parameter: ``beta``, ``lam`` or ``expectile``."""
        name = self.value_loss_name
        if name == "gumbel":
            return self.beta
        if name == "expectile":
            return self.expectile
        return self.lam

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        for name, options in (
            ("method", METHODS),
            ("f", DIVERGENCES),
            ("gumbel_stabilizer", STABILIZERS),
        ):
            if getattr(self, name) not in options:
                raise ConfigError(
                    f"{name} must be one of {', '.join(options)}, "
                    f"got {getattr(self, name)!r}"
                )
        for name in (
            "batch_size",
            "num_chunks",
            "iters_per_chunk",
            "eval_max_steps",
            "data_num_envs",
            "data_steps",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        episodes = self.num_eval_episodes
        if (
            isinstance(episodes, bool)
            or not isinstance(episodes, int | np.integer)
            or episodes < 0
        ):
            raise ConfigError(
                f"num_eval_episodes must be an integer >= 0, got {episodes!r}"
            )
        sizes = self.hidden_sizes
        if not isinstance(sizes, tuple) or not all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0
            for s in sizes
        ):
            raise ConfigError(
                f"hidden_sizes must be a tuple of positive integers, got {sizes!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {', '.join(sorted(ACTIVATIONS))}, "
                f"got {self.activation!r}"
            )
        check_range("gamma", self.gamma, 0.0, 1.0)
        for name in (
            "lr",
            "actor_lr",
            "adam_eps",
            "beta",
            "alpha",
        ):
            check_positive(name, getattr(self, name))
        for name in ("max_weight", "diverge_threshold"):
            check_positive(name, getattr(self, name))
        for name in ("max_grad_norm", "max_clip", "huber_delta"):  # ``inf``: none
            check_positive(name, getattr(self, name), allow_inf=True)
        check_range("lr_end_fraction", self.lr_end_fraction, 0.0, 1.0)
        check_range("actor_lr_end_fraction", self.actor_lr_end_fraction, 0.0, 1.0)
        check_range("polyak", self.polyak, 0.0, 1.0, low_inclusive=False)
        if self.method == "fdvl" and self.f == "total_variation":
            check_range("lam", self.lam, 0.5, 1.0)
        else:
            check_range("lam", self.lam, 0.0, 1.0, low_inclusive=False)
        check_range(
            "expectile",
            self.expectile,
            0.0,
            1.0,
            low_inclusive=False,
            high_inclusive=False,
        )
        check_range("awr_beta", self.awr_beta, 0.0)
        check_range("reward_gap", self.reward_gap, 0.0)
        check_range("q_gap", self.q_gap, 0.0)
        if config_lib.is_concrete(self.log_std_min) and config_lib.is_concrete(
            self.log_std_max
        ):
            lo, hi = np.asarray(self.log_std_min), np.asarray(self.log_std_max)
            if not np.all(lo < hi):
                raise ConfigError(
                    f"log_std_min ({self.log_std_min}) must be below "
                    f"log_std_max ({self.log_std_max})"
                )


@struct.dataclass
class Batch:
    """One gradient step's data: ``Transition[B]`` (+ expert ``Transition[B]``).

    Attributes:
      data: transitions sampled from the dataset.
      expert: transitions sampled from the expert set (ReCOIL), else ``None``.
    """

    data: Transition
    expert: Transition | None = None


@struct.dataclass
class State:
    """Training state (one seed; ``vmap`` adds ``[S]``).

    Attributes:
      params: the :class:`Networks`.
      target_params: target critics (stacked like ``params.critic``).
      opt_state: ``{"critic", "value", "policy"}`` optimiser states.
      data: the dataset, ``Transition[N]``.
      expert: the expert set ``Transition[N_E]`` (ReCOIL), else ``None``.
      key: typed key, split before every use.
      step: ``[]`` int32 gradient steps done.
      data_size: ``[]`` int32 rows of ``data`` that are sampled (the first
        ones; the rest is padding, so that datasets of different sizes padded
        to one ``N`` share a compilation).
      expert_size: ``[]`` int32, the same for ``expert`` (``None`` without).
    """

    params: Networks
    target_params: ArrayTree
    opt_state: dict[str, Any]
    data: Transition
    expert: Transition | None
    key: PRNGKey
    step: Array
    data_size: Array | None = None
    expert_size: Array | None = None
