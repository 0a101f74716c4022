r"""Constrained (cost-emitting) versions of gymnax tasks for constrained RL.

A constrained MDP adds a per-step cost :math:`c_t = c(s_t, a_t, s_{t+1}) \ge 0` and
a budget :math:`b` to an MDP: maximise :math:`J_r(\pi)` subject to

.. math:: J_c(\pi) = \mathbb{E}_\pi\Big[\sum_{t=0}^{T-1} \gamma_c^t\, c_t\Big] \le b,

where :math:`T` is the episode length (termination or time limit). The budget is
**per episode**; ``cost_gamma`` :math:`= \gamma_c = 1` (the default) makes it the
undiscounted episode cost, :math:`\gamma_c < 1` the discounted one. Both ``b``
(``cost_limit``) and :math:`\gamma_c` (``cost_gamma``) live in the environment
parameters, next to the cost's own parameters (e.g. the band half-width), and
every one of them is a traced pytree leaf: a sweep over budgets or band widths is
a ``jax.vmap`` over the params, with no recompilation.

Every step's ``info`` carries

* ``info["cost"]``: float32 :math:`c_t` of this transition;
* ``info["discounted_cost"]``: float32 :math:`\gamma_c^{t} c_t`, with :math:`t` the
  number of steps taken in the episode before this one (the wrapped state's
  ``time``), so summing it over an episode gives the discounted episode cost.

Summed over an episode (``LogWrapper``'s ``episode_cost``, or
``jaxrl.rollout.evaluate(..., extras_keys=("cost", "discounted_cost"))``) they give
the two sides of the constraint; ``jaxrl.rollout.collect(...,
extras_keys=("cost",))`` puts :math:`c_t` into ``Transition.extras["cost"]``.

Design: one :class:`CostWrapper` plus a cost function per task. The wrapper works
one level *below* gymnax's ``step``: it implements ``step_env``/``reset_env``/
``is_truncated`` by calling the wrapped environment's, and lets the gymnax base
class's ``step`` perform the auto-reset. Two reasons:

1. a cost is a function of the *state*, and gymnax 1.0's ``step`` keeps only the
   pre-reset *observation* (``info["final_observation"]``); at ``step_env`` level the
   wrapper sees the pre-step state and the pre-reset post-step state of every
   transition, terminal ones included (MinAtar observations, for instance, do not
   determine the state);
2. the cost is computed before the reset, so the cost of a terminal step is kept
   and nothing of the finished episode reaches the next one; and ``obs``, reward,
   flags and the random stream are exactly those of the unwrapped environment
   (the same key split), which the tests check bit for bit.

The price: the wrapped environment's own ``step`` must be gymnax's (true of the
classic-control and MinAtar tasks; :class:`CostWrapper` refuses others, e.g. an
already wrapped ``LogWrapper``). Put ``LogWrapper``/``FlattenObservation`` *around*
the :class:`CostWrapper`. Dedicated environment classes would have duplicated the
gymnax dynamics for no gain; a generic wrapper also lets users add a cost to any
gymnax task with one function.

Registered tasks (:data:`ENV_FACTORIES`, built by ``jaxrl.envs.make``):

* ``CartPole-Constrained-v0``: :math:`c_t = 1[|x_{t+1}| > \text{x\_band}]`, the
  cart leaves the central band (:class:`CartPoleCostParams`,
  :func:`cartpole_band_cost`);
* ``MountainCar-Constrained-v0``: :math:`c_t = 1[|v_{t+1}| > \text{speed\_limit}]`,
  the car exceeds a speed limit (:class:`MountainCarCostParams`,
  :func:`mountain_car_speed_cost`);
* ``Acrobot-Constrained-v0``: :math:`c_t = |\tau(a_t)|`, the nominal torque
  magnitude, i.e. a fuel budget (:class:`ConstrainedParams`,
  :func:`acrobot_torque_cost`);
* ``Freeway-MinAtar-Constrained-v0``: :math:`c_t = 1` when a car hits the chicken
  (:class:`ConstrainedParams`, :func:`freeway_collision_cost`);
* ``Pendulum-Constrained-v0`` (continuous actions):
  :math:`c_t = 1[|\dot\theta_{t+1}| > \text{speed\_limit}]`, the pendulum spins
  faster than a speed limit (:class:`PendulumCostParams`,
  :func:`pendulum_speed_cost`), a velocity constraint like the Safety-Gym/MuJoCo
  velocity tasks;
* ``MountainCarContinuous-Constrained-v0`` (continuous actions): the speed limit
  of ``MountainCar-Constrained-v0`` on ``MountainCarContinuous-v0``
  (:class:`MountainCarCostParams`, :func:`mountain_car_speed_cost`).

Tabular CMDPs (``RandomCMDP-v0``, ``HazardGrid-v0`` and any
``jaxrl.envs.finite_mdp.FiniteMDPEnv`` whose MDP has a cost table ``C``) emit
``info["cost"] = C[s, a]`` but carry no budget, since the exact tabular agents
take theirs from their config. :func:`cost_table_env` wraps such an environment in
a :class:`CostWrapper` with :func:`finite_mdp_cost` and a budget, so the deep
constrained agents run on it unchanged.

Examples:
  >>> import jax
  >>> env, params = make_cartpole_constrained()
  >>> params = params.replace(x_band=0.0)  # every step off the centre costs 1
  >>> k_reset, k_step = jax.random.split(jax.random.key(0))
  >>> obs, state = env.reset(k_reset, params)
  >>> obs, state, reward, terminated, truncated, info = env.step(
  ...     k_step, state, 1, params)
  >>> float(info["cost"]), float(info["discounted_cost"])
  (1.0, 1.0)
  >>> float(params.cost_limit), int(params.max_steps_in_episode)
  (25.0, 500)
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment
from gymnax.environments.classic_control import (
    acrobot,
    cartpole,
    continuous_mountain_car,
    mountain_car,
    pendulum,
)
from gymnax.environments.minatar import freeway

from jaxrl.config import check_range
from jaxrl.envs.finite_mdp import mdp_from_params
from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayLike, PRNGKey

__all__ = [
    "CostFn",
    "ConstrainedParams",
    "CartPoleCostParams",
    "MountainCarCostParams",
    "PendulumCostParams",
    "CostWrapper",
    "budget_from_params",
    "cartpole_band_cost",
    "mountain_car_speed_cost",
    "acrobot_torque_cost",
    "freeway_collision_cost",
    "pendulum_speed_cost",
    "make_cartpole_constrained",
    "make_mountain_car_constrained",
    "make_acrobot_constrained",
    "make_freeway_constrained",
    "make_pendulum_constrained",
    "make_mountain_car_continuous_constrained",
    "finite_mdp_cost",
    "cost_table_env",
    "ENV_FACTORIES",
]

CostFn = Callable[[Any, Array, Any, Any], Array]
"""``cost_fn(state, action, next_state, params) -> []`` cost of one transition.

