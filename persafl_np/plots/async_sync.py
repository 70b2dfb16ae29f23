"""Asynchronous vs synchronous training: accuracy against virtual (wall-clock) time.

A synchronous round waits for its slowest client, so under a heavy-tailed job-time law (e.g.
Pareto) FedAvg, Per-FedAvg and pFedMe spend most of the time idle, while PersA-FL applies every
update as it arrives at the price of staleness (theory/simulator.md §2, §5). Curves are the mean
over seeds of the served model's test accuracy (personalized where the method personalizes,
SIM-EVAL) at the evaluation points, against virtual time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from persafl_np.plots.output import new_figure, save_figure

__all__ = ["ASYNC_SYNC_COLUMNS", "plot_async_sync"]

ASYNC_SYNC_COLUMNS = ("label", "seed", "time", "step", "accuracy")


def plot_async_sync(curves: Mapping[str, Any], path: str | os.PathLike[str] | None = None, *,
                    title: str | None = None) -> Any:
    """curves: label → list over seeds of (time, step, accuracy) 1-D arrays of equal length.

    Each seed is drawn thin, up to the end of the mean curve; the seed mean (on the time grid of
    the shortest seed run, by linear interpolation) is drawn thick with its own marker and line
    style, so curves that coincide (MAML and ME here) stay distinguishable.
    """
    from matplotlib.lines import Line2D

    from persafl_np.plots.style import series

    if not curves:
        raise ValueError("curves must contain at least one label")
    fig, (ax,) = new_figure(width=8.0, height=4.8)
    rows: list[list[Any]] = []
    for k, (label, runs) in enumerate(curves.items()):
        if not runs:
            raise ValueError(f"curves[{label!r}] must contain at least one run")
        st = series(k)
        ts = []
        for s, (t, step, acc) in enumerate(runs):
            t, step, acc = (np.asarray(a, dtype=np.float64) for a in (t, step, acc))
            if not (t.ndim == 1 and t.shape == step.shape == acc.shape and t.size >= 1):
                raise ValueError(f"curves[{label!r}][{s}]: time, step, accuracy must be 1-D "
                                 "of equal length")
            ts.append((t, acc))
            rows += [[label, s, float(a), int(b), float(c)] for a, b, c in zip(t, step, acc,
                                                                             strict=True)]
        grid = min((t for t, _ in ts), key=lambda t: t[-1])
        for t, acc in ts:  # seeds stop where the mean stops
            keep = t <= grid[-1]
            ax.plot(t[keep], acc[keep], color=st["color"], lw=0.6, alpha=0.35)
        mean = np.mean([np.interp(grid, t, a) for t, a in ts], axis=0)
        every = max(1, grid.size // 8)  # markers staggered between curves: none hides another
        ax.plot(grid, mean, color=st["color"], ls=st["linestyle"], marker=st["marker"],
                markevery=(k * every // 3 % every, every), ms=6, lw=2,
                label=f"{label} (final {mean[-1]:.3f})")
    ax.set_xlabel("virtual time (a synchronous round lasts as long as its slowest client)")
    ax.set_ylabel("mean client test accuracy of the served model")
    ax.grid(True, alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.5", lw=0.6, label="thin lines: individual seeds"))
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    n_seeds = max(len(v) for v in curves.values())
    ax.set_title(title or f"accuracy against time (thick: mean of {n_seeds} seeds)", fontsize=9)
    save_figure(fig, path, ASYNC_SYNC_COLUMNS, rows)
    return fig
