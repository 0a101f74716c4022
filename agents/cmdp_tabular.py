r"""Exact primal-dual dynamics on tabular constrained MDPs: Lagrangian GDA and ReLOAD.

The problem is :math:`\max_\pi J_r(\pi)` subject to :math:`J_c(\pi) \le b` on a
:class:`jaxrl.mdp.FiniteMDP` with a cost table ``C`` (``J_x(pi) = E[sum_t gamma^t
x(s_t, a_t)]``, ``s_0 ~ mu0``), relaxed to the saddle problem
:math:`\max_\pi \min_{\lambda \ge 0} L(\pi, \lambda)` with
:math:`L(\pi, \lambda) = J_r(\pi) - \lambda (J_c(\pi) - b)`
(:mod:`jaxrl.ops.lagrangian`). The policy is a softmax of per-state logits
``theta[S, A]``; every gradient is exact (policy evaluation by one linear solve).
One ``update`` is one primal-dual step:

* **"gda"** (Lagrangian gradient descent-ascent): the natural policy gradient
  (NPG) step for the softmax parameterisation (Agarwal et al., JMLR 2021,
  Lemma 15) on the penalised reward and a projected multiplier step,

  .. math::
      \theta_{k+1} = \theta_k + \eta_\pi\, Q^{\pi_k}_{r - \lambda_k c}, \qquad
      \lambda_{k+1} = [\lambda_k + \eta_\lambda (J_c(\pi_k) - b)]_0^{\lambda_{max}};

  (``eta_pi`` absorbs the ``1 / (1 - gamma)`` of Agarwal et al.; NPG with
  ``Q`` or the advantage ``A = Q - V`` is the same step, since softmax ignores
  per-state shifts). The averaged iterates converge to the saddle point; the
  iterates themselves keep cycling between "satisfy the constraint" and
  "maximise the reward".
* **"reload"** (ReLOAD, Moskovitz et al., ICML 2023): the same steps with both
  gradients replaced by their optimistic extrapolations :math:`2 g_k - g_{k-1}`
  (:func:`jaxrl.ops.lagrangian.optimistic_gradient`),

  .. math::
      \theta_{k+1} = \theta_k + \eta_\pi (2 Q^{\pi_k}_{r - \lambda_k c}
          - Q^{\pi_{k-1}}_{r - \lambda_{k-1} c}), \qquad
      \lambda_{k+1} = [\lambda_k + \eta_\lambda (2 (J_c(\pi_k) - b)
          - (J_c(\pi_{k-1}) - b))]_0^{\lambda_{max}},

  with :math:`g_{-1} = g_0` (the first step is a GDA step), which converges in
  the last iterate for small step sizes.

Logits are stored as log-probabilities (shifted by their log-sum-exp after every
step; softmax is shift invariant, so the dynamics are unchanged and float32
stays accurate over long runs). ``noise_std > 0`` adds Gaussian noise to both
gradients (a model of estimated gradients).

**The budget** ``b`` is :attr:`Config.budget`, a traced hyperparameter (a grid of
budgets is one ``vmap``). The environment only supplies the cost table
(``env_params.mdp.C``, see :func:`envs.finite_mdp.random_cmdp` and
:func:`envs.finite_mdp.hazard_gridworld`); :func:`budget_range` gives the
interesting range of budgets of an MDP. An infeasible budget (below the smallest
achievable cost) makes the multiplier grow without bound (up to
``lambda_max``).

Metrics of step ``k`` (``train`` stacks them to ``[num_chunks * iters_per_chunk]``)
describe the iterate :math:`(\pi_k, \lambda_k)` *before* the step (they come from
the same solve as its gradients):

* ``"cmdp/j_r"``, ``"cmdp/j_c"``: :math:`J_r(\pi_k)`, :math:`J_c(\pi_k)`;
* ``"lagrange/lambda"``: :math:`\lambda_k`; ``"lagrange/lagrangian"``:
  :math:`L(\pi_k, \lambda_k)`; the violation is ``"cmdp/j_c"`` minus the budget
  (not a metric of its own: a difference of two values of order
  ``1 / (1 - gamma)``, its float32 rounding would differ between a jitted chunk
  and a whole jitted run by more than the checkpoint/resume tolerance);
* ``"cmdp/j_r_avg"``, ``"cmdp/j_c_avg"``, ``"lagrange/lambda_avg"``: the same for
  the running averages over iterates ``0..k``; the averaged policy is the one
  whose occupancy measure is the average occupancy (:func:`average_policy`), so
  its values are the averages of the values;
* with ``oracle_bisections > 0`` (e.g. 40), distances to the exact optimum
  ``(J_r*, lambda*)`` of :func:`solve_dual` (computed once per chunk, no scipy):
  ``"cmdp/reward_gap"`` (``J_r* - J_r(pi_k)``; negative when ``pi_k`` is
  infeasible), ``"cmdp/reward_gap_avg"``, ``"lagrange/lambda_error"``
  (``|lambda_k - lambda*|``) and ``"lagrange/lambda_error_avg"``. They are NaN
  for an infeasible budget. Off by default: they cost a few hundred policy
  evaluations per chunk, and as differences of two values of order
  ``1 / (1 - gamma)`` they carry float32 rounding (about ``1e-5``) that differs
  between a jitted chunk and a whole jitted run.

Step sizes act on values of order ``max|R| / (1 - gamma)``: with rewards and costs
in ``[0, 1]`` and ``gamma = 0.9``, ReLOAD's last iterate converges on small random
CMDPs for ``eta_pi = eta_lambda <= 1`` (in a few thousand steps at 0.5, tens of
thousands at 0.1) and starts to oscillate or diverge around 2 to 5, while GDA's
iterates keep cycling at every step size (tests/agents/test_cmdp_tabular.py).

Plain functions for scripts and tests: :func:`evaluate` (values, occupancy),
:func:`primal_dual` (a whole run returning every iterate), :func:`policy`,
:func:`average_policy`, :func:`solve_dual` (exact optimum by the dual),
:func:`budget_range`. ``scripts/cmdp_lp.py`` solves the occupancy-measure linear
program exactly (scipy) for reference.

Examples:
  >>> from envs.finite_mdp import make_random_cmdp_env
  >>> env, params = make_random_cmdp_env(seed=1, num_states=4, num_actions=2)
  >>> b_min, b_max = budget_range(params.mdp)  # the constraint binds in between
  >>> config = Config(method="reload", budget=float(b_min + b_max) / 2,
  ...                 iters_per_chunk=3000, oracle_bisections=40)
  >>> state, metrics = jax.jit(make_train(config, env, params))(jax.random.key(0))
  >>> metrics["cmdp/j_r"].shape
  (3000,)
  >>> bool(metrics["lagrange/lambda_error"][-1] < 1e-3)
  True
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs import finite_mdp
from jaxrl import config as config_lib
from jaxrl.config import static
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import exact_dp, lagrangian
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics, PRNGKey

__all__ = [
    "METHODS",
    "Config",
    "Params",
    "State",
    "Evaluation",
    "init",
    "init_state",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "policy",
    "average_policy",
    "evaluate",
    "primal_dual",
    "solve_dual",
    "budget_range",
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
      budget: b, the cost budget (finite).
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
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        config_lib.check_range("eta_pi", self.eta_pi, 0.0, math.inf)
        config_lib.check_range("eta_lambda", self.eta_lambda, 0.0, math.inf)
        config_lib.check_range(
            "budget",
            self.budget,
            -math.inf,
            math.inf,
            low_inclusive=False,
            high_inclusive=False,
        )
        config_lib.check_positive("lambda_max", self.lambda_max)
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


@struct.dataclass
class Evaluation:
    """Exact values of one policy (see :func:`evaluate`).

    Attributes:
      q_r: ``[S, A]`` reward action values ``Q^pi_r``.
      q_c: ``[S, A]`` cost action values ``Q^pi_c``.
      occupancy: ``[S, A]`` normalised discounted occupancy
        ``d(s, a) = (1 - gamma) sum_t gamma^t Pr(s_t = s, a_t = a)`` (sums to 1).
      j_r: ``[]`` ``J_r(pi) = <d, R> / (1 - gamma)``.
      j_c: ``[]`` ``J_c(pi) = <d, C> / (1 - gamma)``.
    """

    q_r: Array
    q_c: Array
    occupancy: Array
    j_r: Array
    j_c: Array


# ====================================================================== exact math


def _check_cost(mdp: FiniteMDP, user: str = "cmdp_tabular") -> None:
    if mdp.C is None:
        raise ConfigError(
            f"{user} needs a constrained MDP: the FiniteMDP has no cost table C "
            "(build one with envs.finite_mdp.random_cmdp / hazard_gridworld or "
            "jaxrl.mdp.make_mdp(..., C=...))"
        )


def evaluate(mdp: FiniteMDP, pi: ArrayLike) -> Evaluation:
    """Evaluate a policy's reward and cost exactly with ONE linear solve.

    Computes ``M = (I - gamma P_pi)^{-1}`` by a single solve (one batched solve
    per XLA computation, see docs/decisions.md D4), then ``V_x = M x_pi``,
    ``Q_x = x + gamma P V_x`` for ``x in {R, C}``, and the state occupancy
    ``d(s) = (1 - gamma) (mu0^T M)(s)``, ``d(s, a) = d(s) pi(a|s)``.

    Args:
      mdp: the MDP (with a cost table ``C``).
      pi: ``[S, A]`` policy.

    Returns:
      The :class:`Evaluation`.

    Raises:
      ConfigError: if ``mdp.C`` is None.
    """
    _check_cost(mdp, "evaluate")
    pi = jnp.asarray(pi, mdp.P.dtype)
    P_pi = exact_dp.policy_transition(mdp, pi)
    eye = jnp.eye(mdp.num_states, dtype=P_pi.dtype)
    inverse = jnp.linalg.solve(eye - mdp.gamma * P_pi, eye)  # [S, S]
    rewards = jnp.stack([mdp.R, mdp.C], axis=-1)  # [S, A, 2]
    v = inverse @ jnp.einsum("sa,sak->sk", pi, rewards)  # [S, 2]
    q = rewards + mdp.gamma * jnp.einsum("sat,tk->sak", mdp.P, v)
    d_s = (1.0 - mdp.gamma) * (mdp.mu0 @ inverse)
    j = mdp.mu0 @ v
    return Evaluation(
        q_r=q[..., 0],
        q_c=q[..., 1],
        occupancy=d_s[:, None] * pi,
        j_r=j[0],
        j_c=j[1],
    )


def policy(params: Params) -> Array:
    """Return the softmax policy ``pi[S, A]`` of the logits."""
    return jax.nn.softmax(params.logits, axis=-1)


def average_policy(state: State) -> Array:
    """Return the policy of the average occupancy measure, ``[S, A]``.

    ``pi_bar(a|s) = d_bar(s, a) / sum_b d_bar(s, b)``: the Markov policy whose
    occupancy is the average ``d_bar`` of the iterates' occupancies, so its
    values are the averages of their values (``J`` is linear in ``d``). States
    the iterates never visit get the uniform policy; before the first step the
    current policy is returned.
    """
    d = state.avg_occupancy
    mass = jnp.sum(d, axis=-1, keepdims=True)
    uniform = jnp.full_like(d, 1.0 / d.shape[-1])
    avg = jnp.where(mass > 0, d / jnp.where(mass > 0, mass, 1.0), uniform)
    return jnp.where(state.step > 0, avg, policy(state.params))


def _normalise(logits: Array) -> Array:
    return logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)


# ==================================================================== agent API


def init_state(mdp: FiniteMDP, key: PRNGKey, config: Config) -> State:
    """Return the initial state for ``mdp`` (see :func:`init`)."""
    key, k_init = jax.random.split(key)
    dtype = mdp.P.dtype
    noise = jax.random.normal(k_init, mdp.R.shape, dtype)
    logits = _normalise(jnp.asarray(config.init_noise, dtype) * noise)
    lam = jnp.asarray(config.lambda0, dtype)
    zero = jnp.zeros((), dtype)
    return State(
        params=Params(logits=logits, lam=lam),
        prev_grad=Params(logits=jnp.zeros_like(logits), lam=zero),
        avg_occupancy=jnp.zeros_like(logits),
        avg_lam=zero,
        key=key,
        step=jnp.asarray(0, jnp.int32),
    )


def init(key: PRNGKey, env: object, env_params: ArrayTree, config: Config) -> State:
    """Return the initial state: logits ``init_noise * N(0, I)``, ``lambda0``, step 0.

    Args:
      key: typed key (one split for the initial logits; the rest is kept).
      env: the environment (unused; sizes come from ``env_params.mdp``).
      env_params: params holding the constrained ``FiniteMDP`` in ``.mdp``.
      config: the config.

    Returns:
      The :class:`State`.
    """
    del env
    mdp = finite_mdp.mdp_from_params(env_params, "cmdp_tabular")
    _check_cost(mdp)
    return init_state(mdp, key, config)


def act(
    params: Params, obs: Array, key: PRNGKey, config: Config, *, greedy: bool = False
) -> Array:
    """Pick an action for one observation from the softmax policy of ``params``.

    Args:
      params: the :class:`Params` (``logits[S, A]``; the multiplier is unused).
      obs: ``[S]`` one-hot or ``[]`` state index (unbatched; vmap for a batch).
      key: typed key.
      config: the config (unused).
      greedy: take the most probable action (ties towards the lowest index)
        instead of sampling (static).

    Returns:
      ``[]`` int32 action.
    """
    del config
    obs = jnp.asarray(obs)
    logits = params.logits
    row = logits[obs] if obs.ndim == 0 else obs.astype(logits.dtype) @ logits
    if greedy:
        return jnp.argmax(row).astype(jnp.int32)
    return jax.random.categorical(key, row).astype(jnp.int32)


def loss(
    params: Params, target_params: Params, batch: FiniteMDP, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the saddle objective ``-L(pi_theta, lambda)`` (exact) and metrics.

    ``-L = -J_r(pi_theta) + lambda (J_c(pi_theta) - b)`` is differentiable in both
    players (through the linear solve): gradient *descent* in ``logits`` ascends
    the Lagrangian (its gradient is the exact policy gradient
    :math:`-\frac{1}{1-\gamma} d^\pi(s) \pi(a|s) A^\pi_{r-\lambda c}(s, a)`),
    gradient *ascent* in ``lam`` follows ``J_c - b``. :func:`update` takes the
    natural-gradient steps instead.

    Args:
      params: the :class:`Params`.
      target_params: unused (the objective has no target).
      batch: the constrained MDP.
      config: the config (``budget``).

    Returns:
      ``(-L, {"cmdp/j_r", "cmdp/j_c", "lagrange/lagrangian"})``.
    """
    del target_params
    ev = evaluate(batch, policy(params))
    value = lagrangian.lagrangian(ev.j_r, ev.j_c, params.lam, config.budget)
    return -value, {
        "cmdp/j_r": ev.j_r,
        "cmdp/j_c": ev.j_c,
        "lagrange/lagrangian": value,
    }


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One primal-dual step (GDA or ReLOAD, per ``config.method``) with exact gradients.

    Args:
      state: the agent state at iterate ``k``.
      data: the constrained MDP.
      config: the config.

    Returns:
      ``(state_{k+1}, metrics of iterate k)`` (see the module docstring).
    """
    _check_cost(data)
    theta, lam = state.params.logits, state.params.lam
    ev = evaluate(data, jax.nn.softmax(theta, axis=-1))

    # GRADIENTS: NPG direction Q^pi_{r - lambda c} and the violation J_c - b.
    violation = ev.j_c - config.budget
    grad = Params(
        logits=lagrangian.lagrangian_reward(ev.q_r, ev.q_c, lam), lam=violation
    )
    key, k_q, k_g = jax.random.split(state.key, 3)
    sigma = jnp.asarray(config.noise_std, theta.dtype)
    grad = Params(
        logits=grad.logits + sigma * jax.random.normal(k_q, theta.shape, theta.dtype),
        lam=grad.lam + sigma * jax.random.normal(k_g, (), theta.dtype),
    )
    if config.method == "reload":
        first = state.step == 0  # g_{-1} = g_0: the first step is a GDA step
        prev = jax.tree.map(lambda g, p: jnp.where(first, g, p), grad, state.prev_grad)
        direction = lagrangian.optimistic_gradient(grad, prev)
    else:
        direction = grad

    # STEP: NPG ascent on the logits, projected step on the multiplier.
    new_params = Params(
        logits=_normalise(theta + config.eta_pi * direction.logits),
        lam=lagrangian.projected_multiplier_update(
            lam, direction.lam, config.eta_lambda, config.lambda_max
        ).astype(lam.dtype),
    )

    # AVERAGES over iterates 0..k (occupancy measures, multipliers).
    n = (state.step + 1).astype(theta.dtype)
    avg_occupancy = state.avg_occupancy + (ev.occupancy - state.avg_occupancy) / n
    avg_lam = state.avg_lam + (lam - state.avg_lam) / n
    one_minus_gamma = 1.0 - data.gamma
    metrics = {
        "cmdp/j_r": ev.j_r,
        "cmdp/j_c": ev.j_c,
        "lagrange/lambda": lam,
        "lagrange/lagrangian": lagrangian.lagrangian(
            ev.j_r, ev.j_c, lam, config.budget
        ),
        "cmdp/j_r_avg": jnp.sum(avg_occupancy * data.R) / one_minus_gamma,
        "cmdp/j_c_avg": jnp.sum(avg_occupancy * data.C) / one_minus_gamma,
        "lagrange/lambda_avg": avg_lam,
    }
    new_state = state.replace(
        params=new_params,
        prev_grad=grad,
        avg_occupancy=avg_occupancy,
        avg_lam=avg_lam,
        key=key,
        step=state.step + 1,
    )
    return new_state, metrics


def _step(
    state: State,
    _: None,
    *,
    mdp: FiniteMDP,
    config: Config,
    reference: tuple[Array, Array] | None,
) -> tuple[State, Metrics]:
    """Scan body of :func:`make_run`: one step plus the distances to the optimum."""
    state, metrics = update(state, mdp, config)
    if reference is None:
        return state, metrics
    j_star, lam_star = reference
    return state, {
        **metrics,
        "cmdp/reward_gap": j_star - metrics["cmdp/j_r"],
        "cmdp/reward_gap_avg": j_star - metrics["cmdp/j_r_avg"],
        "lagrange/lambda_error": jnp.abs(metrics["lagrange/lambda"] - lam_star),
        "lagrange/lambda_error_avg": jnp.abs(metrics["lagrange/lambda_avg"] - lam_star),
    }


def make_run(config: Config, env: object, env_params: ArrayTree):
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` steps.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the constrained MDP.

    Returns:
      ``run``; its metrics have shape ``[iters_per_chunk]``.

    Raises:
      ConfigError: on an invalid config or an MDP without costs.
    """
    config_lib.validate(config)
    mdp = finite_mdp.mdp_from_params(env_params, "cmdp_tabular")
    _check_cost(mdp)
    del env

    def run(state: State) -> tuple[State, Metrics]:
        reference = None
        if config.oracle_bisections > 0:
            # Computed before the scan and fed into its body, so the oracle's
            # solves never run concurrently with the steps' (docs D4).
            reference = solve_dual(
                mdp,
                config.budget,
                num_bisections=config.oracle_bisections,
                max_iters=config.oracle_iters,
            )
        body = functools.partial(_step, mdp=mdp, config=config, reference=reference)
        return jax.lax.scan(body, state, None, length=config.iters_per_chunk)

    return run


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` runs.

    Bitwise equal to calling :func:`init` and then ``make_run(...)`` chunk by
    chunk (the checkpoint/resume contract).

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the constrained MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    run = make_run(config, env, env_params)
    return chunked_train(
        lambda key: init(key, env, env_params, config), run, config.num_chunks
    )


# ============================================================== script functions


def _trace_step(state: State, _: None, *, mdp: FiniteMDP, config: Config):
    state, metrics = update(state, mdp, config)
    return state, (metrics, state.params)


def primal_dual(
    mdp: FiniteMDP, config: Config, key: PRNGKey, num_iters: int
) -> tuple[State, Metrics, Params]:
    """Run ``num_iters`` primal-dual steps on ``mdp`` and return every iterate.

    Jit-able (``num_iters`` static) and vmappable over MDPs, keys and traced
    config fields. ``config.num_chunks`` and ``iters_per_chunk`` are ignored.

    Args:
      mdp: the constrained MDP.
      config: the config.
      key: typed key (used only with ``init_noise`` or ``noise_std`` > 0).
      num_iters: static number of steps ``K``.

    Returns:
      ``(state_K, metrics, iterates)``: the final state, the ``[K]`` metrics of
      :func:`update` (iterates ``0..K-1``) and the :class:`Params` after every
      step, stacked ``[K, ...]`` (``iterates[-1]`` is ``state_K.params``).

    Raises:
      ConfigError: on an invalid config or an MDP without costs.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
      >>> config = Config(method="reload", budget=1.0, eta_pi=0.5, eta_lambda=0.5)
      >>> state, metrics, iterates = primal_dual(mdp, config, jax.random.key(0), 400)
      >>> np.round(policy(state.params), 3), round(float(state.params.lam), 3)
      (Array([[0.5, 0.5]], dtype=float32), 1.0)
    """
    config_lib.validate(config)
    _check_cost(mdp)
    state = init_state(mdp, key, config)
    body = functools.partial(_trace_step, mdp=mdp, config=config)
    state, (metrics, iterates) = jax.lax.scan(body, state, None, length=num_iters)
    return state, metrics, iterates


def _lagrangian_solution(
    mdp: FiniteMDP, lam: Array, max_iters: int
) -> tuple[Array, Array]:
    """Return ``(max_pi L(pi, lam) + lam b, J_c(pi_lam))`` minus the budget term.

    ``pi_lam`` is the greedy policy of ``Q*`` of the penalised reward
    ``R - lam C`` (policy iteration; ties towards the lowest action).
    """
    plain = mdp.replace(C=None)
    q = exact_dp.optimal_q(
        plain.replace(R=lagrangian.lagrangian_reward(mdp.R, mdp.C, lam)), max_iters
    )
    value = jnp.dot(mdp.mu0, jnp.max(q, axis=-1))  # J*_{r - lam c}
    j_c = exact_dp.performance(plain, exact_dp.greedy_policy(q), mdp.C)
    return value, j_c


def solve_dual(
    mdp: FiniteMDP,
    budget: ArrayLike,
    *,
    num_bisections: int = 40,
    max_iters: int = 100,
) -> tuple[Array, Array]:
    r"""Return the exact CMDP optimum ``(J_r*, lambda*)`` by minimising the dual.

    Strong duality holds for CMDPs (Altman 1999, Thm. 3.6), so
    :math:`J_r^*(b) = \min_{\lambda \ge 0} D(\lambda)` with the convex,
    piecewise-linear dual :math:`D(\lambda) = \max_\pi L(\pi, \lambda) =
    J^*_{r - \lambda c} + \lambda b`, whose subgradient at :math:`\lambda` is
    :math:`b - J_c(\pi_\lambda)` for an optimal policy :math:`\pi_\lambda` of the
    penalised reward. If :math:`J_c(\pi_0) \le b` the constraint is slack and
    :math:`\lambda^* = 0`; otherwise the bracket :math:`[0, \lambda_{hi}]` is
    found by doubling and :math:`\lambda^*` by ``num_bisections`` bisection
    steps on the sign of the subgradient (the upper end, which is feasible);
    ``J_r* = D(lambda*)``. Every step is
    one policy iteration (:func:`jaxrl.ops.exact_dp.optimal_q`), so this is a
    scipy-free, jit-able oracle (``scripts/cmdp_lp.py`` solves the primal LP).
    Infeasible budgets (no bracket within ``2^60``) give NaN.

    Args:
      mdp: the constrained MDP.
      budget: the budget ``b`` (may be traced).
      num_bisections: static number of bisection steps (precision
        ``lambda_hi / 2^num_bisections``).
      max_iters: static bound on policy-iteration steps per solve.

    Returns:
      ``(J_r*, lambda*)`` scalars.

    Raises:
      ConfigError: if ``mdp.C`` is None.

    Examples:
      >>> import numpy as np
      >>> from jaxrl.mdp import make_mdp
      >>> mdp = make_mdp(np.ones((1, 2, 1)), [[1.0, 0.0]], C=[[1.0, 0.0]], gamma=0.5)
      >>> j, lam = solve_dual(mdp, 1.0)
      >>> round(float(j), 4), round(float(lam), 4)
      (1.0, 1.0)
    """
    _check_cost(mdp, "solve_dual")
    dtype = mdp.P.dtype
    budget = jnp.asarray(budget, dtype)
    solve = functools.partial(_lagrangian_solution, mdp, max_iters=max_iters)

    def too_costly(lam: Array) -> Array:
        return solve(lam)[1] > budget

    # Every solve below depends on the previous one's result, so no two policy
    # evaluations can run concurrently (docs/decisions.md D4).
    # BRACKET: hi = 0 if the constraint is slack, else the first 2^i making it hold.
    def grow(carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        hi, i, _ = carry
        hi = jnp.where(hi > 0, 2.0 * hi, 1.0)
        return hi, i + 1, too_costly(hi)

    zero = jnp.asarray(0.0, dtype)
    hi, _, costly = jax.lax.while_loop(
        lambda c: jnp.logical_and(c[1] <= 60, c[2]),
        grow,
        (zero, jnp.asarray(0, jnp.int32), too_costly(zero)),
    )

    # BISECT on the sign of the subgradient b - J_c(pi_lambda).
    def bisect(_: int, bracket: tuple[Array, Array]) -> tuple[Array, Array]:
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        mid_costly = too_costly(mid)
        return jnp.where(mid_costly, mid, lo), jnp.where(mid_costly, hi, mid)

    _, lam = jax.lax.fori_loop(0, num_bisections, bisect, (zero, hi))
    value, _ = solve(lam)
    j_r = value + lam * budget
    nan = jnp.asarray(jnp.nan, dtype)
    return jnp.where(costly, nan, j_r), jnp.where(costly, nan, lam)


def budget_range(mdp: FiniteMDP, max_iters: int = 100) -> tuple[Array, Array]:
    """Return the range of budgets where the constraint matters, ``(b_min, b_max)``.

    ``b_min = min_pi J_c(pi)`` is the smallest feasible budget; ``b_max`` is
    ``J_c`` of the reward-optimal greedy policy (from policy iteration, ties
    broken towards the lowest action), above which the constraint is slack and
    the CMDP optimum is the unconstrained one. Budgets in ``(b_min, b_max)``
    give a binding constraint with ``lambda* > 0``. Both optimal-control problems
    run as one vmapped policy iteration (one batched solve per step).

    Args:
      mdp: the constrained MDP.
      max_iters: static bound on policy-iteration steps.

    Returns:
      ``(b_min, b_max)`` scalars.

    Raises:
      ConfigError: if ``mdp.C`` is None.
    """
    _check_cost(mdp, "budget_range")
    pair = jax.tree.map(lambda x: jnp.stack([x, x]), mdp.replace(C=None))
    pair = pair.replace(R=jnp.stack([mdp.R, -mdp.C]))
    q = jax.vmap(functools.partial(exact_dp.optimal_q, max_iters=max_iters))(pair)
    pis = jax.vmap(exact_dp.greedy_policy)(q)  # [2, S, A]: reward-opt, cost-min
    v_c = jax.vmap(exact_dp.policy_evaluation, in_axes=(None, 0, None))(
        mdp.replace(C=None), pis, mdp.C
    )
    j_c = v_c @ mdp.mu0
    return j_c[1], j_c[0]