``state`` is the wrapped environment's state before the step, ``next_state`` the
one after it *before* any auto-reset, ``params`` the full :class:`ConstrainedParams`
(the wrapped environment's parameters are ``params.env_params``). It must be pure
and traceable and return a scalar.
"""


# ------------------------------------------------------------------------ params


@struct.dataclass(kw_only=True)
class ConstrainedParams:
    r"""Parameters of a :class:`CostWrapper`: the wrapped params plus the budget.

    Every field is a pytree leaf (traced), so budgets can be swept with ``vmap``.
    Subclasses add the fields their cost function reads.

    Attributes:
      env_params: the wrapped environment's ``EnvParams``.
      cost_limit: :math:`b \ge 0`, the per-episode budget on
        :math:`\sum_t \gamma_c^t c_t` (``inf`` allowed: no constraint).
      cost_gamma: :math:`\gamma_c \in (0, 1]`, the discount of the budgeted episode
        cost; 1 (default) budgets the undiscounted episode cost.
    """

    env_params: Any
    cost_limit: Any = 25.0  # b
    cost_gamma: Any = 1.0  # γ_c

    @property
    def max_steps_in_episode(self) -> Any:
        """The wrapped environment's time limit."""
        return self.env_params.max_steps_in_episode

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming a bad field (concrete values only)."""
        # inf: no constraint
        check_range("cost_limit", self.cost_limit, 0.0, math.inf, allow_inf=True)
        check_range("cost_gamma", self.cost_gamma, 0.0, 1.0, low_inclusive=False)


@struct.dataclass(kw_only=True)
class CartPoleCostParams(ConstrainedParams):
    """Parameters of ``CartPole-Constrained-v0`` (see :func:`cartpole_band_cost`).

    Attributes:
      x_band: half-width of the central band, ``>= 0``; a step that ends with
        ``|x| > x_band`` costs 1. (The episode terminates at ``|x| > 2.4``.)
    """

    cost_limit: Any = 25.0  # b: 5% of the 500-step episode outside the band
    x_band: Any = 1.0

    def validate(self) -> None:  # noqa: D102
        super().validate()
        check_range("x_band (band half-width)", self.x_band, 0.0, math.inf)


@struct.dataclass(kw_only=True)
class MountainCarCostParams(ConstrainedParams):
    """Parameters of ``MountainCar-Constrained-v0``: a speed limit.

    See :func:`mountain_car_speed_cost`.

    Attributes:
      speed_limit: ``>= 0``; a step that ends with ``|velocity| > speed_limit``
        costs 1. The default 0.05 binds: an energy-pumping policy
        (push along the velocity) reaches ``|v| ~ 0.059`` and spends about 15
        steps above 0.05 per episode (the env clips ``|v|`` at 0.07).
    """

    cost_limit: Any = 10.0  # b
    speed_limit: Any = 0.05

    def validate(self) -> None:  # noqa: D102
        super().validate()
        check_range("speed_limit", self.speed_limit, 0.0, math.inf)


@struct.dataclass(kw_only=True)
class PendulumCostParams(ConstrainedParams):
    """Parameters of ``Pendulum-Constrained-v0``: an angular speed limit.

    See :func:`pendulum_speed_cost`.

    Attributes:
      speed_limit: ``>= 0`` rad/s; a step that ends with
        ``|theta_dot| > speed_limit`` costs 1. The env clips ``|theta_dot|`` at
        ``max_speed = 8``. The default 4 binds: with
        ``theta_ddot = 15 sin(theta) + 3 u`` and ``|u| <= 2``, the energy
        ``theta_dot**2 / 2 + 15 cos(theta)`` cannot grow from the bottom to the
        top within ``|theta_dot| <= 4``, so a swing-up spends some steps above
        the limit; unconstrained SAC (10k steps, greedy) spends 10 to 22 per
        episode from random starts (0 from starts near the top).
    """

    cost_limit: Any = 5.0  # b: steps above the limit per 200-step episode
    speed_limit: Any = 4.0

    def validate(self) -> None:  # noqa: D102
        super().validate()
        check_range("speed_limit", self.speed_limit, 0.0, math.inf)


def budget_from_params(env_params: Any, user: str) -> tuple[Array, Array]:
    """Return ``(cost_limit, cost_gamma)`` carried by a constrained env's params.

    Constrained agents read the budget from the environment parameters with this.

    Args:
      env_params: parameters with ``cost_limit`` (and optionally ``cost_gamma``,
        default 1) fields, e.g. a :class:`ConstrainedParams`.
      user: who needs the budget (named in the error message).

    Returns:
      ``(b, gamma_c)`` as float32 arrays (traced if the params are).

    Raises:
      ConfigError: if ``env_params`` carries no ``cost_limit``.

    Examples:
      >>> env, params = make_cartpole_constrained()
      >>> b, gamma_c = budget_from_params(params, "lagrangian")
      >>> float(b), float(gamma_c)
      (25.0, 1.0)
    """
    if not hasattr(env_params, "cost_limit"):
        raise ConfigError(
            f"{user} needs a constrained environment: its params must carry a "
            f"cost_limit (e.g. jaxrl.envs.constrained.ConstrainedParams), got "
            f"{type(env_params).__name__}"
        )
    limit = jnp.asarray(env_params.cost_limit, jnp.float32)
    gamma_c = jnp.asarray(getattr(env_params, "cost_gamma", 1.0), jnp.float32)
    return limit, gamma_c


# ----------------------------------------------------------------------- wrapper


def _base_params(params: Any) -> Any:
    return params.env_params if isinstance(params, ConstrainedParams) else params


class CostWrapper(environment.Environment):
    r"""Add ``info["cost"]`` and ``info["discounted_cost"]`` to a gymnax environment.

    See the module docstring for the contract. The wrapper's state is the wrapped
    environment's state; its params are a :class:`ConstrainedParams` (or subclass)
    whose ``env_params`` are the wrapped params.

    Args:
      env: a gymnax 1.0 environment whose ``step`` is gymnax's own (the wrapper
        calls its ``step_env``, ``reset_env`` and ``is_truncated``).
      cost_fn: ``cost_fn(state, action, next_state, params) -> []`` (:data:`CostFn`).
      default_params: the params used when ``step``/``reset`` get ``None``; by
        default ``ConstrainedParams(env_params=env.default_params)``.
      name: the environment's name (e.g. its registry id); by default
        ``"<wrapped name>-Constrained"``.

    Raises:
      ConfigError: if ``env`` overrides ``step`` (a wrapper such as ``LogWrapper``,
        or an environment with its own auto-reset), or the default params are
        invalid.

    Examples:
      >>> import gymnax, jax, jax.numpy as jnp
      >>> base, base_params = gymnax.make("MountainCar-v0")
      >>> cost = lambda s, a, s1, p: jnp.float32(s1.position < -1.0)  # a cliff
      >>> env = CostWrapper(base, cost, name="MountainCar-Cliff")
      >>> params = env.default_params
      >>> obs, state = env.reset(jax.random.key(0), params)
      >>> state = state.replace(position=jnp.float32(-1.1))
      >>> out = env.step(jax.random.key(1), state, 0, params)
      >>> float(out[-1]["cost"])
      1.0
    """

    def __init__(
        self,
        env: Any,
        cost_fn: CostFn,
        default_params: ConstrainedParams | None = None,
        *,
        name: str | None = None,
    ):
        super().__init__()
        if getattr(type(env), "step", None) is not environment.Environment.step:
            raise ConfigError(
                f"CostWrapper needs an environment that uses gymnax's own step "
                f"(it wraps step_env); {getattr(env, 'name', type(env).__name__)} "
                "overrides step. Wrap the bare environment first and put "
                "LogWrapper/FlattenObservation around the CostWrapper"
            )
        if not callable(cost_fn):
            raise ConfigError(f"cost_fn must be callable, got {cost_fn!r}")
        if default_params is None:
            default_params = ConstrainedParams(env_params=env.default_params)
        if not isinstance(default_params, ConstrainedParams):
            raise ConfigError(
                "default_params must be a ConstrainedParams, got "
                f"{type(default_params).__name__}"
            )
        default_params.validate()
        self._env = env
        self._cost_fn = cost_fn
        self._default_params = default_params
        self._name = name if name is not None else f"{env.name}-Constrained"

    def __getattr__(self, name: str) -> Any:
        # Forward attributes the wrapper does not define (obs_shape, action_set,
        # ...). Guard the private slots and dunders so copy/pickle never recurse.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._env, name)

    # ----------------------------------------------------------- description

    @property
    def env(self) -> Any:
        """The wrapped environment."""
        return self._env

    @property
    def unwrapped(self) -> Any:
        """The innermost environment (through nested wrappers)."""
        return getattr(self._env, "unwrapped", self._env)

    @property
    def cost_fn(self) -> CostFn:
        """The cost function."""
        return self._cost_fn

    @property
    def default_params(self) -> ConstrainedParams:
        """The params given at construction."""
        return self._default_params

    @property
    def name(self) -> str:
        """The environment's name."""
        return self._name

    @property
    def num_actions(self) -> int:
        """The wrapped environment's number of actions."""
        return self._env.num_actions

    def action_space(self, params: Any = None) -> Any:
        """The wrapped action space (``params`` may be constrained or wrapped)."""
        return self._env.action_space(_base_params(params))

    def observation_space(self, params: Any) -> Any:
        """The wrapped observation space (``params`` may be constrained or wrapped)."""
        return self._env.observation_space(_base_params(params))

    def state_space(self, params: Any) -> Any:
        """The wrapped state space (``params`` may be constrained or wrapped)."""
        return self._env.state_space(_base_params(params))

    # ------------------------------------------------------------- dynamics

    def reset_env(self, key: PRNGKey, params: ConstrainedParams) -> tuple[Any, Any]:
        """Reset the wrapped environment (its ``reset_env``)."""
        return self._env.reset_env(key, params.env_params)

    def step_env(
        self, key: PRNGKey, state: Any, action: ArrayLike, params: ConstrainedParams
    ) -> tuple[Any, Any, Array, Array, dict[str, Any]]:
        """Step the wrapped ``step_env`` and add the transition's cost to ``info``.

        Returns:
          The wrapped ``(obs, next_state, reward, terminated, info)`` with
          ``info["cost"] = cost_fn(state, action, next_state, params)`` and
          ``info["discounted_cost"] = cost_gamma ** state.time * info["cost"]``
          (float32 scalars), both computed before gymnax's auto-reset.

        Raises:
          ConfigError: (at trace time) if the cost function returns a non-scalar.
        """
        obs, next_state, reward, terminated, info = self._env.step_env(
            key, state, action, params.env_params
        )
        cost = jnp.asarray(self._cost_fn(state, action, next_state, params))
        if cost.shape != ():
            raise ConfigError(
                f"the cost function of {self.name} must return a scalar per step, "
                f"got shape {cost.shape}"
            )
        cost = cost.astype(jnp.float32)
        gamma_c = jnp.asarray(params.cost_gamma, jnp.float32)
        weight = jnp.power(gamma_c, jnp.asarray(state.time, jnp.float32))
        info = {**info, "cost": cost, "discounted_cost": weight * cost}
        return obs, next_state, reward, terminated, info

    def is_truncated(self, state: Any, params: ConstrainedParams) -> Array:
        """The wrapped environment's time limit."""
        return self._env.is_truncated(state, params.env_params)

    def is_terminated(self, state: Any, params: Any) -> Array:
        """The wrapped environment's termination test."""
        return self._env.is_terminated(state, _base_params(params))

    def get_obs(self, state: Any, params: Any = None, key: Any = None) -> Any:
        """The wrapped environment's observation of ``state``."""
        return self._env.get_obs(state, params=_base_params(params), key=key)


