"""Host-side logging: crash-safe writers, metric flattening and a progress bar.

This is one of the two modules of :mod:`jaxrl` allowed to do I/O (the other is
:mod:`jaxrl.checkpoint`). Everything here runs on the host:

* :func:`write_json_atomic`, :func:`write_jsonl_atomic`, :func:`write_csv_atomic`
  write a whole file to a temporary file in the same directory, ``fsync`` it and
  ``os.replace`` it over the target, so a reader (or a crash) sees either the old
  file or the complete new one, never a half-written one.
* :class:`JsonlAppender` appends per-chunk metric rows to a JSON-lines file
  without rewriting earlier lines (append + ``fsync``; a torn last line left by
  a crash is dropped when the file is next opened).
* :func:`metrics_to_rows` flattens per-seed, per-iteration metrics ``[S, T]`` into
  rows ``{"seed", "iter", <metric>: value}``.
* :func:`make_progress_callback` returns a function that can be called inside
  ``jit`` (and under ``vmap``) and reports progress on the host through
  ``jax.debug.callback``: a ``tqdm`` bar on a terminal, one plain line per
  update elsewhere (CI logs, ``nohup``, pipes).

Examples:
  >>> import numpy as np
  >>> rows = metrics_to_rows({"loss": np.array([[1.0, 2.0]])}, seed_ids=[7], step_offset=10)
  >>> rows
  [{'seed': 7, 'iter': 10, 'loss': 1.0}, {'seed': 7, 'iter': 11, 'loss': 2.0}]
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "atomic_file",
    "write_atomic",
    "write_json_atomic",
    "write_jsonl_atomic",
    "write_csv_atomic",
    "read_jsonl",
    "JsonlAppender",
    "metrics_to_rows",
    "rows_to_metrics",
    "to_jsonable",
    "from_jsonable",
    "ProgressCallback",
    "make_progress_callback",
]


# ----------------------------------------------------------------------------- atomic files


def _fsync_dir(directory: str) -> None:
    """Flush a directory entry to disk (best effort; not possible on every OS)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    The temporary file is created empty with the mode a plain ``open`` would
    give (``0o666`` less the process umask, unlike :func:`tempfile.mkstemp`'s
    ``0o600``), so results stay readable as the user's other files are. After
    the block it is ``fsync``-ed and renamed over ``path`` with ``os.replace``:
    a reader (or a crash) sees the old file or the complete new one. If the
    block raises (``KeyboardInterrupt`` and ``SystemExit`` included, e.g. the
    command line's SIGTERM handler) the temporary file is removed and ``path``
    is left untouched.

    Args:
      path: the target file; its parent directory is created if missing.
      suffix: the temporary file's suffix (some writers pick a format by it).

    Yields:
      The temporary file's path, to be written (by name) inside the block.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(
        directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}{suffix}"
    )
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(directory)


def write_atomic(path: str | os.PathLike, chunks: Iterable[str]) -> None:
    """Write text chunks to ``path`` atomically (see :func:`atomic_file`).

    If iterating ``chunks`` raises (or the process dies) the previous content
    of ``path`` is left untouched and the temporary file is removed.

    Args:
      path: the target file; its parent directory is created if missing.
      chunks: strings to write in order (a generator is consumed lazily).

    Raises:
      Whatever iterating ``chunks`` raises, after cleaning up.
    """
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            for chunk in chunks:
                f.write(chunk)


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _nonfinite_text(value: float) -> str:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for a non-finite float."""
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def to_jsonable(value: Any) -> Any:
    """Convert numpy/jax scalars and arrays to plain Python for strict JSON.

    Non-finite floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"``
    (strict JSON has no such numbers; :func:`from_jsonable` and
    :func:`rows_to_metrics` read them back), so ``null`` stays free for a value
    that is absent. The same convention as :func:`jaxrl.config.to_dict`.

    Examples:
      >>> to_jsonable({"a": np.float32(1.5), "b": [float("nan"), -np.inf], "c": None})
      {'a': 1.5, 'b': ['nan', '-inf'], 'c': None}
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, jax.Array | np.ndarray):
        arr = np.asarray(value)
        return to_jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return _nonfinite_text(value)
    return value


