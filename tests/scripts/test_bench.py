"""Tests for ``jaxrl bench`` (scripts/bench*.py): equal work on both sides of each comparison, output.

The NumPy M-VI loop must compute the same tables as the jax chunk that is timed
(so backups/s compare equal work); the peer must get the same network and the
mapped settings; the two sides must be called interleaved and the per-pair
ratio statistics must be right (fake sides and a fake clock); the markdown must
hold the rows, ratio and load columns. Real timings are not asserted (the
machine may be loaded). End-to-end runs use the ``"tiny"`` scale; the deep
ones are ``slow`` (several compiles each).
"""

from __future__ import annotations

import dataclasses
import io
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs, testing
from jaxrl.agents import dqn, mvi, mvi_tabular, ppo
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.nets import QNetwork
from jaxrl.scripts import (
    bench,
    bench_common,
    bench_deep,
    bench_peer,
    bench_report,
    bench_tabular,
    cli,
    presets,
)

HAS_PEER = bench.peer_available()
needs_peer = pytest.mark.skipif(not HAS_PEER, reason="rejax (the peer) not installed")


@pytest.fixture(scope="module")
def garnet():
    env, params = fm.make_garnet_env(
        seed=3, num_states=9, num_actions=4, branching=3, gamma=0.9
    )
    mdp = params.mdp
    return env, params, np.asarray(mdp.P), np.asarray(mdp.R), float(mdp.gamma)