# ------------------------------------------------------------ cost functions


def cartpole_band_cost(
    state: cartpole.EnvState,
    action: ArrayLike,
    next_state: cartpole.EnvState,
    params: CartPoleCostParams,
) -> Array:
    r"""Cost 1 when the cart ends the step outside the central band.

    :math:`c_t = 1[|x_{t+1}| > \text{x\_band}]`. The terminal step of an episode
    that ends with ``|x| > 2.4`` is always costly (for ``x_band < 2.4``).

    Args:
      state: CartPole state before the step (unused).
      action: the action (unused).
      next_state: CartPole state after the step, before any reset.
      params: :class:`CartPoleCostParams`.

    Returns:
      ``[]`` float32 cost in ``{0, 1}``.
    """
    del state, action
    return (jnp.abs(next_state.x) > params.x_band).astype(jnp.float32)


def mountain_car_speed_cost(
    state: mountain_car.EnvState,
    action: ArrayLike,
    next_state: mountain_car.EnvState,
    params: MountainCarCostParams,
) -> Array:
    r"""Cost 1 when the car ends the step faster than the speed limit.

    :math:`c_t = 1[|v_{t+1}| > \text{speed\_limit}]`.

    Args:
      state: MountainCar state before the step (unused).
      action: the action (unused).
      next_state: MountainCar state after the step, before any reset.
      params: :class:`MountainCarCostParams`.

    Returns:
      ``[]`` float32 cost in ``{0, 1}``.
    """
    del state, action
    return (jnp.abs(next_state.velocity) > params.speed_limit).astype(jnp.float32)


