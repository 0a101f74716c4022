"""Tests for jaxrl.logging: atomic writers, the JSON-lines appender, rows, progress."""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import stat

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrl import logging as jlog


class TestWriteAtomic:
    def test_json_roundtrip_and_nan(self, tmp_path):
        path = tmp_path / "sub" / "x.json"
        jlog.write_json_atomic(
            path, {"a": np.float32(1.5), "b": jnp.arange(3), "c": float("nan")}
        )
        assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None}

    @pytest.mark.parametrize("writer", ["jsonl", "csv", "json"])
    def test_failure_midway_keeps_old_file(self, tmp_path, writer):
        path = tmp_path / f"x.{writer}"
        old_rows = [{"seed": 0, "iter": 0, "r": 1.0}]
        fns = {
            "jsonl": jlog.write_jsonl_atomic,
            "csv": jlog.write_csv_atomic,
            "json": lambda p, rows: jlog.write_json_atomic(p, list(rows)),
        }
        fns[writer](path, old_rows)
        before = path.read_bytes()

        def rows():
            yield {"seed": 1, "iter": 0, "r": 2.0}
            yield {"seed": 1, "iter": 1, "r": 3.0}
            raise RuntimeError("disk on fire")

        with pytest.raises(RuntimeError, match="disk on fire"):
            fns[writer](path, rows())
        assert path.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == [path.name]  # temp file cleaned up

    def test_jsonl_content(self, tmp_path):
        rows = [{"seed": 0, "iter": i, "x": i * 0.5} for i in range(3)]
        jlog.write_jsonl_atomic(tmp_path / "m.jsonl", rows)
        lines = (tmp_path / "m.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == rows
        assert jlog.read_jsonl(tmp_path / "m.jsonl") == rows

    def test_csv_union_of_columns(self, tmp_path):
        jlog.write_csv_atomic(
            tmp_path / "t.csv", [{"a": 1, "b": 2.5}, {"a": 2, "c": "z"}]
        )
        with open(tmp_path / "t.csv", newline="") as f:
            got = list(csv.DictReader(f))
        assert got == [{"a": "1", "b": "2.5", "c": ""}, {"a": "2", "b": "", "c": "z"}]


class TestJsonlAppender:
    def test_append_keeps_previous_rows(self, tmp_path):
        path = tmp_path / "m.jsonl"
        log = jlog.JsonlAppender(path, fresh=True)
        log.append([{"iter": 0, "v": 1.0}, {"iter": 1, "v": 2.0}])
        first = path.read_bytes()
        log.append([{"iter": 2, "v": 3.0}])
        assert path.read_bytes().startswith(first)
        assert [r["iter"] for r in jlog.read_jsonl(path)] == [0, 1, 2]
        # Reopening without `fresh` continues the same file.
        again = jlog.JsonlAppender(path)
        again.append([{"iter": 3, "v": 4.0}])
        assert [r["iter"] for r in jlog.read_jsonl(path)] == [0, 1, 2, 3]
        assert len(again) == 4

    def test_failed_append_leaves_file(self, tmp_path):
        path = tmp_path / "m.jsonl"
        log = jlog.JsonlAppender(path, fresh=True)
        log.append([{"iter": 0}])
        before = path.read_bytes()
        with pytest.raises(TypeError):
            log.append([{"iter": 1}, {"iter": object()}])
        assert path.read_bytes() == before
        log.append([{"iter": 1}])
        assert [r["iter"] for r in jlog.read_jsonl(path)] == [0, 1]

    def test_keep_drops_rows_after_resume_point(self, tmp_path):
        path = tmp_path / "m.jsonl"
        jlog.write_jsonl_atomic(path, [{"iter": i} for i in range(6)])
        log = jlog.JsonlAppender(path, keep=lambda r: r["iter"] < 4)
        assert [r["iter"] for r in jlog.read_jsonl(path)] == [0, 1, 2, 3]
        log.append([{"iter": 4}])
        assert [r["iter"] for r in jlog.read_jsonl(path)] == [0, 1, 2, 3, 4]

    def test_unterminated_tail_is_ignored(self, tmp_path):
        path = tmp_path / "m.jsonl"
        path.write_text('{"iter": 0}\n{"iter": 1')
        assert jlog.read_jsonl(path) == [{"iter": 0}]
        log = jlog.JsonlAppender(path)
        log.append([{"iter": 1}])
        assert jlog.read_jsonl(path) == [{"iter": 0}, {"iter": 1}]


class TestMetricsToRows:
    def test_matches_manual_flattening(self):
        rng = np.random.default_rng(0)
        loss = rng.normal(size=(3, 4)).astype(np.float32)
        ret = rng.integers(0, 10, size=(3, 4)).astype(np.int32)
        seeds = [10, 11, 12]
        rows = jlog.metrics_to_rows(
            {"loss/td": jnp.asarray(loss), "ret": ret}, seeds, 8
        )
        expected = []
        for s in range(3):
            for t in range(4):
                expected.append(
                    {
                        "seed": seeds[s],
                        "iter": 8 + t,
                        "loss/td": float(loss[s, t]),
                        "ret": int(ret[s, t]),
                    }
                )
        assert rows == expected
        assert all(type(r["ret"]) is int for r in rows)

    def test_nan_becomes_none_and_default_seeds(self):
        rows = jlog.metrics_to_rows({"x": np.array([[np.nan], [1.0]])})
        assert rows == [
            {"seed": 0, "iter": 0, "x": None},
            {"seed": 1, "iter": 0, "x": 1.0},
        ]

    def test_bad_shapes(self):
        with pytest.raises(ValueError, match="seeds, iters"):
            jlog.metrics_to_rows({"x": np.zeros(3)})
        with pytest.raises(ValueError, match="different shapes"):
            jlog.metrics_to_rows({"x": np.zeros((2, 3)), "y": np.zeros((2, 4))})
        with pytest.raises(ValueError, match="seed ids"):
            jlog.metrics_to_rows({"x": np.zeros((2, 3))}, [0])


class TestProgress:
    def test_callback_under_jit_and_vmap(self):
        stream = io.StringIO()
        progress = jlog.make_progress_callback(5, "test", stream=stream, force=True)

        def run(seed_index):
            def body(c, t):
                progress(seed_index, t)
                return c + 1, None

            return jax.lax.scan(body, 0, jnp.arange(5))[0]

        out = jax.jit(jax.vmap(run))(jnp.arange(3))
        progress.close()
        np.testing.assert_array_equal(out, [5, 5, 5])
        assert progress.done == 5
        assert progress.seeds_seen == {0, 1, 2}
        assert "5/5" in stream.getvalue()

    def test_batched_values_on_host(self):
        progress = jlog.make_progress_callback(10, stream=io.StringIO(), force=True)
        progress._host(np.arange(4), np.array([2, 3, 3, 1]))
        assert progress.done == 4
        progress.close()

    def test_disabled_when_not_tty_or_quiet(self):
        assert not jlog.make_progress_callback(3, stream=io.StringIO()).enabled
        assert not jlog.make_progress_callback(3, quiet=True, force=True).enabled
        progress = jlog.make_progress_callback(3, stream=io.StringIO())
        jaxpr = jax.make_jaxpr(lambda t: progress(0, t))(1)
        assert "callback" not in str(jaxpr)


def test_rows_to_metrics_inverts_metrics_to_rows():
    x = np.arange(6.0).reshape(2, 3)
    x[1, 2] = np.nan
    rows = jlog.metrics_to_rows({"x": x, "k": np.ones((2, 3), np.int32)}, [4, 9], 5)
    back, seeds, iters = jlog.rows_to_metrics(rows)
    assert seeds == [4, 9] and iters.tolist() == [5, 6, 7]
    np.testing.assert_array_equal(back["x"], x)
    np.testing.assert_array_equal(back["k"], np.ones((2, 3)))


def test_atomic_files_get_the_umask_default_mode(tmp_path):
    """Results are created like open() creates files (0o666 less the umask), not
    with a temporary file's private 0o600."""
    old = os.umask(0o022)
    try:
        jlog.write_atomic(tmp_path / "a.md", ["x"])
        with jlog.atomic_file(tmp_path / "b.npz", suffix=".npz") as tmp:
            pathlib.Path(tmp).write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("a.md", "b.npz"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.npz"]


def test_atomic_file_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with jlog.atomic_file(target) as tmp:
            pathlib.Path(tmp).write_text("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]
