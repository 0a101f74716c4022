"""Tests for jaxrl.envs.offline.dataset: episode returns and scores against NumPy loops, splits, the Dataset type."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized

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


class TestEpisodeReturns:
    def test_matches_numpy_loop(self, walk_ds):
        data = walk_ds.data
        done = np.asarray(data.terminated | data.truncated).reshape(E, T).T
        reward = np.asarray(data.reward).reshape(E, T).T
        _, _, (returns, lengths) = numpy_episodes(done, reward)
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
            walk_dataset(bad)


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
        ds = walk_dataset(collect_walk(1))
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
                collect_walk(), env="Walk", kind="random", return_random=1.0,
                return_expert=1.0, policy="x",
            )  # fmt: skip


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
        assert_bitwise(
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
        expert = offline.expert_trajectories(
            walk_dataset(collect_walk(7), kind="expert"), 3
        )
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
        other_env = walk_dataset(collect_walk(), env="Walk2")
        with pytest.raises(ConfigError, match="different environments"):
            offline.concat([walk_ds, other_env], kind="x")
        other_refs = offline.make_dataset(
            walk_ds.data, env="Walk", kind="x", return_random=0.0, return_expert=1.0,
            policy="x", env_kwargs={"max_steps_in_episode": MAX_STEPS},
        )  # fmt: skip
        with pytest.raises(ConfigError, match="different reference returns"):
            offline.concat([walk_ds, other_refs], kind="x")


class TestDatasetType:
    def test_dataset_is_a_jit_argument(self, walk_ds):
        total = jax.jit(lambda ds: ds.data.reward.sum())(walk_ds)
        assert float(total) == float(np.asarray(walk_ds.data.reward).sum())


def _numpy_returns(ds):
    """Complete-episode returns of a collected ``Walk`` dataset by a NumPy loop."""
    data = ds.data
    done = np.asarray(data.terminated | data.truncated).reshape(E, T).T
    reward = np.asarray(data.reward).reshape(E, T).T
    _, _, (returns, _) = numpy_episodes(done, reward)
    return np.asarray(returns)


class TestStatsAndSplits:
    def test_return_stats_and_with_info(self, walk_ds):
        returns = _numpy_returns(walk_ds)
        stats = offline.return_stats(walk_ds.data, -2.0, 3.0)
        assert stats["return_mean"] == pytest.approx(returns.mean(), abs=1e-12)
        assert stats["score_mean"] == pytest.approx(
            100.0 * (returns.mean() + 2.0) / 5.0, abs=1e-9
        )
        tagged = offline.with_return_stats(walk_ds)
        assert dict(tagged.meta.info) == stats
        assert tagged.meta.checksum == walk_ds.meta.checksum
        assert tagged.data is walk_ds.data
        more = offline.with_info(tagged, {"note": "x", "return_mean": 1.0})
        assert dict(more.meta.info) == {**stats, "note": "x", "return_mean": 1.0}
        assert dataclasses.replace(more.meta, info=()) == dataclasses.replace(
            walk_ds.meta, info=()
        )
        # No complete episode: no statistics.
        open_ended = walk_ds.data.replace(
            terminated=jnp.zeros_like(walk_ds.data.terminated),
            truncated=jnp.zeros_like(walk_ds.data.truncated),
            extras={
                "episode_id": jnp.repeat(jnp.arange(E, dtype=jnp.int32), T),
                "timestep": jnp.tile(jnp.arange(T, dtype=jnp.int32), E),
            },
        )
        assert offline.return_stats(open_ended, -2.0, 3.0) == {}

    def test_imitation_splits(self, walk_ds):
        expert = walk_dataset(collect_walk(7), kind="expert")
        names = {"one": "expert-1traj", "random": "random-plus-expert"}
        one, mixed = offline.imitation_splits({"random": walk_ds}, expert, names, 2)
        expert_returns = _numpy_returns(expert)
        # The one-episode set: the expert's first complete episode.
        assert one.meta.kind == "expert-1traj" and one.meta.num_episodes == 1
        assert_bitwise(one.data, offline.expert_trajectories(expert, 1).data)
        assert dict(one.meta.info)["return_mean"] == pytest.approx(expert_returns[0])
        # The mixture: the random data plus expert episodes 2 and 3 (disjoint).
        assert mixed.meta.kind == "random-plus-expert"
        assert mixed.meta.num_episodes == walk_ds.meta.num_episodes + 2
        n = walk_ds.meta.num_transitions
        flag = np.asarray(mixed.data.extras[offline.IS_EXPERT])
        assert not flag[:n].any() and flag[n:].all()
        want = np.concatenate([_numpy_returns(walk_ds), expert_returns[1:3]])
        info = dict(mixed.meta.info)
        assert info["return_mean"] == pytest.approx(want.mean(), abs=1e-12)
        assert info["score_mean"] == pytest.approx(100 * (want.mean() + 2) / 5)
        assert info["expert_episodes"] == 2
        with pytest.raises(ConfigError, match="complete episodes"):
            offline.imitation_splits(
                {"random": walk_ds}, expert, names, expert.meta.num_episodes
            )
