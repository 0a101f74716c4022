"""Tests for jaxrl.sweep: equals separate runs, no recompiles, multi-device sharding."""

from __future__ import annotations

import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxrl import sweep
from jaxrl.config import grid, static
from jaxrl.errors import ConfigError
from tests.fresh_process import fresh_env, result, run_python

NUM_SEEDS = 3


@struct.dataclass
class ToyConfig:
    num_steps: int = static(default=8)
    lr: float = 0.05
    noise: float = 0.1


TRACES = {"toy": 0}


def toy_train(key: jax.Array, config: ToyConfig):
    """A few SGD steps on a random linear regression; lr and noise are traced."""
    TRACES["toy"] += 1  # runs once per trace, never per call
    k_x, k_w, k_noise, k_init, k_state = jax.random.split(key, 5)
    x = jax.random.normal(k_x, (16, 3))
    w_true = jax.random.normal(k_w, (3,))
    y = x @ w_true + config.noise * jax.random.normal(k_noise, (16,))
    w0 = 0.1 * jax.random.normal(k_init, (3,))

    def step(w, _):
        loss, grad = jax.value_and_grad(lambda w: jnp.mean((x @ w - y) ** 2))(w)
        return w - config.lr * grad, {"loss": loss}

    w, metrics = jax.lax.scan(step, w0, None, length=config.num_steps)
    return {"w": w, "key": k_state, "data_sum": jnp.sum(x)}, metrics


def _bits(tree):
    def unwrap(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(x))
        return np.asarray(x)

    return jax.tree.map(unwrap, tree)


