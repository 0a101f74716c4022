r"""Exact (tabular) Munchausen value iteration M-VI(alpha, tau) and MVI(q).

One ``update`` is one synchronous sweep over the whole table of the Munchausen
(Vieillard, Pietquin and Geist, NeurIPS 2020, eq. 4) or Tsallis-Munchausen
(Zhu, Chen, Schlegel and White, NeurIPS 2023) value-iteration operator,
optionally perturbed by Gaussian noise to study how errors propagate:

.. math::

    \pi_{k+1} &= \mathcal{G}_{\tau, q}(q_k), \\
    q_{k+1} &= R + \alpha\,[\tau \ln_q \pi_{k+1}]_{l_0}^{0}
              + \gamma P \langle \pi_{k+1}, q_k - \tau \ln_q \pi_{k+1} \rangle
              + \sigma \varepsilon_k, \qquad
              \varepsilon_k \sim \mathcal{N}(0, I_{S \times A}),

where :math:`\ln_q x = (x^{q-1} - 1)/(q - 1)` (:math:`\ln_1 = \ln`) and the
greedy step :math:`\mathcal{G}_{\tau, q}(q_k)(\cdot|s)` is
``softmax(q_k(s, .) / tau)`` at ``q = 1`` and the q-exponential policy
``exp_q(q_k(s, .) / tau - psi)`` at ``q > 1`` (``q = 2``: sparsemax), see
:func:`jaxrl.ops.tsallis.tsallis_policy`. ``gamma`` is the MDP's
(``env_params.mdp.gamma``). All hyperparameters (``alpha``, ``tau``, ``q``,
``l0``, ``noise_std``, ``epsilon``) are traced, so a grid of them is one vmap.

Special cases (exact, not limits, thanks to the ``tau = 0`` and ``q = 1``
branches of the ops):

* ``alpha = 0, tau = 0``: value iteration ``q <- T q`` (``jaxrl.agents.vi_tabular``);
* ``alpha = 0, tau > 0, q = 1``: soft (entropy-regularised) value iteration
  ``q <- R + gamma P tau logsumexp(q / tau)``;
* ``alpha = 0, q > 1``: Tsallis-entropy-regularised value iteration;
* ``alpha > 0, q = 1``: M-VI, i.e. mirror-descent VI with KL weight
  ``alpha tau`` and entropy weight ``(1 - alpha) tau``; its fixed-point policy
  is the soft-optimal policy at temperature ``(1 - alpha) tau`` and its action
  gaps are the soft-optimal ones divided by ``1 - alpha``. With noise, the
  implicit KL regularisation *averages* the errors over about
  ``1 / (1 - alpha)`` sweeps (Vieillard et al., "Leverage the Average",
  NeurIPS 2020), so ``alpha -> 1`` is robust to noise where VI is not.

``l0`` clips the scaled log-policy from below as in M-DQN. Its default
``-inf`` disables clipping: the exact tabular theory (M-DQN uses ``l0 = -1``).
For ``q > 1`` the scaled log-policy already lies in ``[-tau / (q - 1), 0]``.

Metrics per sweep (``train`` stacks them to ``[num_chunks * iters_per_chunk]``),
computed exactly (linear solves), for the table *after* the sweep:

* ``"dp/residual"``: ``max |T_mvi q_k - q_k|``, the residual of the noise-free
  Munchausen operator at the table *before* the sweep (for ``alpha = tau = 0``
  the Bellman optimality residual);
* ``"dp/suboptimality"``: ``J(pi*) - J(G(q_{k+1}))``, the *unregularised*
  suboptimality of the agent's regularised policy (the one ``act`` samples
  from); ``J*`` is computed once per chunk by policy iteration;
* ``"dp/suboptimality_greedy"``: the same for the greedy policy ``argmax q_{k+1}``;
* ``"dp/value_gap"``: ``max_{s,a} |Q*(s, a) - Q^{G(q_{k+1})}(s, a)|``.

The environment must be a ``jaxrl.envs.finite_mdp.FiniteMDPEnv`` (any env whose params
carry a ``FiniteMDP`` in ``env_params.mdp``); no samples are drawn from it.

Examples:
  >>> from jaxrl.envs.finite_mdp import make_chain_env
  >>> env, params = make_chain_env(num_states=5)
  >>> config = Config(alpha=0.9, tau=0.03, iters_per_chunk=100)
  >>> state, metrics = jax.jit(make_train(config, env, params))(jax.random.key(0))
  >>> metrics["dp/suboptimality"].shape, float(metrics["dp/suboptimality_greedy"][-1])
  ((100,), 0.0)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import struct

from jaxrl import config as config_lib
from jaxrl.agents import _tabular_loop, vi_tabular
from jaxrl.config import static
from jaxrl.envs import finite_mdp
from jaxrl.mdp import FiniteMDP
from jaxrl.ops import exact_dp, tsallis
from jaxrl.types import Array, ArrayTree, Metrics, PRNGKey

__all__ = [
    "Config",
    "State",
    "init",
    "act",
    "loss",
    "update",
    "make_train",
    "make_run",
    "policy",
    "backup",
]


@struct.dataclass
class Config:
    """Configuration of tabular M-VI(alpha, tau) / MVI(q).

    Attributes:
      num_chunks: static number of chunks in a run.
      iters_per_chunk: static sweeps per chunk (one ``make_run`` call).
      oracle_iters: static bound on policy-iteration steps used to compute
        ``Q*`` and ``J*`` for the metrics.
      normalizer_iters: static bisection steps for the q-exponential policy's
        normaliser ``psi`` (used for ``q`` not in ``{1, 2}``).
      alpha: alpha, Munchausen scaling in ``[0, 1]`` (implicit KL weight
        ``alpha * tau``); 0.9 as in M-DQN.
      tau: tau >= 0, temperature of the regularised greedy step (entropy weight
        ``(1 - alpha) * tau``); 0.03 as in M-DQN (rewards of order one).
        ``tau = 0`` gives the hard max (``alpha`` then acts as an
        advantage-learning coefficient at ``q = 1``).
      q: q >= 1, entropic index of the Tsallis q-logarithm (1: Shannon /
        softmax, 2: sparsemax). A Python number here (a config closed over
        by ``jit``) traces only its normaliser; a traced ``q`` (a sweep) the
        generic operator, with the same results (docs/decisions.md, D16).
      l0: l0 <= 0, lower clip of the scaled log-policy in the bonus; ``-inf``
        (default) is the unclipped exact M-VI, M-DQN uses -1.
      noise_std: sigma >= 0, std of the Gaussian noise added to every backed-up
        entry (0: exact DP).
      epsilon: epsilon in ``[0, 1]``, probability of a uniformly random action
        in ``act(..., greedy=False)``.
    """

    num_chunks: int = static(default=1)
    iters_per_chunk: int = static(default=100)
    oracle_iters: int = static(default=100)
    normalizer_iters: int = static(default=50)
    alpha: float = 0.9  # alpha
    tau: float = 0.03  # tau
    q: float = 1.0  # q (entropic index)
    l0: float = -math.inf  # l0
    noise_std: float = 0.0  # sigma
    epsilon: float = 0.0  # epsilon

    @property
    def num_iters(self) -> int:
        """Total sweeps of a run, ``num_chunks * iters_per_chunk`` (static)."""
        return self.num_chunks * self.iters_per_chunk

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        for name in (
            "num_chunks",
            "iters_per_chunk",
            "oracle_iters",
            "normalizer_iters",
        ):
            config_lib.check_integer(name, getattr(self, name))
        config_lib.check_range("alpha", self.alpha, 0.0, 1.0)
        config_lib.check_range("tau", self.tau, 0.0)
        config_lib.check_range("q", self.q, 1.0)
        config_lib.check_range("l0", self.l0, -math.inf, 0.0, allow_inf=True)  # no clip
        config_lib.check_range("noise_std", self.noise_std, 0.0)
        config_lib.check_range("epsilon", self.epsilon, 0.0, 1.0)


State = vi_tabular.State
"""Agent state: the table ``q[S, A]``, the key and the sweep count (shared with
:mod:`jaxrl.agents.vi_tabular`; ``state.params`` is the table ``act`` takes)."""


def _per_state(fn, table: Array, config: Config) -> Array:
    """Map an unbatched op ``fn(qv[A], tau, q, num_iters)`` over the table's states.

    ``config.q`` is passed on as it is: a Python number (a config closed over by
    ``jit``) traces only its normaliser branch, a traced ``q`` (a vmapped
    sweep) the generic operator (:mod:`jaxrl.ops.tsallis`, D16).
    """
    op = functools.partial(
        fn, tau=config.tau, q=config.q, num_iters=config.normalizer_iters
    )
    return jax.vmap(op)(table)


def policy(q_table: Array, config: Config) -> Array:
    r"""Return the regularised greedy policy :math:`\mathcal{G}_{\tau,q}(q)` ``[S, A]``.

    ``softmax(q / tau)`` at ``q = 1``, ``exp_q(q / tau - psi)`` at ``q > 1``
    (:func:`jaxrl.ops.tsallis.tsallis_policy` per state); uniform over the
    maximising actions at ``tau = 0``.

    Args:
      q_table: ``[S, A]`` action values.
      config: the config (``tau``, ``q``, ``normalizer_iters``).

    Returns:
      ``[S, A]`` row-stochastic policy.
    """
    return _per_state(tsallis.tsallis_policy, q_table, config)


def backup(mdp: FiniteMDP, q_table: Array, config: Config) -> Array:
    r"""Apply the noise-free M-VI / MVI(q) operator once, ``[S, A]``.

    :math:`R + \alpha[\tau \ln_q \pi]_{l_0}^0 + \gamma P \langle \pi,
    q - \tau \ln_q \pi\rangle` with :math:`\pi = \mathcal{G}_{\tau,q}(q)`
    (Vieillard et al. 2020, eq. 4; Zhu et al. 2023, MVI(q)).

    Args:
      mdp: the MDP.
      q_table: ``[S, A]`` action values ``q_k``.
      config: the config.

    Returns:
      ``[S, A]`` the backed-up table (before noise).
    """
    pi = policy(q_table, config)
    log_pi = _per_state(tsallis.scaled_log_q_policy, q_table, config)  # tau ln_q pi
    v = jnp.sum(pi * (q_table - log_pi), axis=-1)  # <pi, q - tau ln_q pi>  [S]
    bonus = config.alpha * jnp.clip(log_pi, config.l0, 0.0)
    return exact_dp.q_from_v(mdp, v) + bonus


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
        key, env_params, config, agent="mvi_tabular", init_fn=_init_state
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
    ``greedy=True`` takes ``argmax_a q(s, a)`` (ties towards the lowest index).
    Otherwise the action is sampled from the regularised policy
    ``G_{tau,q}(q)(.|s)`` (uniform over the maximisers at ``tau = 0``), and
    replaced by a uniformly random one with probability ``config.epsilon``.

    Args:
      params: ``[S, A]`` action values.
      obs: ``[S]`` one-hot or ``[]`` index (unbatched; vmap for a batch).
      key: typed key (split into exploration, random-action and policy keys).
      config: the config.
      greedy: act greedily (static).

    Returns:
      ``[]`` int32 action.
    """
    q_s = params[finite_mdp.state_index(obs, params.shape[0])]
    if greedy:
        return jnp.argmax(q_s).astype(jnp.int32)
    k_explore, k_random, k_policy = jax.random.split(key, 3)
    pi = tsallis.tsallis_policy(
        q_s, config.tau, config.q, num_iters=config.normalizer_iters
    )
    sampled = jax.random.categorical(k_policy, jnp.log(pi)).astype(jnp.int32)
    explore = jax.random.uniform(k_explore) < config.epsilon
    random_action = jax.random.randint(
        k_random, (), 0, params.shape[-1], dtype=jnp.int32
    )
    return jnp.where(explore, random_action, sampled)


