"""One table of bad inputs over the command line and the library API.

House rule: bad input gets ONE line naming the problem, never a traceback.

* Command line (``jaxrl.scripts.cli.main`` in-process): exit status 2, stderr is
  exactly one non-empty line ``jaxrl...: error: ...`` naming the field or value
  at fault, nothing on stdout, and no results under ``--out`` (a run dir's
  ``.lock`` aside).
* Library API: :class:`jaxrl.errors.ConfigError` (or the ``ValueError`` a
  function documents) whose message is one line naming the field.

Almost every case fails in validation before anything is compiled; the few that
need an existing run (every checkpoint corrupt, a re-run into a finished run)
copy one tiny exact-VI run built once per module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import agents, buffer, checkpoint, envs, mdp, metrics
from jaxrl import config as jconfig
from jaxrl.errors import ConfigError
from jaxrl.ops import regularized, sac, tsallis
from jaxrl.scripts import cli, common

# ------------------------------------------------------------------------- case types


@dataclasses.dataclass(frozen=True)
class Cli:
    """A command line that must exit 2 with one error line holding ``needles``.

    ``{tmp}`` in ``argv`` becomes the test's temporary folder and ``{run}`` a
    private copy of the shared tiny run; ``prep(tmp)`` runs before the command
    (after the copy) and may return a context manager held during the command.
    ``train``/``sweep``/``reproduce``/``bench`` get an ``--out`` under
    ``{tmp}`` unless they name one (or ``--run-dir``).
    """

    argv: tuple[str, ...]
    needles: tuple[str, ...]
    prep: Callable[[Path], Any] | None = None


@dataclasses.dataclass(frozen=True)
class Api:
    """``call(tmp)`` must raise ``exc`` with a one-line message holding ``needles``."""

    call: Callable[[Path], Any]
    needles: tuple[str, ...]
    exc: type[Exception] = ConfigError


def cli_case(name: str, argv: str | list[str], *needles: str, prep=None, marks=()):
    args = tuple(argv.split()) if isinstance(argv, str) else tuple(argv)
    return pytest.param(Cli(args, needles, prep), id=f"cli-{name}", marks=marks)


def api_case(name: str, call, *needles: str, exc=ConfigError, marks=()):
    return pytest.param(Api(call, needles, exc), id=f"api-{name}", marks=marks)


# ------------------------------------------------------------------ helpers for cases

TRAIN_DQN = "train --agent dqn --preset cartpole-tiny"
TRAIN_MVI = "train --agent mvi --preset cartpole-tiny"
SWEEP_DQN = "sweep --agent dqn --preset cartpole-tiny"
# The shared run: exact VI on the slippery gridworld, 1 seed, 1 chunk of 1 sweep.
TINY_RUN = [
    "train",
    "--agent",
    "vi_tabular",
    "--preset",
    "gridworld",
    "--num-seeds",
    "1",
    "--set",
    "num_chunks=1",
    "--set",
    "iters_per_chunk=1",
    "--quiet",
]


def _regular_file(tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder")


def _metrics_file(tmp: Path) -> None:
    """A run dir holding one metric row (``loss``) and nothing else."""
    (tmp / "runs" / "a").mkdir(parents=True)
    (tmp / "runs" / "a" / "metrics.jsonl").write_text(
        '{"seed": 0, "iter": 0, "loss": 1.0}\n'
    )


def _empty_dir(tmp: Path) -> None:
    (tmp / "empty").mkdir()


def _junk_checkpoints_only(tmp: Path) -> None:
    """A run dir whose ``ckpt/`` holds one step folder with no checkpoint in it."""
    ckpt = tmp / "junk" / "ckpt"
    (ckpt / "3").mkdir(parents=True)
    (ckpt / "3" / "junk").write_text("hello")


def _garble(tmp: Path, part: str) -> None:
    """Overwrite the head of every ``part`` file of every checkpoint step."""
    files = [
        p
        for p in glob.glob(
            str(tmp / "run" / "ckpt" / "*" / part / "**"), recursive=True
        )
        if os.path.isfile(p) and not p.endswith("commit_success.txt")
    ]
    assert files
    for path in files:
        with open(path, "r+b") as f:
            f.write(b"\xff" * min(64, os.path.getsize(path)))


def _hold_lock(tmp: Path) -> Any:
    """Hold the run dir's lock as another run would (released after the command)."""
    lock = common.RunLock(str(tmp / "locked"))
    lock.__enter__()
    return lock


