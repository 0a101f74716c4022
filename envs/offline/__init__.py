"""Offline (D4RL-style) datasets on our on-accelerator environments.

A :class:`Dataset` is one device-resident :class:`~jaxrl.transition.Transition`
with a leading axis ``[N]`` (``data``) plus host-side, frozen :class:`Metadata`:
the environment id and keyword arguments, the dataset kind, the number of
transitions and complete episodes, the reference returns ``R_random`` and
``R_expert`` used for normalised scores, a description of the behaviour policy,
the generator seed and a SHA-256 checksum of the content. Offline agents sample
it with :func:`jaxrl.buffer.sample_dataset` (``randint`` indices), so the
offline loss sees exactly the ``Transition`` batches of the online agents.

Layout of ``data`` (every leaf ``[N, ...]``):

* ``obs``, ``action`` (int32 for ``Discrete`` spaces, float32 ``[N, act_dim]``
  for ``Box`` spaces), ``reward`` (float32), ``next_obs`` (the observation
  *before* any auto-reset, so no ``(s, s')`` pair straddles two episodes),
  ``terminated`` and ``truncated`` (bool, kept separate: D4RL's ``terminals``
  and ``timeouts``; bootstrap with ``gamma * (1 - terminated)``).
* ``extras["episode_id"]`` (int32): the episode a transition belongs to; the
  transitions of an episode are contiguous and in time order.
  ``extras["timestep"]`` (int32): its index inside the episode (0 at a reset).
  Mixed imitation sets add ``extras["is_expert"]`` (bool, for logging only).

Episode boundaries are explicit: an episode is *complete* if its last
transition has ``terminated`` or ``truncated`` set. Each collection stream ends
with one unfinished episode per environment copy; its transitions are valid
``(s, a, r, s')`` samples (they bootstrap from ``next_obs``), but they are
excluded from :func:`episode_returns` and from the episode counts.

Kinds (:data:`KINDS`): ``random``, ``medium`` (a policy snapshot whose return
is about a third to a half of the expert's, measured by the normalised score),
``expert``, ``medium-replay`` (every transition the agent stored in its replay
buffer from the start of training up to the medium snapshot, recovered chunk by
chunk with :func:`buffer_tail` and flattened with :func:`from_rollout`; this is
the data the agent actually saw, exploration included, which re-collecting with
the sequence of training-time policies would only approximate),
``medium-expert`` (medium and expert
concatenated, :func:`concat`), and the imitation splits for ReCOIL:
``expert-1traj`` (:func:`expert_trajectories`) and ``random-plus-expert`` /
``medium-plus-expert`` (:func:`mix`). Data produced by a hand-written
controller instead of a trained agent (``scripts/make_datasets.py`` falls back
to one when the trained agent is no better than uniform actions) is labelled
``scripted-...``.

Normalised score (D4RL): ``100 * (R - R_random) / (R_expert - R_random)`` with
both references measured once when the data is generated and frozen in the
metadata (:func:`normalized_score`).

Storage (:func:`save_dataset`, :func:`load_dataset`): a directory holding
``dataset.json`` (metadata and array spec) and an orbax checkpoint of ``data``,
written atomically and checked on loading (per-array CRC-32 and the SHA-256
content checksum); see :mod:`jaxrl.envs.offline.storage`.

Layout of the package (every public name is re-exported here):

* :mod:`jaxrl.envs.offline.dataset`: the :class:`Dataset` type and
  :class:`Metadata`, episode returns and normalised scores, building
  (:func:`make_dataset`) and derived sets (:func:`concat`,
  :func:`expert_trajectories`, :func:`mix`, :func:`imitation_splits`);
* :mod:`jaxrl.envs.offline.storage`: checksummed save and load;
* :mod:`jaxrl.envs.offline.interop`: export to and import from D4RL-style
  ``.npz`` files (NumPy only) and Minari datasets (optional package);
* :mod:`jaxrl.envs.offline.collect`: collection from a policy or a training
  run's replay stream, reference returns, expert / medium snapshot pickers;
* :mod:`jaxrl.envs.offline.controllers`: the hand-written controllers of the
  ``scripted-*`` kinds and noisy policy mixing.

Like all of :mod:`jaxrl.envs`, nothing here imports an agent: the script
``scripts/make_datasets.py`` trains the agents and passes their snapshots'
returns and replay chunks in.

Examples:
  >>> import jax
  >>> from jaxrl import envs
  >>> env, params = envs.make("CartPole-v1")
  >>> data = collect_dataset(jax.random.key(0), env, params,
  ...                        uniform_policy(env, params), num_steps=300, num_envs=2)
  >>> data.obs.shape, data.action.dtype, sorted(data.extras)
  ((600, 4), dtype('int32'), ['episode_id', 'timestep'])
  >>> ds = make_dataset(data, env="CartPole-v1", kind="random",
  ...                   return_random=22.0, return_expert=500.0, policy="uniform")
  >>> ds.meta.num_transitions, ds.meta.num_episodes > 0
  (600, True)
  >>> float(normalized_score(261.0, ds.meta))
  50.0
"""

