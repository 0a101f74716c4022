"""Seeds × hyperparameter grid in one jitted call, sharded over all devices.

``make_sweep(train_fn, num_seeds)`` turns any ``train(key, config) -> (State,
Metrics)`` into ``sweep(key, stacked_config) -> (State[G, S, ...], Metrics[G, S,
...])`` for a config stacked over ``G`` grid points (see :func:`jaxrl.config.grid`
and :func:`jaxrl.config.stack_configs`). Agents adapt with a one-line lambda,
``lambda key, cfg: agent.make_train(cfg, env, env_params)(key)``; ``make_train``
may branch on static config fields only, so every grid point shares one trace.

Seed keys (common random numbers): seed ``s`` uses ``seed_keys(key, S)[s]`` at
*every* grid point, so grid points are compared on equal seeds and differences
between them are not seed noise. A ``(g, s)`` result equals a separate run
``train(seed_keys(key, S)[s], point_g)``. Under JAX's default threefry PRNG
(``jax_threefry_partitionable=True``), ``seed_keys(key, S)[:n]`` does not depend
on ``S``, so adding seeds keeps the earlier ones.

Execution: the ``G * S`` (grid point, seed) pairs are flattened into one sweep
axis, row-major (grid-major, seed-minor), and ``train_fn`` is vmapped once over
that axis. This is ``vmap(vmap(train, (0, None)), (None, 0))`` reordered into a
single batch axis, which is what lets a 1-D device layout shard it. The axis is
split in contiguous blocks over all ``D`` devices in ``jax.devices()`` order:
the mesh (:func:`sweep_mesh`) is that 1-D device list viewed as ``(grid, seed,
rest)`` and the flat axis uses ``PartitionSpec(("grid", "seed", "rest"))``,
which is exactly a 1-D ``PartitionSpec("sweep")`` layout. The same mesh lets
the ``[G, S, ...]`` outputs come back sharded as ``PartitionSpec("grid",
"seed")`` instead of being gathered onto every device (one JAX computation
cannot mix two meshes). When ``G * S`` is not a multiple of ``D`` the flat axis
is padded with copies of pair 0 to the next multiple (at most ``D - 1`` wasted
runs) and the padding is stripped before the reshape to ``[G, S, ...]``; the
outputs are then sharded as far as ``G`` and ``S`` divide and replicated over
``rest``. Results agree for any ``D`` (keys bitwise, floats to float32
rounding: XLA compiles other per-device shapes, docs/decisions.md D25). A single
pair (``G * S == 1`` on one device) runs unbatched (:func:`vmap_runs`, D26).

Compilation: the jitted sweep is cached on ``(train_fn, G, num_seeds, devices,
key implementation)`` (a small module-level ``functools.lru_cache`` memo, the same
idea as ``jax.jit``'s own cache), and ``jax.jit`` caches on the config's tree
structure (static fields) and shapes. Changing traced hyperparameter *values*
never recompiles; changing ``G``, a static field, or passing a *new* function
object (e.g. a fresh lambda per call) does. Keep one ``train_fn`` object.

Chunks: :func:`make_chunked_sweep` splits the same computation into ``init``
and repeated ``run`` calls over a ``[G, S, ...]`` state (sharded as
``PartitionSpec("grid", "seed")``, the same keys and layout), so a long sweep
can be checkpointed and resumed; ``jaxrl sweep`` runs this way.
:func:`seed_sharding` is ``jaxrl train``'s layout of a ``[S]`` seed axis over
the local devices.

Several CPU devices in one process (``jax_num_cpu_devices``, which the
command line sets to the usable cores) share XLA's CPU thread pool, and
jaxlib's batched CPU LAPACK kernels (``jnp.linalg.solve`` and the like) can
hang there: :func:`lapack_safe_devices` checks a program for them and falls
back to one device per process; ``jaxrl train`` and ``jaxrl sweep`` use it.

Multi-host: scripts call ``jax.distributed.initialize()`` first; ``jax.devices()``
then lists the global devices and the mesh spans all processes. Every process
must call ``sweep`` with the same key and config; inputs are made global with
``jax.make_array_from_process_local_data``. Outputs are global arrays whose
shards live on their own processes: fetch them with :func:`gather`
(``multihost_utils.process_allgather``) before host-side use. Tested on CPU:
one process with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(tests/jaxrl/test_sweep.py) and 2 processes x 2 devices on localhost through
gloo, JAX's default CPU collectives (tests/scripts/test_distributed.py).

Examples:
  >>> import jax, jax.numpy as jnp
  >>> from flax import struct
  >>> @struct.dataclass
  ... class Cfg:
  ...     lr: float = 0.1
  >>> def train(key, cfg):
  ...     x = jax.random.normal(key)
  ...     return x * cfg.lr, {"x": x}
  >>> key = jax.random.key(0)
  >>> state, metrics, points = run_sweep(train, key, Cfg(), 3, lr=[0.1, 1.0])
  >>> state.shape, points
  ((2, 3), [{'lr': 0.1}, {'lr': 1.0}])
"""

