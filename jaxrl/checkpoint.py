"""Save and restore a full (vmapped) training state with orbax, plus JSON metadata.

A checkpoint is one directory per step, ``<directory>/<step>/``, written by
orbax's :class:`orbax.checkpoint.CheckpointManager` with two items:

* ``state``: the leaves of the state pytree as a flat dict ``{"leaf_00000": ...}``
  (typed PRNG keys are stored as their ``jax.random.key_data``);
* ``meta``: a JSON document with the user metadata (e.g. the resolved config and
  the chunk index) and a *manifest*: for every leaf its key path, shape, dtype,
  PRNG implementation (for key leaves) and a CRC-32 of its bytes.

Storing leaves flat, with the tree structure taken from the caller's
``target_state`` at restore time, keeps checkpoints independent of how orbax
handles custom pytree nodes (``flax.struct`` dataclasses, empty ``extras``
dicts). The manifest lets :func:`restore` name exactly what does not match and
detect silently garbled bytes.

Writing: :class:`CheckpointWriter` (what ``jaxrl train`` uses) saves
asynchronously: its ``save`` returns once the state is on the host and
checksummed, orbax writes the files in a background thread, and the next
``save``, ``wait`` or ``close`` waits for them and raises a failure as one line
(:class:`CheckpointSaveError`). It keeps the newest ``max_to_keep`` steps.
:func:`save` is the blocking one-shot form.

Atomicity: orbax writes into ``<step>.orbax-checkpoint-tmp*`` and renames it to
``<step>`` only after every file is written and flushed (on object stores it
writes a ``commit_success.txt`` marker instead). A crash or failure mid-save
leaves only a ``*-tmp*`` directory, which :func:`latest_step` ignores. Existing
steps are never overwritten, and :func:`restore` never deletes anything.

Damaged files (a step whose bytes were garbled, truncated or removed after it
was written) raise :class:`CorruptCheckpointError`, a :class:`ConfigError`;
:func:`restore_latest_intact` reads the newest step that is intact, newest
first, and reports the damaged steps it skipped. A step that does not *match* the
target (another tree, shape or dtype) is a plain :class:`ConfigError` and is
never skipped: an older step of the same run would not match either.

Multi-host: call :func:`save` and :func:`restore` on every process (orbax
synchronises them); the JSON item is written by the primary process. Leaves that
are not fully addressable on one process get no checksum. :func:`restore` reads
each leaf to host memory and places it with the target leaf's sharding if it has
one, else on the default device.

Examples:
  >>> import tempfile, jax, jax.numpy as jnp
  >>> state = {"w": jnp.ones(3), "key": jax.random.key(0), "step": jnp.int32(7)}
  >>> d = tempfile.mkdtemp()
  >>> save(d, 7, state, {"chunk": 1})
  >>> latest_step(d)
  7
  >>> restored, meta = restore(d, jax.eval_shape(lambda: state))
  >>> meta, int(restored["step"])
  ({'chunk': 1}, 7)
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from jaxrl.errors import ConfigError
from jaxrl.types import ArrayTree

__all__ = [
    "CheckpointWriter",
    "CheckpointSaveError",
    "save",
    "restore",
    "restore_latest_intact",
    "Restored",
    "CorruptCheckpointError",
    "latest_step",
    "all_steps",
]

_FORMAT = "jaxrl-checkpoint-v1"
_STATE = "state"
_META = "meta"


class CorruptCheckpointError(ConfigError):
    """A checkpoint step whose files are missing, truncated or garbled.

    Attributes:
      path: the step directory.
      reason: what is wrong, in a few words, without the path (e.g.
        ``"leaf .params['w'] fails its checksum"``).
    """

    def __init__(self, path: Any, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"checkpoint {path} is corrupt: {reason}")
        self.path = str(path)
        self.reason = reason


class Restored(NamedTuple):
    """What :func:`restore_latest_intact` returns.

    Attributes:
      state: the restored state.
      metadata: the metadata given to :func:`save`.
      step: the step that was read.
      skipped: ``(step, reason)`` of every newer step that was corrupt, newest
        first.
    """

    state: ArrayTree
    metadata: dict[str, Any]
    step: int
    skipped: list[tuple[int, str]]


# ----------------------------------------------------------------------------- leaves


def _is_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _key_impl(leaf: Any) -> str:
    """Name of the PRNG implementation of a key array or abstract key leaf."""
    if isinstance(leaf, jax.Array):
        return str(jax.random.key_impl(leaf))
    found: list[str] = []

    def probe(k: jax.Array) -> None:
        found.append(str(jax.random.key_impl(k)))

    jax.eval_shape(probe, jax.ShapeDtypeStruct(leaf.shape, leaf.dtype))
    return found[0]


def _as_array(leaf: Any) -> Any:
    """Return a jax.Array or ShapeDtypeStruct for a leaf (canonical dtypes)."""
    if isinstance(leaf, jax.Array | jax.ShapeDtypeStruct):
        return leaf
    return jnp.asarray(leaf)


def _describe(path: str, leaf: Any) -> dict[str, Any]:
    leaf = _as_array(leaf)
    entry = {
        "path": path,
        "shape": list(leaf.shape),
        "dtype": str(leaf.dtype),
        "key_impl": None,
    }
    if _is_key(leaf):
        entry["key_impl"] = _key_impl(leaf)
    return entry


def _host(array: Any) -> np.ndarray | None:
    """The array's bytes on this host (no copy on CPU); None if not addressable."""
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        return None
    return np.ascontiguousarray(np.asarray(array))


