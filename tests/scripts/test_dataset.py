"""End-to-end tests of ``jaxrl dataset export|import`` (scripts/dataset.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxrl import envs
from jaxrl.envs import offline
from tests.envs.offline.helpers import assert_bitwise
from tests.scripts.cli_helpers import assert_one_line_error, run_cli

needs_minari = pytest.mark.skipif(
    not offline.minari_available(), reason="optional minari/h5py not installed"
)
FOREIGN = ["--env", "CartPole-v1", "--return-random", "22", "--return-expert", "500"]


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory):
    """A saved 80-transition CartPole dataset of uniform actions; (path, dataset)."""
    env, params = envs.make("CartPole-v1")
    data = offline.collect_dataset(
        jax.random.key(3), env, params, offline.uniform_policy(env, params), 40, 2
    )
    ds = offline.make_dataset(
        data,
        env="CartPole-v1",
        kind="random",
        return_random=22.0,
        return_expert=500.0,
        policy="uniform",
        seed=3,
    )
    path = tmp_path_factory.mktemp("cli_dataset") / "random"
    offline.save_dataset(path, ds)
    return path, ds


def _foreign(obs_dim: int = 4) -> dict[str, np.ndarray]:
    """Six rows: episode 0 (rows 0-2) ends terminal, episode 1 (rows 3-5) by timeout."""
    ones = np.ones((1, obs_dim), np.float32)
    return {
        "observations": np.array([0, 1, 2, 10, 11, 12], np.float32)[:, None] * ones,
        "actions": np.array([0, 1, 0, 1, 0, 1]),
        "rewards": np.ones(6),
        "terminals": np.array([0, 0, 1, 0, 0, 0], bool),
        "timeouts": np.array([0, 0, 0, 0, 0, 1], bool),
        "next_observations": np.array([1, 2, 3, 11, 12, 13], np.float32)[:, None]
        * ones,
    }


class TestExportImport:
    def test_d4rl_round_trip(self, cartpole, tmp_path, capsys):
        src, ds = cartpole
        npz = tmp_path / "random.npz"
        status, out, err = run_cli(["dataset", "export", str(src), str(npz)], capsys)
        assert status == 0 and not err, err
        assert "wrote D4RL-style file" in out and "80 transitions" in out
        with np.load(npz) as z:
            assert {"observations", "terminals", "timeouts"} <= set(z.files)
            np.testing.assert_array_equal(z["terminals"], ds.data.terminated)
            np.testing.assert_array_equal(z["timeouts"], ds.data.truncated)
        back_dir = tmp_path / "back"
        status, out, err = run_cli(
            ["dataset", "import", str(npz), str(back_dir), "--format", "d4rl"], capsys
        )
        assert status == 0 and not err, err
        back = offline.load_dataset(back_dir, expected_env="CartPole-v1")
        assert_bitwise(back.data, ds.data)
        assert back.meta == ds.meta

    def test_foreign_file(self, tmp_path, capsys):
        npz = tmp_path / "foreign.npz"
        np.savez(npz, **_foreign())
        dest = tmp_path / "imported"
        argv = ["dataset", "import", str(npz), str(dest), *FOREIGN, "--kind", "medium"]
        status, out, err = run_cli(argv, capsys)
        assert status == 0 and not err, err
        assert "2 complete episodes" in out
        ds = offline.load_dataset(
            dest, expected_env="CartPole-v1", expected_kind="medium"
        )
        np.testing.assert_array_equal(ds.data.extras["episode_id"], [0, 0, 0, 1, 1, 1])
        np.testing.assert_array_equal(offline.episode_returns(ds)["return"], [3, 3])
        assert (ds.meta.return_random, ds.meta.return_expert) == (22.0, 500.0)

    def test_never_overwrites_without_the_flag(self, cartpole, tmp_path, capsys):
        src, _ = cartpole
        npz = tmp_path / "taken.npz"
        npz.write_bytes(b"keep me")
        argv = ["dataset", "export", str(src), str(npz)]
        status, _, err = run_cli(argv, capsys)
        assert_one_line_error(status, err, "already exists", "--overwrite")
        assert npz.read_bytes() == b"keep me"
        status, _, err = run_cli([*argv, "--overwrite"], capsys)
        assert status == 0 and not err, err
        assert offline.load_d4rl(npz).meta.kind == "random"
        # import into an existing dataset directory
        status, _, err = run_cli(["dataset", "import", str(npz), str(src)], capsys)
        assert_one_line_error(status, err, "already exists")

    @needs_minari
    def test_minari_round_trip(self, cartpole, tmp_path, capsys):
        import minari

        src, ds = cartpole
        dest = tmp_path / "minari"
        argv = ["dataset", "export", str(src), str(dest), "--format", "minari"]
        status, out, err = run_cli(argv, capsys)
        assert status == 0 and not err, err
        md = minari.MinariDataset(dest)
        assert md.total_steps == 80
        assert md.action_space.n == 2 and md.observation_space.shape == (4,)
        back_dir = tmp_path / "back"
        argv = ["dataset", "import", str(dest), str(back_dir), "--format", "minari"]
        status, out, err = run_cli(argv, capsys)
        assert status == 0 and not err, err
        back = offline.load_dataset(back_dir)
        assert_bitwise(back.data, ds.data)
        assert back.meta == ds.meta


class TestBadInput:
    @pytest.mark.parametrize(
        "arrays, extra, needles",
        [
            (_foreign(), [], ("no jaxrl metadata", "env")),
            (_foreign(obs_dim=3), FOREIGN, ("does not match", "obs")),
            (
                {k: v for k, v in _foreign().items() if k != "timeouts"},
                FOREIGN,
                ("missing key", "'timeouts'"),
            ),
            ({**_foreign(), "rewards": np.ones(5)}, FOREIGN, ("length mismatch",)),
            (
                {**_foreign(), "terminals": np.full(6, 3)},
                FOREIGN,
                ("terminals", "dtype int64"),
            ),
        ],
    )
    def test_import_errors(self, arrays, extra, needles, tmp_path, capsys):
        npz = tmp_path / "bad.npz"
        np.savez(npz, **arrays)
        dest = tmp_path / "dest"
        status, _, err = run_cli(
            ["dataset", "import", str(npz), str(dest), *extra], capsys
        )
        assert_one_line_error(status, err, *needles)
        assert not dest.exists()

    def test_not_npz_and_bad_arguments(self, tmp_path, capsys):
        text = tmp_path / "notes.txt"
        text.write_text("hello\n")
        cases = [
            (["import", str(text), str(tmp_path / "d")], ("not an .npz archive",)),
            (["export", str(tmp_path / "nope"), "x.npz"], ("not found",)),
            (
                ["import", str(text), "d", "--return-random", "abc"],
                ("expected a number",),
            ),
            (["import", str(text), "d", "--env-set", "oops"], ("name=value",)),
            (["export", "a", "b", "--format", "hdf5"], ("invalid choice",)),
            (["convert", "a", "b"], ("invalid choice",)),
        ]
        for argv, needles in cases:
            status, _, err = run_cli(["dataset", *argv], capsys)
            assert_one_line_error(status, err, *needles)

    def test_minari_missing_is_one_line(self, cartpole, tmp_path, capsys, monkeypatch):
        src, _ = cartpole
        monkeypatch.setattr(offline, "minari_available", lambda: False)
        argv = [
            "dataset",
            "export",
            str(src),
            str(tmp_path / "m"),
            "--format",
            "minari",
        ]
        status, _, err = run_cli(argv, capsys)
        assert_one_line_error(status, err, "pip install 'jaxrl[minari]'")
