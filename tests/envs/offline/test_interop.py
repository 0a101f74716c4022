"""Tests for jaxrl.envs.offline.interop: D4RL-style npz and Minari export / import."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from jaxrl.transition import discount
from tests.envs.offline.helpers import assert_bitwise, collect_walk, walk_dataset

KEYS = {
    "observations",
    "actions",
    "rewards",
    "terminals",
    "timeouts",
    "next_observations",
}


def _one_line_error(fn, *needles) -> str:
    with pytest.raises(ConfigError) as err:
        fn()
    text = str(err.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture(scope="module")
def mixed_ds(walk_ds) -> offline.Dataset:
    """Walk data plus two complete episodes of a second stream (bool ``is_expert``)."""
    other = walk_dataset(collect_walk(seed=1), kind="expert")
    return offline.mix(walk_ds, offline.expert_trajectories(other, 2), kind="mixed")


# ----------------------------------------------------------------------------- D4RL


class TestD4rlRoundTrip:
    @pytest.mark.parametrize("compress", [True, False])
    def test_ours_npz_ours_is_bitwise(self, tmp_path, mixed_ds, compress):
        path = offline.save_d4rl(tmp_path / "d.npz", mixed_ds, compress=compress)
        back = offline.load_d4rl(path)
        assert_bitwise(back.data, mixed_ds.data)
        assert back.meta == mixed_ds.meta
        assert isinstance(back.data.reward, jax.Array)

    def test_file_is_plain_numpy_with_d4rl_keys(self, tmp_path, walk_ds):
        path = offline.save_d4rl(tmp_path / "d.npz", walk_ds)
        with np.load(path, allow_pickle=False) as z:
            files = dict(z)
        assert set(files) == KEYS | {
            "extras/episode_id",
            "extras/timestep",
            "jaxrl/metadata",
        }
        data = jax.device_get(walk_ds.data)
        pairs = {
            "observations": data.obs,
            "actions": data.action,
            "rewards": data.reward,
            "terminals": data.terminated,
            "timeouts": data.truncated,
            "next_observations": data.next_obs,
            "extras/episode_id": data.extras["episode_id"],
            "extras/timestep": data.extras["timestep"],
        }
        for key, want in pairs.items():
            want = np.asarray(want)
            assert files[key].dtype == want.dtype, key
            np.testing.assert_array_equal(files[key], want, err_msg=key)
        assert files["rewards"].dtype == np.float32
        assert files["terminals"].dtype == files["timeouts"].dtype == np.bool_
        doc = json.loads(str(files["jaxrl/metadata"]))
        assert doc["format"] == offline.METADATA_FORMAT
        assert doc["meta"]["checksum"] == walk_ds.meta.checksum

    def test_without_episode_extras_recovers_the_episodes(self, walk_ds):
        """Episode ids come back from the flags and the stream cuts (no flag)."""
        arrays = {k: v for k, v in offline.to_d4rl(walk_ds).items() if k in KEYS}
        ds = offline.from_d4rl(arrays, env="Walk", return_random=-2, return_expert=3)
        ours = jax.device_get(walk_ds.data.extras)
        got = jax.device_get(ds.data.extras)
        # Walk's streams start at time 0, so every cut is visible; ids are 0..K-1.
        _, want_ids = np.unique(ours["episode_id"], return_inverse=True)
        np.testing.assert_array_equal(got["episode_id"], want_ids)
        np.testing.assert_array_equal(got["timestep"], ours["timestep"])
        assert ds.meta.num_episodes == walk_ds.meta.num_episodes
        np.testing.assert_array_equal(
            offline.episode_returns(ds)["return"],
            offline.episode_returns(walk_ds)["return"],
        )
        assert ds.meta.kind == "imported"
        assert dict(ds.meta.info) == {"imported_from": "a D4RL-style npz"}


def _hand_built() -> dict[str, np.ndarray]:
    """Seven rows written as a D4RL file would be (NumPy default dtypes).

    rows 0-2: episode 0, ends terminal;  rows 3-4: episode 1, ends by timeout;
    row 5: episode 2, cut off (next obs 60 != obs 70 of row 6, no flag);
    row 6: episode 3, unfinished tail.
    """
    obs = np.array([0, 1, 2, 10, 11, 50, 70], np.float64)[:, None]
    next_obs = np.array([1, 2, 3, 11, 12, 60, 71], np.float64)[:, None]
    return {
        "observations": obs,
        "actions": np.array([1, 0, 1, 1, 0, 1, 0]),  # int64
        "rewards": np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        "terminals": np.array([0, 0, 1, 0, 0, 0, 0], np.float32),  # 0/1 numbers
        "timeouts": np.array([False, False, False, False, True, False, False]),
        "next_observations": next_obs,
        "infos/qpos": np.zeros((7, 3)),  # ignored
    }


class TestD4rlImport:
    def test_hand_built_file(self, tmp_path):
        path = tmp_path / "hand.npz"
        np.savez(path, **_hand_built())
        ds = offline.load_d4rl(
            path,
            env="CartPole-v1",
            kind="medium",
            return_random=0.0,
            return_expert=100.0,
            policy="a hand-built file",
        )
        data = jax.device_get(ds.data)
        assert data.obs.dtype == np.float32 and data.obs.shape == (7, 1)
        assert data.action.dtype == np.int32 and data.reward.dtype == np.float32
        np.testing.assert_array_equal(data.action, [1, 0, 1, 1, 0, 1, 0])
        np.testing.assert_array_equal(data.obs[:, 0], [0, 1, 2, 10, 11, 50, 70])
        np.testing.assert_array_equal(data.next_obs[:, 0], [1, 2, 3, 11, 12, 60, 71])
        np.testing.assert_array_equal(data.reward, [1, 2, 4, 8, 16, 32, 64])
        np.testing.assert_array_equal(data.terminated, [0, 0, 1, 0, 0, 0, 0])
        np.testing.assert_array_equal(data.truncated, [0, 0, 0, 0, 1, 0, 0])
        np.testing.assert_array_equal(data.extras["episode_id"], [0, 0, 0, 1, 1, 2, 3])
        np.testing.assert_array_equal(data.extras["timestep"], [0, 1, 2, 0, 1, 0, 0])
        assert sorted(data.extras) == ["episode_id", "timestep"]
        # Two complete episodes: 1 + 2 + 4 (terminal) and 8 + 16 (timeout).
        out = offline.episode_returns(ds)
        np.testing.assert_array_equal(out["return"], [7.0, 24.0])
        np.testing.assert_array_equal(out["length"], [3, 2])
        assert ds.meta.num_episodes == 2 and ds.meta.num_transitions == 7
        # terminals stop bootstrapping, timeouts do not.
        np.testing.assert_allclose(
            discount(ds.data, 0.9), [0.9, 0.9, 0.0, 0.9, 0.9, 0.9, 0.9]
        )
        meta = ds.meta
        assert (meta.env, meta.kind, meta.policy) == (
            "CartPole-v1",
            "medium",
            "a hand-built file",
        )
        assert (meta.return_random, meta.return_expert) == (0.0, 100.0)

    def test_given_episode_ids_are_used(self):
        arrays = _hand_built()
        arrays["extras/episode_id"] = np.array([4, 4, 4, 5, 5, 5, 5])  # no cut at 5
        arrays["timeouts"][4] = False
        ds = offline.from_d4rl(arrays, env="X", return_random=0, return_expert=1)
        extras = jax.device_get(ds.data.extras)
        np.testing.assert_array_equal(extras["episode_id"], [4, 4, 4, 5, 5, 5, 5])
        np.testing.assert_array_equal(extras["timestep"], [0, 1, 2, 0, 1, 2, 3])
        assert extras["episode_id"].dtype == np.int32
        assert ds.meta.num_episodes == 1

    def test_rounding_errors_do_not_cut_episodes(self):
        arrays = _hand_built()
        obs = arrays["observations"].astype(np.float32)
        next_obs = arrays["next_observations"].astype(np.float32)
        next_obs[0] = np.nextafter(next_obs[0], np.float32(2.0))  # one ulp above 1
        arrays.update(observations=obs, next_observations=next_obs)
        ds = offline.from_d4rl(arrays, env="X", return_random=0, return_expert=1)
        want = [0, 0, 0, 1, 1, 2, 3]
        np.testing.assert_array_equal(ds.data.extras["episode_id"], want)
        next_obs[0] = 1.001  # a real jump: a new (cut) episode starts at row 1
        ds = offline.from_d4rl(arrays, env="X", return_random=0, return_expert=1)
        np.testing.assert_array_equal(
            ds.data.extras["episode_id"], [0, 1, 1, 2, 2, 3, 4]
        )
        np.testing.assert_array_equal(ds.data.extras["timestep"], [0, 0, 1, 0, 1, 0, 0])
        np.testing.assert_array_equal(offline.episode_returns(ds)["return"], [6, 24])

    def test_float_actions_stay_vectors(self):
        arrays = _hand_built()
        arrays["actions"] = np.linspace(-1, 1, 14).reshape(7, 2)  # float64
        ds = offline.from_d4rl(arrays, env="X", return_random=0, return_expert=1)
        assert ds.data.action.dtype == np.float32 and ds.data.action.shape == (7, 2)
        np.testing.assert_array_equal(
            ds.data.action, np.linspace(-1, 1, 14).reshape(7, 2).astype(np.float32)
        )


def _without(key):
    arrays = _hand_built()
    del arrays[key]
    return arrays


def _with(key, value):
    arrays = _hand_built()
    arrays[key] = value
    return arrays


_META = dict(env="X", return_random=0.0, return_expert=1.0)


class TestD4rlBadInput:
    @pytest.mark.parametrize("key", sorted(KEYS))
    def test_missing_key(self, key):
        _one_line_error(
            lambda: offline.from_d4rl(_without(key), **_META), "missing key", repr(key)
        )

    @pytest.mark.parametrize(
        "key, value, needles",
        [
            ("next_observations", np.zeros((6, 1)), ("length mismatch", "6 rows")),
            ("actions", np.zeros(8, np.int64), ("length mismatch", "actions")),
            ("extras/timestep", np.zeros(3, np.int32), ("extras/timestep", "3 rows")),
            ("rewards", np.array(list("abcdefg")), ("rewards", "dtype <U1")),
            ("rewards", np.ones((7, 1)), ("rewards must be [N]",)),
            ("rewards", np.zeros(7, bool), ("rewards", "dtype bool")),
            ("actions", np.ones(7, np.complex64), ("actions", "complex64")),
            ("terminals", np.full(7, 2), ("terminals", "other than 0 and 1")),
            ("timeouts", np.zeros((7, 1), bool), ("timeouts must be [N]",)),
            ("observations", np.zeros((7, 1), np.float32), ("must match",)),
            ("actions", np.full(7, 2**40), ("actions", "outside int32")),
            ("extras/episode_id", np.zeros(7, np.float32), ("episode_id", "integer")),
            ("extras/timestep", np.arange(7), ("timestep without",)),
        ],
    )
    def test_bad_array(self, key, value, needles):
        _one_line_error(lambda: offline.from_d4rl(_with(key, value), **_META), *needles)

    def test_inconsistent_episode_ids(self):
        arrays = _with("extras/episode_id", np.array([0, 1, 0, 2, 2, 3, 4]))
        _one_line_error(lambda: offline.from_d4rl(arrays, **_META), "contiguous")

    @pytest.mark.parametrize("name", ["env", "return_random", "return_expert"])
    def test_metadata_needed_without_stored_metadata(self, name):
        meta = {k: v for k, v in _META.items() if k != name}
        _one_line_error(
            lambda: offline.from_d4rl(_hand_built(), **meta), "no jaxrl metadata", name
        )

    def test_object_array_is_unreadable_not_unpickled(self, tmp_path):
        path = tmp_path / "obj.npz"
        np.savez(path, **_with("rewards", np.array([{}] * 7, object)))
        _one_line_error(
            lambda: offline.load_d4rl(path, **_META), "'rewards' is unreadable"
        )

    def test_not_npz(self, tmp_path):
        text = tmp_path / "notes.npz"
        text.write_text("not an archive\n")
        _one_line_error(lambda: offline.load_d4rl(text), "not an .npz archive")
        npy = tmp_path / "array.npy"
        np.save(npy, np.zeros(3))
        _one_line_error(lambda: offline.load_d4rl(npy), "not an .npz archive")
        _one_line_error(lambda: offline.load_d4rl(tmp_path / "nope.npz"), "not found")
        _one_line_error(lambda: offline.load_d4rl(tmp_path), "is a directory")

    def test_stored_metadata_guards_the_content(self, tmp_path, walk_ds):
        arrays = offline.to_d4rl(walk_ds)
        arrays["rewards"] = arrays["rewards"] + np.float32(1.0)
        path = tmp_path / "edited.npz"
        np.savez(path, **arrays)
        _one_line_error(lambda: offline.load_d4rl(path), "corrupt", "checksum")
        good = offline.save_d4rl(tmp_path / "good.npz", walk_ds)
        _one_line_error(
            lambda: offline.load_d4rl(good, env="CartPole-v1"),
            "env 'Walk'",
            "'CartPole-v1' was asked for",
        )
        # An argument that agrees with the stored metadata is fine.
        assert offline.load_d4rl(good, env="Walk", kind="random").meta == walk_ds.meta

    def test_never_overwrites_without_the_flag(self, tmp_path, walk_ds, mixed_ds):
        path = tmp_path / "d.npz"
        offline.save_d4rl(path, walk_ds)
        before = path.read_bytes()
        _one_line_error(lambda: offline.save_d4rl(path, mixed_ds), "already exists")
        assert path.read_bytes() == before
        offline.save_d4rl(path, mixed_ds, overwrite=True)
        assert offline.load_d4rl(path).meta == mixed_ds.meta
        assert sorted(os.listdir(tmp_path)) == ["d.npz"]  # no temporary left
        _one_line_error(lambda: offline.save_d4rl(tmp_path, walk_ds), "directory")


# ----------------------------------------------------------------------------- Minari

needs_minari = pytest.mark.skipif(
    not offline.minari_available(), reason="optional minari/h5py not installed"
)


@needs_minari
class TestMinari:
    def test_round_trip_is_bitwise(self, tmp_path, mixed_ds):
        path = offline.save_minari(tmp_path / "m", mixed_ds)
        back = offline.load_minari(path)
        assert_bitwise(back.data, mixed_ds.data)
        assert back.meta == mixed_ds.meta

    def test_minari_reads_the_episodes(self, tmp_path, walk_ds):
        import minari

        path = offline.save_minari(tmp_path / "m", walk_ds)
        md = minari.MinariDataset(path)
        data = jax.device_get(walk_ds.data)
        ids = np.asarray(data.extras["episode_id"])
        runs = np.split(np.arange(ids.size), np.flatnonzero(np.diff(ids)) + 1)
        assert md.total_episodes == len(runs) and md.total_steps == ids.size
        assert md.id == "jaxrl/Walk/random-v0"
        for ep, rows in zip(md.iterate_episodes(), runs, strict=True):
            want_obs = np.concatenate([data.obs[rows], data.next_obs[rows[-1:]]])
            np.testing.assert_array_equal(ep.observations, want_obs)
            np.testing.assert_array_equal(ep.actions, data.action[rows])
            np.testing.assert_array_equal(ep.rewards, data.reward[rows])
            np.testing.assert_array_equal(ep.terminations, data.terminated[rows])
            np.testing.assert_array_equal(ep.truncations, data.truncated[rows])
        meta = md.storage.metadata
        assert (meta["ref_min_score"], meta["ref_max_score"]) == (-2.0, 3.0)

    def test_foreign_minari_dataset(self, tmp_path):
        import gymnasium
        import minari
        from minari.data_collector import EpisodeBuffer
        from minari.dataset.minari_storage import MinariStorage

        storage = MinariStorage.new(
            tmp_path / "foreign",
            observation_space=gymnasium.spaces.Box(-10, 10, (1,), np.float64),
            action_space=gymnasium.spaces.Discrete(2),
            jpeg_encoding=False,
        )
        storage.update_metadata(
            {
                "dataset_id": "other/thing-v0",
                "minari_version": minari.__version__,
                "ref_min_score": 1.0,
                "ref_max_score": 5.0,
            }
        )
        storage.update_episodes(
            [
                EpisodeBuffer(
                    observations=np.array([[0.0], [1.0], [2.0]]),
                    actions=np.array([1, 1]),
                    rewards=np.array([1.0, 2.0]),
                    terminations=np.array([False, True]),
                    truncations=np.array([False, False]),
                ),
                EpisodeBuffer(
                    observations=np.array([[0.0], [-1.0]]),
                    actions=np.array([0]),
                    rewards=np.array([4.0]),
                    terminations=np.array([False]),
                    truncations=np.array([True]),
                ),
                EpisodeBuffer(  # unfinished
                    observations=np.array([[0.0], [1.0]]),
                    actions=np.array([1]),
                    rewards=np.array([8.0]),
                    terminations=np.array([False]),
                    truncations=np.array([False]),
                ),
            ]
        )
        ds = offline.load_minari(tmp_path / "foreign", env="CartPole-v1")
        data = jax.device_get(ds.data)
        np.testing.assert_array_equal(data.obs[:, 0], [0, 1, 0, 0])
        np.testing.assert_array_equal(data.next_obs[:, 0], [1, 2, -1, 1])
        assert data.obs.dtype == np.float32 and data.action.dtype == np.int32
        np.testing.assert_array_equal(data.extras["episode_id"], [0, 0, 1, 2])
        np.testing.assert_array_equal(data.extras["timestep"], [0, 1, 0, 0])
        np.testing.assert_array_equal(data.terminated, [0, 1, 0, 0])
        np.testing.assert_array_equal(data.truncated, [0, 0, 1, 0])
        np.testing.assert_array_equal(offline.episode_returns(ds)["return"], [3, 4])
        assert (ds.meta.return_random, ds.meta.return_expert) == (1.0, 5.0)
        assert ds.meta.num_episodes == 2

    def test_bad_input(self, tmp_path, walk_ds):
        path = offline.save_minari(tmp_path / "m", walk_ds)
        _one_line_error(lambda: offline.save_minari(path, walk_ds), "already exists")
        offline.save_minari(path, walk_ds, overwrite=True)
        assert sorted(os.listdir(tmp_path)) == ["m"]
        (tmp_path / "plain").mkdir()
        _one_line_error(
            lambda: offline.save_minari(tmp_path / "plain", walk_ds, overwrite=True),
            "not a Minari dataset",
        )
        _one_line_error(
            lambda: offline.load_minari(tmp_path / "plain"), "not a Minari dataset"
        )
        _one_line_error(lambda: offline.load_minari(tmp_path / "none"), "not found")
        _one_line_error(
            lambda: offline.save_minari(tmp_path / "x", walk_ds, dataset_id="a b"),
            "invalid Minari dataset id",
        )

    def test_unchained_next_obs_is_kept(self, tmp_path, walk_ds):
        """A next_obs that differs from the next obs (even by one ulp) survives."""
        import minari

        data = jax.device_get(walk_ds.data)
        next_obs = np.array(data.next_obs)
        next_obs[0, 0] = np.nextafter(next_obs[0, 0], np.float32(np.inf))
        edited = offline.make_dataset(
            data.replace(next_obs=next_obs),
            env="Walk",
            kind="random",
            return_random=-2.0,
            return_expert=3.0,
            policy="edited",
        )
        path = offline.save_minari(tmp_path / "e", edited)
        back = offline.load_minari(path)
        assert_bitwise(back.data, edited.data)
        first = next(iter(minari.MinariDataset(path).iterate_episodes()))
        stop = len(first.rewards)
        np.testing.assert_array_equal(first.observations[:stop], data.obs[:stop])
        np.testing.assert_array_equal(first.infos["jaxrl_next_obs"], next_obs[:stop])
        # Without such a row nothing extra is stored.
        plain = offline.save_minari(tmp_path / "p", walk_ds)
        first = next(iter(minari.MinariDataset(plain).iterate_episodes()))
        assert sorted(first.infos) == ["jaxrl_extras"]