def acrobot_torque_cost(
    state: acrobot.EnvState,
    action: ArrayLike,
    next_state: acrobot.EnvState,
    params: ConstrainedParams,
) -> Array:
    r"""Cost of the torque magnitude the action asks for: a fuel budget.

    :math:`c_t = |\tau(a_t)|` with :math:`\tau` = ``params.env_params.available_torque``
    (``[-1, 0, 1]`` by default, so every torqued step costs 1). The nominal torque is
    charged; the optional torque noise of the dynamics is not.

    Args:
      state: Acrobot state before the step (unused).
      action: int action index.
      next_state: Acrobot state after the step (unused).
      params: :class:`ConstrainedParams` of an Acrobot.

    Returns:
      ``[]`` float32 cost.
    """
    del state, next_state
    return jnp.abs(params.env_params.available_torque[action]).astype(jnp.float32)


def pendulum_speed_cost(
    state: pendulum.EnvState,
    action: ArrayLike,
    next_state: pendulum.EnvState,
    params: PendulumCostParams,
) -> Array:
    r"""Cost 1 when the pendulum ends the step faster than the speed limit.

    :math:`c_t = 1[|\dot\theta_{t+1}| > \text{speed\_limit}]`, with
    :math:`\dot\theta_{t+1}` after the env's own clip at ``max_speed``.

    Args:
      state: Pendulum state before the step (unused).
      action: the ``[1]`` torque (unused).
      next_state: Pendulum state after the step, before any reset.
      params: :class:`PendulumCostParams`.

    Returns:
      ``[]`` float32 cost in ``{0, 1}``.
    """
    del state, action
    return (jnp.abs(next_state.theta_dot) > params.speed_limit).astype(jnp.float32)


