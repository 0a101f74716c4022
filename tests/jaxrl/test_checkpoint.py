"""Tests for jaxrl.checkpoint: bitwise round trips; failures that delete nothing."""

from __future__ import annotations

import os
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct

from jaxrl import buffer, checkpoint
from jaxrl.errors import ConfigError
from jaxrl.transition import example

NUM_SEEDS = 3
CAPACITY = 8


@struct.dataclass
class EnvState:
    position: jax.Array
    time: jax.Array


@struct.dataclass
class TrainState:
    params: dict
    opt_state: optax.OptState
    buffer: buffer.BufferState
    env_state: EnvState
    key: jax.Array
    step: jax.Array


def _init_one(key: jax.Array) -> TrainState:
    """A miniature agent state with every kind of leaf a real one has."""
    k_params, k_data, k_state = jax.random.split(key, 3)
    params = {"w": jax.random.normal(k_params, (4, 2)), "b": jnp.zeros(2)}
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, opt_state = opt.update(grads, opt_state, params)  # non-trivial moments
    params = optax.apply_updates(params, updates)
    item = example(jnp.zeros(4, jnp.float32), jnp.int32(0), {"cost": 0.0})
    buf = buffer.init(item, CAPACITY)
    batch = jax.tree.map(lambda x: jnp.broadcast_to(x, (5, *x.shape)), item)
    batch = batch.replace(reward=jax.random.uniform(k_data, (5,), jnp.float32))
    buf = buffer.add(buf, batch)
    return TrainState(
        params=params,
        opt_state=opt_state,
        buffer=buf,
        env_state=EnvState(position=jnp.arange(3.0), time=jnp.int32(4)),
        key=k_state,
        step=jnp.int32(1),
    )


_init = jax.jit(jax.vmap(_init_one))


def _state(seed: int = 0) -> TrainState:
    return _init(jax.random.split(jax.random.key(seed), NUM_SEEDS))


def _abstract() -> TrainState:
    return jax.eval_shape(_init, jax.random.split(jax.random.key(0), NUM_SEEDS))


def _assert_bitwise_equal(a, b) -> None:
    def unwrap(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(x))
        return np.asarray(x)

    chex.assert_trees_all_equal_structs(a, b)
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype, (x.dtype, y.dtype)
        assert np.array_equal(unwrap(x), unwrap(y))


def _listing(root: pathlib.Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file()
    }