from __future__ import annotations

from jaxrl.envs.offline.collect import (
    MEDIUM_BAND,
    buffer_tail,
    collect_dataset,
    expert_candidates,
    first_reaching,
    from_rollout,
    grid_returns,
    last_steps,
    make_collector,
    max_episode_steps,
    mean_return,
    medium_candidates,
    pick_expert,
    pick_medium,
    uniform_policy,
)
from jaxrl.envs.offline.controllers import (
    CONTROLLERS,
    mountaincar_push_with_velocity,
    noisy_policy,
    pendulum_swingup_pd,
)
from jaxrl.envs.offline.dataset import (
    EPISODE_ID,
    IS_EXPERT,
    KINDS,
    TIMESTEP,
    Dataset,
    Metadata,
    concat,
    content_checksum,
    episode_returns,
    expert_trajectories,
    imitation_splits,
    make_dataset,
    mix,
    normalized_score,
    return_stats,
    with_info,
    with_return_stats,
)
from jaxrl.envs.offline.interop import (
    D4RL_KEYS,
    EXTRAS_PREFIX,
    METADATA_FORMAT,
    METADATA_KEY,
    from_d4rl,
    load_d4rl,
    load_minari,
    minari_available,
    save_d4rl,
    save_minari,
    to_d4rl,
)
from jaxrl.envs.offline.storage import (
    FORMAT,
    example_item,
    load_dataset,
    save_dataset,
)

__all__ = [
    "EPISODE_ID",
    "TIMESTEP",
    "IS_EXPERT",
    "KINDS",
    "FORMAT",
    "Metadata",
    "Dataset",
    "uniform_policy",
    "collect_dataset",
    "from_rollout",
    "buffer_tail",
    "episode_returns",
    "normalized_score",
    "content_checksum",
    "make_dataset",
    "concat",
    "expert_trajectories",
    "mix",
    "example_item",
    "save_dataset",
    "load_dataset",
    # statistics and splits used by the dataset generator
    "return_stats",
    "with_info",
    "with_return_stats",
    "imitation_splits",
    # collection from policies and training runs; snapshot picking
    "make_collector",
    "last_steps",
    "max_episode_steps",
    "mean_return",
    "grid_returns",
    "MEDIUM_BAND",
    "pick_expert",
    "pick_medium",
    "expert_candidates",
    "medium_candidates",
    "first_reaching",
    # hand-written controllers
    "CONTROLLERS",
    "pendulum_swingup_pd",
    "mountaincar_push_with_velocity",
    "noisy_policy",
    # D4RL-style npz and Minari interoperability
    "D4RL_KEYS",
    "EXTRAS_PREFIX",
    "METADATA_KEY",
    "METADATA_FORMAT",
    "to_d4rl",
    "from_d4rl",
    "save_d4rl",
    "load_d4rl",
    "minari_available",
    "save_minari",
    "load_minari",
]
