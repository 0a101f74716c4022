"""Tests for jaxrl.envs.offline.storage: bitwise round trips, atomic overwrite, mismatch and corruption reports."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import buffer, envs, rollout
from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from tests.envs.offline.helpers import (
    MAX_STEPS,
    E,
    T,
    assert_bitwise,
    collect_walk,
    numpy_episodes,
    walk_dataset,
)


def _files_under(root) -> list[pathlib.Path]:
    return sorted(p for p in pathlib.Path(root).rglob("*") if p.is_file())


def _snapshot(root) -> dict:
    """Every file under ``root`` with its bytes."""
    return {p: p.read_bytes() for p in _files_under(root)}


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
        assert_bitwise(loaded.data, walk_ds.data)
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

    def test_existing_path_is_not_overwritten(self, saved, walk_ds):
        before = _snapshot(saved)
        with pytest.raises(ConfigError, match="already exists"):
            offline.save_dataset(saved, walk_ds)
        assert _snapshot(saved) == before

    def test_overwrite_replaces_and_leaves_no_temporaries(self, tmp_path, walk_ds):
        path = tmp_path / "d"
        offline.save_dataset(path, walk_ds)
        other = walk_dataset(collect_walk(2), kind="medium")
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
        _, _, (returns, lengths) = numpy_episodes(
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
        assert_bitwise(loaded.data, ds.data)
        batch = jax.jit(lambda k: buffer.sample_dataset(loaded.data, k, 8))(
            jax.random.key(1)
        )
        assert batch.action.shape == (8, 1)
