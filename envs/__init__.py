"""On-accelerator environments (gymnax 1.0 contract) and the environment registry.

:func:`make` builds any gymnax environment id or one of our own environments
(``FiniteMDP-v0``, ``Garnet-v0``, ``Chain-v0``, ``GridWorld-v0``,
``RandomCMDP-v0``, ``HazardGrid-v0`` from :mod:`jaxrl.envs.finite_mdp`; ``CliffGrid-v0``,
``Homeostasis-v0`` from :mod:`jaxrl.envs.risk`; the cost-emitting ``CartPole-Constrained-v0``,
``MountainCar-Constrained-v0``, ``Acrobot-Constrained-v0``,
``Freeway-MinAtar-Constrained-v0`` and, with continuous actions,
``Pendulum-Constrained-v0`` and ``MountainCarContinuous-Constrained-v0`` from
:mod:`jaxrl.envs.constrained`) and returns
``(env, env_params)``.

A keyword argument either names a field of the environment's ``EnvParams`` (it
overrides the default, e.g. ``max_steps_in_episode=200``) or an argument of its
constructor: the environment class for gymnax ids (e.g. ``size=10`` for
``DeepSea-bsuite``), the factory in ``jaxrl.envs.finite_mdp.ENV_FACTORIES`` for our own
ids (e.g. ``num_states=5`` for ``Chain-v0``). Constructor arguments win when a
name is both. The params of a constrained id nest the wrapped task's params
(:class:`jaxrl.envs.constrained.ConstrainedParams`); a keyword may name a cost field of
the outer params (``cost_limit``, ``cost_gamma``, ``x_band``, ...) or a field of
the wrapped task's ``EnvParams`` (``max_steps_in_episode``, ``gravity``, ...).

The MinAtar ids (``*-MinAtar``) also take ``sticky_action_prob=p`` in
``[0, 1]``: the environment is wrapped in :class:`StickyActions` (with
probability ``p`` the previous action is executed instead of the chosen one,
as in the original MinAtar, whose default is 0.1) and ``p`` is a traced field
of the returned params. Without the keyword nothing is wrapped.

``MNISTBandit-bsuite`` downloads MNIST when it is built (into gymnax's cache,
``/tmp/mnist``); without network access and without a cached copy, ``make`` raises
:class:`~jaxrl.errors.ConfigError` saying so.

Examples:
  >>> from jaxrl import envs
  >>> env, params = envs.make("CartPole-v1", max_steps_in_episode=200)
  >>> params.max_steps_in_episode
  200
  >>> envs.num_actions(env, params), envs.obs_shape(env, params)
  (2, (4,))
  >>> env, params = envs.make(
  ...     "CartPole-Constrained-v0", x_band=0.5, cost_limit=10.0,
  ...     max_steps_in_episode=200)
  >>> float(params.x_band), float(params.cost_limit), params.max_steps_in_episode
  (0.5, 10.0, 200)
"""

from __future__ import annotations

if __name__ != "jaxrl.envs":  # the repo folder envs/ imported under its folder name
    raise ImportError(
        "envs/ is the package jaxrl.envs: write `from jaxrl import envs` "
        "(or `import jaxrl.envs`), not `import envs`"
    )

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import gymnax
import gymnax.registration
import numpy as np
from gymnax.environments import spaces

from jaxrl.envs.constrained import ENV_FACTORIES as _CONSTRAINED_FACTORIES
from jaxrl.envs.constrained import ConstrainedParams, CostWrapper
from jaxrl.envs.finite_mdp import ENV_FACTORIES as _FINITE_FACTORIES
from jaxrl.envs.risk import ENV_FACTORIES as _RISK_FACTORIES
from jaxrl.envs.wrappers import (
    FlattenObservation,
    GymnaxV0StepAdapter,
    LogWrapper,
    StickyActions,
    with_sticky_actions,
)
from jaxrl.errors import ConfigError

__all__ = [
    "make",
    "registered_envs",
    "is_discrete",
    "num_actions",
    "obs_shape",
    "LogWrapper",
    "FlattenObservation",
    "GymnaxV0StepAdapter",
    "StickyActions",
    "STICKY_ACTION_PROB",
    "CostWrapper",
    "ConstrainedParams",
]

_GYMNAX_IDS: tuple[str, ...] = tuple(gymnax.registered_envs)
_OWN_FACTORIES = {**_FINITE_FACTORIES, **_RISK_FACTORIES}
_OWN_IDS: tuple[str, ...] = tuple(_OWN_FACTORIES)
_CONSTRAINED_IDS: tuple[str, ...] = tuple(_CONSTRAINED_FACTORIES)

