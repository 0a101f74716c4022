"""Past one device: ``jaxrl train`` shards seeds over local devices, and
``jaxrl sweep --distributed`` runs as several processes (jax.distributed).

Multi-device and multi-process runs need fresh processes (the device count is
fixed when JAX starts): they run as subprocesses on forced CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``) and are compared with
the same run in this (one-device) process. The two-process sweep takes about a
minute on two busy cores, so it is marked ``slow``; the in-process tests check
the logic that keeps processes other than 0 from writing results.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxrl import logging as jlog
from jaxrl.scripts import cli, common
from jaxrl.scripts import sweep as jsweep
from jaxrl.scripts import train as jtrain
from tests.fresh_process import fresh_env, result, run_python

# Tabular VI compiles fast; noise makes every seed and chunk depend on the key.
SWEEP = ["--agent", "vi_tabular", "--preset", "gridworld-noisy", "--num-seeds", "3"]
SWEEP += ["--set", "num_chunks=2", "--set", "iters_per_chunk=2"]
SWEEP += ["--grid", "noise_std=0.0,0.05", "--quiet"]
POINTS = ("noise_std=0", "noise_std=0.05")
TRAIN_OVERRIDES = ["num_chunks=3", "iters_per_chunk=2", "noise_std=0.05"]


def _env(devices: int) -> dict[str, str]:
    return fresh_env({"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"})


def _assert_rows_close(got: list[dict], want: list[dict]) -> None:
    """Same rows, keys and integers exactly, floats to float32 rounding (sharded
    matmuls may round differently from one device)."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert sorted(a) == sorted(b)
        for name in b:
            if isinstance(b[name], float):
                np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-7)
            else:
                assert a[name] == b[name], name


# ------------------------------------------------------------------ train: local devices

_TRAIN_SCRIPT = """
import json, sys
import jax
jax.config.update("jax_debug_key_reuse", True)
from jaxrl.scripts import common, train
out, agent, preset, overrides = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
spec = common.resolve_run(agent, None, preset, overrides, [], 4)
train.train(spec, out_dir=out, quiet=True, plot=False, max_chunks=1)
result = train.train(spec, out_dir=out, quiet=False, plot=False, resume=True)
leaf = jax.tree.leaves(result.state)[0]
print("RESULT " + json.dumps({"local_devices": jax.local_device_count(),
                              "state_devices": len(leaf.sharding.device_set)}))
"""


def _train_on_two_devices(tmp_path, agent, preset, overrides):
    """Train 4 seeds with 2 CPU devices, stopped after a chunk and resumed;
    return (the devices the state spans, stderr, the rows)."""
    sharded = tmp_path / "two"
    args = ["-W", "error", "-c", _TRAIN_SCRIPT, str(sharded), agent, preset]
    proc = run_python([*args, *overrides], _env(2), timeout=300)
    out = result(proc)
    assert out["local_devices"] == 2
    assert "resuming from" in proc.stderr
    return out["state_devices"], proc.stderr, jlog.read_jsonl(sharded / "metrics.jsonl")


def _train_on_one_device(tmp_path, agent, preset, overrides):
    spec = common.resolve_run(agent, None, preset, overrides, [], 4)
    one = tmp_path / "one"
    result = jtrain.train(spec, out_dir=str(one), quiet=True, plot=False)
    assert len(jax.tree.leaves(result.state)[0].sharding.device_set) == 1
    return jlog.read_jsonl(one / "metrics.jsonl")


@pytest.mark.heavy
def test_train_shards_seeds_over_two_devices_and_resumes(tmp_path):
    """DQN, 4 seeds on 2 devices, stopped after a chunk and resumed from the
    sharded checkpoint: the same rows as one uninterrupted run on one device."""
    overrides = ["num_chunks=2", "iters_per_chunk=40", "learning_starts=100"]
    overrides += ["num_eval_episodes=1", "eval_max_steps=50"]
    devices, err, got = _train_on_two_devices(
        tmp_path, "dqn", "cartpole-small", overrides
    )
    assert devices == 2 and "LAPACK" not in err
    want = _train_on_one_device(tmp_path, "dqn", "cartpole-small", overrides)
    # A few hundred float32 gradient steps from states that agree to rounding.
    assert len(got) == len(want) == 4 * 2 * 40  # seeds x chunks x iterations
    compared = 0
    for a, b in zip(got, want, strict=True):
        assert (a["seed"], a["iter"]) == (b["seed"], b["iter"])
        assert a["train/env_steps"] == b["train/env_steps"]
        for name in ("loss/td", "q/mean"):
            x, y = (float("nan") if r[name] is None else float(r[name]) for r in (a, b))
            if np.isnan(y):  # before learning starts
                assert np.isnan(x)
            else:
                np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)
                compared += 1
    assert compared >= 4 * 2 * 60  # the learning iterations of every seed
    assert len({r["q/mean"] for r in got if r["iter"] == 79}) == 4  # seeds differ