from __future__ import annotations

import collections
import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxrl import config as config_lib
from jaxrl.errors import ConfigError
from jaxrl.types import Array, ArrayTree, PRNGKey

__all__ = [
    "vmap_runs",
    "seed_keys",
    "make_sweep",
    "run_sweep",
    "num_points",
    "sweep_mesh",
    "MESH_AXES",
    "seed_sharding",
    "cpu_lapack_calls",
    "lapack_safe_devices",
    "ChunkedSweep",
    "make_chunked_sweep",
    "gather",
]

MESH_AXES = ("grid", "seed", "rest")
"""Axis names of :func:`sweep_mesh`; the flat pair axis is sharded over all three."""

TrainFn = Callable[[PRNGKey, Any], tuple[ArrayTree, ArrayTree]]
SweepFn = Callable[[PRNGKey, Any], tuple[ArrayTree, ArrayTree]]


def vmap_runs(fn: Callable[..., Any], in_axes: Any = 0) -> Callable[..., Any]:
    """``jax.vmap(fn, in_axes)`` over a leading run axis, unbatched when it has one run.

    Outputs are mapped on axis 0, as ``jax.vmap``'s default. When every mapped
    argument's run axis has size 1 (a one-seed run), ``fn`` is called on the
    arguments' single runs and its outputs get a leading axis of 1 back:
    the same values, but XLA compiles ``fn``'s own program instead of a batch
    of one, which on its CPU backend keeps layout copies and transposes a
    batch axis of size 1 introduces (a one-seed CartPole chunk: about 5%
    faster, D26). Otherwise this is ``jax.vmap(fn, in_axes)``.

    Args:
      fn: the per-run function.
      in_axes: ``0`` or ``None`` per positional argument (a tuple), or one of
        them for all; ``0`` maps the argument's leading axis.

    Returns:
      The mapped function.

    Examples:
      >>> import jax.numpy as jnp
      >>> f = vmap_runs(lambda x, y: x * y, in_axes=(0, None))
      >>> f(jnp.array([2.0]), 3.0), f(jnp.array([1.0, 2.0]), 3.0)
      (Array([6.], dtype=float32), Array([3., 6.], dtype=float32))
    """
    vmapped = jax.vmap(fn, in_axes=in_axes)

    def mapped(*args: Any) -> Any:
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        if len(axes) != len(args) or any(a not in (0, None) for a in axes):
            return vmapped(*args)  # anything else is jax.vmap's to handle
        sizes = {
            jnp.shape(leaf)[0] if jnp.ndim(leaf) else None
            for arg, axis in zip(args, axes, strict=True)
            if axis == 0
            for leaf in jax.tree.leaves(arg)
        }
        if sizes != {1}:
            return vmapped(*args)
        single = [
            jax.tree.map(lambda x: x[0], arg) if axis == 0 else arg
            for arg, axis in zip(args, axes, strict=True)
        ]
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), fn(*single))

    return mapped


def _check_key(key: Any) -> None:
    dtype = getattr(key, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jax.dtypes.prng_key):
        raise ConfigError(
            f"key must be a typed PRNG key from jax.random.key, got dtype {dtype}"
        )
    if key.shape != ():
        raise ConfigError(f"key must be a single key (shape ()), got shape {key.shape}")


def _check_num_seeds(num_seeds: Any) -> int:
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ConfigError(f"num_seeds must be a positive Python int, got {num_seeds!r}")
    return num_seeds