registered_envs: tuple[str, ...] = tuple(
    dict.fromkeys(_GYMNAX_IDS + _OWN_IDS + _CONSTRAINED_IDS)
)
"""Every id :func:`make` accepts: all gymnax ids (at import time), then our own."""


def _suggest(name: str) -> str:
    lowered = {n.lower(): n for n in registered_envs}
    match = difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[match[0]]!r}?)" if match else ""


def _keyword_names(fn: Callable[..., Any]) -> tuple[list[str], bool]:
    """Return (named keyword parameters, accepts **kwargs) of a callable."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return [], True
    names = [
        p.name
        for p in params
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def make(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """Build a registered environment and its parameters.

    Args:
      name: an id in :data:`registered_envs`.
      **kwargs: constructor arguments (of the gymnax environment class, or of
        our factory in ``jaxrl.envs.finite_mdp.ENV_FACTORIES`` or
        ``jaxrl.envs.constrained.ENV_FACTORIES``) and/or ``EnvParams`` field
        overrides (for a constrained id: its cost fields or the wrapped task's
        fields).

    Returns:
      ``(env, env_params)``: a gymnax ``Environment`` and its (overridden) params.

    Raises:
      ConfigError: unknown ``name`` (lists the valid ids, suggests a close match),
        unknown keyword (lists the valid ones), a constructor that rejects its
        arguments, an invalid cost field (e.g. a negative band width or budget),
        or ``MNISTBandit-bsuite`` when MNIST cannot be downloaded.

    Examples:
      >>> env, params = make("DeepSea-bsuite", size=5)
      >>> params.max_steps_in_episode
      5
      >>> make("CartPole-v0")  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      jaxrl.errors.ConfigError: unknown environment 'CartPole-v0' (did you mean ...
    """
    if not isinstance(name, str) or name not in registered_envs:
        raise ConfigError(
            f"unknown environment {name!r}{_suggest(name)}; registered: "
            f"{', '.join(registered_envs)}"
        )
    if name in _GYMNAX_IDS:
        return _make_gymnax(name, kwargs)
    if name in _CONSTRAINED_IDS:
        return _make_constrained(name, kwargs)
    return _make_own(name, kwargs)


def _make_own(name: str, kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    factory = _OWN_FACTORIES[name]
    valid, any_kw = _keyword_names(factory)
    factory_kwargs = {k: v for k, v in kwargs.items() if any_kw or k in valid}
    overrides = {k: v for k, v in kwargs.items() if k not in factory_kwargs}
    try:
        env, params = factory(**factory_kwargs)
    except ConfigError:
        raise
    except ValueError as err:  # e.g. gamma="abc": a value the factory cannot convert
        detail = " ".join(str(err).split())
        raise ConfigError(
            f"cannot build {name} with {factory_kwargs}: {detail}"
        ) from None
    return env, _override_params(name, params, overrides, valid, "factory arguments")


def _make_constrained(name: str, kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    """Build a cost-emitting env; route overrides to the outer or the nested params."""
    factory = _CONSTRAINED_FACTORIES[name]
    valid, _ = _keyword_names(factory)
    factory_kwargs = {k: v for k, v in kwargs.items() if k in valid}
    overrides = {k: v for k, v in kwargs.items() if k not in factory_kwargs}
    env, params = factory(**factory_kwargs)
    cost_fields = [f.name for f in dataclasses.fields(params) if f.name != "env_params"]
    base_fields = [f.name for f in dataclasses.fields(params.env_params)]
    unknown = [k for k in overrides if k not in cost_fields and k not in base_fields]
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {name}; "
            f"valid cost fields: {', '.join(cost_fields)}; "
            f"valid EnvParams fields of the wrapped {env.env.name}: "
            f"{', '.join(base_fields)}; "
            f"factory arguments: {', '.join(valid) or '(none)'}"
        )
    outer = {k: v for k, v in overrides.items() if k in cost_fields}
    inner = {k: v for k, v in overrides.items() if k not in outer}
    for key, value in outer.items():
        if isinstance(value, str) or isinstance(value, bool):
            raise ConfigError(
                f"{name} option {key}={value!r} must be a number, "
                f"not a {type(value).__name__}"
            )
    env_params = _override_params(
        name, params.env_params, inner, valid, "factory arguments"
    )
    params = params.replace(env_params=env_params, **outer)
    params.validate()
    return env, params


STICKY_ACTION_PROB = "sticky_action_prob"
"""Keyword of :func:`make` for MinAtar's sticky actions (:class:`StickyActions`)."""


def _sticky_prob(name: str, value: Any) -> float:
    if not name.endswith("-MinAtar"):
        minatar = [n for n in _GYMNAX_IDS if n.endswith("-MinAtar")]
        raise ConfigError(
            f"{STICKY_ACTION_PROB} applies to the MinAtar games "
            f"({', '.join(minatar)}), not {name}"
        )
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ConfigError(
            f"{STICKY_ACTION_PROB} must be a number in [0, 1], got {value!r}"
        )
    prob = float(value)
    if not 0.0 <= prob <= 1.0:  # also rejects nan
        raise ConfigError(
            f"{STICKY_ACTION_PROB} must be in [0, 1] (MinAtar's is 0.1), got {value!r}"
        )
    return prob


def _make_gymnax(name: str, kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    if STICKY_ACTION_PROB in kwargs:
        kwargs = dict(kwargs)
        prob = _sticky_prob(name, kwargs.pop(STICKY_ACTION_PROB))
        env, params = _make_gymnax(name, kwargs)
        return StickyActions(env), with_sticky_actions(params, prob)
    env_class = getattr(gymnax.registration, "_registry", {}).get(name)
    ctor_names, _ = (
        _keyword_names(env_class.__init__) if env_class is not None else ([], False)
    )
    ctor_kwargs = {k: v for k, v in kwargs.items() if k in ctor_names}
    overrides = {k: v for k, v in kwargs.items() if k not in ctor_kwargs}
    try:
        env, params = gymnax.make(name, **ctor_kwargs)
    except OSError as err:  # urllib's URLError is an OSError
        detail = " ".join(str(err).split())
        raise ConfigError(
            f"{name} downloads its data when built and that failed ({detail}); "
            "it needs network access or a cached copy "
            "(gymnax caches MNIST in /tmp/mnist)"
        ) from None
    except (TypeError, ValueError, AssertionError) as err:
        detail = " ".join(str(err).split())
        raise ConfigError(f"cannot build {name} with {ctor_kwargs}: {detail}") from None
    return env, _override_params(
        name, params, overrides, ctor_names, "constructor arguments"
    )


def _override_params(
    name: str,
    params: Any,
    overrides: Mapping[str, Any],
    other: list[str],
    other_kind: str,
) -> Any:
    """Return ``params`` with fields replaced; unknown names raise ConfigError."""
    if not overrides:
        return params
    fields = [f.name for f in dataclasses.fields(params)]
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {name}; "
            f"valid EnvParams fields: {', '.join(fields)}; "
            f"{other_kind}: {', '.join(other) or '(none)'}"
        )
    for key, value in overrides.items():
        current = getattr(params, key)
        if isinstance(value, str) and not isinstance(current, str):
            raise ConfigError(
                f"{name} option {key}={value!r} must be a {type(current).__name__}, "
                "not a string"
            )
    steps = overrides.get("max_steps_in_episode", 1)
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ConfigError(
            f"max_steps_in_episode must be an integer >= 1, got {steps!r}"
        )
    return params.replace(**overrides)


def is_discrete(env: Any, params: Any) -> bool:
    """Return True if ``env``'s action space is ``Discrete`` (under ``params``).

    Examples:
      >>> env, params = make("Pendulum-v1")
      >>> is_discrete(env, params)
      False
    """
    return isinstance(env.action_space(params), spaces.Discrete)


def num_actions(env: Any, params: Any, user: str = "num_actions") -> int:
    """Return the number of discrete actions.

    Args:
      env: the environment.
      params: its parameters.
      user: who needs the discrete actions (an agent's name), for the message.

    Raises:
      ConfigError: if the action space is not ``Discrete`` (one line naming
        ``user``, the env and its action space).

    Examples:
      >>> env, params = make("Breakout-MinAtar")
      >>> num_actions(env, params)
      3
      >>> num_actions(*make("Pendulum-v1"), user="dqn")
      Traceback (most recent call last):
      ...
      jaxrl.errors.ConfigError: dqn needs a Discrete action space; Pendulum-v1 has a Box one
    """
    space = env.action_space(params)
    if not isinstance(space, spaces.Discrete):
        raise ConfigError(
            f"{user} needs a Discrete action space; "
            f"{env.name} has a {type(space).__name__} one"
        )
    return int(space.n)


def obs_shape(env: Any, params: Any) -> tuple[int, ...]:
    """Return the shape of one (unbatched) observation, from the observation space.

    Raises:
      ConfigError: if the observation space has no single shape (Dict/Tuple spaces).

    Examples:
      >>> env, params = make("Breakout-MinAtar")
      >>> obs_shape(env, params)
      (10, 10, 4)
    """
    space = env.observation_space(params)
    shape = getattr(space, "shape", None)
    if shape is None:
        raise ConfigError(
            f"{env.name} has a {type(space).__name__} observation space "
            "without one shape"
        )
    return tuple(int(d) for d in shape)
