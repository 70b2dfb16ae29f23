"""Staleness histograms, one panel per arrival model / staleness policy.

The staleness of an update applied at server step t that was computed on w^p is τ_t = t − p
(theory/brief_results.md §A; theory/simulator.md §4). Event-driven arrivals give a distribution
that depends
on the job-time law, the speeds and the concurrency; ``drop``/``block`` cap it at τ_max; theorem
mode fixes it by construction (assumption C4, τ_t ≤ τ).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from persafl_np.plots.output import new_figure, save_figure
from persafl_np.plots.style import series

__all__ = ["STALENESS_COLUMNS", "plot_staleness_histograms"]

STALENESS_COLUMNS = ("label", "staleness", "count", "fraction")


def plot_staleness_histograms(samples: Mapping[str, Any],
                              path: str | os.PathLike[str] | None = None, *,
                              title: str | None = None) -> Any:
    """One histogram of applied-update staleness per entry of ``samples`` (label → τ values).

    Panels share the τ axis; each shows the mean and maximum. The CSV holds the counts
    (label, staleness, count, fraction) of every τ from 0 to the panel's maximum.
    """
    if not samples:
        raise ValueError("samples must contain at least one label")
    data = {}
    for label, s in samples.items():
        a = np.asarray(s)
        if a.ndim != 1 or a.size == 0 or a.dtype.kind not in "iu" or np.any(a < 0):
            raise ValueError(f"samples[{label!r}] must be a non-empty 1-D array of integers >= 0")
        data[str(label)] = a.astype(np.int64)
    k = len(data)
    ncols = min(k, 3)
    nrows = math.ceil(k / ncols)
    fig, _ = new_figure(0, width=3.4 * ncols, height=2.6 * nrows + 0.4)
    rows: list[list[Any]] = []
    for j, (label, a) in enumerate(data.items()):
        ax = fig.add_subplot(nrows, ncols, j + 1)
        counts = np.bincount(a, minlength=int(a.max()) + 1)
        frac = counts / a.size
        ax.bar(np.arange(counts.size), frac, width=1.0, color=series(j)["color"], edgecolor="k",
               lw=0.3)
        ax.axvline(float(a.mean()), color="k", ls="--", lw=1, label="mean")
        ax.set_title(f"{label}\nmean {a.mean():.1f} (dashed line), max {a.max()}", fontsize=8)
        ax.set_xlabel("staleness τ = t − p (versions)")
        ax.set_ylabel("fraction of updates")
        # heavy tails would squeeze the bulk into one bar: show up to the 99.5% quantile
        hi = max(int(np.quantile(a, 0.995)), 5)
        ax.set_xlim(-0.5, hi + 0.5)
        ax.grid(True, axis="y", alpha=0.3)
        rows += [[label, t, int(c), float(f)] for t, (c, f) in enumerate(zip(counts, frac,
                                                                             strict=True))]
    note = "each τ axis ends at the 99.5 % quantile of its panel"
    fig.suptitle(f"{title}\n({note})" if title else note, fontsize=10)
    save_figure(fig, path, STALENESS_COLUMNS, rows)
    return fig