def _crc(array: Any) -> int | None:
    host = _host(array)
    if host is None:
        return None
    return zlib.crc32(host.reshape(-1).view(np.uint8))


def _name(i: int) -> str:
    return f"leaf_{i:05d}"


def _flatten(tree: ArrayTree) -> tuple[list[tuple[str, Any]], Any]:
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(p) or "<root>", leaf) for p, leaf in flat], treedef


# ----------------------------------------------------------------------------- steps


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ConfigError(f"checkpoint step must be a non-negative int, got {step!r}")
    return int(step)


def all_steps(directory: str | epath.PathLike) -> list[int]:
    """Return the sorted steps of the finished checkpoints in ``directory``.

    Only directories named by a plain integer count; orbax's in-progress
    ``<step>.orbax-checkpoint-tmp-*`` directories are ignored. A missing
    ``directory`` has no steps.
    """
    root = epath.Path(directory)
    if not root.is_dir():
        return []
    return sorted(
        int(p.name) for p in root.iterdir() if p.name.isdigit() and p.is_dir()
    )


def latest_step(directory: str | epath.PathLike) -> int | None:
    """Return the largest finished checkpoint step in ``directory``, or None.

    Examples:
      >>> import tempfile
      >>> latest_step(tempfile.mkdtemp()) is None
      True
    """
    steps = all_steps(directory)
    return steps[-1] if steps else None


# ----------------------------------------------------------------------------- save


def _check_max_to_keep(max_to_keep: Any) -> int | None:
    if max_to_keep is not None and (
        isinstance(max_to_keep, bool)
        or not isinstance(max_to_keep, int)
        or max_to_keep < 1
    ):
        raise ConfigError(
            f"max_to_keep must be a positive int or None, got {max_to_keep!r}"
        )
    return max_to_keep


def _check_request(
    path: epath.Path, state: ArrayTree, metadata: dict[str, Any] | None
) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """Check a save request (cheap); return the leaves and the user metadata."""
    user = {} if metadata is None else metadata
    if not isinstance(user, dict):
        raise ConfigError(
            f"checkpoint metadata must be a dict, got {type(user).__name__}"
        )
    try:
        json.dumps(user)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"checkpoint metadata is not JSON-serialisable: {err}"
        ) from None
    if path.exists():
        raise ConfigError(f"checkpoint {path} already exists; refusing to overwrite it")

    leaves, _ = _flatten(state)
    if not leaves:
        raise ConfigError("checkpoint state has no array leaves")
    for p, leaf in leaves:
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise ConfigError(
                f"checkpoint state leaf {p} is abstract; save needs concrete arrays"
            )
    return leaves, user


