"""``jaxrl dataset``: convert offline datasets to and from D4RL-style ``.npz`` files and Minari.

Our datasets (``jaxrl.scripts.make_datasets`` writes them under
``results/datasets/<env>/<kind>/``) are orbax checkpoints that only jaxrl
reads. ``export`` writes one as a D4RL-style ``.npz`` file (keys
``observations``, ``actions``, ``rewards``, ``terminals`` = terminated,
``timeouts`` = truncated, ``next_observations``, plus ``extras/<name>`` and
``jaxrl/metadata``; see :mod:`jaxrl.envs.offline.interop`) or, with
``--format minari`` and the optional ``minari`` package
(``pip install 'jaxrl[minari]'``), as a Minari dataset directory. ``import``
reads such a file or directory back into a jaxrl dataset directory; a file we
exported comes back bitwise equal, metadata included. A foreign file needs
``--env`` (a ``jaxrl.envs.make`` id; its observation and action layout is
checked against the data) and the reference returns ``--return-random`` and
``--return-expert`` (Minari's ``ref_min_score`` / ``ref_max_score`` when
present). An existing destination is never replaced without ``--overwrite``;
bad input prints one error line and exits with status 2.

Usage::

    jaxrl dataset export results/datasets/CartPole-v1/medium cartpole-medium.npz
    jaxrl dataset export results/datasets/CartPole-v1/medium cartpole-medium --format minari
    jaxrl dataset import cartpole-medium.npz results/datasets/CartPole-v1/medium-copy
    jaxrl dataset import other.npz results/datasets/CartPole-v1/imported \\
        --env CartPole-v1 --kind medium --return-random 22 --return-expert 500
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from jaxrl.errors import ConfigError
from jaxrl.scripts import common

__all__ = ["FORMATS", "export", "import_", "build_parser", "run_from_args", "main"]

FORMATS = ("d4rl", "minari")
"""``--format`` choices: a D4RL-style ``.npz`` file or a Minari dataset directory."""


def _env(name: str, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from jaxrl import envs

    return envs.make(name, **kwargs)


def _gymnasium_spaces(name: str, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Gymnasium versions of the environment's observation and action spaces."""
    import gymnasium
    import numpy as np
    from gymnax.environments import spaces

    env, params = _env(name, kwargs)

    def convert(space: Any) -> Any:
        if isinstance(space, spaces.Discrete):
            return gymnasium.spaces.Discrete(int(space.n))
        if isinstance(space, spaces.Box):
            shape = tuple(int(d) for d in space.shape)
            dtype = np.dtype(space.dtype)
            low = np.broadcast_to(np.asarray(space.low, dtype), shape)
            high = np.broadcast_to(np.asarray(space.high, dtype), shape)
            return gymnasium.spaces.Box(low, high, shape, dtype)
        return None

    return convert(env.observation_space(params)), convert(env.action_space(params))


def export(
    source: str, dest: str, *, fmt: str = "d4rl", overwrite: bool = False
) -> tuple[str, Any]:
    """Export the jaxrl dataset directory ``source`` to ``dest``; return (path, dataset)."""
    from jaxrl.envs import offline

    dataset = offline.load_dataset(source)
    if fmt == "d4rl":
        return offline.save_d4rl(dest, dataset, overwrite=overwrite), dataset
    if not offline.minari_available():
        raise ConfigError(
            "--format minari needs the optional packages minari and h5py: "
            "pip install 'jaxrl[minari]'"
        )
    meta = dataset.meta
    try:
        obs_space, action_space = _gymnasium_spaces(meta.env, dict(meta.env_kwargs))
    except ConfigError:  # not one of our ids: spaces guessed from the data
        obs_space = action_space = None
    path = offline.save_minari(
        dest,
        dataset,
        observation_space=obs_space,
        action_space=action_space,
        overwrite=overwrite,
    )
    return path, dataset


