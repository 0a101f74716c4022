"""End-to-end tests of ``python -m jaxrl.scripts.make_datasets`` (reduced and tiny budgets).

Every written CartPole transition is checked against a NumPy implementation of
the CartPole dynamics (Barto, Sutton and Anderson 1983, the equations gymnax
implements): ``next_obs`` must be one Euler step from ``obs`` under ``action``,
so no pair straddles an auto-reset, and ``terminated`` must match the
position/angle bounds.
"""

from __future__ import annotations

import io
import json
import math
import os
import pathlib

import jax
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import offline
from jaxrl.errors import ConfigError
from jaxrl.scripts import make_datasets as md


def _cartpole_step(
    obs: np.ndarray, action: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One CartPole step in float64: ``(next_obs [N, 4], terminated [N])``."""
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masscart + masspole
    polemass_length = masspole * length
    x, x_dot, theta, theta_dot = (obs[:, i].astype(np.float64) for i in range(4))
    force = force_mag * (2.0 * action - 1.0)
    cos, sin = np.cos(theta), np.sin(theta)
    temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
    theta_acc = (gravity * sin - cos * temp) / (
        length * (4.0 / 3.0 - masspole * cos**2 / total_mass)
    )
    x_acc = temp - polemass_length * theta_acc * cos / total_mass
    nxt = np.stack(
        [
            x + tau * x_dot,
            x_dot + tau * x_acc,
            theta + tau * theta_dot,
            theta_dot + tau * theta_acc,
        ],
        axis=1,
    )
    bound = 12 * 2 * math.pi / 360
    terminated = (np.abs(nxt[:, 0]) > 2.4) | (np.abs(nxt[:, 2]) > bound)
    return nxt, terminated


def _check_cartpole_dynamics(ds: offline.Dataset) -> None:
    data = ds.data
    obs, next_obs = np.asarray(data.obs), np.asarray(data.next_obs)
    want, terminated = _cartpole_step(obs, np.asarray(data.action))
    np.testing.assert_allclose(next_obs, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(data.terminated), terminated)
    np.testing.assert_array_equal(np.asarray(data.reward), 1.0)


def _json(path: str):
    return json.loads(pathlib.Path(path).read_text())


def _load_all(out: str, env: str, kinds) -> dict[str, offline.Dataset]:
    e, p = envs.make(env)
    example = offline.example_item(e, p)
    return {
        k: offline.load_dataset(
            os.path.join(out, env, k),
            expected_env=env,
            expected_kind=k,
            example=example,
        )
        for k in kinds
    }


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    """A reduced CartPole run: 20,000 training steps, 1,000-transition datasets."""
    out = str(tmp_path_factory.mktemp("datasets"))
    log = io.StringIO()
    result = md.make_datasets(
        "tiny",
        env_names=["CartPole-v1"],
        out=out,
        dataset_size=1_000,
        train_env_steps=20_000,
        expert_episodes=2,
        log=log,
    )
    return out, result, log.getvalue()


@pytest.mark.heavy
class TestTrainedKinds:
    def test_all_kinds_written_and_loadable(self, cartpole_run):
        out, result, _ = cartpole_run
        sets = _load_all(out, "CartPole-v1", md.TRAINED_KINDS)
        assert {r["kind"] for r in result["datasets"]} == set(md.TRAINED_KINDS)
        refs = _json(os.path.join(out, "CartPole-v1", "references.json"))
        for ds in sets.values():
            assert ds.meta.return_random == refs["return_random"]
            assert ds.meta.return_expert == refs["return_expert"]
            assert ds.meta.seed == 0
            _check_cartpole_dynamics(ds)
        # Random CartPole returns about 22 per episode.
        assert 15 < refs["return_random"] < 30
        for kind in ("random", "medium", "expert"):
            assert sets[kind].meta.num_transitions == 1_000

    def test_mixtures_and_splits(self, cartpole_run):
        out, _, _ = cartpole_run
        sets = _load_all(out, "CartPole-v1", md.TRAINED_KINDS)
        med, exp = sets["medium"], sets["expert"]
        me = sets["medium-expert"]
        assert (
            me.meta.num_transitions
            == med.meta.num_transitions + exp.meta.num_transitions
        )
        assert me.meta.num_episodes == med.meta.num_episodes + exp.meta.num_episodes
        np.testing.assert_array_equal(
            me.data.obs, np.concatenate([med.data.obs, exp.data.obs])
        )
        one = sets["expert-1traj"]
        assert one.meta.num_episodes == 1
        first = offline.episode_returns(exp)["return"][0]
        assert offline.episode_returns(one)["return"].tolist() == [first]
        for base in ("random", "medium"):
            mixed = sets[f"{base}-plus-expert"]
            flag = np.asarray(mixed.data.extras[offline.IS_EXPERT])
            n = sets[base].meta.num_transitions
            assert not flag[:n].any() and flag[n:].all()
            assert mixed.meta.num_episodes == sets[base].meta.num_episodes + 2
            # The added expert episodes are the 2nd and 3rd of the expert data.
            np.testing.assert_array_equal(
                offline.episode_returns(mixed)["return"][-2:],
                offline.episode_returns(exp)["return"][1:3],
            )

    def test_medium_replay_is_the_training_stream(self, cartpole_run):
        out, _, _ = cartpole_run
        training = _json(os.path.join(out, "CartPole-v1", "training.json"))
        config = training["config"]
        assert config["iters_per_chunk"] * config["num_envs"] <= config["buffer_size"]
        assert (
            config["num_chunks"] * config["iters_per_chunk"] * config["num_envs"]
            == 20_000
        )
        medium, expert = training["medium_chunk"], training["expert_chunk"]
        assert medium <= expert
        replay = _load_all(out, "CartPole-v1", ["medium-replay"])["medium-replay"]
        per_chunk = config["iters_per_chunk"] * config["num_envs"]
        assert replay.meta.num_transitions == (medium + 1) * per_chunk
        # Every stream starts at a reset (timestep 0) of the training envs.
        ts = np.asarray(replay.data.extras[offline.TIMESTEP])
        streams = ts.reshape(config["num_envs"], -1)
        np.testing.assert_array_equal(streams[:, 0], 0)
        assert np.abs(np.asarray(replay.data.obs)[:: streams.shape[1]]).max() <= 0.05
        assert "medium snapshot" in replay.meta.policy

    def test_snapshot_selection(self, cartpole_run):
        out, _, _ = cartpole_run
        training = _json(os.path.join(out, "CartPole-v1", "training.json"))
        refs = _json(os.path.join(out, "CartPole-v1", "references.json"))
        quick = [s["eval_return"] for s in training["snapshots"]]
        n = md.BUDGETS["tiny"].candidates
        # Expert: the best re-scored of the n best quick scores.
        experts = {int(i): r for i, r in training["expert_candidates"].items()}
        assert sorted(experts) == offline.expert_candidates(quick, n)
        assert min(quick[i] for i in experts) >= sorted(quick)[-n]
        expert = training["expert_chunk"]
        assert experts[expert] == max(experts.values())
        # Medium: re-scored candidates before the expert, closest to the target.
        target = refs["return_random"] + 0.4 * (
            refs["return_expert"] - refs["return_random"]
        )
        assert training["medium_target_return"] == pytest.approx(target)
        mediums = {int(i): r for i, r in training["medium_candidates"].items()}
        assert all(i < expert for i in mediums) and len(mediums) == n
        medium = training["medium_chunk"]
        assert medium <= expert
        closest = offline.pick_medium(mediums, expert, target)
        span = refs["return_expert"] - refs["return_random"]
        band = [refs["return_random"] + f / 100 * span for f in offline.MEDIUM_BAND]
        grid = training["medium_fallback_grid"]
        if band[0] <= mediums[closest] <= band[1]:
            # A snapshot scored within the band: it is the medium policy.
            assert grid is None and medium == closest
            assert training["medium_uniform_action_probability"] == 0.0
            want_return = mediums[closest]
        else:
            # Fallback: the first snapshot reaching the target, its actions
            # mixed with uniform ones at the grid point closest to the target.
            assert medium == offline.first_reaching(quick, expert, target)
            j = int(np.argmin(np.abs(np.asarray(grid["return"]) - target)))
            p = grid["probability"][j]
            assert training["medium_uniform_action_probability"] == p
            want_return = grid["return"][j]
            assert grid["probability"][0] == 0.0 and grid["probability"][-1] == 1.0
        assert training["medium_return"] == want_return
        ds = _load_all(out, "CartPole-v1", ["medium"])["medium"]
        assert dict(ds.meta.info)["snapshot_eval_return"] == want_return
        assert dict(ds.meta.info)["snapshot_chunk"] == medium

    def test_summary(self, cartpole_run):
        out, result, log = cartpole_run
        rows = _json(os.path.join(out, "summary.json"))
        assert len(rows) == len(md.TRAINED_KINDS) == len(result["datasets"])
        text = pathlib.Path(out, "summary.md").read_text()
        assert "| CartPole-v1 | medium-replay |" in text
        assert "wrote medium-replay" in log

    def test_existing_datasets_need_overwrite(self, cartpole_run):
        out, _, _ = cartpole_run
        with pytest.raises(ConfigError, match="already exist.*--overwrite"):
            md.make_datasets("tiny", env_names=["CartPole-v1"], out=out)


_SCRIPTED_PENDULUM = md.EnvPlan(env="Pendulum-v1", scripted="pendulum-swingup-pd")


def _pendulum_step(obs: np.ndarray, action: np.ndarray) -> np.ndarray:
    """One gymnax Pendulum-v1 step in float64 (g=10, m=l=1, dt=0.05, |u|<=2)."""
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    vel = obs[:, 2].astype(np.float64)
    u = np.clip(action[:, 0].astype(np.float64), -2.0, 2.0)
    new_vel = np.clip(vel + (3 * 10.0 / 2 * np.sin(theta) + 3.0 * u) * 0.05, -8, 8)
    new_theta = theta + new_vel * 0.05
    return np.stack([np.cos(new_theta), np.sin(new_theta), new_vel], axis=1)


def _check_pendulum_dynamics(ds: offline.Dataset) -> None:
    data = ds.data
    want = _pendulum_step(np.asarray(data.obs), np.asarray(data.action))
    np.testing.assert_allclose(np.asarray(data.next_obs), want, atol=2e-4)
    assert not np.asarray(data.terminated).any()  # time limit only
    action = np.asarray(data.action)
    assert action.dtype == np.float32 and action.shape[1:] == (1,)
    assert np.all(np.abs(action) <= 2.0)


def _refused_trainer(key, env, env_params, plan, budget_name, budget, **kw):
    """A stand-in trainer whose every snapshot is far worse than random actions."""
    del key, env, env_params, plan, budget_name, budget, kw
    snaps = [md.Snapshot(c, 100 * (c + 1), -1e6, None) for c in range(3)]
    return md.TrainingRun(
        agent="sac",
        description="refused",
        behaviour=lambda params: None,
        behaviour_label="none",
        evaluate=lambda params, k: -1e6,
        snapshots=snaps,
        replay=None,
        config={},
    )


class TestScripted:
    def test_pendulum(self, tmp_path, monkeypatch):
        monkeypatch.setitem(md.CATALOGUE, "Pendulum-v1", _SCRIPTED_PENDULUM)
        log = io.StringIO()
        md.make_datasets(
            "tiny",
            env_names=["Pendulum-v1"],
            out=str(tmp_path),
            dataset_size=1_000,
            expert_episodes=3,
            log=log,
        )
        text = log.getvalue()
        assert "cannot be produced" in text
        for kind in ("medium", "expert", "medium-replay"):
            assert not (tmp_path / "Pendulum-v1" / kind).exists()
        sets = _load_all(str(tmp_path), "Pendulum-v1", md.SCRIPTED_KINDS)
        expert = sets["scripted-expert"]
        assert "hand-written" in expert.meta.policy
        assert dict(expert.meta.info)["expert_reference"] == "scripted"
        assert expert.data.action.dtype == np.float32 and expert.data.action.shape[
            1:
        ] == (1,)
        # The controller swings up and balances: far better than uniform actions.
        r_random, r_expert = expert.meta.return_random, expert.meta.return_expert
        assert r_random < -900 and r_expert > -300
        scores = {
            k: float(
                np.mean(
                    offline.normalized_score(offline.episode_returns(d)["return"], d)
                )
            )
            for k, d in sets.items()
            if k in ("random", "scripted-medium", "scripted-expert")
        }
        assert scores["random"] < scores["scripted-medium"] < scores["scripted-expert"]
        assert sets["random-plus-scripted-expert"].meta.num_episodes == 5 + 3
        _check_pendulum_dynamics(sets["scripted-expert"])

    def test_refused_agent_falls_back_to_the_controller(self, tmp_path, monkeypatch):
        monkeypatch.setitem(md.TRAINERS, "sac", _refused_trainer)
        log = io.StringIO()
        md.make_datasets(
            "tiny",
            env_names=["MountainCarContinuous-v0"],
            out=str(tmp_path),
            dataset_size=2_000,
            expert_episodes=1,
            log=log,
        )
        text = log.getvalue()
        assert "did not learn" in text and "cannot be produced" in text
        root = tmp_path / "MountainCarContinuous-v0"
        for kind in ("medium", "expert", "medium-replay"):
            assert not (root / kind).exists()
        refs = _json(str(root / "references.json"))
        assert refs["expert_reference"] == "scripted"
        sets = _load_all(
            str(tmp_path), "MountainCarContinuous-v0", ["random", "scripted-expert"]
        )
        # Uniform actions cost about 0.1/3 per step for 999 steps and almost
        # never reach the goal; the controller reaches it (+100).
        assert -40 < refs["return_random"] < -25 and refs["return_expert"] > 50
        assert "hand-written" in sets["scripted-expert"].meta.policy
        # A second run needs --overwrite for the scripted kinds too.
        with pytest.raises(ConfigError, match="already exist"):
            md.make_datasets(
                "tiny", env_names=["MountainCarContinuous-v0"], out=str(tmp_path)
            )


class TestParts:
    def test_an_agent_no_better_than_random_is_refused(self):
        refs = {"return_random": 22.0, "return_expert": 21.0}
        with pytest.raises(ConfigError, match="did not learn"):
            md._check_learned("CartPole-v1", refs, 30.0)
        refs = {"return_random": 22.0, "return_expert": 200.0}
        with pytest.raises(ConfigError, match="no better than uniform"):
            md._check_learned("CartPole-v1", refs, 22.0)
        md._check_learned("CartPole-v1", refs, 210.0)

    def test_full_budget_minatar_plays_with_sticky_actions(self):
        from jaxrl.envs import StickyActions

        plan = md.budget_plan(md.CATALOGUE["Breakout-MinAtar"], "full")
        assert plan.env_kwargs == {"sticky_action_prob": 0.1}
        env, params = envs.make(plan.env, **plan.env_kwargs)
        assert isinstance(env, StickyActions)
        assert float(params.sticky_action_prob) == pytest.approx(0.1)
        for budget in ("tiny", "small"):  # unchanged, as the mvi-minatar table
            same = md.budget_plan(md.CATALOGUE["Breakout-MinAtar"], budget)
            assert same.env_kwargs == {}
        pendulum = md.CATALOGUE["Pendulum-v1"]
        assert md.budget_plan(pendulum, "full") is pendulum

    def test_rechunk_fits_the_buffer(self):
        from jaxrl.scripts import presets

        config = presets.get_preset("dqn", "cartpole").make_config()
        new = md._rechunk(config, 50, None)
        assert new.iters_per_chunk * new.num_envs <= new.buffer_size
        assert (
            new.num_chunks * new.iters_per_chunk
            == config.num_chunks * config.iters_per_chunk
        )
        assert new.num_chunks >= 50 and new.num_eval_episodes == 0


class TestCommandLine:
    def test_help_names_what_cannot_be_produced(self, capsys):
        with pytest.raises(SystemExit) as info:
            md.main(["--help"])
        assert info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "CANNOT be produced" in text and "scripted-expert" in text
        assert "SAC" in text and "stand still" in text

    @pytest.mark.parametrize(
        "argv, message",
        [
            (["--budget", "huge"], "invalid choice"),
            (["--envs", "Nope-v0"], "no dataset plan for Nope-v0"),
            (["--medium-fraction", "2"], "in [0, 1]"),
            (["--dataset-size", "0"], "positive integer"),
        ],
    )
    def test_bad_arguments_one_line(self, argv, message, capsys, tmp_path):
        status = md.main([*argv, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert status == 2 and message in err and err.count("\n") == 1
        assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_tiny_budget_end_to_end(tmp_path):
    """The full tiny budget: DQN on CartPole, 100k steps, 10k-transition datasets."""
    result = md.make_datasets("tiny", out=str(tmp_path), log=io.StringIO())
    sets = _load_all(str(tmp_path), "CartPole-v1", md.TRAINED_KINDS)
    assert {r["kind"] for r in result["datasets"]} == set(md.TRAINED_KINDS)
    score = {
        k: float(
            np.mean(offline.normalized_score(offline.episode_returns(d)["return"], d))
        )
        for k, d in sets.items()
    }
    assert score["expert"] > 80
    assert score["random"] < score["medium"] < score["expert"]
    assert 20 < score["medium"] < 65
    for ds in sets.values():
        _check_cartpole_dynamics(ds)


class TestSac:
    def test_continuous_envs_are_trained_with_sac(self):
        for env in ("Pendulum-v1", "MountainCarContinuous-v0"):
            plan = md.CATALOGUE[env]
            assert plan.agent == "sac" and md.TRAINERS["sac"] is md.train_sac
            assert plan.scripted in offline.CONTROLLERS  # the fallback
            for budget in ("small", "full"):
                from jaxrl.scripts import presets

                preset = presets.get_preset("sac", plan.presets[budget])
                assert preset.env == env
        assert "Pendulum-v1" in md.BUDGETS["small"].envs

    @pytest.mark.slow
    def test_train_sac_snapshots_and_replay(self):
        """Four SAC compilations (about a minute on a loaded 2-core CPU)."""
        env, params = envs.make("Pendulum-v1")
        plan = md.EnvPlan(
            env="Pendulum-v1", agent="sac", presets={"tiny": "pendulum-tiny"}
        )
        budget = md.dataclasses.replace(
            md.BUDGETS["tiny"], snapshots=3, snapshot_episodes=2, eval_episodes=2
        )
        run = md.train_sac(
            jax.random.key(0), env, params, plan, "tiny", budget,
            epsilon=0.05, train_env_steps=60, log=io.StringIO(),
        )  # fmt: skip
        assert run.agent == "sac" and "stochastic" in run.behaviour_label
        assert [s.env_steps for s in run.snapshots] == [20, 40, 60]
        assert len(run.replay) == 3
        for chunk in run.replay:
            assert chunk.action.shape == (10, 2, 1)
            assert chunk.action.dtype == np.float32
            assert np.all(np.abs(chunk.action) <= 2.0)
        # Chunks are consecutive: the second starts where the first stopped.
        np.testing.assert_array_equal(run.replay[1].obs[0], run.replay[0].next_obs[-1])
        policy = run.behaviour(run.snapshots[-1].params)
        obs = np.zeros((500, 3), np.float32)
        a = np.asarray(policy(jax.random.key(1), obs))
        assert a.shape == (500, 1) and np.all(np.abs(a) <= 2.0) and a.std() > 0.1
        assert np.isfinite(run.evaluate(run.snapshots[-1].params, jax.random.key(2)))


@pytest.mark.slow
def test_pendulum_sac_datasets(tmp_path):
    """SAC-trained Pendulum datasets: all trained kinds, true dynamics, scores."""
    log = io.StringIO()
    result = md.make_datasets(
        "small",
        env_names=["Pendulum-v1"],
        out=str(tmp_path),
        dataset_size=4_000,
        expert_episodes=3,
        log=log,
    )
    assert {r["kind"] for r in result["datasets"]} == set(md.TRAINED_KINDS)
    sets = _load_all(str(tmp_path), "Pendulum-v1", md.TRAINED_KINDS)
    for ds in sets.values():
        _check_pendulum_dynamics(ds)
    refs = _json(str(tmp_path / "Pendulum-v1" / "references.json"))
    assert refs["expert_reference"] == "trained"
    assert refs["return_random"] < -900 and refs["return_expert"] > -300
    score = {
        k: float(
            np.mean(offline.normalized_score(offline.episode_returns(d)["return"], d))
        )
        for k, d in sets.items()
    }
    assert score["expert"] > 80
    assert score["random"] < score["medium"] < score["expert"]
    assert 15 < score["medium"] < 70
