r"""Exact tabular dual RL (XQL-DP, f-DVL-DP, IQL-DP) given an MDP and a dataset.

The offline dual-RL algorithms (XQL, f-DVL) and IQL alternate a TD regression
:math:`Q(s,a) \leftarrow r + \gamma V(s')` with a value regression that fits
:math:`V(s)` by minimising a loss of :math:`Q(s,a) - V(s)` over the *data's*
actions. With the MDP known and the dataset replaced by its state-action
distribution :math:`d_D(s,a)`, both regressions have exact solutions, and one
``update`` is one synchronous sweep of

.. math::

    Q_{k+1} = R + \gamma P V_k + \sigma\varepsilon_k, \qquad
    V_{k+1}(s) = \arg\min_v \mathbb{E}_{a \sim \mu(\cdot|s)}
                 \ell\big(Q_{k+1}(s,a) - v\big),

with :math:`\mu(a|s) = d_D(s,a)/\sum_b d_D(s,b)` the behaviour policy of the
data and :math:`\ell` the static ``value_loss`` (closed forms in
:mod:`jaxrl.ops.dual`):

* ``"gumbel"`` (XQL = f-DVL with reverse KL, temperature ``beta``):
  :math:`V(s) = \beta \log \mathbb{E}_\mu e^{Q(s,a)/\beta}`. As
  :math:`\beta \to 0` the sweep tends to value iteration restricted to the
  data's actions (in-sample max; plain value iteration under full coverage), as
  :math:`\beta \to \infty` to policy evaluation of :math:`\mu`.
* ``"chi_square"`` / ``"total_variation"`` (f-DVL, trade-off ``lam``): the
  chi-square statistic / the :math:`(2\lambda-1)/\lambda` quantile of
  :math:`Q(s,\cdot)` under :math:`\mu` (``lam = 1`` with total variation is the
  in-sample max exactly).
* ``"expectile"`` (IQL, ``expectile`` :math:`\tau`): the :math:`\tau`-expectile.

Each operator is a :math:`\gamma`-contraction in the sup norm (the value maps
are monotone and commute with constants), so the sweep converges to a unique
fixed point. The policy is extracted by advantage-weighted regression, which in
a table is exact: :math:`\pi(a|s) \propto \mu(a|s)\min(e^{\beta_\pi(Q - V)},
w_{max})` (``awr_beta = 0`` is behaviour cloning). ``gamma`` is the MDP's.

**Where the data lives.** :math:`d_D` is data, not configuration: it is a field
of :class:`State` (like an offline dataset in a deep agent's state), set by
:func:`init_from_data` (any nonnegative ``[S, A]`` table: full or partial
coverage) or, in :func:`init`, generated from the MDP as the discounted
occupancy of the behaviour policy ``(1 - data_epsilon) * greedy(Q*) +
data_epsilon * uniform`` (``data_epsilon = 1``: a uniformly random dataset;
``0``: expert data). ``make_train_from_data`` returns ``train(key, d_data)``
(vmappable over datasets too). Q-values of actions outside the data are
computed from the model but never enter ``V`` (the value maps only see the
data's actions); a state without data uses a uniform behaviour policy.
States unreachable by the data never influence the values of covered ones.

Metrics per sweep (``train`` stacks them to ``[num_chunks * iters_per_chunk]``):

* ``"dp/residual"``: ``max |T q_k - q_k|`` of the noise-free operator before the
  sweep;
* ``"dp/value_loss"``: :math:`\sum_{s,a} d_D(s,a)\,\ell(Q_{k+1}(s,a) -
  V_{k+1}(s))`, the minimised value objective;
* ``"dp/suboptimality"``: ``J(pi*) - J(pi_{k+1})`` of the extracted policy
  (exact policy evaluation); ``J*`` is computed once per chunk by policy
  iteration.

Examples:
  >>> from jaxrl.envs.finite_mdp import make_chain_env
  >>> env, params = make_chain_env(num_states=5)
  >>> config = Config(beta=0.05, num_chunks=1, iters_per_chunk=100)
  >>> state, metrics = jax.jit(make_train(config, env, params))(jax.random.key(0))
  >>> metrics["dp/residual"].shape, bool(metrics["dp/residual"][-1] < 1e-3)
  ((100,), True)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents import _tabular_loop
from jaxrl.config import static
from jaxrl.envs import finite_mdp
from jaxrl.errors import ConfigError
from jaxrl.loop import chunked_train
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import dual, exact_dp
from jaxrl.types import Array, ArrayLike, ArrayTree, Metrics, PRNGKey

__all__ = [
    "Config",
    "Tables",
    "State",
    "OfflineMDP",
    "init",
    "init_from_data",
    "act",
    "loss",
    "update",
    "make_train",
    "make_train_from_data",
    "make_run",
    "behaviour_policy",
    "occupancy",
    "default_data",
    "state_values",
    "extract_policy",
    "backup",
]


@struct.dataclass
class Config:
    """Configuration of the tabular dual-RL DP.

    Attributes:
      num_chunks: static number of chunks in a run.
      iters_per_chunk: static sweeps per chunk (one ``make_run`` call).
      oracle_iters: static bound on policy-iteration steps for ``Q*`` (default
        dataset, ``J*``).
      value_iters: static bisection steps of the chi-square value solve.
      value_loss: static, one of ``jaxrl.ops.dual.VALUE_LOSSES``: ``"gumbel"``
        (XQL / f-DVL reverse KL), ``"chi_square"``, ``"total_variation"``
        (f-DVL) or ``"expectile"`` (IQL).
      beta: beta > 0, Gumbel temperature (``gumbel``; ``inf`` allowed: the
        behaviour mean). XQL tunes it per dataset (1 to 8 on D4RL).
      lam: lambda, f-DVL trade-off, in ``(0, 1]`` for ``chi_square`` and
        ``[1/2, 1]`` for ``total_variation`` (0.8: the 75th percentile).
      expectile: tau in ``(0, 1)``, IQL expectile (0.7 on locomotion).
      awr_beta: beta_pi >= 0, inverse temperature of the AWR extraction (3 in
        XQL/IQL locomotion); 0 is behaviour cloning.
      max_weight: w_max > 0, AWR weight clip (100).
      data_epsilon: epsilon_D in ``[0, 1]`` of the default dataset's behaviour
        policy ``(1 - eps) greedy(Q*) + eps uniform`` (used by :func:`init`
        only).
      noise_std: sigma >= 0, std of Gaussian noise added to every backed-up
        ``Q`` entry (0: exact DP).
      epsilon: epsilon in ``[0, 1]``, probability of a uniformly random action
        in ``act(..., greedy=False)``.
    """

    num_chunks: int = static(default=1)
    iters_per_chunk: int = static(default=100)
    oracle_iters: int = static(default=100)
    value_iters: int = static(default=dual.DEFAULT_VALUE_ITERS)
    value_loss: str = static(default="gumbel")
    beta: float = 1.0  # beta (Gumbel temperature)
    lam: float = 0.8  # lambda (f-DVL)
    expectile: float = 0.7  # tau (IQL)
    awr_beta: float = 3.0  # beta_pi
    max_weight: float = 100.0  # w_max
    data_epsilon: float = 1.0  # epsilon_D (default dataset)
    noise_std: float = 0.0  # sigma
    epsilon: float = 0.0  # epsilon (acting)

    @property
    def num_iters(self) -> int:
        """Total sweeps of a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    @property
    def value_param(self) -> float:
        """The selected value loss's parameter: ``beta``, ``lam`` or ``expectile``."""
        if self.value_loss == "gumbel":
            return self.beta
        if self.value_loss == "expectile":
            return self.expectile
        return self.lam

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        for name in ("num_chunks", "iters_per_chunk", "oracle_iters", "value_iters"):
            config_lib.check_integer(name, getattr(self, name))
        if self.value_loss not in dual.VALUE_LOSSES:
            raise ConfigError(
                f"value_loss must be one of {', '.join(dual.VALUE_LOSSES)}, "
                f"got {self.value_loss!r}"
            )
        config_lib.check_positive("beta", self.beta, allow_inf=True)
        if self.value_loss == "total_variation":
            config_lib.check_range("lam", self.lam, 0.5, 1.0)
        else:
            config_lib.check_range("lam", self.lam, 0.0, 1.0, low_inclusive=False)
        config_lib.check_range(
            "expectile",
            self.expectile,
            0.0,
            1.0,
            low_inclusive=False,
            high_inclusive=False,
        )
        config_lib.check_range("awr_beta", self.awr_beta, 0.0)
        config_lib.check_positive("max_weight", self.max_weight)
        config_lib.check_range("data_epsilon", self.data_epsilon, 0.0, 1.0)
        config_lib.check_range("noise_std", self.noise_std, 0.0)
        config_lib.check_range("epsilon", self.epsilon, 0.0, 1.0)


