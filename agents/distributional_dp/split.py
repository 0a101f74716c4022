r"""Worst-/best-case substate DP (Achab & Neu) as a solver of this package.

:func:`split_solve` runs robust value iteration on the MDP split into worst- and
best-case substates at level ``config.alpha``
(:func:`jaxrl.ops.split_dp.split_value_iteration`; equations, and what is our
reconstruction rather than the paper's text, in :mod:`jaxrl.ops.split_dp`),
takes the *safe* policy (greedy for the worst-case substate, :math:`\arg\max_a
Q^-`) and the *risky* one (:math:`\arg\max_a Q^+`), and evaluates both
exactly: their split values (:func:`jaxrl.ops.split_dp.split_policy_evaluation`)
and their return laws from :math:`\mu_0` (the mixture :math:`\alpha\eta^- +
(1-\alpha)\eta^+` of :func:`jaxrl.ops.split_dp.split_distributional_evaluation`,
which is the policy's projected return law), hence their mean and
:math:`\mathrm{CVaR}_\alpha`. Both policies are Markov (stock-blind) ``[S]``
tables, executable with :func:`jaxrl.agents.distributional_dp.rollout` as
``[S, A]`` one-hot probabilities.

It reads the fields of :class:`jaxrl.agents.distributional_dp.Config` it needs:
``alpha`` (traced, in ``(0, 1]``), ``num_iters`` (VI sweeps), ``eval_iters``
(evaluation sweeps) and the return support (``v_min``, ``v_max``,
``num_atoms``); the stock fields are unused. Pure and deterministic: jit it,
``jax.vmap`` it over MDPs or over a traced ``alpha`` (``config.replace(alpha=a)``
inside the mapped function).
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents.distributional_dp.config import Config
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import risk, split_dp
from jaxrl.types import Array

__all__ = ["SplitSolution", "split_solve"]


@struct.dataclass
class SplitSolution:
    r"""Result of :func:`split_solve`; row ``0`` safe, row ``1`` risky.

    Attributes:
      values: ``[2, S]`` robust control values :math:`V^-, V^+`.
      q: ``[2, S, A]`` their Q-values.
      initial: ``[2]`` the control values split at ``mu0``
        (:func:`jaxrl.ops.split_dp.split_initial_values`).
      policies: ``[2, S]`` int32 Markov policies: ``argmax q[0]`` (safe) and
        ``argmax q[1]`` (risky).
      split_values: ``[2, 2]`` each policy's own worst-/best-case values at
        ``mu0`` (row: policy; column: substate).
      laws: ``[2, N]`` each policy's return law from ``mu0``.
      mean: ``[2]`` their means.
      cvar: ``[2]`` their :math:`\mathrm{CVaR}_\alpha`.
    """

    values: Array
    q: Array
    initial: Array
    policies: Array
    split_values: Array
    laws: Array
    mean: Array
    cvar: Array


def split_solve(mdp: FiniteMDP, config: Config) -> SplitSolution:
    """Solve the worst-/best-case substate MDP and evaluate its safe and risky policies.

    Args:
      mdp: the MDP (``gamma`` in ``(0, 1]``).
      config: the config (``alpha``, ``num_iters``, ``eval_iters``, support).

    Returns:
      The :class:`SplitSolution`.

    Raises:
      ConfigError: an invalid config field (e.g. ``alpha`` outside ``(0, 1]``)
        or a concrete ``gamma`` out of range, naming it.
    """
    config_lib.validate(config)
    config_lib.check_range("gamma", mdp.gamma, 0.0, 1.0, low_inclusive=False)
    dtype = mdp.P.dtype
    alpha = jnp.asarray(config.alpha, dtype)
    support = config.support.astype(dtype)
    values, q = split_dp.split_value_iteration(mdp, alpha, config.num_iters)
    policies = jnp.argmax(q, axis=-1).astype(jnp.int32)
    split_values, laws = [], []
    for policy in (policies[0], policies[1]):
        v = split_dp.split_policy_evaluation(mdp, policy, alpha, config.eval_iters)
        split_values.append(split_dp.split_initial_values(mdp.mu0, v, alpha))
        eta = split_dp.split_distributional_evaluation(
            mdp, policy, support, alpha, config.eval_iters
        )
        law = alpha * eta[0] + (1.0 - alpha) * eta[1]
        laws.append(jnp.einsum("s,sn->n", mdp.mu0.astype(dtype), law))
    laws = jnp.stack(laws)
    return SplitSolution(
        values=values,
        q=q,
        initial=split_dp.split_initial_values(mdp.mu0, values, alpha),
        policies=policies,
        split_values=jnp.stack(split_values),
        laws=laws,
        mean=laws @ support,
        cvar=jnp.stack([risk.cvar(support, law, alpha) for law in laws]),
    )
