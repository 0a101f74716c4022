"""Pure, unbatched RL operators (one topic per module).

Operators take unbatched arguments named the rlax way (``q_tm1``, ``a_tm1``, ``r_t``,
``discount_t``, ``q_t``); agents ``jax.vmap`` them over a batch. Modules:

* :mod:`jaxrl.ops.bellman`: TD targets and multi-step returns.
* :mod:`jaxrl.ops.cal`: conservative augmented Lagrangian (CAL): ensemble UCB,
  augmented-Lagrangian penalty and its rectified multiplier, per-step budget.
* :mod:`jaxrl.ops.distributional`: categorical/quantile return laws, their projections,
  TD losses and conversions (re-exports :mod:`~jaxrl.ops.risk` and
  :mod:`~jaxrl.ops.stock`).
* :mod:`jaxrl.ops.risk`: risk functionals of return laws (mean, variance, CVaR, VaR,
  exceedance probability, expected utility).
* :mod:`jaxrl.ops.stock`: stock augmentation (stock update, stock-shifted greedy rule).
* :mod:`jaxrl.ops.distributional_dp`: stock-augmented distributional DP on ``FiniteMDP``
  tensors (evaluation, value/policy iteration, objectives).
* :mod:`jaxrl.ops.split_dp`: worst-/best-case substate DP (Achab & Neu): split
  evaluation, robust value iteration and split return laws on ``FiniteMDP`` tensors.
* :mod:`jaxrl.ops.dual`: the dual-RL family in one namespace (re-exports
  :mod:`~jaxrl.ops.divergences`, :mod:`~jaxrl.ops.value_losses`, :mod:`~jaxrl.ops.awr`
  and :mod:`~jaxrl.ops.recoil`).
* :mod:`jaxrl.ops.divergences`: f-divergences, their convex conjugates and optimal ratios.
* :mod:`jaxrl.ops.value_losses`: XQL / f-DVL / IQL value losses and their exact
  minimisers.
* :mod:`jaxrl.ops.awr`: advantage-weighted (AWR) policy extraction.
* :mod:`jaxrl.ops.recoil`: ReCOIL's dual-Q objective and bounded critic.
* :mod:`jaxrl.ops.exact_dp`: tabular operators on ``FiniteMDP`` tensors.
* :mod:`jaxrl.ops.gae`: generalized advantage estimation with episode boundaries.
* :mod:`jaxrl.ops.lagrangian`: constrained RL: penalised reward, projected, optimistic
  and PID multiplier updates.
* :mod:`jaxrl.ops.losses`: Huber and squared losses.
* :mod:`jaxrl.ops.mirror_descent`: MD-VI(lambda, tau): KL- and entropy-regularised greedy
  step and value, the tabular operator, and its M-VI reparameterisation.
* :mod:`jaxrl.ops.policy_gradient`: PPO clipped surrogate, value clipping, entropy, KL.
* :mod:`jaxrl.ops.regularized`: softmax policies, soft values, the Munchausen target.
* :mod:`jaxrl.ops.sac`: soft actor-critic: tanh-squashed Gaussian log-density, action
  scaling, clipped double-Q soft target, policy and temperature losses, Polyak averaging.
* :mod:`jaxrl.ops.sampling`: uniform integers and floats from one call of the key's bit
  generator (replay sampling, ε-greedy exploration).
* :mod:`jaxrl.ops.terminations`: constraints as terminations (CaT): running violation
  scale, termination probabilities, soft-termination GAE.
* :mod:`jaxrl.ops.tsallis`: q-log/q-exp, sparse (q-exponential) policies, MVI(q).
"""

