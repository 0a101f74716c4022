"""Configuration plumbing: static fields, ``k=v`` overrides, JSON, stacking for sweeps.

Configs are frozen ``flax.struct`` dataclasses. Fields that fix shapes, loop
lengths or code paths are marked :data:`static` (part of the treedef, so a change
recompiles); every numeric hyperparameter is a pytree leaf (traced), so a grid of
hyperparameters is a stacked config that ``jax.vmap`` maps over without
recompiling.

Examples:
  >>> from flax import struct
  >>> @struct.dataclass
  ... class Cfg:
  ...     num_envs: int = static(default=4)
  ...     lr: float = 1e-3
  >>> apply_overrides(Cfg(), ["lr=0.01", "num_envs=8"])
  Cfg(num_envs=8, lr=0.01)
  >>> stack_configs([Cfg(lr=0.1), Cfg(lr=0.2)]).lr.shape
  (2,)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxrl.errors import ConfigError

__all__ = [
    "static",
    "is_static_field",
    "static_fields",
    "traced_fields",
    "apply_overrides",
    "to_dict",
    "from_dict",
    "to_json",
    "from_json",
    "stack_configs",
    "grid",
    "validate",
    "check_range",
    "check_positive",
    "check_integer",
    "check_order",
    "is_concrete",
]

static = functools.partial(struct.field, pytree_node=False)
"""A config field that is part of the treedef: shapes, loop lengths, code paths."""


def is_static_field(field: dataclasses.Field) -> bool:
    """Return True if ``field`` was declared with :data:`static`."""
    return not field.metadata.get("pytree_node", True)


def _fields(config: Any) -> tuple[dataclasses.Field, ...]:
    if not dataclasses.is_dataclass(config):
        raise ConfigError(f"expected a config dataclass, got {type(config).__name__}")
    return dataclasses.fields(config)


def static_fields(config: Any) -> dict[str, Any]:
    """Return ``{name: value}`` of the static fields of ``config``."""
    return {
        f.name: getattr(config, f.name) for f in _fields(config) if is_static_field(f)
    }


def traced_fields(config: Any) -> dict[str, Any]:
    """Return ``{name: value}`` of the traced (pytree-leaf) fields of ``config``."""
    return {
        f.name: getattr(config, f.name)
        for f in _fields(config)
        if not is_static_field(f)
    }


# ---------------------------------------------------------------------------- overrides


def _parse_value(text: str, current: Any, name: str) -> Any:
    """Parse ``text`` into the type of ``current`` (the field's present value)."""
    try:
        if isinstance(current, bool) or (
            isinstance(current, np.ndarray | jax.Array) and current.dtype == bool
        ):
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(current, int) and not isinstance(current, bool):
            value = float(text)
            if not value.is_integer():
                raise ValueError(text)
            return int(value)
        if isinstance(current, float) or isinstance(current, np.ndarray | jax.Array):
            return float(text)
        if isinstance(current, tuple):
            parsed = (
                json.loads(text) if text.strip().startswith("[") else text.split(",")
            )
            return tuple(
                _parse_value(str(v), current[0] if current else v, name) for v in parsed
            )
        if current is None:
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        return type(current)(text)
    except (ValueError, TypeError):
        kind = type(current).__name__
        raise ConfigError(f"cannot parse {name}={text!r} as {kind}") from None


def apply_overrides(config: Any, overrides: Iterable[str] | Mapping[str, Any]) -> Any:
    """Return ``config`` with ``k=v`` overrides applied (dotted keys reach sub-configs).

    Args:
      config: a config dataclass.
      overrides: strings ``"name=value"`` (values parsed to the field's type) or a
        mapping ``{name: value}`` (values used as given).

    Returns:
      A new config; ``config`` is unchanged.

    Raises:
      ConfigError: on a malformed item, an unknown field (the message lists the
        valid ones) or a value that does not parse as the field's type.
    """
    items: list[tuple[str, Any, bool]] = []
    if isinstance(overrides, Mapping):
        items = [(k, v, False) for k, v in overrides.items()]
    else:
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form name=value")
            key, value = item.split("=", 1)
            items.append((key.strip(), value.strip(), True))
    for key, value, is_text in items:
        config = _set_path(config, key.split("."), value, is_text, key)
    return config


def _set_path(
    config: Any, path: list[str], value: Any, is_text: bool, full: str
) -> Any:
    names = [f.name for f in _fields(config)]
    head = path[0]
    if head not in names:
        raise ConfigError(
            f"unknown config field {full!r} for {type(config).__name__}; "
            f"valid fields: {', '.join(names)}"
        )
    current = getattr(config, head)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(
                f"config field {head!r} has no sub-field {'.'.join(path[1:])!r}"
            )
        return config.replace(
            **{head: _set_path(current, path[1:], value, is_text, full)}
        )
    if dataclasses.is_dataclass(current):
        raise ConfigError(
            f"config field {full!r} is a nested config; set its fields with dots"
        )
    new = _parse_value(value, current, full) if is_text else value
    return config.replace(**{head: new})


# --------------------------------------------------------------------------------- JSON


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, np.ndarray | jax.Array):
        arr = np.asarray(value)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf", "nan": strict JSON has no such numbers
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """Return the config as a JSON-serialisable dict (nested configs become dicts).

    Non-finite floats (e.g. ``l0 = -inf``) become the strings ``"inf"``,
    ``"-inf"`` or ``"nan"`` so the dict is valid strict JSON;
    :func:`from_dict` turns them back into floats.
    """
    return {f.name: _plain(getattr(config, f.name)) for f in _fields(config)}