@struct.dataclass
class Tables:
    """The learned tables (the agent's ``params``).

    Attributes:
      q: ``[S, A]`` action values.
      v: ``[S]`` state values, the value-loss minimiser of ``q`` under the data.
      pi: ``[S, A]`` extracted (AWR) policy; ``act`` samples from it.
    """

    q: Array
    v: Array
    pi: Array


@struct.dataclass
class State:
    """Agent state.

    Attributes:
      params: the :class:`Tables`.
      d_data: ``[S, A]`` data distribution :math:`d_D` (sums to one).
      key: typed key, split before every sweep (noise).
      step: ``[]`` int32 number of sweeps done.
    """

    params: Tables
    d_data: Array
    key: PRNGKey
    step: Array

    @property
    def q(self) -> Array:
        """``[S, A]`` action values."""
        return self.params.q

    @property
    def v(self) -> Array:
        """``[S]`` state values."""
        return self.params.v

    @property
    def pi(self) -> Array:
        """``[S, A]`` extracted policy."""
        return self.params.pi


@struct.dataclass
class OfflineMDP:
    """An MDP together with an offline data distribution: the ``batch`` of :func:`loss`.

    Attributes:
      mdp: the :class:`FiniteMDP`.
      d_data: ``[S, A]`` data distribution :math:`d_D`.
    """

    mdp: FiniteMDP
    d_data: Array