def _files_under(path: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One checkpoint root with steps 1 and 2 (written once for the module)."""
    root = tmp_path_factory.mktemp("ckpt")
    checkpoint.save(root, 1, _state(1), {"chunk": 1})
    checkpoint.save(
        root, 2, _state(2), {"config": {"lr": 0.1, "name": "mvi"}, "chunk": 2}
    )
    return root


class TestRoundTrip:
    def test_bitwise_with_concrete_target(self, saved):
        restored, meta = checkpoint.restore(saved, _state(0))
        _assert_bitwise_equal(restored, _state(2))
        assert meta == {"config": {"lr": 0.1, "name": "mvi"}, "chunk": 2}
        assert isinstance(restored, TrainState)
        assert isinstance(restored.buffer, buffer.BufferState)
        assert jnp.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
        assert jax.random.key_impl(restored.key) == jax.random.key_impl(_state(0).key)

    def test_abstract_target_and_older_step(self, saved):
        restored, meta = checkpoint.restore(saved, _abstract(), step=1)
        _assert_bitwise_equal(restored, _state(1))
        assert meta == {"chunk": 1}

    def test_restored_state_keeps_training(self, saved):
        restored, _ = checkpoint.restore(saved, _abstract())
        key = jax.random.split(restored.key[0])[0]  # typed keys usable again
        sample = buffer.sample(jax.tree.map(lambda x: x[0], restored.buffer), key, 4)
        chex.assert_shape(sample.obs, (4, 4))

    def test_no_metadata_gives_empty_dict(self, tmp_path):
        checkpoint.save(tmp_path, 0, {"x": jnp.arange(3, dtype=jnp.int32)})
        restored, meta = checkpoint.restore(tmp_path, {"x": jnp.zeros(3, jnp.int32)})
        assert meta == {}
        np.testing.assert_array_equal(restored["x"], [0, 1, 2])


class TestSteps:
    def test_latest_step(self, saved, tmp_path):
        assert checkpoint.latest_step(saved) == 2
        assert checkpoint.latest_step(tmp_path / "missing") is None
        assert checkpoint.all_steps(saved) == [1, 2]

    def test_save_is_final_when_it_returns_and_tmp_dirs_are_ignored(self, tmp_path):
        checkpoint.save(tmp_path, 3, {"x": jnp.ones(2)})
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["3"]  # renamed into place, no temporary directory left
        # A crash mid-save leaves only orbax's temporary directory: never "latest".
        (tmp_path / "9.orbax-checkpoint-tmp-1234").mkdir()
        assert checkpoint.latest_step(tmp_path) == 3

    def test_existing_step_is_not_overwritten(self, saved):
        before = _listing(saved)
        with pytest.raises(
            ConfigError, match=r"2 already exists; refusing to overwrite"
        ):
            checkpoint.save(saved, 2, _state(5))
        assert _listing(saved) == before

    def test_max_to_keep(self, tmp_path):
        for step in range(4):
            checkpoint.save(tmp_path, step, {"x": jnp.full(2, step)}, max_to_keep=2)
        assert checkpoint.all_steps(tmp_path) == [2, 3]

    def test_bad_metadata_writes_nothing(self, tmp_path):
        with pytest.raises(ConfigError, match="not JSON-serialisable"):
            checkpoint.save(tmp_path, 0, {"x": jnp.ones(2)}, {"bad": object()})
        assert not any(tmp_path.iterdir())

    def test_bad_step(self, tmp_path):
        with pytest.raises(ConfigError, match="non-negative int"):
            checkpoint.save(tmp_path, -1, {"x": jnp.ones(2)})


class TestMissing:
    def test_empty_directory(self, tmp_path):
        with pytest.raises(ConfigError, match=f"no checkpoint found in {tmp_path}"):
            checkpoint.restore(tmp_path, _abstract())

    def test_missing_step(self, saved):
        with pytest.raises(
            ConfigError, match=r"/7 not found \(available steps: \[1, 2\]\)"
        ):
            checkpoint.restore(saved, _abstract(), step=7)


class TestMismatch:
    def _check(self, saved, target, pattern):
        before = _listing(saved)
        with pytest.raises(ConfigError, match=pattern) as info:
            checkpoint.restore(saved, target)
        assert str(saved / "2") in str(info.value)
        assert "\n" not in str(info.value)
        assert _listing(saved) == before  # nothing deleted or modified

    def test_shape(self, saved):
        target = _abstract()
        obs = target.buffer.data.obs
        bad = jax.ShapeDtypeStruct((NUM_SEEDS, CAPACITY + 1, 4), obs.dtype)
        target = target.replace(
            buffer=target.buffer.replace(data=target.buffer.data.replace(obs=bad))
        )
        self._check(
            saved,
            target,
            r"leaf \.buffer\.data\.obs has shape \(3, 8, 4\) in the checkpoint, "
            r"\(3, 9, 4\) in the target",
        )

    def test_dtype(self, saved):
        target = _abstract()
        target = target.replace(step=jax.ShapeDtypeStruct((NUM_SEEDS,), jnp.float32))
        self._check(
            saved,
            target,
            r"leaf \.step has dtype int32 in the checkpoint, float32 in the target",
        )

    def test_structure(self, saved):
        target = _abstract()
        target = target.replace(
            params={**target.params, "extra": jax.ShapeDtypeStruct((2,), jnp.float32)}
        )
        self._check(saved, target, r"tree structure differs .*\.params\['extra'\]")

    def test_key_impl(self, saved):
        target = _abstract()
        rbg = jax.eval_shape(
            lambda: jax.random.split(jax.random.key(0, impl="rbg"), NUM_SEEDS)
        )
        self._check(
            saved, target.replace(key=rbg), r"leaf \.key has .* in the checkpoint"
        )


class TestCorrupt:
    @pytest.fixture
    def copy(self, saved, tmp_path):
        import shutil

        shutil.copytree(saved / "2", tmp_path / "2")
        return tmp_path

    def _check(self, root, pattern="is corrupt"):
        before = _listing(root)
        with pytest.raises(ConfigError, match=pattern) as info:
            checkpoint.restore(root, _abstract())
        assert str(root / "2") in str(info.value)
        assert "\n" not in str(info.value)
        assert _listing(root) == before

    def test_truncated_array_files(self, copy):
        for f in _files_under(copy / "2" / "state"):
            if f.stat().st_size > 0 and "_METADATA" not in f.name:
                with open(f, "r+b") as fh:
                    fh.truncate(f.stat().st_size // 2)
        self._check(copy)

    def test_garbled_array_bytes(self, copy):
        data = [f for f in _files_under(copy / "2" / "state") if f.parent.name == "d"]
        assert data
        for f in data:
            raw = bytearray(f.read_bytes())
            for i in range(len(raw) // 2, len(raw) - 1):  # flip the tail bits
                raw[i] ^= 0xFF
            f.write_bytes(bytes(raw))
        self._check(copy)

    def test_garbled_metadata(self, copy):
        meta = copy / "2" / "meta" / "metadata"
        meta.write_text(meta.read_text()[:40])
        self._check(copy, r"is corrupt or unreadable \(metadata\)")

    def test_deleted_array_directory(self, copy):
        import shutil

        shutil.rmtree(copy / "2" / "state")
        self._check(copy)


def test_no_file_left_open_for_writing_after_save(tmp_path):
    """After save returns the files are complete: later reads see the same bytes."""
    checkpoint.save(tmp_path, 0, _state(3))
    first = _listing(tmp_path)
    os.sync()
    assert _listing(tmp_path) == first
    restored, _ = checkpoint.restore(tmp_path, _abstract())
    _assert_bitwise_equal(restored, _state(3))


class TestRestoreLatestIntact:
    @pytest.fixture
    def copy(self, saved, tmp_path):
        import shutil

        for step in ("1", "2"):
            shutil.copytree(saved / step, tmp_path / step)
        return tmp_path

    @staticmethod
    def _garble(step_dir: pathlib.Path) -> None:
        data = [f for f in _files_under(step_dir / "state") if f.parent.name == "d"]
        assert data
        for f in data:
            raw = bytearray(f.read_bytes())
            for i in range(len(raw) // 2, len(raw) - 1):
                raw[i] ^= 0xFF
            f.write_bytes(bytes(raw))

    def test_newest_intact(self, saved):
        restored = checkpoint.restore_latest_intact(saved, _abstract())
        assert restored.step == 2 and restored.skipped == []
        _assert_bitwise_equal(restored.state, _state(2))
        assert restored.metadata["chunk"] == 2

    def test_corrupt_newest_falls_back_and_deletes_nothing(self, copy):
        self._garble(copy / "2")
        before = _listing(copy)
        with pytest.raises(checkpoint.CorruptCheckpointError) as info:
            checkpoint.restore(copy, _abstract())
        assert isinstance(info.value, ConfigError)
        # the reason says what is wrong, without the "checkpoint <path>" prefix
        assert info.value.reason
        assert not info.value.reason.startswith("checkpoint")
        restored = checkpoint.restore_latest_intact(copy, _abstract())
        assert restored.step == 1
        assert restored.skipped == [(2, info.value.reason)]
        _assert_bitwise_equal(restored.state, _state(1))
        assert restored.metadata == {"chunk": 1}
        assert _listing(copy) == before

    def test_all_corrupt(self, copy):
        self._garble(copy / "2")
        meta = copy / "1" / "meta" / "metadata"
        meta.write_text(meta.read_text()[:40])
        with pytest.raises(ConfigError, match="no intact checkpoint") as info:
            checkpoint.restore_latest_intact(copy, _abstract())
        text = str(info.value)
        assert "\n" not in text
        assert "step 2: " in text and "step 1: metadata unreadable" in text

    def test_mismatch_is_not_skipped(self, saved):
        target = _abstract()
        target = target.replace(step=jax.ShapeDtypeStruct((NUM_SEEDS,), jnp.float32))
        with pytest.raises(ConfigError, match="does not match") as info:
            checkpoint.restore_latest_intact(saved, target)
        assert not isinstance(info.value, checkpoint.CorruptCheckpointError)
        assert str(saved / "2") in str(info.value)

    def test_no_checkpoint(self, tmp_path):
        with pytest.raises(ConfigError, match="no checkpoint found"):
            checkpoint.restore_latest_intact(tmp_path, _abstract())


@pytest.fixture
def failing_commit(monkeypatch):
    """Make orbax's background commit fail with ENOSPC (after the files are
    written, before the rename): patches a private orbax function."""
    from orbax.checkpoint._src.checkpointers import async_checkpointer

    real = async_checkpointer._background_wait_for_commit_futures

    def fail(directory, commit_futures, on_commit_callback, **kwargs):
        def no_space():
            raise OSError(28, "No space left on device")

        return real(directory, commit_futures, no_space, **kwargs)

    monkeypatch.setattr(async_checkpointer, "_background_wait_for_commit_futures", fail)


class TestCheckpointWriter:
    def test_async_saves_restore_bitwise_and_keep_n(self, saved, tmp_path):
        import shutil

        shutil.copytree(saved / "1", tmp_path / "1")  # an earlier step counts too
        with checkpoint.CheckpointWriter(tmp_path, max_to_keep=2) as writer:
            assert writer.async_save
            for step in (2, 3, 4):
                writer.save(step, _state(step), {"chunk": step})
        assert checkpoint.all_steps(tmp_path) == [3, 4]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["3", "4"]
        for step in (3, 4):
            restored, meta = checkpoint.restore(tmp_path, _abstract(), step)
            _assert_bitwise_equal(restored, _state(step))
            assert meta == {"chunk": step}

    def test_garbled_async_step_is_detected(self, tmp_path):
        with checkpoint.CheckpointWriter(tmp_path) as writer:
            writer.save(1, _state(1))
            writer.save(2, _state(2))
        TestRestoreLatestIntact._garble(tmp_path / "2")
        with pytest.raises(checkpoint.CorruptCheckpointError, match="is corrupt"):
            checkpoint.restore(tmp_path, _abstract())
        restored = checkpoint.restore_latest_intact(tmp_path, _abstract())
        assert restored.step == 1 and [s for s, _ in restored.skipped] == [2]

    def test_failed_background_save_is_one_line(self, tmp_path, failing_commit, caplog):
        checkpoint.save(tmp_path, 1, _state(1))
        writer = checkpoint.CheckpointWriter(tmp_path, max_to_keep=1)
        writer.save(2, _state(2))  # returns; the failure comes from the background
        with pytest.raises(checkpoint.CheckpointSaveError) as info:
            writer.wait()
        writer.close()
        text = str(info.value)
        assert isinstance(info.value, ConfigError) and info.value.step == 2
        assert "\n" not in text and str(tmp_path / "2") in text
        assert "No space left on device" in text
        # Nothing pruned, the unfinished step ignored, orbax's tracebacks muted.
        assert checkpoint.all_steps(tmp_path) == [1]
        assert not [r for r in caplog.records if "orbax" in r.pathname]

    def test_interrupt_still_finishes_the_save(self, tmp_path):
        with pytest.raises(KeyboardInterrupt):
            with checkpoint.CheckpointWriter(tmp_path) as writer:
                writer.save(1, _state(1), {"chunk": 1})
                raise KeyboardInterrupt
        restored, meta = checkpoint.restore(tmp_path, _abstract(), 1)
        _assert_bitwise_equal(restored, _state(1))
        assert meta == {"chunk": 1}

    def test_bad_requests(self, tmp_path):
        with pytest.raises(ConfigError, match="max_to_keep"):
            checkpoint.CheckpointWriter(tmp_path, max_to_keep=0)
        with checkpoint.CheckpointWriter(tmp_path) as writer:
            writer.save(1, {"x": jnp.ones(2)})
            with pytest.raises(ConfigError, match="refusing to overwrite"):
                writer.wait() or writer.save(1, {"x": jnp.zeros(2)})
        with pytest.raises(ConfigError, match="closed"):
            writer.save(2, {"x": jnp.ones(2)})