def seed_keys(key: PRNGKey, num_seeds: int) -> Array:
    """Return the ``[S]`` per-seed keys of a sweep: ``jax.random.split(key, S)``.

    Seed ``s`` uses ``seed_keys(key, S)[s]`` at every grid point (common random
    numbers), so a separate run with that key reproduces column ``s``.

    Args:
      key: a typed PRNG key (consumed).
      num_seeds: ``S``, a positive Python int.

    Returns:
      ``key[S]``.

    Examples:
      >>> import jax
      >>> seed_keys(jax.random.key(0), 4).shape
      (4,)
    """
    _check_key(key)
    _check_num_seeds(num_seeds)
    return jax.random.split(key, num_seeds)


def num_points(stacked_config: Any) -> int:
    """Return ``G``, the leading axis shared by every leaf of a stacked config.

    Raises:
      ConfigError: if the config has no traced leaves or they disagree on ``G``.
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(stacked_config)
    if not flat:
        raise ConfigError(
            "stacked config has no traced fields to carry a grid axis; "
            "stack it with jaxrl.config.stack_configs or grid"
        )
    sizes = {}
    for path, leaf in flat:
        shape = np.shape(leaf)
        sizes[jax.tree_util.keystr(path)] = shape[0] if shape else None
    values = set(sizes.values())
    if len(values) != 1 or None in values:
        shown = ", ".join(f"{k}: {v}" for k, v in list(sizes.items())[:4])
        raise ConfigError(
            "stacked config leaves must share a leading grid axis G "
            f"(use jaxrl.config.stack_configs or grid); got {shown}"
        )
    return values.pop()


def _key_impl(key: jax.Array) -> str:
    return str(jax.random.key_impl(key))


def sweep_mesh(num_points: int, num_seeds: int, devices: Sequence[Any]) -> Mesh:
    """Return the sweep mesh: ``devices`` in order, viewed as ``(grid, seed, rest)``.

    The axis sizes are ``d_g = gcd(G, D)``, ``d_s = gcd(S, D / d_g)`` and
    ``d_r = D / (d_g d_s)``, so ``[G, S, ...]`` outputs shard evenly with
    ``PartitionSpec("grid", "seed")`` (replicated over ``rest``, which has size
    1 whenever ``D`` divides ``G * S``). The flattened pair axis uses
    ``PartitionSpec(("grid", "seed", "rest"))``, which is exactly a 1-D mesh over
    ``devices``.

    Examples:
      >>> import jax
      >>> dict(sweep_mesh(3, 2, jax.devices()[:1]).shape)
      {'grid': 1, 'seed': 1, 'rest': 1}
    """
    num_devices = len(devices)
    d_g = math.gcd(num_points, num_devices)
    d_s = math.gcd(num_seeds, num_devices // d_g)
    d_r = num_devices // (d_g * d_s)
    return Mesh(np.asarray(devices, dtype=object).reshape(d_g, d_s, d_r), MESH_AXES)


class _Layout:
    """How ``G * S`` (grid point, seed) pairs lie on ``devices`` (see module doc).

    ``flatten`` turns ``[G, S, ...]`` leaves into the flat, padded, sharded
    ``[P, ...]`` pair axis (``P`` = ``G * S`` rounded up to a multiple of
    ``D``, padded with copies of pair 0); ``unflatten`` strips the padding and
    returns ``[G, S, ...]`` sharded as ``PartitionSpec("grid", "seed")``. Both
    run inside ``jit``.
    """

    def __init__(self, num_points: int, num_seeds: int, devices: Sequence[Any]):
        self.g, self.s = num_points, num_seeds
        self.n = num_points * num_seeds
        self.padded = -(-self.n // len(devices)) * len(devices)
        self.mesh = sweep_mesh(num_points, num_seeds, devices)
        self.flat_sharding = NamedSharding(self.mesh, PartitionSpec(MESH_AXES))
        self.out_sharding = NamedSharding(self.mesh, PartitionSpec("grid", "seed"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())

    def pad(self, x: Array) -> Array:
        if self.padded == self.n:
            return x
        fill = jnp.broadcast_to(x[:1], (self.padded - self.n, *x.shape[1:]))
        return jnp.concatenate([x, fill], axis=0)

    def shard(self, x: Array) -> Array:
        return jax.lax.with_sharding_constraint(x, self.flat_sharding)

    def unflatten(self, x: Array) -> Array:
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):  # reshape key data, not keys
            data = self.unflatten(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        x = self.shard(x)[: self.n].reshape(self.g, self.s, *x.shape[1:])
        return jax.lax.with_sharding_constraint(x, self.out_sharding)

    def flatten(self, x: Array) -> Array:
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = self.flatten(jax.random.key_data(x))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return self.shard(self.pad(x.reshape(self.n, *x.shape[2:])))

    def pair_keys(self, key_data: Array, impl: str) -> Array:
        """``[P]`` keys: seed ``s``'s key at every grid point (common random numbers)."""
        # Duplicate key *data* (not keys) across points.
        key = jax.random.wrap_key_data(key_data, impl=impl)
        seed_data = jax.random.key_data(jax.random.split(key, self.s))  # [S, k]
        flat = self.shard(self.pad(jnp.tile(seed_data, (self.g, 1))))  # seed-minor
        return jax.random.wrap_key_data(flat, impl=impl)

    def pair_configs(self, stacked: Any) -> Any:
        """The ``[P]`` config of every pair (grid-major)."""
        return jax.tree.map(
            lambda x: self.shard(self.pad(jnp.repeat(x, self.s, axis=0))), stacked
        )


