"""Exact (tabular) value iteration as an agent, with optional noisy backups.

One ``update`` is one synchronous sweep of the Bellman optimality operator on
the whole table, optionally perturbed by Gaussian noise to study how errors
propagate through approximate value iteration (Munos 2005; Scherrer et al. 2015):

``q_{k+1} = T q_k + noise_std * eps_k``, ``eps_k ~ N(0, I_{S x A})``,

where ``(T q)(s, a) = R(s, a) + gamma sum_{s'} P(s'|s, a) max_{a'} q(s', a')``
(:func:`jaxrl.ops.exact_dp.bellman_optimality`). ``gamma`` is the MDP's
(``env_params.mdp.gamma``), not a config field. With ``noise_std = 0`` the agent
is deterministic and ``||q_k - Q*|| <= gamma^k ||Q*||``.

Metrics per iteration (``train`` stacks them to ``[num_chunks * iters_per_chunk]``):

* ``"dp/residual"``: ``max |T q_k - q_k|``, the residual of the table *before* the
  sweep;
* ``"dp/suboptimality"``: ``J(pi*) - J(greedy(q_{k+1}))`` of the greedy policy of the
  table *after* the sweep, computed exactly by policy evaluation (a linear solve);
  ``J* `` is computed once per chunk by policy iteration
  (:func:`jaxrl.ops.exact_dp.optimal_performance`).

The environment must be a ``jaxrl.envs.finite_mdp.FiniteMDPEnv`` (any env whose params
carry a ``FiniteMDP`` in ``env_params.mdp``); no samples are drawn from it.

Examples:
  >>> from jaxrl.envs.finite_mdp import make_chain_env
  >>> env, params = make_chain_env(num_states=5)
  >>> config = Config(num_chunks=2, iters_per_chunk=50)
  >>> state, metrics = jax.jit(make_train(config, env, params))(jax.random.key(0))
  >>> metrics["dp/residual"].shape, float(metrics["dp/suboptimality"][-1])
  ((100,), 0.0)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents import _tabular_loop
from jaxrl.config import static
from jaxrl.envs import finite_mdp
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import exact_dp
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = ["Config", "State", "init", "act", "loss", "update", "make_train", "make_run"]


@struct.dataclass
class Config:
    """Configuration of tabular value iteration.

    Attributes:
      num_chunks: static number of chunks in a run.
      iters_per_chunk: static sweeps per chunk (one ``make_run`` call).
      oracle_iters: static bound on policy-iteration steps used to compute ``J*``
        for the ``dp/suboptimality`` metric.
      noise_std: sigma, std of the Gaussian noise added to every backed-up entry
        (traced; 0 gives exact value iteration).
      epsilon: epsilon, exploration rate of ``act(..., greedy=False)`` (traced).
    """

    num_chunks: int = static(default=1)
    iters_per_chunk: int = static(default=100)
    oracle_iters: int = static(default=100)
    noise_std: float = 0.0  # sigma
    epsilon: float = 0.0  # epsilon

    @property
    def num_iters(self) -> int:
        """Total sweeps of a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        for name in ("num_chunks", "iters_per_chunk", "oracle_iters"):
            config_lib.check_integer(name, getattr(self, name))
        config_lib.check_range("noise_std", self.noise_std, 0.0)
        config_lib.check_range("epsilon", self.epsilon, 0.0, 1.0)


@struct.dataclass
class State:
    """Agent state.

    Attributes:
      q: ``[S, A]`` action-value table.
      key: typed key, split before every noisy sweep.
      step: ``[]`` int32 number of sweeps done.
    """

    q: Array
    key: PRNGKey
    step: Array

    @property
    def params(self) -> Array:
        """Alias of ``q``: the table ``act`` takes as its ``params``."""
        return self.q


def init(key: PRNGKey, env: object, env_params: ArrayTree, config: Config) -> State:
    """Return the initial state: a zero table ``[S, A]``, the key, step 0.

    Args:
      key: typed key (kept in the state; only consumer).
      env: the environment (unused; sizes come from ``env_params.mdp``).
      env_params: params holding the ``FiniteMDP`` in ``.mdp``.
      config: the config.

    Returns:
      The :class:`State`.
    """
    del env
    return _tabular_loop.init(
        key, env_params, config, agent="vi_tabular", init_fn=_init_state
    )