_FREEWAY_START_ROW = 9  # the chicken's start row; no car drives on it


def freeway_collision_cost(
    state: freeway.EnvState,
    action: ArrayLike,
    next_state: freeway.EnvState,
    params: ConstrainedParams,
    *,
    action_set: tuple[int, ...],
) -> Array:
    """Cost 1 when a car hits the chicken during the step.

    In Freeway-MinAtar the chicken first moves (``step_agent``: up/down when its
    move timer allows; reaching the top scores and sends it back to row 9), then the
    cars move, and a car on the chicken's cell sends it back to row 9. Cars drive
    on rows 1-8 only, so a collision happened exactly when the chicken was on a
    car row after its own move and is on row 9 after the step.

    Args:
      state: Freeway state before the step.
      action: int action index into ``action_set``.
      next_state: Freeway state after the step, before any reset.
      params: :class:`ConstrainedParams` of a Freeway.
      action_set: the environment's action codes (``env.action_set`` as ints);
        bind it with ``functools.partial`` (see :func:`make_freeway_constrained`).

    Returns:
      ``[]`` float32 cost in ``{0, 1}``.
    """
    code = jnp.asarray(action_set, jnp.int32)[action]
    moved, _, _ = freeway.step_agent(code, state, params.env_params)
    hit = jnp.logical_and(
        moved.pos != _FREEWAY_START_ROW, next_state.pos == _FREEWAY_START_ROW
    )
    return hit.astype(jnp.float32)