def import_(
    source: str,
    dest: str,
    *,
    fmt: str = "d4rl",
    overwrite: bool = False,
    env: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    kind: str | None = None,
    return_random: float | None = None,
    return_expert: float | None = None,
    policy: str | None = None,
) -> tuple[str, Any]:
    """Import ``source`` into the jaxrl dataset directory ``dest``; return (path, dataset).

    The data's observation and action layout must match the dataset's
    environment (built with ``jaxrl.envs.make``).
    """
    from jaxrl.envs import offline
    from jaxrl.envs.offline.storage import _compare_example

    load = offline.load_d4rl if fmt == "d4rl" else offline.load_minari
    dataset = load(
        source,
        env=env,
        kind=kind,
        return_random=return_random,
        return_expert=return_expert,
        policy=policy,
        env_kwargs=env_kwargs,
    )
    meta = dataset.meta
    env_obj, params = _env(meta.env, dict(meta.env_kwargs))
    _compare_example(
        f"the data of {source}", dataset.data, offline.example_item(env_obj, params)
    )
    path = offline.save_dataset(dest, dataset, overwrite=overwrite)
    return str(path), dataset


def _env_kwargs(items: Sequence[str]) -> dict[str, Any] | None:
    if not items:
        return None
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"env override {item!r} is not of the form name=value")
        k, v = item.split("=", 1)
        out[k.strip()] = common._parse_env_value(v.strip())
    return out


def _float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add the ``export`` and ``import`` sub-commands to ``parser`` (a new one if ``None``)."""
    parser = parser or common.ArgumentParser(
        prog="python -m jaxrl.scripts.dataset", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(
        dest="action", metavar="ACTION", parser_class=common.ArgumentParser
    )
    sub.required = True
    exp = sub.add_parser(
        "export",
        help="write a jaxrl dataset as a D4RL-style .npz file or a Minari dataset",
        description="Write a jaxrl dataset directory as a D4RL-style .npz file "
        "(or, with --format minari, a Minari dataset directory).",
    )
    exp.add_argument("source", help="jaxrl dataset directory (holds dataset.json)")
    exp.add_argument("dest", help=".npz file (d4rl) or directory (minari) to write")
    imp = sub.add_parser(
        "import",
        help="read a D4RL-style .npz file or a Minari dataset into a jaxrl dataset",
        description="Read a D4RL-style .npz file (or, with --format minari, a Minari "
        "dataset directory) and write it as a jaxrl dataset directory.",
    )
    imp.add_argument("source", help=".npz file (d4rl) or directory (minari) to read")
    imp.add_argument("dest", help="jaxrl dataset directory to write")
    for p in (exp, imp):
        p.add_argument(
            "--format",
            dest="fmt",
            choices=FORMATS,
            default="d4rl",
            help="d4rl: a D4RL-style .npz file (default); minari: a Minari "
            "dataset directory (needs pip install 'jaxrl[minari]')",
        )
        p.add_argument(
            "--overwrite", action="store_true", help="replace an existing destination"
        )
    imp.add_argument(
        "--env",
        default=None,
        help="jaxrl.envs.make id of the data (needed without jaxrl metadata)",
    )
    imp.add_argument(
        "--env-set",
        dest="env_overrides",
        action="append",
        default=[],
        metavar="K=V",
        help="jaxrl.envs.make keyword argument of the data (repeatable)",
    )
    imp.add_argument("--kind", default=None, help="dataset kind (default: imported)")
    imp.add_argument(
        "--return-random",
        type=_float,
        default=None,
        help="R_random of the normalised score (needed without jaxrl metadata)",
    )
    imp.add_argument(
        "--return-expert",
        type=_float,
        default=None,
        help="R_expert of the normalised score (needed without jaxrl metadata)",
    )
    imp.add_argument(
        "--policy", default=None, help="description of the behaviour policy"
    )
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``jaxrl dataset export|import`` from parsed arguments."""
    if args.action == "export":
        path, dataset = export(
            args.source, args.dest, fmt=args.fmt, overwrite=args.overwrite
        )
        what = "D4RL-style file" if args.fmt == "d4rl" else "Minari dataset"
    else:
        path, dataset = import_(
            args.source,
            args.dest,
            fmt=args.fmt,
            overwrite=args.overwrite,
            env=args.env,
            env_kwargs=_env_kwargs(args.env_overrides),
            kind=args.kind,
            return_random=args.return_random,
            return_expert=args.return_expert,
            policy=args.policy,
        )
        what = "jaxrl dataset"
    meta = dataset.meta
    print(
        f"wrote {what} {path} ({meta.env}/{meta.kind}: {meta.num_transitions} "
        f"transitions, {meta.num_episodes} complete episodes)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jaxrl.scripts.dataset``."""
    parser = build_parser()
    return common.run_main(
        lambda: run_from_args(parser.parse_args(argv)), prog="dataset"
    )


if __name__ == "__main__":
    sys.exit(main())
