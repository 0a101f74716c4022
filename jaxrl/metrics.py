"""Host-side statistics over seeds: mean, IQM, bootstrap confidence intervals.

NumPy only; runs on the host after training (never inside ``jit``). Values are
laid out seed-major: ``[S]`` (one number per seed) or ``[S, T]`` (a learning
curve per seed; statistics are taken over seeds for every ``t``). Non-finite
entries (e.g. ``NaN`` for "no episode finished yet") are ignored; a column
without any finite value gives ``NaN``.

The bootstrap resamples *seeds* with replacement (a curve keeps its seed's
values at every ``t``, so bands are consistent over time) and reports the
percentile interval. With ``strata`` (one array per task/environment) each
stratum is resampled separately and the statistic is taken over the union, the
stratified bootstrap of Agarwal et al. (2021).

Divergence: :func:`first_divergence` finds each seed's first diverged iteration
from the drivers' per-chunk state check (:data:`HEALTH_METRIC`) and an agent's
own :data:`AGENT_DIVERGED_METRIC`; summaries leave diverged seeds out and count
them, and :func:`mask_after` cuts their curves at the divergence.

References:
  Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13
  (percentile interval).
  Agarwal et al., *Deep RL at the Edge of the Statistical Precipice*, NeurIPS
  2021 (IQM, stratified bootstrap).

Examples:
  >>> import numpy as np
  >>> float(iqm(np.array([0.0, 1.0, 2.0, 3.0, 100.0, -100.0, 4.0, 5.0])))
  2.5
  >>> s = summarize(np.arange(10.0), seed=0)
  >>> s["mean"], s["n"]
  (4.5, 10)
  >>> bool(s["ci_low"] < 4.5 < s["ci_high"])
  True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "mean",
    "std",
    "iqm",
    "bootstrap_ci",
    "summarize",
    "curve_summary",
    "final_values",
    "normalized_score",
    "HEALTH_METRIC",
    "AGENT_DIVERGED_METRIC",
    "SPARSE_NAMESPACES",
    "first_divergence",
    "mask_after",
]

HEALTH_METRIC = "health/finite"
"""The drivers' per-chunk state check: 1.0 (every float of the seed's state is
finite, :func:`jaxrl.loop.tree_is_finite`) or 0.0 on each chunk's last
iteration, NaN on the others."""

AGENT_DIVERGED_METRIC = "train/diverged"
"""An agent's own divergence flag (1.0 on a step the agent judges diverged, e.g.
:mod:`jaxrl.agents.dual_rl`'s non-finite loss or ``|V|`` above a threshold)."""

SPARSE_NAMESPACES = ("episode/", "eval/", "health/")
"""Metric namespaces that are NaN on iterations without a finished episode,
evaluation or check; their NaN never signals divergence."""

Statistic = Callable[..., np.ndarray]


