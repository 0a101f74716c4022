"""Exact tabular dynamic-programming operators on :class:`jaxrl.mdp.FiniteMDP` tensors.

All functions are pure and *unbatched* (one MDP; map over a batch of MDPs with
``jax.vmap``). Shapes use ``S`` states and ``A`` actions. A policy is a
row-stochastic table ``pi[S, A]``; Q-functions are ``q[S, A]``; state values are
``v[S]``. Loop lengths (``num_iters``, ``max_iters``) are static Python ints;
every numeric input (``gamma`` inside the MDP, ``tau``) may be traced. Computations
run in the dtype of ``mdp.P`` (float32 by default, float64 under
``JAX_ENABLE_X64``).

Notation (Puterman, *Markov Decision Processes*, 1994, ch. 6):

* ``r_pi(s) = sum_a pi(a|s) R(s, a)`` and ``P_pi(s, s') = sum_a pi(a|s) P(s'|s, a)``;
* ``V^pi = (I - gamma P_pi)^{-1} r_pi``;
* ``(T q)(s, a) = R(s, a) + gamma sum_{s'} P(s'|s, a) max_{a'} q(s', a')``;
* ``(T^pi q)(s, a) = R(s, a) + gamma sum_{s'} P(s'|s, a) sum_{a'} pi(a'|s') q(s', a')``;
* ``J(pi) = sum_s mu0(s) V^pi(s)``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from jaxrl.mdp import FiniteMDP
from jaxrl.types import Array, ArrayLike

__all__ = [
    "policy_reward",
    "policy_transition",
    "policy_evaluation",
    "q_from_v",
    "policy_q",
    "bellman_optimality",
    "bellman_expectation",
    "bellman_residual",
    "greedy_policy",
    "softmax_policy",
    "soft_value",
    "soft_bellman_optimality",
    "value_iteration",
    "policy_iteration",
    "optimal_q",
    "performance",
    "optimal_performance",
    "suboptimality",
    "value_gap",
]


def _check_mdp(mdp: FiniteMDP) -> None:
    chex.assert_rank([mdp.P, mdp.R, mdp.mu0], [3, 2, 1])
    S, A = mdp.num_states, mdp.num_actions
    chex.assert_shape(mdp.P, (S, A, S))
    chex.assert_shape(mdp.R, (S, A))
    chex.assert_shape(mdp.mu0, (S,))


def _check_table(mdp: FiniteMDP, x: Array, name: str) -> None:
    del name
    chex.assert_shape(x, (mdp.num_states, mdp.num_actions))


def _reward(mdp: FiniteMDP, reward: ArrayLike | None) -> Array:
    if reward is None:
        return mdp.R
    reward = jnp.asarray(reward, mdp.P.dtype)
    _check_table(mdp, reward, "reward")
    return reward


# ------------------------------------------------------------------- policy model


def policy_reward(
    mdp: FiniteMDP, pi: ArrayLike, reward: ArrayLike | None = None
) -> Array:
    """Return the expected one-step reward under a policy, ``r_pi[S]``.

    ``r_pi(s) = sum_a pi(a|s) R(s, a)``.

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy (rows sum to one).
      reward: optional ``[S, A]`` table used instead of ``mdp.R`` (e.g. ``mdp.C``).

    Returns:
      ``[S]`` expected reward.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((2, 2, 2)) / 2, [[0.0, 1.0], [2.0, 4.0]])
      >>> policy_reward(mdp, np.full((2, 2), 0.5))
      Array([0.5, 3. ], dtype=float32)
    """
    _check_mdp(mdp)
    pi = jnp.asarray(pi, mdp.P.dtype)
    _check_table(mdp, pi, "pi")
    return jnp.sum(pi * _reward(mdp, reward), axis=-1)


def policy_transition(mdp: FiniteMDP, pi: ArrayLike) -> Array:
    """Return the state-to-state transition matrix under a policy, ``P_pi[S, S']``.

    ``P_pi(s, s') = sum_a pi(a|s) P(s'|s, a)``; rows sum to one.

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy.

    Returns:
      ``[S, S]`` row-stochastic matrix.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]])
      >>> policy_transition(make_mdp(P, np.zeros((2, 2))), [[0.0, 1.0], [1.0, 0.0]])
      Array([[0., 1.],
             [1., 0.]], dtype=float32)
    """
    _check_mdp(mdp)
    pi = jnp.asarray(pi, mdp.P.dtype)
    _check_table(mdp, pi, "pi")
    return jnp.einsum("sa,sat->st", pi, mdp.P)


def policy_evaluation(
    mdp: FiniteMDP, pi: ArrayLike, reward: ArrayLike | None = None
) -> Array:
    """Evaluate a policy exactly by a linear solve, ``V^pi[S]``.

    Solves ``(I - gamma P_pi) V^pi = r_pi`` (Puterman 1994, Thm. 6.1.1), which has
    a unique solution for ``gamma < 1``.

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy.
      reward: optional ``[S, A]`` table evaluated instead of ``mdp.R`` (pass
        ``mdp.C`` for the cost value ``V_C^pi``).

    Returns:
      ``[S]`` state values.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 1, 1)), [[1.0]], gamma=0.5)
      >>> policy_evaluation(mdp, [[1.0]])  # 1 / (1 - 0.5)
      Array([2.], dtype=float32)
    """
    r_pi = policy_reward(mdp, pi, reward)
    P_pi = policy_transition(mdp, pi)
    eye = jnp.eye(mdp.num_states, dtype=P_pi.dtype)
    return jnp.linalg.solve(eye - mdp.gamma * P_pi, r_pi)


def q_from_v(mdp: FiniteMDP, v: ArrayLike, reward: ArrayLike | None = None) -> Array:
    """Return the one-step lookahead ``q[S, A]`` of state values ``v``.

    ``q(s, a) = R(s, a) + gamma sum_{s'} P(s'|s, a) v(s')``.

    Args:
      mdp: the MDP.
      v: ``[S]`` state values.
      reward: optional ``[S, A]`` table used instead of ``mdp.R``.

    Returns:
      ``[S, A]`` action values.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> q_from_v(mdp, [2.0])
      Array([[2., 1.]], dtype=float32)
    """
    _check_mdp(mdp)
    v = jnp.asarray(v, mdp.P.dtype)
    chex.assert_shape(v, (mdp.num_states,))
    return _reward(mdp, reward) + mdp.gamma * jnp.einsum("sat,t->sa", mdp.P, v)


def policy_q(mdp: FiniteMDP, pi: ArrayLike, reward: ArrayLike | None = None) -> Array:
    """Return ``Q^pi[S, A] = q_from_v(policy_evaluation(pi))`` (exact, by linear solve).

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy.
      reward: optional ``[S, A]`` table used instead of ``mdp.R``.

    Returns:
      ``[S, A]`` action values of ``pi``.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> policy_q(mdp, [[1.0, 0.0]])
      Array([[2., 1.]], dtype=float32)
    """
    return q_from_v(mdp, policy_evaluation(mdp, pi, reward), reward)


# ------------------------------------------------------------------------ backups


def bellman_optimality(mdp: FiniteMDP, q: ArrayLike) -> Array:
    """Apply the Bellman optimality operator, ``(T q)[S, A]``.

    ``(T q)(s, a) = R(s, a) + gamma sum_{s'} P(s'|s, a) max_{a'} q(s', a')``
    (Bellman 1957; Puterman 1994, eq. 6.2.4 in action-value form).

    Args:
      mdp: the MDP.
      q: ``[S, A]`` action values.

    Returns:
      ``[S, A]`` backed-up action values.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> bellman_optimality(mdp, [[2.0, 0.0]])
      Array([[2., 1.]], dtype=float32)
    """
    q = jnp.asarray(q, mdp.P.dtype)
    _check_table(mdp, q, "q")
    return q_from_v(mdp, jnp.max(q, axis=-1))


def bellman_expectation(mdp: FiniteMDP, q: ArrayLike, pi: ArrayLike) -> Array:
    """Apply the Bellman expectation operator of ``pi``, ``(T^pi q)[S, A]``.

    ``(T^pi q)(s, a) = R(s, a) + gamma sum_{s'} P(s'|s, a) v_pi(s')`` with
    ``v_pi(s') = sum_{a'} pi(a'|s') q(s', a')``;
    its unique fixed point is ``Q^pi``.

    Args:
      mdp: the MDP.
      q: ``[S, A]`` action values.
      pi: ``[S, A]`` policy.

    Returns:
      ``[S, A]`` backed-up action values.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> bellman_expectation(mdp, [[2.0, 0.0]], [[0.5, 0.5]])
      Array([[1.5, 0.5]], dtype=float32)
    """
    q = jnp.asarray(q, mdp.P.dtype)
    pi = jnp.asarray(pi, mdp.P.dtype)
    _check_table(mdp, q, "q")
    _check_table(mdp, pi, "pi")
    return q_from_v(mdp, jnp.sum(pi * q, axis=-1))


def bellman_residual(mdp: FiniteMDP, q: ArrayLike) -> Array:
    """Return the sup-norm Bellman optimality residual ``max_{s,a} |(T q - q)(s, a)|``.

    Args:
      mdp: the MDP.
      q: ``[S, A]`` action values.

    Returns:
      ``[]`` residual; zero exactly at ``q = Q*``.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> bellman_residual(mdp, [[2.0, 1.0]])
      Array(0., dtype=float32)
    """
    q = jnp.asarray(q, mdp.P.dtype)
    return jnp.max(jnp.abs(bellman_optimality(mdp, q) - q))


# -------------------------------------------------------------------- improvement


def greedy_policy(q: ArrayLike) -> Array:
    """Return the deterministic greedy policy of ``q`` as a one-hot table ``[S, A]``.

    ``pi(a|s) = 1`` iff ``a = argmax_a' q(s, a')``. Ties are broken
    deterministically towards the *lowest* action index (``jnp.argmax``).

    Args:
      q: ``[S, A]`` action values.

    Returns:
      ``[S, A]`` one-hot policy in the dtype of ``q`` (float32 for integer ``q``).

    Examples:
      >>> greedy_policy(jnp.array([[0.0, 1.0], [3.0, 3.0]]))
      Array([[0., 1.],
             [1., 0.]], dtype=float32)
    """
    q = jnp.asarray(q)
    chex.assert_rank(q, 2)
    dtype = q.dtype if jnp.issubdtype(q.dtype, jnp.floating) else jnp.float32
    return jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1], dtype=dtype)


def softmax_policy(q: ArrayLike, tau: ArrayLike) -> Array:
    """Return the Boltzmann policy ``pi(a|s) = softmax(q(s, .) / tau)(a)``, ``[S, A]``.

    ``tau > 0`` is the temperature (traced); ``tau -> 0`` tends to a uniform mix
    over the maximising actions.

    Args:
      q: ``[S, A]`` action values.
      tau: ``[]`` temperature ``tau > 0``.

    Returns:
      ``[S, A]`` stochastic policy.

    Examples:
      >>> softmax_policy(jnp.array([[0.0, 1.0], [2.0, 2.0]]), 1e-3)
      Array([[0. , 1. ],
             [0.5, 0.5]], dtype=float32)
    """
    q = jnp.asarray(q)
    chex.assert_rank(q, 2)
    return jax.nn.softmax(q / tau, axis=-1)


def soft_value(q: ArrayLike, tau: ArrayLike) -> Array:
    """Return the log-sum-exp (soft maximum) state value ``v[S]``.

    ``v(s) = tau log sum_a exp(q(s, a) / tau)``, so that
    ``max_a q <= v <= max_a q + tau log A``.

    Args:
      q: ``[S, A]`` action values.
      tau: ``[]`` temperature ``tau > 0``.

    Returns:
      ``[S]`` soft values.

    Examples:
      >>> soft_value(jnp.zeros((1, 2)), 1.0)  # log 2
      Array([0.6931472], dtype=float32)
    """
    q = jnp.asarray(q)
    chex.assert_rank(q, 2)
    return tau * jax.nn.logsumexp(q / tau, axis=-1)


def soft_bellman_optimality(mdp: FiniteMDP, q: ArrayLike, tau: ArrayLike) -> Array:
    """Apply the soft (entropy-regularised) Bellman optimality operator, ``[S, A]``.

    ``(T_tau q)(s, a) = R(s, a) + gamma sum_{s'} P(s'|s, a) v_tau(s')`` with
    ``v_tau(s') = tau log sum_{a'} exp(q(s', a') / tau)``
    (soft Q-learning; Haarnoja et al. 2017, eq. 2). Tends to :func:`bellman_optimality`
    as ``tau -> 0``.

    Args:
      mdp: the MDP.
      q: ``[S, A]`` action values.
      tau: ``[]`` temperature ``tau > 0``.

    Returns:
      ``[S, A]`` backed-up action values.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[0.0, 0.0]], gamma=0.5)
      >>> soft_bellman_optimality(mdp, jnp.zeros((1, 2)), 1.0)  # 0.5 log 2
      Array([[0.3465736, 0.3465736]], dtype=float32)
    """
    q = jnp.asarray(q, mdp.P.dtype)
    _check_table(mdp, q, "q")
    return q_from_v(mdp, soft_value(q, tau))


# ------------------------------------------------------------------------ solvers


def value_iteration(
    mdp: FiniteMDP, num_iters: int, q0: ArrayLike | None = None
) -> tuple[Array, Array]:
    """Run ``num_iters`` sweeps of value iteration ``q_{k+1} = T q_k`` (``lax.scan``).

    Since ``T`` is a ``gamma``-contraction in the sup norm,
    ``||q_k - Q*|| <= gamma^k ||q_0 - Q*||``.

    Args:
      mdp: the MDP.
      num_iters: static number of sweeps ``K``.
      q0: ``[S, A]`` initial values; zeros by default.

    Returns:
      ``(q_K, residuals)``: ``[S, A]`` final values and ``[K]`` residuals
      ``residuals[k] = max |T q_k - q_k|`` (the residual *before* sweep ``k``).

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 1, 1)), [[1.0]], gamma=0.5)
      >>> q, res = value_iteration(mdp, 3)
      >>> q, res
      (Array([[1.75]], dtype=float32), Array([1.  , 0.5 , 0.25], dtype=float32))
    """
    _check_mdp(mdp)
    q0 = jnp.zeros_like(mdp.R) if q0 is None else jnp.asarray(q0, mdp.P.dtype)
    _check_table(mdp, q0, "q0")

    def body(q: Array, _: None) -> tuple[Array, Array]:
        tq = bellman_optimality(mdp, q)
        return tq, jnp.max(jnp.abs(tq - q))

    return jax.lax.scan(body, q0, None, length=num_iters)


def policy_iteration(
    mdp: FiniteMDP, num_iters: int, pi0: ArrayLike | None = None
) -> tuple[Array, Array]:
    """Run ``num_iters`` steps of Howard's policy iteration with ``lax.scan``.

    Step ``k`` evaluates ``q_k = Q^{pi_k}`` exactly (:func:`policy_q`) and improves
    ``pi_{k+1} = greedy(q_k)``. Policy iteration reaches ``Q*`` after finitely
    many steps (Puterman 1994, Thm. 6.4.2); further steps leave it unchanged.

    Args:
      mdp: the MDP.
      num_iters: static number of steps ``K >= 1``.
      pi0: ``[S, A]`` initial policy; default is the myopic ``greedy(R)``.

    Returns:
      ``(q, residuals)``: ``[S, A]`` the values ``Q^{pi_{K-1}}`` of the last
      evaluated policy (use :func:`greedy_policy` for ``pi_K``), and ``[K]``
      residuals ``max |T q_k - q_k|`` (zero once the policy is optimal).

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
      >>> mdp = make_mdp(P, [[0.0, 1.0], [2.0, 0.0]], gamma=0.5)
      >>> q, res = policy_iteration(mdp, 3)
      >>> q
      Array([[1.5, 3. ],
             [4. , 1.5]], dtype=float32)
    """
    _check_mdp(mdp)
    pi0 = greedy_policy(mdp.R) if pi0 is None else jnp.asarray(pi0, mdp.P.dtype)
    _check_table(mdp, pi0, "pi0")

    def body(pi: Array, _: None) -> tuple[Array, tuple[Array, Array]]:
        q = policy_q(mdp, pi)
        return greedy_policy(q), (q, bellman_residual(mdp, q))

    _, (qs, residuals) = jax.lax.scan(body, pi0, None, length=num_iters)
    return qs[-1], residuals


def optimal_q(mdp: FiniteMDP, max_iters: int = 100) -> Array:
    """Return ``Q*[S, A]`` by policy iteration run until the greedy policy is stable.

    Uses ``lax.while_loop`` (so it works under ``jit`` and ``vmap``; it is not
    reverse-differentiable). The loop stops when ``greedy(Q^pi) == pi`` or after
    the static ``max_iters`` evaluations. Its accuracy is that of the linear
    solve, not of a finite number of value-iteration sweeps.

    Args:
      mdp: the MDP.
      max_iters: static upper bound on the number of policy evaluations.

    Returns:
      ``[S, A]`` optimal action values.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> P = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
      >>> optimal_q(make_mdp(P, [[0.0, 1.0], [2.0, 0.0]], gamma=0.5))
      Array([[1.5, 3. ],
             [4. , 1.5]], dtype=float32)
    """
    _check_mdp(mdp)
    pi0 = greedy_policy(mdp.R)

    def cond(carry: tuple[Array, Array, Array, Array]) -> Array:
        _, _, i, stable = carry
        return jnp.logical_and(i < max_iters, jnp.logical_not(stable))

    def body(
        carry: tuple[Array, Array, Array, Array],
    ) -> tuple[Array, Array, Array, Array]:
        pi, _, i, _ = carry
        q = policy_q(mdp, pi)
        new_pi = greedy_policy(q)
        return new_pi, q, i + 1, jnp.all(new_pi == pi)

    init = (pi0, jnp.zeros_like(mdp.R), jnp.asarray(0, jnp.int32), jnp.asarray(False))
    _, q, _, _ = jax.lax.while_loop(cond, body, init)
    return q


# -------------------------------------------------------------------- performance


def performance(
    mdp: FiniteMDP, pi: ArrayLike, reward: ArrayLike | None = None
) -> Array:
    """Return the expected discounted return ``J(pi) = sum_s mu0(s) V^pi(s)``.

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy.
      reward: optional ``[S, A]`` table used instead of ``mdp.R`` (``mdp.C`` gives
        the expected discounted cost).

    Returns:
      ``[]`` performance.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> performance(mdp, [[0.5, 0.5]])
      Array(1., dtype=float32)
    """
    return jnp.dot(mdp.mu0, policy_evaluation(mdp, pi, reward))


def optimal_performance(mdp: FiniteMDP, max_iters: int = 100) -> Array:
    """Return ``J* = sum_s mu0(s) max_a Q*(s, a)`` with ``Q*`` from :func:`optimal_q`.

    Args:
      mdp: the MDP.
      max_iters: static bound on policy-iteration steps.

    Returns:
      ``[]`` optimal performance.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> optimal_performance(make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5))
      Array(2., dtype=float32)
    """
    return jnp.dot(mdp.mu0, jnp.max(optimal_q(mdp, max_iters), axis=-1))


def suboptimality(mdp: FiniteMDP, pi: ArrayLike, q_star: ArrayLike) -> Array:
    """Return ``J(pi*) - J(pi) >= 0`` given ``Q*``.

    ``J(pi*) = sum_s mu0(s) max_a Q*(s, a)``; ``J(pi)`` by :func:`performance`.

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy.
      q_star: ``[S, A]`` optimal action values (e.g. from :func:`optimal_q`).

    Returns:
      ``[]`` suboptimality gap.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> suboptimality(mdp, [[0.0, 1.0]], optimal_q(mdp))
      Array(2., dtype=float32)
    """
    q_star = jnp.asarray(q_star, mdp.P.dtype)
    _check_table(mdp, q_star, "q_star")
    return jnp.dot(mdp.mu0, jnp.max(q_star, axis=-1)) - performance(mdp, pi)


def value_gap(mdp: FiniteMDP, pi: ArrayLike, q_star: ArrayLike) -> Array:
    """Return the per-state gap ``V*(s) - V^pi(s) >= 0``, ``[S]``.

    Its sup norm bounds the suboptimality for every initial distribution.

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy.
      q_star: ``[S, A]`` optimal action values.

    Returns:
      ``[S]`` gaps.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], gamma=0.5)
      >>> value_gap(mdp, [[0.5, 0.5]], optimal_q(mdp))
      Array([1.], dtype=float32)
    """
    q_star = jnp.asarray(q_star, mdp.P.dtype)
    _check_table(mdp, q_star, "q_star")
    return jnp.max(q_star, axis=-1) - policy_evaluation(mdp, pi)
