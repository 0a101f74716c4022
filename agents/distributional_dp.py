r"""Exact (tabular) stock-augmented distributional DP: risk-sensitive objectives.

Optimises a functional of the *return law* on any :class:`jaxrl.mdp.FiniteMDP`
by distributional value iteration or policy iteration on the MDP augmented with
the stock :math:`c_{t+1} = (c_t + r_t)/\gamma` (Pires et al., JMLR 2025, arXiv
2501.13028). The operators, the stock grid, the return projection and exactly
what is exact are documented in :mod:`jaxrl.ops.distributional_dp`; in short:
return laws ``laws[S, K, A, N]`` are categorical on ``return_support(v_min,
v_max, num_atoms)`` for every state, grid stock ``stock_grid(stock_min,
stock_max, num_stocks)`` and action; an off-grid next stock is randomly rounded
to its two grid neighbours (linear interpolation of the laws); the greedy rule is
:math:`\arg\max_b \mathbb{E} f(c + X_b)` on the stock-shifted law.

Objectives (static ``Config.objective``; numeric parameters traced):

* ``"mean"``: :math:`\mathbb{E} G`, ``f(x) = x`` (the stock is ignored: this is
  value iteration);
* ``"cvar"``: :math:`\mathrm{CVaR}_\alpha(G) = \max_{c_0}\big[-c_0 +
  \frac1\alpha \max_\pi \mathbb{E}\min(c_0 + G^\pi, 0)\big]`, the inner problem
  solved for every grid stock at once (``f = min_zero``), the outer maximum over
  the grid (:func:`jaxrl.ops.distributional_dp.cvar_objective`);
* ``"threshold"``: :math:`P(G \ge \text{threshold})`, ``f = indicator``,
  :math:`c_0 = -\text{threshold}`;
* ``"homeostatic"``: keep the return near ``set_point``:
  :math:`\mathbb{E} f(G - \text{set\_point})` with ``f = neg_abs`` (-|x|) or
  ``neg_square`` (-x^2) (``Config.utility``), :math:`c_0 = -\text{set\_point}`;
* ``"utility"``: any :data:`jaxrl.ops.distributional.UTILITY_NAMES` entry
  ``Config.utility`` with initial stock ``Config.stock0``.

Choose the stock grid to contain :math:`c_0` (``-threshold``, ``-set_point``,
``stock0``) and the stocks that matter; an off-grid :math:`c_0` is randomly
rounded too (the objective is still computed with the true :math:`c_0`).

The policy is *stock-Markov*: ``policy[S, K]`` over grid stocks. It is executed
with the grid stock index as memory (:func:`rollout`): ``act`` takes
``obs = (env_obs, stock_index)``, and after each reward the memory is updated by
:func:`next_stock_index` (random rounding of :math:`(c_k + r)/\gamma`). The laws
of :func:`evaluate` are the exact return laws of that execution (up to the return
projection).

Directly callable solvers (all jit-able, vmap-able over MDPs and traced config
fields): :func:`evaluate`, :func:`value_iteration`, :func:`policy_iteration`,
:func:`solve`, :func:`cvar_optimize`. The agent contract (one ``update`` is one VI
sweep or one PI step) reports per sweep:

* ``"dp/objective"``: the objective at :math:`\mu_0` of the greedy policy of the
  current laws (CVaR for ``"cvar"``: the CVaR of its return law started at the
  best grid :math:`c_0`);
* ``"dp/mean"``: the mean return of that policy from :math:`\mu_0` (and
  :math:`c_0`);
* ``"dp/stock0"``: the initial stock used (the maximiser for ``"cvar"``);
* ``"dp/bound"``: for ``"cvar"`` the Rockafellar-Uryasev value at that stock (a
  lower bound on ``"dp/objective"``); otherwise equal to ``"dp/objective"``;
* ``"dp/residual"``: the supremum Cramér distance between the laws before and
  after the update.

``gamma`` is the MDP's (``env_params.mdp.gamma``, in ``(0, 1]``).

Examples:
  >>> from envs.finite_mdp import make_chain_env
  >>> env, params = make_chain_env(num_states=4, gamma=0.5)
  >>> config = Config(objective="mean", num_atoms=11, v_min=0.0, v_max=2.0,
  ...                 num_stocks=3, stock_min=-1.0, stock_max=1.0, iters_per_chunk=30)
  >>> state, metrics = jax.jit(make_train(config, env, params))(jax.random.key(0))
  >>> round(float(metrics["dp/objective"][-1]), 4)  # V*(0) = 0.5^3 / (1 - 0.5)
  0.25
"""

