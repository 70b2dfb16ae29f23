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

    Each seed is drawn thin; the seed mean (on the time grid of the shortest seed run, by linear
    interpolation) is drawn thick.
    """
    if not curves:
        raise ValueError("curves must contain at least one label")
    fig, (ax,) = new_figure(width=7.0, height=4.4)
    rows: list[list[Any]] = []
    t_end = np.inf
    for k, (label, runs) in enumerate(curves.items()):
        if not runs:
            raise ValueError(f"curves[{label!r}] must contain at least one run")
        ts = []
        for s, (t, step, acc) in enumerate(runs):
            t, step, acc = (np.asarray(a, dtype=np.float64) for a in (t, step, acc))
            if not (t.ndim == 1 and t.shape == step.shape == acc.shape and t.size >= 1):
                raise ValueError(f"curves[{label!r}][{s}]: time, step, accuracy must be 1-D "
                                 "of equal length")
            ax.plot(t, acc, color=f"C{k}", lw=0.6, alpha=0.35)
            ts.append((t, acc))
            rows += [[label, s, float(a), int(b), float(c)] for a, b, c in zip(t, step, acc,
                                                                             strict=True)]
        grid = min((t for t, _ in ts), key=lambda t: t[-1])
        mean = np.mean([np.interp(grid, t, a) for t, a in ts], axis=0)
        ax.plot(grid, mean, color=f"C{k}", lw=2, label=f"{label} (final {mean[-1]:.2f})")
        t_end = min(t_end, float(max(t[-1] for t, _ in ts)))
    ax.set_xlabel("virtual time")
    ax.set_ylabel("mean client test accuracy of the served model")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "accuracy vs virtual time (thin: seeds, thick: mean)", fontsize=9)
    save_figure(fig, path, ASYNC_SYNC_COLUMNS, rows)
    return fig