def _config(agent: str, **fields: Any) -> Any:
    return agents.AGENTS[agent].Config().replace(**fields)


def _validate(agent: str, **fields: Any) -> Callable[[Path], Any]:
    return lambda _: jconfig.validate(_config(agent, **fields))


def _nested_constrained(_: Path) -> Any:
    base = _config("constrained").base
    return jconfig.validate(_config("constrained", base=base.replace(alpha=2.0)))


def _restore_mismatch(tmp: Path) -> Any:
    checkpoint.save(tmp / "ckpt", 1, {"w": jnp.zeros((2, 3))})
    target = {"w": jax.ShapeDtypeStruct((3, 2), jnp.float32)}
    return checkpoint.restore(tmp / "ckpt", target)


def _buffer_disagreeing_batch(_: Path) -> Any:
    state = buffer.init({"x": jnp.zeros(2), "y": jnp.zeros(())}, capacity=8)
    return buffer.add(state, {"x": jnp.zeros((3, 2)), "y": jnp.zeros(4)})


def _mdp_batch_mismatch(_: Path) -> Any:
    P = np.full((2, 3, 2, 3), 1.0 / 3.0)  # a batch of two 3-state MDPs
    return mdp.make_mdp(P, np.zeros((3, 2)))  # R without the batch axis


_Q = jnp.array([1.0, 2.0, 0.5])


def _mviq_target(**kw: Any) -> Callable[[Path], Any]:
    args = {"tau": 0.1, "alpha": 0.9, "q": 2.0, "l0": -1.0, **kw}
    return lambda _: tsallis.mviq_target(_Q, 1, 1.0, 0.9, _Q, **args)


def _munchausen_target(**kw: Any) -> Callable[[Path], Any]:
    args = {"tau": 0.1, "alpha": 0.9, "l0": -1.0, **kw}
    return lambda _: regularized.munchausen_target(_Q, 1, 1.0, 0.9, _Q, **args)


# ------------------------------------------------------------------------------ table