def from_jsonable(value: Any) -> Any:
    """Invert :func:`to_jsonable`'s strings: ``"nan"``, ``"inf"``, ``"-inf"`` to floats.

    Applied recursively to mappings and lists (a JSON document read back, such
    as ``summary.json``); every other value is returned unchanged.

    Examples:
      >>> from_jsonable({"mean": "nan", "n": 0, "ci": ["-inf", 1.0], "x": None})
      {'mean': nan, 'n': 0, 'ci': [-inf, 1.0], 'x': None}
    """
    if isinstance(value, Mapping):
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if isinstance(value, str):
        return _NONFINITE.get(value, value)
    return value


def _dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(to_jsonable(obj), allow_nan=False, **kwargs)


def write_json_atomic(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2
) -> None:
    """Write ``obj`` as one JSON document to ``path`` atomically (see :func:`write_atomic`).

    Args:
      path: the target file.
      obj: a JSON-serialisable object; numpy/jax values are converted and
        non-finite floats become ``"nan"``, ``"inf"`` or ``"-inf"``.
      indent: JSON indentation.
    """
    write_atomic(path, [_dumps(obj, indent=indent, sort_keys=True), "\n"])


def write_jsonl_atomic(
    path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]
) -> None:
    """Write ``rows`` as JSON lines (one object per line) to ``path`` atomically.

    ``rows`` may be a generator; if it raises midway the old file is kept intact.
    """
    write_atomic(path, (_dumps(row) + "\n" for row in rows))


def _csv_cell(value: Any) -> Any:
    value = to_jsonable(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def write_csv_atomic(
    path: str | os.PathLike,
    rows: Iterable[Mapping[str, Any]],
    fieldnames: Sequence[str] | None = None,
) -> None:
    """Write dict rows as CSV with a header to ``path`` atomically.

    Args:
      path: the target file.
      rows: mappings from column name to value. Missing cells and ``None`` are
        left empty; non-finite floats are written as ``nan``, ``inf``, ``-inf``.
      fieldnames: the column order; by default the union of the rows' keys in
        order of first appearance.

    Raises:
      ValueError: if a row has a key that is not in ``fieldnames``.
      Whatever iterating ``rows`` raises (the old file is kept intact).
    """
    rows = list(rows)  # the header needs every key; a failing generator fails here
    if fieldnames is None:
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        fieldnames = list(names)

    def chunks() -> Iterable[str]:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(fieldnames), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(v) for k, v in row.items()})
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        yield buf.getvalue()

    write_atomic(path, chunks())


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSON-lines file into a list of dicts (missing file: empty list).

    A trailing line without a newline (an interrupted plain append by another
    tool) is ignored rather than failing the read.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    complete = lines[:-1]  # the last piece is "" for a file ending in "\n"
    return [json.loads(line) for line in complete if line.strip()]