def _prepare(
    path: epath.Path, state: ArrayTree, metadata: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a save request; return the flat leaves and the JSON document."""
    leaves, user = _check_request(path, state, metadata)
    arrays: dict[str, Any] = {}
    manifest = []
    for i, (p, leaf) in enumerate(leaves):
        leaf = _as_array(leaf)
        entry = _describe(p, leaf)
        stored = jax.random.key_data(leaf) if entry["key_impl"] else leaf
        entry["stored_shape"] = list(stored.shape)
        entry["stored_dtype"] = str(stored.dtype)
        # Orbax copies the arrays to the host before save() returns, so the
        # caller may reuse (donate) the device buffers while the files are
        # written in the background.
        entry["crc32"] = _crc(stored)
        arrays[_name(i)] = stored
        manifest.append(entry)
    return arrays, {"format": _FORMAT, "metadata": user, "manifest": manifest}


class CheckpointSaveError(ConfigError):
    """A checkpoint that could not be written (reported as one line).

    Attributes:
      step: the step that was not saved.
    """

    def __init__(self, path: Any, step: int, err: BaseException) -> None:
        super().__init__(f"checkpoint {path} was not saved: {_one_line(err)}")
        self.step = step


_ORBAX_DIR = os.path.dirname(os.path.abspath(ocp.__file__))
_muted = 0


class _MuteOrbax(logging.Filter):
    """Drop orbax's own log records (its errors come with multi-line tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(_ORBAX_DIR)


_MUTE = _MuteOrbax()


def _mute_orbax(on: bool) -> None:
    global _muted
    _muted += 1 if on else -1
    logger = logging.getLogger("absl")
    if _muted == 1 and on:
        logger.addFilter(_MUTE)
    elif _muted == 0:
        logger.removeFilter(_MUTE)


class CheckpointWriter:
    """Write the checkpoints of one run, asynchronously, keeping the newest ``n``.

    A thin layer over :class:`orbax.checkpoint.CheckpointManager` that writes
    the same ``<directory>/<step>`` layout, manifest and checksums as
    :func:`save`. :meth:`save` returns once the state has been copied to host
    memory and checksummed; orbax writes the files in a background thread,
    into ``<step>.orbax-checkpoint-tmp`` renamed to ``<step>`` when complete.
    Each :meth:`save` first waits for the previous one. Call :meth:`wait`
    before relying on the files, and :meth:`close` (or use ``with``) before
    exiting: it waits too. A failed background write is raised by the next
    :meth:`save`, :meth:`wait` or :meth:`close` as ONE-line
    :class:`CheckpointSaveError`; it leaves only the temporary directory, which
    :func:`all_steps` ignores.

    Pruning: with ``max_to_keep=n``, once a new step is complete the oldest
    steps are deleted so that the ``n`` newest remain (steps already in the
    directory count; save steps in increasing order). A failed save deletes
    nothing. While a writer is open, orbax's own log records are muted (its
    errors reach the caller as exceptions instead).

    Args:
      directory: the checkpoint root (created if missing; local or ``gs://``).
      max_to_keep: how many of the newest steps to keep; ``None`` keeps all.
      async_save: write in the background (default); False blocks in
        :meth:`save` until the step is complete.

    Raises:
      ConfigError: ``max_to_keep`` is not a positive int or None; the
        directory cannot be used.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> d = tempfile.mkdtemp()
      >>> with CheckpointWriter(d, max_to_keep=2) as writer:
      ...     for step in (1, 2, 3):
      ...         writer.save(step, {"x": jnp.arange(3) + step}, {"chunk": step})
      >>> all_steps(d)
      [2, 3]
    """

    def __init__(
        self,
        directory: str | epath.PathLike,
        *,
        max_to_keep: int | None = None,
        async_save: bool = True,
    ) -> None:
        self.max_to_keep = _check_max_to_keep(max_to_keep)
        self.directory = epath.Path(directory)
        self.async_save = bool(async_save)
        self._pending: int | None = None
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.LatestN(n=max_to_keep),
            enable_async_checkpointing=self.async_save,
            save_root_metadata=False,
            lightweight_initialize=True,
        )
        _mute_orbax(True)
        try:
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        except Exception as err:
            _mute_orbax(False)
            raise ConfigError(
                f"cannot write checkpoints to {self.directory}: {_one_line(err)}"
            ) from None
        self._closed = False

    def save(
        self, step: int, state: ArrayTree, metadata: dict[str, Any] | None = None
    ) -> None:
        """Start writing ``state`` and ``metadata`` to ``<directory>/<step>``.

        Args:
          step: a non-negative int, not yet in the directory.
          state: see :func:`save`.
          metadata: see :func:`save`.

        Raises:
          CheckpointSaveError: the previous save failed, or this one could not
            be started.
          ConfigError: as for :func:`save` (nothing is written).
        """
        if self._closed:
            raise ConfigError(f"checkpoint writer for {self.directory} is closed")
        step = _check_step(step)
        self.wait()  # the previous step first: its error names its own step
        path = self.directory / str(step)
        arrays, doc = _prepare(path, state, metadata)
        args = ocp.args.Composite(
            **{_STATE: ocp.args.PyTreeSave(arrays), _META: ocp.args.JsonSave(doc)}
        )
        try:
            self._manager.save(step, args=args, force=True)
        except Exception as err:
            raise CheckpointSaveError(path, step, err) from None
        self._pending = step
        if not self.async_save:
            self.wait()

    def wait(self) -> None:
        """Block until the save in flight (if any) is complete.

        Raises:
          CheckpointSaveError: it failed (raised once).
        """
        step, self._pending = self._pending, None
        try:
            self._manager.wait_until_finished()
        except Exception as err:
            path = self.directory / str(step if step is not None else "?")
            raise CheckpointSaveError(path, -1 if step is None else step, err) from None

    def close(self) -> None:
        """Wait for the save in flight, then release orbax's threads."""
        if self._closed:
            return
        try:
            self.wait()
        finally:
            self._closed = True
            try:
                self._manager.close()
            except Exception:  # an error already raised by wait()
                pass
            _mute_orbax(False)

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
            return
        # Already failing (e.g. Ctrl-C): still finish the save in flight, but
        # do not hide the original exception behind a save error.
        try:
            self.close()
        except Exception:
            pass