@functools.lru_cache(maxsize=32)
def _compiled_sweep(
    train_fn: TrainFn,
    num_points: int,
    num_seeds: int,
    devices: tuple[Any, ...],
    impl: str,
) -> Callable[[Array, Any], tuple[ArrayTree, ArrayTree]]:
    """Build (once per argument tuple) the jitted ``(key_data, stacked) -> results``."""
    lay = _Layout(num_points, num_seeds, devices)

    def body(key_data: Array, stacked: Any) -> tuple[ArrayTree, ArrayTree]:
        out = vmap_runs(train_fn)(
            lay.pair_keys(key_data, impl), lay.pair_configs(stacked)
        )
        return jax.tree.map(lay.unflatten, out)

    return jax.jit(body, in_shardings=(lay.replicated, lay.replicated))


def seed_sharding(
    num_seeds: int, devices: Sequence[Any] | None = None
) -> NamedSharding:
    """The sharding of a ``[S, ...]`` seed axis over ``devices`` (``jaxrl train``).

    A 1-D mesh ``("seed",)`` over the first ``d`` devices, ``d`` the largest
    count ``<= len(devices)`` that divides ``S``, and ``PartitionSpec("seed")``.
    No padding: states, metrics and checkpoints keep exactly ``S`` seeds, so a
    run resumes on any device count; the price is idle devices when ``S`` has
    no divisor close to ``D`` (e.g. 3 seeds on 4 devices use 3, 5 seeds use 1).

    Args:
      num_seeds: ``S``.
      devices: default ``jax.local_devices()``.

    Examples:
      >>> import jax
      >>> seed_sharding(4, jax.devices()[:1]).mesh.shape["seed"]
      1
    """
    _check_num_seeds(num_seeds)
    devs = list(jax.local_devices() if devices is None else devices)
    if not devs:
        raise ConfigError("seed_sharding needs at least one device")
    d = max(k for k in range(1, len(devs) + 1) if num_seeds % k == 0)
    mesh = Mesh(np.asarray(devs[:d], dtype=object), ("seed",))
    return NamedSharding(mesh, PartitionSpec("seed"))


def cpu_lapack_calls(*lowered: Any) -> tuple[str, ...]:
    """The jaxlib CPU LAPACK kernels that lowered computations call, sorted.

    Args:
      *lowered: ``jax.jit(f).lower(...)`` results (anything with ``as_text()``).

    Returns:
      The custom-call targets named ``lapack_*`` (e.g. ``lapack_sgetrf_ffi``,
      the LU factorisation behind ``jnp.linalg.solve``); empty if none.
    """
    found: set[str] = set()
    for low in lowered:
        found.update(re.findall(r"custom_call @(lapack_\w+)", low.as_text()))
    return tuple(sorted(found))


def _one_per_process(devices: Sequence[Any]) -> list[Any]:
    first: dict[int, Any] = {}
    for d in devices:
        first.setdefault(d.process_index, d)
    return list(first.values())