class JsonlAppender:
    """Append rows to a JSON-lines file, never losing what was written before.

    :meth:`append` is a real append: it serialises every new row first (if that
    fails nothing is written), then writes them with one ``write`` to the file
    opened for appending and ``fsync``-s it. Earlier bytes are never rewritten,
    so an append costs time proportional to the new rows only. If the write
    fails (a full disk) or is interrupted, the file is truncated back to its
    previous length before the error is raised.

    Crash safety: a crash during an append can leave a prefix of the new rows
    whose last line is torn (no trailing newline). :func:`read_jsonl` ignores
    such a line, and opening an appender on the file repairs it: the
    unterminated last line is dropped, and so are the rows ``keep`` rejects, in
    ONE atomic rewrite (:func:`write_atomic`) at open, made only when something
    is dropped. Each row is one line, so complete lines are always complete
    rows.

    Args:
      path: the JSON-lines file.
      keep: optional predicate on existing rows, applied once when the appender
        is opened: rows for which it returns False are dropped. Resuming from a
        checkpoint at iteration ``k`` uses ``keep=lambda r: r["iter"] < k`` to
        discard rows of a chunk that was logged but not checkpointed.
      fresh: start from an empty file (ignore and replace any existing content).

    Examples:
      >>> import tempfile, os
      >>> d = tempfile.mkdtemp()
      >>> log = JsonlAppender(os.path.join(d, "m.jsonl"), fresh=True)
      >>> log.append([{"iter": 0}]); log.append([{"iter": 1}])
      >>> [r["iter"] for r in read_jsonl(log.path)]
      [0, 1]
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        fresh: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self._rows = 0
        if fresh or not os.path.exists(self.path):
            write_atomic(self.path, [])
            return

        def kept(line: bytes) -> bool:
            return (
                line.endswith(b"\n")
                and bool(line.strip())
                and (keep is None or keep(json.loads(line)))
            )

        # Stream the file (it may be large); rewrite it only if a line goes.
        dirty = False
        with open(self.path, "rb") as f:
            for line in f:
                if kept(line):
                    self._rows += 1
                else:  # a blank, rejected or unterminated (torn) line
                    dirty = True
        if dirty:

            def lines() -> Iterator[str]:
                with open(self.path, "rb") as f:
                    yield from (ln.decode("utf-8") for ln in f if kept(ln))

            write_atomic(self.path, lines())

    def __len__(self) -> int:
        """Return the number of rows in the file."""
        return self._rows

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append ``rows``; if serialising or writing them fails, the file is unchanged."""
        lines = [_dumps(row) + "\n" for row in rows]
        if not lines:
            return
        data = memoryview("".join(lines).encode("utf-8"))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except BaseException:  # full disk, Ctrl-C, SIGTERM: undo a partial write
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        self._rows += len(lines)


# ----------------------------------------------------------------------------- metric rows


def _scalar(value: Any) -> Any:
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else _nonfinite_text(value)


def metrics_to_rows(
    metrics: Mapping[str, Any],
    seed_ids: Sequence[int] | None = None,
    step_offset: int = 0,
) -> list[dict[str, Any]]:
    """Flatten per-seed, per-iteration metrics into rows.

    Args:
      metrics: ``{name: [S, T]}`` arrays of scalars per seed and iteration (what
        ``jit(vmap(run))`` returns).
      seed_ids: ``[S]`` labels for the seed axis (default ``0..S-1``).
      step_offset: the iteration index of column 0 (e.g. ``chunk * T``).

    Returns:
      ``S * T`` rows, seed-major: ``{"seed": seed_ids[s], "iter": step_offset + t,
      name: value, ...}`` with Python scalars (non-finite floats become the
      strings ``"nan"``, ``"inf"``, ``"-inf"``, as in :func:`to_jsonable`).

    Raises:
      ValueError: if a metric is not two-dimensional or the shapes disagree.
    """
    arrays = {name: np.asarray(value) for name, value in metrics.items()}
    if not arrays:
        return []
    shapes = {name: a.shape for name, a in arrays.items()}
    for name, shape in shapes.items():
        if len(shape) != 2:
            raise ValueError(
                f"metric {name!r} has shape {shape}; expected [seeds, iters]"
            )
    if len(set(shapes.values())) != 1:
        raise ValueError(f"metrics have different shapes: {shapes}")
    num_seeds, num_iters = next(iter(shapes.values()))
    if seed_ids is None:
        seed_ids = range(num_seeds)
    seed_ids = [int(s) for s in seed_ids]
    if len(seed_ids) != num_seeds:
        raise ValueError(f"got {len(seed_ids)} seed ids for {num_seeds} seeds")
    lists = {name: a.tolist() for name, a in arrays.items()}
    kinds = {name: a.dtype.kind for name, a in arrays.items()}
    rows = []
    for s, seed in enumerate(seed_ids):
        for t in range(num_iters):
            row: dict[str, Any] = {"seed": seed, "iter": int(step_offset) + t}
            for name, values in lists.items():
                v = values[s][t]
                if kinds[name] == "f":
                    v = v if math.isfinite(v) else _nonfinite_text(v)
                row[name] = v
            rows.append(row)
    return rows