from jaxrl.ops import (
    awr,
    bellman,
    cal,
    distributional,
    distributional_dp,
    divergences,
    dual,
    exact_dp,
    gae,
    lagrangian,
    losses,
    mirror_descent,
    policy_gradient,
    recoil,
    regularized,
    risk,
    sac,
    sampling,
    split_dp,
    stock,
    terminations,
    tsallis,
    value_losses,
)
from jaxrl.ops.bellman import (
    discounted_returns,
    double_q_learning,
    expected_sarsa,
    expected_state_value,
    lambda_returns,
    n_step_returns,
    q_learning,
    soft_state_value,
)
from jaxrl.ops.distributional import (
    categorical_support,
    categorical_td_loss,
    categorical_td_target,
    categorical_to_quantiles,
    cvar,
    exceedance_probability,
    expected_utility,
    get_utility,
    project_categorical,
    quantile_huber_loss,
    quantile_midpoints,
    quantile_td_loss,
    quantile_td_target,
    quantiles_to_categorical,
    return_mean,
    return_variance,
    stock_greedy_action,
    stock_shifted_values,
    stock_update,
    value_at_risk,
)
from jaxrl.ops.dual import (
    awr_loss,
    awr_policy,
    awr_weights,
    chi_square_loss,
    chi_square_value,
    expectile_loss,
    expectile_value,
    f_conjugate,
    f_conjugate_positive,
    f_divergence,
    f_generator,
    f_optimal_ratio,
    gumbel_log_loss,
    gumbel_loss,
    gumbel_rescale_loss,
    gumbel_value,
    recoil_critic_loss,
    recoil_objective,
    recoil_td_target,
    total_variation_loss,
    total_variation_value,
    value_loss,
    value_minimizer,
)
from jaxrl.ops.gae import gae_returns, generalized_advantage_estimation
from jaxrl.ops.losses import huber_loss, l2_loss
from jaxrl.ops.mirror_descent import (
    md_log_policy,
    md_policy,
    md_to_munchausen,
    md_to_munchausen_q,
    md_value,
    md_vi_operator,
    munchausen_to_md,
)
from jaxrl.ops.policy_gradient import (
    approx_kl,
    categorical_entropy,
    categorical_log_prob,
    clipped_surrogate_loss,
    clipped_value_loss,
    importance_ratio,
    policy_gradient_loss,
)
from jaxrl.ops.regularized import (
    munchausen_bonus,
    munchausen_q_learning,
    munchausen_target,
    scaled_log_softmax,
    soft_value,
    softmax_policy,
)
from jaxrl.ops.terminations import (
    soft_termination_returns,
    termination_probabilities,
    termination_probability,
    violation_scale_update,
)
from jaxrl.ops.tsallis import (
    exp_q,
    log_q,
    mviq_bonus,
    mviq_q_learning,
    mviq_target,
    scaled_log_q_policy,
    sparsemax,
    sparsemax_threshold,
    tsallis_entropy,
    tsallis_kl,
    tsallis_policy,
    tsallis_threshold,
    tsallis_value,
)

__all__ = [
    "awr",
    "bellman",
    "cal",
    "distributional",
    "distributional_dp",
    "divergences",
    "dual",
    "exact_dp",
    "gae",
    "lagrangian",
    "losses",
    "mirror_descent",
    "policy_gradient",
    "recoil",
    "regularized",
    "risk",
    "sac",
    "sampling",
    "split_dp",
    "stock",
    "terminations",
    "tsallis",
    "value_losses",
    "discounted_returns",
    "double_q_learning",
    "expected_sarsa",
    "expected_state_value",
    "lambda_returns",
    "n_step_returns",
    "q_learning",
    "soft_state_value",
    "categorical_support",
    "categorical_td_loss",
    "categorical_td_target",
    "categorical_to_quantiles",
    "cvar",
    "exceedance_probability",
    "expected_utility",
    "get_utility",
    "project_categorical",
    "quantile_huber_loss",
    "quantile_midpoints",
    "quantile_td_loss",
    "quantile_td_target",
    "quantiles_to_categorical",
    "return_mean",
    "return_variance",
    "stock_greedy_action",
    "stock_shifted_values",
    "stock_update",
    "value_at_risk",
    "huber_loss",
    "l2_loss",
    "gae_returns",
    "generalized_advantage_estimation",
    "violation_scale_update",
    "termination_probability",
    "termination_probabilities",
    "soft_termination_returns",
    "approx_kl",
    "categorical_entropy",
    "categorical_log_prob",
    "clipped_surrogate_loss",
    "clipped_value_loss",
    "importance_ratio",
    "policy_gradient_loss",
    "md_log_policy",
    "md_policy",
    "md_value",
    "md_vi_operator",
    "munchausen_to_md",
    "md_to_munchausen",
    "md_to_munchausen_q",
    "munchausen_bonus",
    "munchausen_q_learning",
    "munchausen_target",
    "scaled_log_softmax",
    "softmax_policy",
    "soft_value",
    "exp_q",
    "log_q",
    "mviq_bonus",
    "mviq_q_learning",
    "mviq_target",
    "scaled_log_q_policy",
    "sparsemax",
    "sparsemax_threshold",
    "tsallis_entropy",
    "tsallis_kl",
    "tsallis_policy",
    "tsallis_threshold",
    "tsallis_value",
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
