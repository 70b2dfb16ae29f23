"""Figures of the tightness study (theory/tightness.md).

* :func:`plot_falsify_history`: the falsifier's measured/bound ratio against the evaluation
  index (every evaluation, and the best so far), log scale, the line ratio = 1 where the bound
  breaks;
* :func:`plot_bound_tightness`: bound / exact worst case (PEP) against T for each τ, Q and n,
  D4 and sharp constants, with the falsifier's best ratio beside the exact value.

Each returns the Figure and with ``path`` writes the PNG and its CSV atomically.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.plots.output import new_figure, save_figure

__all__ = ["plot_bound_tightness", "plot_falsify_history", "read_tightness_csv",
           "replot_bound_tightness"]

TITLE = "(T1) against the exact worst case (PEP), steps at the (T2) caps, sigma = 0"


def plot_falsify_history(history: Sequence[tuple[int, str, float]],
                         path: str | os.PathLike[str] | None = None, *,
                         title: str | None = None) -> Any:
    """Ratio vs evaluations; CSV rows ``evaluation, phase, ratio, best_so_far``."""
    idx = np.array([h[0] for h in history], dtype=np.int64)
    ratio = np.array([h[2] for h in history], dtype=np.float64)
    best = np.maximum.accumulate(np.nan_to_num(ratio, nan=0.0)) if ratio.size else ratio
    fig, (ax,) = new_figure()
    pos = ratio > 0
    for phase, color in (("global", "tab:blue"), ("local", "tab:orange")):
        sel = pos & np.array([h[1] == phase for h in history], dtype=bool)
        ax.scatter(idx[sel], ratio[sel], s=4, color=color, alpha=0.4,
                   label=f"{phase} ({'Sobol' if phase == 'global' else 'Nelder-Mead'})")
    ax.plot(idx, best, color="k", lw=1.5, label="best so far")
    ax.axhline(1.0, color="tab:red", ls="--", lw=1, label="ratio = 1 (violation above)")
    ax.set_yscale("log")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("measured / bound")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    rows = [(int(i), h[1], float(r), float(b)) for i, h, r, b in zip(idx, history, ratio, best,
                                                                     strict=True)]
    save_figure(fig, path, ("evaluation", "phase", "ratio", "best_so_far"), rows)
    return fig


def plot_bound_tightness(rows: Sequence[dict], path: str | os.PathLike[str] | None = None, *,
                         title: str | None = None) -> Any:
    """``rows``: dicts with keys n, Q, tau, T, exact, bound_d4, bound_sharp, falsifier
    (falsifier: the falsifier's best measured value on that setting, or nan); further keys
    become further CSV columns.

    Left: bound / exact worst case against T (one line per (τ, Q, n); solid D4, dashed sharp).
    Right: falsifier's best / exact (≤ 1, = 1 when the sampling search finds the worst case).
    """
    cols = ("n", "Q", "tau", "T", "exact", "bound_d4", "bound_sharp", "falsifier")
    cols = cols + tuple(k for k in (rows[0] if rows else {}) if k not in cols)
    fig, (ax, ax2) = new_figure(ncols=2, width=11.0, height=4.6)
    keys = sorted({(r["tau"], r["Q"], r["n"]) for r in rows})
    cmap = [f"C{k % 10}" for k in range(len(keys))]
    for col, key in zip(cmap, keys, strict=True):
        sel = sorted((r for r in rows if (r["tau"], r["Q"], r["n"]) == key), key=lambda r: r["T"])
        T = np.array([r["T"] for r in sel], dtype=np.float64)
        ex = np.array([r["exact"] for r in sel], dtype=np.float64)
        lab = f"tau={key[0]} Q={key[1]} n={key[2]}"
        ax.plot(T, np.array([r["bound_d4"] for r in sel]) / ex, "-o", ms=3, color=col, label=lab)
        ax.plot(T, np.array([r["bound_sharp"] for r in sel]) / ex, "--", color=col, lw=1)
        fz = np.array([r["falsifier"] for r in sel], dtype=np.float64)
        if np.isfinite(fz).any():
            ax2.plot(T, fz / ex, "-s", ms=3, color=col, label=lab)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("T")
    ax.set_ylabel("bound / exact worst case (solid D4, dashed sharp)")
    ax.legend(fontsize=6, ncol=2)
    ax2.axhline(1.0, color="k", lw=0.8)
    ax2.set_xscale("log")
    ax2.set_xlabel("T")
    ax2.set_ylabel("falsifier's best / exact worst case")
    fz_all = np.array([r["falsifier"] / r["exact"] for r in rows], dtype=np.float64)
    lo = float(np.nanmin(fz_all)) if np.isfinite(fz_all).any() else 0.9
    ax2.set_ylim(min(0.98, lo - 0.005), 1.005)
    if title:
        fig.suptitle(title)
    save_figure(fig, path, cols, [tuple(r[c] for c in cols) for r in rows])
    return fig


def read_tightness_csv(path: str | os.PathLike[str]) -> list[dict]:
    """Rows of figures/bound_tightness.csv (as written by :func:`plot_bound_tightness`)."""
    ints, strs = {"n", "Q", "tau", "T", "n_patterns"}, {"patterns", "worst_pattern"}
    with Path(path).open(newline="") as fh:
        return [{k: int(v) if k in ints else v if k in strs else float(v) for k, v in r.items()}
                for r in csv.DictReader(fh)]


def replot_bound_tightness(figures_dir: str | os.PathLike[str]) -> list[Path]:
    """Redraw ``bound_tightness.png`` from the committed CSV (the PEP values take minutes and
    the ``pep`` extra: ``python figures/make_tightness_figure.py`` recomputes them). Returns
    ``[]`` when the directory has no such CSV."""
    src = Path(figures_dir) / "bound_tightness.csv"
    if not src.exists():
        return []
    png = src.with_suffix(".png")
    plot_bound_tightness(read_tightness_csv(src), png, title=TITLE)
    return [png]