@pytest.mark.heavy
def test_train_with_lapack_runs_on_one_device_and_resumes(tmp_path):
    """Tabular VI's exact policy evaluation calls CPU LAPACK kernels, which can
    hang across CPU devices (jaxrl.sweep.lapack_safe_devices): with 2 devices
    its 4 seeds stay on one, with a note, and give the one-device rows."""
    devices, err, got = _train_on_two_devices(
        tmp_path, "vi_tabular", "gridworld-noisy", TRAIN_OVERRIDES
    )
    assert devices == 1
    assert "calls CPU LAPACK kernels (lapack_sgetrf_ffi" in err
    want = _train_on_one_device(
        tmp_path, "vi_tabular", "gridworld-noisy", TRAIN_OVERRIDES
    )
    _assert_rows_close(got, want)
    assert len(got) == 4 * 3 * 2  # seeds x chunks x iterations: no duplicates
    assert len({r["dp/residual"] for r in got if r["iter"] == 5}) == 4  # seeds differ


# ------------------------------------------------------------- sweep: processes other than 0


def test_only_process_0_writes_results(tmp_path, capsys, monkeypatch):
    """A process other than 0 runs the sweep but writes nothing (no lock, no
    run dir, no files) and reports nothing."""
    spec = common.resolve_run(
        "vi_tabular",
        None,
        "gridworld-noisy",
        ["num_chunks=2", "iters_per_chunk=2"],
        [],
        2,
    )
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    out = tmp_path / "run"
    result = jsweep.sweep(
        spec, {"noise_std": [0.0, 0.05]}, out_dir=str(out), checkpoint=False, quiet=True
    )
    assert not out.exists()
    assert result.summaries == [] and result.metric is None
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ sweep: two processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(out: str, *extra: str) -> list[tuple[int, str, str]]:
    """Run ``python -m jaxrl sweep ... --distributed`` as 2 processes x 2 devices."""
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jaxrl", "sweep", *SWEEP, "--out", out, *extra]
            + ["--distributed", "--coordinator-address", f"localhost:{port}"]
            + ["--num-processes", "2", "--process-id", str(i)],
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            results.append((proc.returncode, stdout, stderr))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


@pytest.mark.slow
def test_two_processes_equal_one_process_and_resume(tmp_path, capsys):
    """2 processes x 2 devices, stopped after one chunk and resumed: the same
    results as one process, written once (by process 0)."""
    assert cli.main(["sweep", *SWEEP, "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    many = str(tmp_path / "many")
    first = _launch(many, "--max-chunks", "1")
    for status, _, err in first:
        assert status == 0, err[-3000:]
    assert "stopped after chunk 1/2" in first[0][2]
    second = _launch(many, "--resume")
    for status, _, err in second:
        assert status == 0, err[-3000:]
    (_, out0, err0), (_, out1, _) = second
    assert "resuming from" in err0
    assert "2 points x 3 seeds" in out0  # process 0 reports, the other is silent
    assert [ln for ln in out1.splitlines() if not ln.startswith("[Gloo]")] == []
    one_dir = tmp_path / "one" / "sweep" / "vi_tabular" / "gridworld-noisy"
    many_dir = tmp_path / "many" / "sweep" / "vi_tabular" / "gridworld-noisy"
    for point in POINTS:
        got = jlog.read_jsonl(many_dir / point / "metrics.jsonl")
        assert len(got) == 3 * 2 * 2  # seeds x chunks x iterations: written once
        _assert_rows_close(got, jlog.read_jsonl(one_dir / point / "metrics.jsonl"))
        summary = json.loads((many_dir / point / "summary.json").read_text())
        want = json.loads((one_dir / point / "summary.json").read_text())
        np.testing.assert_allclose(
            summary["headline"]["mean"], want["headline"]["mean"], rtol=1e-6
        )
    csv = (many_dir / "sweep.csv").read_text().splitlines()
    assert len(csv) == 1 + len(POINTS)
    assert sorted(os.listdir(many_dir / "ckpt")) == ["1", "2"]
