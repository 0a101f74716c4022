"""The ``jaxrl`` command line: ``train``, ``sweep``, ``reproduce``, ``bench``, ``aggregate``, ``dataset``.

Each subcommand is implemented in its own module (``scripts/train.py`` and so
on, each also runnable as ``python -m scripts.<name>``); this module only
dispatches. Bad arguments or an invalid config print ONE line on stderr and exit
with status 2, without a traceback. ``train`` and ``sweep`` exit with status 3
when every seed (of every grid point) diverged, after writing their results and
one ``warning:`` line naming the diverged seeds; partial divergence warns and
exits 0. Ctrl-C exits with 130, SIGTERM with 143. ``train``, ``sweep`` and
``reproduce`` use JAX's persistent compilation cache
(:func:`jaxrl.scripts.common.compile_cache`; off with ``--no-compile-cache`` or
``JAXRL_NO_COMPILE_CACHE=1``).

Usage::

    jaxrl train --agent dqn --preset cartpole-small --num-seeds 4
    jaxrl train --agent dqn --env CartPole-v1 --set lr=1e-3 --resume
    jaxrl sweep --agent dqn --preset cartpole-small --grid lr=1e-3,3e-4 --grid gamma=0.9,0.99
    jaxrl reproduce --table baseline --budget small
    jaxrl aggregate results/baseline --metric eval/return
    jaxrl bench --quick
    jaxrl dataset export results/datasets/CartPole-v1/medium cartpole-medium.npz
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from jaxrl.scripts import common

__all__ = ["build_parser", "main"]

_COMMANDS = {
    "train": "train an agent (vmapped seeds, chunked, checkpointed, resumable)",
    "sweep": "hyperparameter grid x seeds (vmapped, sharded, chunked, resumable)",
    "reproduce": "run the presets behind a results table",
    "bench": "environment steps/s and compile time per agent",
    "aggregate": "IQM / bootstrap-CI tables and learning curves from results dirs",
    "dataset": "export / import offline datasets as D4RL-style .npz files or Minari",
}


def build_parser() -> common.ArgumentParser:
    """Return the top-level parser with one sub-parser per command."""
    from jaxrl.scripts import aggregate, bench, dataset, reproduce, sweep, train

    parser = common.ArgumentParser(
        prog="jaxrl", description="JAX-native, purely functional RL: command line."
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=common.ArgumentParser
    )
    sub.required = True
    modules = {
        "train": train,
        "sweep": sweep,
        "reproduce": reproduce,
        "bench": bench,
        "aggregate": aggregate,
        "dataset": dataset,
    }
    for name, module in modules.items():
        p = sub.add_parser(name, help=_COMMANDS[name], description=_COMMANDS[name])
        module.build_parser(p)
        p.set_defaults(_run=module.run_from_args)
    return parser


def _dispatch(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    return common.run_command(args._run, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxrl`` command line.

    Args:
      argv: arguments without the program name (default ``sys.argv[1:]``).

    Returns:
      0 on success.

    Raises:
      SystemExit: with status 2 after printing one error line on stderr for bad
        arguments or an invalid config (130 on Ctrl-C, 143 on SIGTERM); with
        status 3 when ``train``/``sweep`` finished but every seed diverged;
        with status 0 for ``--help``.
    """
    status = common.run_main(lambda: _dispatch(argv), prog="jaxrl")
    if status != 0:
        raise SystemExit(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