def _as_float(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr[None]
    return arr


def mean(values: Any, axis: int | None = 0) -> np.ndarray:
    """Mean over ``axis`` ignoring non-finite entries (all non-finite: ``NaN``).

    Args:
      values: ``[S]`` or ``[S, T]`` (any shape).
      axis: the axis to reduce (``None``: everything).

    Returns:
      The mean; a float64 array with ``axis`` removed.
    """
    arr = _as_float(values)
    ok = np.isfinite(arr)
    total = np.sum(np.where(ok, arr, 0.0), axis=axis)
    count = np.sum(ok, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def std(values: Any, axis: int | None = 0, ddof: int = 1) -> np.ndarray:
    """Standard deviation over ``axis`` ignoring non-finite entries.

    Returns ``NaN`` where fewer than ``ddof + 1`` finite values exist.
    """
    arr = _as_float(values)
    ok = np.isfinite(arr)
    count = np.sum(ok, axis=axis)
    m = mean(arr, axis=axis)
    centred = np.where(ok, arr - (m if axis is None else np.expand_dims(m, axis)), 0.0)
    ss = np.sum(centred**2, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > ddof, np.sqrt(ss / np.maximum(count - ddof, 1)), np.nan)


def iqm(values: Any, axis: int | None = 0) -> np.ndarray:
    """Interquartile mean: the 25%-trimmed mean over ``axis``.

    Sorts the finite values, drops ``floor(n / 4)`` from each end and averages
    the rest: the same convention as ``scipy.stats.trim_mean(x, 0.25)``.

    Args:
      values: ``[S]`` or ``[S, T]`` (any shape).
      axis: the axis to reduce (``None``: the flattened array).

    Returns:
      The IQM, with ``axis`` removed.
    """
    arr = _as_float(values)
    if axis is None:
        arr, axis = arr.reshape(-1), 0
    arr = np.moveaxis(arr, axis, -1)
    ok = np.isfinite(arr)
    n = np.sum(ok, axis=-1, keepdims=True)
    ranked = np.sort(np.where(ok, arr, np.inf), axis=-1)  # non-finite last
    cut = n // 4
    pos = np.arange(arr.shape[-1])
    keep = (pos >= cut) & (pos < n - cut)
    total = np.sum(np.where(keep, ranked, 0.0), axis=-1)
    count = np.sum(keep, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


_STATISTICS: dict[str, Statistic] = {"mean": mean, "iqm": iqm}


def _statistic(statistic: str | Statistic) -> Statistic:
    if callable(statistic):
        return statistic
    try:
        return _STATISTICS[statistic]
    except KeyError:
        raise ValueError(
            f"unknown statistic {statistic!r}; choose one of {sorted(_STATISTICS)}"
        ) from None


def bootstrap_ci(
    values: Any = None,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    *,
    statistic: str | Statistic = "mean",
    strata: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap confidence interval of a statistic over seeds.

    Draws ``num_resamples`` resamples of the seed axis with replacement, computes
    ``statistic(resample, axis=0)`` for each and returns the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles.

    Args:
      values: ``[S]`` or ``[S, T]`` per-seed values (seed axis first). Ignored
        when ``strata`` is given.
      num_resamples: bootstrap resamples ``B``.
      confidence: the interval's nominal coverage in ``(0, 1)``.
      seed: the seed of the numpy ``Generator`` drawing the resamples.
      statistic: ``"mean"``, ``"iqm"`` or a function ``f(x, axis)`` reducing the
        seed axis ``axis`` of a batch of resamples ``x``.
      strata: optional list of per-stratum arrays ``[S_i]`` or ``[S_i, T]``
        (e.g. one per environment); each is resampled within itself and the
        statistic is computed over their concatenation (stratified bootstrap).

    Returns:
      ``(low, high)``: floats (0-d arrays) for ``[S]`` input, ``[T]`` arrays
      for ``[S, T]``. With a single finite seed both equal that value.

    Raises:
      ValueError: on empty input, ``confidence`` outside ``(0, 1)`` or
        ``num_resamples < 1``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be >= 1, got {num_resamples}")
    stat = _statistic(statistic)
    groups = [_as_float(v) for v in (strata if strata is not None else [values])]
    if not groups or any(g.shape[0] == 0 for g in groups):
        raise ValueError("bootstrap_ci needs at least one seed in every stratum")
    rng = np.random.default_rng(seed)
    # Indices first (so the draws do not depend on memory batching), then the
    # statistic on [batch, sum S_i, ...] slices of at most ~4M numbers.
    indices = [
        rng.integers(0, g.shape[0], size=(num_resamples, g.shape[0])) for g in groups
    ]
    per_resample = sum(g.size for g in groups)
    step = max(1, (1 << 22) // max(per_resample, 1))
    estimates = np.concatenate(
        [
            stat(
                np.concatenate(
                    [g[i[b : b + step]] for g, i in zip(groups, indices, strict=True)],
                    axis=1,
                ),
                axis=1,
            )
            for b in range(0, num_resamples, step)
        ],
        axis=0,
    )  # [B, ...]
    alpha = (1.0 - confidence) / 2.0
    finite = np.isfinite(estimates)
    if np.all(finite):
        low, high = np.quantile(estimates, [alpha, 1.0 - alpha], axis=0)
    else:
        masked = np.where(finite, estimates, np.nan)
        low = np.full(estimates.shape[1:], np.nan)
        high = np.full(estimates.shape[1:], np.nan)
        flat = masked.reshape(num_resamples, -1)
        lo_flat, hi_flat = low.reshape(-1), high.reshape(-1)
        for j in range(flat.shape[1]):
            col = flat[:, j][np.isfinite(flat[:, j])]
            if col.size:
                lo_flat[j], hi_flat[j] = np.quantile(col, [alpha, 1.0 - alpha])
        low, high = lo_flat.reshape(low.shape), hi_flat.reshape(high.shape)
    return np.asarray(low), np.asarray(high)


def summarize(
    values: Any,
    *,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Summarise per-seed values ``[S]``: mean, bootstrap CI, IQM, std and count.

    Args:
      values: ``[S]`` numbers, one per seed (non-finite ones are dropped).
      num_resamples: bootstrap resamples.
      confidence: CI coverage.
      seed: the bootstrap's numpy seed.

    Returns:
      ``{"mean", "ci_low", "ci_high", "iqm", "std", "n"}`` as Python floats
      (``n`` an int; ``NaN`` statistics if no value is finite).
    """
    arr = _as_float(values).reshape(-1)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        nan = float("nan")
        return {
            "mean": nan,
            "ci_low": nan,
            "ci_high": nan,
            "iqm": nan,
            "std": nan,
            "n": 0,
        }
    low, high = bootstrap_ci(arr, num_resamples, confidence, seed)
    return {
        "mean": float(mean(arr)),
        "ci_low": float(low),
        "ci_high": float(high),
        "iqm": float(iqm(arr)),
        "std": float(std(arr)),
        "n": n,
    }


def curve_summary(
    values: Any,
    *,
    num_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Mean and bootstrap CI band of learning curves ``[S, T]`` over seeds.

    Returns:
      ``{"mean": [T], "ci_low": [T], "ci_high": [T], "iqm": [T]}``.
    """
    arr = _as_float(values)
    if arr.ndim != 2:
        raise ValueError(f"curve_summary expects [seeds, iters], got shape {arr.shape}")
    low, high = bootstrap_ci(arr, num_resamples, confidence, seed)
    return {"mean": mean(arr), "ci_low": low, "ci_high": high, "iqm": iqm(arr)}


def final_values(values: Any, window: int = 1) -> np.ndarray:
    """Per-seed mean of the last ``window`` finite values of ``[S, T]`` curves.

    Non-finite entries (iterations without an evaluation, say) are skipped, so
    ``window=1`` gives each seed's last reported value; a seed without any
    finite value gives ``NaN``.

    Returns:
      ``[S]``.
    """
    arr = _as_float(values)
    if arr.ndim != 2:
        raise ValueError(f"final_values expects [seeds, iters], got shape {arr.shape}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    out = np.full(arr.shape[0], np.nan)
    for s, row in enumerate(arr):
        finite = row[np.isfinite(row)]
        if finite.size:
            out[s] = finite[-window:].mean()
    return out


def normalized_score(score: Any, random_score: Any, expert_score: Any) -> np.ndarray:
    """Normalise returns so that random play is 0 and the expert/reference is 1.

    ``(R - R_random) / (R_expert - R_random)``.

    Args:
      score: returns ``R`` (any shape).
      random_score: ``R_random`` (broadcastable).
      expert_score: ``R_expert`` (broadcastable).

    Returns:
      The normalised score, float64.

    Raises:
      ValueError: if ``R_expert == R_random`` anywhere.

    Examples:
      >>> float(normalized_score(250.0, 0.0, 500.0))
      0.5
    """
    r = np.asarray(score, dtype=np.float64)
    lo = np.asarray(random_score, dtype=np.float64)
    hi = np.asarray(expert_score, dtype=np.float64)
    span = hi - lo
    if np.any(span == 0):
        raise ValueError("expert and random scores must differ")
    return (r - lo) / span


def _turn_index(finite: np.ndarray, start: int, end: int) -> int | None:
    """Where a dense metric's ``finite`` row ``[T]`` turns non-finite for good in
    ``[start, end]``: the index after its last finite value up to ``end``, if
    that lies in ``[start, end]`` and the metric had no gap before ``start``."""
    before = finite[:start]
    if before.any() and not before[int(np.argmax(before)) :].all():
        return None  # finite, then not, then maybe finite again: a sparse metric
    upto = np.flatnonzero(finite[: end + 1])
    if upto.size == 0:
        return None  # never finite (e.g. still in the replay warm-up)
    turn = int(upto[-1]) + 1
    return turn if start <= turn <= end else None


def first_divergence(metrics: Mapping[str, Any]) -> np.ndarray:
    """Per seed, the index of the first diverged iteration (``-1``: healthy).

    A seed diverged when the drivers' check :data:`HEALTH_METRIC` is 0 on some
    chunk (a non-finite float in its state after that chunk) or the agent's own
    :data:`AGENT_DIVERGED_METRIC` is positive on some iteration.

    The reported index is the earliest of: the first positive agent flag; and,
    for the first failed check at index ``e`` (a chunk ``[b, e]``, ``b`` one
    after the previous check), the first iteration in ``[b, e]`` after which a
    dense training metric (outside :data:`SPARSE_NAMESPACES`, finite on every
    iteration since its first finite value before ``b``) stays non-finite up to
    ``e``; ``e`` itself if no metric turns. NaN from a replay warm-up (a metric
    not yet finite) does not count, nor does a metric that already had gaps.
    Without a health column only the agent flag counts (results written before
    the check existed).

    Args:
      metrics: ``{name: [S, T]}`` per-seed, per-iteration values (what
        :func:`jaxrl.logging.rows_to_metrics` returns).

    Returns:
      ``[S]`` int64: an index into the ``T`` axis, or ``-1``.

    Examples:
      >>> nan = np.nan
      >>> m = {"loss": np.array([[nan, 1.0, 2.0, 3.0], [nan, 1.0, nan, nan]]),
      ...      "health/finite": np.array([[nan, 1.0, nan, 1.0], [nan, 1.0, nan, 0.0]])}
      >>> first_divergence(m).tolist()
      [-1, 2]
    """
    arrays = {n: _as_float(v) for n, v in metrics.items()}
    shapes = {a.shape for a in arrays.values()}
    if not arrays:
        return np.zeros(0, dtype=np.int64)
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"metrics must share one [seeds, iters] shape, got {shapes}")
    num_seeds, _ = next(iter(shapes))
    out = np.full(num_seeds, -1, dtype=np.int64)
    health = arrays.get(HEALTH_METRIC)
    flag = arrays.get(AGENT_DIVERGED_METRIC)
    dense = {
        n: np.isfinite(a)
        for n, a in arrays.items()
        if n != AGENT_DIVERGED_METRIC and not n.startswith(SPARSE_NAMESPACES)
    }
    for s in range(num_seeds):
        found: list[int] = []
        if flag is not None:
            hits = np.flatnonzero(flag[s] > 0)  # NaN compares False
            if hits.size:
                found.append(int(hits[0]))
        if health is not None:
            checked = np.flatnonzero(np.isfinite(health[s]))
            failed = checked[health[s][checked] == 0]
            if failed.size:
                end = int(failed[0])
                earlier = checked[checked < end]
                start = int(earlier[-1]) + 1 if earlier.size else 0
                turns = [_turn_index(f[s], start, end) for f in dense.values()]
                turns = [t for t in turns if t is not None]
                found.append(min(turns) if turns else end)
        if found:
            out[s] = min(found)
    return out


def mask_after(values: Any, first: Any) -> np.ndarray:
    """Set ``values[s, t]`` to NaN from each seed's index ``first[s]`` on.

    Args:
      values: ``[S, T]`` curves.
      first: ``[S]`` indices from :func:`first_divergence` (``-1``: keep all).

    Returns:
      A float64 copy ``[S, T]``.

    Examples:
      >>> mask_after(np.ones((2, 3)), np.array([-1, 1])).tolist()
      [[1.0, 1.0, 1.0], [1.0, nan, nan]]
    """
    arr = _as_float(values).copy()
    first = np.asarray(first).reshape(-1)
    cols = np.arange(arr.shape[-1])
    cut = (first[:, None] >= 0) & (cols[None, :] >= first[:, None])
    arr[cut] = np.nan
    return arr