def lapack_safe_devices(
    devices: Sequence[Any], lower: Callable[[], Sequence[Any]]
) -> tuple[list[Any], tuple[str, ...]]:
    """``devices``, or one per process if the program calls CPU LAPACK kernels.

    jaxlib runs a batched CPU LAPACK kernel (the LU of ``jnp.linalg.solve``,
    for instance) by splitting the batch over XLA's CPU thread pool and
    waiting for the parts. The programs of a process's CPU devices run on that
    same pool, so when each of its threads runs one device's program and each
    waits inside such a kernel, no thread is left for the parts: the
    computation hangs (seen with jax 0.10.2: 10 of 20 seeds' 50-state policy
    evaluations on each of 2 CPU devices on 2 cores). One device per process
    cannot hang that way. Only CPU devices are checked (GPU and TPU solvers
    are not these kernels), and only when a process holds several of them.

    Args:
      devices: the devices a seed or sweep axis would be sharded over.
      lower: returns the ``jax.jit(...).lower(...)`` results of the program's
        parts (e.g. one seed's ``init`` and chunk); called only when needed.

    Returns:
      ``(devices to use, the LAPACK kernels found)``: ``devices`` unchanged
      and ``()`` when safe, else the first device of each process and the
      kernels' names.
    """
    devs = list(devices)
    cpu = [d for d in devs if d.platform == "cpu"]
    per_process = collections.Counter(d.process_index for d in cpu)
    if not per_process or max(per_process.values()) < 2:
        return devs, ()
    calls = cpu_lapack_calls(*lower())
    if not calls:
        return devs, ()
    return _one_per_process(devs), calls


def _global_inputs(tree: Any, mesh: Mesh) -> Any:
    """Make host-local inputs global replicated arrays (only needed multi-process)."""
    if jax.process_count() == 1:
        return tree
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(replicated, np.asarray(x)),
        tree,
    )


def make_sweep(
    train_fn: TrainFn, num_seeds: int, *, devices: Sequence[Any] | None = None
) -> SweepFn:
    """Return ``sweep(key, stacked_config) -> (State[G, S, ...], Metrics[G, S, ...])``.

    Args:
      train_fn: ``train(key, config) -> (State, Metrics)``, pure and jittable;
        ``config`` is one unstacked grid point. Keep one function object so the
        compiled sweep is reused.
      num_seeds: ``S``, a positive Python int.
      devices: the devices to shard the sweep axis over; default all
        ``jax.devices()`` (global devices after ``jax.distributed.initialize``).

    Returns:
      ``sweep(key, stacked_config)``: ``key`` is a typed key (split into
      :func:`seed_keys`), ``stacked_config`` a config whose traced leaves have a
      leading grid axis ``G``. Every output leaf is shaped ``[G, S, ...]``, and
      ``[g, s]`` equals ``train_fn(seed_keys(key, S)[s], point_g)``.

    Raises:
      ConfigError: if ``num_seeds`` is not a positive int, ``devices`` is empty,
        or (when ``sweep`` is called) the key is not a typed key or the config
        is not stacked.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sweep = make_sweep(lambda k, lr: (lr * jax.random.uniform(k), {}), 2)
      >>> sweep(jax.random.key(0), jnp.array([1.0, 2.0, 3.0]))[0].shape
      (3, 2)
    """
    _check_num_seeds(num_seeds)
    devs = tuple(jax.devices() if devices is None else devices)
    if not devs:
        raise ConfigError("make_sweep needs at least one device")

    def sweep(key: PRNGKey, stacked_config: Any) -> tuple[ArrayTree, ArrayTree]:
        _check_key(key)
        g = num_points(stacked_config)
        fn = _compiled_sweep(train_fn, g, num_seeds, devs, _key_impl(key))
        mesh = sweep_mesh(g, num_seeds, devs)
        inputs = _global_inputs((jax.random.key_data(key), stacked_config), mesh)
        return fn(*inputs)

    return sweep


