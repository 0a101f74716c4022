"""Pure, unbatched RL operators (one topic per module).

Operators take unbatched arguments named the rlax way (``q_tm1``, ``a_tm1``, ``r_t``,
``discount_t``, ``q_t``); agents ``jax.vmap`` them over a batch. Modules:

* :mod:`jaxrl.ops.bellman`: TD targets and multi-step returns.
* :mod:`jaxrl.ops.distributional`: categorical/quantile return laws, their projections
  and losses, risk functionals (CVaR, VaR, expected utility), stock augmentation.
* :mod:`jaxrl.ops.distributional_dp`: stock-augmented distributional DP on ``FiniteMDP``
  tensors (evaluation, value/policy iteration, objectives).
* :mod:`jaxrl.ops.exact_dp`: tabular operators on ``FiniteMDP`` tensors.
* :mod:`jaxrl.ops.losses`: Huber and squared losses.
* :mod:`jaxrl.ops.regularized`: softmax policies, soft values, the Munchausen target.
* :mod:`jaxrl.ops.tsallis`: q-log/q-exp, sparse (q-exponential) policies, MVI(q).
"""

from jaxrl.ops import (
    bellman,
    distributional,
    distributional_dp,
    exact_dp,
    losses,
    regularized,
    tsallis,
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
from jaxrl.ops.losses import huber_loss, l2_loss
from jaxrl.ops.regularized import (
    munchausen_bonus,
    munchausen_q_learning,
    munchausen_target,
    scaled_log_softmax,
    soft_value,
    softmax_policy,
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
    "bellman",
    "distributional",
    "distributional_dp",
    "exact_dp",
    "losses",
    "regularized",
    "tsallis",
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
]