from __future__ import annotations

import functools

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
from jaxrl.ops import distributional as dist
from jaxrl.ops import distributional_dp as ddp
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "OBJECTIVES",
    "check_objective",
    "inner_utility",
    "initial_stock",
    "METHODS",
    "Config",
    "State",
    "Solution",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "evaluate",
    "value_iteration",
    "policy_iteration",
    "solve",
    "cvar_optimize",
    "objective_metrics",
    "next_stock_index",
    "rollout",
]

OBJECTIVES = ("mean", "cvar", "threshold", "homeostatic", "utility")
"""Objective names of ``Config.objective``."""

METHODS = ("vi", "pi")
"""``Config.method``: distributional value iteration or policy iteration."""

_HOMEOSTATIC = ("neg_abs", "neg_square")
_INNER = {"mean": "identity", "cvar": "min_zero", "threshold": "indicator"}


def check_objective(objective: str, utility: str) -> None:
    """Raise :class:`ConfigError` for an unknown objective or a utility it cannot use.

    Shared by the exact agent and :mod:`agents.dist_dqn`.
    """
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}"
        )
    if objective == "homeostatic" and utility not in _HOMEOSTATIC:
        raise ConfigError(
            f"utility must be one of {', '.join(_HOMEOSTATIC)} for the "
            f"homeostatic objective, got {utility!r}"
        )
    if objective == "utility" and utility not in dist.UTILITY_NAMES:
        raise ConfigError(
            f"utility must be one of {', '.join(dist.UTILITY_NAMES)}, got {utility!r}"
        )


def inner_utility(objective: str, utility: str) -> str:
    """Return the utility ``f`` of the objective's inner expected-utility problem."""
    return _INNER.get(objective, utility)


def initial_stock(config: object, dtype: object = None) -> Array:
    """Return the objective's ``c0`` (``"mean"``/``"cvar"``: 0; CVaR searches it).

    ``config`` needs the fields ``objective``, ``threshold``, ``set_point`` and
    ``stock0`` (this module's or :mod:`agents.dist_dqn`'s config).
    """
    if config.objective == "threshold":
        return -jnp.asarray(config.threshold, dtype)
    if config.objective == "homeostatic":
        return -jnp.asarray(config.set_point, dtype)
    if config.objective == "utility":
        return jnp.asarray(config.stock0, dtype)
    return jnp.asarray(0.0, dtype)


