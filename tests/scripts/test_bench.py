"""Tests for ``jaxrl bench`` (scripts/bench*.py): equal work on both sides of each comparison, output.

The NumPy M-VI loop must compute the same tables as the jax chunk that is timed
(so backups/s compare equal work); the peer must get the same network and the
mapped settings; the markdown must hold the rows and ratio columns. Timings
themselves are not asserted (the machine may be loaded). End-to-end runs use
the ``"tiny"`` scale; the deep ones are ``slow`` (several compiles each).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import envs, testing
from jaxrl.agents import mvi, mvi_tabular
from jaxrl.envs import finite_mdp as fm
from jaxrl.errors import ConfigError
from jaxrl.nets import QNetwork
from jaxrl.scripts import bench, bench_deep, bench_peer, bench_tabular, cli, presets

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
        for agent in ("dqn", "mvi"):
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
        q_peer = algo.agent.apply({"params": {"q": ours}}, obs[None])
        q_ref = QNetwork(
            num_actions=envs.num_actions(env, env_params),
            hidden_sizes=config.hidden_sizes,
            obs_ndim=obs.ndim,
            conv_features=config.conv_features,
        ).apply({"params": ours}, obs[None])
        np.testing.assert_array_equal(q_peer, q_ref)

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
    )


class TestRender:
    def test_rows_and_ratio_columns(self):
        info = bench.machine_info()
        results = [
            _result("mvi", "mvi", "Breakout-MinAtar", 8, 500.0, pair="b"),
            _result("mvi", "mvi", "CartPole-v1", 8, 20_000.0, pair="a"),
            _result("peer", "rejax DQN 0.1.3", "CartPole-v1", 8, 10_000.0, pair="a"),
            _result("mvi", "mvi", "CartPole-v1", 1, 2_000.0, pair="c"),
            _result("mvi_tabular", "mvi_tabular", "G", 64, 9e6, "t", "backups/s"),
            _result("mvi_tabular", "numpy mvi", "G", 64, 3e6, "t", "backups/s"),
        ]
        text = bench.render(results, info, "jaxrl bench --quick", ["a note"])
        assert "`jaxrl bench --quick`" in text and "Note: a note" in text
        assert "| agent | env | seeds | ours env steps/s | peer env steps/s |" in text
        assert "| mvi | CartPole-v1 | 8 | 20,000 | 10,000 | 2.00x |" in text
        assert "| mvi | Breakout-MinAtar | 8 | 500 | n/a | n/a |" in text
        assert "| G | 64 | 9,000,000 | 3,000,000 | 3.00x |" in text
        assert "jax/numpy" in text and "## All rows" in text
        assert text.count("| peer | rejax DQN 0.1.3 | CartPole-v1 | 8 |") == 1
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


class TestRunBench:
    def test_mvi_tabular_tiny_end_to_end(self, tmp_path):
        out = tmp_path / "bench.md"
        results, text = bench.run_bench(
            ["mvi_tabular"], [2], scale="tiny", repeats=1, out=str(out), log=None
        )
        assert [(r.agent, r.num_seeds) for r in results] == [
            ("mvi_tabular", 2),
            ("numpy mvi", 2),
        ]
        assert all(r.work_per_call == 2 * 3 * 12 * 3 for r in results)
        assert all(r.throughput > 0 and r.call_s > 0 for r in results)
        assert out.read_text() == text
        assert "| Garnet(S=12, A=3) | 2 |" in text

    def test_missing_peer_is_skipped_with_a_note(self, monkeypatch):
        monkeypatch.setattr(bench, "peer_available", lambda: False)
        results, text = bench.run_bench(
            ["peer"], [1], scale="tiny", repeats=1, out=None
        )
        assert results == []
        assert "rejax) is not installed" in text and "[bench]" in text

    @pytest.mark.slow
    @pytest.mark.parametrize("env_name", ["CartPole-v1", "Breakout-MinAtar"])
    def test_deep_tiny_end_to_end(self, env_name):
        results, text = bench.run_bench(
            ["mvi", "peer"], [2], scale="tiny", repeats=1, envs_=[env_name], out=None
        )
        agents_ = [r.agent for r in results]
        assert agents_[0] == "mvi"
        if HAS_PEER:
            assert agents_[1].startswith("rejax DQN")
            assert results[0].pair == results[1].pair
            assert results[0].work_per_call == results[1].work_per_call
            assert f"| mvi | {env_name} | 2 |" in text and "n/a" not in text
        else:
            assert "not installed" in text

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
