"""Timeline (Gantt chart) of client jobs in virtual time — the picture that explains staleness.

A job of client i pulls the server model w^p at its start, computes its update Δ for Q local
steps and returns at its end; if applied at server step t the server moves w^t → w^{t+1}, so the
update's staleness is τ = t − p (theory/simulator.md §4; notation of theory/brief_results.md §A).
Each job is a bar on its client's row labelled ``p→t+1``; arrows go from the server row at the
moment version p was created down to the job's start (the pull) and from the job's end up to the
version it produced. Dropped jobs are hatched grey.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.plots.output import new_figure, save_figure

__all__ = ["TIMELINE_COLUMNS", "plot_timeline", "read_run_tables", "timeline_table"]

TIMELINE_COLUMNS = ("client", "start", "end", "pulled_version", "produced_version", "staleness",
                    "status")
_STATUS = ("applied", "dropped", "failed")


def read_run_tables(run_dir: str | os.PathLike[str]) -> tuple[dict, dict]:
    """(jobs, trace) column dicts from a saved run's ``jobs.csv`` and ``trace.csv``."""
    d = Path(run_dir)

    def cols(name: str) -> dict[str, list[str]]:
        with open(d / name, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            raise ValueError(f"{d / name} has no rows")
        return {k: [r[k] for r in rows] for k in rows[0]}

    j, t = cols("jobs.csv"), cols("trace.csv")
    jobs = {"client": np.asarray(j["client"], dtype=np.int64),
            "start": np.asarray(j["start"], dtype=np.float64),
            "end": np.asarray(j["end"], dtype=np.float64),
            "pulled_version": np.asarray(j["pulled_version"], dtype=np.int64),
            "status": np.asarray([_STATUS.index(s) for s in j["status"]], dtype=np.int64)}
    trace = {"time": np.asarray(t["time"], dtype=np.float64),
             "step": np.asarray(t["step"], dtype=np.int64),
             "client": np.asarray(t["client"], dtype=np.int64),
             "accepted": np.asarray(t["accepted"], dtype=np.int64).astype(bool)}
    return jobs, trace


def _get(obj: Any, name: str) -> np.ndarray:
    return np.asarray(obj[name] if isinstance(obj, Mapping) else getattr(obj, name))


def timeline_table(jobs: Any, trace: Any) -> dict[str, np.ndarray]:
    """Join jobs with trace rows: the version each applied job produced and its staleness.

    jobs: mapping with client, start, end, pulled_version, status (0 applied, 1 dropped,
    2 failed or the strings); trace: mapping or :class:`~persafl_np.results.Trace` with time,
    step, client, accepted. An applied job is the trace row of the same client at its end time;
    it produced version step+1 and had staleness τ = step − pulled_version. -1 where none.
    """
    client = _get(jobs, "client").astype(np.int64)
    end = _get(jobs, "end").astype(np.float64)
    status = _get(jobs, "status")
    if status.dtype.kind in "US":
        status = np.asarray([_STATUS.index(str(s)) for s in status], dtype=np.int64)
    key = {(int(c), float(t)): int(s) for c, t, s, a in zip(
        _get(trace, "client"), _get(trace, "time"), _get(trace, "step"), _get(trace, "accepted"),
        strict=True) if a}
    step = np.asarray([key.get((int(c), float(e)), -1) if s == 0 else -1
                       for c, e, s in zip(client, end, status, strict=True)], dtype=np.int64)
    pulled = _get(jobs, "pulled_version").astype(np.int64)
    return {"client": client, "start": _get(jobs, "start").astype(np.float64), "end": end,
            "pulled_version": pulled, "produced_version": np.where(step >= 0, step + 1, -1),
            "staleness": np.where(step >= 0, step - pulled, -1), "status": status.astype(np.int64)}


def plot_timeline(table: Mapping[str, np.ndarray], path: str | os.PathLike[str] | None = None, *,
                  t_max: float | None = None, title: str | None = None) -> Any:
    """Gantt chart of :func:`timeline_table` (jobs starting before ``t_max``, default all)."""
    import matplotlib.colors as mcolors
    from matplotlib import cm

    n_jobs = len(table["client"])
    if n_jobs == 0:
        raise ValueError("table must contain at least one job")
    sel = np.ones(n_jobs, dtype=bool) if t_max is None else table["start"] < t_max
    tab = {k: np.asarray(v)[sel] for k, v in table.items()}
    n_clients = int(np.max(table["client"])) + 1
    fig, (ax,) = new_figure(width=9.0, height=1.2 + 0.55 * (n_clients + 1))
    server_y = n_clients  # the server row sits above the clients
    made = {int(v): float(e) for v, e in zip(tab["produced_version"], tab["end"], strict=True)
            if v > 0}
    made[0] = 0.0
    span = max(float(tab["end"].max()), 1e-12)
    tau_hi = max(1, int(tab["staleness"].max()))
    norm = mcolors.Normalize(0, tau_hi)
    cmap = cm.get_cmap("viridis_r") if hasattr(cm, "get_cmap") else cm.viridis_r
    for c, s, e, p, v, tau, st in zip(*(tab[k] for k in TIMELINE_COLUMNS), strict=True):
        if st == 0:
            ax.barh(c, e - s, left=s, height=0.6, color=cmap(norm(tau)), edgecolor="k", lw=0.5)
            if e - s > 0.04 * span:  # too short a bar cannot hold its label
                ax.text((s + e) / 2, c, f"{p}→{v}", ha="center", va="center",
                        fontsize=7, color="w" if norm(tau) > 0.5 else "k")
            ax.annotate("", xy=(e, server_y - 0.35), xytext=(e, c + 0.3),
                        arrowprops={"arrowstyle": "->", "color": "C3", "lw": 0.6, "alpha": 0.6})
        else:
            ax.barh(c, e - s, left=s, height=0.6, color="0.85", edgecolor="0.4", hatch="//",
                    lw=0.5)
        if int(p) in made:
            ax.annotate("", xy=(s, c + 0.3), xytext=(made[int(p)], server_y - 0.35),
                        arrowprops={"arrowstyle": "->", "color": "C0", "lw": 0.6, "alpha": 0.6})
    last = -np.inf
    for v, t in sorted(made.items()):
        ax.plot([t], [server_y], "k|", ms=10)
        if t - last > 0.025 * span:  # skip labels that would overprint their neighbour
            ax.text(t, server_y + 0.22, str(v), ha="center", va="bottom", fontsize=6)
            last = t
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label=r"staleness $\tau = t - p$", fraction=0.04, pad=0.01)
    ax.set_yticks(list(range(n_clients)) + [server_y],
                  [f"client {k}" for k in range(n_clients)] + ["server\nversions"])
    ax.set_ylim(-0.6, server_y + 0.9)
    ax.set_xlabel("virtual time")
    ax.set_ylabel("client")
    ax.set_title(title or "client jobs: bar label p→t+1 (pulled version → produced version); "
                 "blue arrows: pull, red: apply", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    rows = [[tab[k][r] for k in TIMELINE_COLUMNS] for r in range(int(sel.sum()))]
    rows = [r[:6] + [_STATUS[int(r[6])]] for r in rows]
    save_figure(fig, path, TIMELINE_COLUMNS, rows)
    return fig