def _init_state(key: PRNGKey, mdp: FiniteMDP, config: Config) -> State:
    del config
    return State(q=jnp.zeros_like(mdp.R), key=key, step=jnp.asarray(0, jnp.int32))


def act(
    params: Array, obs: Array, key: PRNGKey, config: Config, *, greedy: bool = False
) -> Array:
    """Pick an action for one observation from the table ``params = q[S, A]``.

    ``obs`` is a one-hot ``[S]`` vector or an integer state index ``[]``
    (:func:`jaxrl.envs.finite_mdp.state_index`).
    Greedy actions break ties towards the lowest index; with ``greedy=False`` a
    uniformly random action is taken with probability ``config.epsilon``.

    Args:
      params: ``[S, A]`` action values.
      obs: ``[S]`` one-hot or ``[]`` index (unbatched; vmap for a batch).
      key: typed key (split into an exploration and an action key).
      config: the config.
      greedy: act greedily (static).

    Returns:
      ``[]`` int32 action.
    """
    q_s = params[finite_mdp.state_index(obs, params.shape[0])]
    best = jnp.argmax(q_s).astype(jnp.int32)
    if greedy:
        return best
    k_explore, k_action = jax.random.split(key)
    explore = jax.random.uniform(k_explore) < config.epsilon
    random_action = jax.random.randint(
        k_action, (), 0, params.shape[-1], dtype=jnp.int32
    )
    return jnp.where(explore, random_action, best)


def loss(
    params: Array, target_params: Array, batch: FiniteMDP, config: Config
) -> tuple[Array, Metrics]:
    """Return the sup-norm Bellman residual ``max |q - T q_target|`` and metrics.

    Args:
      params: ``[S, A]`` table ``q``.
      target_params: ``[S, A]`` table backed up by ``T`` (pass ``q`` itself for the
        residual of ``q``).
      batch: the MDP.
      config: the config (unused).

    Returns:
      ``(residual, {"dp/residual": residual, "dp/mse": mean squared residual})``.
    """
    del config
    diff = params - exact_dp.bellman_optimality(batch, target_params)
    residual = jnp.max(jnp.abs(diff))
    return residual, {"dp/residual": residual, "dp/mse": jnp.mean(jnp.square(diff))}


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One sweep ``q <- T q + noise_std * eps``.

    Args:
      state: the agent state.
      data: the MDP.
      config: the config.

    Returns:
      ``(new_state, {"dp/residual": max |T q - q|})`` (residual before the sweep).
    """
    key, k_noise = jax.random.split(state.key)
    residual, _ = loss(state.q, state.q, data, config)
    q = exact_dp.bellman_optimality(data, state.q)
    q = q + config.noise_std * jax.random.normal(k_noise, q.shape, q.dtype)
    new_state = state.replace(q=q, key=key, step=state.step + 1)
    return new_state, {"dp/residual": residual}


def _suboptimality(
    state: State, metrics: Metrics, mdp: FiniteMDP, j_star: Array, config: Config
) -> Metrics:
    """The exact suboptimality of the new table's greedy policy."""
    del metrics, config
    j_greedy = exact_dp.performance(mdp, exact_dp.greedy_policy(state.q))
    return {"dp/suboptimality": j_star - j_greedy}


_LOOP = {
    "agent": "vi_tabular",
    "update_fn": update,
    "reference_fn": _tabular_loop.optimal_performance,
    "metrics_fn": _suboptimality,
}


def make_run(config: Config, env: object, env_params: ArrayTree):
    """Return ``run(state) -> (state, metrics)`` advancing ``iters_per_chunk`` sweeps.

    Args:
      config: the config (validated here; traced fields are skipped).
      env: the environment (unused).
      env_params: params holding the MDP.

    Returns:
      ``run``; its metrics have shape ``[iters_per_chunk]``.
    """
    return _tabular_loop.make_run(config, env, env_params, **_LOOP)


def make_train(config: Config, env: object, env_params: ArrayTree):
    """Return ``train(key) -> (state, metrics)``: ``init`` then ``num_chunks`` runs.

    Bitwise equal to calling :func:`init` and then ``make_run(...)`` chunk by
    chunk (the checkpoint/resume contract).

    Args:
      config: the config.
      env: the environment.
      env_params: params holding the MDP.

    Returns:
      ``train``; its metrics have shape ``[num_chunks * iters_per_chunk]``.
    """
    return _tabular_loop.make_train(config, env, env_params, init_fn=init, **_LOOP)
