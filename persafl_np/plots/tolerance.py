"""Staleness tolerance: final personalized accuracy and ‖∇F(w^T)‖² against the staleness bound.

For each algorithm (AL, MAML, ME = PersA-FL with the three oracles of theory/brief_results.md (B1);
FedAsync,
FedBuff) and each τ_max, runs at several seeds give one final point; the figure shows the mean over
seeds with min–max bars over the seeds (bars of neighbouring curves are shifted sideways so they
do not overprint; the τ_max values are evenly spaced on the axis so small τ stay legible).
‖∇F‖² is the quantity bounded by (T1) of theory/async_theorem.md, whose staleness terms grow like
a²τ²; accuracy is the mean over clients of the personalized model's test accuracy (SIM-EVAL of
theory/simulator.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from persafl_np.plots.output import new_figure, save_figure

__all__ = ["TOLERANCE_COLUMNS", "plot_tolerance"]

TOLERANCE_COLUMNS = ("label", "tau_max", "seed", "acc_pers_mean", "grad_norm2")


def _records(records: Mapping[str, Any]) -> dict[str, np.ndarray]:
    missing = [c for c in TOLERANCE_COLUMNS if c not in records]
    if missing:
        raise ValueError(f"records is missing column(s) {missing}; needs {TOLERANCE_COLUMNS}")
    out = {c: np.asarray(records[c]) for c in TOLERANCE_COLUMNS}
    n = {v.shape for v in out.values()}
    if len(n) != 1 or out["label"].ndim != 1 or out["label"].size == 0:
        raise ValueError("records columns must be non-empty 1-D arrays of equal length")
    return out


def plot_tolerance(records: Mapping[str, Any], path: str | os.PathLike[str] | None = None, *,
                   title: str | None = None) -> Any:
    """Two panels against τ_max: accuracy (left) and ‖∇F‖² (right, log scale).

    records: columns :data:`TOLERANCE_COLUMNS` (one row per run).
    """
    from matplotlib.lines import Line2D

    from persafl_np.plots.style import series

    r = _records(records)
    fig, (ax_a, ax_g) = new_figure(2, width=11.0, height=4.6)
    labels = list(dict.fromkeys(r["label"].tolist()))
    all_taus = np.unique(r["tau_max"])
    pos = {t: j for j, t in enumerate(all_taus)}  # evenly spaced: τ = 0, 2, 5 stay apart
    dodge = 0.5 / max(1, len(labels))
    for k, lab in enumerate(labels):
        m = r["label"] == lab
        taus = np.unique(r["tau_max"][m])
        x = np.array([pos[t] for t in taus]) + (k - (len(labels) - 1) / 2) * dodge
        st = series(k)
        for ax, col in ((ax_a, "acc_pers_mean"), (ax_g, "grad_norm2")):
            vals = [r[col][m & (r["tau_max"] == t)].astype(np.float64) for t in taus]
            mean = np.array([v.mean() for v in vals])
            err = np.array([mean - [v.min() for v in vals], [v.max() for v in vals] - mean])
            ax.errorbar(x, mean, yerr=err, color=st["color"], marker=st["marker"],
                        ls=st["linestyle"], ms=5, lw=1.4, capsize=2, elinewidth=0.8,
                        label=lab)
    ax_a.set_ylabel("final personalized test accuracy\n(mean over clients)")
    ax_g.set_ylabel("final squared gradient norm $\\|\\nabla F(w^T)\\|^2$")
    ax_g.set_yscale("log")
    for ax in (ax_a, ax_g):
        ax.set_xticks(range(len(all_taus)), [f"{t:g}" for t in all_taus])
        ax.set_xlabel("staleness bound τ_max (server versions)")
        ax.grid(True, which="both", alpha=0.3)
    n_seeds = len(np.unique(r["seed"]))
    handles, _ = ax_a.get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.3", marker="|", ls="", ms=12,
                          label=f"bar: min–max over {n_seeds} seeds; mark: mean"))
    ax_a.legend(handles=handles, fontsize=8, loc="lower left")
    fig.suptitle(title or f"how much staleness each method tolerates ({n_seeds} seeds)",
                 fontsize=10)
    rows = [[r[c][j] for c in TOLERANCE_COLUMNS] for j in range(r["label"].size)]
    save_figure(fig, path, TOLERANCE_COLUMNS, rows)
    return fig
