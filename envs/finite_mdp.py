"""A sampling environment for any :class:`jaxrl.mdp.FiniteMDP` and its factories.

:class:`FiniteMDPEnv` follows the gymnax 1.0 contract (``step_env`` returns
``(obs, state, reward, terminated, info)``; ``Environment.step`` adds the time
limit as ``truncated``, auto-resets and stores the pre-reset observation in
``info["final_observation"]``). The MDP itself lives in :class:`EnvParams`, so it
is data: it can be traced, swept or vmapped like any other parameter, and one
``FiniteMDPEnv`` object (which only fixes ``S``, ``A`` and the observation format)
serves every MDP of that size.

One step from state ``s`` with action ``a``:

* ``s' ~ P[s, a, :]``;
* ``reward = R[s, a]`` (the *expected* reward table; the env pays it
  deterministically, so sampled returns are unbiased for the exact values);
* ``info["cost"] = C[s, a]`` when the MDP has a cost table (``mdp.C`` not None);
* ``terminated = terminal[s']``: entering a state flagged in
  ``EnvParams.terminal`` ends the episode (no bootstrap);
* ``truncated = time >= max_steps_in_episode`` (gymnax's ``is_truncated``).

For the exact DP values of the MDP to equal the episodic returns of the env,
terminal states should be absorbing with zero reward (``P[t, a, t] = 1``,
``R[t, a] = 0``); the gridworld and probe generators build them that way.

The MDP generators live in :mod:`jaxrl.envs.mdp_generators` (pure; they return
a :class:`FiniteMDP`): :func:`garnet`, :func:`chain`, :func:`gridworld` (with
:func:`parse_layout`), and the constrained MDPs (with a cost table ``C``)
:func:`random_cmdp` and :func:`hazard_gridworld`; this module re-exports them, so
``finite_mdp.garnet(...)`` keeps working.
Factories returning ``(env, env_params)``: :func:`make_finite_mdp_env`,
:func:`make_garnet_env`, :func:`make_chain_env`, :func:`make_gridworld_env`,
:func:`make_random_cmdp_env`, :func:`make_hazard_grid_env`, collected in
:data:`ENV_FACTORIES` for the registry in ``envs/__init__.py``.

Constrained MDPs: a CMDP is an MDP with a cost table plus a *budget* ``b`` on the
expected discounted cost ``J_c(pi) <= b``. The environment carries only the cost
table (``mdp.C``; the env emits ``info["cost"]``). The budget is a hyperparameter
of the constrained agent (``jaxrl.agents.cmdp_tabular.Config.budget``, traced, so a grid
of budgets is one ``vmap``), not part of :class:`FiniteMDP` or :class:`EnvParams`;
``jaxrl.agents.cmdp_tabular.budget_range`` gives the range of budgets where the
constraint binds.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from jaxrl.envs.mdp_generators import (
    DEFAULT_HAZARD_LAYOUT,
    DEFAULT_LAYOUT,
    GRID_ACTIONS,
    GridLayout,
    _check_probability,
    chain,
    garnet,
    gridworld,
    hazard_gridworld,
    parse_layout,
    random_cmdp,
)
from jaxrl.errors import ConfigError
from jaxrl.mdp import FiniteMDP, validate
from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = [
    "mdp_from_params",
    "EnvState",
    "EnvParams",
    "FiniteMDPEnv",
    "OBSERVATIONS",
    "state_index",
    "garnet",
    "chain",
    "gridworld",
    "random_cmdp",
    "hazard_gridworld",
    "GridLayout",
    "parse_layout",
    "DEFAULT_LAYOUT",
    "DEFAULT_HAZARD_LAYOUT",
    "GRID_ACTIONS",
    "make_env_params",
    "make_finite_mdp_env",
    "make_garnet_env",
    "make_chain_env",
    "make_gridworld_env",
    "make_random_cmdp_env",
    "make_hazard_grid_env",
    "ENV_FACTORIES",
]


def mdp_from_params(env_params: Any, user: str) -> FiniteMDP:
    """Return the :class:`FiniteMDP` held by ``env_params`` of a :class:`FiniteMDPEnv`.

    Exact-DP agents read the MDP tensors from ``env_params.mdp`` instead of
    sampling the environment.

    Args:
      env_params: environment parameters.
      user: who needs the MDP (named in the error message).

    Raises:
      ConfigError: if ``env_params`` carry no ``FiniteMDP`` in ``.mdp``.
    """
    mdp = getattr(env_params, "mdp", None)
    if not isinstance(mdp, FiniteMDP):
        raise ConfigError(
            f"{user} needs a FiniteMDPEnv: env_params must carry a FiniteMDP in .mdp, "
            f"got {type(env_params).__name__}"
        )
    return mdp


OBSERVATIONS = ("one_hot", "index")
"""Observation formats: ``"one_hot"`` (float32 ``[S]``) or ``"index"`` (int32)."""


def state_index(
    obs: ArrayLike, num_states: int | None = None, *, batch_ndim: int = 0
) -> Array:
    """Return the MDP state index of :class:`FiniteMDPEnv` observations.

    The inverse of the env's observation encoding, for both formats of
    :data:`OBSERVATIONS`: an ``"index"`` observation has ``batch_ndim`` axes
    and is returned as int32; a ``"one_hot"`` observation has one more axis,
    ``[..., S]``, and its position of the one is returned (``argmax``; exact for
    one-hot vectors of any dtype). Tabular agents use it to pick the row of
    their ``[S, A]`` tables, so they accept either format.

    Args:
      obs: ``[*batch]`` integer indices or ``[*batch, S]`` one-hot vectors.
      num_states: static ``S``, if known: the width a one-hot must have.
      batch_ndim: static number of leading batch axes (0 for one observation,
        as in an agent's ``act``).

    Returns:
      ``[*batch]`` int32 state indices.

    Raises:
      ConfigError: if ``obs`` has neither ``batch_ndim`` nor ``batch_ndim + 1``
        axes, if an index observation is not an integer, or if a one-hot's last
        axis is not ``num_states`` wide.

    Examples:
      >>> obs = jax.nn.one_hot(jnp.array([2, 0]), 4)  # two one-hot observations
      >>> state_index(obs, 4, batch_ndim=1)
      Array([2, 0], dtype=int32)
      >>> state_index(jnp.int32(3))
      Array(3, dtype=int32)
    """
    obs = jnp.asarray(obs)
    if obs.ndim == batch_ndim:
        if not jnp.issubdtype(obs.dtype, jnp.integer):
            raise ConfigError(
                f"an index observation must be an integer, got dtype {obs.dtype}"
            )
        return obs.astype(jnp.int32)
    if obs.ndim != batch_ndim + 1:
        raise ConfigError(
            f"observations must have {batch_ndim} axes (state index) or "
            f"{batch_ndim + 1} (one-hot [..., S]), got shape {obs.shape}"
        )
    if num_states is not None and obs.shape[-1] != num_states:
        raise ConfigError(
            f"one-hot observations must have {num_states} entries (one per state), "
            f"got shape {obs.shape}"
        )
    return jnp.argmax(obs, axis=-1).astype(jnp.int32)


@struct.dataclass
class EnvState(environment.EnvState):
    """State of :class:`FiniteMDPEnv`.

    Attributes:
      time: ``[]`` int32 steps taken in the current episode.
      state: ``[]`` int32 index of the current MDP state.
    """

    time: Array
    state: Array


@struct.dataclass(kw_only=True)
class EnvParams(environment.EnvParams):
    """Parameters of :class:`FiniteMDPEnv`; every field is a pytree leaf (traceable).

    Attributes:
      mdp: the :class:`FiniteMDP` (``P``, ``R``, ``mu0``, ``gamma``, optional ``C``).
      terminal: ``[S]`` bool; entering a flagged state terminates the episode.
      max_steps_in_episode: time limit; reaching it truncates the episode.
    """

    mdp: FiniteMDP
    terminal: Array
    max_steps_in_episode: Any = 100


class FiniteMDPEnv(environment.Environment[EnvState, EnvParams]):
    """Sample trajectories of a finite MDP stored in :class:`EnvParams` (gymnax 1.0).

    Args:
      num_states: ``S`` (static; must match ``params.mdp``).
      num_actions: ``A`` (static).
      observation: ``"one_hot"`` (default, float32 ``[S]``) or ``"index"`` (int32).
      default_params: the params used when ``step``/``reset`` get ``params=None``.
      name: the environment's name (e.g. its registry id).

    Raises:
      ConfigError: on a bad observation format or nonpositive sizes.

    Examples:
      >>> env, params = make_chain_env(num_states=4)
      >>> obs, state = env.reset(jax.random.key(0), params)
      >>> obs  # chain episodes start in state 0
      Array([1., 0., 0., 0.], dtype=float32)
      >>> obs, state, reward, terminated, truncated, info = env.step(
      ...     jax.random.key(1), state, 1, params)
      >>> int(state.state), float(reward)
      (1, 0.0)
    """

    def __init__(
        self,
        num_states: int,
        num_actions: int,
        *,
        observation: str = "one_hot",
        default_params: EnvParams | None = None,
        name: str = "FiniteMDP-v0",
    ):
        super().__init__()
        if observation not in OBSERVATIONS:
            raise ConfigError(
                f"observation must be one of {', '.join(OBSERVATIONS)}, "
                f"got {observation!r}"
            )
        if int(num_states) < 1 or int(num_actions) < 1:
            raise ConfigError(
                "num_states and num_actions must be >= 1, "
                f"got {num_states}, {num_actions}"
            )
        self.num_states = int(num_states)
        self._num_actions = int(num_actions)
        self.observation = observation
        self._default_params = default_params
        self._name = name

    # ------------------------------------------------------------------ gymnax API

    @property
    def default_params(self) -> EnvParams:
        """The params given at construction (factories always set them)."""
        if self._default_params is None:
            raise ConfigError(
                f"{self._name} has no default params; pass env_params "
                "(see make_finite_mdp_env)"
            )
        return self._default_params

    def _check(self, params: EnvParams) -> None:
        chex.assert_shape(
            params.mdp.P, (self.num_states, self._num_actions, self.num_states)
        )
        chex.assert_shape(params.terminal, (self.num_states,))

    def _obs(self, s: Array) -> Array:
        if self.observation == "one_hot":
            return jax.nn.one_hot(s, self.num_states, dtype=jnp.float32)
        return jnp.asarray(s, jnp.int32)

    def step_env(
        self, key: PRNGKey, state: EnvState, action: ArrayLike, params: EnvParams
    ) -> tuple[Array, EnvState, Array, Array, dict[str, Array]]:
        """Sample ``s' ~ P[s, a]``, pay ``R[s, a]``, terminate on entering a terminal.

        Args:
          key: typed key for the transition sample.
          state: current :class:`EnvState`.
          action: ``[]`` int action in ``[0, A)``.
          params: :class:`EnvParams`.

        Returns:
          ``(obs, state, reward, terminated, info)`` with ``info["cost"]`` present iff
          ``params.mdp.C`` is not None.
        """
        self._check(params)
        mdp = params.mdp
        a = jnp.asarray(action, jnp.int32)
        s = state.state
        row = mdp.P[s, a]
        next_s = jax.random.categorical(key, jnp.log(row)).astype(jnp.int32)
        reward = mdp.R[s, a]
        terminated = params.terminal[next_s]
        new_state = EnvState(time=state.time + 1, state=next_s)
        info: dict[str, Array] = {}
        if mdp.C is not None:
            info["cost"] = mdp.C[s, a]
        return self._obs(next_s), new_state, reward, terminated, info

    def reset_env(self, key: PRNGKey, params: EnvParams) -> tuple[Array, EnvState]:
        """Sample ``s_0 ~ mu0``; return ``(obs, state)`` with ``time = 0``."""
        self._check(params)
        s0 = jax.random.categorical(key, jnp.log(params.mdp.mu0)).astype(jnp.int32)
        return self._obs(s0), EnvState(time=jnp.asarray(0, jnp.int32), state=s0)

    def observe(
        self, key: PRNGKey, state: EnvState, action: ArrayLike | None, params: EnvParams
    ) -> Array:
        """Return the observation of ``state`` (``key`` and ``action`` are unused)."""
        del key, action, params
        return self._obs(state.state)

    def get_obs(
        self, state: EnvState, params: EnvParams | None = None, key: Any = None
    ) -> Array:
        """Return the observation of ``state`` (legacy gymnax hook)."""
        del params, key
        return self._obs(state.state)

    def is_terminated(self, state: EnvState, params: EnvParams) -> Array:
        """Whether ``state`` is flagged terminal."""
        return params.terminal[state.state]

    @property
    def name(self) -> str:
        """Environment name."""
        return self._name

    @property
    def num_actions(self) -> int:
        """Number of actions ``A``."""
        return self._num_actions

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """``Discrete(A)``."""
        del params
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Space:
        """``Box(0, 1, (S,), float32)`` if one-hot, else ``Discrete(S)``."""
        del params
        if self.observation == "one_hot":
            return spaces.Box(0.0, 1.0, (self.num_states,), jnp.float32)
        return spaces.Discrete(self.num_states)

    def state_space(self, params: EnvParams | None = None) -> spaces.Dict:
        """``Dict(time=Discrete(max_steps + 1), state=Discrete(S))``."""
        params = self.default_params if params is None else params
        max_steps = int(np.max(np.asarray(params.max_steps_in_episode)))
        return spaces.Dict(
            {
                "time": spaces.Discrete(max_steps + 1),
                "state": spaces.Discrete(self.num_states),
            }
        )


# ======================================================================== factories


def make_env_params(
    mdp: FiniteMDP, *, max_steps: int = 100, terminal: ArrayLike | None = None
) -> EnvParams:
    """Build :class:`EnvParams` for an MDP after host-side checks.

    Args:
      mdp: the MDP (validated with :func:`jaxrl.mdp.validate`; tracers skipped).
      max_steps: time limit per episode, ``>= 1``.
      terminal: ``[S]`` bool mask of terminal states; default none.

    Returns:
      The params.

    Raises:
      ConfigError: on an invalid MDP, a bad ``terminal`` shape, ``mu0`` mass on a
        terminal state, or ``max_steps < 1``.
    """
    if not isinstance(mdp, FiniteMDP):
        raise ConfigError(
            f"mdp must be a jaxrl.mdp.FiniteMDP, got {type(mdp).__name__}"
        )
    validate(mdp)
    if np.ndim(mdp.P) != 3:
        raise ConfigError(
            "mdp must be one unbatched MDP with P of shape [S, A, S], "
            f"got {np.shape(mdp.P)}; "
            "vmap make_env_params over a batch instead"
        )
    S = mdp.num_states
    if not isinstance(max_steps, int | np.integer) or max_steps < 1:
        raise ConfigError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    if terminal is None:
        terminal = jnp.zeros((S,), bool)
    else:
        terminal = jnp.asarray(terminal, bool)
        if terminal.shape != (S,):
            raise ConfigError(
                f"terminal must be a bool mask of shape [{S}], "
                f"got {list(terminal.shape)}"
            )
        mu0 = mdp.mu0
        if not isinstance(mu0, jax.core.Tracer) and np.any(
            np.asarray(mu0)[np.asarray(terminal)] > 0
        ):
            bad = np.nonzero((np.asarray(mu0) > 0) & np.asarray(terminal))[0].tolist()
            raise ConfigError(
                f"mu0 puts mass on terminal states {bad}; episodes would start ended"
            )
    return EnvParams(mdp=mdp, terminal=terminal, max_steps_in_episode=int(max_steps))


def make_finite_mdp_env(
    mdp: FiniteMDP | None = None,
    *,
    max_steps: int = 100,
    terminal: ArrayLike | None = None,
    observation: str = "one_hot",
    name: str = "FiniteMDP-v0",
) -> tuple[FiniteMDPEnv, EnvParams]:
    """Return ``(env, env_params)`` sampling ``mdp`` (registry id ``FiniteMDP-v0``).

    Args:
      mdp: the MDP; ``None`` gives ``chain()`` (10 states) as a default example.
      max_steps: time limit per episode.
      terminal: ``[S]`` bool terminal mask (default: no terminal states).
      observation: ``"one_hot"`` or ``"index"``.
      name: the env's name.

    Returns:
      The env (static: sizes and observation format) and its params (data).

    Raises:
      ConfigError: see :func:`make_env_params`.

    Examples:
      >>> from jaxrl.testing import two_state
      >>> env, params = make_finite_mdp_env(two_state().mdp, max_steps=10)
      >>> env.num_actions, env.observation_space(params).shape
      (2, (2,))
    """
    mdp = chain() if mdp is None else mdp
    params = make_env_params(mdp, max_steps=max_steps, terminal=terminal)
    env = FiniteMDPEnv(
        mdp.num_states,
        mdp.num_actions,
        observation=observation,
        default_params=params,
        name=name,
    )
    return env, params


def make_garnet_env(
    *,
    key: PRNGKey | None = None,
    seed: int = 0,
    num_states: int = 20,
    num_actions: int = 4,
    branching: int = 3,
    gamma: float = 0.9,
    max_steps: int = 100,
    observation: str = "one_hot",
) -> tuple[FiniteMDPEnv, EnvParams]:
    """Return ``(env, env_params)`` for a Garnet MDP (registry id ``Garnet-v0``).

    The Garnet is drawn from ``key`` when given. Otherwise it is drawn from
    ``jax.random.key(seed)``: the seed is the user's explicit, reproducible
    choice of *which MDP* (part of the environment's definition, like a layout),
    which is why this factory may make a key (house rule 2 otherwise keeps key
    creation in scripts and tests). No terminal states.

    Args:
      key: typed key selecting the MDP (takes precedence over ``seed``).
      seed: integer seed used when ``key`` is None.
      num_states: ``S``.
      num_actions: ``A``.
      branching: successors per ``(s, a)``.
      gamma: discount factor.
      max_steps: time limit.
      observation: ``"one_hot"`` or ``"index"``.

    Returns:
      ``(env, env_params)``.

    Examples:
      >>> env, params = make_garnet_env(seed=3, num_states=6, num_actions=2)
      >>> params.mdp.P.shape
      (6, 2, 6)
    """
    if key is None:
        if not isinstance(seed, int | np.integer):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        key = jax.random.key(int(seed))
    mdp = garnet(key, num_states, num_actions, branching, gamma)
    return make_finite_mdp_env(
        mdp, max_steps=max_steps, observation=observation, name="Garnet-v0"
    )


def make_chain_env(
    *,
    num_states: int = 10,
    small_reward: float = 0.1,
    large_reward: float = 1.0,
    slip: float = 0.0,
    gamma: float = 0.9,
    max_steps: int = 100,
    observation: str = "one_hot",
) -> tuple[FiniteMDPEnv, EnvParams]:
    """Return ``(env, env_params)`` for :func:`chain` (registry id ``Chain-v0``).

    Continuing task: episodes end only by truncation at ``max_steps``.
    Arguments are those of :func:`chain` plus ``max_steps`` and ``observation``.
    """
    _check_probability("slip", slip)
    mdp = chain(
        num_states,
        small_reward=small_reward,
        large_reward=large_reward,
        slip=slip,
        gamma=gamma,
    )
    return make_finite_mdp_env(
        mdp, max_steps=max_steps, observation=observation, name="Chain-v0"
    )


def make_gridworld_env(
    layout: tuple[str, ...] | list[str] | str | None = None,
    *,
    slip: float = 0.1,
    gamma: float = 0.95,
    goal_reward: float = 1.0,
    trap_reward: float = -1.0,
    step_reward: float = 0.0,
    max_steps: int = 100,
    observation: str = "one_hot",
) -> tuple[FiniteMDPEnv, EnvParams]:
    """Return ``(env, env_params)`` for :func:`gridworld` (registry ``GridWorld-v0``).

    Goal and trap cells are terminal: entering one ends the episode. Arguments
    are those of :func:`gridworld` plus ``max_steps`` and ``observation``.

    Examples:
      >>> env, params = make_gridworld_env()
      >>> env.num_states, int(params.terminal.sum())
      (17, 2)
    """
    _check_probability("slip", slip)
    g = parse_layout(layout)
    mdp = gridworld(
        layout,
        slip=slip,
        gamma=gamma,
        goal_reward=goal_reward,
        trap_reward=trap_reward,
        step_reward=step_reward,
    )
    return make_finite_mdp_env(
        mdp,
        max_steps=max_steps,
        terminal=g.terminal,
        observation=observation,
        name="GridWorld-v0",
    )


def make_random_cmdp_env(
    *,
    key: PRNGKey | None = None,
    seed: int = 0,
    num_states: int = 10,
    num_actions: int = 3,
    branching: int = 3,
    gamma: float = 0.9,
    cost_correlation: float = 0.5,
    max_steps: int = 100,
    observation: str = "one_hot",
) -> tuple[FiniteMDPEnv, EnvParams]:
    """Return ``(env, env_params)`` for :func:`random_cmdp` (``RandomCMDP-v0``).

    As :func:`make_garnet_env`, the MDP is drawn from ``key`` when given, else
    from ``jax.random.key(seed)`` (the seed names *which* CMDP). The env emits
    ``info["cost"] = C[s, a]``; the budget belongs to the agent (module
    docstring). No terminal states.

    Args:
      key: typed key selecting the MDP (takes precedence over ``seed``).
      seed: integer seed used when ``key`` is None.
      num_states: ``S``.
      num_actions: ``A``.
      branching: successors per ``(s, a)``.
      gamma: discount factor.
      cost_correlation: weight of the reward in the cost, in ``[0, 1]``.
      max_steps: time limit.
      observation: ``"one_hot"`` or ``"index"``.

    Returns:
      ``(env, env_params)``.

    Examples:
      >>> env, params = make_random_cmdp_env(seed=1, num_states=6, num_actions=2)
      >>> params.mdp.C.shape, env.name
      ((6, 2), 'RandomCMDP-v0')
    """
    if key is None:
        if not isinstance(seed, int | np.integer):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        key = jax.random.key(int(seed))
    mdp = random_cmdp(
        key,
        num_states,
        num_actions,
        branching,
        gamma,
        cost_correlation=cost_correlation,
    )
    return make_finite_mdp_env(
        mdp, max_steps=max_steps, observation=observation, name="RandomCMDP-v0"
    )


def make_hazard_grid_env(
    layout: tuple[str, ...] | list[str] | str | None = None,
    *,
    slip: float = 0.1,
    gamma: float = 0.95,
    goal_reward: float = 1.0,
    trap_reward: float = -1.0,
    step_reward: float = 0.0,
    hazard_cost: float = 1.0,
    max_steps: int = 100,
    observation: str = "one_hot",
) -> tuple[FiniteMDPEnv, EnvParams]:
    """Return ``(env, env_params)`` for :func:`hazard_gridworld` (``HazardGrid-v0``).

    Goal and trap cells are terminal. The env emits ``info["cost"] = C[s, a]``
    (the expected hazard cost of the step). Arguments are those of
    :func:`hazard_gridworld` plus ``max_steps`` and ``observation``.

    Examples:
      >>> env, params = make_hazard_grid_env()
      >>> env.num_states, int(params.terminal.sum()), params.mdp.C.shape
      (24, 1, (24, 4))
    """
    _check_probability("slip", slip)
    g = parse_layout(DEFAULT_HAZARD_LAYOUT if layout is None else layout)
    mdp = hazard_gridworld(
        layout,
        slip=slip,
        gamma=gamma,
        goal_reward=goal_reward,
        trap_reward=trap_reward,
        step_reward=step_reward,
        hazard_cost=hazard_cost,
    )
    return make_finite_mdp_env(
        mdp,
        max_steps=max_steps,
        terminal=g.terminal,
        observation=observation,
        name="HazardGrid-v0",
    )


ENV_FACTORIES = {
    "FiniteMDP-v0": make_finite_mdp_env,
    "Garnet-v0": make_garnet_env,
    "Chain-v0": make_chain_env,
    "GridWorld-v0": make_gridworld_env,
    "RandomCMDP-v0": make_random_cmdp_env,
    "HazardGrid-v0": make_hazard_grid_env,
}
"""Registry id -> ``factory(**kwargs) -> (env, env_params)`` (see ``jaxrl.envs.make``)."""