def rows_to_metrics(
    rows: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, np.ndarray], list[int], np.ndarray]:
    """Invert :func:`metrics_to_rows`: rows back to ``{name: [S, T]}`` float arrays.

    The strings ``"nan"``, ``"inf"`` and ``"-inf"`` are read as those floats;
    missing cells and ``None`` (older files wrote non-finite values so) become
    ``NaN``; when a ``(seed, iter)`` pair occurs more than once the last row wins.

    Args:
      rows: mappings with ``"seed"``, ``"iter"`` and metric columns.

    Returns:
      ``(metrics, seed_ids, iters)``: float64 arrays ``[S, T]`` over the sorted
      seed ids ``[S]`` and sorted iteration indices ``iters`` ``[T]``.
    """
    rows = list(rows)
    seed_ids = sorted({int(r["seed"]) for r in rows})
    iters = np.array(sorted({int(r["iter"]) for r in rows}), dtype=np.int64)
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(k for k in r if k not in ("seed", "iter")))
    s_index = {s: i for i, s in enumerate(seed_ids)}
    t_index = {int(t): i for i, t in enumerate(iters)}
    out = {n: np.full((len(seed_ids), len(iters)), np.nan) for n in names}
    for r in rows:
        i, j = s_index[int(r["seed"])], t_index[int(r["iter"])]
        for n in names:
            v = r.get(n)
            if isinstance(v, bool | int | float):
                out[n][i, j] = float(v)
            elif isinstance(v, str) and v in _NONFINITE:
                out[n][i, j] = _NONFINITE[v]
    return out, seed_ids, iters


# ----------------------------------------------------------------------------- progress


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _format_count(value: float) -> str:
    """A rate or count for a progress line: whole numbers from 100 up, else 3 digits."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _format_duration(seconds: float) -> str:
    """``6s``, ``2m05s``, ``1h02m``."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressCallback:
    """A progress reporter callable inside ``jit`` (see :func:`make_progress_callback`).

    Call it inside a jitted function as ``progress(seed_index, iteration)``; it
    stages a ``jax.debug.callback`` that advances the progress on the host to
    ``iteration + 1`` (the maximum seen so far, so seeds reporting the same
    iteration count once). Under ``vmap`` the callback is run once per batch
    element, or receives batched arrays; both are handled. A host loop can
    report directly with :meth:`update_to` instead (nothing is staged then).

    Where it reports: on a terminal (``stream.isatty()``) a ``tqdm`` bar;
    otherwise (CI logs, ``nohup``, pipes, where a bar would only appear at the
    end) one plain line per advance, flushed at once::

        dqn/cartpole-small: 2400/12000 env steps per seed (20%), 1530/s, ETA 6s

    The drivers advance it once per chunk, so that is one line per chunk. The
    rate of the first line includes compilation; later lines measure from the
    first line on, and the last one gives the elapsed time (``done in 8s``).
    When ``quiet``, calling it stages nothing, so compiled code is unchanged.

    Attributes:
      total: the number of iterations of the run.
      enabled: whether progress is reported at all (not ``quiet``).
      lines: whether it is reported as plain lines (not a terminal).
      done: iterations reported so far.
      clock: the time source (``time.monotonic``; tests replace it).
    """

    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        total: int,
        desc: str = "",
        *,
        quiet: bool = False,
        stream: Any = None,
        ordered: bool = True,
        force: bool = False,
        unit: str = "iterations",
        scale: int = 1,
    ) -> None:
        self.total = int(total)
        self.desc = desc
        self.ordered = ordered
        self.unit = unit
        self.scale = int(scale)
        self.done = 0
        self.seeds_seen: set[int] = set()
        self._stream = sys.stderr if stream is None else stream
        self.enabled = not quiet
        self.lines = self.enabled and not (force or _is_tty(self._stream))
        self._staged = False
        self._start = (self.clock(), 0)  # (time, done) the first rate counts from
        self._first_line: tuple[float, int] | None = None
        self._bar = None
        if self.enabled and not self.lines:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.total, desc=desc, file=self._stream, dynamic_ncols=True
            )

    def _host(self, seed_index: Any, iteration: Any) -> None:
        seeds = np.asarray(seed_index).reshape(-1)
        self.seeds_seen.update(int(s) for s in seeds)
        self.update_to(int(np.max(np.asarray(iteration))) + 1)

    def start_at(self, done: int) -> None:
        """Start (or resume) at ``done`` iterations: no line, rates count from here."""
        done = min(int(done), self.total)
        if self._bar is not None and done > self.done:
            self._bar.update(done - self.done)
        self.done = max(self.done, done)
        self._start = (self.clock(), self.done)
        self._first_line = None

    def update_to(self, done: int) -> None:
        """Move the progress (host side) to ``done`` iterations if that is further."""
        done = min(int(done), self.total)
        if done > self.done:
            if self._bar is not None:
                self._bar.update(done - self.done)
            self.done = done
            if self.lines:
                print(self.format_line(), file=self._stream, flush=True)

    def format_line(self) -> str:
        """The plain progress line for the current state (see the class docstring)."""
        now = self.clock()
        since, since_done = self._first_line or self._start
        if self._first_line is None:
            self._first_line = (now, self.done)
        elapsed = now - since
        rate = (self.done - since_done) / elapsed if elapsed > 0 else math.inf
        pct = 100 * self.done // max(self.total, 1)
        head = f"{self.desc}: " if self.desc else ""
        text = (
            f"{head}{self.done * self.scale}/{self.total * self.scale} {self.unit} "
            f"({pct}%)"
        )
        if math.isfinite(rate) and rate > 0:
            text += f", {_format_count(rate * self.scale)}/s"
        if self.done >= self.total:
            return text + f", done in {_format_duration(now - self._start[0])}"
        if math.isfinite(rate) and rate > 0:
            text += f", ETA {_format_duration((self.total - self.done) / rate)}"
        return text

    def __call__(self, seed_index: Any, iteration: Any) -> None:
        """Stage a host callback reporting ``iteration`` (0-based) of ``seed_index``."""
        if not self.enabled:
            return
        self._staged = True
        jax.debug.callback(ordered=self.ordered)(self._host, seed_index, iteration)

    def close(self) -> None:
        """Flush pending callbacks and close the bar."""
        if self._staged:
            jax.effects_barrier()
            self._staged = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressCallback:
        """Return self (context manager closes the bar)."""
        return self

    def __exit__(self, *exc: Any) -> None:
        """Close the bar."""
        self.close()


