"""Learning-curve plots: mean over seeds with a 95% bootstrap CI band.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no
global backend switch), and writes each PNG atomically (temporary file, then
``os.replace``). This is the one module that imports matplotlib (the ``plots``
extra): without it, importing this module raises a one-line
:class:`~jaxrl.errors.ConfigError` saying how to install it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxrl import logging as jlog
from jaxrl import metrics as jmetrics
from jaxrl.errors import ConfigError

try:  # matplotlib is the optional `plots` extra; the library never imports it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError as err:
    raise ConfigError(
        f"figures need matplotlib ({err}): pip install 'jaxrl[plots]'"
    ) from None

__all__ = ["Figure", "plot_learning_curves", "save_figure"]

_MAX_POINTS = 400  # curves are subsampled to at most this many x positions


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save ``fig`` as PNG to ``path`` atomically (see :func:`jaxrl.logging.atomic_file`)."""
    FigureCanvasAgg(fig)
    with jlog.atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def plot_learning_curves(
    curves: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    x: Mapping[str, Sequence[float]] | Sequence[float] | None = None,
    title: str = "",
    xlabel: str = "iteration",
    ylabel: str = "",
    confidence: float = 0.95,
    num_resamples: int = 1000,
    seed: int = 0,
) -> None:
    """Plot one mean line and CI band per label and save a PNG.

    Args:
      curves: ``{label: values[S, T]}`` per-seed curves (one line per agent or
        config); non-finite entries are ignored.
      path: output PNG path.
      x: the x positions ``[T]`` (one array for all labels, or one per label);
        default ``0..T-1``.
      title: plot title.
      xlabel: x-axis label.
      ylabel: y-axis label (the metric).
      confidence: CI coverage of the band.
      num_resamples: bootstrap resamples per point.
      seed: numpy seed of the bootstrap.
    """
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    for label, values in curves.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None]
        if isinstance(x, Mapping):
            xs = np.asarray(x[label], dtype=np.float64)
        elif x is not None:
            xs = np.asarray(x, dtype=np.float64)
        else:
            xs = np.arange(arr.shape[1], dtype=np.float64)
        # Only x positions where some seed reported a finite value (evaluation
        # metrics exist once per chunk), then at most _MAX_POINTS of them.
        reported = np.flatnonzero(np.any(np.isfinite(arr), axis=0))
        if reported.size == 0:
            continue
        pick = np.linspace(0, reported.size - 1, min(reported.size, _MAX_POINTS))
        keep = reported[np.unique(pick.round().astype(int))]
        sub = arr[:, keep]
        stats = jmetrics.curve_summary(
            sub, num_resamples=num_resamples, confidence=confidence, seed=seed
        )
        (line,) = ax.plot(xs[keep], stats["mean"], label=f"{label} (n={arr.shape[0]})")
        ax.fill_between(
            xs[keep],
            stats["ci_low"],
            stats["ci_high"],
            color=line.get_color(),
            alpha=0.25,
            linewidth=0,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(
        title or f"{ylabel}: mean and {int(round(confidence * 100))}% bootstrap CI"
    )
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    save_figure(fig, path)