# ------------------------------------------------------------- tabular CMDPs


def finite_mdp_cost(
    state: Any, action: ArrayLike, next_state: Any, params: ConstrainedParams
) -> Array:
    """Cost of a :class:`jaxrl.envs.finite_mdp.FiniteMDPEnv` step: its cost table's entry.

    :math:`c_t = C[s_t, a_t]` with ``C = params.env_params.mdp.C`` (``[S, A]``),
    the value the finite-MDP environment itself reports as ``info["cost"]``.

    Args:
      state: the finite-MDP state before the step (``state.state`` is ``s_t``).
      action: int action ``a_t``.
      next_state: the state after the step (unused).
      params: :class:`ConstrainedParams` whose ``env_params`` hold the MDP.

    Returns:
      ``[]`` cost.
    """
    del next_state
    return params.env_params.mdp.C[state.state, action]


def cost_table_env(
    env: Any,
    env_params: Any = None,
    *,
    cost_limit: Any,
    cost_gamma: Any = None,
    name: str | None = None,
) -> tuple[CostWrapper, ConstrainedParams]:
    r"""Return a budgeted, cost-emitting version of a finite MDP with a cost table.

    Wraps ``env`` in a :class:`CostWrapper` with :func:`finite_mdp_cost`, so every
    step's ``info`` carries ``"cost"`` :math:`= C[s_t, a_t]` and
    ``"discounted_cost"`` :math:`= \gamma_c^t C[s_t, a_t]`, and the params carry
    the budget (:func:`budget_from_params`). Observations, rewards, flags and the
    random stream are the wrapped environment's, as for every :class:`CostWrapper`.

    The MDP stays data: it is ``params.env_params.mdp``, so (as for the budget) a
    sweep over MDPs is a ``vmap`` over the returned params.

    Args:
      env: a :class:`jaxrl.envs.finite_mdp.FiniteMDPEnv`, e.g. from
        ``jaxrl.envs.make("RandomCMDP-v0")`` or ``jaxrl.envs.make("HazardGrid-v0")``.
      env_params: its params, holding a :class:`jaxrl.mdp.FiniteMDP` with a cost
        table ``C`` in ``.mdp`` (default: ``env.default_params``).
      cost_limit: :math:`b \ge 0`, the budget on the episode's
        :math:`\sum_t \gamma_c^t c_t`.
      cost_gamma: :math:`\gamma_c \in (0, 1]`; by default the MDP's own
        ``gamma``, so the budget is on the discounted cost of the tabular CMDP
        (the :math:`J_c` of ``jaxrl.agents.cmdp_tabular`` when episodes are long
        enough for the time limit not to matter).
      name: the wrapped environment's name; by default the wrapped name with
        ``-Constrained`` before its version (``"RandomCMDP-Constrained-v0"``).

    Returns:
      ``(env, params)``: the :class:`CostWrapper` and its
      :class:`ConstrainedParams` (``env_params`` nested).

    Raises:
      ConfigError: if the params hold no finite MDP, the MDP has no cost table,
        or the budget is invalid (negative ``cost_limit``, ``cost_gamma`` outside
        ``(0, 1]``).

    Examples:
      >>> import jax
      >>> from jaxrl import envs
      >>> env, params = cost_table_env(*envs.make("HazardGrid-v0"), cost_limit=0.5)
      >>> env.name, float(params.cost_limit), round(float(params.cost_gamma), 6)
      ('HazardGrid-Constrained-v0', 0.5, 0.95)
      >>> obs, state = env.reset(jax.random.key(0), params)
      >>> s = int(state.state)
      >>> info = env.step(jax.random.key(1), state, 1, params)[-1]
      >>> float(info["cost"]) == float(params.env_params.mdp.C[s, 1])
      True
    """
    if env_params is None:
        env_params = env.default_params
    mdp = mdp_from_params(env_params, "cost_table_env")
    if mdp.C is None:
        raise ConfigError(
            f"cost_table_env needs an MDP with a cost table C; "
            f"{getattr(env, 'name', type(env).__name__)}'s MDP has none "
            "(see jaxrl.envs.finite_mdp.random_cmdp and hazard_gridworld)"
        )
    if cost_gamma is None:
        cost_gamma = mdp.gamma
    params = ConstrainedParams(
        env_params=env_params, cost_limit=cost_limit, cost_gamma=cost_gamma
    )
    if name is None:
        name = re.sub(r"(-v\d+)?$", r"-Constrained\1", env.name, count=1)
    return CostWrapper(env, finite_mdp_cost, params, name=name), params