def from_dict(cls_or_config: Any, data: Mapping[str, Any]) -> Any:
    """Rebuild a config from :func:`to_dict` output.

    Args:
      cls_or_config: the config class, or an instance whose nested-config field
        types are used as templates.
      data: the mapping.

    Raises:
      ConfigError: on an unknown field.
    """
    template = cls_or_config() if isinstance(cls_or_config, type) else cls_or_config
    kwargs = {}
    names = {f.name for f in _fields(template)}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown config field {key!r} for {type(template).__name__}; "
                f"valid fields: {', '.join(sorted(names))}"
            )
        current = getattr(template, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = from_dict(current, value)
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(current, float) and isinstance(value, str):
            value = _parse_value(value, current, key)
        kwargs[key] = value
    return template.replace(**kwargs)


def to_json(config: Any, **kwargs: Any) -> str:
    """Serialise a config to a JSON string (see :func:`to_dict`)."""
    return json.dumps(to_dict(config), sort_keys=True, **kwargs)


def from_json(cls_or_config: Any, text: str) -> Any:
    """Inverse of :func:`to_json`."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"config JSON is malformed: {err}") from None
    return from_dict(cls_or_config, data)


# ----------------------------------------------------------------------------- stacking


def stack_configs(configs: Sequence[Any]) -> Any:
    """Stack configs differing only in traced fields into one with a leading axis.

    The result is vmappable: ``jax.vmap(f)(stack_configs(cs))`` equals
    ``[f(c) for c in cs]`` stacked.

    Raises:
      ConfigError: if the list is empty or static fields (or types) differ.
    """
    if not configs:
        raise ConfigError("stack_configs needs at least one config")
    first = jax.tree.structure(configs[0])
    for i, c in enumerate(configs[1:], start=1):
        if jax.tree.structure(c) != first:
            diff = _static_difference(configs[0], c)
            raise ConfigError(
                f"configs 0 and {i} differ in static fields ({diff}); only traced "
                "hyperparameters can be stacked into one sweep"
            )
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *configs)


def _static_difference(a: Any, b: Any) -> str:
    if type(a) is not type(b):
        return f"types {type(a).__name__} vs {type(b).__name__}"
    out = []
    for f in _fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(va):
            sub = _static_difference(va, vb)
            if sub:
                out.append(f"{f.name}.{sub}")
        elif is_static_field(f) and va != vb:
            out.append(f"{f.name}: {va!r} vs {vb!r}")
    return ", ".join(out)


def grid(config: Any, **axes: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """Cartesian product of traced hyperparameter values as one stacked config.

    Args:
      config: the base config.
      **axes: ``field=[v1, v2, ...]`` for traced fields (dotted names as
        ``"base.tau"`` via ``**{"base.tau": [...]}``).

    Returns:
      ``(stacked, points)``: a config whose leaves have a leading axis of size
      ``prod(len(v))`` (row-major over ``axes`` in the given order), and the list of
      ``{field: value}`` dicts naming each grid point.

    Raises:
      ConfigError: if a field is unknown or static.
    """
    names = list(axes)
    for name in names:
        _check_traced_path(config, name.split("."), name)
    points = [
        dict(zip(names, vals, strict=True))
        for vals in itertools.product(*axes.values())
    ]
    if not points:
        raise ConfigError("grid has no points (an axis is empty)")
    configs = [apply_overrides(config, p) for p in points]
    return stack_configs(configs), points


def _check_traced_path(config: Any, path: list[str], full: str) -> None:
    fields = {f.name: f for f in _fields(config)}
    if path[0] not in fields:
        raise ConfigError(
            f"unknown config field {full!r} for {type(config).__name__}; "
            f"valid fields: {', '.join(fields)}"
        )
    value = getattr(config, path[0])
    if len(path) > 1:
        _check_traced_path(value, path[1:], full)
    elif is_static_field(fields[path[0]]):
        raise ConfigError(
            f"config field {full!r} is static (shape, loop length or code path); "
            "sweep it with separate runs, not a vmapped grid"
        )


# --------------------------------------------------------------------------- validation


def is_concrete(value: Any) -> bool:
    """Return True if ``value`` holds concrete numbers (not a tracer)."""
    return not isinstance(value, jax.core.Tracer)


def check_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_inf: bool = False,
) -> None:
    """Raise :class:`ConfigError` unless every element of ``value`` lies in the range.

    NaN is always rejected, and so are ``inf`` and ``-inf`` unless the caller
    opts in with ``allow_inf=True``, which a config does for exactly the fields
    whose documentation gives infinity a meaning (``l0 = -inf``: no clipping;
    ``lambda_max = inf``: no upper bound; ``max_grad_norm = inf`` in dual RL:
    no clipping). An accepted infinity must still lie in the range (``-inf``
    needs ``low = -inf`` inclusive).

    Tracers are skipped (validation is a host-side check on concrete configs,
    stacked sweep configs included, and on concrete arguments of eager ops).

    Args:
      name: the field or argument (named in the message).
      value: a scalar or array (a stacked sweep: every element is checked).
      low: lower bound.
      high: upper bound.
      low_inclusive: whether ``low`` itself is allowed.
      high_inclusive: whether ``high`` itself is allowed.
      allow_inf: accept infinities that lie in the range (default: reject).

    Raises:
      ConfigError: one line naming the field and the first offending value.

    Examples:
      >>> check_range("gamma", 0.99, 0.0, 1.0)
      >>> check_range("tau", float("inf"), 0.0)
      Traceback (most recent call last):
      ...
      jaxrl.errors.ConfigError: tau must be finite, got inf
      >>> check_range("l0", float("-inf"), high=0.0, allow_inf=True)  # no clipping
    """
    if not is_concrete(value):
        return
    arr = np.asarray(value, dtype=np.float64)
    nan, inf = np.isnan(arr), np.isinf(arr)
    bad_finite = nan | (inf & (not allow_inf))
    if np.any(bad_finite):
        shown = arr[bad_finite].flat[0]
        raise ConfigError(f"{name} must be finite, got {shown:g}")
    ok_low = arr >= low if low_inclusive else arr > low
    ok_high = arr <= high if high_inclusive else arr < high
    bad = ~(ok_low & ok_high)
    if np.any(bad):
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        shown = arr[bad].flat[0]
        raise ConfigError(f"{name} must lie in {lb}{low}, {high}{hb}, got {shown:g}")


def check_positive(name: str, value: Any, *, allow_inf: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value > 0`` (element-wise, concrete only).

    Finite unless the field opts in to ``inf`` (see :func:`check_range`).

    Examples:
      >>> check_positive("lr", 1e-3)
      >>> check_positive("lr", 0.0)
      Traceback (most recent call last):
      ...
      jaxrl.errors.ConfigError: lr must lie in (0.0, inf], got 0
    """
    check_range(name, value, 0.0, math.inf, low_inclusive=False, allow_inf=allow_inf)


def check_integer(name: str, value: Any, low: int = 1) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer ``>= low``.

    For static fields (sizes, loop lengths): Python or NumPy integers pass,
    ``bool`` and floats (even integral ones such as ``2.0``) do not.

    Examples:
      >>> check_integer("num_chunks", 3)
      >>> check_integer("num_chunks", 0)
      Traceback (most recent call last):
      ...
      jaxrl.errors.ConfigError: num_chunks must be an integer >= 1, got 0
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < low
    ):
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")


