"""Plumbing shared by the entry points: one-line errors, run setup, keys, results dirs.

Every entry point reports bad input as ONE line on stderr and exits with status
2 (no traceback): :class:`ArgumentParser` does so for argparse errors and
:func:`run_main` for :class:`jaxrl.errors.ConfigError`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from jaxrl import config as jconfig
from jaxrl.errors import ConfigError

__all__ = [
    "ArgumentParser",
    "UsageError",
    "run_main",
    "one_line",
    "RunSpec",
    "resolve_run",
    "get_agent",
    "make_env",
    "split_env_keys",
    "seed_keys",
    "run_dir",
    "default_metric",
    "add_common_run_args",
    "list_presets",
    "markdown_table",
    "format_number",
]


class UsageError(Exception):
    """A command-line usage error (argparse), reported as one line and status 2."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: error: {message}")


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors raise :class:`UsageError` (one line).

    The default parser prints the whole usage block before the message; we keep
    stderr to one line and point at ``--help``.
    """

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` instead of printing usage and exiting."""
        raise UsageError(self.prog, f"{message} (see {self.prog} --help)")


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so a message fits one line."""
    return " ".join(str(text).split())


def run_main(fn: Callable[[], int | None], prog: str = "jaxrl") -> int:
    """Run ``fn``; map usage and config errors to one stderr line and status 2.

    Args:
      fn: the command body; returns an exit status or None (0).
      prog: the program name used as a prefix.

    Returns:
      The exit status (0 on success, 2 on bad input or a filesystem error, 130
      on Ctrl-C, 143 on SIGTERM; temporary files are cleaned up on both).
    """
    previous = _raise_on_sigterm()
    try:
        status = fn()
    except UsageError as err:
        print(one_line(str(err)), file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"{prog}: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:  # a file in the way of --out, an unwritable folder, ...
        print(f"{prog}: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (resume with --resume)", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"{prog}: terminated (resume with --resume)", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0 if status is None else int(status)


class _Terminated(BaseException):
    """Raised by the SIGTERM handler of :func:`run_main` (like KeyboardInterrupt)."""


def _raise_on_sigterm() -> Any:
    """Make SIGTERM raise :class:`_Terminated` so that ``finally`` blocks run
    (half-written temporary files are removed); return the previous handler, or
    ``None`` outside the main thread, where handlers cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        del signum, frame
        raise _Terminated

    return signal.signal(signal.SIGTERM, handler)


