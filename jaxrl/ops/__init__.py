"""Pure, unbatched RL operators (one topic per module).

Operators take unbatched arguments named the rlax way (``q_tm1``, ``a_tm1``, ``r_t``,
``discount_t``, ``q_t``); agents ``jax.vmap`` them over a batch. Modules:

* :mod:`jaxrl.ops.bellman`: TD targets and multi-step returns.
* :mod:`jaxrl.ops.exact_dp`: tabular operators on ``FiniteMDP`` tensors.
* :mod:`jaxrl.ops.losses`: Huber and squared losses.
"""

from jaxrl.ops import bellman, exact_dp, losses
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
from jaxrl.ops.losses import huber_loss, l2_loss

__all__ = [
    "bellman",
    "exact_dp",
    "losses",
    "discounted_returns",
    "double_q_learning",
    "expected_sarsa",
    "expected_state_value",
    "lambda_returns",
    "n_step_returns",
    "q_learning",
    "soft_state_value",
    "huber_loss",
    "l2_loss",
]