# ------------------------------------------------------------------------- data


def behaviour_policy(d_data: ArrayLike) -> Array:
    r"""Return the behaviour policy :math:`\mu(a|s) \propto d_D(s, a)`, ``[S, A]``.

    Rows without data (zero mass) are uniform.

    Args:
      d_data: ``[S, A]`` nonnegative data distribution (any scale).

    Returns:
      ``[S, A]`` row-stochastic table.
    """
    d = jnp.asarray(d_data)
    mass = jnp.sum(d, axis=-1, keepdims=True)
    empty = mass <= 0
    uniform = jnp.full_like(d, 1.0 / d.shape[-1])
    return jnp.where(empty, uniform, d / jnp.where(empty, 1.0, mass))


def occupancy(mdp: FiniteMDP, pi: ArrayLike) -> Array:
    r"""Return the normalised discounted occupancy :math:`d^\pi(s, a)`, ``[S, A]``.

    :math:`d^\pi(s) = (1-\gamma)\,\mu_0^\top (I - \gamma P_\pi)^{-1}` and
    :math:`d^\pi(s, a) = d^\pi(s)\,\pi(a|s)` (sums to one).

    Args:
      mdp: the MDP.
      pi: ``[S, A]`` policy.

    Returns:
      ``[S, A]`` the state-action occupancy.
    """
    pi = jnp.asarray(pi, mdp.P.dtype)
    p_pi = exact_dp.policy_transition(mdp, pi)
    eye = jnp.eye(mdp.num_states, dtype=p_pi.dtype)
    d_s = (1.0 - mdp.gamma) * jnp.linalg.solve((eye - mdp.gamma * p_pi).T, mdp.mu0)
    return d_s[:, None] * pi


