"""Figure functions (matplotlib, Agg-safe): each returns the Figure and, given a path, writes the
PNG and the CSV behind it. Plots read result arrays, never the simulation engine."""

from persafl_np.plots.bounds import (
    BoundCurve,
    plot_bound_vs_T,
    plot_bound_vs_tau,
    plot_ratio_vs_step,
)

__all__ = ["BoundCurve", "plot_bound_vs_T", "plot_bound_vs_tau", "plot_ratio_vs_step"]