def save(
    directory: str | epath.PathLike,
    step: int,
    state: ArrayTree,
    metadata: dict[str, Any] | None = None,
    *,
    max_to_keep: int | None = None,
) -> None:
    """Write ``state`` and ``metadata`` to ``<directory>/<step>`` atomically.

    A blocking :class:`CheckpointWriter` save: all writing has finished when it
    returns.

    Args:
      directory: the checkpoint root (created if missing; local or ``gs://``).
      step: the step (e.g. the chunk index), a non-negative int.
      state: any pytree of arrays: flax structs, optax states, buffer states,
        typed PRNG keys (stored as key data plus the implementation name), with
        any leading ``[S]`` or ``[G, S]`` sweep axes.
      metadata: a JSON-serialisable dict (e.g. ``{"config": to_dict(cfg),
        "chunk": 3}``), returned by :func:`restore`.
      max_to_keep: if given, delete the oldest finished steps after a successful
        save so that at most this many remain. By default nothing is deleted.

    Raises:
      ConfigError: if the step already exists (checkpoints are never
        overwritten), ``metadata`` is not JSON-serialisable, or ``state`` has no
        array leaves; :class:`CheckpointSaveError` if writing failed.
    """
    step = _check_step(step)
    _check_max_to_keep(max_to_keep)
    # Check before the writer creates the directory.
    _check_request(epath.Path(directory) / str(step), state, metadata)
    with CheckpointWriter(directory, max_to_keep=max_to_keep, async_save=False) as w:
        w.save(step, state, metadata)


