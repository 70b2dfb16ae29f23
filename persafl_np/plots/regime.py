"""The personalization regime: where a personalized model beats both the global and local models.

Input: one row per (data family, samples per client m, heterogeneity, personalized oracle)
with the paired differences of test client-mean accuracy d_G = pers − global (AL) and
d_L = pers − local-only over seeds and the lower ends of their one-sided 95 % t-intervals
(experiments/personalization_regime/run.py). Each cell of the phase diagram is split into a
MAML half and an ME half, coloured by the margin min(mean d_G, mean d_L) — how far the
personalized model is above max(global, local), in accuracy points — and marked ✓ where both
lower 95 % ends are > 0 (an intersection–union test of pers > max(global, local)).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from persafl_np.plots.output import save_figure

__all__ = ["REGIME_COLUMNS", "plot_regime"]

REGIME_COLUMNS = ("family", "samples_per_client", "heterogeneity", "oracle", "param", "n_seeds",
                  "acc_pers", "acc_global", "acc_local", "d_global_mean", "d_global_lo95",
                  "d_local_mean", "d_local_lo95", "wins")
_FAMILIES = {"fedprox": ("FedProx Synthetic(0.5, β), softmax", "feature heterogeneity β"),
             "digits": ("digits, Dirichlet(α) label split, softmax",
                        "label concentration α (small = more heterogeneous)")}


def plot_regime(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str] | None = None, *,
                title: str | None = None) -> Any:
    """Phase diagram(s), one panel per data family present in ``rows`` (REGIME_COLUMNS)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Patch, Rectangle

    if not rows:
        raise ValueError("rows must contain at least one cell")
    for r in rows:
        missing = [c for c in REGIME_COLUMNS if c not in r]
        if missing:
            raise ValueError(f"every row needs {REGIME_COLUMNS}; missing {missing}")
    fams = [f for f in _FAMILIES if any(r["family"] == f for r in rows)]
    unknown = {r["family"] for r in rows} - set(_FAMILIES)
    if unknown:
        raise ValueError(f"family must be one of {tuple(_FAMILIES)}, got {sorted(unknown)}")
    margins = np.array([100 * min(r["d_global_mean"], r["d_local_mean"]) for r in rows])
    finite = margins[np.isfinite(margins)]
    span = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    norm = TwoSlopeNorm(0.0, -span, span)
    cmap = colormaps["PuOr_r"]  # purple below, orange above: colour-blind safe
    widths = [max(1, len({str(r["samples_per_client"]) for r in rows if r["family"] == f}))
              for f in fams]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.0 + 2.3 * sum(widths), 5.2), layout="constrained")
    gs = fig.add_gridspec(1, len(fams), width_ratios=widths)
    axes = [fig.add_subplot(gs[0, k]) for k in range(len(fams))]
    for ax, fam in zip(axes, fams, strict=True):
        fr = [r for r in rows if r["family"] == fam]
        ms = list(dict.fromkeys(str(r["samples_per_client"]) for r in fr))
        hs = sorted({float(r["heterogeneity"]) for r in fr})
        for r in fr:
            x, y = ms.index(str(r["samples_per_client"])), hs.index(float(r["heterogeneity"]))
            half = 0 if r["oracle"] == "MAML" else 1
            m = 100 * min(r["d_global_mean"], r["d_local_mean"])
            ax.add_patch(Rectangle((x - 0.5 + 0.5 * half, y - 0.5), 0.5, 1.0,
                                   facecolor=cmap(norm(m)), edgecolor="0.3", lw=0.6))
            mark = "✓" if r["wins"] else ""
            ink = "white" if np.isfinite(m) and abs(norm(m) - 0.5) > 0.3 else "black"
            ax.text(x - 0.25 + 0.5 * half, y + 0.08, f"{r['oracle']}\n{m:+.1f}{mark}",
                    ha="center", va="center", fontsize=8, color=ink,
                    fontweight="bold" if r["wins"] else "normal")
            ax.text(x - 0.25 + 0.5 * half, y - 0.3, f"{r['acc_pers']:.3f}", ha="center",
                    va="center", fontsize=7, color=ink)
        for x, m in enumerate(ms):
            for y, h in enumerate(hs):
                g = [r for r in fr if str(r["samples_per_client"]) == m
                     and float(r["heterogeneity"]) == h]
                if g:
                    ax.text(x, y + 0.47, f"global {g[0]['acc_global']:.3f}\nlocal "
                            f"{g[0]['acc_local']:.3f}", ha="center", va="top", fontsize=6.5,
                            bbox={"fc": "white", "ec": "none", "pad": 0.6, "alpha": 0.85})
        ax.set_xlim(-0.5, len(ms) - 0.5)
        ax.set_ylim(-0.5, len(hs) - 0.5)
        ax.set_xticks(range(len(ms)), ms)
        ax.set_yticks(range(len(hs)), [f"{h:g}" for h in hs])
        ax.set_xlabel("training samples per client m" + (" (all: the split's own sizes)"
                                                         if "all" in ms else ""))
        ax.set_ylabel(_FAMILIES[fam][1])
        n_seeds = sorted({int(r["n_seeds"]) for r in fr})
        ax.set_title(f"{_FAMILIES[fam][0]}, {'/'.join(map(str, n_seeds))} seeds", fontsize=9)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, fraction=0.03, pad=0.01,
                 label="margin over the better of global and local-only\n"
                       "min(pers − global, pers − local), accuracy points")
    legend = [Patch(facecolor="white", edgecolor="0.3",
                    label="left half MAML (α*), right half ME (λ*): margin, and below it the "
                          "personalized accuracy"),
              Patch(facecolor="white", edgecolor="white",
                    label="✓ (bold): pers > global and pers > local, both with 95 % one-sided "
                          "paired confidence over seeds")]
    fig.legend(handles=legend, loc="outside lower center", ncol=1, fontsize=8, frameon=False)
    fig.suptitle(title or "where personalization beats both the global model and local-only "
                 "training (test client-mean accuracy, α and λ chosen on validation rows)",
                 fontsize=10)
    out = [[r[c] for c in REGIME_COLUMNS] for r in rows]
    save_figure(fig, path, REGIME_COLUMNS, out)
    return fig