CASES = [
    # ---- command line: names (agent, env, preset, table, budget, command)
    cli_case(
        "unknown-agent", "train --agent nope --env CartPole-v1", "unknown agent", "dqn"
    ),
    cli_case(
        "unknown-agent-preset-list", "train --agent nope --preset list", "unknown agent"
    ),
    cli_case(
        "unknown-env",
        "train --agent dqn --env NoSuchEnv-v9",
        "unknown environment",
        "NoSuchEnv-v9",
    ),
    cli_case(
        "unknown-preset",
        "train --agent dqn --preset nope",
        "unknown preset",
        "cartpole-small",
        "minatar-breakout-tiny",
    ),
    cli_case(
        "reproduce-unknown-table", "reproduce --table nope", "unknown table", "baseline"
    ),
    cli_case(
        "reproduce-unknown-budget",
        "reproduce --table baseline --budget huge",
        "--budget",
        "huge",
    ),
    cli_case("unknown-command", "frobnicate", "invalid choice", "frobnicate"),
    cli_case("no-command", [], "required"),
    cli_case("missing-env", "train --agent dqn", "--env"),
    cli_case("missing-agent", "train --env CartPole-v1", "--agent"),
    cli_case(
        "unknown-option",
        f"{TRAIN_DQN} --frobnicate",
        "unrecognized arguments",
        "--frobnicate",
    ),
    # ---- command line: --set syntax and parsing
    cli_case(
        "set-without-equals",
        f"{TRAIN_DQN} --set gamma",
        "override 'gamma'",
        "name=value",
    ),
    cli_case(
        "set-unknown-field",
        f"{TRAIN_DQN} --set bogus=1",
        "unknown config field 'bogus'",
    ),
    cli_case(
        "set-unparsable-float", f"{TRAIN_DQN} --set lr=fast", "cannot parse", "lr"
    ),
    cli_case(
        "set-unparsable-bool",
        f"{TRAIN_DQN} --set double_q=maybe",
        "cannot parse",
        "double_q",
    ),
    cli_case(
        "set-non-integer-int",
        f"{TRAIN_DQN} --set num_envs=2.5",
        "cannot parse",
        "num_envs",
    ),
    cli_case(
        "set-unparsable-tuple",
        f"{TRAIN_DQN} --set hidden_sizes=a,b",
        "cannot parse",
        "hidden_sizes",
    ),
    cli_case(
        "set-subfield-of-scalar", f"{TRAIN_DQN} --set lr.x=1", "'lr'", "sub-field"
    ),
    cli_case(
        "set-nested-unknown",
        "train --agent constrained --preset cartpole --set base.nope=1",
        "unknown config field 'base.nope'",
    ),
    cli_case(
        "set-nested-config-as-value",
        "train --agent constrained --preset cartpole --set base=1",
        "'base' is a nested config",
    ),
    # ---- command line: hyperparameter domains
    cli_case(
        "mviq-q-below-one",
        "train --agent mviq --preset cartpole-tiny --set q=0.5",
        "q must lie in",
        "0.5",
    ),
    cli_case(
        "mvi-alpha-above-one",
        f"{TRAIN_MVI} --set alpha=1.5",
        "alpha must lie in",
        "1.5",
    ),
    cli_case(
        "mvi-alpha-negative",
        f"{TRAIN_MVI} --set alpha=-0.1",
        "alpha must lie in",
        "-0.1",
    ),
    cli_case("mvi-tau-negative", f"{TRAIN_MVI} --set tau=-1", "tau must lie in", "-1"),
    cli_case("mvi-l0-positive", f"{TRAIN_MVI} --set l0=1", "l0 must lie in"),
    cli_case(
        "mvi-double-q", f"{TRAIN_MVI} --set double_q=true", "double_q must be False"
    ),
    cli_case("lr-zero", f"{TRAIN_DQN} --set lr=0", "lr must lie in", "got 0"),
    cli_case("lr-negative", f"{TRAIN_DQN} --set lr=-1e-3", "lr must lie in", "-0.001"),
    cli_case("lr-nan", f"{TRAIN_DQN} --set lr=nan", "lr must be finite, got nan"),
    cli_case("lr-inf", f"{TRAIN_DQN} --set lr=inf", "lr must be finite, got inf"),
    cli_case(
        "gamma-above-one", f"{TRAIN_DQN} --set gamma=1.5", "gamma must lie in", "1.5"
    ),
    cli_case(
        "gamma-negative", f"{TRAIN_DQN} --set gamma=-0.1", "gamma must lie in", "-0.1"
    ),
    cli_case("polyak-zero", f"{TRAIN_DQN} --set polyak=0", "polyak must lie in"),
    cli_case(
        "eps-start-above-one", f"{TRAIN_DQN} --set eps_start=2", "eps_start must lie in"
    ),
    cli_case(
        "num-chunks-zero",
        f"{TRAIN_DQN} --set num_chunks=0",
        "num_chunks must be a positive integer",
    ),
    cli_case(
        "hidden-size-zero", f"{TRAIN_DQN} --set hidden_sizes=0", "hidden_sizes must be"
    ),
    cli_case(
        "unknown-activation",
        f"{TRAIN_DQN} --set activation=nope",
        "activation must be one of",
        "'nope'",
    ),
    cli_case(
        "batch-above-buffer",
        f"{TRAIN_DQN} --set batch_size=512 --set buffer_size=256",
        "batch_size (512) must not exceed buffer_size (256)",
    ),
    cli_case(
        "ppo-clip-negative",
        "train --agent ppo --preset cartpole --set clip_eps=-1",
        "clip_eps must lie in",
    ),
    cli_case(
        "dual-rl-unknown-method",
        "train --agent dual_rl --preset cartpole --set method=nope",
        "method must be one of",
        "'nope'",
    ),
    cli_case(
        "distributional-dp-alpha-zero",
        "train --agent distributional_dp --preset cliff-cvar --set alpha=0",
        "alpha must lie in (0.0, 1.0]",
    ),
    cli_case(
        "cmdp-budget-nan",
        "train --agent cmdp_tabular --preset random-cmdp --set budget=nan",
        "budget must be finite, got nan",
    ),
    cli_case(
        "cmdp-budget-minus-inf",
        "train --agent cmdp_tabular --preset random-cmdp --set budget=-inf",
        "budget",
        "-inf",
    ),
    cli_case(
        "cmdp-unknown-method",
        "train --agent cmdp_tabular --preset random-cmdp --set method=nope",
        "method must be one of",
    ),
    # ---- command line: environment
    cli_case(
        "env-set-unknown-keyword",
        f"{TRAIN_DQN} --env-set max_step=10",
        "unknown option(s) 'max_step'",
        "CartPole-v1",
    ),
    cli_case(
        "env-set-without-equals",
        f"{TRAIN_DQN} --env-set gravity",
        "env override 'gravity'",
        "name=value",
    ),
    cli_case(
        "env-set-bad-value",
        f"{TRAIN_DQN} --env-set max_steps_in_episode=-3",
        "max_steps_in_episode",
        "-3",
    ),
    cli_case(
        "tabular-gamma-one",
        "train --agent vi_tabular --preset gridworld --env-set gamma=1.0",
        "gamma must lie in [0, 1)",
    ),
    cli_case(
        "gridworld-slip-above-one",
        "train --agent vi_tabular --preset gridworld --env-set slip=2",
        "slip must lie in",
    ),
    cli_case(
        "dqn-on-pendulum",
        "train --agent dqn --env Pendulum-v1",
        "dqn needs a Discrete action space; Pendulum-v1 has a Box one",
    ),
    cli_case(
        "mvi-on-pendulum",
        "train --agent mvi --env Pendulum-v1",
        "mvi needs a Discrete action space",
    ),
    cli_case(
        "mviq-on-pendulum",
        "train --agent mviq --env Pendulum-v1",
        "mviq needs a Discrete action space",
    ),
    cli_case(
        "dist-dqn-on-pendulum",
        "train --agent dist_dqn --env Pendulum-v1",
        "Discrete action space",
    ),
    cli_case(
        "ppo-on-pendulum",
        "train --agent ppo --env Pendulum-v1",
        "ppo needs a Discrete action space",
    ),
    cli_case(
        "sac-on-cartpole",
        "train --agent sac --env CartPole-v1",
        "sac needs a Box",
        "Discrete",
    ),
    cli_case(
        "tabular-agent-on-cartpole",
        "train --agent vi_tabular --env CartPole-v1",
        "vi_tabular needs a FiniteMDPEnv",
    ),
    cli_case(
        "cmdp-agent-without-costs",
        "train --agent cmdp_tabular --env GridWorld-v0",
        "no cost table C",
    ),
    cli_case(
        "ppo-lagrangian-without-costs",
        "train --agent ppo_lagrangian --env CartPole-v1",
        "needs a constrained environment",
    ),
    cli_case(
        "cat-without-costs",
        "train --agent cat --env CartPole-v1",
        "needs a cost-emitting environment",
        "CartPole-v1",
    ),
    cli_case(
        "cat-p-max-above-one",
        "train --agent cat --preset cartpole --set p_max=2",
        "p_max must lie in [0.0, 1.0]",
    ),
    cli_case(
        "empty-env-id",
        ["train", "--agent", "dqn", "--env", ""],
        "unknown environment ''",
    ),
    cli_case(
        "env-set-text-for-number",
        "train --agent vi_tabular --preset gridworld --env-set gamma=abc",
        "cannot build GridWorld-v0",
        "'abc'",
    ),
    # ---- command line: seeds and run options
    cli_case("num-seeds-zero", f"{TRAIN_DQN} --num-seeds 0", "--num-seeds", "'0'"),
    cli_case(
        "num-seeds-negative", f"{TRAIN_DQN} --num-seeds -1", "--num-seeds", "'-1'"
    ),
    cli_case("num-seeds-text", f"{TRAIN_DQN} --num-seeds abc", "--num-seeds", "'abc'"),
    cli_case("seed-negative", f"{TRAIN_DQN} --seed -1", "--seed", "'-1'"),
    cli_case("max-chunks-zero", f"{TRAIN_DQN} --max-chunks 0", "--max-chunks", "'0'"),
    cli_case(
        "keep-checkpoints-zero",
        f"{TRAIN_DQN} --keep-checkpoints 0",
        "--keep-checkpoints",
    ),
    cli_case(
        "num-seeds-beyond-memory",
        "train --agent vi_tabular --preset gridworld --num-seeds 100000000000",
        "--num-seeds 100000000000 needs about",
        "memory",
    ),
    cli_case(
        "sweep-num-seeds-beyond-memory",
        "sweep --agent vi_tabular --preset gridworld --num-seeds 100000000000 "
        "--grid noise_std=0,0.1",
        "--num-seeds 100000000000 x 2 grid points",
        "memory",
    ),
    cli_case(
        "chunk-beyond-memory",
        "train --agent vi_tabular --preset gridworld --set iters_per_chunk=100000000000",
        "one seed needs",
        "reduce iters_per_chunk",
    ),
    cli_case(
        "buffer-size-beyond-int32",
        f"{TRAIN_DQN} --set buffer_size=10000000000",
        "buffer_size must be <= 1073741824",
    ),
    cli_case(
        "sac-buffer-size-beyond-int32",
        "train --agent sac --preset pendulum-tiny --set buffer_size=10000000000",
        "capacity must be <= 1073741824",
        "10000000000",
    ),
    # ---- command line: sweep grids
    cli_case(
        "grid-without-equals", f"{SWEEP_DQN} --grid lr", "grid axis 'lr'", "field=v1,v2"
    ),
    cli_case(
        "grid-unknown-field",
        f"{SWEEP_DQN} --grid nope=1,2",
        "unknown config field 'nope'",
    ),
    cli_case(
        "grid-static-field", f"{SWEEP_DQN} --grid num_envs=1,2", "'num_envs' is static"
    ),
    cli_case(
        "grid-invalid-value",
        f"{SWEEP_DQN} --grid gamma=0.9,1.5",
        "gamma must lie in",
        "1.5",
    ),
    cli_case(
        "grid-unparsable-value",
        f"{SWEEP_DQN} --grid lr=1e-3,fast",
        "cannot parse lr='fast'",
    ),
    cli_case(
        "grid-no-values", f"{SWEEP_DQN} --grid lr=", "grid axis 'lr' has no values"
    ),
    cli_case(
        "grid-axis-twice",
        f"{SWEEP_DQN} --grid lr=1e-3 --grid lr=1e-4",
        "grid axis 'lr' given twice",
    ),
    # ---- command line: files and folders
    cli_case(
        "out-through-a-regular-file",
        f"{TRAIN_DQN} --out {{tmp}}/afile",
        "Not a directory",
        "afile",
        prep=_regular_file,
    ),
    cli_case(
        "aggregate-missing-dir",
        "aggregate /no/such/dir",
        "no such results path",
        "/no/such/dir",
    ),
    cli_case(
        "aggregate-no-runs",
        "aggregate {tmp}/empty",
        "no run directories",
        "empty",
        prep=_empty_dir,
    ),
    cli_case(
        "aggregate-random-without-expert",
        "aggregate {tmp}/empty --random 0",
        "--random and --expert",
        prep=_empty_dir,
    ),
    cli_case(
        "aggregate-unknown-metric",
        "aggregate {tmp}/runs --metric nope/nope --no-plot --out {tmp}/agg",
        "metric 'nope/nope' not found",
        prep=_metrics_file,
    ),
    cli_case(
        "aggregate-equal-normalisation-scores",
        "aggregate {tmp}/empty --random 1 --expert 1",
        "--random and --expert must be finite and differ",
        prep=_empty_dir,
    ),
    cli_case(
        "aggregate-nan-normalisation-score",
        "aggregate {tmp}/empty --random nan --expert 1",
        "--random and --expert must be finite",
        "nan",
        prep=_empty_dir,
    ),
    cli_case(
        "resume-no-intact-checkpoint-junk-step",
        [*TINY_RUN, "--run-dir", "{tmp}/junk", "--resume"],
        "no intact checkpoint",
        "ckpt",
        prep=_junk_checkpoints_only,
    ),
    cli_case(
        "resume-every-checkpoint-garbled-arrays",
        [*TINY_RUN, "--run-dir", "{run}", "--resume"],
        "no intact checkpoint",
        "arrays",
        prep=lambda tmp: _garble(tmp, "state"),
    ),
    cli_case(
        "resume-every-checkpoint-garbled-metadata",
        [*TINY_RUN, "--run-dir", "{run}", "--resume"],
        "no intact checkpoint",
        "metadata",
        prep=lambda tmp: _garble(tmp, "meta"),
    ),
    cli_case(
        "rerun-into-dir-with-results",
        [*TINY_RUN, "--run-dir", "{run}"],
        "already holds results",
        "--resume",
        "--overwrite",
    ),
    cli_case(
        "resume-and-overwrite",
        f"{TRAIN_DQN} --resume --overwrite",
        "--overwrite",
        "not allowed with argument --resume",
    ),
    cli_case(
        "reproduce-resume-and-overwrite",
        "reproduce --table baseline --resume --overwrite",
        "--overwrite",
        "--resume",
    ),
    cli_case(
        "run-dir-locked-by-another-run",
        [*TINY_RUN, "--run-dir", "{tmp}/locked", "--resume"],
        "in use by another run",
        f"pid {os.getpid()}",
        prep=_hold_lock,
    ),
    # ---- command line: bench
    cli_case("bench-seeds-text", "bench --seeds 1,x", "--seeds", "'1,x'"),
    cli_case("bench-seeds-zero", "bench --seeds 0", "--seeds", "positive"),
    cli_case(
        "bench-unknown-case", "bench --agents nope", "no benchmark for case 'nope'"
    ),
    cli_case(
        "bench-unknown-env", "bench --envs Nope-v0", "no deep benchmark on 'Nope-v0'"
    ),
    cli_case("bench-repeats-zero", "bench --repeats 0", "--repeats", "'0'"),
    # ---- API: configs
    api_case(
        "validate-sac-tau-zero", _validate("sac", tau=0.0), "tau must lie in (0.0, 1.0]"
    ),
    api_case(
        "validate-ppo-gae-lambda",
        _validate("ppo", gae_lambda=1.5),
        "gae_lambda must lie in",
        "1.5",
    ),
    api_case(
        "validate-mvi-tabular-q",
        _validate("mvi_tabular", q=0.5),
        "q must lie in",
        "0.5",
    ),
    api_case(
        "validate-dqn-polyak-above-one",
        _validate("dqn", polyak=1.5),
        "polyak must lie in",
        "1.5",
    ),
    api_case(
        "validate-cmdp-lambda0-above-max",
        _validate("cmdp_tabular", lambda0=2.0, lambda_max=1.0),
        "lambda0 must not exceed lambda_max",
    ),
    api_case(
        "validate-distributional-dp-support",
        _validate("distributional_dp", v_min=1.0, v_max=-1.0),
        "v_min",
        "v_max",
    ),
    api_case(
        "validate-dist-dqn-head", _validate("dist_dqn", head="nope"), "head", "'nope'"
    ),
    api_case(
        "validate-nested-base-alpha", _nested_constrained, "alpha must lie in", "2"
    ),
    api_case(
        "validate-stacked-sweep-config",
        lambda _: jconfig.validate(_config("dqn", gamma=np.array([0.9, 1.5]))),
        "gamma must lie in",
        "1.5",
    ),
    api_case(
        "apply-overrides-unknown-mapping-key",
        lambda _: jconfig.apply_overrides(_config("dqn"), {"gama": 0.9}),
        "unknown config field 'gama'",
    ),
    api_case(
        "from-json-unknown-field",
        lambda _: jconfig.from_json(_config("dqn"), '{"gamma": 0.9, "nope": 1}'),
        "unknown config field 'nope'",
    ),
    api_case(
        "grid-empty-axis",
        lambda _: jconfig.grid(_config("dqn"), lr=[]),
        "grid has no points",
    ),
    # ---- API: ops with concrete out-of-domain hyperparameters
    api_case(
        "exp-q-q-below-one", lambda _: tsallis.exp_q(_Q, 0.5), "q must lie in", "0.5"
    ),
    api_case("mviq-target-q-below-one", _mviq_target(q=0.5), "q must lie in", "0.5"),
    api_case(
        "mviq-target-alpha-nan",
        _mviq_target(alpha=math.nan),
        "alpha must be finite, got nan",
    ),
    api_case(
        "munchausen-target-alpha-above-one",
        _munchausen_target(alpha=1.5),
        "alpha must lie in",
        "1.5",
    ),
    api_case(
        "munchausen-bonus-tau-negative",
        lambda _: regularized.munchausen_bonus(_Q, 1, -1.0, 0.9, -1.0),
        "tau must lie in",
        "-1",
    ),
    api_case(
        "polyak-update-tau-nan",
        lambda _: sac.polyak_update({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, math.nan),
        "tau must be finite, got nan",
    ),
    # ---- API: environments, MDPs, buffer, checkpoint, metrics
    api_case(
        "envs-make-unknown-id",
        lambda _: envs.make("Pendulum-v2"),
        "unknown environment 'Pendulum-v2'",
    ),
    api_case(
        "envs-make-unknown-keyword",
        lambda _: envs.make("GridWorld-v0", slipp=0.1),
        "'slipp'",
        "GridWorld-v0",
    ),
    api_case(
        "envs-make-bad-gamma",
        lambda _: envs.make("Chain-v0", gamma=1.5),
        "gamma",
        "1.5",
    ),
    api_case(
        "envs-make-text-for-number",
        lambda _: envs.make("GridWorld-v0", gamma="abc"),
        "cannot build GridWorld-v0",
        "'abc'",
    ),
    api_case(
        "buffer-capacity-beyond-int32",
        lambda _: buffer.init({"x": jnp.zeros(2)}, capacity=2**31),
        "capacity must be <=",
        str(2**31),
    ),
    api_case(
        "mdp-batched-p-unbatched-r",
        _mdp_batch_mismatch,
        "R must have shape [2, 3, 2]",
        "[3, 2]",
    ),
    api_case(
        "buffer-add-disagreeing-batch",
        _buffer_disagreeing_batch,
        "batch size N",
        "[3, 4]",
    ),
    api_case(
        "checkpoint-restore-mismatched-target",
        _restore_mismatch,
        "does not match the target",
        "leaf ['w'] has shape (2, 3)",
    ),
    api_case(
        "bootstrap-ci-confidence-zero",
        lambda _: metrics.bootstrap_ci(np.ones(3), confidence=0.0),
        "confidence",
        exc=ValueError,
    ),
    api_case(
        "bootstrap-ci-confidence-above-one",
        lambda _: metrics.bootstrap_ci(np.ones(3), confidence=1.5),
        "confidence",
        "1.5",
        exc=ValueError,
    ),
    api_case(
        "bootstrap-ci-no-resamples",
        lambda _: metrics.bootstrap_ci(np.ones(3), num_resamples=0),
        "num_resamples",
        exc=ValueError,
    ),
]


# ------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 1-chunk exact-VI run with its checkpoint (read-only; cases copy it).

    Built through the API without the plot (no matplotlib import); the same
    settings as ``TINY_RUN``, so ``TINY_RUN --run-dir <copy> --resume`` matches it.
    """
    from jaxrl.scripts import train

    run = tmp_path_factory.mktemp("bad_input") / "run"
    spec = common.resolve_run(
        "vi_tabular", None, "gridworld", ["num_chunks=1", "iters_per_chunk=1"], (), 1
    )
    with open(os.devnull, "w") as log:
        result = train.train(spec, out_dir=str(run), quiet=True, plot=False, log=log)
    assert result.finished and (run / "ckpt" / "1").is_dir()
    return run


_OUT_COMMANDS = ("train", "sweep", "reproduce")


def _argv(case: Cli, tmp: Path) -> list[str]:
    argv = [
        a.replace("{tmp}", str(tmp)).replace("{run}", str(tmp / "run"))
        for a in case.argv
    ]
    if argv[:1] and argv[0] in _OUT_COMMANDS and not {"--out", "--run-dir"} & set(argv):
        argv += ["--out", str(tmp / "out")]
    if argv[:1] == ["bench"] and "--out" not in argv:
        argv += ["--out", str(tmp / "out" / "BENCHMARKS.md")]
    return argv


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (but a run's ``.lock``) with its content."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _check_cli(case: Cli, tmp: Path, capsys, request) -> None:
    uses_run = any("{run}" in a for a in case.argv)
    if uses_run:
        shutil.copytree(request.getfixturevalue("tiny_run"), tmp / "run")
    with contextlib.ExitStack() as stack:
        held = case.prep(tmp) if case.prep is not None else None
        if held is not None:
            stack.push(held)
        before = _snapshot(tmp / "run") if uses_run else None
        capsys.readouterr()
        try:
            status = cli.main(_argv(case, tmp))
        except SystemExit as exit_:
            status = exit_.code
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), err
    line = lines[0]
    assert line.startswith("jaxrl") and "error: " in line, line
    for needle in case.needles:
        assert needle in line, (needle, line)
    assert out == "", out
    written = [p for p in (tmp / "out").rglob("*") if p.is_file() and p.name != ".lock"]
    assert not written, f"bad input must write no results: {written}"
    if uses_run:  # the earlier run is left exactly as it was
        assert _snapshot(tmp / "run") == before


def _check_api(case: Api, tmp: Path) -> None:
    with pytest.raises(case.exc) as info:
        case.call(tmp)
    message = str(info.value)
    assert message and "\n" not in message, message
    for needle in case.needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line(case, tmp_path, capsys, request):
    if isinstance(case, Cli):
        _check_cli(case, tmp_path, capsys, request)
    else:
        _check_api(case, tmp_path)


def test_table_size():
    """The issue asks for at least 40 distinct bad inputs over CLI and API."""
    ids = [p.id for p in CASES]
    assert len(set(ids)) == len(ids)
    assert sum(i.startswith("cli-") for i in ids) >= 40
    assert sum(i.startswith("api-") for i in ids) >= 15