class TestNumpyMviSweeps:
    """The NumPy reference itself is tested in tests/jaxrl/test_testing.py."""

    def test_bench_reexports_the_reference(self):
        assert bench.numpy_mvi_sweeps is testing.numpy_mvi_sweeps

    @pytest.mark.parametrize(
        ("alpha", "tau", "l0"),
        [(0.9, 0.03, -1.0), (0.0, 0.5, -math.inf), (0.5, 1.0, -0.2)],
        ids=["mdqn_defaults", "soft_vi", "tight_clip"],
    )
    def test_equals_the_timed_jax_chunk(self, garnet, alpha, tau, l0):
        """The bench times ``mvi_tabular_chunk``; NumPy must do the same sweeps."""
        env, params, P, R, gamma = garnet
        sweeps, seeds = 7, 3
        config = mvi_tabular.Config(alpha=alpha, tau=tau, q=1.0, l0=l0, noise_std=0.0)
        q0 = np.random.default_rng(1).normal(size=(seeds, *R.shape)).astype(np.float32)
        keys = jax.random.split(jax.random.key(0), seeds)
        state = jax.vmap(lambda k: mvi_tabular.init(k, env, params, config))(keys)
        state = state.replace(q=jnp.asarray(q0))
        chunk = jax.jit(
            jax.vmap(bench_tabular.mvi_tabular_chunk(config, sweeps), in_axes=(0, None))
        )
        state, residuals = chunk(state, params.mdp)
        q_np, res_np = testing.numpy_mvi_sweeps(
            P, R, gamma, q0, alpha=alpha, tau=tau, l0=l0, num_sweeps=sweeps
        )
        np.testing.assert_allclose(state.q, q_np, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(residuals, res_np, rtol=2e-4, atol=2e-5)
        assert int(state.step[0]) == sweeps


class TestPeerSettings:
    def test_cartpole_preset_mapping(self):
        config = bench_deep.deep_config("mvi", "CartPole-v1", "quick")
        assert config.train_frequency == 1 and config.learning_starts == 0
        assert config.num_eval_episodes == 0 and config.iters_per_chunk == 100
        s = bench.peer_settings(config)
        shared = ("num_envs", "batch_size", "buffer_size")
        assert [s[k] for k in shared] == [getattr(config, k) for k in shared]
        assert s["total_timesteps"] == s["eval_freq"] == 100 * config.num_envs
        assert s["fill_buffer"] == config.batch_size and s["ddqn"] is False

    def test_explicit_mapping(self):
        config = mvi.minatar_config(
            num_envs=8,
            buffer_size=10_000,
            batch_size=32,
            updates_per_iter=2,
            target_update_period=1_000,
            polyak=1.0,
            train_frequency=1,
            iters_per_chunk=20,
        )
        s = bench.peer_settings(config)
        assert (s["num_envs"], s["batch_size"], s["buffer_size"]) == (8, 32, 10_000)
        assert s["num_epochs"] == 2  # 2 gradient steps per 8 env steps
        assert s["target_update_freq"] == 4_000  # 1000 updates x 8 / 2 env steps
        assert s["polyak"] == 0.0  # rejax keeps polyak * old target: hard copy
        assert s["total_timesteps"] == 160

    def test_deep_cases_start_from_the_registry_presets(self):
        for agent in ("dqn", "mvi", "ppo"):
            for env_name, name in bench_deep.DEEP_PRESETS.items():
                preset = presets.get_preset(agent, name)
                assert preset.env == env_name
                base = preset.make_config()
                config = bench_deep.deep_config(agent, env_name, "quick")
                assert (config.hidden_sizes, config.lr, config.num_envs) == (
                    base.hidden_sizes,
                    base.lr,
                    base.num_envs,
                )

    def test_dqn_minatar_uses_the_mvi_settings(self):
        ours = bench_deep.deep_config("dqn", "Breakout-MinAtar", "quick")
        theirs = bench_deep.deep_config("mvi", "Breakout-MinAtar", "quick")
        assert type(ours).__name__ == "Config" and not hasattr(ours, "alpha")
        assert bench_deep.pair_key(ours, "B", 8) == bench_deep.pair_key(theirs, "B", 8)

    def test_ppo_minatar_rollout_is_cut_for_the_peer(self):
        preset = ppo.minatar_config()
        config = bench_deep.deep_config("ppo", "Breakout-MinAtar", "quick")
        assert config.num_steps == 32 != preset.num_steps
        assert (config.conv_features, config.num_envs, config.num_minibatches) == (
            preset.conv_features,
            preset.num_envs,
            preset.num_minibatches,
        )
        adapter = bench_peer.ppo_adapter()
        if adapter is not None:
            assert adapter.peer_settings(config)["num_steps"] == 32
        assert bench_deep.env_steps_per_iter(config) == 16 * 32

    def test_minatar_replay_is_cut_for_memory(self):
        config = bench_deep.deep_config("mvi", "Breakout-MinAtar", "full")
        assert config.buffer_size == 10_000
        assert bench.peer_settings(config)["buffer_size"] == 10_000

    def test_polyak_maps_to_rejax_convention(self):
        config = mvi.cartpole_config(polyak=0.25, train_frequency=1)
        assert bench.peer_settings(config)["polyak"] == pytest.approx(0.75)

    def test_train_frequency_must_be_one(self):
        with pytest.raises(ConfigError, match="train_frequency"):
            bench.peer_settings(mvi.cartpole_config(train_frequency=4))


@needs_peer
class TestPeerHarness:
    @pytest.mark.parametrize("env_name", ["CartPole-v1", "Breakout-MinAtar"])
    def test_same_network_and_outputs(self, env_name):
        config = bench_deep.deep_config("mvi", env_name, "tiny")
        env, env_params = envs.make(env_name)
        # parameter shapes of the two whole initial states (traced, not compiled)
        ours = jax.eval_shape(
            lambda k: mvi.init(k, env, env_params, config).params, jax.random.key(0)
        )["params"]
        algo = bench_peer.make_peer(config, env_name)
        with bench_peer.quiet():
            theirs = jax.eval_shape(
                lambda k: algo.init_state(k).q_ts.params, bench_peer.peer_keys(1)[0]
            )["params"]["q"]
        assert jax.tree.map(lambda x: (x.shape, x.dtype), theirs) == jax.tree.map(
            lambda x: (x.shape, x.dtype), ours
        )
        leaves, treedef = jax.tree.flatten(ours)
        keys = jax.random.split(jax.random.key(1), len(leaves))
        ours = jax.tree.unflatten(
            treedef,
            [
                jax.random.normal(k, x.shape, x.dtype)
                for k, x in zip(keys, leaves, strict=True)
            ],
        )
        obs, _ = env.reset(jax.random.key(2), env_params)
        # the peer's module applied to OUR parameters gives our QNetwork's values
        # (to float rounding: ours computes the convolution as one matrix product)
        q_peer = algo.agent.apply({"params": {"q": ours}}, obs[None])
        q_ref = QNetwork(
            num_actions=envs.num_actions(env, env_params),
            hidden_sizes=config.hidden_sizes,
            obs_ndim=obs.ndim,
            conv_features=config.conv_features,
        ).apply({"params": ours}, obs[None])
        np.testing.assert_allclose(q_peer, q_ref, rtol=1e-5, atol=1e-5)

    def test_value_rows_do_the_peers_arithmetic(self):
        """XLA's own FLOP count of a chunk: DQN's equals the peer's, M-DQN's is ~1.2x.

        Both chunks run the same iterations at the ``quick`` settings (batch
        128), so the ratio holds whether XLA counts a loop body once or per
        trip (a branch counts as its costliest side: learning). This is
        what the CartPole rows of BENCHMARKS.md rest on: the DQN row compares
        the same work, the M-DQN row compares more work (the target network
        also runs on the current observations) against the peer's plain DQN.
        """
        env_name = "CartPole-v1"
        env, env_params = envs.make(env_name)

        def flops(compiled):
            cost = compiled.cost_analysis()
            cost = cost[0] if isinstance(cost, list) else cost
            return float(cost["flops"])

        def ours(module):
            agent = module.__name__.rsplit(".", 1)[-1]
            config = bench_deep.deep_config(agent, env_name, "quick")
            state = jax.eval_shape(
                lambda k: module.init(k, env, env_params, config), jax.random.key(0)
            )
            run = module.make_run(config, env, env_params)
            return flops(jax.jit(run).lower(state).compile()), config

        dqn_flops, config = ours(dqn)
        mvi_flops, _ = ours(mvi)
        algo = bench_peer.make_peer(config, env_name)
        with bench_peer.quiet():
            state = jax.eval_shape(algo.init_state, bench_peer.peer_keys(1)[0])
            compiled = jax.jit(lambda ts: algo.train(train_state=ts)[0]).lower(state)
            peer_flops = flops(compiled.compile())
        assert 0.9 < dqn_flops / peer_flops < 1.1, (dqn_flops, peer_flops)
        assert 1.12 < mvi_flops / peer_flops < 1.4, (mvi_flops, peer_flops)

    def test_v0_view_merges_terminated_and_truncated(self):
        env, env_params = envs.make("CartPole-v1", max_steps_in_episode=3)
        view = bench_peer.GymnaxV0View(env)
        keys = jax.random.split(jax.random.key(2), 4)
        obs, state = view.reset(keys[0], env_params)
        step = jax.jit(lambda k, s: view.step(k, s, 0, env_params))
        dones = []
        for k in keys[1:]:
            out = step(k, state)
            assert len(out) == 5
            obs, state, _, done, _ = out
            dones.append(bool(done))
        assert dones == [False, False, True]  # truncated at step 3


class FakeClock:
    """``perf_counter`` stand-in: each call returns the next scripted time."""

    def __init__(self, durations):
        # start/stop readings: 0, d0, d0 (start of next), d0 + d1, ...
        self.readings = []
        now = 0.0
        for d in durations:
            self.readings += [now, now + d]
            now += d
        self.readings.reverse()

    def __call__(self):
        return self.readings.pop()


def _recording_side(name, calls, work=10, warmups=1):
    return bench_common.Side(
        call=lambda: calls.append(name), work=work, compile_s=0.5, warmups=warmups
    )


class TestPairing:
    def test_interleaved_order_after_warmups(self):
        calls = []
        ours = _recording_side("o", calls, warmups=2)
        peer = _recording_side("p", calls, warmups=1)
        times = bench_common.interleave(
            [ours, peer], 3, clock=FakeClock([1, 2, 3, 4, 5, 6])
        )
        assert calls == ["o", "o", "p"] + ["o", "p"] * 3
        # timed calls alternate: ours got durations 1, 3, 5 and the peer 2, 4, 6
        assert times == [[1, 3, 5], [2, 4, 6]]

    def test_pair_stats_hand_computed(self):
        # ours does 10 units per call, the peer 20:
        # ours/s 10, 5, 2.5 and peer/s 10, 10, 10 -> ratios 1, 0.5, 0.25
        stats = bench_common.pair_stats([1.0, 2.0, 4.0], [2.0, 2.0, 2.0], 10, 20)
        assert stats.ratios == pytest.approx((1.0, 0.5, 0.25))
        assert stats.ratio == pytest.approx((0.5, 0.25, 1.0))
        assert stats.a_throughput == pytest.approx(5.0)
        assert stats.b_throughput == pytest.approx(10.0)

    def test_median_of_ratios_is_not_ratio_of_medians(self):
        # load spikes hit one pair at a time: per-pair ratios see them cancel
        ours, peer = [1.0, 3.0, 2.0, 8.0, 1.0], [2.0, 6.0, 2.0, 4.0, 4.0]
        stats = bench_common.pair_stats(ours, peer, 1, 1)
        assert stats.ratios == pytest.approx((2.0, 2.0, 1.0, 0.5, 4.0))
        assert stats.ratio == pytest.approx((2.0, 0.5, 4.0))
        # each side's median throughput (not paired): ours 1/2, peer 1/4
        assert (stats.a_throughput, stats.b_throughput) == pytest.approx((0.5, 0.25))

    def test_pair_stats_needs_equal_counts(self):
        with pytest.raises(ValueError, match="same positive number"):
            bench_common.pair_stats([1.0, 2.0], [1.0], 1, 1)

    def test_timed_rows_links_and_records_load(self, monkeypatch):
        loads = iter([(3.5, 2.0, 1.25)])
        monkeypatch.setattr(os, "getloadavg", lambda: next(loads))
        calls = []
        label = {"env": "E", "num_seeds": 4, "unit": "env steps/s", "pair": "k"}
        rows = bench_common.timed_rows(
            [
                {**label, "case": "dqn", "agent": "dqn"},
                {**label, "case": "peer", "agent": "P"},
            ],
            [_recording_side("o", calls, work=8), _recording_side("p", calls, work=8)],
            4,
            load_start=(1.0, 0.5, 0.25),
            clock=FakeClock([1, 2, 2, 2, 4, 2, 1, 4]),
        )
        ours, peer = rows
        assert calls == ["o", "p"] * 5
        assert ours.other is peer and peer.other is None
        assert ours.times == (1, 2, 4, 1) and peer.times == (2, 2, 2, 4)
        # ratios 2, 1, 0.5, 4 -> median 1.5, min 0.5, max 4
        assert ours.ratio == pytest.approx((1.5, 0.5, 4.0))
        assert ours.pairs == peer.pairs == 4
        assert ours.throughput == pytest.approx(6.0)  # median of 8, 4, 2, 8
        assert ours.call_s == pytest.approx(1.5) and peer.call_s == pytest.approx(2.0)
        assert ours.work_per_call == 8 and ours.compile_s == 0.5
        assert ours.load_start == peer.load_start == (1.0, 0.5, 0.25)
        assert ours.load_end == peer.load_end == (3.5, 2.0, 1.25)
        assert math.isnan(peer.ratio[0])

    def test_three_sides_against_the_middle_one(self, monkeypatch):
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        calls = []
        label = {"env": "E", "num_seeds": 4, "unit": "env steps/s", "case": "dqn"}
        sides = [_recording_side(n, calls, work=8) for n in ("o", "p", "1")]
        labels = [
            {**label, "agent": "dqn", "devices": 2},
            {**label, "agent": "P", "case": "peer"},
            {**label, "agent": "dqn"},
        ]
        ours, peer, one = bench_common.timed_rows(
            labels,
            sides,
            3,
            load_start=(0.0, 0.0, 0.0),
            against=1,
            clock=FakeClock([1, 2, 4, 2, 2, 4, 4, 2, 2]),
        )
        assert calls == ["o", "p", "1"] * 4
        assert ours.other is peer and one.other is peer and peer.other is None
        assert (ours.devices, peer.devices, one.devices) == (2, 1, 1)
        # ours/peer per pair: 2, 1, 0.5; one device/peer: 0.5, 0.5, 1
        assert ours.ratio == pytest.approx((1.0, 0.5, 2.0))
        assert one.ratio == pytest.approx((0.5, 0.5, 1.0))
        # Without a comparison side (no peer): timed in turn, no ratios.
        rows = bench_common.timed_rows(
            [labels[0], labels[2]],
            sides[::2],
            3,
            load_start=(0.0, 0.0, 0.0),
            against=None,
        )
        assert all(r.other is None and math.isnan(r.ratio[0]) for r in rows)
        with pytest.raises(ValueError, match="against=3"):
            bench_common.timed_rows(
                labels, sides, 3, load_start=(0.0, 0.0, 0.0), against=3
            )

    def test_unpaired_row(self, monkeypatch):
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        calls = []
        (row,) = bench_common.timed_rows(
            [
                {
                    "case": "vi_tabular",
                    "agent": "v",
                    "env": "G",
                    "num_seeds": 1,
                    "unit": "u",
                }
            ],
            [_recording_side("v", calls, work=6)],
            3,
            load_start=(0.0, 0.0, 0.0),
            clock=FakeClock([1, 2, 3]),
        )
        assert calls == ["v"] * 4 and row.other is None
        assert row.throughput == pytest.approx(3.0) and row.pairs == 3

    def test_load_average_and_warning(self, monkeypatch):
        monkeypatch.setattr(os, "getloadavg", lambda: (2.346, 1.0, 0.5))
        assert bench_common.load_average() == (2.35, 1.0, 0.5)
        assert bench_common.machine_info()["load"] == (2.35, 1.0, 0.5)

        def no_load():
            raise OSError

        monkeypatch.setattr(os, "getloadavg", no_load)
        assert all(math.isnan(x) for x in bench_common.load_average())
        warn = bench_common.load_warning
        assert warn("row", [(1.0, 9.0, 9.0), (2.0, 9.0, 9.0)], 2) is None
        text = warn("dqn E x8", [(1.0, 0.0, 0.0), (2.5, 0.0, 0.0)], 2)
        assert "dqn E x8" in text and "2.50" in text and "2 usable cores" in text
        assert warn("row", [(math.nan,) * 3], 2) is None

    def test_progress_line_and_warning(self, monkeypatch):
        ours, peer = _pair_rows(20_000.0, 10_000.0, load=(3.0, 2.0, 1.0))
        line = bench.row_line(ours)
        assert line.startswith("mvi CartPole-v1 x8: 20,000 env steps/s")
        assert "rejax DQN 0.1.3 10,000 env steps/s" in line
        assert "ratio 2.10x [1.50, 2.50] over 5 pairs" in line
        assert "load 1.00/1.00/1.00 -> 3.00/2.00/1.00" in line
        assert "1-minute load average 3.00 exceeds" in bench.row_warning(ours, 2)
        assert bench.row_warning(ours, 4) is None
        # a sharded row and its one-device twin are told apart, as in the progress line
        sharded = dataclasses.replace(ours, devices=2)
        assert bench.row_line(sharded).startswith("mvi CartPole-v1 x8 (2 devices): ")
        assert bench.row_warning(sharded, 2).startswith(
            "mvi CartPole-v1 x8 (2 devices): "
        )
        assert bench.row_warning(ours, 2).startswith("mvi CartPole-v1 x8: ")


def _result(case, agent, env, seeds, throughput, pair="", unit="env steps/s"):
    return bench.BenchResult(
        case=case,
        agent=agent,
        env=env,
        num_seeds=seeds,
        unit=unit,
        work_per_call=1000,
        compile_s=1.5,
        call_s=1000 / throughput,
        throughput=throughput,
        pair=pair,
        settings="s",
        times=(1000 / throughput,) * 5,
        load_start=(1.0, 1.0, 1.0),
        load_end=(1.5, 1.25, 1.0),
    )


def _pair_rows(ours_tp, peer_tp, env="CartPole-v1", seeds=8, load=(1.5, 1.25, 1.0)):
    ours = _result("mvi", "mvi", env, seeds, ours_tp, pair=env)
    peer = _result("peer", "rejax DQN 0.1.3", env, seeds, peer_tp, pair=env)
    ours.other, ours.ratio = peer, (2.1, 1.5, 2.5)
    ours.load_end = peer.load_end = load
    return ours, peer


class TestRender:
    def test_rows_ratio_and_load_columns(self):
        info = {**bench.machine_info(), "load": (0.5, 0.25, 0.75)}
        info["load_end"] = (0.75, 0.5, 0.25)
        np_row = _result("mvi_tabular", "numpy mvi", "G", 64, 3e6, "t", "backups/s")
        jax_row = _result("mvi_tabular", "mvi_tabular", "G", 64, 9e6, "t", "backups/s")
        jax_row.other, jax_row.ratio = np_row, (3.0, 2.5, 3.25)
        results = [
            _result("mvi", "mvi", "Breakout-MinAtar", 8, 500.0, pair="b"),
            *_pair_rows(20_000.0, 10_000.0),
            _result("mvi", "mvi", "CartPole-v1", 1, 2_000.0, pair="c"),
            jax_row,
            np_row,
        ]
        text = bench.render(
            results, info, "jaxrl bench --quick", ["a note"], ["row x8: too busy"]
        )
        assert "`jaxrl bench --quick`" in text and "Note: a note" in text
        assert "Warning: row x8: too busy" in text
        assert "load average at start 0.50/0.25/0.75, at end 0.75/0.50/0.25" in text
        assert "interleaved" in text and "median of the per-pair ratios" in text
        assert (
            "| agent | env | seeds | ours devices | ours steps/s (median) "
            "| peer steps/s (median) "
            "| ours/peer median [min, max] over 5 pairs | compile s (ours / peer) "
            "| load avg (1/5/15) start -> end | peer | settings |"
        ) in text
        assert (
            "| mvi | CartPole-v1 | 8 | 1 | 20,000 | 10,000 | 2.10x [1.50, 2.50] "
            "| 1.5 / 1.5 | 1.00/1.00/1.00 -> 1.50/1.25/1.00 | rejax DQN 0.1.3 | s |"
        ) in text
        assert (
            "| mvi | Breakout-MinAtar | 8 | 1 | 500 | n/a | n/a | 1.5 / n/a |" in text
        )
        assert "jax/numpy median [min, max] over 5 pairs" in text
        assert "| G | 64 | 9,000,000 | 3,000,000 | 3.00x [2.50, 3.25] | 1.5 |" in text
        assert "## All rows" in text
        assert text.count("| peer | rejax DQN 0.1.3 | CartPole-v1 | 8 | 1 |") == 1
        # the comparison table is ordered by case, env (CartPole first), seeds
        order = [
            text.index(f"| mvi | {e} | {n} | ")
            for e, n in [
                ("CartPole-v1", 1),
                ("CartPole-v1", 8),
                ("Breakout-MinAtar", 8),
            ]
        ]
        assert order == sorted(order)

    def test_sharded_row_beside_its_one_device_row(self):
        info = {**bench.machine_info(), "load": (0.5, 0.25, 0.75)}
        ours, peer = _pair_rows(30_000.0, 10_000.0)
        ours.devices = 2
        one = _result("mvi", "mvi", "CartPole-v1", 8, 15_000.0, pair="CartPole-v1")
        one.other, one.ratio = peer, (1.5, 1.25, 1.75)
        text = bench.render([ours, peer, one], info, "jaxrl bench")
        sharded_line = "| mvi | CartPole-v1 | 8 | 2 | 30,000 | 10,000 | 2.10x"
        one_line = "| mvi | CartPole-v1 | 8 | 1 | 15,000 | 10,000 | 1.50x [1.25, 1.75]"
        assert sharded_line in text and one_line in text
        assert text.index(sharded_line) < text.index(one_line)
        assert "one JAX device per usable core" in text
        assert "| mvi | mvi | CartPole-v1 | 8 | 2 | 1000 |" in text  # all rows
        assert bench.row_line(ours).startswith("mvi CartPole-v1 x8 (2 devices): 30,000")
        assert bench.row_line(one).startswith("mvi CartPole-v1 x8: 15,000")

    def test_cells(self):
        ours, peer = _pair_rows(4.0, 2.0)
        assert bench_report.ratio_cell(ours) == "2.10x [1.50, 2.50]"
        assert bench_report.ratio_cell(peer) == "n/a"
        assert bench_report.load_cell(ours) == "1.00/1.00/1.00 -> 1.50/1.25/1.00"


class TestPeers:
    def test_every_deep_case_has_a_peer(self):
        assert set(bench_peer.PEER_OF) == set(bench_deep.DEEP_ENVS)
        assert {bench_peer.PEER_OF[c] for c in ("dqn", "mvi", "mviq")} == {"dqn"}
        assert bench_peer.PEER_OF["ppo"] == "ppo"

    def test_missing_rejax_or_adapter_is_a_reason(self, monkeypatch):
        monkeypatch.setattr(bench_peer, "peer_available", lambda: False)
        assert "not installed" in bench_peer.peer_missing("mviq")
        monkeypatch.setattr(bench_peer, "peer_available", lambda: True)
        monkeypatch.setattr(bench_peer, "ppo_adapter", lambda: None)
        assert "bench_peer_ppo.py" in bench_peer.peer_missing("ppo")
        assert bench_peer.peer_missing("dqn") is None
        with pytest.raises(ConfigError, match="bench_peer_ppo.py"):
            bench_peer.peer_side("ppo", None, "CartPole-v1", 1)

    def test_mviq_uses_the_dqn_settings(self):
        ours = bench_deep.deep_config("mviq", "CartPole-v1", "quick")
        dqn = bench_deep.deep_config("dqn", "CartPole-v1", "quick")
        assert float(ours.q) == 2.0
        assert bench.peer_settings(ours) == bench.peer_settings(dqn)

    def test_ppo_config_matches_its_peer(self):
        config = bench_deep.deep_config("ppo", "CartPole-v1", "quick")
        assert config.num_chunks == 1 and config.num_eval_episodes == 0
        assert (
            config.iters_per_chunk
            == bench_common.SCALES["quick"]["ppo_iters"]["CartPole-v1"]
        )
        adapter = bench_peer.ppo_adapter()
        if adapter is not None:
            assert float(config.vf_clip_eps) == float(config.clip_eps)
            s = adapter.peer_settings(config)  # accepted as is
            assert (s["num_envs"], s["num_steps"]) == (
                config.num_envs,
                config.num_steps,
            )
        assert (
            bench_deep.env_steps_per_iter(config) == config.num_envs * config.num_steps
        )
        assert "4 epochs x 4 minibatches" in bench_deep.settings_text(config)


def _fake_vi_tabular(num_seeds, scale, pairs):
    """``bench_vi_tabular`` without compiling: one recording side."""
    label = {"case": "vi_tabular", "agent": "vi_tabular", "unit": "backups/s"}
    label |= {"env": "Garnet(S=10, A=2)", "num_seeds": num_seeds}
    return bench_common.timed_rows(
        [label],
        [_recording_side("v", [])],
        pairs,
        load_start=bench_common.load_average(),
    )[0]


class TestRunBench:
    def test_mvi_tabular_tiny_end_to_end(self, tmp_path):
        out = tmp_path / "bench.md"
        log = io.StringIO()
        results, text = bench.run_bench(
            ["mvi_tabular"], [2], scale="tiny", pairs=3, out=str(out), log=log
        )
        assert [(r.agent, r.num_seeds) for r in results] == [
            ("mvi_tabular", 2),
            ("numpy mvi", 2),
        ]
        jax_row, np_row = results
        assert jax_row.other is np_row and jax_row.pairs == np_row.pairs == 3
        med, lo, hi = jax_row.ratio
        assert 0 < lo <= med <= hi
        assert all(r.work_per_call == 2 * 3 * 12 * 3 for r in results)
        assert all(r.throughput > 0 and r.call_s > 0 for r in results)
        assert all(len(r.load_start) == len(r.load_end) == 3 for r in results)
        assert out.read_text() == text
        assert "| Garnet(S=12, A=3) | 2 |" in text
        assert "1/5/15-min load average at start" in text and ", at end " in text
        progress = log.getvalue()
        assert "load average (1/5/15 min) at start" in progress
        assert "numpy mvi" in progress and "over 3 pairs; load " in progress
        assert "load average (1/5/15 min) at end" in progress

    def test_load_above_cores_is_warned(self, monkeypatch):
        monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 50.0, 25.0))
        monkeypatch.setattr(bench, "bench_vi_tabular", _fake_vi_tabular)
        log = io.StringIO()
        _, text = bench.run_bench(
            ["vi_tabular"], [1], scale="tiny", pairs=3, out=None, log=log
        )
        assert "warning: at the start: 1-minute load average 99.00" in log.getvalue()
        assert "warning: vi_tabular Garnet(S=10, A=2) x1" in log.getvalue()
        assert "Warning: vi_tabular Garnet(S=10, A=2) x1: 1-minute load" in text
        assert "99.00/50.00/25.00 -> 99.00/50.00/25.00" in text

    def test_too_few_pairs(self):
        with pytest.raises(ConfigError, match="pairs must be at least 3"):
            bench.run_bench(["vi_tabular"], [1], scale="tiny", pairs=2, out=None)

    def test_missing_peer_is_skipped_with_a_note(self, monkeypatch):
        monkeypatch.setattr(bench, "peer_available", lambda: False)
        results, text = bench.run_bench(["peer"], [1], scale="tiny", pairs=3, out=None)
        assert results == []
        assert "rejax) is not installed" in text and "[bench]" in text

    def test_cli_quick_writes_out(self, tmp_path, capsys, monkeypatch):
        seen = []

        def fake(num_seeds, scale, pairs):
            seen.append((num_seeds, scale, pairs))
            calls = []
            label = {"case": "mvi_tabular", "env": "G", "num_seeds": num_seeds}
            label |= {"unit": "backups/s", "pair": "G"}
            return bench_common.timed_rows(
                [{**label, "agent": "mvi_tabular"}, {**label, "agent": "numpy mvi"}],
                [_recording_side("j", calls), _recording_side("n", calls)],
                pairs,
                load_start=(0.0, 0.0, 0.0),
            )

        monkeypatch.setattr(bench, "bench_mvi_tabular", fake)
        out = tmp_path / "b.md"
        argv = ["bench", "--quick", "--cases", "mvi_tabular", "--seeds", "1,4"]
        assert cli.main([*argv, "--out", str(out)]) == 0
        assert seen == [(1, "quick", 3), (4, "quick", 3)]  # --quick: 3 pairs
        text = out.read_text()
        assert capsys.readouterr().out == text
        assert "by `jaxrl bench --quick --seeds 1,4 --cases mvi_tabular`" in text
        assert "jax/numpy median [min, max] over 3 pairs" in text
        assert cli.main([*argv, "--pairs", "4", "--out", str(out)]) == 0
        assert seen[-1] == (4, "quick", 4)
        assert "--cases mvi_tabular --pairs 4`" in out.read_text()

    @pytest.mark.slow
    @pytest.mark.parametrize("env_name", ["CartPole-v1", "Breakout-MinAtar"])
    def test_deep_tiny_end_to_end(self, env_name):
        results, text = bench.run_bench(
            ["mvi", "peer"], [2], scale="tiny", pairs=3, envs_=[env_name], out=None
        )
        agents_ = [r.agent for r in results]
        assert agents_[0] == "mvi"
        if HAS_PEER:
            assert agents_[1].startswith("rejax DQN")
            assert results[0].other is results[1]
            assert results[0].pair == results[1].pair
            assert results[0].work_per_call == results[1].work_per_call
            assert f"| mvi | {env_name} | 2 |" in text and "n/a" not in text
        else:
            assert "not installed" in text

    @pytest.mark.slow
    def test_ppo_tiny_end_to_end(self):
        results, text = bench.run_bench(
            ["ppo", "peer"], [2], scale="tiny", pairs=3, out=None
        )
        assert results[0].agent == "ppo"
        if HAS_PEER and bench_peer.ppo_adapter() is not None:
            assert results[1].agent.startswith("rejax PPO")
            assert results[0].other is results[1]
            assert results[0].work_per_call == results[1].work_per_call
            assert "| ppo | CartPole-v1 | 2 |" in text and "rejax PPO" in text
        else:
            assert "have no peer" in text or "not installed" in text

    @pytest.mark.parametrize(
        ("argv", "needle"),
        [
            (["bench", "--cases", "nope"], "no benchmark for case 'nope'"),
            (["bench", "--envs", "Pong-misc"], "no deep benchmark on 'Pong-misc'"),
        ],
    )
    def test_bad_arguments_are_one_line(self, argv, needle, capsys, tmp_path):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*argv, "--out", str(tmp_path / "b.md")])
        status = exit_.value.code
        err = capsys.readouterr().err
        assert status == 2 and needle in err and len(err.strip().splitlines()) == 1


