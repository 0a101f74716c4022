"""Shared test utilities: probe MDPs with closed-form solutions and NumPy references.

The probe MDPs (bsuite / Rejax style) have ``Q*`` and ``V*`` known in closed
form, so an agent's answer can be checked against a formula rather than against
another implementation:

* :func:`one_step_bandit`: one decision, then an absorbing terminal state;
  ``Q*(0, a) = r_a``.
* :func:`two_state`: two recurrent states; ``V*`` solves a 2x2 system by hand.
* :func:`discounting_chain`: advance along a chain to a single reward at the end;
  ``Q*(s, advance) = gamma^{N-2-s}``, which tests the discount bookkeeping.

The ``np_*`` helpers are deliberately plain NumPy loops and ``np.linalg.solve``
in float64, written independently of :mod:`jaxrl.ops.exact_dp`, for use as test
references. Nothing here draws JAX random numbers; random test MDPs use an
explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP, make_mdp

__all__ = [
    "ProbeMDP",
    "one_step_bandit",
    "two_state",
    "discounting_chain",
    "random_mdp",
    "random_policy",
    "np_mdp",
    "np_bellman_optimality",
    "np_value_iteration",
    "np_policy_evaluation",
    "np_policy_q",
    "np_policy_iteration",
    "np_greedy",
]


class ProbeMDP(NamedTuple):
    """A probe MDP together with its closed-form solution.

    Attributes:
      mdp: the :class:`FiniteMDP`.
      q_star: ``[S, A]`` float64 optimal action values (closed form).
      v_star: ``[S]`` float64 optimal state values.
      terminal: ``[S]`` bool mask of absorbing zero-reward (terminal) states.
    """

    mdp: FiniteMDP
    q_star: np.ndarray
    v_star: np.ndarray
    terminal: np.ndarray


def one_step_bandit(
    rewards: tuple[float, ...] = (0.0, 0.5, 1.0), gamma: float = 0.9
) -> ProbeMDP:
    """Return a one-decision MDP: state 0 with ``A`` arms, then absorbing state 1.

    ``P(1 | s, a) = 1`` for all ``s, a``; ``R(0, a) = rewards[a]``, ``R(1, a) = 0``;
    ``mu0 = delta_0``. Closed form: ``Q*(0, a) = rewards[a]``, ``Q*(1, a) = 0``
    for every ``gamma``.

    Args:
      rewards: ``A`` arm rewards.
      gamma: discount factor.

    Returns:
      The probe, with ``terminal = [False, True]``.

    Examples:
      >>> one_step_bandit((1.0, 2.0)).q_star
      array([[1., 2.],
             [0., 0.]])
    """
    r = np.asarray(rewards, np.float64)
    A = r.shape[0]
    P = np.zeros((2, A, 2))
    P[:, :, 1] = 1.0
    R = np.stack([r, np.zeros(A)])
    mdp = make_mdp(P, R, mu0=np.array([1.0, 0.0]), gamma=gamma)
    return ProbeMDP(mdp, R.copy(), R.max(-1), np.array([False, True]))


def two_state(gamma: float = 0.9) -> ProbeMDP:
    """Return a two-state, two-action recurrent MDP with a hand-derived solution.

    Action 0 stays, action 1 switches state. Rewards ``R = [[0, 1], [2, 0]]``
    (state 0: stay 0, switch 1; state 1: stay 2, switch 0); ``mu0 = delta_0``.
    Staying in state 1 forever is optimal there, and switching is optimal in
    state 0 for every ``gamma in [0, 1)``, so

    * ``V*(1) = 2 / (1 - gamma)``, ``V*(0) = 1 + gamma V*(1)``;
    * ``Q*(0, 0) = gamma V*(0)``, ``Q*(0, 1) = V*(0)``, ``Q*(1, 0) = V*(1)``,
      ``Q*(1, 1) = gamma V*(0)``.

    Args:
      gamma: discount factor.

    Returns:
      The probe (no terminal states).

    Examples:
      >>> two_state(0.5).v_star
      array([3., 4.])
    """
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[1, 0, 1] = 1.0  # stay
    P[0, 1, 1] = P[1, 1, 0] = 1.0  # switch
    R = np.array([[0.0, 1.0], [2.0, 0.0]])
    g = float(gamma)
    v1 = 2.0 / (1.0 - g)
    v0 = 1.0 + g * v1
    q = np.array([[g * v0, v0], [v1, g * v0]])
    mdp = make_mdp(P, R, mu0=np.array([1.0, 0.0]), gamma=gamma)
    return ProbeMDP(mdp, q, np.array([v0, v1]), np.array([False, False]))


def discounting_chain(
    num_states: int = 5, gamma: float = 0.9, reward: float = 1.0
) -> ProbeMDP:
    """Return a deterministic chain whose only reward sits at its end.

    States ``0 .. N-1``; state ``N-1`` is absorbing and terminal. Action 0
    (*advance*) moves ``s -> s + 1`` and pays ``reward`` on entering ``N-1``;
    action 1 (*quit*) jumps to ``N-1`` paying nothing. ``mu0 = delta_0``.
    Closed form for ``s < N-1``: ``Q*(s, 0) = gamma^{N-2-s} reward`` and
    ``Q*(s, 1) = 0`` (for ``reward >= 0``); ``Q*(N-1, .) = 0``.

    Args:
      num_states: ``N >= 2``.
      gamma: discount factor.
      reward: the final reward.

    Returns:
      The probe, with only state ``N-1`` terminal.

    Examples:
      >>> discounting_chain(3, gamma=0.5).v_star
      array([0.5, 1. , 0. ])
    """
    N = int(num_states)
    if N < 2:
        raise ConfigError(f"num_states must be >= 2, got {N}")
    P = np.zeros((N, 2, N))
    R = np.zeros((N, 2))
    for s in range(N - 1):
        P[s, 0, s + 1] = 1.0
        P[s, 1, N - 1] = 1.0
    P[N - 1, :, N - 1] = 1.0
    R[N - 2, 0] = reward
    g = float(gamma)
    q = np.zeros((N, 2))
    for s in range(N - 1):
        q[s, 0] = g ** (N - 2 - s) * reward
    mu0 = np.zeros(N)
    mu0[0] = 1.0
    terminal = np.zeros(N, bool)
    terminal[-1] = True
    mdp = make_mdp(P, R, mu0=mu0, gamma=gamma)
    return ProbeMDP(mdp, q, q.max(-1), terminal)


def random_mdp(
    rng: np.random.Generator,
    num_states: int,
    num_actions: int,
    gamma: float = 0.9,
    *,
    with_cost: bool = False,
    dtype: object = None,
) -> FiniteMDP:
    """Return a dense random MDP (Dirichlet(1) rows, uniform rewards) from NumPy.

    Args:
      rng: NumPy generator (explicit randomness; no JAX keys are made).
      num_states: ``S``.
      num_actions: ``A``.
      gamma: discount factor.
      with_cost: also draw a cost table ``C ~ U[0, 1)``.
      dtype: float dtype (default: JAX's default float).

    Returns:
      A validated :class:`FiniteMDP` with a random ``mu0``.
    """
    P = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    R = rng.uniform(-1.0, 1.0, size=(num_states, num_actions))
    mu0 = rng.dirichlet(np.ones(num_states))
    C = rng.uniform(0.0, 1.0, size=(num_states, num_actions)) if with_cost else None
    return make_mdp(P, R, mu0=mu0, gamma=gamma, C=C, dtype=dtype)


def random_policy(
    rng: np.random.Generator, num_states: int, num_actions: int
) -> np.ndarray:
    """Return a random stochastic policy ``[S, A]`` (Dirichlet(1) rows), float64."""
    return rng.dirichlet(np.ones(num_actions), size=num_states)


def np_mdp(mdp: FiniteMDP) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Return ``(P, R, mu0, gamma)`` of an unbatched MDP as float64 NumPy values."""
    return (
        np.asarray(mdp.P, np.float64),
        np.asarray(mdp.R, np.float64),
        np.asarray(mdp.mu0, np.float64),
        float(mdp.gamma),
    )


def np_bellman_optimality(
    P: np.ndarray, R: np.ndarray, gamma: float, q: np.ndarray
) -> np.ndarray:
    """Reference ``(T q)(s, a) = R + gamma sum_s' P(s'|s, a) max_a' q(s', a')``."""
    S, A = R.shape
    out = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            total = 0.0
            for t in range(S):
                total += P[s, a, t] * max(q[t, b] for b in range(A))
            out[s, a] = R[s, a] + gamma * total
    return out


def np_value_iteration(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    num_iters: int,
    q0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference value iteration: ``(q_K, residuals[K])``, ``max|T q_k - q_k|`` each."""
    q = np.zeros(R.shape) if q0 is None else np.array(q0, np.float64)
    residuals = []
    for _ in range(num_iters):
        tq = np_bellman_optimality(P, R, gamma, q)
        residuals.append(np.max(np.abs(tq - q)))
        q = tq
    return q, np.array(residuals)


def np_policy_evaluation(
    P: np.ndarray, R: np.ndarray, gamma: float, pi: np.ndarray
) -> np.ndarray:
    """Reference ``V^pi = np.linalg.solve(I - gamma P_pi, r_pi)``, ``P_pi`` by loops."""
    S, A = R.shape
    P_pi = np.zeros((S, S))
    r_pi = np.zeros(S)
    for s in range(S):
        for a in range(A):
            r_pi[s] += pi[s, a] * R[s, a]
            P_pi[s] += pi[s, a] * P[s, a]
    return np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)


def np_policy_q(
    P: np.ndarray, R: np.ndarray, gamma: float, pi: np.ndarray
) -> np.ndarray:
    """Reference ``Q^pi(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V^pi(s')``."""
    v = np_policy_evaluation(P, R, gamma, pi)
    return R + gamma * np.einsum("sat,t->sa", P, v)


def np_greedy(q: np.ndarray) -> np.ndarray:
    """Reference one-hot greedy policy, ties to the lowest action index."""
    S, A = q.shape
    pi = np.zeros((S, A))
    for s in range(S):
        best = 0
        for a in range(1, A):
            if q[s, a] > q[s, best]:
                best = a
        pi[s, best] = 1.0
    return pi


def np_policy_iteration(
    P: np.ndarray, R: np.ndarray, gamma: float, max_iters: int = 1000
) -> np.ndarray:
    """Reference ``Q*`` by policy iteration until the greedy policy is stable."""
    pi = np_greedy(R)
    q = np_policy_q(P, R, gamma, pi)
    for _ in range(max_iters):
        new_pi = np_greedy(q)
        if np.array_equal(new_pi, pi):
            break
        pi = new_pi
        q = np_policy_q(P, R, gamma, pi)
    return q


# ----------------------------------------------------------------------------- M-VI reference loop

__all__ += ["numpy_mvi_sweeps"]


def numpy_mvi_sweeps(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    q0: np.ndarray,
    *,
    alpha: float,
    tau: float,
    l0: float,
    num_sweeps: int,
    noise_std: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact M-VI(alpha, tau) sweeps in plain NumPy (reference and benchmark loop).

    Per seed and sweep (Vieillard et al. 2020, eq. 4, Shannon entropy ``q = 1``):

    ``tau ln pi = q - tau logsumexp(q / tau)``, ``pi = softmax(q / tau)``,
    ``v = <pi, q - tau ln pi>``,
    ``q <- R + alpha clip(tau ln pi, l0, 0) + gamma P v + noise_std * eps``,

    vectorised over states and actions (one ``[S*A, S] @ [S]`` product) with a
    Python loop over seeds and sweeps, in ``P``'s dtype. Also returns the
    residual ``max |T q - q|`` of every sweep, as ``jaxrl.agents.mvi_tabular.update``.
    ``jaxrl bench`` times it against the jax sweeps (``jaxrl.scripts.bench_tabular``).

    Args:
      P: ``[S, A, S]`` transition probabilities.
      R: ``[S, A]`` rewards.
      gamma: discount.
      q0: ``[N, S, A]`` initial tables, one per seed.
      alpha: Munchausen scaling.
      tau: temperature, ``> 0``.
      l0: lower clip of the scaled log-policy (``-inf``: none).
      num_sweeps: sweeps per seed.
      noise_std: std of the Gaussian noise added after every backup.
      rng: NumPy generator for the noise (default: ``default_rng(0)``).

    Returns:
      ``(q[N, S, A], residuals[N, num_sweeps])``.
    """
    if not tau > 0:
        raise ValueError(f"numpy_mvi_sweeps needs tau > 0, got {tau!r}")
    num_states, num_actions = R.shape
    dtype = P.dtype
    p_flat = np.ascontiguousarray(P.reshape(num_states * num_actions, num_states))
    rewards = R.astype(dtype)
    rng = np.random.default_rng(0) if rng is None else rng
    out = np.empty((len(q0), num_states, num_actions), dtype)
    residuals = np.empty((len(q0), num_sweeps), dtype)
    scale = dtype.type(noise_std)
    for n in range(len(q0)):
        q = np.array(q0[n], dtype)
        for k in range(num_sweeps):
            z = q / dtype.type(tau)
            top = z.max(axis=1, keepdims=True)
            lse = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
            log_pi = q - dtype.type(tau) * lse  # tau ln pi   [S, A]
            pi = np.exp(z - lse)
            v = (pi * (q - log_pi)).sum(axis=1)  # [S]
            target = (
                rewards
                + dtype.type(alpha) * np.clip(log_pi, l0, 0.0)
                + dtype.type(gamma) * (p_flat @ v).reshape(num_states, num_actions)
            )
            residuals[n, k] = np.abs(target - q).max()
            noise = rng.standard_normal((num_states, num_actions), dtype=dtype)
            q = target + scale * noise
        out[n] = q
    return out, residuals


__all__ += ["numpy_mvi_sweeps_batched"]

NUMPY_BISECTION_ITERS = 60
"""Bisection steps of :func:`numpy_mvi_sweeps_batched`'s normaliser at ``q`` not in ``{1, 2}``."""


def _np_policy_and_scaled_log(
    q_table: np.ndarray, tau: float, q: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(pi, tau ln_q pi)`` of the q-exponential policy over the last axis (NumPy).

    ``q = 1``: softmax via log-sum-exp; ``q = 2``: sparsemax threshold (sort and
    cumulative sum); otherwise :data:`NUMPY_BISECTION_ITERS` float64 bisection
    steps on ``[0, -ln_q(1/A)]`` of the shifted scores. Computed in
    ``q_table``'s dtype except the bisection (float64).
    """
    dtype = q_table.dtype
    z = q_table / dtype.type(tau)
    zs = z - z.max(axis=-1, keepdims=True)
    if q == 1.0:
        lse = np.log(np.exp(zs).sum(axis=-1, keepdims=True))
        x = zs - lse  # ln pi
        pi = np.exp(x)
        return pi / pi.sum(axis=-1, keepdims=True), dtype.type(tau) * x
    qm1 = q - 1.0
    if q == 2.0:
        z_sorted = -np.sort(-zs, axis=-1)
        cumsum = np.cumsum(z_sorted, axis=-1)
        k = np.arange(1, zs.shape[-1] + 1, dtype=dtype)
        support = 1.0 + k * z_sorted > cumsum
        size = support.sum(axis=-1, keepdims=True)
        total = np.where(support, z_sorted, 0.0).sum(axis=-1, keepdims=True)
        psi = (1.0 + (total - 1.0) / size).astype(dtype)
    else:
        zs64 = zs.astype(np.float64)

        def exp_q(x: np.ndarray) -> np.ndarray:
            return np.maximum(1.0 + qm1 * x, 0.0) ** (1.0 / qm1)

        lo = np.zeros(zs.shape[:-1] + (1,))
        hi = np.full_like(lo, -((1.0 / zs.shape[-1]) ** qm1 - 1.0) / qm1)
        for _ in range(NUMPY_BISECTION_ITERS):
            mid = 0.5 * (lo + hi)
            above = exp_q(zs64 - mid).sum(axis=-1, keepdims=True) > 1.0
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        psi = (0.5 * (lo + hi)).astype(dtype)
    x = zs - psi
    pi = np.maximum(1.0 + dtype.type(qm1) * x, 0.0) ** dtype.type(1.0 / qm1)
    pi = pi / pi.sum(axis=-1, keepdims=True)
    return pi, dtype.type(tau) * np.maximum(x, dtype.type(-1.0 / qm1))


def numpy_mvi_sweeps_batched(
    P: np.ndarray,
    R: np.ndarray,
    gamma: float,
    q0: np.ndarray,
    *,
    alpha: float,
    tau: float,
    l0: float,
    num_sweeps: int,
    q: float = 1.0,
    noise_std: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact M-VI / MVI(q) sweeps in NumPy, vectorised over seeds (reference and benchmark).

    The same operator as ``jaxrl.agents.mvi_tabular.backup`` (Vieillard et al.
    2020, eq. 4; Zhu et al. 2023 for ``q > 1``), per sweep and for all seeds at once:

    ``pi = G_{tau,q}(q)``, ``l = tau ln_q pi``, ``v = <pi, q - l>``,
    ``q <- R + alpha clip(l, l0, 0) + gamma P v + noise_std * eps``,

    with ``G`` the softmax at ``q = 1``, sparsemax at ``q = 2`` and the
    q-exponential policy (bisection normaliser) otherwise. Unlike
    :func:`numpy_mvi_sweeps` there is no Python loop over seeds: the next-state
    values of all seeds are one ``[N, S] @ [S, S*A]`` product. The noise is one
    ``[N, S, A]`` draw per sweep (so noisy tables differ from
    :func:`numpy_mvi_sweeps`'s, which draws seed by seed). Computed in ``P``'s
    dtype; returns the residual ``max |T q - q|`` of every sweep and seed.

    Args:
      P: ``[S, A, S]`` transition probabilities.
      R: ``[S, A]`` rewards.
      gamma: discount.
      q0: ``[N, S, A]`` initial tables, one per seed.
      alpha: Munchausen scaling.
      tau: temperature, ``> 0``.
      l0: lower clip of the scaled log-policy (``-inf``: none).
      num_sweeps: sweeps.
      q: entropic index ``>= 1`` (1: M-VI).
      noise_std: std of the Gaussian noise added after every backup.
      rng: NumPy generator for the noise (default: ``default_rng(0)``).

    Returns:
      ``(q[N, S, A], residuals[N, num_sweeps])``.
    """
    if not tau > 0:
        raise ValueError(f"numpy_mvi_sweeps_batched needs tau > 0, got {tau!r}")
    if not q >= 1.0:
        raise ValueError(f"numpy_mvi_sweeps_batched needs q >= 1, got {q!r}")
    num_states, num_actions = R.shape
    dtype = P.dtype
    p_flat_t = np.ascontiguousarray(P.reshape(num_states * num_actions, num_states).T)
    rewards = R.astype(dtype)
    rng = np.random.default_rng(0) if rng is None else rng
    table = np.array(q0, dtype)
    residuals = np.empty((len(table), num_sweeps), dtype)
    scale = dtype.type(noise_std)
    for k in range(num_sweeps):
        pi, log_pi = _np_policy_and_scaled_log(table, tau, q)
        v = (pi * (table - log_pi)).sum(axis=-1)  # [N, S]
        target = (
            rewards
            + dtype.type(alpha) * np.clip(log_pi, l0, 0.0)
            + dtype.type(gamma) * (v @ p_flat_t).reshape(table.shape)
        )
        residuals[:, k] = np.abs(target - table).max(axis=(1, 2))
        # Drawn even at noise_std = 0, as the jax update does (same work per sweep).
        table = target + scale * rng.standard_normal(table.shape, dtype=dtype)
    return table, residuals
