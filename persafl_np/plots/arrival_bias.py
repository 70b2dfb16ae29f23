"""Arrival bias: who gets applied, and which objective the server then minimizes.

With event-driven arrivals client i's share of applied updates p_i grows with its speed (with
every client always in flight and exponential job times, p_i → v_i / Σ_j v_j), so assumption C5
(uniform arrivals) fails and the iterates approach a stationary point of Σ_i p_i F_i instead of
F = (1/n) Σ_i F_i (theory/brief_results.md §C, (C5); theory/simulator.md §3). Left: p_i against
speed v_i with
the proportional-rate prediction. Right: ‖∇F(w^t)‖² and ‖Σ_i p_i ∇F_i(w^t)‖² against t — the
first stalls at a floor set by the bias while the second keeps falling.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from persafl_np.plots.output import new_figure, save_figure

__all__ = ["ARRIVAL_BIAS_COLUMNS", "plot_arrival_bias"]

ARRIVAL_BIAS_COLUMNS = ("panel", "x", "seed", "value", "value2")


def plot_arrival_bias(speeds: Any, shares: Any, steps: Any, grad_norm2: Any,
                      weighted_grad_norm2: Any, path: str | os.PathLike[str] | None = None, *,
                      title: str | None = None) -> Any:
    """speeds (n,); shares (n_seeds, n) p_i per seed; steps (m,); grad_norm2 and
    weighted_grad_norm2 (n_seeds, m) at those steps.

    CSV rows: ``shares, v_i, seed, p_i, v_i/Σv`` and ``gradients, t, seed, ‖∇F‖², ‖Σp_i∇F_i‖²``.
    """
    v = np.asarray(speeds, dtype=np.float64)
    p = np.atleast_2d(np.asarray(shares, dtype=np.float64))
    t = np.asarray(steps, dtype=np.float64)
    g = np.atleast_2d(np.asarray(grad_norm2, dtype=np.float64))
    gw = np.atleast_2d(np.asarray(weighted_grad_norm2, dtype=np.float64))
    if v.ndim != 1 or v.size < 1 or np.any(v <= 0):
        raise ValueError("speeds must be a non-empty 1-D array of positive numbers")
    if p.shape[1] != v.size:
        raise ValueError(f"shares must have shape (n_seeds, {v.size}), got {p.shape}")
    if t.ndim != 1 or g.shape != gw.shape or g.shape[1] != t.size:
        raise ValueError(f"grad_norm2 and weighted_grad_norm2 must have shape (n_seeds, "
                         f"{t.size}), got {g.shape} and {gw.shape}")
    from matplotlib.patches import Patch

    from persafl_np.plots.style import OKABE_ITO

    fig, (ax_p, ax_g) = new_figure(2, width=11.0, height=4.6)
    pred = v / v.sum()
    for s in range(p.shape[0]):
        ax_p.plot(v, p[s], "o", color=OKABE_ITO[4], ms=4, alpha=0.6,
                  label="measured share $p_i$ (one dot per client and seed)" if s == 0 else None)
    order = np.argsort(v)
    ax_p.plot(v[order], pred[order], "k--", lw=1,
              label="prediction $p_i = v_i / (v_1 + \\dots + v_n)$ (rate ∝ speed)")
    ax_p.axhline(1.0 / v.size, color=OKABE_ITO[5], ls=":", lw=1.5,
                 label="uniform $p_i = 1/n$ (what the theorem assumes)")
    ax_p.set_xlabel("client speed $v_i$ (jobs per unit of virtual time)")
    ax_p.set_ylabel("share of applied updates $p_i$")
    ax_p.legend(fontsize=8, labelspacing=0.8, loc="upper left")
    ax_p.grid(True, alpha=0.3)
    ax_g.plot(t, g.mean(axis=0), "-", color=OKABE_ITO[0], lw=1.5,
              label="$\\|\\nabla F(w^t)\\|^2$: gradient of $F$ (uniform mean of the $F_i$)")
    ax_g.plot(t, gw.mean(axis=0), "--", color=OKABE_ITO[2], lw=1.5,
              label="$\\|\\sum_i p_i \\nabla F_i(w^t)\\|^2$: arrival-weighted gradient")
    handles, _ = ax_g.get_legend_handles_labels()
    if g.shape[0] > 1:
        ax_g.fill_between(t, g.min(axis=0), g.max(axis=0), color=OKABE_ITO[0], alpha=0.2, lw=0)
        ax_g.fill_between(t, gw.min(axis=0), gw.max(axis=0), color=OKABE_ITO[2], alpha=0.2,
                          lw=0)
        handles.append(Patch(color="0.6", alpha=0.4,
                             label=f"band: min–max over {g.shape[0]} seeds; line: mean"))
    ax_g.set_yscale("log")
    ax_g.set_xlabel("server step $t$")
    ax_g.set_ylabel("squared gradient norm")
    ax_g.legend(handles=handles, fontsize=8, labelspacing=0.8, loc="upper right")
    ax_g.grid(True, which="both", alpha=0.3)
    fig.suptitle(title or "arrival bias: fast clients are applied more often, so the server "
                 "minimizes the arrival-weighted objective, not F", fontsize=10)
    rows: list[list[Any]] = [["shares", float(v[i]), s, float(p[s, i]), float(pred[i])]
                             for s in range(p.shape[0]) for i in range(v.size)]
    rows += [["gradients", float(t[j]), s, float(g[s, j]), float(gw[s, j])]
             for s in range(g.shape[0]) for j in range(t.size)]
    save_figure(fig, path, ARRIVAL_BIAS_COLUMNS, rows)
    return fig