def loss(
    params: Array, target_params: Array, batch: FiniteMDP, config: Config
) -> tuple[Array, Metrics]:
    """Return the sup-norm residual ``max |q - T_mvi q_target|`` and metrics.

    Args:
      params: ``[S, A]`` table ``q``.
      target_params: ``[S, A]`` table backed up by the M-VI operator (pass ``q``
        itself for the residual of ``q``).
      batch: the MDP.
      config: the config.

    Returns:
      ``(residual, {"dp/residual": residual, "dp/mse": mean squared residual})``.
    """
    diff = params - backup(batch, target_params, config)
    residual = jnp.max(jnp.abs(diff))
    return residual, {"dp/residual": residual, "dp/mse": jnp.mean(jnp.square(diff))}


def update(state: State, data: FiniteMDP, config: Config) -> tuple[State, Metrics]:
    """One sweep ``q <- T_mvi q + noise_std * eps``.

    Args:
      state: the agent state.
      data: the MDP.
      config: the config.

    Returns:
      ``(new_state, {"dp/residual": max |T_mvi q - q|})`` (before the sweep).
    """
    key, k_noise = jax.random.split(state.key)
    target = backup(data, state.q, config)
    residual = jnp.max(jnp.abs(target - state.q))
    q = target + config.noise_std * jax.random.normal(
        k_noise, target.shape, target.dtype
    )
    new_state = state.replace(q=q, key=key, step=state.step + 1)
    return new_state, {"dp/residual": residual}