# ----------------------------------------------------------------------------- restore


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _compare(path: epath.Path, saved: list[dict], wanted: list[dict]) -> None:
    """Raise ConfigError naming the first difference between two manifests."""
    prefix = f"checkpoint {path} does not match the target state"
    saved_paths = [e["path"] for e in saved]
    wanted_paths = [e["path"] for e in wanted]
    if saved_paths != wanted_paths:
        missing = [p for p in wanted_paths if p not in set(saved_paths)]
        extra = [p for p in saved_paths if p not in set(wanted_paths)]
        if missing or extra:
            detail = (
                f"target leaves missing from the checkpoint: {missing[:3]}"
                if missing
                else ""
            )
            if extra:
                detail += "; " if detail else ""
                detail += f"checkpoint leaves not in the target: {extra[:3]}"
        else:
            detail = "same leaves in a different order"
        raise ConfigError(
            f"{prefix}: tree structure differs "
            f"({len(saved)} vs {len(wanted)} leaves; {detail})"
        )
    for s, w in zip(saved, wanted, strict=True):
        for field in ("shape", "dtype", "key_impl"):
            if s[field] != w[field]:
                sv = tuple(s[field]) if field == "shape" else s[field]
                wv = tuple(w[field]) if field == "shape" else w[field]
                raise ConfigError(
                    f"{prefix}: leaf {w['path']} has {field} {sv} in the checkpoint, "
                    f"{wv} in the target"
                )


def _place(array: np.ndarray, entry: dict, target: Any) -> Any:
    value = jnp.asarray(array)
    if entry["key_impl"]:
        value = jax.random.wrap_key_data(value, impl=entry["key_impl"])
    sharding = getattr(target, "sharding", None)
    if sharding is not None:
        value = jax.device_put(value, sharding)
    return value


def _read_leaf(
    ckptr: ocp.Checkpointer, path: epath.Path, name: str, entry: dict
) -> dict:
    """Read one stored leaf as a NumPy array (``{name: array}``)."""
    item = {
        name: jax.ShapeDtypeStruct(tuple(entry["stored_shape"]), entry["stored_dtype"])
    }
    args = ocp.args.PyTreeRestore(
        item=item,
        restore_args={name: ocp.RestoreArgs(restore_type=np.ndarray)},
        partial_restore=True,
    )
    return ckptr.restore(path, args=ocp.args.Composite(**{_STATE: args}))[_STATE]