def make_progress_callback(
    total: int,
    desc: str = "",
    *,
    quiet: bool = False,
    stream: Any = None,
    ordered: bool = True,
    force: bool = False,
    unit: str = "iterations",
    scale: int = 1,
) -> ProgressCallback:
    """Return a progress reporter usable inside ``jit`` via ``jax.debug.callback``.

    Args:
      total: iterations in the run (the bar's length).
      desc: the label.
      quiet: report nothing (and stage nothing).
      stream: where progress goes (default ``sys.stderr``): a ``tqdm`` bar if
        it is a TTY, else one plain line per advance (see :class:`ProgressCallback`).
      ordered: stage ordered callbacks (in program order). Set False when the
        computation is sharded over several devices, where ordered effects are
        not supported.
      force: draw the bar even if ``stream`` is not a TTY (tests).
      unit: what the plain lines count, e.g. ``"env steps per seed"``.
      scale: units per iteration (e.g. ``num_envs`` env steps); the lines show
        ``iterations * scale``.

    Returns:
      A :class:`ProgressCallback` ``progress``; inside jit call
      ``progress(seed_index, iteration)``; call ``progress.close()`` at the end.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> progress = make_progress_callback(3, "demo", quiet=True)
      >>> def body(c, t):
      ...     progress(0, t)
      ...     return c, None
      >>> _ = jax.jit(lambda: jax.lax.scan(body, 0, jnp.arange(3)))()
      >>> progress.close()
    """
    return ProgressCallback(
        total,
        desc,
        quiet=quiet,
        stream=stream,
        ordered=ordered,
        force=force,
        unit=unit,
        scale=scale,
    )