def add_common_run_args(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by ``train`` and ``sweep``."""
    parser.add_argument("--agent", required=True, help="agent name (see jaxrl.agents.AGENTS)")
    parser.add_argument(
        "--env", default=None, help="environment id (default: the preset's)"
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="named config preset (scripts/presets.py); 'list' prints the agent's presets",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="K=V",
        help="override a config field (repeatable), e.g. --set gamma=0.9",
    )
    parser.add_argument(
        "--env-set",
        dest="env_overrides",
        action="append",
        default=[],
        metavar="K=V",
        help="environment keyword argument for jaxrl.envs.make (repeatable)",
    )
    parser.add_argument(
        "--num-seeds", type=_positive_int, default=None, help="vmapped seeds"
    )
    parser.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="root random seed"
    )
    parser.add_argument(
        "--out", default="results", help="results root (default: results)"
    )
    parser.add_argument(
        "--table", default=None, help="results sub-folder (default: the command)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def list_presets(args: argparse.Namespace) -> bool:
    """Print ``args.agent``'s presets if ``--preset list`` was given; return whether.

    Raises:
      ConfigError: unknown agent (the message lists the registered ones).
    """
    if args.preset != "list":
        return False
    from jaxrl.scripts import presets as jpresets

    get_agent(args.agent)
    print(jpresets.describe_presets(args.agent))
    return True


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


positive_int = _positive_int
nonnegative_int = _nonnegative_int


def _parse_env_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return text


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run, resolved and validated.

    Attributes:
      agent: agent name.
      module: the agent module (``jaxrl.agents.get(agent)``).
      env_name: environment id.
      env_kwargs: keyword arguments for ``jaxrl.envs.make``.
      preset: preset name (``"default"`` without one).
      config: the resolved, validated agent config.
      overrides: the ``k=v`` strings applied on top of the preset.
      num_seeds: vmapped seeds.
      metric: the headline metric name reported in summaries.
      env_key_arg: if set, every seed draws its own environment instance: the
        ``jaxrl.envs.make`` keyword of this name receives a per-seed key (e.g. a random
        Garnet MDP per seed); ``None``: one environment shared by all seeds.
    """

    agent: str
    module: Any
    env_name: str
    env_kwargs: dict[str, Any]
    preset: str
    config: Any
    overrides: tuple[str, ...]
    num_seeds: int
    metric: str | None
    env_key_arg: str | None = None


def get_agent(name: str) -> Any:
    """Return the agent module ``name`` (``jaxrl.agents.get`` when the registry provides it).

    Raises:
      ConfigError: unknown agent (the message lists the registered ones).
    """
    import importlib
    import pkgutil

    from jaxrl import agents

    getter = getattr(agents, "get", None)
    if callable(getter):
        return getter(name)
    registry = getattr(agents, "AGENTS", None)
    if isinstance(registry, dict):
        if name in registry:
            return registry[name]
        names = sorted(registry)
    else:
        names = sorted(m.name for m in pkgutil.iter_modules(agents.__path__))
        if name in names:
            return importlib.import_module(f"jaxrl.agents.{name}")
    raise ConfigError(f"unknown agent {name!r}; valid: {', '.join(names)}")


def resolve_run(
    agent: str,
    env: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    env_overrides: Sequence[str] = (),
    num_seeds: int | None = None,
) -> RunSpec:
    """Resolve agent, preset, overrides and env into a validated :class:`RunSpec`.

    Order: preset config (or the agent's default ``Config()``), then ``--set``
    overrides (:func:`jaxrl.config.apply_overrides`), then
    :func:`jaxrl.config.validate`.

    Raises:
      ConfigError: unknown agent/preset/field, bad value, or no environment.
    """
    from jaxrl.scripts import presets as jpresets

    module = get_agent(agent)
    env_kwargs: dict[str, Any] = {}
    metric = None
    env_key_arg = None
    if preset is not None:
        spec = jpresets.get_preset(agent, preset)
        config = spec.make_config()
        env_name = env or spec.env
        if env is None or env == spec.env:
            env_kwargs = dict(spec.env_kwargs)
        seeds = num_seeds or spec.num_seeds
        metric = spec.metric
        env_key_arg = spec.env_key_arg if env_name == spec.env else None
    else:
        if env is None:
            raise ConfigError("pass --env (or a --preset that names one)")
        config = module.Config()
        env_name = env
        seeds = num_seeds or 1
        preset = "default"
    for item in env_overrides:
        if "=" not in item:
            raise ConfigError(f"env override {item!r} is not of the form name=value")
        k, v = item.split("=", 1)
        env_kwargs[k.strip()] = _parse_env_value(v.strip())
    config = jconfig.apply_overrides(config, list(overrides))
    jconfig.validate(config)
    if seeds < 1:
        raise ConfigError(f"num_seeds must be >= 1, got {seeds}")
    return RunSpec(
        agent=agent,
        module=module,
        env_name=env_name,
        env_kwargs=env_kwargs,
        preset=preset,
        config=config,
        overrides=tuple(overrides),
        num_seeds=int(seeds),
        metric=metric,
        env_key_arg=env_key_arg,
    )


def make_env(spec: RunSpec, key: Any = None) -> tuple[Any, Any]:
    """Build ``(env, env_params)`` with ``jaxrl.envs.make`` (ConfigError if unknown).

    Args:
      spec: the run.
      key: the per-seed environment key, passed as ``spec.env_key_arg`` (only
        for presets that draw one environment per seed; may be traced).
    """
    from jaxrl import envs

    kwargs = dict(spec.env_kwargs)
    if spec.env_key_arg is not None and key is not None:
        kwargs[spec.env_key_arg] = key
    try:
        return envs.make(spec.env_name, **kwargs)
    except TypeError as err:  # an unexpected keyword for this environment
        raise ConfigError(
            f"bad environment arguments for {spec.env_name!r}: {err}"
        ) from None


def split_env_keys(spec: RunSpec, keys: Any) -> tuple[Any, Any]:
    """Split per-seed keys ``[S]`` into ``(env_keys or None, agent_keys)``.

    Without ``spec.env_key_arg`` the keys go to the agent unchanged.
    """
    import jax

    if spec.env_key_arg is None:
        return None, keys
    pairs = jax.vmap(jax.random.split)(keys)  # [S, 2]
    return pairs[:, 0], pairs[:, 1]


def seed_keys(seed: int, num_seeds: int) -> Any:
    """Return ``[num_seeds]`` distinct typed keys split from ``jax.random.key(seed)``."""
    import jax

    return jax.random.split(jax.random.key(seed), num_seeds)


def run_dir(out: str, table: str, agent: str, preset: str) -> str:
    """``<out>/<table>/<agent>/<preset>`` (the results-directory convention)."""
    return os.path.join(out, table, agent, preset)


_PREFERRED_METRICS = (
    "eval/return",
    "episode/return",
    "eval/suboptimality",
    "suboptimality",
    "error/suboptimality",
    "cmdp/j_r",
)


def default_metric(names: Sequence[str], preferred: str | None = None) -> str | None:
    """Pick the headline metric: ``preferred`` if present, else a known name, else the first."""
    names = list(names)
    if preferred and preferred in names:
        return preferred
    for name in _PREFERRED_METRICS:
        if name in names:
            return name
    for name in names:
        if "return" in name or "subopt" in name:
            return name
    return names[0] if names else None


def format_number(value: Any, digits: int = 4) -> str:
    """Format a table cell: floats with ``digits`` significant digits, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.{digits}g}"
    return str(value)


def format_headline(head: dict[str, Any]) -> str:
    """Format a summary as ``mean [ci_low, ci_high] (n=N)``."""
    return (
        f"{head['mean']:.4g} [{head['ci_low']:.4g}, {head['ci_high']:.4g}] "
        f"(n={head['n']})"
    )


def markdown_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], caption: str | None = None
) -> str:
    """Render dict rows as a GitHub-flavoured markdown table (with an optional caption)."""
    lines = []
    if caption:
        lines += [caption, ""]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        cells = [format_number(row.get(c)).replace("|", "\\|") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
