"""Plumbing shared by the entry points: one-line errors, run setup, keys, results dirs.

Every entry point reports bad input as ONE line on stderr and exits with status
2 (no traceback): :class:`ArgumentParser` does so for argparse errors and
:func:`run_main` for :class:`jaxrl.errors.ConfigError`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

from jaxrl import config as jconfig
from jaxrl.errors import ConfigError

__all__ = [
    "ArgumentParser",
    "UsageError",
    "run_main",
    "COMPILE_CACHE_OFF_ENV",
    "default_compile_cache_dir",
    "add_compile_cache_arg",
    "compile_cache",
    "run_with_compile_cache",
    "CPU_DEVICES_ENV",
    "usable_cores",
    "add_cpu_devices_arg",
    "cpu_device_count",
    "use_cpu_devices",
    "lapack_note",
    "run_command",
    "one_line",
    "RunSpec",
    "resolve_run",
    "get_agent",
    "make_env",
    "split_env_keys",
    "seed_keys",
    "run_dir",
    "RunLock",
    "existing_results",
    "clear_results",
    "results_exist_error",
    "guarded_run_dir",
    "default_metric",
    "add_common_run_args",
    "add_chunked_run_args",
    "list_presets",
    "markdown_table",
    "format_number",
    "STATE_COPIES",
    "MemoryEstimate",
    "estimate_memory",
    "host_available_memory",
    "available_memory",
    "format_bytes",
    "check_memory",
    "progress_unit",
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
      Other statuses come from ``fn`` itself: ``train`` and ``sweep`` return 3
      when every seed diverged (results written all the same).
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


# JAX's persistent compilation cache, on by default for commands that compile.
COMPILE_CACHE_OFF_ENV = "JAXRL_NO_COMPILE_CACHE"
# Only executables that took this long to compile are written (JAX's default is
# 1 s; a small agent's chunk compiles in about that). Below it a recompile is
# cheaper than the disk entry is worth.
COMPILE_CACHE_MIN_SECS = 0.5


def default_compile_cache_dir() -> str:
    """Return ``$XDG_CACHE_HOME/jaxrl/jax-compilation-cache`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "jaxrl", "jax-compilation-cache")


def add_compile_cache_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-compile-cache`` (sets ``args.compile_cache = False``)."""
    parser.add_argument(
        "--no-compile-cache",
        dest="compile_cache",
        action="store_false",
        help="do not use JAX's persistent compilation cache (also: "
        f"{COMPILE_CACHE_OFF_ENV}=1); default dir {default_compile_cache_dir()}",
    )


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


@contextlib.contextmanager
def compile_cache(enabled: bool = True, log: Any = None) -> Iterator[str | None]:
    """Use JAX's persistent compilation cache inside the block (command line only).

    Compiled executables are written to :func:`default_compile_cache_dir` and
    read back by later runs of the same programs, which then skip compilation.
    Nothing is changed if ``enabled`` is False, ``$JAXRL_NO_COMPILE_CACHE`` is
    set (to anything but ``0``/``false``/``no``/``off``), or the user already
    chose a cache (``JAX_COMPILATION_CACHE_DIR`` or
    ``jax.config.jax_compilation_cache_dir``; theirs wins) or turned it off
    (``JAX_ENABLE_COMPILATION_CACHE=false``). If the directory cannot be
    written, one ``warning:`` line goes to ``log`` and the block runs without
    the cache. The previous JAX settings are restored afterwards, so library
    code and in-process callers never see a changed global config.

    Yields:
      The cache directory in use, or None.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache as jcc

    if (
        not enabled
        or _env_flag(COMPILE_CACHE_OFF_ENV)
        or jax.config.jax_compilation_cache_dir
        or os.environ.get("JAX_COMPILATION_CACHE_DIR")
        or not jax.config.jax_enable_compilation_cache
    ):
        yield None
        return
    path = default_compile_cache_dir()
    try:  # a writable directory, or no cache
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".probe-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        print(
            f"warning: compilation cache off ({one_line(str(err))})",
            file=sys.stderr if log is None else log,
        )
        yield None
        return
    names = (
        "jax_compilation_cache_dir",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
    )
    previous = {name: getattr(jax.config, name) for name in names}
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs", COMPILE_CACHE_MIN_SECS
    )
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # any size
    jcc.reset_cache()  # (re)open the cache at `path` on the next compile
    try:
        yield path
    finally:
        for name, value in previous.items():
            jax.config.update(name, value)
        jcc.reset_cache()


def run_with_compile_cache(run: Callable[[Any], int | None], args: Any) -> int | None:
    """Call ``run(args)`` inside :func:`compile_cache` (``args.compile_cache``).

    Commands without the ``--no-compile-cache`` option run unchanged.
    """
    if not hasattr(args, "compile_cache"):
        return run(args)
    with compile_cache(args.compile_cache):
        return run(args)


# One JAX CPU device per usable core, by default, for commands that run seeds.
CPU_DEVICES_ENV = "JAXRL_CPU_DEVICES"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where available)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _positive_env_int(name: str, text: str) -> int:
    """:func:`_positive_int` for an environment variable: a ConfigError naming it."""
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise ConfigError(f"{name} must be a positive integer, got {text!r}") from None


def add_cpu_devices_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--cpu-devices N`` (``args.cpu_devices``; default None: automatic)."""
    parser.add_argument(
        "--cpu-devices",
        type=_positive_int,
        default=None,
        metavar="N",
        help="JAX CPU devices the seeds are spread over (default: one per usable "
        f"core, {usable_cores()} here; also {CPU_DEVICES_ENV}=N; 1: one device)",
    )


def _jax_chose_cpu_devices(environ: Any, configured: int) -> str | None:
    """How the user already set JAX's CPU device count, or None."""
    if configured != -1:
        return f"jax.config.jax_num_cpu_devices={configured}"
    if environ.get("JAX_NUM_CPU_DEVICES"):
        return f"JAX_NUM_CPU_DEVICES={environ['JAX_NUM_CPU_DEVICES']}"
    for flag in environ.get("XLA_FLAGS", "").split():
        if flag.lstrip("-").startswith("xla_force_host_platform_device_count"):
            return f"XLA_FLAGS {flag}"
    return None


def cpu_device_count(
    requested: int | None,
    environ: Any,
    cores: int,
    configured: int = -1,
) -> tuple[int | None, str | None]:
    """Decide how many JAX CPU devices a command should create (pure).

    XLA runs one device's program largely on one core, so a ``vmap`` over seeds
    on a single CPU device leaves the other cores idle; with one CPU device per
    core, ``jaxrl train`` and ``jaxrl sweep`` shard the seeds over them
    (:func:`jaxrl.sweep.seed_sharding`). Precedence: a count the user gave JAX
    itself (``configured``, i.e. ``jax.config.jax_num_cpu_devices``; the
    ``JAX_NUM_CPU_DEVICES`` variable; ``--xla_force_host_platform_device_count``
    in ``XLA_FLAGS``) wins, then ``requested`` (``--cpu-devices``), then
    ``$JAXRL_CPU_DEVICES``, then ``cores``.

    Args:
      requested: ``--cpu-devices`` (None: not given).
      environ: the environment variables (a mapping).
      cores: the usable cores.
      configured: the current ``jax.config.jax_num_cpu_devices`` (-1: unset).

    Returns:
      ``(count, note)``: the count to configure (None: leave JAX's setting
      alone) and, when an explicit ``requested`` is overridden by the user's
      JAX setting, a warning saying so.

    Raises:
      ConfigError: if ``$JAXRL_CPU_DEVICES`` is not a positive integer.
    """
    theirs = _jax_chose_cpu_devices(environ, configured)
    if theirs is not None:
        note = None
        if requested is not None:
            note = f"--cpu-devices {requested} ignored: {theirs} sets JAX's CPU devices"
        return None, note
    if requested is not None:
        return requested, None
    if environ.get(CPU_DEVICES_ENV, "").strip():
        return _positive_env_int(
            CPU_DEVICES_ENV, environ[CPU_DEVICES_ENV].strip()
        ), None
    return max(1, cores), None


def use_cpu_devices(requested: int | None = None, log: Any = None) -> int | None:
    """Give JAX one CPU device per usable core (command line only; see :func:`cpu_device_count`).

    Must run before JAX starts its backends; afterwards (an in-process caller
    that has already computed something) the device count is fixed and this
    changes nothing. Other backends (GPU, TPU) are unaffected: their devices
    stay the default ones.

    Args:
      requested: ``--cpu-devices`` (None: automatic).
      log: stream for the warning of :func:`cpu_device_count` (default stderr).

    Returns:
      The CPU device count configured, or None if JAX's setting was left alone.
    """
    import jax

    count, note = cpu_device_count(
        requested, os.environ, usable_cores(), jax.config.jax_num_cpu_devices
    )
    if note is not None:
        print(f"warning: {note}", file=sys.stderr if log is None else log)
    if count is None:
        return None
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # the backends have started: the count is fixed
        return None
    return count


def lapack_note(agent: str, calls: Sequence[str], fallback: str) -> str:
    """The ``note:`` line of a run kept off several CPU devices because
    its program calls CPU LAPACK kernels (:func:`jaxrl.sweep.lapack_safe_devices`)."""
    return (
        f"note: {agent} calls CPU LAPACK kernels ({', '.join(calls)}), which can "
        f"hang across CPU devices; {fallback}"
    )


def run_command(run: Callable[[Any], int | None], args: Any) -> int | None:
    """Set up a command's process, then :func:`run_with_compile_cache`.

    Commands with ``--cpu-devices`` (:func:`add_cpu_devices_arg`) first get
    their CPU devices (:func:`use_cpu_devices`).
    """
    if hasattr(args, "cpu_devices"):
        use_cpu_devices(args.cpu_devices)
    return run_with_compile_cache(run, args)


def add_common_run_args(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by ``train`` and ``sweep``."""
    parser.add_argument(
        "--agent", required=True, help="agent name (see jaxrl.agents.AGENTS)"
    )
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
    parser.add_argument(
        "--quiet", action="store_true", help="no progress (bar or lines)"
    )


def add_chunked_run_args(parser: argparse.ArgumentParser) -> None:
    """Add the chunk/checkpoint options of ``train`` and ``sweep``: ``--resume`` or
    ``--overwrite`` (exclusive), ``--max-chunks``, ``--no-checkpoint``,
    ``--keep-checkpoints``."""
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest intact checkpoint in the run dir",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="remove the run dir's earlier results first (without --resume or "
        "--overwrite a run dir holding results is refused)",
    )
    parser.add_argument(
        "--max-chunks",
        type=positive_int,
        default=None,
        help="stop after this many chunks (continue later with --resume)",
    )
    parser.add_argument(
        "--no-checkpoint", action="store_true", help="do not save checkpoints"
    )
    parser.add_argument(
        "--keep-checkpoints",
        type=positive_int,
        default=2,
        help="newest checkpoints to keep (default 2)",
    )


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


# ----------------------------------------------------------------------------- run dirs
# No run writes over earlier results unless asked (--resume continues them,
# --overwrite removes them first), and one run at a time writes into a dir.

LOCK_NAME = ".lock"
#: What ``train`` and ``sweep`` write into a run dir (plus ``*.png``).
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "sweep.md", "sweep.csv")
#: What ``reproduce`` and the table scripts write into ``<out>/<table>/``.
TABLE_FILES = ("table.md", "table.csv", "results.json")
_RUN_PATTERNS = ("*.png",)
_TABLE_PATTERNS = ("*.png", "*.csv", "*_results.npz")


class RunLock:
    """An exclusive lock on a results directory, held for a ``with`` block.

    ``fcntl.flock`` on ``<path>/.lock`` (created if missing, left in place): the
    kernel drops the lock when its holder exits or crashes, so a stale lock file
    never blocks a later run. The holder writes ``pid N on HOST`` into the file
    for the message of a run that finds the lock taken. flock locks belong to an
    open file, so a second ``RunLock`` on the same directory fails even in the
    same process. Without flock (no ``fcntl`` module, or a filesystem that does
    not support it) the run goes ahead unlocked.

    Raises (on entering):
      ConfigError: another run holds the lock (the message names the directory
        and the holder).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import errno

        os.makedirs(self.path, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        fd = os.open(os.path.join(self.path, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise ConfigError(
                f"{self.path} is in use by another run ({holder or 'holder unknown'}); "
                "wait for it to finish or choose another --out"
            ) from None
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return self  # the filesystem has no locks
            raise
        import socket

        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # releases the lock


def _is_sweep_point(path: str) -> bool:
    """A grid point's folder written by ``sweep``: a ``config.json`` naming a
    non-empty grid point, and nothing but run files."""
    import json

    try:
        names = os.listdir(path)
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("runner") == "sweep"
        and bool(record.get("point"))
        and all(_matches(n, RUN_FILES, _RUN_PATTERNS) for n in names)
    )


def _matches(name: str, names: Sequence[str], patterns: Sequence[str]) -> bool:
    import fnmatch

    return name in names or any(fnmatch.fnmatch(name, p) for p in patterns)


def existing_results(path: str, *, table: bool = False) -> list[str]:
    """The entries of ``path`` that an earlier run wrote (sorted; folders end in ``/``).

    A run dir (``train``, ``sweep``): :data:`RUN_FILES`, PNGs, ``ckpt/`` and
    ``sweep``'s grid-point folders. A table dir (``table=True``, reproduce's
    ``<out>/<table>/``): :data:`TABLE_FILES`, PNG and CSV files and
    ``*_results.npz``; its other folders (run dirs, datasets) are not counted.
    Anything else (the lock file, a user's notes) is not a result. A missing
    ``path`` has none.
    """
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    names, patterns = (
        (TABLE_FILES, _TABLE_PATTERNS) if table else (RUN_FILES, _RUN_PATTERNS)
    )
    found = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if not table and (entry.name == "ckpt" or _is_sweep_point(entry.path)):
                found.append(entry.name + "/")
        elif _matches(entry.name, names, patterns):
            found.append(entry.name)
    return found


def clear_results(path: str, *, table: bool = False) -> list[str]:
    """Remove what :func:`existing_results` lists in ``path`` (nothing else).

    Returns:
      The removed entries' names.
    """
    import shutil

    found = existing_results(path, table=table)
    for name in found:
        full = os.path.join(path, name.rstrip("/"))
        if name.endswith("/"):
            shutil.rmtree(full)
        else:
            os.remove(full)
    return found


def results_exist_error(
    path: str, found: Sequence[str], *, resumable: bool = True
) -> ConfigError:
    """The one-line refusal to write into ``path``, which holds ``found``."""
    shown = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
    hint = (
        "pass --resume to continue that run or --overwrite to replace it"
        if resumable
        else "pass --overwrite to replace them or choose another --out"
    )
    return ConfigError(f"{path} already holds results ({shown}); {hint}")


@contextlib.contextmanager
def guarded_run_dir(
    path: str,
    *,
    resume: bool = False,
    overwrite: bool = False,
    resumable: bool = True,
) -> Iterator[None]:
    """Lock the run dir ``path`` (:class:`RunLock`) and check what it holds.

    Inside the block the caller owns ``path``: earlier results are gone if
    ``overwrite`` (only what :func:`existing_results` lists), kept if ``resume``
    (the caller continues them), and otherwise there were none.

    Raises:
      ConfigError: both ``resume`` and ``overwrite``; another run holds the
        lock; or ``path`` holds results and neither flag was given (or only
        ``resume`` where the command cannot resume, ``resumable=False``).
    """
    if resume and overwrite:
        raise ConfigError("pass either --resume or --overwrite, not both")
    with RunLock(path):
        found = existing_results(path)
        if found and overwrite:
            clear_results(path)
        elif found and not (resume and resumable):
            raise results_exist_error(path, found, resumable=resumable)
        yield


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
    """Format a summary as ``mean [ci_low, ci_high] (n=N)`` (``, K diverged`` if any)."""
    diverged = head.get("n_diverged") or 0
    return (
        f"{head['mean']:.4g} [{head['ci_low']:.4g}, {head['ci_high']:.4g}] "
        f"(n={head['n']}{f', {diverged} diverged' if diverged else ''})"
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


# ----------------------------------------------------------------------------- run size
# Before a run allocates anything that grows with the number of seeds (seed
# keys, per-seed environments, the state), its memory is estimated from shapes
# alone (jax.eval_shape of ONE seed) and a run that cannot fit is refused with
# one line. Progress lines count env steps where the config says how many one
# iteration takes.

#: Copies of the training state counted per run. A chunk's jitted ``run`` does
#: not donate its input, so the input state and the output state are alive at
#: once (a sweep's ``scan`` carries the state the same way). Temporaries of one
#: iteration (activations, a sampled batch) are not counted: next to a state
#: holding a replay buffer they are small. So the check refuses runs that
#: cannot fit; it does not promise that every run it accepts fits.
STATE_COPIES = 2

#: A bound on one iteration's metrics (256 scalars of 8 bytes; agents report
#: a few dozen 4-byte scalars). When the estimate fits even with it, the
#: check skips tracing ``make_run`` for the exact metric sizes.
_METRICS_BOUND_PER_ITER = 256 * 8


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """The memory of a vmapped run, from shapes alone (:func:`estimate_memory`).

    Attributes:
      runs: vmapped runs (seeds times grid points).
      state: bytes of one run's training state, plus its own environment
        parameters when every seed draws its environment.
      metrics: bytes of one run's metrics held at once (one chunk for
        ``train``, the whole run for ``sweep``), with the drivers'
        ``health/finite`` row.
      exact: whether ``metrics`` was measured (``jax.eval_shape`` of
        ``make_run``) rather than bounded by ``_METRICS_BOUND_PER_ITER``.
    """

    runs: int
    state: int
    metrics: int
    exact: bool = True

    @property
    def per_run(self) -> int:
        """Bytes per run: :data:`STATE_COPIES` states plus the metrics."""
        return STATE_COPIES * self.state + self.metrics

    @property
    def total(self) -> int:
        """Bytes of all runs together."""
        return self.runs * self.per_run


def estimate_memory(
    spec: RunSpec,
    *,
    num_points: int = 1,
    whole_run: bool = False,
    exact_metrics: bool = True,
) -> MemoryEstimate:
    """Estimate the memory of ``spec``'s vmapped run without allocating it.

    ``jax.eval_shape`` of one seed's ``init`` (and, with ``exact_metrics``, of
    one chunk's ``run``) gives the exact per-seed sizes
    (:func:`jaxrl.loop.tree_nbytes`); only the environment is built.

    Args:
      spec: the resolved run; ``spec.num_seeds`` seeds.
      num_points: grid points (``sweep``), each running every seed.
      whole_run: hold the metrics of all ``num_chunks`` chunks (``sweep`` returns
        them at once) instead of one chunk (``train``).
      exact_metrics: trace ``make_run`` for the metric sizes; otherwise bound
        them by ``_METRICS_BOUND_PER_ITER`` per iteration (no trace).

    Raises:
      ConfigError: the environment or the agent rejects the config.
    """
    import functools

    import jax

    from jaxrl.loop import health_metrics, tree_nbytes

    module, config = spec.module, spec.config
    if spec.env_key_arg is None:
        env, env_params = make_env(spec)
    else:  # one environment per seed: its params are part of the seed's state
        env, env_params = make_env(spec, jax.random.key(0))[0], None

    def one(key: Any, with_metrics: bool) -> Any:
        params, own = env_params, {}
        if params is None:
            k_env, key = jax.random.split(key)
            params = own["env_params"] = make_env(spec, k_env)[1]
        state = module.init(key, env, params, config)
        if not with_metrics:
            return {"state": state, **own}, {}
        state, metrics = module.make_run(config, env, params)(state)
        # what the drivers add to each chunk's metrics (the divergence check)
        health = health_metrics(state, int(config.iters_per_chunk))
        return {"state": state, **own}, {**metrics, **health}

    state, metrics = jax.eval_shape(
        functools.partial(one, with_metrics=exact_metrics), jax.random.key(0)
    )
    chunks = int(config.num_chunks) if whole_run else 1
    if exact_metrics:
        metric_bytes = chunks * tree_nbytes(metrics)
    else:
        metric_bytes = chunks * int(config.iters_per_chunk) * _METRICS_BOUND_PER_ITER
    return MemoryEstimate(
        runs=int(spec.num_seeds) * int(num_points),
        state=tree_nbytes(state),
        metrics=metric_bytes,
        exact=exact_metrics,
    )


def host_available_memory() -> int | None:
    """The host's available memory in bytes (``MemAvailable``), or ``None`` if unknown.

    Reads ``/proc/meminfo``; elsewhere falls back to the free pages of
    ``os.sysconf``.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def available_memory(devices: Sequence[Any] | None = None) -> int | None:
    """Bytes free for a run on ``devices`` (default: the first device), or ``None``.

    CPU devices share the host's memory (:func:`host_available_memory`, counted
    once). Accelerators report ``bytes_limit - bytes_in_use`` of
    ``device.memory_stats()``, summed over ``devices``; ``None`` if a device
    does not report them.
    """
    import jax

    devices = list(jax.devices()[:1] if devices is None else devices)
    if all(d.platform == "cpu" for d in devices):
        return host_available_memory()
    total = 0
    for device in devices:
        try:
            stats = device.memory_stats()
        except (NotImplementedError, RuntimeError):
            stats = None
        if not stats or "bytes_limit" not in stats:
            return None
        total += max(int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), 0)
    return total


def format_bytes(num: int | float) -> str:
    """``72000`` -> ``"72 kB"`` (decimal units, 3 significant digits)."""
    value = float(num)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 999.5:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} PB" if value < 999.5 else f"{value:.0f} PB"


def check_memory(
    spec: RunSpec,
    *,
    num_points: int = 1,
    whole_run: bool = False,
    devices: Sequence[Any] | None = None,
    available: int | None = None,
) -> MemoryEstimate | None:
    """Refuse a run whose estimated memory exceeds what is available.

    Call it before anything that grows with the number of seeds is allocated.
    The estimate is :func:`estimate_memory` (``STATE_COPIES`` states plus the
    metrics, per run, times runs); the metric sizes are traced only when a
    cheap bound on them does not fit.

    Args:
      spec: the resolved run.
      num_points: grid points (``sweep``).
      whole_run: the metrics of the whole run are held at once (``sweep``).
      devices: where the run lives (default: the first device).
      available: bytes available (default :func:`available_memory`); when
        unknown the check is skipped.

    Returns:
      The estimate, or ``None`` when the available memory is unknown.

    Raises:
      ConfigError: one line naming ``--num-seeds``, the estimate and the
        available memory.
    """
    if available is None:
        available = available_memory(devices)
    if available is None:
        return None
    kwargs = {"num_points": num_points, "whole_run": whole_run}
    estimate = estimate_memory(spec, exact_metrics=False, **kwargs)
    if estimate.total <= available:
        return estimate
    estimate = estimate_memory(spec, exact_metrics=True, **kwargs)
    if estimate.total <= available:
        return estimate
    if estimate.per_run > available:  # one seed alone does not fit: name the sizes
        c = spec.config
        iters = (
            f"num_chunks x iters_per_chunk = {int(c.num_chunks) * int(c.iters_per_chunk)}"
            if whole_run
            else f"iters_per_chunk = {int(c.iters_per_chunk)}"
        )
        fix = (
            "iters_per_chunk" + (" or num_chunks" if whole_run else "")
            if estimate.metrics >= estimate.state
            else "the sizes held in the state (buffer_size, network widths, num_envs)"
        )
        raise ConfigError(
            f"one seed needs about {format_bytes(estimate.per_run)} of memory "
            f"({STATE_COPIES} x {format_bytes(estimate.state)} of training state and "
            f"{format_bytes(estimate.metrics)} of metrics for {iters} iterations) but "
            f"{format_bytes(available)} {'is' if available == 1 else 'are'} available; "
            f"reduce {fix}"
        )
    runs = f"--num-seeds {spec.num_seeds}"
    per, fewer = "seed", "seeds"
    if num_points > 1:
        runs += f" x {num_points} grid points"
        per, fewer = "seed and grid point", "seeds or grid points"
    metrics = "all metrics" if whole_run else "one chunk of metrics"
    raise ConfigError(
        f"{runs} needs about {format_bytes(estimate.total)} of memory "
        f"({format_bytes(estimate.per_run)} per {per}: {STATE_COPIES} copies of the "
        f"training state and {metrics}) but {format_bytes(available)} "
        f"{'is' if available == 1 else 'are'} available; use fewer {fewer}"
    )


def progress_unit(config: Any) -> tuple[str, int]:
    """What progress lines count: ``(unit, units per iteration)``.

    Env steps per seed where the config says how many a run takes
    (``total_env_steps``, on the config or its nested ``base`` with the same
    number of iterations), else iterations per seed.
    """
    iters = int(config.num_chunks) * int(config.iters_per_chunk)
    for cfg in (config, getattr(config, "base", None)):
        steps = getattr(cfg, "total_env_steps", None)
        if (
            isinstance(steps, int)
            and iters > 0
            and int(cfg.num_chunks) * int(cfg.iters_per_chunk) == iters
            and steps % iters == 0
        ):
            return "env steps per seed", steps // iters
    return "iterations per seed", 1