def restore(
    directory: str | epath.PathLike,
    target_state: ArrayTree,
    step: int | None = None,
) -> tuple[ArrayTree, dict[str, Any]]:
    """Read a checkpoint into the structure of ``target_state``.

    Args:
      directory: the checkpoint root given to :func:`save`.
      target_state: a concrete state or an abstract one (``jax.eval_shape`` of
        the init function): supplies the tree structure, shapes, dtypes, PRNG
        key implementations and (if present) shardings.
      step: the step to read; ``None`` reads :func:`latest_step`.

    Returns:
      ``(state, metadata)``: the restored state (bitwise equal to what was
      saved) and the metadata dict given to :func:`save` (``{}`` if none).

    Raises:
      CorruptCheckpointError: naming the checkpoint path, if the step's files
        are missing, truncated or garbled.
      ConfigError: naming the checkpoint path, if there is no checkpoint or the
        tree structure, a shape, a dtype or a key implementation differs from
        ``target_state``. Nothing is ever deleted.
    """
    root = epath.Path(directory)
    if step is None:
        step = latest_step(root)
        if step is None:
            raise ConfigError(f"no checkpoint found in {root}")
    step = _check_step(step)
    path = root / str(step)
    if not path.is_dir():
        have = all_steps(root)
        raise ConfigError(
            f"checkpoint {path} not found (available steps: {have or 'none'})"
        )

    leaves, treedef = _flatten(target_state)
    wanted = [_describe(p, leaf) for p, leaf in leaves]

    # METADATA: read and check the manifest before touching the arrays.
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            doc = ckptr.restore(
                path, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
            )[_META]
    except Exception as err:  # orbax/tensorstore raise many types
        raise CorruptCheckpointError(
            path,
            f"metadata unreadable: {_one_line(err)}",
            f"checkpoint {path} is corrupt or unreadable (metadata): {_one_line(err)}",
        ) from None
    if (
        not isinstance(doc, dict)
        or doc.get("format") != _FORMAT
        or "manifest" not in doc
    ):
        raise CorruptCheckpointError(
            path,
            "metadata is not a jaxrl manifest",
            f"checkpoint {path} is corrupt or not a jaxrl checkpoint (metadata)",
        )
    saved = doc["manifest"]
    _compare(path, saved, wanted)

    # ARRAYS: one leaf per orbax call. When a read fails inside a batched
    # restore, orbax closes its event loop while sibling tensorstore reads are
    # still in flight, and their callbacks later raise "Event loop is closed"
    # from background threads. Reading leaf by leaf leaves nothing in flight.
    names = [_name(i) for i in range(len(saved))]
    flat: dict[str, Any] = {}
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            for name, entry in zip(names, saved, strict=True):
                flat.update(_read_leaf(ckptr, path, name, entry))
    except ConfigError:
        raise
    except Exception as err:
        raise CorruptCheckpointError(
            path,
            f"arrays unreadable: {_one_line(err)}",
            f"checkpoint {path} is corrupt or unreadable (arrays): {_one_line(err)}",
        ) from None

    values = []
    for name, entry, (_, target) in zip(names, saved, leaves, strict=True):
        array = flat.get(name) if isinstance(flat, dict) else None
        if array is None:
            raise CorruptCheckpointError(path, f"leaf {entry['path']} is missing")
        array = np.asarray(array)
        if (
            list(array.shape) != entry["stored_shape"]
            or str(array.dtype) != entry["stored_dtype"]
        ):
            raise CorruptCheckpointError(
                path,
                f"leaf {entry['path']} reads as {array.dtype}{list(array.shape)}, "
                f"stored as {entry['stored_dtype']}{entry['stored_shape']}",
            )
        if entry["crc32"] is not None and _crc(array) != entry["crc32"]:
            raise CorruptCheckpointError(
                path, f"leaf {entry['path']} fails its checksum"
            )
        values.append(_place(array, entry, target))
    return jax.tree_util.tree_unflatten(treedef, values), doc.get("metadata", {})


def restore_latest_intact(
    directory: str | epath.PathLike, target_state: ArrayTree
) -> Restored:
    """Restore the newest step of ``directory`` that is intact.

    Steps are tried newest first; a step that raises
    :class:`CorruptCheckpointError` is skipped (and listed in
    ``Restored.skipped``), any other error stops the search. Nothing is deleted
    or renamed.

    Args:
      directory: the checkpoint root given to :func:`save`.
      target_state: as for :func:`restore`.

    Returns:
      A :class:`Restored` ``(state, metadata, step, skipped)``.

    Raises:
      ConfigError: there is no checkpoint, every step is corrupt (one line
        naming each step and its reason), or the newest readable step does not
        match ``target_state``.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> d = tempfile.mkdtemp()
      >>> save(d, 1, {"x": jnp.arange(3)}); save(d, 2, {"x": jnp.arange(3) + 1})
      >>> restore_latest_intact(d, {"x": jnp.zeros(3, jnp.int32)}).step
      2
    """
    root = epath.Path(directory)
    steps = all_steps(root)
    if not steps:
        raise ConfigError(f"no checkpoint found in {root}")
    skipped: list[tuple[int, str]] = []
    for step in reversed(steps):
        try:
            state, metadata = restore(root, target_state, step)
        except CorruptCheckpointError as err:
            skipped.append((step, err.reason))
            continue
        return Restored(state, metadata, step, skipped)
    detail = "; ".join(f"step {step}: {reason}" for step, reason in skipped)
    raise ConfigError(f"no intact checkpoint in {root} ({detail})")
