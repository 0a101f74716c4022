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
    def test_json_roundtrip_and_nonfinite_strings(self, tmp_path):
        """NaN/inf are written as strings (strict JSON); null stays 'absent'."""
        path = tmp_path / "sub" / "x.json"
        obj = {
            "a": np.float32(1.5),
            "b": jnp.arange(3),
            "c": float("nan"),
            "d": jnp.array([np.inf, -np.inf, 2.0]),
            "e": None,
        }
        jlog.write_json_atomic(path, obj)
        doc = json.loads(path.read_text())
        assert doc == {
            "a": 1.5,
            "b": [0, 1, 2],
            "c": "nan",
            "d": ["inf", "-inf", 2.0],
            "e": None,
        }
        back = jlog.from_jsonable(doc)
        assert np.isnan(back["c"]) and back["d"] == [np.inf, -np.inf, 2.0]
        assert back["e"] is None and back["b"] == [0, 1, 2]
        assert jlog.from_jsonable({"name": "nanny"}) == {"name": "nanny"}

    def test_csv_nonfinite_text_and_empty_only_when_absent(self, tmp_path):
        path = tmp_path / "t.csv"
        jlog.write_csv_atomic(
            path,
            [{"a": float("nan"), "b": np.float32(np.inf), "c": None}, {"a": 1.0}],
            ["a", "b", "c"],
        )
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows == [
            {"a": "nan", "b": "inf", "c": ""},
            {"a": "1.0", "b": "", "c": ""},
        ]

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
        assert path.read_text() == '{"iter": 0}\n'  # torn tail dropped at open
        assert len(log) == 1
        log.append([{"iter": 1}])
        assert jlog.read_jsonl(path) == [{"iter": 0}, {"iter": 1}]

    def test_append_does_not_rewrite_earlier_bytes(self, tmp_path):
        path = tmp_path / "m.jsonl"
        log = jlog.JsonlAppender(path, fresh=True)
        log.append([{"iter": 0, "v": 1.5}])
        before, inode = path.read_bytes(), os.stat(path).st_ino
        log.append([{"iter": 1, "v": 2.5}, {"iter": 2, "v": "nan"}])
        after = path.read_bytes()
        # The same file (no rename over it), grown by exactly the new lines.
        assert os.stat(path).st_ino == inode
        assert after[: len(before)] == before
        assert after[len(before) :] == b'{"iter": 1, "v": 2.5}\n{"iter": 2, "v": "nan"}\n'
        # Reopening an intact file (no keep) does not rewrite it either.
        again = jlog.JsonlAppender(path)
        assert os.stat(path).st_ino == inode and len(again) == 3
        # ... while a keep that drops rows rewrites it once, at open.
        jlog.JsonlAppender(path, keep=lambda r: r["iter"] < 2)
        assert os.stat(path).st_ino != inode
        assert path.read_bytes() == before + b'{"iter": 1, "v": 2.5}\n'

    def test_failed_write_is_undone(self, tmp_path, monkeypatch):
        path = tmp_path / "m.jsonl"
        log = jlog.JsonlAppender(path, fresh=True)
        log.append([{"iter": 0}])
        before = path.read_bytes()
        real_write = os.write

        def short_then_full(fd, data):  # writes a few bytes, then the disk is full
            if len(data) > 4:
                return real_write(fd, bytes(data[:4]))
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", short_then_full)
        with pytest.raises(OSError, match="No space"):
            log.append([{"iter": 1}])
        monkeypatch.undo()
        assert path.read_bytes() == before
        log.append([{"iter": 1}])
        assert jlog.read_jsonl(path) == [{"iter": 0}, {"iter": 1}] and len(log) == 2


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

    def test_nonfinite_become_strings_and_default_seeds(self):
        rows = jlog.metrics_to_rows({"x": np.array([[np.nan], [np.inf], [1.0]])})
        assert rows == [
            {"seed": 0, "iter": 0, "x": "nan"},
            {"seed": 1, "iter": 0, "x": "inf"},
            {"seed": 2, "iter": 0, "x": 1.0},
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

    def test_quiet_stages_nothing_and_prints_nothing(self):
        stream = io.StringIO()
        for force in (False, True):
            progress = jlog.make_progress_callback(
                3, "q", quiet=True, stream=stream, force=force
            )
            assert not progress.enabled and not progress.lines
            jaxpr = jax.make_jaxpr(lambda t, p=progress: p(0, t))(1)
            assert "callback" not in str(jaxpr)
            progress.start_at(1)
            progress.update_to(3)
            progress.close()
        assert stream.getvalue() == ""

    def test_not_a_tty_gives_one_plain_line_per_chunk(self):
        """Outside a terminal: no bar, one flushed line per chunk (called per
        chunk inside jit under a seed vmap), counts monotone, in env steps."""
        stream = io.StringIO()  # isatty() is False
        progress = jlog.make_progress_callback(
            12, "dqn/tiny", stream=stream, unit="env steps per seed", scale=10
        )
        assert progress.enabled and progress.lines
        jaxpr = jax.make_jaxpr(lambda t: progress(0, t))(1)
        assert "callback" in str(jaxpr)  # a sweep reports from inside jit

        def run(seed_index):
            def body(c, chunk):
                progress(seed_index, (chunk + 1) * 3 - 1)  # 3 iterations a chunk
                return c + 1, None

            return jax.lax.scan(body, 0, jnp.arange(4))[0]

        jax.jit(jax.vmap(run))(jnp.arange(3))
        progress.close()
        lines = stream.getvalue().splitlines()
        assert len(lines) == 4, lines
        assert "\r" not in stream.getvalue() and "it/s" not in stream.getvalue()
        done = [int(line.split(": ")[1].split("/")[0]) for line in lines]
        assert done == [30, 60, 90, 120]
        for line, pct in zip(lines, (25, 50, 75, 100), strict=True):
            assert line.startswith("dqn/tiny: ")
            assert f"/120 env steps per seed ({pct}%)" in line
            assert "/s" in line
        assert all(", ETA " in line for line in lines[:-1])
        assert ", done in " in lines[-1]

    def test_line_rate_eta_and_resume(self):
        """The first line's rate counts from the start (compilation included),
        later ones from the first line; a resume prints nothing and counts from
        where it starts."""
        now = [0.0]
        stream = io.StringIO()
        progress = jlog.make_progress_callback(
            100, "vi/x", stream=stream, unit="iterations per seed"
        )
        progress.clock = lambda: now[0]
        progress.start_at(20)  # resumed after 20 iterations: no line
        assert stream.getvalue() == "" and progress.done == 20
        now[0] = 10.0
        progress.update_to(40)  # 20 iterations in 10 s
        now[0] = 12.0
        progress.update_to(60)  # 20 iterations in 2 s since the first line
        progress.update_to(60)  # no advance: no line
        now[0] = 16.0
        progress.update_to(100)
        assert stream.getvalue().splitlines() == [
            "vi/x: 40/100 iterations per seed (40%), 2/s, ETA 30s",
            "vi/x: 60/100 iterations per seed (60%), 10/s, ETA 4s",
            "vi/x: 100/100 iterations per seed (100%), 10/s, done in 16s",
        ]


def test_rows_to_metrics_inverts_metrics_to_rows(tmp_path):
    x = np.arange(6.0).reshape(2, 3)
    x[1, 2] = np.nan
    x[0, 1] = -np.inf
    x[1, 0] = np.inf
    rows = jlog.metrics_to_rows({"x": x, "k": np.ones((2, 3), np.int32)}, [4, 9], 5)
    jlog.write_jsonl_atomic(tmp_path / "m.jsonl", rows)  # through the file too
    back, seeds, iters = jlog.rows_to_metrics(jlog.read_jsonl(tmp_path / "m.jsonl"))
    assert seeds == [4, 9] and iters.tolist() == [5, 6, 7]
    np.testing.assert_array_equal(back["x"], x)
    np.testing.assert_array_equal(back["k"], np.ones((2, 3)))


def test_rows_to_metrics_reads_null_and_missing_as_nan():
    """Files written before non-finite values became strings used null."""
    rows = [{"seed": 0, "iter": 0, "x": None}, {"seed": 0, "iter": 1, "y": 2.0}]
    back, _, _ = jlog.rows_to_metrics(rows)
    np.testing.assert_array_equal(back["x"], [[np.nan, np.nan]])
    np.testing.assert_array_equal(back["y"], [[np.nan, 2.0]])


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