def run_sweep(
    train_fn: TrainFn,
    key: PRNGKey,
    config: Any,
    num_seeds: int,
    *,
    devices: Sequence[Any] | None = None,
    **axes: Sequence[Any],
) -> tuple[ArrayTree, ArrayTree, list[dict[str, Any]]]:
    """Run ``train_fn`` over ``num_seeds`` seeds × the grid ``axes`` of ``config``.

    Args:
      train_fn: ``train(key, config) -> (State, Metrics)`` (see :func:`make_sweep`).
      key: a typed PRNG key.
      config: the base (unstacked) config.
      num_seeds: ``S``.
      devices: see :func:`make_sweep`.
      **axes: ``field=[v1, v2, ...]`` for traced fields (see
        :func:`jaxrl.config.grid`); none means one grid point, ``config`` itself.

    Returns:
      ``(state, metrics, points)``: leaves ``[G, S, ...]`` and the ``G`` dicts
      naming each grid point (row-major over ``axes``).

    Raises:
      ConfigError: on unknown or static grid fields and the errors of
        :func:`make_sweep`.
    """
    if axes:
        stacked, points = config_lib.grid(config, **axes)
    else:
        stacked, points = config_lib.stack_configs([config]), [{}]
    state, metrics = make_sweep(train_fn, num_seeds, devices=devices)(key, stacked)
    return state, metrics, points


InitFn = Callable[[PRNGKey, Any], ArrayTree]
RunFn = Callable[[PRNGKey, ArrayTree, Any], tuple[ArrayTree, ArrayTree]]


class ChunkedSweep:
    """A sweep run in chunks: ``init`` once, then ``run`` as often as needed.

    Built by :func:`make_chunked_sweep`. The state between calls is a
    ``[G, S, ...]`` pytree sharded as ``PartitionSpec("grid", "seed")`` over
    :attr:`mesh` (the layout of :func:`make_sweep`), so it can be checkpointed
    and restored on any device count.

    Attributes:
      num_points: ``G``.
      num_seeds: ``S``.
      mesh: the sweep mesh (:func:`sweep_mesh`).
      state_sharding: the sharding of every ``[G, S, ...]`` state leaf.
    """

    def __init__(
        self,
        init_fn: InitFn,
        run_fn: RunFn,
        num_points: int,
        num_seeds: int,
        devices: tuple[Any, ...],
    ) -> None:
        self.num_points, self.num_seeds = num_points, num_seeds
        self._devices = devices
        self._init_fn, self._run_fn = init_fn, run_fn
        lay = _Layout(num_points, num_seeds, devices)
        self.mesh, self.state_sharding = lay.mesh, lay.out_sharding

    def _inputs(self, key: PRNGKey, stacked: Any) -> tuple[str, Array, Any]:
        _check_key(key)
        g = num_points(stacked)
        if g != self.num_points:
            raise ConfigError(
                f"this chunked sweep was built for {self.num_points} grid points, "
                f"got a config stacked over {g}"
            )
        data, stacked = _global_inputs((jax.random.key_data(key), stacked), self.mesh)
        return _key_impl(key), data, stacked

    def init(self, key: PRNGKey, stacked_config: Any) -> ArrayTree:
        """``State[G, S, ...]``: ``init_fn(seed_keys(key, S)[s], point_g)`` at ``[g, s]``."""
        impl, data, stacked = self._inputs(key, stacked_config)
        fn = _compiled_chunk(
            self._init_fn, "init", self.num_points, self.num_seeds, self._devices, impl
        )
        return fn(data, stacked)

    def run(
        self, key: PRNGKey, state: ArrayTree, stacked_config: Any
    ) -> tuple[ArrayTree, ArrayTree]:
        """One chunk: ``run_fn(seed key, state[g, s], point_g)`` for every pair.

        ``key`` is the root key given to :meth:`init` (each pair gets its seed
        key again, e.g. to rebuild a per-seed environment; randomness must come
        from the state). Returns ``(State[G, S, ...], Metrics[G, S, ...])``.
        """
        impl, data, stacked = self._inputs(key, stacked_config)
        fn = _compiled_chunk(
            self._run_fn, "run", self.num_points, self.num_seeds, self._devices, impl
        )
        return fn(data, state, stacked)

    def abstract_state(self, key: PRNGKey, stacked_config: Any) -> ArrayTree:
        """``jax.ShapeDtypeStruct`` leaves of :meth:`init`'s result, with
        :attr:`state_sharding` (a restore target for :mod:`jaxrl.checkpoint`)."""
        impl = _key_impl(key)
        fn = _compiled_chunk(
            self._init_fn, "init", self.num_points, self.num_seeds, self._devices, impl
        )
        shapes = jax.eval_shape(fn, jax.random.key_data(key), stacked_config)
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(
                x.shape, x.dtype, sharding=self.state_sharding
            ),
            shapes,
        )