class TestVmapRuns:
    """``vmap_runs`` is ``jax.vmap`` over the run axis, unbatched for one run."""

    @staticmethod
    def _fn(key, x, scale):
        k1, k2 = jax.random.split(key)
        noise = jax.random.normal(k1, (x.shape[0], 3))
        w = jnp.arange(12.0).reshape(4, 3) / 7.0
        return {"y": jnp.tanh(x @ w) * scale + noise, "key": k2}, jnp.sum(x)

    @pytest.mark.parametrize("runs", [1, 3])
    @pytest.mark.parametrize("jit", [False, True])
    def test_equals_jax_vmap(self, runs, jit):
        keys = lambda: jax.random.split(jax.random.key(0), runs)  # fresh per call
        x = jax.random.normal(jax.random.key(1), (runs, 5, 4))
        ours = sweep.vmap_runs(self._fn, in_axes=(0, 0, None))
        theirs = jax.vmap(self._fn, in_axes=(0, 0, None))
        if jit:
            ours, theirs = jax.jit(ours), jax.jit(theirs)
        (a, sa), (b, sb) = ours(keys(), x, 2.0), theirs(keys(), x, 2.0)
        assert a["y"].shape == (runs, 5, 3) and sa.shape == (runs,)
        np.testing.assert_allclose(a["y"], b["y"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(sa, sb, rtol=1e-6)
        np.testing.assert_array_equal(
            jax.random.key_data(a["key"]), jax.random.key_data(b["key"])
        )

    def test_one_run_is_compiled_unbatched(self):
        # a matrix product of two mapped arguments: a batched dot under vmap,
        # a plain one here at one run (and still batched at two)
        def batch_dims(n):
            a, b = jnp.ones((n, 3, 4)), jnp.ones((n, 4, 2))
            jaxpr = jax.make_jaxpr(sweep.vmap_runs(jnp.matmul))(a, b)
            dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
            assert len(dots) == 1
            return dots[0].params["dimension_numbers"][1]

        assert batch_dims(1) == ((), ())
        assert batch_dims(2) == ((0,), (0,))

    def test_default_axes_and_errors_are_jax_vmaps(self):
        f = sweep.vmap_runs(lambda a, b: a + b)
        np.testing.assert_array_equal(f(jnp.ones(1), jnp.ones(1)), [2.0])
        with pytest.raises(ValueError, match="vmap"):  # mismatched run axes
            f(jnp.ones(1), jnp.ones(2))
        with pytest.raises(ValueError, match="vmap"):  # a scalar has no run axis
            f(jnp.ones(1), jnp.float32(1.0))


class TestSeedKeys:
    def test_shape_and_prefix_stable(self):
        a = jax.random.key_data(sweep.seed_keys(jax.random.key(0), 3))
        b = jax.random.key_data(sweep.seed_keys(jax.random.key(0), 5))
        assert a.shape == (3, 2)
        np.testing.assert_array_equal(a, b[:3])  # adding seeds keeps the earlier ones

    @pytest.mark.parametrize("bad", [0, -1, 2.0])
    def test_bad_num_seeds(self, bad):
        with pytest.raises(ConfigError, match="num_seeds"):
            sweep.seed_keys(jax.random.key(0), bad)

    def test_raw_key_rejected(self):
        with pytest.raises(ConfigError, match="typed PRNG key"):
            sweep.seed_keys(jnp.zeros(2, jnp.uint32), 2)


class TestSweep:
    def test_equals_separate_runs_bitwise(self):
        stacked, points = grid(ToyConfig(), lr=[0.01, 0.05], noise=[0.3])
        state, metrics = sweep.make_sweep(toy_train, NUM_SEEDS)(
            jax.random.key(1), stacked
        )
        chex.assert_shape(state["w"], (2, NUM_SEEDS, 3))
        chex.assert_shape(metrics["loss"], (2, NUM_SEEDS, 8))
        assert state["key"].shape == (2, NUM_SEEDS)
        key_data = jax.random.key_data(sweep.seed_keys(jax.random.key(1), NUM_SEEDS))
        separate = jax.jit(toy_train)
        got_state, got_metrics = _bits(state), _bits(metrics)
        for g, point in enumerate(points):
            cfg = ToyConfig(**point)
            for s in range(NUM_SEEDS):
                key = jax.random.wrap_key_data(key_data[s])  # a fresh key per run
                ref_state, ref_metrics = _bits(separate(key, cfg))
                for name in ("w", "key", "data_sum"):
                    np.testing.assert_array_equal(
                        got_state[name][g, s], ref_state[name]
                    )
                np.testing.assert_array_equal(
                    got_metrics["loss"][g, s], ref_metrics["loss"]
                )

    def test_common_random_numbers_and_distinct_seeds(self):
        stacked, _ = grid(ToyConfig(), lr=[0.01, 0.05])
        state, _ = sweep.make_sweep(toy_train, NUM_SEEDS)(jax.random.key(2), stacked)
        data = np.asarray(state["data_sum"])  # depends on the seed key only
        np.testing.assert_array_equal(data, np.broadcast_to(data[:1], data.shape))
        assert len(set(data[0].tolist())) == NUM_SEEDS  # seeds differ
        w = np.asarray(state["w"])
        assert not np.array_equal(w[0], w[1])  # grid points differ

    def test_no_recompile_when_values_change(self):
        @chex.assert_max_traces(n=2)
        def train(key, config):  # a fresh function: its own cache entry
            TRACES["fresh"] = TRACES.get("fresh", 0) + 1
            return toy_train(key, config)

        run = sweep.make_sweep(train, 2)
        for lrs in ([0.01, 0.02], [0.3, 0.4], [0.5, 0.6]):
            stacked, _ = grid(ToyConfig(), lr=lrs)
            jax.block_until_ready(run(jax.random.key(3), stacked))
        assert TRACES["fresh"] == 1
        # make_sweep again with the same function object reuses the compiled sweep.
        stacked, _ = grid(ToyConfig(), lr=[0.7, 0.8])
        jax.block_until_ready(sweep.make_sweep(train, 2)(jax.random.key(4), stacked))
        assert TRACES["fresh"] == 1
        # A different static field is a different program: exactly one more trace.
        stacked, _ = grid(ToyConfig(num_steps=3), lr=[0.7, 0.8])
        jax.block_until_ready(run(jax.random.key(5), stacked))
        assert TRACES["fresh"] == 2

    def test_run_sweep_returns_points(self):
        state, metrics, points = sweep.run_sweep(
            toy_train, jax.random.key(7), ToyConfig(), NUM_SEEDS, lr=[0.01, 0.05]
        )
        assert points == [{"lr": 0.01}, {"lr": 0.05}]
        chex.assert_shape(metrics["loss"], (2, NUM_SEEDS, 8))
        chex.assert_shape(state["w"], (2, NUM_SEEDS, 3))

    def test_run_sweep_without_axes_is_one_point(self):
        def train(key, config):
            return jax.random.uniform(key) * config.lr, {}

        state, _, points = sweep.run_sweep(train, jax.random.key(8), ToyConfig(), 2)
        assert points == [{}]
        assert state.shape == (1, 2)

    def test_unstacked_config_rejected(self):
        run = sweep.make_sweep(toy_train, 2)
        with pytest.raises(ConfigError, match="leading grid axis G"):
            run(jax.random.key(9), ToyConfig())

    def test_disagreeing_grid_axes_rejected(self):
        bad = ToyConfig(lr=jnp.zeros(2), noise=jnp.zeros(3))
        with pytest.raises(ConfigError, match="leading grid axis G"):
            sweep.make_sweep(toy_train, 2)(jax.random.key(9), bad)

    def test_static_grid_field_rejected(self):
        with pytest.raises(ConfigError, match="num_steps' is static"):
            sweep.run_sweep(
                toy_train, jax.random.key(0), ToyConfig(), 2, num_steps=[1, 2]
            )


def toy_init(key, config: ToyConfig):
    """The chunked toy: a random vector and the key it draws its noise from."""
    k_w, k_state = jax.random.split(key)
    return {"w": jax.random.normal(k_w, (3,)), "key": k_state}


def toy_chunk(key, state, config: ToyConfig):
    """One chunk: ``num_steps`` noisy contractions; the seed key is unused here."""
    del key

    def step(carry, _):
        w, k = carry
        k, k_noise = jax.random.split(k)
        w = (1 - config.lr) * w + config.noise * jax.random.normal(k_noise, (3,))
        return (w, k), {"w0": w[0]}

    (w, k), metrics = jax.lax.scan(
        step, (state["w"], state["key"]), None, length=config.num_steps
    )
    return {"w": w, "key": k}, metrics


def toy_two_chunks(key, config: ToyConfig):
    state = toy_init(key, config)
    state, m1 = toy_chunk(key, state, config)
    state, m2 = toy_chunk(key, state, config)
    return state, {"w0": jnp.concatenate([m1["w0"], m2["w0"]])}


class TestChunkedSweep:
    def test_two_chunks_equal_the_one_call_sweep_bitwise(self):
        stacked, _ = grid(ToyConfig(), lr=[0.1, 0.5], noise=[0.0, 1.0])
        ref_state, ref_metrics = sweep.make_sweep(toy_two_chunks, NUM_SEEDS)(
            jax.random.key(3), stacked
        )
        chunked = sweep.make_chunked_sweep(toy_init, toy_chunk, 4, NUM_SEEDS)
        state = chunked.init(jax.random.key(3), stacked)
        state, m1 = chunked.run(jax.random.key(3), state, stacked)
        state, m2 = chunked.run(jax.random.key(3), state, stacked)
        got = sweep.gather({"state": state, "w0": [m1["w0"], m2["w0"]]})
        ref = sweep.gather({"state": ref_state, "w0": ref_metrics["w0"]})
        np.testing.assert_array_equal(got["state"]["w"], ref["state"]["w"])
        np.testing.assert_array_equal(got["state"]["key"], ref["state"]["key"])
        np.testing.assert_array_equal(np.concatenate(got["w0"], axis=-1), ref["w0"])
        assert got["state"]["key"].shape == (4, NUM_SEEDS, 2)  # key data
        assert len({float(x) for x in got["state"]["w"][0, :, 0]}) == NUM_SEEDS

    def test_abstract_state_is_a_sharded_restore_target(self):
        stacked, _ = grid(ToyConfig(), lr=[0.1, 0.5])
        chunked = sweep.make_chunked_sweep(toy_init, toy_chunk, 2, NUM_SEEDS)
        target = chunked.abstract_state(jax.random.key(0), stacked)
        assert target["w"].shape == (2, NUM_SEEDS, 3)
        assert target["key"].shape == (2, NUM_SEEDS)
        assert target["w"].sharding == chunked.state_sharding

    def test_wrong_grid_size_rejected(self):
        stacked, _ = grid(ToyConfig(), lr=[0.1, 0.5, 0.9])
        chunked = sweep.make_chunked_sweep(toy_init, toy_chunk, 2, NUM_SEEDS)
        with pytest.raises(ConfigError, match="built for 2 grid points"):
            chunked.init(jax.random.key(0), stacked)

    def test_seed_sharding_on_one_device(self):
        shard = sweep.seed_sharding(5, jax.devices()[:1])
        assert shard.mesh.shape == {"seed": 1}
        assert shard.spec == jax.sharding.PartitionSpec("seed")


_MULTI_DEVICE_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    from tests.jaxrl.test_sweep import ToyConfig, toy_train, _bits
    from jaxrl import sweep
    from jaxrl.config import grid

    jax.config.update("jax_debug_key_reuse", True)
    out = {"num_devices": jax.device_count()}
    cases = (("even", [0.01, 0.05], 4), ("padded", [0.01, 0.05, 0.1], 1))
    for name, lrs, seeds in cases:
        stacked, _ = grid(ToyConfig(), lr=lrs)
        many = sweep.make_sweep(toy_train, seeds)(jax.random.key(0), stacked)
        one = sweep.make_sweep(toy_train, seeds, devices=jax.devices()[:1])(
            jax.random.key(0), stacked
        )
        w = many[0]["w"]
        out[name] = {
            "shape": list(w.shape),
            "devices": len(w.sharding.device_set),
            "replicated": bool(w.sharding.is_fully_replicated),
            "shard_shapes": sorted({s.data.shape for s in w.addressable_shards}),
            "one_device": len(one[0]["w"].sharding.device_set),
            "keys_equal": np.array_equal(
                _bits(many)[0]["key"], _bits(one)[0]["key"]
            ),
            "max_rel_diff": max(
                float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-30)))
                for a, b in zip(
                    jax.tree.leaves(_bits(many)), jax.tree.leaves(_bits(one))
                )
            ),
        }
    from tests.jaxrl.test_sweep import toy_init, toy_chunk

    stacked, _ = grid(ToyConfig(), lr=[0.1, 0.5])  # G * S = 6 on 4 devices: padded
    def two_chunks(devices):
        chunked = sweep.make_chunked_sweep(toy_init, toy_chunk, 2, 3, devices=devices)
        state = chunked.init(jax.random.key(0), stacked)
        state, m1 = chunked.run(jax.random.key(0), state, stacked)
        state, m2 = chunked.run(jax.random.key(0), state, stacked)
        return sweep.gather({"state": state, "m": [m1, m2]})
    many, one = two_chunks(None), two_chunks(jax.devices()[:1])
    out["chunked"] = {
        "keys_equal": np.array_equal(many["state"]["key"], one["state"]["key"]),
        "max_abs_diff": max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(jax.tree.leaves(many), jax.tree.leaves(one))
        ),
    }
    out["seed_devices"] = {
        s: len(sweep.seed_sharding(s).device_set) for s in (1, 3, 4, 5, 6, 8)
    }
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.heavy
def test_sharded_over_four_devices_in_subprocess():
    env = fresh_env({"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    out = result(run_python(["-W", "error", "-c", _MULTI_DEVICE_SCRIPT], env))
    assert out["num_devices"] == 4
    even = out["even"]  # G * S = 8: every device holds a [1, 2] block of (point, seed)
    assert even["shape"] == [2, 4, 3]
    assert even["devices"] == 4 and not even["replicated"]
    assert even["shard_shapes"] == [[1, 2, 3]]
    # Sharding changes the shapes XLA compiles per device, and on some CPUs a
    # matmul then rounds differently (seen: a relative 1e-7). The same keys and
    # float32-rounding agreement show that no point or seed was mixed up.
    assert even["one_device"] == 1 and even["keys_equal"]
    assert even["max_rel_diff"] < 1e-5
    padded = out["padded"]  # G * S = 3: padded to 4, stripped; still the same runs
    assert padded["shape"] == [3, 1, 3]
    assert padded["keys_equal"] and padded["max_rel_diff"] < 1e-5
    # The chunked sweep (jaxrl sweep's path) on 4 devices: the same runs.
    assert out["chunked"]["keys_equal"] and out["chunked"]["max_abs_diff"] < 1e-5
    # jaxrl train's seed sharding: the most devices (<= 4) whose count divides S.
    assert out["seed_devices"] == {"1": 1, "3": 3, "4": 4, "5": 1, "6": 3, "8": 4}


class TestLapackSafeDevices:
    """CPU LAPACK kernels can hang across the CPU devices of one process."""

    def test_lapack_calls_of_lowered_programs(self):
        a = jnp.eye(3, dtype=jnp.float32) * 2.0  # float32 also under x64: sgetrf
        solve = jax.jit(jnp.linalg.solve).lower(a, jnp.ones(3, jnp.float32))
        matmul = jax.jit(jnp.matmul).lower(a, a)
        calls = sweep.cpu_lapack_calls(solve, matmul)
        assert "lapack_sgetrf_ffi" in calls and calls == tuple(sorted(calls))
        assert all(c.startswith("lapack_") for c in calls)
        assert sweep.cpu_lapack_calls(matmul) == ()

    @staticmethod
    def _devices(platform, per_process):
        from types import SimpleNamespace

        return [
            SimpleNamespace(platform=platform, process_index=p, id=10 * p + i)
            for p, n in enumerate(per_process)
            for i in range(n)
        ]

    class _Lowered:
        def __init__(self, text):
            self.text = text

        def as_text(self):
            return self.text

    def _lower(self, text, calls):
        def lower():
            calls.append(1)
            return [self._Lowered(text)]

        return lower

    def test_fallback_to_one_device_per_process(self):
        lapack = "%0 = stablehlo.custom_call @lapack_sgetrf_ffi(%arg0)"
        plain = "%0 = stablehlo.dot_general %arg0, %arg1"
        calls = []
        two = self._devices("cpu", [2])
        assert sweep.lapack_safe_devices(two, self._lower(plain, calls)) == (two, ())
        got, found = sweep.lapack_safe_devices(two, self._lower(lapack, calls))
        assert got == two[:1] and found == ("lapack_sgetrf_ffi",)
        # Two processes with two CPU devices each: the first device of each.
        four = self._devices("cpu", [2, 2])
        got, _ = sweep.lapack_safe_devices(four, self._lower(lapack, calls))
        assert [d.id for d in got] == [0, 10]
        assert len(calls) == 3
        # One CPU device per process, or GPUs: nothing to check, nothing lowered.
        for devices in (self._devices("cpu", [1, 1]), self._devices("gpu", [4])):
            out = sweep.lapack_safe_devices(devices, self._lower(lapack, calls))
            assert out == (devices, ())
        assert len(calls) == 3