_SHARDED_BENCH_SCRIPT = """
import json
import jax
import numpy as np
from jaxrl.scripts import bench, bench_deep

out = {"devices": jax.local_device_count()}
rows, text = bench.run_bench(
    ["dqn"], [2], scale="tiny", pairs=3, envs_=["CartPole-v1"], out=None
)
out["rows"] = [(r.agent, r.devices, r.other is None) for r in rows]
out["table"] = "| dqn | CartPole-v1 | 2 | 2 |" in text and "| dqn | CartPole-v1 | 2 | 1 |" in text
two, _ = bench_deep.ours_side("dqn", "CartPole-v1", 2, "tiny")
one, _ = bench_deep.ours_side("dqn", "CartPole-v1", 2, "tiny", jax.local_devices()[:1])
for _ in range(2):
    two.call()
    one.call()
a, b = two.latest(), one.latest()
out["state_devices"] = len(a.params["params"]["head"]["kernel"].sharding.device_set)
out["side_devices"] = [two.devices, one.devices]
out["keys_equal"] = bool(np.array_equal(jax.random.key_data(a.key), jax.random.key_data(b.key)))
out["steps"] = [int(x) for x in np.asarray(a.step)] + [int(x) for x in np.asarray(b.step)]
leaves = [(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params))]
out["max_rel_diff"] = max(float(np.max(np.abs(x - y) / (1e-6 + np.abs(y)))) for x, y in leaves)
out["seeds_differ"] = bool(np.any(leaves[0][0][0] != leaves[0][0][1]))
print("RESULT " + json.dumps(out))
"""


@pytest.mark.heavy
def test_ours_shards_seeds_like_train_and_times_one_device_too():
    """On 2 CPU devices, our side spreads 2 seeds over both, the row of ours on
    one device is timed beside it, and both run the same training."""
    from tests.fresh_process import fresh_env, result, run_python

    forced = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    )
    out = result(
        run_python(
            ["-c", _SHARDED_BENCH_SCRIPT], fresh_env({"XLA_FLAGS": forced}), timeout=300
        )
    )
    assert out["devices"] == 2
    # No peer asked for: ours on both devices, then ours on one, both unpaired.
    assert out["rows"] == [["dqn", 2, True], ["dqn", 1, True]]
    assert out["table"]
    assert out["state_devices"] == 2 and out["side_devices"] == [2, 1]
    # The same seeds, iterations and updates (float32 rounding aside: sharding
    # changes the shapes XLA compiles per device).
    assert out["keys_equal"] and out["steps"][:2] == out["steps"][2:]
    assert out["steps"][0] > 0 and out["seeds_differ"]
    assert out["max_rel_diff"] < 1e-4