def default_data(mdp: FiniteMDP, config: Config) -> Array:
    """Return the default dataset's distribution: the occupancy of an eps-greedy expert.

    The behaviour policy is ``(1 - data_epsilon) * greedy(Q*) + data_epsilon /
    A`` (``Q*`` by policy iteration with ``oracle_iters`` steps).

    Args:
      mdp: the MDP.
      config: the config (``data_epsilon``, ``oracle_iters``).

    Returns:
      ``[S, A]`` data distribution.
    """
    greedy = exact_dp.greedy_policy(exact_dp.optimal_q(mdp, config.oracle_iters))
    eps = jnp.asarray(config.data_epsilon, greedy.dtype)
    mu = (1.0 - eps) * greedy + eps / mdp.num_actions
    return occupancy(mdp, mu)


def _check_data(d_data: ArrayLike, mdp: FiniteMDP) -> Array:
    shape = (mdp.num_states, mdp.num_actions)
    if np.shape(d_data) != shape:
        raise ConfigError(
            f"d_data must have shape [S, A] = {list(shape)}, "
            f"got {list(np.shape(d_data))}"
        )
    if config_lib.is_concrete(d_data):
        d = np.asarray(d_data, dtype=np.float64)
        if not np.all(np.isfinite(d)) or np.any(d < 0):
            raise ConfigError("d_data must be nonnegative and finite")
        if d.sum() <= 0:
            raise ConfigError("d_data must have positive total mass")
    d = jnp.asarray(d_data, mdp.P.dtype)
    return d / jnp.sum(d)


# -------------------------------------------------------------------- operators


def state_values(q: Array, d_data: Array, config: Config) -> Array:
    r"""Return :math:`V(s) = \arg\min_v E_{\mu(\cdot|s)}\ell(Q(s,a) - v)`, ``[S]``.

    See :func:`jaxrl.ops.dual.value_minimizer` (one state per row).

    Args:
      q: ``[S, A]`` action values.
      d_data: ``[S, A]`` data distribution.
      config: the config (``value_loss`` and its parameter).

    Returns:
      ``[S]`` state values.
    """
    mu = behaviour_policy(d_data)
    fn = functools.partial(
        dual.value_minimizer, name=config.value_loss, num_iters=config.value_iters
    )
    return jax.vmap(lambda qs, ps: fn(qs, config.value_param, probs=ps))(q, mu)


def extract_policy(q: Array, v: Array, d_data: Array, config: Config) -> Array:
    r"""Return the tabular AWR policy, ``[S, A]``.

    :math:`\pi(a|s) \propto \mu(a|s)\min(e^{\beta_\pi(Q-V)}, w_{max})`.

    See :func:`jaxrl.ops.dual.awr_policy` (one state per row).

    Args:
      q: ``[S, A]`` action values.
      v: ``[S]`` state values.
      d_data: ``[S, A]`` data distribution.
      config: the config (``awr_beta``, ``max_weight``).

    Returns:
      ``[S, A]`` row-stochastic policy.
    """
    mu = behaviour_policy(d_data)
    return jax.vmap(
        lambda qs, vs, ps: dual.awr_policy(
            qs, vs, config.awr_beta, probs=ps, max_weight=config.max_weight
        )
    )(q, v, mu)


def backup(mdp: FiniteMDP, v: Array) -> Array:
    r"""Return the TD-regression solution :math:`R + \gamma P V`, ``[S, A]``.

    Args:
      mdp: the MDP.
      v: ``[S]`` state values.

    Returns:
      ``[S, A]`` action values.
    """
    return exact_dp.q_from_v(mdp, v)


