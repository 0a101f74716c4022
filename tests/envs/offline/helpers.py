"""Shared data of the :mod:`jaxrl.envs.offline` tests: datasets of the ``Walk`` env and NumPy references.

The step-by-step reference is ``walk_reference`` of tests/jaxrl/test_rollout.py:
a NumPy replay of the deterministic ``Walk`` environment (rewards are the new
position, termination at ``|x| >= 3``, truncation after ``max_steps`` steps)
driven by the actions recorded in the dataset.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxrl.envs import offline
from jaxrl.transition import Transition
from tests.jaxrl.test_rollout import WALK, random_policy

T, E = 40, 3  # steps per stream, parallel environments
MAX_STEPS = 5


WALK_PARAMS = WALK.default_params.replace(max_steps_in_episode=MAX_STEPS)
_collect_walk = jax.jit(
    lambda k: offline.collect_dataset(k, WALK, WALK_PARAMS, random_policy, T, E)
)


def collect_walk(seed: int = 0) -> Transition:
    """``Transition[E*T]`` of uniform random actions on ``Walk`` (root key ``seed``)."""
    return _collect_walk(jax.random.key(seed))


def walk_dataset(
    data: Transition, kind: str = "random", env: str = "Walk"
) -> offline.Dataset:
    """``data`` as a dataset with the references ``R_random = -2``, ``R_expert = 3``."""
    return offline.make_dataset(
        data,
        env=env,
        kind=kind,
        return_random=-2.0,
        return_expert=3.0,
        policy="uniform random actions",
        env_kwargs={"max_steps_in_episode": MAX_STEPS},
        seed=0,
    )


def numpy_episodes(done: np.ndarray, reward: np.ndarray) -> tuple[list, list, list]:
    """Split each stream of time-major ``[T, E]`` flags: ids, steps, returns."""
    num_steps, num_envs = done.shape
    ids = np.zeros((num_envs, num_steps), np.int64)
    steps = np.zeros((num_envs, num_steps), np.int64)
    returns, lengths = [], []
    current = -1
    for e in range(num_envs):
        current += 1
        t_in, total = 0, 0.0
        for t in range(num_steps):
            ids[e, t], steps[e, t] = current, t_in
            total += float(reward[t, e])
            t_in += 1
            if done[t, e]:
                returns.append(total)
                lengths.append(t_in)
                total, t_in = 0.0, 0
                if t < num_steps - 1:
                    current += 1
    return ids.reshape(-1), steps.reshape(-1), (returns, lengths)


def assert_bitwise(a: Transition, b: Transition) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()