# ----------------------------------------------------------------- factories


def make_cartpole_constrained() -> tuple[CostWrapper, CartPoleCostParams]:
    """Build ``CartPole-Constrained-v0``: CartPole-v1 with a central-band cost.

    Returns:
      ``(env, params)``; ``params`` is a :class:`CartPoleCostParams`.
    """
    base = cartpole.CartPole()
    params = CartPoleCostParams(env_params=base.default_params)
    env = CostWrapper(base, cartpole_band_cost, params, name="CartPole-Constrained-v0")
    return env, params


def make_mountain_car_constrained() -> tuple[CostWrapper, MountainCarCostParams]:
    """Build ``MountainCar-Constrained-v0``: MountainCar-v0 with a speed limit.

    Returns:
      ``(env, params)``; ``params`` is a :class:`MountainCarCostParams`.
    """
    base = mountain_car.MountainCar()
    params = MountainCarCostParams(env_params=base.default_params)
    env = CostWrapper(
        base, mountain_car_speed_cost, params, name="MountainCar-Constrained-v0"
    )
    return env, params


def make_acrobot_constrained() -> tuple[CostWrapper, ConstrainedParams]:
    """Build ``Acrobot-Constrained-v0``: Acrobot-v1 with a fuel (torque) budget.

    The default budget of 50 torque units binds: a bang-bang energy-pumping
    policy swings up in about 85 steps, torquing on every one.

    Returns:
      ``(env, params)``; ``params`` is a :class:`ConstrainedParams`.
    """
    base = acrobot.Acrobot()
    params = ConstrainedParams(env_params=base.default_params, cost_limit=50.0)
    env = CostWrapper(base, acrobot_torque_cost, params, name="Acrobot-Constrained-v0")
    return env, params