@struct.dataclass
class Config:
    """Configuration of stock-augmented distributional DP.

    Attributes:
      objective: static, one of :data:`OBJECTIVES`.
      utility: static utility of ``"homeostatic"`` (``neg_abs`` or
        ``neg_square``) and ``"utility"`` (any name in
        :data:`jaxrl.ops.distributional.UTILITY_NAMES`); unused otherwise.
      method: static, ``"vi"`` (one update = one sweep) or ``"pi"`` (one
        update = ``eval_iters`` evaluation sweeps + one greedy improvement).
      num_atoms: static ``N >= 2`` return atoms.
      num_stocks: static ``K >= 2`` grid stocks.
      num_chunks: static number of chunks in a run.
      iters_per_chunk: static updates per chunk.
      eval_iters: static sweeps per policy evaluation (``"pi"``, and the final
        evaluation of :func:`solve`).
      v_min: smallest return atom (traced).
      v_max: largest return atom (traced).
      stock_min: smallest grid stock (traced).
      stock_max: largest grid stock (traced).
      alpha: alpha, CVaR level in ``(0, 1]`` (``"cvar"``; traced).
      threshold: return threshold b of ``"threshold"`` (traced); c0 = -b.
      set_point: target return of ``"homeostatic"`` (traced); c0 = -set_point.
      stock0: c0, initial stock of ``"utility"`` (traced).
      init_noise: weight in ``[0, 1]`` of a random (Dirichlet(1)) law mixed into
        the initial delta_0 laws (traced; 0 gives a deterministic agent).
      epsilon: epsilon, exploration rate of ``act(..., greedy=False)`` (traced).
    """

    objective: str = static(default="mean")
    utility: str = static(default="neg_abs")
    method: str = static(default="vi")
    num_atoms: int = static(default=51)
    num_stocks: int = static(default=41)
    num_chunks: int = static(default=1)
    iters_per_chunk: int = static(default=100)
    eval_iters: int = static(default=50)
    v_min: float = -10.0
    v_max: float = 10.0
    stock_min: float = -10.0
    stock_max: float = 10.0
    alpha: float = 0.1  # alpha
    threshold: float = 0.0
    set_point: float = 0.0
    stock0: float = 0.0  # c_0
    init_noise: float = 0.0
    epsilon: float = 0.0  # epsilon

    @property
    def num_iters(self) -> int:
        """Total updates of a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    @property
    def inner_utility(self) -> str:
        """The utility ``f`` of the (inner) expected-utility problem (static)."""
        return inner_utility(self.objective, self.utility)

    @property
    def support(self) -> Array:
        """``[N]`` the return support (:func:`ddp.return_support`)."""
        return ddp.return_support(self.v_min, self.v_max, self.num_atoms)

    @property
    def stocks(self) -> Array:
        """``[K]`` the stock grid (:func:`ddp.stock_grid`)."""
        return ddp.stock_grid(self.stock_min, self.stock_max, self.num_stocks)

    @property
    def initial_stock(self) -> Array:
        """``[]`` c0 of the objective (``"cvar"``: 0, the search is over the grid)."""
        return initial_stock(self)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        check_objective(self.objective, self.utility)
        if self.method not in METHODS:
            raise ConfigError(
                f"method must be one of {', '.join(METHODS)}, got {self.method!r}"
            )
        for name, low in (
            ("num_atoms", 2),
            ("num_stocks", 2),
            ("num_chunks", 1),
            ("iters_per_chunk", 1),
            ("eval_iters", 1),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        config_lib.check_range("alpha", self.alpha, 0.0, 1.0, low_inclusive=False)
        config_lib.check_range("init_noise", self.init_noise, 0.0, 1.0)
        config_lib.check_range("epsilon", self.epsilon, 0.0, 1.0)
        for name in ("threshold", "set_point", "stock0"):
            config_lib.check_range(name, getattr(self, name))  # finite, not NaN
        _check_order(self, "v_min", "v_max")
        _check_order(self, "stock_min", "stock_max")


def _check_order(config: Config, low: str, high: str) -> None:
    lo, hi = getattr(config, low), getattr(config, high)
    config_lib.check_range(low, lo)
    config_lib.check_range(high, hi)
    if config_lib.is_concrete(lo) and config_lib.is_concrete(hi):
        if not np.all(np.asarray(lo) < np.asarray(hi)):
            raise ConfigError(f"{low} must be < {high}, got {lo} and {hi}")


@struct.dataclass
class State:
    """Agent state.

    Attributes:
      laws: ``[S, K, A, N]`` categorical return laws.
      policy: ``[S, K]`` int32 stock-Markov policy (greedy w.r.t. ``laws``
        for ``"vi"``; the next policy to evaluate for ``"pi"``).
      key: typed key (split once by ``init``; updates are deterministic).
      step: ``[]`` int32 number of updates done.
    """

    laws: Array
    policy: Array
    key: PRNGKey
    step: Array

    @property
    def params(self) -> dict[str, Array]:
        """``{"laws": laws, "policy": policy}``, what ``act`` takes as ``params``."""
        return {"laws": self.laws, "policy": self.policy}


@struct.dataclass
class Solution:
    """Result of :func:`solve` / :func:`cvar_optimize`.

    Attributes:
      objective: ``[]`` objective of ``policy`` at ``mu0`` started at ``stock0``
        (``"cvar"``: CVaR_alpha of its return law).
      bound: ``[]`` for ``"cvar"`` the Rockafellar-Uryasev value at ``stock0``
        (a lower bound on ``objective``, equal to it when exact); otherwise
        ``objective``.
      stock0: ``[]`` the initial stock c0 (``"cvar"``: the maximising grid stock).
      mean: ``[]`` mean return of ``policy`` from ``mu0`` and ``stock0``.
      law: ``[N]`` the law of the return G (stock not added).
      policy: ``[S, K]`` int32 stock-Markov policy.
      laws: ``[S, K, A, N]`` its return laws.
    """

    objective: Array
    bound: Array
    stock0: Array
    mean: Array
    law: Array
    policy: Array
    laws: Array


# ------------------------------------------------------------------------- solvers


def _check_gamma(mdp: FiniteMDP) -> None:
    config_lib.check_range("gamma", mdp.gamma, 0.0, 1.0, low_inclusive=False)


def evaluate(
    mdp: FiniteMDP, policy: Array, config: Config, num_iters: int | None = None
) -> Array:
    """Return the laws ``[S, K, A, N]`` of a stock-Markov (or Markov) policy.

    See :func:`jaxrl.ops.distributional_dp.distributional_policy_evaluation`.

    Args:
      mdp: the MDP.
      policy: ``[S, K]`` int, ``[S, K, A]`` or ``[S, A]`` probabilities.
      config: the config (grids).
      num_iters: static sweeps (default ``config.eval_iters``).

    Returns:
      ``[S, K, A, N]`` laws, starting from delta_0.
    """
    _check_gamma(mdp)
    n = config.eval_iters if num_iters is None else num_iters
    return ddp.distributional_policy_evaluation(
        mdp, policy, config.stocks, config.support, n
    )


def value_iteration(
    mdp: FiniteMDP, config: Config, laws0: Array | None = None
) -> tuple[Array, Array]:
    """Run ``config.num_iters`` sweeps of distributional VI for the objective's ``f``.

    Args:
      mdp: the MDP.
      config: the config (``inner_utility``, grids, ``num_iters``).
      laws0: initial laws (default delta_0).

    Returns:
      ``(laws [S, K, A, N], policy [S, K] int32)``.
    """
    _check_gamma(mdp)
    return ddp.distributional_value_iteration(
        mdp,
        config.stocks,
        config.support,
        config.inner_utility,
        config.num_iters,
        laws0,
    )


def policy_iteration(
    mdp: FiniteMDP, config: Config, laws0: Array | None = None
) -> tuple[Array, Array]:
    """Run ``config.num_iters`` steps of distributional PI (``eval_iters`` sweeps each).

    Args:
      mdp: the MDP.
      config: the config.
      laws0: initial laws (default delta_0).

    Returns:
      ``(laws, policy)``: the final policy and its evaluated laws.
    """
    _check_gamma(mdp)
    return ddp.distributional_policy_iteration(
        mdp,
        config.stocks,
        config.support,
        config.inner_utility,
        config.num_iters,
        config.eval_iters,
        eta0=laws0,
    )


def objective_metrics(
    mdp: FiniteMDP, laws: Array, policy: Array, config: Config
) -> Metrics:
    """Return the objective, mean and initial stock of ``policy`` at ``mu0``.

    Args:
      mdp: the MDP.
      laws: ``[S, K, A, N]`` laws (used as the policy's laws).
      policy: ``[S, K]`` int32 policy.
      config: the config.

    Returns:
      ``{"dp/objective", "dp/mean", "dp/stock0", "dp/bound"}`` scalars.
    """
    stocks, support = (
        config.stocks.astype(laws.dtype),
        config.support.astype(laws.dtype),
    )
    if config.objective == "cvar":
        ru = ddp.cvar_objective(mdp, laws, policy, stocks, support, config.alpha)
        best = jnp.argmax(ru)
        stock0, bound = stocks[best], ru[best]
        law = ddp.initial_return_law(mdp, laws, policy, stocks, stock0)
        objective = dist.cvar(support, law, jnp.asarray(config.alpha, laws.dtype))
    else:
        stock0 = jnp.asarray(config.initial_stock, laws.dtype)
        law = ddp.initial_return_law(mdp, laws, policy, stocks, stock0)
        if config.inner_utility == "identity":
            objective = stock0 + jnp.sum(law * support)
        else:
            objective = dist.expected_utility(
                stock0 + support, law, config.inner_utility
            )
        bound = objective
    return {
        "dp/objective": objective,
        "dp/mean": jnp.sum(law * support),
        "dp/stock0": stock0,
        "dp/bound": bound,
    }


def solve(mdp: FiniteMDP, config: Config) -> Solution:
    """Optimise ``config.objective``: VI or PI, then an exact-up-to-sweeps evaluation.

    Runs :func:`value_iteration` or :func:`policy_iteration` (``config.method``),
    re-evaluates the greedy policy for ``config.eval_iters`` sweeps
    (warm-started) so that ``laws`` are the returned policy's own laws, and
    computes the objective (for ``"cvar"`` the outer search over grid stocks).

    Args:
      mdp: the MDP.
      config: the config.

    Returns:
      The :class:`Solution`.
    """
    config_lib.validate(config)
    if config.method == "vi":
        laws, policy = value_iteration(mdp, config)
    else:
        laws, policy = policy_iteration(mdp, config)
    laws = ddp.distributional_policy_evaluation(
        mdp, policy, config.stocks, config.support, config.eval_iters, laws
    )
    m = objective_metrics(mdp, laws, policy, config)
    law = ddp.initial_return_law(mdp, laws, policy, config.stocks, m["dp/stock0"])
    return Solution(
        objective=m["dp/objective"],
        bound=m["dp/bound"],
        stock0=m["dp/stock0"],
        mean=m["dp/mean"],
        law=law,
        policy=policy,
        laws=laws,
    )


def cvar_optimize(mdp: FiniteMDP, config: Config) -> Solution:
    r"""Maximise :math:`\mathrm{CVaR}_\alpha(G)` over history-dependent policies.

    :func:`solve` with ``objective="cvar"`` (the other fields of ``config`` kept):
    the inner problem :math:`\max_\pi \mathbb{E}\min(c + G^\pi, 0)` is solved at
    every grid stock by one DP run, and
    :math:`c_0^* = \arg\max_{c_k} [-c_k + \frac1\alpha \sum_s \mu_0(s) V(s, c_k)]`.

    Args:
      mdp: the MDP.
      config: the config (``alpha``, grids, method, iterations).

    Returns:
      The :class:`Solution`: ``objective`` is the CVaR of the returned policy's
      law, ``stock0`` the best initial stock, ``bound`` the RU value there.
    """
    return solve(mdp, config.replace(objective="cvar"))


# --------------------------------------------------------------------------- agent


def init(key: PRNGKey, env: object, env_params: ArrayTree, config: Config) -> State:
    """Return the initial state: delta_0 laws mixed with ``init_noise`` random laws.

    Args:
      key: typed key (split: one subkey draws the random laws, the rest is kept).
      env: the environment (unused; sizes come from ``env_params.mdp``).
      env_params: params holding the ``FiniteMDP`` in ``.mdp``.
      config: the config.

    Returns:
      The :class:`State` (policy greedy w.r.t. the initial laws).
    """
    del env
    mdp = finite_mdp.mdp_from_params(env_params, "distributional_dp")
    key, k_laws = jax.random.split(key)
    dtype = mdp.P.dtype
    support = config.support.astype(dtype)
    shape = (mdp.num_states, config.num_stocks, mdp.num_actions)
    delta = ddp.delta_laws(shape, support).astype(dtype)
    noise = jax.random.exponential(k_laws, (*shape, config.num_atoms), dtype)
    noise = noise / jnp.sum(noise, axis=-1, keepdims=True)  # Dirichlet(1)
    eps = jnp.asarray(config.init_noise, dtype)
    laws = (1.0 - eps) * delta + eps * noise
    policy = ddp.stock_greedy_policy(
        laws, config.stocks.astype(dtype), support, config.inner_utility
    )
    return State(laws=laws, policy=policy, key=key, step=jnp.asarray(0, jnp.int32))


def act(
    params: dict[str, Array] | Array,
    obs: ArrayTree,
    key: PRNGKey,
    config: Config,
    *,
    greedy: bool = False,
) -> Array:
    """Pick the stock-Markov policy's action at ``(state, grid stock)``.

    ``obs = (env_obs, stock_index)``: the environment observation (a one-hot
    ``[S]`` vector or an int index) and the policy's memory, an int index into
    the stock grid (started by rounding c0 onto the grid and advanced with
    :func:`next_stock_index`, see :func:`rollout`). The action is
    ``policy[s, k]``; with ``greedy=False`` a uniform action is taken with
    probability ``config.epsilon``.

    Args:
      params: ``{"laws", "policy"}`` (:attr:`State.params`) or a ``[S, K]`` int
        policy table (e.g. ``Solution.policy``).
      obs: ``(env_obs, stock_index)`` (unbatched; vmap for a batch).
      key: typed key (split into an exploration and an action key).
      config: the config.
      greedy: act greedily (static).

    Returns:
      ``[]`` int32 action.
    """
    policy = params["policy"] if isinstance(params, dict) else jnp.asarray(params)
    env_obs, k = obs
    env_obs = jnp.asarray(env_obs)
    s = env_obs if env_obs.ndim == 0 else jnp.argmax(env_obs)
    best = policy[s, jnp.asarray(k, jnp.int32)].astype(jnp.int32)
    if greedy:
        return best
    num_actions = params["laws"].shape[2] if isinstance(params, dict) else None
    if num_actions is None:
        raise ConfigError(
            "act(greedy=False) needs params={'laws', 'policy'} to know the "
            "number of actions"
        )
    k_explore, k_action = jax.random.split(key)
    explore = jax.random.uniform(k_explore) < config.epsilon
    random_action = jax.random.randint(k_action, (), 0, num_actions, dtype=jnp.int32)
    return jnp.where(explore, random_action, best)


def _sup_cramer(a: Array, b: Array, support: Array) -> Array:
    return jnp.max(ddp.cramer_distance(a, b, support))


def loss(
    params: Array, target_params: Array, batch: FiniteMDP, config: Config
) -> tuple[Array, Metrics]:
    """Return the sup Cramér residual ``max d(params, T_f target_params)`` and metrics.

    Args:
      params: ``[S, K, A, N]`` laws.
      target_params: ``[S, K, A, N]`` laws backed up by the stock-augmented
        optimality operator ``T_f`` (pass ``params`` for the residual of ``params``).
      batch: the MDP.
      config: the config.

    Returns:
      ``(residual, {"dp/residual": residual, "dp/mean_residual": max |mean diff|})``.
    """
    stocks, support = config.stocks, config.support.astype(params.dtype)
    backed = ddp.stock_bellman_optimality(
        batch, target_params, stocks, support, config.inner_utility
    )
    residual = _sup_cramer(params, backed, support)
    mean_gap = jnp.max(jnp.abs((params - backed) @ support))
    return residual, {"dp/residual": residual, "dp/mean_residual": mean_gap}


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One VI sweep (``method="vi"``) or one PI step (``"pi"``).

    VI: ``laws <- T_f laws``, ``policy <- greedy(laws)``. PI: ``laws <-``
    ``eval_iters`` sweeps of the evaluation operator of ``state.policy``
    (warm-started), ``policy <- greedy(laws)``.

    Args:
      state: the agent state.
      data: the MDP.
      config: the config.

    Returns:
      ``(new_state, {"dp/residual": sup Cramér distance between old and new laws})``.
    """
    stocks = config.stocks.astype(state.laws.dtype)
    support = config.support.astype(state.laws.dtype)
    f = config.inner_utility
    if config.method == "vi":
        laws = ddp.stock_bellman_optimality(data, state.laws, stocks, support, f)
    else:
        laws = ddp.distributional_policy_evaluation(
            data, state.policy, stocks, support, config.eval_iters, state.laws
        )
    policy = ddp.stock_greedy_policy(laws, stocks, support, f)
    residual = _sup_cramer(laws, state.laws, support)
    new_state = state.replace(laws=laws, policy=policy, step=state.step + 1)
    return new_state, {"dp/residual": residual}


def _iteration(
    state: State, _: None, *, mdp: FiniteMDP, config: Config
) -> tuple[State, Metrics]:
    """Scan body: one update plus the objective of the new greedy policy."""
    state, metrics = update(state, mdp, config)
    return state, {
        **metrics,
        **objective_metrics(mdp, state.laws, state.policy, config),
    }


def make_run(config: Config, env: object, env_params: ArrayTree):
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` updates.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the MDP (``gamma`` in ``(0, 1]``).

    Returns:
      ``run``; its metrics have shape ``[iters_per_chunk]``.
    """
    config_lib.validate(config)
    mdp = finite_mdp.mdp_from_params(env_params, "distributional_dp")
    _check_gamma(mdp)
    del env

    def run(state: State) -> tuple[State, Metrics]:
        body = functools.partial(_iteration, mdp=mdp, config=config)
        return jax.lax.scan(body, state, None, length=config.iters_per_chunk)

    return run


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` runs.

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    run = make_run(config, env, env_params)

    return chunked_train(
        lambda key: init(key, env, env_params, config), run, config.num_chunks
    )


# ------------------------------------------------------------------------ execution


def next_stock_index(
    key: PRNGKey, stock_index: Array, r_t: Array, gamma: Array, config: Config
) -> Array:
    """Update the policy's memory: randomly round ``(c_k + r_t)/gamma`` onto the grid.

    Args:
      key: typed key (one uniform draw).
      stock_index: ``[]`` int current grid index ``k``.
      r_t: ``[]`` reward received.
      gamma: ``[]`` discount factor.
      config: the config (grid).

    Returns:
      ``[]`` int32 next grid index (``j`` w.p. ``1 - w``, ``j + 1`` w.p. ``w``).
    """
    stocks = config.stocks
    c_next = dist.stock_update(stocks[stock_index], r_t, gamma)
    return _round(key, stocks, c_next)


def _round(key: PRNGKey, stocks: Array, stock: Array) -> Array:
    j, w = ddp.stock_interpolation(stocks, stock)
    return j + (jax.random.uniform(key, (), w.dtype) < w).astype(jnp.int32)


def rollout(
    key: PRNGKey,
    env: object,
    env_params: ArrayTree,
    policy: Array,
    config: Config,
    stock0: Array,
    num_steps: int,
) -> dict[str, Array]:
    """Sample one trajectory of a stock-Markov policy executed with its memory.

    Resets the env (``s_0 ~ mu0``), rounds ``stock0`` onto the grid as the
    initial memory, and for ``num_steps`` steps acts with :func:`act`
    (``greedy=True``), steps the MDP with ``env.step_env`` (no time limit or
    auto-reset: absorbing states keep paying ``R``, as in the DP), and updates the
    memory with :func:`next_stock_index`. It also tracks the true stock
    ``c_{t+1} = (c_t + r_t)/gamma`` from ``stock0``.

    Args:
      key: typed key (carried through the scan, split every step).
      env: a ``FiniteMDPEnv``.
      env_params: its params.
      policy: ``[S, K]`` int policy table (e.g. ``Solution.policy``).
      config: the config.
      stock0: ``[]`` initial stock c0.
      num_steps: static horizon ``T``.

    Returns:
      ``{"state": [T], "action": [T], "reward": [T], "stock": [T + 1],
      "stock_index": [T + 1], "return": []}`` with ``return = sum_t gamma^t r_t``
      and ``stock`` the true stocks ``c_0..c_T``.
    """
    mdp = finite_mdp.mdp_from_params(env_params, "distributional_dp")
    gamma = mdp.gamma
    key, k_reset, k_round = jax.random.split(key, 3)
    obs, env_state = env.reset_env(k_reset, env_params)
    stock0 = jnp.asarray(stock0, config.stocks.dtype)
    k0 = _round(k_round, config.stocks, stock0)

    def step(carry, _):
        key, obs, env_state, k, c, discount = carry
        key, k_act, k_env, k_mem = jax.random.split(key, 4)
        a = act(policy, (obs, k), k_act, config, greedy=True)
        s = env_state.state
        obs, env_state, r, _, _ = env.step_env(k_env, env_state, a, env_params)
        new = (
            key,
            obs,
            env_state,
            next_stock_index(k_mem, k, r, gamma, config),
            dist.stock_update(c, r, gamma),
            discount * gamma,
        )
        return new, (s, a, r, k, c, discount * r)

    carry0 = (key, obs, env_state, k0, stock0, jnp.asarray(1.0, stock0.dtype))
    last, (s, a, r, k, c, disc_r) = jax.lax.scan(step, carry0, None, length=num_steps)
    return {
        "state": s,
        "action": a,
        "reward": r,
        "stock": jnp.concatenate([c, last[4][None]]),
        "stock_index": jnp.concatenate([k, last[3][None]]),
        "return": jnp.sum(disc_r),
    }
