r"""Dual RL: the operator family of XQL, f-DVL, IQL and ReCOIL, in one namespace.

**Dual RL** (Sikchi, Zheng, Zhang and Niekum, ICLR 2024) writes regularised RL
as :math:`\max_{d \ge 0} \mathbb{E}_d[r] - \alpha D_f(d \,\|\, d^O)` over
visitation distributions :math:`d` satisfying the Bellman-flow constraints; its
Lagrangian dual replaces the f-divergence by the convex conjugate of its
generator. The operators live in one module per topic; this module re-exports
every one of them under its old name (``from jaxrl.ops import dual;
dual.gumbel_loss(...)``), so code written against it keeps working:

* :mod:`jaxrl.ops.divergences`: f-divergence generators, their (positive) convex
  conjugates, optimal importance ratios and :func:`f_divergence`
  (:data:`F_DIVERGENCES`).
* :mod:`jaxrl.ops.value_losses`: the value losses of :math:`x = Q - V` (XQL's
  Gumbel loss and its stabilisers, f-DVL's chi-square and total variation,
  IQL's expectile; :data:`VALUE_LOSSES`) and their exact minimisers over a
  discrete law (:func:`value_minimizer`).
* :mod:`jaxrl.ops.awr`: advantage-weighted policy extraction.
* :mod:`jaxrl.ops.recoil`: ReCOIL's dual-Q objective and bounded critic.
"""

from __future__ import annotations

from jaxrl.ops.awr import awr_loss, awr_policy, awr_weights
from jaxrl.ops.divergences import (
    F_DIVERGENCES,
    f_conjugate,
    f_conjugate_positive,
    f_divergence,
    f_generator,
    f_optimal_ratio,
)
from jaxrl.ops.recoil import recoil_critic_loss, recoil_objective, recoil_td_target
from jaxrl.ops.value_losses import (
    DEFAULT_VALUE_ITERS,
    VALUE_LOSSES,
    chi_square_loss,
    chi_square_value,
    expectile_loss,
    expectile_value,
    gumbel_log_loss,
    gumbel_loss,
    gumbel_rescale_loss,
    gumbel_value,
    total_variation_loss,
    total_variation_value,
    value_loss,
    value_minimizer,
)

__all__ = [
    "F_DIVERGENCES",
    "VALUE_LOSSES",
    "DEFAULT_VALUE_ITERS",
    "f_generator",
    "f_conjugate",
    "f_conjugate_positive",
    "f_optimal_ratio",
    "f_divergence",
    "gumbel_loss",
    "gumbel_rescale_loss",
    "gumbel_log_loss",
    "chi_square_loss",
    "total_variation_loss",
    "expectile_loss",
    "value_loss",
    "gumbel_value",
    "chi_square_value",
    "total_variation_value",
    "expectile_value",
    "value_minimizer",
    "awr_weights",
    "awr_loss",
    "awr_policy",
    "recoil_objective",
    "recoil_td_target",
    "recoil_critic_loss",
]