@functools.lru_cache(maxsize=64)
def _compiled_chunk(
    fn: Callable[..., Any],
    kind: str,
    num_points: int,
    num_seeds: int,
    devices: tuple[Any, ...],
    impl: str,
) -> Callable[..., Any]:
    """The jitted ``init(key_data, stacked)`` or ``run(key_data, state, stacked)``."""
    lay = _Layout(num_points, num_seeds, devices)
    if kind == "init":

        def init(key_data: Array, stacked: Any) -> ArrayTree:
            keys, cfgs = lay.pair_keys(key_data, impl), lay.pair_configs(stacked)
            return jax.tree.map(lay.unflatten, vmap_runs(fn)(keys, cfgs))

        return jax.jit(init, in_shardings=(lay.replicated, lay.replicated))

    def run(key_data: Array, state: ArrayTree, stacked: Any) -> Any:
        keys, cfgs = lay.pair_keys(key_data, impl), lay.pair_configs(stacked)
        out = vmap_runs(fn)(keys, jax.tree.map(lay.flatten, state), cfgs)
        return jax.tree.map(lay.unflatten, out)

    state_sharding = lay.out_sharding
    return jax.jit(
        run,
        in_shardings=(lay.replicated, state_sharding, lay.replicated),
        donate_argnums=(1,),
    )


def make_chunked_sweep(
    init_fn: InitFn,
    run_fn: RunFn,
    num_points: int,
    num_seeds: int,
    *,
    devices: Sequence[Any] | None = None,
) -> ChunkedSweep:
    """Return a :class:`ChunkedSweep` over ``num_points`` grid points × ``num_seeds``.

    The chunked form of :func:`make_sweep` (same keys, same layout): for
    ``train(key, cfg) = run_fn(key, init_fn(key, cfg), cfg)`` repeated, calling
    ``init`` and then ``run`` ``k`` times gives the ``[G, S]`` results of
    ``make_sweep(train)``, and the state between calls can be checkpointed.

    Args:
      init_fn: ``init(key, config) -> State`` for one (point, seed) pair.
      run_fn: ``run(key, state, config) -> (State, Metrics)``, one chunk for
        one pair; ``key`` is the pair's seed key (the one ``init_fn`` got).
      num_points: ``G``.
      num_seeds: ``S``.
      devices: see :func:`make_sweep` (default all ``jax.devices()``, global
        after ``jax.distributed.initialize``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> sweep = make_chunked_sweep(
      ...     lambda k, lr: jnp.zeros(()),
      ...     lambda k, x, lr: (x + lr, {"x": x + lr}),
      ...     num_points=2,
      ...     num_seeds=3,
      ... )
      >>> lrs = jnp.array([1.0, 2.0])
      >>> state = sweep.init(jax.random.key(0), lrs)
      >>> state, metrics = sweep.run(jax.random.key(0), state, lrs)
      >>> state, metrics = sweep.run(jax.random.key(0), state, lrs)
      >>> gather(state).tolist()
      [[2.0, 2.0, 2.0], [4.0, 4.0, 4.0]]
    """
    _check_num_seeds(num_seeds)
    _check_num_seeds(num_points)
    devs = tuple(jax.devices() if devices is None else devices)
    if not devs:
        raise ConfigError("make_chunked_sweep needs at least one device")
    return ChunkedSweep(init_fn, run_fn, num_points, num_seeds, devs)


def gather(tree: ArrayTree) -> ArrayTree:
    """Host NumPy copies of every leaf, across processes when there are several.

    With one process this is ``jax.device_get``. After
    ``jax.distributed.initialize`` a sweep's outputs are global arrays whose
    shards live on several processes (``jax.device_get`` refuses them): every
    process must call ``gather`` on the same tree, and each gets the full
    values (``multihost_utils.process_allgather``). Typed PRNG keys come back
    as their ``jax.random.key_data``.

    Examples:
      >>> import jax.numpy as jnp
      >>> gather({"x": jnp.arange(3)})["x"].tolist()
      [0, 1, 2]
    """

    def data(x: Any) -> Any:
        if jnp.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    tree = jax.tree.map(data, tree)
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, jax.device_get(tree))
    from jax.experimental import multihost_utils

    def one(x: Any) -> np.ndarray:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)  # host data or a process-local array: already whole

    return jax.tree.map(one, tree)