def _evaluate(mdp: FiniteMDP, pis: Array) -> Array:
    """Return ``V^pi[N, S]`` of ``N`` policies ``pis[N, S, A]`` with ONE batched solve.

    One batched solve rather than several independent ones: with jaxlib 0.10's
    CPU LAPACK kernels, two batched solves that XLA schedules concurrently can
    deadlock the 2-thread intra-op pool (each kernel blocks waiting for batch
    tasks queued behind the other), hanging large vmapped sweeps.
    """
    return jax.vmap(exact_dp.policy_evaluation, in_axes=(None, 0))(mdp, pis)


def _optimal_q(mdp: FiniteMDP, config: Config) -> Array:
    """``Q*`` by policy iteration (once per chunk, before the sweeps)."""
    return exact_dp.optimal_q(mdp, config.oracle_iters)


def _exact_metrics(
    state: State, metrics: Metrics, mdp: FiniteMDP, q_star: Array, config: Config
) -> Metrics:
    """The exact metrics of the new table's policies (after each sweep)."""
    del metrics
    j_star = jnp.dot(mdp.mu0, jnp.max(q_star, axis=-1))
    pis = jnp.stack([policy(state.q, config), exact_dp.greedy_policy(state.q)])
    v_pi, v_greedy = _evaluate(mdp, pis)
    j_pi, j_greedy = jnp.dot(mdp.mu0, v_pi), jnp.dot(mdp.mu0, v_greedy)
    q_pi = exact_dp.q_from_v(mdp, v_pi)
    return {
        "dp/suboptimality": j_star - j_pi,
        "dp/suboptimality_greedy": j_star - j_greedy,
        "dp/value_gap": jnp.max(jnp.abs(q_star - q_pi)),
    }


_LOOP = {
    "agent": "mvi_tabular",
    "update_fn": update,
    "reference_fn": _optimal_q,
    "metrics_fn": _exact_metrics,
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
