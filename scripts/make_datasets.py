"""``python -m jaxrl.scripts.make_datasets``: D4RL-style offline datasets from our own agents.

For every environment of the chosen budget this script

1. trains one of our agents (``dqn`` or ``mvi`` for discrete actions,
   ``sac`` for continuous ones, with the presets of ``scripts/presets.py``),
   one seed, chunk by chunk, and after every chunk keeps the parameters (a
   *snapshot*), the transitions the chunk stored in the replay buffer
   (:func:`jaxrl.envs.offline.buffer_tail`) and the snapshot's mean return under
   the behaviour policy (``jaxrl.rollout.evaluate``): ε-greedy with
   ``--behaviour-epsilon`` for the value agents, the stochastic
   tanh-Gaussian policy (samples, as in D4RL) for SAC;
2. freezes the reference returns: ``R_random`` (uniform actions) and
   ``R_expert`` (the best snapshot, re-measured on fresh episodes), both over
   the budget's evaluation episodes, written to ``<env>/references.json``
   and reused by later runs (``--remeasure-references`` measures again); an
   agent whose best snapshot does not beat ``R_random`` is refused (no data
   is labelled ``expert`` that is not better than random actions);
3. picks the *expert* (the best snapshot) and the *medium* snapshot: the one
   before the expert whose normalised score is closest to
   ``100 * --medium-fraction`` (default 0.4, inside D4RL's "about a third to a
   half of expert");
4. writes the datasets (:mod:`jaxrl.envs.offline`): ``random``, ``medium``,
   ``expert`` (``--dataset-size`` transitions each, collected by the
   behaviour policies), ``medium-expert`` (their concatenation),
   ``medium-replay`` (everything the agent stored in its replay buffer from
   the start of training up to the medium snapshot, rebuilt chunk by chunk
   from the buffer: the chunk length is chosen so that one chunk never
   overflows the buffer; ``--replay-cap`` keeps only the last transitions of
   every environment stream before the medium snapshot) and the ReCOIL imitation splits
   ``expert-1traj`` (one complete expert episode) and ``random-plus-expert``
   / ``medium-plus-expert`` (random or medium data plus
   ``--expert-episodes`` complete expert episodes, disjoint from the
   one-episode set, flagged in ``extras["is_expert"]``).

Continuous-action environments (``Pendulum-v1``, ``MountainCarContinuous-v0``)
are trained with Soft Actor-Critic (:mod:`jaxrl.agents.sac`, :func:`train_sac`), so
they get the same trained kinds. ``MountainCarContinuous-v0`` is an
exploration problem: uniform actions almost never reach the goal, and SAC
usually learns to stand still (return about 0, against about -33 for uniform
actions). That *is* better than random, so its "expert" is the trained
stand-still policy and the normalised scores are relative to it; the data
never shows the goal being reached. Measured with ``--budget small`` (seed 0):
Pendulum R_random -1216, R_expert -134 (SAC after 17k of 20k env steps),
medium score 48 (the snapshot after 3.2k steps), two minutes on two loaded
CPU cores; MountainCarContinuous R_random -32.4, R_expert -0.7 (the
stand-still policy after 45k of 50k steps, mean |action| 0.07), medium score
40, no episode of any dataset reaching the goal, four and a half minutes.

Fallback to a hand-written controller: a plan that names both an ``agent``
and a ``scripted`` controller falls back to the controller's datasets when
the trained agent is refused (its best snapshot no better than uniform
actions): ``random`` and ``scripted-expert`` (energy-pumping swing-up with a
PD balance controller for Pendulum; push in the direction of motion for
MountainCarContinuous), ``scripted-medium`` (the controller with its actions
replaced by uniform ones with the probability whose score is closest to
``--medium-fraction``), ``scripted-medium-expert``, ``scripted-expert-1traj``
and ``random-plus-scripted-expert``. Their ``R_expert`` is the controller's
return and ``R_random`` that of uniform actions, the two ends of the grid of
action-replacement probabilities evaluated for ``scripted-medium``
(``info["expert_reference"] == "scripted"``). A plan with a controller and no
agent writes only these. Further agents plug in through :data:`TRAINERS` (a
function returning a :class:`TrainingRun`) and an :class:`EnvPlan` naming it.

Writes ``<out>/<env>/<kind>/`` (one :func:`jaxrl.envs.offline.save_dataset`
directory each), ``<out>/<env>/references.json``, ``<out>/<env>/training.json``
(snapshot returns, chosen snapshots, agent config) and ``<out>/summary.md`` /
``summary.json`` (every dataset under ``<out>``: size, episodes, mean return,
normalised score). The default ``<out>`` is ``results/datasets`` (git-ignored).

This module is the catalogue and driver: budgets, environment plans, the
training of the agents (chunked, snapshotted), the reference files, argument
parsing and every file written. The library it drives, free of agents and
I/O paths, is :mod:`jaxrl.envs.offline`: collection from policies and replay
streams, reference returns and the expert / medium pickers
(:mod:`jaxrl.envs.offline.collect`), the controllers
(:mod:`jaxrl.envs.offline.controllers`), the dataset type and its splits
(:mod:`jaxrl.envs.offline.dataset`) and storage
(:mod:`jaxrl.envs.offline.storage`).

Budgets: ``tiny`` (CartPole-v1 only, small sizes, under two minutes on two CPU
cores; for tests and CI), ``small`` (CartPole, Acrobot, Breakout-MinAtar,
Pendulum, MountainCarContinuous; minutes on CPU), ``full`` (CartPole, Acrobot,
the five MinAtar games at the 5M-frame presets with sticky actions (p = 0.1, as
the ``mvi-minatar`` table's ``full`` budget), Pendulum, MountainCarContinuous;
an accelerator for MinAtar).

Usage::

    python -m jaxrl.scripts.make_datasets --budget tiny
    python -m jaxrl.scripts.make_datasets --budget small --envs CartPole-v1,Pendulum-v1
    python -m jaxrl.scripts.make_datasets --budget full --out /data/jaxrl-datasets
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import jax
import numpy as np

from jaxrl import config as jconfig
from jaxrl import envs, rollout
from jaxrl import logging as jlog
from jaxrl.agents import sac as sac_agent
from jaxrl.buffer import BufferState
from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from jaxrl.rollout import Policy
from jaxrl.scripts import common, tables
from jaxrl.scripts import presets as jpresets
from jaxrl.transition import Transition
from jaxrl.types import Array, PRNGKey

__all__ = [
    "Budget",
    "EnvPlan",
    "Snapshot",
    "TrainingRun",
    "BUDGETS",
    "CATALOGUE",
    "TRAINERS",
    "TRAINED_KINDS",
    "SCRIPTED_KINDS",
    "make_datasets",
    "train_value_agent",
    "train_sac",
    "NotLearnedError",
    "write_summary",
    "build_parser",
    "run_from_args",
    "main",
]

TRAINED_KINDS = (
    "random",
    "medium",
    "expert",
    "medium-expert",
    "medium-replay",
    "expert-1traj",
    "random-plus-expert",
    "medium-plus-expert",
)
"""Kinds written for an environment with a trained agent."""

SCRIPTED_KINDS = (
    "random",
    "scripted-medium",
    "scripted-expert",
    "scripted-medium-expert",
    "scripted-expert-1traj",
    "random-plus-scripted-expert",
)
"""Kinds written for an environment with a hand-written controller only."""


# ----------------------------------------------------------------------------- plans


@dataclasses.dataclass(frozen=True)
class Budget(tables.Budget):
    """Sizes of one budget (the one budget type, :class:`jaxrl.scripts.tables.Budget`).

    Attributes:
      envs: the environments generated by default.
      dataset_size: transitions of each collected dataset (classic control).
      minatar_size: the same for MinAtar games (larger observations).
      num_envs: parallel environments when collecting (each env's stream is
        one contiguous block; longer streams leave fewer unfinished episodes).
      snapshots: target number of training chunks (snapshots); fine enough
        that fast learners do not jump over the medium band between two.
      snapshot_episodes: episodes of the quick score of every snapshot.
      eval_episodes: episodes of every other evaluation: the re-scoring of the
        candidate snapshots, ``R_random``, ``R_expert`` and each point of the
        scripted-medium grid.
      candidates: snapshots re-scored when picking the expert and the medium
        one (the best few, and the few closest to the medium target).
      expert_episodes: expert episodes in the ``*-plus-expert`` sets.
      replay_cap: at most this many transitions in ``medium-replay`` (the last
        ones before the medium snapshot); ``None``: all.
    """

    envs: tuple[str, ...]
    dataset_size: int
    minatar_size: int
    num_envs: int
    snapshots: int
    snapshot_episodes: int
    eval_episodes: int
    candidates: int
    expert_episodes: int
    replay_cap: int | None


_CLASSIC = ("CartPole-v1", "Acrobot-v1")
_CONTINUOUS = ("Pendulum-v1", "MountainCarContinuous-v0")

BUDGETS: dict[str, Budget] = tables.budget_set(
    Budget(
        envs=("CartPole-v1",),
        dataset_size=10_000,
        minatar_size=2_000,
        num_envs=5,
        snapshots=100,
        snapshot_episodes=10,
        eval_episodes=50,
        candidates=5,
        expert_episodes=3,
        replay_cap=None,
        name="tiny",
    ),
    Budget(
        envs=(*_CLASSIC, "Breakout-MinAtar", *_CONTINUOUS),
        dataset_size=50_000,
        minatar_size=50_000,
        num_envs=10,
        snapshots=200,
        snapshot_episodes=16,
        eval_episodes=100,
        candidates=5,
        expert_episodes=20,
        replay_cap=None,
        name="small",
    ),
    Budget(
        envs=(*_CLASSIC, *jpresets.MINATAR_GAMES, *_CONTINUOUS),
        dataset_size=200_000,
        minatar_size=100_000,
        num_envs=10,
        snapshots=200,
        snapshot_episodes=32,
        eval_episodes=200,
        candidates=8,
        expert_episodes=100,
        replay_cap=500_000,
        name="full",
    ),
)
"""Budgets (``--budget``)."""


@dataclasses.dataclass(frozen=True)
class EnvPlan:
    """How the datasets of one environment are produced.

    Attributes:
      env: environment id.
      agent: trainer name in :data:`TRAINERS`, or ``None`` (no trained agent).
      presets: ``{budget: preset name}`` of ``agent`` (``scripts/presets.py``).
      overrides: ``{budget: {field: value}}`` config overrides on the preset.
      scripted: controller name in :data:`jaxrl.envs.offline.CONTROLLERS`: the datasets when
        ``agent`` is ``None``, the fallback when the agent is refused
        (:class:`NotLearnedError`) otherwise.
      env_kwargs: ``jaxrl.envs.make`` keyword arguments.
    """

    env: str
    agent: str | None = None
    presets: dict[str, str] = dataclasses.field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    scripted: str | None = None
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


_ACROBOT_TINY = dict(  # 100k env steps (the cartpole-small settings)
    buffer_size=10_000,
    batch_size=64,
    num_chunks=10,
    iters_per_chunk=1_000,
    learning_starts=1_000,
    eps_decay=0.3,
    lr=5e-4,
    lr_end_fraction=0.05,
    target_update_period=400,
)


def _minatar_plan(game: str) -> EnvPlan:
    short = game.split("-")[0].lower()
    return EnvPlan(
        env=game,
        agent="dqn",
        presets={b: f"minatar-{short}-{b}" for b in jpresets.BUDGETS},
    )


CATALOGUE: dict[str, EnvPlan] = {
    "CartPole-v1": EnvPlan(
        env="CartPole-v1",
        agent="dqn",
        presets={"tiny": "cartpole-small", "small": "cartpole", "full": "cartpole"},
    ),
    "Acrobot-v1": EnvPlan(
        env="Acrobot-v1",
        agent="mvi",
        presets={b: "acrobot" for b in jpresets.BUDGETS},
        overrides={"tiny": _ACROBOT_TINY},
    ),
    **{g: _minatar_plan(g) for g in jpresets.MINATAR_GAMES},
    "Pendulum-v1": EnvPlan(
        env="Pendulum-v1",
        agent="sac",
        presets={"tiny": "pendulum", "small": "pendulum", "full": "pendulum-long"},
        scripted="pendulum-swingup-pd",
    ),
    "MountainCarContinuous-v0": EnvPlan(
        env="MountainCarContinuous-v0",
        agent="sac",
        presets={
            "tiny": "mountaincar",
            "small": "mountaincar",
            "full": "mountaincar-long",
        },
        scripted="mountaincar-push-with-velocity",
    ),
}
"""Every environment the script knows, with its agent or controller."""


# ----------------------------------------------------------------------------- training


@dataclasses.dataclass
class Snapshot:
    """One policy saved during training.

    Attributes:
      chunk: index of the chunk after which it was taken (0-based).
      env_steps: training environment steps so far.
      eval_return: mean return of the behaviour policy over
        ``snapshot_episodes`` episodes (a quick, noisy score).
      params: the agent's parameters (bound to ``TrainingRun.behaviour``).
    """

    chunk: int
    env_steps: int
    eval_return: float
    params: Any


@dataclasses.dataclass
class TrainingRun:
    """What a trainer returns.

    Attributes:
      agent: agent name.
      description: the agent and preset, for the metadata.
      behaviour: ``behaviour(params) -> policy``, the data-collection policy
        (``params`` may be traced: one compiled collection serves every
        snapshot).
      behaviour_label: e.g. ``"epsilon-greedy (epsilon=0.05)"``.
      evaluate: ``evaluate(params, key) -> float``, the mean return of the
        behaviour policy over ``eval_episodes`` episodes (compiled once).
      snapshots: in training order.
      replay: ``replay[c]``: ``Transition[I, E]`` (host arrays) stored in the
        replay buffer during chunk ``c``; ``None`` for agents without replay.
      config: the resolved agent config (JSON dict).
    """

    agent: str
    description: str
    behaviour: Callable[[Any], Policy]
    behaviour_label: str
    evaluate: Callable[[Any, PRNGKey], float]
    snapshots: list[Snapshot]
    replay: list[Transition] | None
    config: dict[str, Any]


def _rechunk(config: Any, snapshots: int, train_env_steps: int | None) -> Any:
    """Same run in chunks that fit the replay buffer, about ``snapshots`` of them."""
    num_envs = config.num_envs
    total = config.num_chunks * config.iters_per_chunk
    if train_env_steps is not None:
        total = max(1, train_env_steps // num_envs)
    largest = max(1, min(config.buffer_size // num_envs, total // max(snapshots, 1)))
    size = max(d for d in range(1, largest + 1) if total % d == 0)
    return config.replace(
        num_chunks=total // size, iters_per_chunk=size, num_eval_episodes=0
    )


def train_value_agent(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    plan: EnvPlan,
    budget_name: str,
    budget: Budget,
    *,
    epsilon: float,
    train_env_steps: int | None = None,
    log: TextIO,
) -> TrainingRun:
    """Train a replay-buffer value agent (``dqn``, ``mvi``, ``mviq``) and snapshot it.

    The preset's run (same total steps, schedules and hyperparameters) is cut
    into chunks of ``I`` iterations with ``I * num_envs <= buffer_size``, so
    :func:`jaxrl.envs.offline.buffer_tail` recovers every stored transition. The
    behaviour policy is the agent's ``act`` with ``epsilon``.

    Raises:
      ConfigError: if the agent has no replay buffer in its state.
    """
    return _train_replay_agent(
        key, env, env_params, plan, budget_name, budget,
        module=common.get_agent(plan.agent),
        act_kwargs={"epsilon": epsilon},
        behaviour_label=f"epsilon-greedy (epsilon={epsilon:g}) on the agent's act",
        train_env_steps=train_env_steps, log=log,
    )  # fmt: skip


def train_sac(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    plan: EnvPlan,
    budget_name: str,
    budget: Budget,
    *,
    epsilon: float,
    train_env_steps: int | None = None,
    log: TextIO,
) -> TrainingRun:
    """Train Soft Actor-Critic (:mod:`jaxrl.agents.sac`, continuous actions) and snapshot it.

    Chunked and snapshotted as :func:`train_value_agent`. The behaviour policy
    is the snapshot's stochastic policy (tanh-Gaussian samples scaled to the
    action box, D4RL's choice for its SAC data); ``epsilon`` (the value
    agents' ``--behaviour-epsilon``) does not apply and is ignored.
    """
    del epsilon
    return _train_replay_agent(
        key, env, env_params, plan, budget_name, budget,
        module=sac_agent,
        act_kwargs={},
        behaviour_label="stochastic policy (tanh-Gaussian samples of the SAC actor)",
        train_env_steps=train_env_steps, log=log,
    )  # fmt: skip


def _train_replay_agent(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    plan: EnvPlan,
    budget_name: str,
    budget: Budget,
    *,
    module: Any,
    act_kwargs: dict[str, Any],
    behaviour_label: str,
    train_env_steps: int | None,
    log: TextIO,
) -> TrainingRun:
    """Train agent ``module`` chunk by chunk; behaviour ``act(..., **act_kwargs)``."""
    spec = jpresets.get_preset(plan.agent, plan.presets[budget_name])
    config = spec.make_config().replace(**plan.overrides.get(budget_name, {}))
    config = _rechunk(config, budget.snapshots, train_env_steps)
    jconfig.validate(config)
    items = config.iters_per_chunk * config.num_envs
    k_init, k_eval = jax.random.split(key)
    state = jax.jit(lambda k: module.init(k, env, env_params, config))(k_init)
    if not isinstance(getattr(state, "buffer", None), BufferState):
        raise ConfigError(
            f"agent {plan.agent!r} keeps no replay buffer in its state; "
            "medium-replay needs one"
        )
    run = jax.jit(module.make_run(config, env, env_params))

    def behaviour(params: Any) -> Policy:
        def policy(k: PRNGKey, obs: Array) -> Array:
            keys = jax.random.split(k, obs.shape[0])
            return jax.vmap(
                lambda o, kk: module.act(params, o, kk, config, **act_kwargs)
            )(obs, keys)

        return policy

    max_steps = offline.max_episode_steps(env_params)

    def evaluator(episodes: int) -> Callable[[Any, PRNGKey], float]:
        compiled = jax.jit(
            lambda params, k: rollout.evaluate(
                k, env, env_params, behaviour(params), episodes, max_steps
            )["return"]
        )
        return lambda params, k: float(
            np.mean(np.asarray(compiled(params, k), np.float64))
        )

    quick = evaluator(budget.snapshot_episodes)
    evaluate = evaluator(budget.eval_episodes)

    tail = jax.jit(lambda buf: offline.buffer_tail(buf, items))
    eval_keys = jax.random.split(k_eval, config.num_chunks)
    snapshots, replay = [], []
    start = time.perf_counter()
    for c in range(config.num_chunks):
        state, _ = run(state)
        chunk = jax.device_get(tail(state.buffer))
        replay.append(
            jax.tree.map(
                lambda x: x.reshape(
                    (config.iters_per_chunk, config.num_envs, *x.shape[1:])
                ),
                chunk,
            )
        )
        ret = quick(state.params, eval_keys[c])
        steps = (c + 1) * items
        snapshots.append(Snapshot(c, steps, ret, state.params))
        if c % max(1, config.num_chunks // 10) == 0 or c == config.num_chunks - 1:
            print(
                f"  [{plan.env}] {plan.agent} chunk {c + 1}/{config.num_chunks}: "
                f"{steps:,} env steps, behaviour return {ret:.1f} "
                f"({time.perf_counter() - start:.0f}s)",
                file=log,
            )
    return TrainingRun(
        agent=plan.agent,
        description=f"{plan.agent} (preset {spec.agent}/{plan.presets[budget_name]})",
        behaviour=behaviour,
        behaviour_label=behaviour_label,
        evaluate=evaluate,
        snapshots=snapshots,
        replay=replay,
        config=jconfig.to_dict(config),
    )


Trainer = Callable[..., TrainingRun]
TRAINERS: dict[str, Trainer] = {
    "dqn": train_value_agent,
    "mvi": train_value_agent,
    "mviq": train_value_agent,
    "sac": train_sac,
}
"""Trainer per agent name: ``trainer(key, env, env_params, plan, budget_name,
budget, *, epsilon, train_env_steps, log) -> TrainingRun``. Further agents are
added here (and named in their :class:`EnvPlan`)."""


# ----------------------------------------------------------------------------- datasets


def _references(
    path: str,
    plan: EnvPlan,
    measure: Callable[[], tuple[float, float, str]],
    remeasure: bool,
    log: TextIO,
) -> dict[str, Any]:
    """Load the frozen references of ``plan.env`` or measure and freeze them."""
    if os.path.exists(path) and not remeasure:
        try:
            with open(path) as fh:
                refs = json.load(fh)
            same = refs["env"] == plan.env and refs["env_kwargs"] == plan.env_kwargs
            float(refs["return_random"]), float(refs["return_expert"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(
                f"reference file {path} is unreadable ({err}); pass "
                "--remeasure-references to measure again"
            ) from None
        if not same:
            raise ConfigError(
                f"reference file {path} is for {refs['env']} {refs['env_kwargs']}, "
                f"not {plan.env} {plan.env_kwargs}"
            )
        print(
            f"  [{plan.env}] frozen references from {path}: "
            f"R_random={refs['return_random']:.2f}, "
            f"R_expert={refs['return_expert']:.2f}",
            file=log,
        )
        return refs
    r_random, r_expert, source = measure()
    refs = {
        "env": plan.env,
        "env_kwargs": plan.env_kwargs,
        "return_random": r_random,
        "return_expert": r_expert,
        "expert_reference": source,
    }
    jlog.write_json_atomic(path, refs)
    print(
        f"  [{plan.env}] measured references: R_random={r_random:.2f}, "
        f"R_expert={r_expert:.2f} ({source})",
        file=log,
    )
    return refs


class _Writer:
    """Collects datasets of one environment and writes them."""

    def __init__(self, root: str, overwrite: bool, log: TextIO) -> None:
        self.root, self.overwrite, self.log = root, overwrite, log

    def __call__(self, ds: offline.Dataset) -> offline.Dataset:
        path = os.path.join(self.root, ds.meta.kind)
        offline.save_dataset(path, ds, overwrite=self.overwrite)
        info = dict(ds.meta.info)
        score = info.get("score_mean")
        print(
            f"  [{ds.meta.env}] wrote {ds.meta.kind}: {ds.meta.num_transitions:,} "
            f"transitions, {ds.meta.num_episodes} complete episodes"
            + (f", normalised score {score:.1f}" if score is not None else ""),
            file=self.log,
        )
        return ds


def _dataset(
    data: Transition,
    refs: dict[str, Any],
    plan: EnvPlan,
    kind: str,
    policy: str,
    seed: int,
    info: dict[str, Any] | None = None,
) -> offline.Dataset:
    stats = offline.return_stats(data, refs["return_random"], refs["return_expert"])
    return offline.make_dataset(
        data,
        env=plan.env,
        kind=kind,
        return_random=refs["return_random"],
        return_expert=refs["return_expert"],
        policy=policy,
        env_kwargs=plan.env_kwargs,
        seed=seed,
        info={
            "expert_reference": refs.get("expert_reference", ""),
            **(info or {}),
            **stats,
        },
    )


def _imitation_splits(
    base: dict[str, offline.Dataset],
    expert: offline.Dataset,
    names: dict[str, str],
    k: int,
    log: TextIO,
) -> list[offline.Dataset]:
    """:func:`jaxrl.envs.offline.imitation_splits`, ``k`` clamped to the expert data (logged)."""
    available = expert.meta.num_episodes - 1
    if available < 1:
        print(
            f"  [{expert.meta.env}] the expert data has {expert.meta.num_episodes} "
            "complete episode(s): no imitation splits (raise --dataset-size)",
            file=log,
        )
        return []
    if k > available:
        print(
            f"  [{expert.meta.env}] only {available} expert episodes besides the "
            f"one-episode set; using {available} instead of {k}",
            file=log,
        )
        k = available
    return offline.imitation_splits(base, expert, names, k)


def _trained(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    plan: EnvPlan,
    budget_name: str,
    budget: Budget,
    options: dict[str, Any],
    env_dir: str,
    write: _Writer,
    log: TextIO,
) -> None:
    seed = options["seed"]
    size = options["size"]
    keys = jax.random.split(key, 7)
    k_train, k_select, k_rand_ref, k_exp_ref, k_rand, k_med, k_exp = keys
    trainer = TRAINERS[plan.agent]
    run = trainer(
        k_train,
        env,
        env_params,
        plan,
        budget_name,
        budget,
        epsilon=options["epsilon"],
        train_env_steps=options["train_env_steps"],
        log=log,
    )
    # SELECT: every snapshot was scored on a few episodes; re-score the best
    # few (expert) and, once the references are known, the few closest to the
    # medium target on `eval_episodes` episodes each.
    cheap = [s.eval_return for s in run.snapshots]
    n_cand = options["candidates"]
    k_expert_cands, k_medium_cands, k_fallback = jax.random.split(k_select, 3)

    def rescore(indices: list[int], key: PRNGKey) -> dict[int, float]:
        keys = jax.random.split(key, len(indices))
        return {
            i: run.evaluate(run.snapshots[i].params, keys[j])
            for j, i in enumerate(indices)
        }

    expert_scores = rescore(offline.expert_candidates(cheap, n_cand), k_expert_cands)
    expert_i = offline.pick_expert(expert_scores)
    best = run.snapshots[expert_i]
    uniform = offline.uniform_policy(env, env_params)

    def measure() -> tuple[float, float, str]:
        r_random = offline.mean_return(
            k_rand_ref, env, env_params, uniform, budget.eval_episodes
        )
        # Re-measured on fresh episodes (the chosen score is the max of noisy
        # estimates, biased upwards).
        r_expert = run.evaluate(best.params, k_exp_ref)
        refs = {"return_random": r_random, "return_expert": r_expert}
        _check_learned(plan.env, refs, expert_scores[expert_i])  # before freezing
        return r_random, r_expert, "trained"

    refs = _references(
        os.path.join(env_dir, "references.json"),
        plan,
        measure,
        options["remeasure"],
        log,
    )
    _check_learned(plan.env, refs, expert_scores[expert_i])
    target = refs["return_random"] + options["fraction"] * (
        refs["return_expert"] - refs["return_random"]
    )
    medium_scores = rescore(
        offline.medium_candidates(cheap, expert_i, target, n_cand), k_medium_cands
    )
    medium_i = offline.pick_medium(medium_scores, expert_i, target)
    span = refs["return_expert"] - refs["return_random"]
    score = lambda r: 100.0 * (r - refs["return_random"]) / span
    n_envs = budget.num_envs
    band = offline.MEDIUM_BAND

    # One policy family for all collections: snapshot `params` with each action
    # replaced by a uniform one with probability `p` (p = 1: uniform actions).
    def family(theta: tuple[Any, Array]) -> Policy:
        params, p = theta
        return offline.noisy_policy(run.behaviour(params), uniform, p)

    collect = offline.make_collector(env, env_params, family, size, n_envs)
    medium_p, medium_return, fallback = 0.0, medium_scores[medium_i], None
    if not band[0] <= score(medium_return) <= band[1]:
        # FALLBACK: training passed the band between two snapshots (or never
        # reached it). Take the first snapshot that reached the target and mix
        # its actions with uniform ones until its return is the target.
        medium_i = offline.first_reaching(cheap, expert_i, target)
        grid = np.linspace(0.0, 1.0, 21)
        grid_returns = offline.grid_returns(
            env, env_params, family, run.snapshots[medium_i].params, grid,
            budget.eval_episodes, k_fallback,
        )  # fmt: skip
        j = int(np.argmin(np.abs(grid_returns - target)))
        medium_p, medium_return = float(grid[j]), float(grid_returns[j])
        fallback = {"probability": grid.tolist(), "return": grid_returns.tolist()}
        print(
            f"  [{plan.env}] no snapshot scored within {band[0]:.0f}-"
            f"{band[1]:.0f}; medium = chunk {medium_i + 1} with actions "
            f"replaced by uniform ones with probability {medium_p:.2f} (score "
            f"{score(medium_return):.1f})",
            file=log,
        )
    medium, expert = run.snapshots[medium_i], run.snapshots[expert_i]
    jlog.write_json_atomic(
        os.path.join(env_dir, "training.json"),
        {
            "agent": run.description,
            "behaviour": run.behaviour_label,
            "config": run.config,
            "snapshots": [
                {
                    "chunk": s.chunk,
                    "env_steps": s.env_steps,
                    "eval_return": s.eval_return,
                }
                for s in run.snapshots
            ],
            "expert_candidates": {str(i): r for i, r in expert_scores.items()},
            "medium_candidates": {str(i): r for i, r in medium_scores.items()},
            "medium_target_return": target,
            "medium_chunk": medium.chunk,
            "medium_return": medium_return,
            "medium_uniform_action_probability": medium_p,
            "medium_fallback_grid": fallback,
            "expert_chunk": expert.chunk,
            "medium_fraction_target": options["fraction"],
        },
    )

    def label(s: Snapshot) -> str:
        return (
            f"{run.description} after chunk {s.chunk + 1}/{len(run.snapshots)} "
            f"({s.env_steps:,} env steps), {run.behaviour_label}"
        )

    def snap_info(s: Snapshot, rescored: float) -> dict[str, Any]:
        return {
            "snapshot_chunk": s.chunk,
            "snapshot_env_steps": s.env_steps,
            "snapshot_eval_return": rescored,
        }

    medium_label = label(medium)
    medium_info = snap_info(medium, medium_return)
    if fallback is not None:
        medium_label += (
            f"; each action replaced by a uniform one with probability "
            f"{medium_p:.2f} (no snapshot scored {band[0]:.0f}-"
            f"{band[1]:.0f}: training passed the band within one chunk)"
        )
        medium_info["uniform_action_probability"] = medium_p
    random = _dataset(
        collect(k_rand, (expert.params, 1.0)),
        refs,
        plan,
        "random",
        "uniform random actions",
        seed,
    )
    medium_ds = _dataset(
        collect(k_med, (medium.params, medium_p)),
        refs,
        plan,
        "medium",
        medium_label,
        seed,
        medium_info,
    )
    expert_ds = _dataset(
        collect(k_exp, (expert.params, 0.0)),
        refs,
        plan,
        "expert",
        label(expert),
        seed,
        snap_info(expert, expert_scores[expert_i]),
    )
    for ds in (random, medium_ds, expert_ds):
        write(ds)
    me = offline.concat([medium_ds, expert_ds], kind="medium-expert")
    write(offline.with_return_stats(me))

    # MEDIUM-REPLAY: every stored transition of chunks 0..medium, in time order.
    if run.replay is not None:
        stream = jax.tree.map(
            lambda *xs: np.concatenate(xs, axis=0), *run.replay[: medium.chunk + 1]
        )
        data = jax.jit(offline.from_rollout)(stream)
        total = int(data.reward.shape[0])
        cap = options["replay_cap"]
        if cap is not None and total > cap:
            data = offline.last_steps(data, stream.reward.shape[1], cap)
        write(
            _dataset(
                data,
                refs,
                plan,
                "medium-replay",
                f"replay buffer of {run.description} from the start of training up to "
                f"the medium snapshot (chunk {medium.chunk + 1}, {medium.env_steps:,} "
                "env steps): the training-time exploration policies",
                seed,
                {
                    "replay_transitions_total": total,
                    "snapshot_chunk": medium.chunk,
                    "snapshot_env_steps": medium.env_steps,
                },
            )
        )
    else:
        print(
            f"  [{plan.env}] {run.agent} has no replay buffer: no medium-replay",
            file=log,
        )

    names = {
        "one": "expert-1traj",
        "random": "random-plus-expert",
        "medium": "medium-plus-expert",
    }
    for ds in _imitation_splits(
        {"random": random, "medium": medium_ds},
        expert_ds,
        names,
        options["expert_episodes"],
        log,
    ):
        write(ds)


def _scripted(
    key: PRNGKey,
    env: Any,
    env_params: Any,
    plan: EnvPlan,
    budget: Budget,
    options: dict[str, Any],
    env_dir: str,
    write: _Writer,
    log: TextIO,
) -> None:
    seed, size = options["seed"], options["size"]
    k_grid, k_rand, k_med, k_exp = jax.random.split(key, 4)
    controller = offline.CONTROLLERS[plan.scripted]
    uniform = offline.uniform_policy(env, env_params)

    # One policy family: the controller with each action replaced by a uniform
    # one with probability p (p = 0: the controller, p = 1: uniform actions);
    # theta = (unused, p) as for the trained agents' family.
    def family(theta: tuple[Any, Array]) -> Policy:
        return offline.noisy_policy(controller, uniform, theta[1])

    # GRID: every p in one vmapped evaluation; its ends are the references.
    grid = np.linspace(0.0, 1.0, 41)
    grid_returns = offline.grid_returns(
        env, env_params, family, None, grid, budget.eval_episodes, k_grid
    )

    def measure() -> tuple[float, float, str]:
        r_random, r_expert = float(grid_returns[-1]), float(grid_returns[0])
        if r_expert <= r_random:
            raise ConfigError(
                f"{plan.env}: the scripted controller {plan.scripted!r} returns "
                f"{r_expert:.2f}, no better than uniform actions ({r_random:.2f})"
            )
        return r_random, r_expert, "scripted"

    refs = _references(
        os.path.join(env_dir, "references.json"),
        plan,
        measure,
        options["remeasure"],
        log,
    )
    if refs.get("expert_reference") != "scripted":
        raise ConfigError(
            f"{plan.env}: the frozen references are those of a trained agent, not "
            f"of the controller {plan.scripted!r}; pass --remeasure-references"
        )
    # SCRIPTED-MEDIUM: the p whose return is closest to the target.
    target = refs["return_random"] + options["fraction"] * (
        refs["return_expert"] - refs["return_random"]
    )
    p = float(grid[int(np.argmin(np.abs(grid_returns - target)))])
    label = f"scripted controller {plan.scripted!r} (hand-written, no trained agent)"
    collect = offline.make_collector(env, env_params, family, size, budget.num_envs)
    random = _dataset(
        collect(k_rand, (None, 1.0)),
        refs,
        plan,
        "random",
        "uniform random actions",
        seed,
    )
    medium = _dataset(
        collect(k_med, (None, p)),
        refs,
        plan,
        "scripted-medium",
        f"{label}, each action replaced by a uniform one with probability {p:.2f}",
        seed,
        {"uniform_action_probability": p},
    )
    expert = _dataset(
        collect(k_exp, (None, 0.0)),
        refs,
        plan,
        "scripted-expert",
        label,
        seed,
    )
    for ds in (random, medium, expert):
        write(ds)
    me = offline.concat([medium, expert], kind="scripted-medium-expert")
    write(offline.with_return_stats(me))
    names = {"one": "scripted-expert-1traj", "random": "random-plus-scripted-expert"}
    for ds in _imitation_splits(
        {"random": random}, expert, names, options["expert_episodes"], log
    ):
        write(ds)


class NotLearnedError(ConfigError):
    """The trained agent is no better than uniform random actions (refused)."""


def _check_learned(env: str, refs: dict[str, Any], best: float) -> None:
    """Refuse to label a snapshot 'expert' that is no better than random actions."""
    r_random, r_expert = refs["return_random"], refs["return_expert"]
    if r_expert <= r_random or best <= r_random:
        raise NotLearnedError(
            f"{env}: the best training snapshot (return {best:.2f}; R_expert "
            f"{r_expert:.2f}) is no better than uniform random actions (R_random "
            f"{r_random:.2f}); the agent did not learn, so no medium/expert data "
            "can be made (raise --train-env-steps or use a larger --budget)"
        )


def _kinds(plan: EnvPlan) -> tuple[str, ...]:
    if plan.agent is None:
        return SCRIPTED_KINDS
    if plan.scripted is None:
        return TRAINED_KINDS
    return TRAINED_KINDS + tuple(k for k in SCRIPTED_KINDS if k not in TRAINED_KINDS)


def _is_minatar(env: str) -> bool:
    return env.endswith("-MinAtar")


def budget_plan(plan: EnvPlan, budget_name: str) -> EnvPlan:
    """Return ``plan`` as run at ``budget_name``.

    MinAtar games get the ``mvi-minatar`` table's sticky actions for that budget
    (:data:`jaxrl.scripts.presets.MINATAR_STICKY`: p = 0.1 at ``full``, as in the
    original MinAtar; none at ``tiny`` and ``small``), for the agent's training
    and for every collected dataset (docs/decisions.md, D19).
    """
    sticky = jpresets.MINATAR_STICKY.get(budget_name)
    if not _is_minatar(plan.env) or sticky is None:
        return plan
    kwargs = {**plan.env_kwargs, "sticky_action_prob": sticky}
    return dataclasses.replace(plan, env_kwargs=kwargs)


def make_datasets(
    budget: str = "tiny",
    *,
    env_names: Sequence[str] | None = None,
    out: str = os.path.join("results", "datasets"),
    seed: int = 0,
    medium_fraction: float = 0.4,
    behaviour_epsilon: float = 0.05,
    dataset_size: int | None = None,
    train_env_steps: int | None = None,
    expert_episodes: int | None = None,
    replay_cap: int | None = None,
    overwrite: bool = False,
    remeasure_references: bool = False,
    log: TextIO | None = None,
) -> dict[str, Any]:
    """Generate and write the datasets of ``budget`` (see the module docstring).

    Args:
      budget: ``"tiny"``, ``"small"`` or ``"full"``.
      env_names: environments (default: the budget's); each must be in
        :data:`CATALOGUE`.
      out: output root.
      seed: root seed (one key per environment is split from it).
      medium_fraction: target normalised score / 100 of the medium data.
      behaviour_epsilon: ε of the trained agents' data-collection policy.
      dataset_size: transitions per collected dataset (default: the budget's).
      train_env_steps: override the agent's total training steps.
      expert_episodes: expert episodes in the mixtures (default: the budget's).
      replay_cap: at most this many ``medium-replay`` transitions (default:
        the budget's).
      overwrite: replace existing datasets.
      remeasure_references: measure the reference returns again.
      log: status stream (default stderr).

    Returns:
      ``{"dir": out, "datasets": [summary rows], "wall_time": seconds}``.

    Raises:
      ConfigError: on an unknown budget or environment, an invalid option, or
        existing datasets without ``overwrite`` (checked before any work).
    """
    log = sys.stderr if log is None else log
    spec = tables.get_budget(BUDGETS, budget, "make-datasets")
    names = list(env_names) if env_names else list(spec.envs)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        raise ConfigError(
            f"no dataset plan for {', '.join(unknown)}; known: {', '.join(CATALOGUE)}"
        )
    if not 0.0 < medium_fraction < 1.0:
        raise ConfigError(f"medium_fraction must be in (0, 1), got {medium_fraction}")
    if not 0.0 <= behaviour_epsilon <= 1.0:
        raise ConfigError(
            f"behaviour_epsilon must be in [0, 1], got {behaviour_epsilon}"
        )
    for name, value in (
        ("dataset_size", dataset_size),
        ("train_env_steps", train_env_steps),
        ("expert_episodes", expert_episodes),
        ("replay_cap", replay_cap),
    ):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    existing = [
        os.path.join(out, n, k)
        for n in names
        for k in _kinds(CATALOGUE[n])
        if os.path.exists(os.path.join(out, n, k))
    ]
    if existing and not overwrite:
        raise ConfigError(
            f"{len(existing)} dataset(s) already exist (e.g. {existing[0]}); "
            "pass --overwrite to replace them"
        )
    start = time.perf_counter()
    env_keys = jax.random.split(jax.random.key(seed), len(names))
    for i, name in enumerate(names):
        plan = budget_plan(CATALOGUE[name], budget)
        env, env_params = envs.make(name, **plan.env_kwargs)
        size = dataset_size or (
            spec.minatar_size if _is_minatar(name) else spec.dataset_size
        )
        options = {
            "seed": seed,
            "size": size,
            "epsilon": behaviour_epsilon,
            "fraction": medium_fraction,
            "train_env_steps": train_env_steps,
            "expert_episodes": expert_episodes or spec.expert_episodes,
            "replay_cap": replay_cap or spec.replay_cap,
            "candidates": spec.candidates,
            "remeasure": remeasure_references,
        }
        env_dir = os.path.join(out, name)
        os.makedirs(env_dir, exist_ok=True)
        write = _Writer(env_dir, overwrite, log)
        what = plan.agent or f"scripted controller {plan.scripted}"
        print(f"[{budget}] {name}: {what}, {size:,} transitions per dataset", file=log)
        # One key per environment; split only when a fallback may need a second.
        k_train = k_scripted = env_keys[i]
        if plan.agent is not None and plan.scripted is not None:
            k_train, k_scripted = jax.random.split(env_keys[i])
        scripted = plan.agent is None
        if plan.agent is not None:
            try:
                _trained(
                    k_train, env, env_params, plan, budget, spec, options,
                    env_dir, write, log,
                )  # fmt: skip
            except NotLearnedError as err:
                if plan.scripted is None:
                    raise
                print(f"  [{name}] {err}", file=log)
                scripted = True
        if scripted:
            print(
                f"  [{name}] no trained agent beats uniform actions here: medium, "
                "expert, medium-replay, medium-expert and the expert imitation "
                "splits cannot be produced; writing random and scripted-* kinds "
                f"(controller {plan.scripted!r})",
                file=log,
            )
            _scripted(
                k_scripted, env, env_params, plan, spec, options, env_dir, write, log
            )
    rows = write_summary(out)
    return {"dir": out, "datasets": rows, "wall_time": time.perf_counter() - start}


_SUMMARY_COLUMNS = [
    "env",
    "kind",
    "transitions",
    "episodes",
    "return_mean",
    "score_mean",
    "R_random",
    "R_expert",
    "policy",
]


def write_summary(out: str) -> list[dict[str, Any]]:
    """Write ``<out>/summary.md`` and ``summary.json`` from every dataset's metadata.

    Reads only the ``dataset.json`` files (no arrays). Returns the rows.
    """
    rows = []
    if not os.path.isdir(out):
        return rows
    for env_name in sorted(os.listdir(out)):
        env_dir = os.path.join(out, env_name)
        if not os.path.isdir(env_dir):
            continue
        for kind in sorted(os.listdir(env_dir)):
            path = os.path.join(env_dir, kind, "dataset.json")
            if kind.startswith(".") or not os.path.isfile(path):
                continue
            try:
                with open(path) as fh:
                    meta = json.load(fh)["meta"]
            except (OSError, ValueError, KeyError):
                continue
            info = meta.get("info", {})
            rows.append(
                {
                    "env": meta["env"],
                    "kind": meta["kind"],
                    "transitions": meta["num_transitions"],
                    "episodes": meta["num_episodes"],
                    "return_mean": info.get("return_mean"),
                    "score_mean": info.get("score_mean"),
                    "R_random": meta["return_random"],
                    "R_expert": meta["return_expert"],
                    "policy": meta["policy"],
                    "path": os.path.join(env_dir, kind),
                }
            )
    jlog.write_json_atomic(os.path.join(out, "summary.json"), rows)
    caption = (
        "Offline datasets (jaxrl.envs.offline). score_mean: mean D4RL normalised score "
        "100 (R - R_random) / (R_expert - R_random) of the complete episodes, "
        "with the frozen references of each environment."
    )
    jlog.write_atomic(
        os.path.join(out, "summary.md"),
        [common.markdown_table(rows, _SUMMARY_COLUMNS, caption=caption)],
    )
    return rows


# ----------------------------------------------------------------------------- CLI


def _fraction(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def build_parser(parser: common.ArgumentParser | None = None) -> common.ArgumentParser:
    """Add ``make_datasets``'s arguments to ``parser`` (a new one if ``None``)."""
    epilog = (
        "Continuous-action envs (Pendulum-v1, MountainCarContinuous-v0) are trained "
        "with SAC (stochastic-policy behaviour data; --behaviour-epsilon applies to "
        "the discrete agents only). MountainCarContinuous: SAC usually learns to "
        "stand still (return ~0 vs ~-33 for uniform actions), so its expert never "
        "reaches the goal. If a trained agent is no better than uniform actions, "
        "medium, expert, medium-replay, medium-expert, expert-1traj and "
        "*-plus-expert CANNOT be produced; continuous envs then fall back to a "
        "hand-written controller: scripted-expert, scripted-medium, "
        "scripted-medium-expert, scripted-expert-1traj and "
        "random-plus-scripted-expert (R_expert = the controller's return)."
    )
    parser = parser or common.ArgumentParser(
        prog="python -m jaxrl.scripts.make_datasets",
        description=__doc__.split("\n")[0],
    )
    parser.epilog = epilog  # also on a sub-command parser (jaxrl datasets)
    parser.add_argument(
        "--budget",
        default="tiny",
        choices=list(BUDGETS),
        help="tiny: CartPole only, <2 min on 2 CPU cores; small: minutes on CPU; "
        "full: an accelerator for MinAtar (default: tiny)",
    )
    parser.add_argument(
        "--envs",
        default=None,
        help="comma-separated env ids (default: the budget's); known: "
        + ", ".join(CATALOGUE),
    )
    parser.add_argument(
        "--out",
        default=os.path.join("results", "datasets"),
        help="output root (default: results/datasets)",
    )
    parser.add_argument(
        "--seed", type=common.nonnegative_int, default=0, help="root seed"
    )
    parser.add_argument(
        "--medium-fraction",
        type=_fraction,
        default=0.4,
        help="target normalised score/100 of the medium data (default 0.4)",
    )
    parser.add_argument(
        "--behaviour-epsilon",
        type=_fraction,
        default=0.05,
        help="epsilon of the trained agents' data-collection policy (default 0.05)",
    )
    parser.add_argument(
        "--dataset-size",
        type=common.positive_int,
        default=None,
        help="transitions per collected dataset (default: the budget's)",
    )
    parser.add_argument(
        "--train-env-steps",
        type=common.positive_int,
        default=None,
        help="override the agents' total training env steps",
    )
    parser.add_argument(
        "--expert-episodes",
        type=common.positive_int,
        default=None,
        help="expert episodes added in the *-plus-expert sets (default: the budget's)",
    )
    parser.add_argument(
        "--replay-cap",
        type=common.positive_int,
        default=None,
        help="keep at most this many medium-replay transitions, the last ones of "
        "every stream before the medium snapshot (default: the budget's)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing datasets"
    )
    parser.add_argument(
        "--remeasure-references",
        action="store_true",
        help="measure R_random/R_expert again instead of reusing references.json",
    )
    return parser


def run_from_args(args: Any) -> int:
    """Execute ``make_datasets`` from parsed arguments."""
    names = (
        [n.strip() for n in args.envs.split(",") if n.strip()] if args.envs else None
    )
    result = make_datasets(
        args.budget,
        env_names=names,
        out=args.out,
        seed=args.seed,
        medium_fraction=args.medium_fraction,
        behaviour_epsilon=args.behaviour_epsilon,
        dataset_size=args.dataset_size,
        train_env_steps=args.train_env_steps,
        expert_episodes=args.expert_episodes,
        replay_cap=args.replay_cap,
        overwrite=args.overwrite,
        remeasure_references=args.remeasure_references,
    )
    print(
        f"wrote {len(result['datasets'])} dataset(s) under {result['dir']} "
        f"(summary.md) in {result['wall_time']:.1f}s"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m jaxrl.scripts.make_datasets``."""
    parser = build_parser()
    return common.run_main(
        lambda: run_from_args(parser.parse_args(argv)), prog="make_datasets"
    )


if __name__ == "__main__":
    sys.exit(main())