def check_order(
    low_name: str,
    low: Any,
    high_name: str,
    high: Any,
    *,
    strict: bool = True,
) -> None:
    """Raise :class:`ConfigError` unless ``low < high`` (``<=`` if not ``strict``).

    Both values must also be finite (not NaN, not infinite), checked first
    with :func:`check_range`. Element-wise for stacked sweep configs (the first
    offending pair is named); tracers are skipped, like :func:`check_range`.

    Args:
      low_name: name of the lower bound field (for the message).
      low: its value (scalar or array, e.g. a stacked sweep).
      high_name: name of the upper bound field.
      high: its value (broadcastable against ``low``).
      strict: require ``low < high`` (default) or only ``low <= high``.

    Raises:
      ConfigError: naming both fields and the offending values.

    Examples:
      >>> check_order("v_min", -1.0, "v_max", 1.0)
      >>> check_order("v_min", 1.0, "v_max", 1.0, strict=False)
      >>> check_order("v_min", 1.0, "v_max", 1.0)
      Traceback (most recent call last):
      ...
      jaxrl.errors.ConfigError: v_min must be < v_max, got v_min=1, v_max=1
    """
    for name, value in ((low_name, low), (high_name, high)):
        check_range(name, value, low_inclusive=False, high_inclusive=False)  # finite
    if not (is_concrete(low) and is_concrete(high)):
        return
    lo, hi = np.broadcast_arrays(
        np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    )
    bad = lo >= hi if strict else lo > hi
    if np.any(bad):
        relation = "<" if strict else "<="
        first = np.argwhere(bad)[0] if bad.ndim else ()
        raise ConfigError(
            f"{low_name} must be {relation} {high_name}, got {low_name}="
            f"{lo[tuple(first)]:g}, {high_name}={hi[tuple(first)]:g}"
        )


def validate(config: Any) -> Any:
    """Run ``config.validate()`` (and nested configs' validators); return ``config``.

    Agents define ``Config.validate(self) -> None`` raising :class:`ConfigError`
    naming the bad field. Nested config fields are validated too.
    """
    for f in _fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value)
    check = getattr(config, "validate", None)
    if callable(check):
        check()
    return config
