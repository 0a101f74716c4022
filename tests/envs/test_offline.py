"""Tests for jaxrl.envs.offline: layout against NumPy references, storage, corruption, splits.

The step-by-step reference is ``walk_reference`` of tests/jaxrl/test_rollout.py:
a NumPy replay of the deterministic ``Walk`` environment (rewards are the new
position, termination at ``|x| >= 3``, truncation after ``max_steps`` steps)
driven by the actions recorded in the dataset.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from functools import partial

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

from jaxrl import buffer, envs, rollout
from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from jaxrl.transition import Transition
from tests.jaxrl.test_rollout import WALK, random_policy, walk_reference

T, E = 40, 3  # steps per stream, parallel environments
MAX_STEPS = 5


WALK_PARAMS = WALK.default_params.replace(max_steps_in_episode=MAX_STEPS)
_collect_walk = jax.jit(
    lambda k: offline.collect_dataset(k, WALK, WALK_PARAMS, random_policy, T, E)
)


def _walk_data(seed: int = 0) -> Transition:
    return _collect_walk(jax.random.key(seed))


def _dataset(
    data: Transition, kind: str = "random", env: str = "Walk"
) -> offline.Dataset:
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


def _numpy_episodes(done: np.ndarray, reward: np.ndarray) -> tuple[list, list, list]:
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


@pytest.fixture(scope="module")
def walk_data() -> Transition:
    return _walk_data()


@pytest.fixture(scope="module")
def walk_ds(walk_data) -> offline.Dataset:
    return _dataset(walk_data)


# ----------------------------------------------------------------------------- collect


class TestCollectDataset:
    def test_matches_step_by_step_reference(self, walk_data):
        actions = np.asarray(walk_data.action).reshape(E, T).T  # back to [T, E]
        ref = walk_reference(actions, MAX_STEPS)
        for name in ("obs", "next_obs", "reward", "terminated", "truncated"):
            want = np.swapaxes(ref[name], 0, 1).reshape((E * T, *ref[name].shape[2:]))
            np.testing.assert_array_equal(getattr(walk_data, name), want, err_msg=name)
        # Both kinds of episode end occur, kept separate.
        assert (walk_data.terminated & ~walk_data.truncated).any()
        assert (walk_data.truncated & ~walk_data.terminated).any()

    def test_episode_ids_and_timesteps_match_numpy(self, walk_data):
        done = np.asarray(walk_data.terminated | walk_data.truncated).reshape(E, T).T
        reward = np.asarray(walk_data.reward).reshape(E, T).T
        ids, steps, _ = _numpy_episodes(done, reward)
        np.testing.assert_array_equal(walk_data.extras[offline.EPISODE_ID], ids)
        np.testing.assert_array_equal(walk_data.extras[offline.TIMESTEP], steps)
        assert walk_data.extras[offline.EPISODE_ID].dtype == jnp.int32

    def test_no_pair_across_a_reset(self, walk_data):
        ep = np.asarray(walk_data.extras[offline.EPISODE_ID])
        obs, next_obs = np.asarray(walk_data.obs), np.asarray(walk_data.next_obs)
        done = np.asarray(walk_data.terminated | walk_data.truncated)
        same = ep[1:] == ep[:-1]
        # Inside an episode the next row starts where this one ended.
        np.testing.assert_array_equal(next_obs[:-1][same], obs[1:][same])
        # After an end inside a stream the next row is a reset (time 0), and the
        # stored next_obs is the pre-reset final observation (time > 0).
        ends = done[:-1] & ~same
        boundary_in_stream = ends & ((np.arange(E * T - 1) + 1) % T != 0)
        assert boundary_in_stream.any()
        np.testing.assert_array_equal(obs[1:][boundary_in_stream][:, 1], 0.0)
        assert (next_obs[:-1][boundary_in_stream][:, 1] > 0).all()
        # An end flag never sits inside an episode.
        assert not (done[:-1] & same).any()

    def test_cartpole_flags_against_env_step(self):
        """On a gymnax env: the last row of each episode ends it, next_obs pre-reset."""
        env, params = envs.make("CartPole-v1", max_steps_in_episode=20)
        data = jax.jit(
            lambda k: offline.collect_dataset(
                k, env, params, offline.uniform_policy(env, params), 100, 4
            )
        )(jax.random.key(3))
        assert data.terminated.any() and data.truncated.any()
        lengths = offline.episode_returns(data)["length"]
        trunc_rows = np.flatnonzero(np.asarray(data.truncated))
        np.testing.assert_array_equal(
            np.asarray(data.extras[offline.TIMESTEP])[trunc_rows], 19
        )
        assert (lengths <= 20).all()
        # Terminal next_obs lies outside CartPole's bounds (|x| > 2.4, |theta| > 12°).
        term = np.asarray(data.next_obs)[np.asarray(data.terminated)]
        assert ((np.abs(term[:, 0]) > 2.4) | (np.abs(term[:, 2]) > 0.2095)).all()

    def test_bad_sizes(self):
        env, params = envs.make("CartPole-v1")
        with pytest.raises(ConfigError, match="num_envs must be a positive"):
            offline.collect_dataset(
                jax.random.key(0),
                env,
                params,
                offline.uniform_policy(env, params),
                5,
                0,
            )


class FromRolloutTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("fresh", None), ("continuing", (3, 0, 7, 1)))
    def test_matches_numpy(self, timestep0):
        rng = np.random.default_rng(0)
        num_steps, num_envs = 9, 4
        term = rng.random((num_steps, num_envs)) < 0.2
        trunc = (rng.random((num_steps, num_envs)) < 0.15) & ~term
        reward = rng.normal(size=(num_steps, num_envs)).astype(np.float32)
        tr = Transition(
            obs=jnp.asarray(rng.normal(size=(num_steps, num_envs, 2)), jnp.float32),
            action=jnp.asarray(rng.integers(0, 3, (num_steps, num_envs)), jnp.int32),
            reward=jnp.asarray(reward),
            next_obs=jnp.zeros((num_steps, num_envs, 2), jnp.float32),
            terminated=jnp.asarray(term),
            truncated=jnp.asarray(trunc),
            extras={"cost": jnp.ones((num_steps, num_envs))},
        )
        fn = partial(offline.from_rollout, timestep0=timestep0)
        out = self.variant(fn)(tr)
        ids, steps, _ = _numpy_episodes(term | trunc, reward)
        if timestep0 is not None:
            first = ids == ids.reshape(num_envs, num_steps)[:, :1].repeat(
                num_steps, 1
            ).reshape(-1)
            steps = steps + np.where(first, np.repeat(timestep0, num_steps), 0)
        np.testing.assert_array_equal(out.extras[offline.EPISODE_ID], ids)
        np.testing.assert_array_equal(out.extras[offline.TIMESTEP], steps)
        np.testing.assert_array_equal(
            out.obs, np.swapaxes(np.asarray(tr.obs), 0, 1).reshape(-1, 2)
        )
        np.testing.assert_array_equal(out.extras["cost"], 1.0)


class TestFromRolloutErrors:
    def test_rejects_flat_input_and_existing_extras(self, walk_data):
        with pytest.raises(ConfigError, match=r"Transition\[T, E\]"):
            offline.from_rollout(walk_data)
        tr = jax.tree.map(lambda x: x.reshape(E, T, *x.shape[1:]), walk_data)
        with pytest.raises(ConfigError, match="already carry extras"):
            offline.from_rollout(tr)


class TestBufferTail:
    def test_last_items_oldest_first_across_wraparound(self):
        state = buffer.init(jnp.int32(0), capacity=7)
        added = []
        for start, n in ((0, 3), (3, 5), (8, 4)):
            items = np.arange(start, start + n, dtype=np.int32)
            state = buffer.add(state, jnp.asarray(items))
            added.extend(items.tolist())
        for n in (1, 4, 7):
            got = jax.jit(lambda s, n=n: offline.buffer_tail(s, n))(state)
            assert got.tolist() == added[-n:]

    def test_bad_counts(self):
        state = buffer.add(buffer.init(jnp.float32(0), 5), jnp.ones(2))
        with pytest.raises(ConfigError, match="capacity=5"):
            offline.buffer_tail(state, 6)
        with pytest.raises(ConfigError, match="the buffer holds 2"):
            offline.buffer_tail(state, 3)


# ----------------------------------------------------------------------------- returns


class TestEpisodeReturns:
    def test_matches_numpy_loop(self, walk_ds):
        data = walk_ds.data
        done = np.asarray(data.terminated | data.truncated).reshape(E, T).T
        reward = np.asarray(data.reward).reshape(E, T).T
        _, _, (returns, lengths) = _numpy_episodes(done, reward)
        out = offline.episode_returns(walk_ds)
        np.testing.assert_allclose(out["return"], returns, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(out["length"], lengths)
        assert walk_ds.meta.num_episodes == len(returns) == int(done.sum())
        # The unfinished tail of each stream is left out.
        assert int(out["length"].sum()) < E * T

    def test_missing_extras(self, walk_data):
        with pytest.raises(ConfigError, match="no extras"):
            offline.episode_returns(walk_data.replace(extras={}))

    def test_inconsistent_layouts_are_rejected(self, walk_data):
        ep = np.asarray(walk_data.extras[offline.EPISODE_ID]).copy()
        ep[5], ep[6] = ep[6] + 100, ep[6] + 100  # rows 5-6 form an extra episode
        ep[7] = ep[4]  # ... and row 7 returns to the earlier one
        bad = walk_data.replace(
            extras={**walk_data.extras, "episode_id": jnp.asarray(ep)}
        )
        with pytest.raises(ConfigError, match="not contiguous"):
            offline.episode_returns(bad)
        ts = np.asarray(walk_data.extras[offline.TIMESTEP]).copy()
        ts[2] += 1
        bad = walk_data.replace(
            extras={**walk_data.extras, "timestep": jnp.asarray(ts)}
        )
        with pytest.raises(ConfigError, match="timestep does not increase"):
            _dataset(bad)


class NormalizedScoreTest(parameterized.TestCase):
    @parameterized.named_parameters(
        ("random", -2.0, 0.0), ("expert", 3.0, 100.0), ("middle", 0.5, 50.0),
        ("above", 5.5, 150.0),
    )  # fmt: skip
    def test_formula(self, ret, want):
        meta = offline.Metadata(
            env="Walk", kind="random", return_random=-2.0, return_expert=3.0,
            policy="x", num_transitions=1, num_episodes=0,
        )  # fmt: skip
        self.assertAlmostEqual(float(offline.normalized_score(ret, meta)), want)
        got = offline.normalized_score(jnp.array([ret, -2.0]), meta)
        self.assertIsInstance(got, jax.Array)
        np.testing.assert_allclose(got, [want, 0.0], rtol=1e-6, atol=1e-5)

    def test_matches_numpy_on_dataset_returns(self):
        ds = _dataset(_walk_data(1))
        returns = offline.episode_returns(ds)["return"]
        np.testing.assert_allclose(
            offline.normalized_score(returns, ds), 100.0 * (returns + 2.0) / 5.0
        )

    def test_equal_references_rejected(self):
        meta = offline.Metadata(
            env="Walk", kind="random", return_random=1.0, return_expert=1.0,
            policy="x", num_transitions=1, num_episodes=0,
        )  # fmt: skip
        with pytest.raises(ConfigError, match="R_expert == R_random"):
            offline.normalized_score(1.0, meta)
        with pytest.raises(ConfigError, match="must differ"):
            offline.make_dataset(
                _walk_data(), env="Walk", kind="random", return_random=1.0,
                return_expert=1.0, policy="x",
            )  # fmt: skip


# ----------------------------------------------------------------------------- storage


def _files_under(root) -> list[pathlib.Path]:
    return sorted(p for p in pathlib.Path(root).rglob("*") if p.is_file())


def _snapshot(root) -> dict:
    """Every file under ``root`` with its bytes."""
    return {p: p.read_bytes() for p in _files_under(root)}


def _assert_bitwise(a: Transition, b: Transition) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, walk_ds):
    path = tmp_path_factory.mktemp("saved") / "walk-random"
    offline.save_dataset(path, walk_ds)
    return path


class TestSaveLoad:
    def test_round_trip_bitwise(self, saved, walk_ds):
        loaded = offline.load_dataset(
            saved,
            expected_env="Walk",
            expected_kind="random",
            expected_env_kwargs={"max_steps_in_episode": MAX_STEPS},
            example=jax.tree.map(lambda x: x[0], walk_ds.data),
        )
        _assert_bitwise(loaded.data, walk_ds.data)
        assert loaded.meta == walk_ds.meta
        assert loaded.meta.checksum == offline.content_checksum(walk_ds.data)
        assert isinstance(loaded.data.obs, jax.Array)
        doc = json.loads((saved / "dataset.json").read_text())
        assert doc["meta"]["return_random"] == -2.0
        assert doc["meta"]["num_transitions"] == E * T

    def test_sample_dataset_under_jit_and_vmap(self, saved):
        data = offline.load_dataset(saved).data
        keys = jax.random.split(jax.random.key(5), 4)
        batch = jax.jit(jax.vmap(lambda k: buffer.sample_dataset(data, k, 16)))(keys)
        chex.assert_shape(batch.obs, (4, 16, 2))
        assert batch.terminated.dtype == jnp.bool_
        # Every sampled row is a row of the dataset (obs/next_obs pairs intact).
        rows = {tuple(r) for r in np.concatenate([data.obs, data.next_obs], 1).tolist()}
        got = np.concatenate([batch.obs, batch.next_obs], -1).reshape(-1, 4)
        assert {tuple(r) for r in got.tolist()} <= rows

    def test_dataset_is_a_jit_argument(self, walk_ds):
        total = jax.jit(lambda ds: ds.data.reward.sum())(walk_ds)
        assert float(total) == float(np.asarray(walk_ds.data.reward).sum())

    def test_existing_path_is_not_overwritten(self, saved, walk_ds):
        before = _snapshot(saved)
        with pytest.raises(ConfigError, match="already exists"):
            offline.save_dataset(saved, walk_ds)
        assert _snapshot(saved) == before

    def test_overwrite_replaces_and_leaves_no_temporaries(self, tmp_path, walk_ds):
        path = tmp_path / "d"
        offline.save_dataset(path, walk_ds)
        other = _dataset(_walk_data(2), kind="medium")
        offline.save_dataset(path, other, overwrite=True)
        assert offline.load_dataset(path).meta == other.meta
        assert sorted(os.listdir(tmp_path)) == ["d"]

    def test_overwrite_never_replaces_a_non_dataset(self, tmp_path, walk_ds):
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "notes.txt").write_text("keep me")
        with pytest.raises(ConfigError, match="is not a jaxrl dataset"):
            offline.save_dataset(tmp_path / "d", walk_ds, overwrite=True)
        assert (tmp_path / "d" / "notes.txt").read_text() == "keep me"
        assert sorted(os.listdir(tmp_path)) == ["d"]

    def test_stale_metadata_is_refused_and_nothing_written(self, tmp_path, walk_ds):
        changed = walk_ds.replace(
            data=walk_ds.data.replace(reward=walk_ds.data.reward + 1)
        )
        with pytest.raises(ConfigError, match="fails the content checksum.*rebuild"):
            offline.save_dataset(tmp_path / "d", changed)
        assert os.listdir(tmp_path) == []

    def test_not_found(self, tmp_path):
        with pytest.raises(ConfigError, match="not found"):
            offline.load_dataset(tmp_path / "nope")


class TestMismatch:
    def test_wrong_env(self, saved):
        with pytest.raises(
            ConfigError, match="for environment 'Walk', expected 'CartPole-v1'"
        ):
            offline.load_dataset(saved, expected_env="CartPole-v1")

    def test_wrong_kind(self, saved):
        with pytest.raises(ConfigError, match="of kind 'random', expected 'expert'"):
            offline.load_dataset(saved, expected_kind="expert")

    def test_wrong_env_kwargs(self, saved):
        with pytest.raises(ConfigError, match="env kwargs"):
            offline.load_dataset(saved, expected_env_kwargs={"max_steps_in_episode": 9})

    def test_wrong_observation_shape(self, saved):
        env, params = envs.make("CartPole-v1")
        with pytest.raises(
            ConfigError, match=r"obs is float32\[N, 2\] .* float32\[N, 4\]"
        ):
            offline.load_dataset(saved, example=offline.example_item(env, params))

    def test_wrong_action_dtype(self, saved, walk_ds):
        item = jax.tree.map(lambda x: x[0], walk_ds.data)
        item = item.replace(action=jnp.zeros((), jnp.float32))
        with pytest.raises(ConfigError, match=r"action is int32\[N, \] .* float32"):
            offline.load_dataset(saved, example=item)


class TestCorrupt:
    @pytest.fixture
    def copy(self, saved, tmp_path):
        dst = tmp_path / "copy"
        shutil.copytree(saved, dst)
        return dst

    def _check(self, path, pattern):
        before = _snapshot(path)
        with pytest.raises(ConfigError, match=pattern) as info:
            offline.load_dataset(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        assert _snapshot(path) == before

    def test_flipped_array_bytes(self, copy):
        data = [f for f in _files_under(copy / "arrays") if f.parent.name == "d"]
        assert data
        for f in data:
            raw = bytearray(f.read_bytes())
            for i in range(len(raw) // 2, len(raw) - 1):
                raw[i] ^= 0xFF
            f.write_bytes(bytes(raw))
        self._check(copy, "is corrupt")

    def test_truncated_array_files(self, copy):
        for f in _files_under(copy / "arrays" / "0" / "state"):
            size = f.stat().st_size
            if size > 0 and "_METADATA" not in f.name:
                with open(f, "r+b") as fh:
                    fh.truncate(size // 2)
        self._check(copy, "is corrupt")

    def test_missing_metadata(self, copy):
        os.remove(copy / "dataset.json")
        self._check(copy, "dataset.json is missing")

    def test_garbled_metadata(self, copy):
        text = (copy / "dataset.json").read_text()
        (copy / "dataset.json").write_text(text[: len(text) // 2])
        self._check(copy, "dataset.json is unreadable")

    def test_metadata_field_missing(self, copy):
        doc = json.loads((copy / "dataset.json").read_text())
        del doc["meta"]["return_expert"]
        (copy / "dataset.json").write_text(json.dumps(doc))
        self._check(copy, "no field 'return_expert'")

    def test_metadata_edited(self, copy):
        doc = json.loads((copy / "dataset.json").read_text())
        doc["meta"]["return_expert"] = 1000.0
        (copy / "dataset.json").write_text(json.dumps(doc))
        self._check(copy, "differs from the metadata stored with the arrays")

    def test_spec_edited(self, copy):
        doc = json.loads((copy / "dataset.json").read_text())
        doc["spec"]["obs"]["shape"] = [E * T, 3]
        (copy / "dataset.json").write_text(json.dumps(doc))
        self._check(copy, r"corrupt or inconsistent: .*\.obs has shape")

    def test_arrays_deleted(self, copy):
        shutil.rmtree(copy / "arrays")
        self._check(copy, "is corrupt")


# ----------------------------------------------------------------------------- splits


class TestImitationSplits:
    @pytest.mark.parametrize("k", [1, 4])
    def test_exactly_k_complete_episodes(self, walk_ds, k):
        split = offline.expert_trajectories(walk_ds, k)
        assert split.meta.num_episodes == k and split.meta.kind == f"random-{k}traj"
        out = offline.episode_returns(split)
        assert len(out["return"]) == k
        assert int(out["length"].sum()) == split.meta.num_transitions  # nothing else
        ts = np.asarray(split.data.extras[offline.TIMESTEP])
        assert (
            ts[np.r_[0, np.cumsum(out["length"])[:-1]]] == 0
        ).all()  # whole episodes
        # The rows are the source rows of the first k complete episodes.
        source = offline.episode_returns(walk_ds)
        ids = source["episode_id"][:k]
        rows = np.isin(np.asarray(walk_ds.data.extras[offline.EPISODE_ID]), ids)
        _assert_bitwise(
            split.data, jax.tree.map(lambda x: np.asarray(x)[rows], walk_ds.data)
        )
        np.testing.assert_allclose(out["return"], source["return"][:k])

    def test_skip_is_disjoint_and_too_many_fails(self, walk_ds):
        one = offline.expert_trajectories(walk_ds, 1)
        rest = offline.expert_trajectories(walk_ds, 3, skip=1)
        a = set(np.asarray(one.data.extras[offline.EPISODE_ID]).tolist())
        b = set(np.asarray(rest.data.extras[offline.EPISODE_ID]).tolist())
        assert a and b and not a & b
        with pytest.raises(ConfigError, match="complete episodes"):
            offline.expert_trajectories(walk_ds, walk_ds.meta.num_episodes + 1)

    def test_mix_flags_and_counts(self, walk_ds):
        expert = offline.expert_trajectories(_dataset(_walk_data(7), kind="expert"), 3)
        mixed = offline.mix(walk_ds, expert, kind="random-plus-expert")
        flag = np.asarray(mixed.data.extras[offline.IS_EXPERT])
        n = walk_ds.meta.num_transitions
        assert mixed.meta.num_transitions == n + expert.meta.num_transitions
        assert not flag[:n].any() and flag[n:].all()
        assert mixed.meta.num_episodes == walk_ds.meta.num_episodes + 3
        assert mixed.meta.sources == (
            ("random", n),
            ("expert-3traj", expert.meta.num_transitions),
        )
        ep = np.asarray(mixed.data.extras[offline.EPISODE_ID])
        assert ep[n:].min() > ep[:n].max()  # renumbered, still unique
        np.testing.assert_allclose(
            offline.episode_returns(mixed)["return"],
            np.concatenate(
                [
                    offline.episode_returns(walk_ds)["return"],
                    offline.episode_returns(expert)["return"],
                ]
            ),
        )

    def test_concat_checks_sources(self, walk_ds):
        other_env = _dataset(_walk_data(), env="Walk2")
        with pytest.raises(ConfigError, match="different environments"):
            offline.concat([walk_ds, other_env], kind="x")
        other_refs = offline.make_dataset(
            walk_ds.data, env="Walk", kind="x", return_random=0.0, return_expert=1.0,
            policy="x", env_kwargs={"max_steps_in_episode": MAX_STEPS},
        )  # fmt: skip
        with pytest.raises(ConfigError, match="different reference returns"):
            offline.concat([walk_ds, other_refs], kind="x")


# ------------------------------------------------------------------------- continuous


class TestContinuous:
    def test_pendulum_random_dataset(self, tmp_path):
        env, params = envs.make("Pendulum-v1", max_steps_in_episode=25)
        steps, num_envs = 60, 2
        policy = offline.uniform_policy(env, params)

        def go(key):
            k_reset, k_run = jax.random.split(key)
            obs, state = rollout.reset(k_reset, env, params, num_envs)
            tr, *_ = rollout.collect(k_run, env, params, state, obs, policy, steps)
            return tr, offline.from_rollout(tr)

        rollout_tm, data = jax.jit(go)(jax.random.key(11))
        assert data.action.dtype == jnp.float32 and data.action.shape == (
            steps * num_envs,
            1,
        )
        assert (np.abs(np.asarray(data.action)) <= 2.0).all()
        assert len(np.unique(np.asarray(data.action))) > 100  # continuous values
        # Pendulum never terminates; the 25-step time limit truncates.
        assert not data.terminated.any()
        assert np.asarray(data.truncated).sum() == num_envs * (steps // 25)
        ds = offline.make_dataset(
            data, env="Pendulum-v1", kind="random", return_random=-1200.0,
            return_expert=-150.0, policy="uniform",
            env_kwargs={"max_steps_in_episode": 25},
        )  # fmt: skip
        _, _, (returns, lengths) = _numpy_episodes(
            np.asarray(rollout_tm.truncated), np.asarray(rollout_tm.reward)
        )
        out = offline.episode_returns(ds)
        np.testing.assert_allclose(out["return"], returns, rtol=1e-12)
        assert out["length"].tolist() == lengths == [25] * 4
        offline.save_dataset(tmp_path / "p", ds)
        loaded = offline.load_dataset(
            tmp_path / "p",
            expected_env="Pendulum-v1",
            example=offline.example_item(env, params),
        )
        _assert_bitwise(loaded.data, ds.data)
        batch = jax.jit(lambda k: buffer.sample_dataset(loaded.data, k, 8))(
            jax.random.key(1)
        )
        assert batch.action.shape == (8, 1)

    def test_uniform_policy_rejects_other_spaces(self):
        env, params = envs.make("CartPole-v1")
        space = env.action_space(params)
        from gymnax.environments import spaces

        class Fake:
            name = "Fake"

            def action_space(self, params):
                return spaces.Dict({"a": space})

        with pytest.raises(ConfigError, match="Discrete and Box"):
            offline.uniform_policy(Fake(), params)