def _value_objective(q: Array, v: Array, d_data: Array, config: Config) -> Array:
    """``sum_{s,a} d_D(s,a) loss(q(s,a) - v(s))`` over the data's support only."""
    covered = d_data > 0
    x = jnp.where(covered, q - v[:, None], 0.0)  # no inf/NaN off the support
    per = dual.value_loss(x, config.value_param, config.value_loss)
    return jnp.sum(jnp.where(covered, d_data * per, 0.0))


def _tables(q: Array, d_data: Array, config: Config) -> Tables:
    v = state_values(q, d_data, config)
    return Tables(q=q, v=v, pi=extract_policy(q, v, d_data, config))


# ------------------------------------------------------------------------ agent


def init_from_data(
    key: PRNGKey,
    env: object,
    env_params: ArrayTree,
    config: Config,
    d_data: ArrayLike,
) -> State:
    """Return the initial state for a given data distribution.

    ``q = 0``, ``v`` and ``pi`` its value and extracted policy (``pi`` is the
    behaviour policy), ``d_data`` normalised to sum one.

    Args:
      key: typed key (kept in the state; only consumer).
      env: the environment (unused).
      env_params: params holding the ``FiniteMDP`` in ``.mdp``.
      config: the config.
      d_data: ``[S, A]`` nonnegative data distribution (any scale; zeros mark
        actions, or whole states, absent from the data).

    Returns:
      The :class:`State`.

    Raises:
      ConfigError: wrong shape, or (concrete) negative entries / zero mass.
    """
    del env
    mdp = _tabular_loop.mdp_of(env_params, "dual_tabular")
    d = _check_data(d_data, mdp)
    params = _tables(jnp.zeros_like(mdp.R), d, config)
    return State(params=params, d_data=d, key=key, step=jnp.asarray(0, jnp.int32))


def init(key: PRNGKey, env: object, env_params: ArrayTree, config: Config) -> State:
    """Return the initial state with the default dataset (:func:`default_data`).

    Args:
      key: typed key (kept in the state).
      env: the environment (unused).
      env_params: params holding the ``FiniteMDP`` in ``.mdp``.
      config: the config.

    Returns:
      The :class:`State`.
    """
    mdp = _tabular_loop.mdp_of(env_params, "dual_tabular")
    return init_from_data(key, env, env_params, config, default_data(mdp, config))


def act(
    params: Tables, obs: Array, key: PRNGKey, config: Config, *, greedy: bool = False
) -> Array:
    """Pick an action for one observation from the extracted policy ``params.pi``.

    ``obs`` is a one-hot ``[S]`` vector or an integer state index ``[]``
    (:func:`jaxrl.envs.finite_mdp.state_index`).
    ``greedy=True`` takes the policy's mode (ties towards the lowest index; an
    in-data action). Otherwise the action is sampled from ``pi(.|s)`` and
    replaced by a uniformly random one with probability ``config.epsilon``.

    Args:
      params: the :class:`Tables`.
      obs: ``[S]`` one-hot or ``[]`` index (unbatched; vmap for a batch).
      key: typed key (split into exploration, random-action and policy keys).
      config: the config.
      greedy: act greedily (static).

    Returns:
      ``[]`` int32 action.
    """
    pi = params.pi
    pi_s = pi[finite_mdp.state_index(obs, pi.shape[0])]
    if greedy:
        return jnp.argmax(pi_s).astype(jnp.int32)
    k_explore, k_random, k_policy = jax.random.split(key, 3)
    sampled = jax.random.categorical(k_policy, jnp.log(pi_s)).astype(jnp.int32)
    explore = jax.random.uniform(k_explore) < config.epsilon
    random_action = jax.random.randint(k_random, (), 0, pi.shape[-1], dtype=jnp.int32)
    return jnp.where(explore, random_action, sampled)