def make_freeway_constrained(
    use_minimal_action_set: bool = True,
) -> tuple[CostWrapper, ConstrainedParams]:
    """Build ``Freeway-MinAtar-Constrained-v0``: Freeway with a cost per collision.

    The default budget of 10 collisions per 2500-step episode binds: always
    pressing "up" crosses about 15 times per episode and is hit about 200 times;
    a uniformly random policy is hit about 100 times.

    Args:
      use_minimal_action_set: as for gymnax's ``MinFreeway`` (3 actions by default,
        the full 6 otherwise).

    Returns:
      ``(env, params)``; ``params`` is a :class:`ConstrainedParams`.
    """
    base = freeway.MinFreeway(use_minimal_action_set=bool(use_minimal_action_set))
    cost_fn = functools.partial(
        freeway_collision_cost, action_set=tuple(int(a) for a in base.action_set)
    )
    params = ConstrainedParams(env_params=base.default_params, cost_limit=10.0)
    env = CostWrapper(base, cost_fn, params, name="Freeway-MinAtar-Constrained-v0")
    return env, params


def make_pendulum_constrained() -> tuple[CostWrapper, PendulumCostParams]:
    """Build ``Pendulum-Constrained-v0``: Pendulum-v1 with an angular speed limit.

    Returns:
      ``(env, params)``; ``params`` is a :class:`PendulumCostParams`.
    """
    base = pendulum.Pendulum()
    params = PendulumCostParams(env_params=base.default_params)
    env = CostWrapper(base, pendulum_speed_cost, params, name="Pendulum-Constrained-v0")
    return env, params


def make_mountain_car_continuous_constrained() -> tuple[
    CostWrapper, MountainCarCostParams
]:
    """Build ``MountainCarContinuous-Constrained-v0``: a speed limit on the car.

    ``MountainCarContinuous-v0`` with :func:`mountain_car_speed_cost` (the state
    has the same ``velocity`` field and clip ``|v| <= 0.07`` as the discrete
    task) and the defaults of :class:`MountainCarCostParams`.

    Returns:
      ``(env, params)``; ``params`` is a :class:`MountainCarCostParams`.
    """
    base = continuous_mountain_car.ContinuousMountainCar()
    params = MountainCarCostParams(env_params=base.default_params)
    env = CostWrapper(
        base,
        mountain_car_speed_cost,
        params,
        name="MountainCarContinuous-Constrained-v0",
    )
    return env, params


ENV_FACTORIES: dict[str, Callable[..., tuple[CostWrapper, ConstrainedParams]]] = {
    "CartPole-Constrained-v0": make_cartpole_constrained,
    "MountainCar-Constrained-v0": make_mountain_car_constrained,
    "Acrobot-Constrained-v0": make_acrobot_constrained,
    "Freeway-MinAtar-Constrained-v0": make_freeway_constrained,
    "Pendulum-Constrained-v0": make_pendulum_constrained,
    "MountainCarContinuous-Constrained-v0": make_mountain_car_continuous_constrained,
}
"""Registry ids of the constrained tasks and their ``(env, params)`` factories."""
