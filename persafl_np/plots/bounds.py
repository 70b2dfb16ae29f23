"""Measured stationarity against the bound (T1) of theory/async_theorem.md.

Three figures:

* :func:`plot_bound_vs_T`: (1/T)Σ_t‖∇F(w^t)‖² against T, log-log, seed band (when visible),
  bound dashed;
* :func:`plot_bound_vs_tau`: the same against the staleness bound τ;
* :func:`plot_ratio_vs_step`: measured/bound against the step scale, with C5 holding and failing
  (theory/assumptions.md §5); the line ratio = 1 is where the bound breaks.

Each takes a sequence of :class:`BoundCurve` (one per variant or setting), returns the Figure,
and with ``path`` writes ``path`` (PNG) and the same name with ``.csv`` (tidy rows
``label, x, seed, measured, bound, ratio``), both atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from persafl_np.plots.output import save_figure

__all__ = ["BoundCurve", "plot_bound_vs_T", "plot_bound_vs_tau", "plot_ratio_vs_step"]


@dataclass(frozen=True)
class BoundCurve:
    """One curve: ``measured`` has shape (n_seeds, len(x)); ``bound`` has shape (len(x),)."""

    label: str
    x: np.ndarray
    measured: np.ndarray
    bound: np.ndarray

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=np.float64)
        m = np.atleast_2d(np.asarray(self.measured, dtype=np.float64))
        b = np.asarray(self.bound, dtype=np.float64)
        if x.ndim != 1 or x.size < 1:
            raise ValueError(f"x must be a non-empty 1-D array, got shape {x.shape}")
        if m.shape[1] != x.size:
            raise ValueError(f"measured must have shape (n_seeds, {x.size}), got {m.shape}")
        if b.shape != x.shape:
            raise ValueError(f"bound must have shape ({x.size},), got {b.shape}")
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(b)) and np.all(b > 0)):
            raise ValueError("measured must be finite and bound finite and > 0")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "measured", m)
        object.__setattr__(self, "bound", b)


def _save(fig, curves: Sequence[BoundCurve], path: str | os.PathLike[str] | None) -> None:
    rows = [[c.label, float(x), s, float(m), float(b), float(m / b)]
            for c in curves for s, row in enumerate(c.measured)
            for x, m, b in zip(c.x, row, c.bound, strict=True)]
    save_figure(fig, path, ["label", "x", "seed", "measured", "bound", "ratio"], rows)


def _figure():
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    return fig, fig.add_subplot()


def _band(ax, c: BoundCurve, style: dict, values: np.ndarray, label: str) -> None:
    """Mean over seeds as a line with markers; the min–max band over seeds when it is visible.

    A band narrower than 5 % of the mean everywhere would be invisible, so it is not drawn and
    the legend says that the seeds agree instead of promising a band.
    """
    mean = values.mean(axis=0)
    lo, hi = values.min(axis=0), values.max(axis=0)
    n = values.shape[0]
    visible = n > 1 and bool(np.any((hi - lo) > 0.05 * np.abs(mean)))
    if n == 1:
        text = f"{label} (1 seed)"
    elif visible:
        text = f"{label}: mean, band = min–max over {n} seeds"
    else:
        text = f"{label}: mean of {n} seeds (they agree within 5 %)"
    ax.plot(c.x, mean, color=style["color"], marker=style["marker"], ls="-", ms=4, label=text)
    if visible:
        ax.fill_between(c.x, lo, hi, color=style["color"], alpha=0.3, lw=0)


def _log_ticks_at(ax, x: np.ndarray) -> None:
    """Major ticks at the data's x values only (no colliding minor labels on a short log axis)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator(np.unique(x)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def _measured_and_bound(curves, xlabel, title, path, xlog):
    from persafl_np.plots.style import series

    if not curves:
        raise ValueError("curves must contain at least one BoundCurve")
    fig, ax = _figure()
    for k, c in enumerate(curves):
        st = series(k)
        _band(ax, c, st, c.measured, f"{c.label}, measured")
        ax.plot(c.x, c.bound, "--", color=st["color"], lw=1.5,
                label=f"{c.label}, bound (T1) of theory/async_theorem.md")
    ax.set_xscale("log" if xlog else "linear")
    ax.set_yscale("log")
    if xlog:
        _log_ticks_at(ax, np.concatenate([c.x for c in curves]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"average squared gradient norm $\frac{1}{T}\sum_{t<T}\|\nabla F(w^t)\|^2$")
    worst = max(float((c.measured.mean(axis=0) / c.bound).max()) for c in curves)
    ax.set_title(f"{title}\nlargest measured / bound: {worst:.3g} (below 1: the bound holds)",
                 fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, curves, path)
    return fig


def plot_bound_vs_T(curves: Sequence[BoundCurve], path=None, *, title: str = "bound vs horizon"):
    """Measured average stationarity and the bound (T1) against T (log-log)."""
    return _measured_and_bound(curves, "T (server steps)", title, path, xlog=True)


def plot_bound_vs_tau(curves: Sequence[BoundCurve], path=None, *,
                      title: str = "bound vs staleness"):
    """Measured average stationarity and the bound (T1) against the staleness bound τ."""
    return _measured_and_bound(curves, r"staleness bound $\tau$", title, path, xlog=False)


def plot_ratio_vs_step(curves: Sequence[BoundCurve], path=None, *,
                       title: str = "measured / bound vs step size"):
    """measured/bound against the step scale (fraction of the (T2) maxima), log-log.

    Use one curve with C5 holding and one with it failing (theory/assumptions.md §5).
    """
    if not curves:
        raise ValueError("curves must contain at least one BoundCurve")
    from persafl_np.plots.style import series

    fig, ax = _figure()
    for k, c in enumerate(curves):
        _band(ax, c, series(k), c.measured / c.bound[None, :], c.label)
    ax.axhline(1.0, color="k", lw=1, ls=":", label="ratio = 1: above it the bound is violated")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_ticks_at(ax, np.concatenate([c.x for c in curves]))
    ax.set_xlabel("step scale s (s = 1: the largest steps (T2) allows,\n"
                  "η = s/(16QL) and βη = s/(24 max(1, τ) QL))")
    ax.set_ylabel("measured / bound")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, curves, path)
    return fig