def loss(
    params: Tables, target_params: Tables, batch: OfflineMDP, config: Config
) -> tuple[Array, Metrics]:
    r"""Return the two regression objectives whose exact minimisers form a sweep.

    .. math::

        L = \sum_{s,a} d_D(s,a)\Big[\ell\big(\bar Q(s,a) - V(s)\big)
            + \tfrac12\big(Q(s,a) - R(s,a) - \gamma (P\bar V)(s,a)\big)^2\Big]

    with :math:`(\bar Q, \bar V)` = ``target_params``. Minimising over
    ``params.v`` gives :func:`state_values` of :math:`\bar Q` (on states with
    data); over ``params.q`` gives :func:`backup` of :math:`\bar V` on the data's
    support.

    Args:
      params: :class:`Tables` (``q`` and ``v`` are differentiated).
      target_params: target :class:`Tables`.
      batch: the :class:`OfflineMDP` (MDP and data distribution).
      config: the config.

    Returns:
      ``(L, {"dp/value_loss": ..., "dp/q_loss": ...})``.
    """
    d = batch.d_data
    value = _value_objective(target_params.q, params.v, d, config)
    td = params.q - backup(batch.mdp, target_params.v)
    q_loss = 0.5 * jnp.sum(d * jnp.square(td))
    return value + q_loss, {"dp/value_loss": value, "dp/q_loss": q_loss}


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One sweep: ``q <- R + gamma P v + noise``, then ``v``, ``pi`` of the new ``q``.

    Args:
      state: the agent state (its ``d_data`` is the dataset).
      data: the MDP.
      config: the config.

    Returns:
      ``(new_state, {"dp/residual": max |T q - q|, "dp/value_loss": ...})``.
    """
    key, k_noise = jax.random.split(state.key)
    target = backup(data, state.v)
    residual = jnp.max(jnp.abs(target - state.q))
    q = target + config.noise_std * jax.random.normal(
        k_noise, target.shape, target.dtype
    )
    params = _tables(q, state.d_data, config)
    value = _value_objective(params.q, params.v, state.d_data, config)
    new_state = state.replace(params=params, key=key, step=state.step + 1)
    return new_state, {"dp/residual": residual, "dp/value_loss": value}


def _suboptimality(
    state: State, metrics: Metrics, mdp: FiniteMDP, j_star: Array, config: Config
) -> Metrics:
    """The exact suboptimality of the extracted policy (after each sweep)."""
    del metrics, config
    return {"dp/suboptimality": j_star - exact_dp.performance(mdp, state.pi)}


_LOOP = {
    "agent": "dual_tabular",
    "update_fn": update,
    "reference_fn": _tabular_loop.optimal_performance,
    "metrics_fn": _suboptimality,
}


def make_run(config: Config, env: object, env_params: ArrayTree):
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` sweeps.

    The dataset is the state's ``d_data``.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the MDP.

    Returns:
      ``run``; its metrics have shape ``[iters_per_chunk]``.
    """
    return _tabular_loop.make_run(config, env, env_params, **_LOOP)


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)`` on the default dataset.

    ``init`` then ``num_chunks`` runs (bitwise equal to calling them in turn).

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    return _tabular_loop.make_train(config, env, env_params, init_fn=init, **_LOOP)


def make_train_from_data(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key, d_data) -> (state, metrics)`` on a given dataset.

    ``init_from_data`` then ``num_chunks`` runs; ``d_data`` is an argument, so
    ``jax.vmap`` can map over datasets as well as keys and configs.

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    run = make_run(config, env, env_params)

    def train(key: PRNGKey, d_data: ArrayLike) -> tuple[State, Metrics]:
        start = functools.partial(
            init_from_data, env=env, env_params=env_params, config=config, d_data=d_data
        )
        return chunked_train(start, run, config.num_chunks)(key)

    return train
