"""Timeline (Gantt chart) of client jobs in virtual time — the picture that explains staleness.

A job of client i pulls the server model w^p at its start, computes its update Δ for Q local
steps and returns at its end; if applied at server step t the server moves w^t → w^{t+1}, so the
update's staleness is τ = t − p (theory/simulator.md §4; notation of theory/brief_results.md §A).
Each job is a bar on its client's row labelled ``p→t+1`` and coloured by τ; for the most stale
job, arrows go from the server row at the moment version p was created down to the job's start
(the pull) and from the job's end up to the version it produced. Dropped jobs are hatched grey.
Many clients: at most ``max_rows`` rows, the rest aggregated into one row of arrival marks.
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
                  t_max: float | None = None, title: str | None = None,
                  max_rows: int = 12) -> Any:
    """Landscape Gantt chart of :func:`timeline_table` (jobs starting before ``t_max``).

    At most ``max_rows`` clients get a row of their own (spread over the ranking by number of
    jobs, :func:`persafl_np.plots.animate.select_clients`); the others are aggregated into one
    row that marks when their updates arrived. Bars are coloured by staleness and labelled
    ``p→t+1`` where they are wide enough; the most stale applied job is explained with its pull
    and apply arrows. Every mark has a legend entry. The CSV holds every job, shown or not.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from persafl_np.plots.animate import select_clients
    from persafl_np.plots.style import OKABE_ITO

    n_jobs = len(table["client"])
    if n_jobs == 0:
        raise ValueError("table must contain at least one job")
    sel = np.ones(n_jobs, dtype=bool) if t_max is None else table["start"] < t_max
    tab = {k: np.asarray(v)[sel] for k, v in table.items()}
    n_clients = int(np.max(table["client"])) + 1
    counts = np.bincount(tab["client"], minlength=n_clients)
    shown = select_clients(n_clients, counts, max_rows)
    n_hidden = n_clients - len(shown)
    row = np.full(n_clients, -1, dtype=np.int64)
    row[shown] = np.arange(len(shown)) + (1 if n_hidden else 0)
    n_rows = len(shown) + (1 if n_hidden else 0)
    server_y = n_rows
    fig, (ax,) = new_figure(width=12.0, height=min(6.8, 2.4 + 0.34 * (n_rows + 1)))
    made = {int(v): float(e) for v, e in zip(tab["produced_version"], tab["end"], strict=True)
            if v > 0}
    made[0] = 0.0
    span = max(float(tab["end"].max()), 1e-12)
    tau_hi = max(1, int(tab["staleness"].max()))
    norm = Normalize(0, tau_hi)
    cmap = colormaps["viridis"]
    for c, s, e, p, v, tau, st in zip(*(tab[k] for k in TIMELINE_COLUMNS), strict=True):
        y = row[int(c)]
        if y < 0:
            ax.plot([e], [0], "|" if st == 0 else "x", color="0.3" if st == 0 else "0.5", ms=9)
            continue
        if st == 0:
            ax.barh(y, e - s, left=s, height=0.6, color=cmap(norm(tau)), edgecolor="k", lw=0.5)
            if e - s > 0.045 * span:  # too short a bar cannot hold its label
                ax.text((s + e) / 2, y, f"{p}→{v}", ha="center", va="center", fontsize=7,
                        color="w" if norm(tau) < 0.5 else "k")
        else:
            ax.barh(y, e - s, left=s, height=0.6, color="0.85", edgecolor="0.4", hatch="//",
                    lw=0.5)
    last = -np.inf
    for v, t in sorted(made.items()):
        ax.plot([t], [server_y], "k|", ms=10)
        if t - last > 0.02 * span:  # skip labels that would overprint their neighbour
            ax.text(t, server_y + 0.25, str(v), ha="center", va="bottom", fontsize=6)
            last = t
    ok = (tab["status"] == 0) & (row[tab["client"]] >= 0) & np.isin(tab["pulled_version"],
                                                                       list(made))
    if ok.any():  # explain the most stale shown job (first one on ties)
        j = int(np.flatnonzero(ok)[np.argmax(tab["staleness"][ok])])
        c, s, e = int(tab["client"][j]), float(tab["start"][j]), float(tab["end"][j])
        p, tau, y = int(tab["pulled_version"][j]), int(tab["staleness"][j]), row[c]
        ax.annotate("", xy=(s, y + 0.3), xytext=(made[p], server_y - 0.3),
                    arrowprops={"arrowstyle": "->", "color": OKABE_ITO[4], "lw": 1.6})
        ax.annotate("", xy=(e, server_y - 0.3), xytext=(e, y + 0.3),
                    arrowprops={"arrowstyle": "->", "color": OKABE_ITO[5], "lw": 1.6})
        ax.annotate(f"most stale job: pulled version {p}, applied at t = {p + tau}\n"
                    f"τ = {p + tau} − {p} = {tau}: {tau} updates were applied while it ran",
                    xy=(e, y), xytext=(0.995, 0.985), textcoords="axes fraction", ha="right",
                    va="top", fontsize=8, bbox={"fc": "white", "ec": OKABE_ITO[5], "pad": 3},
                    arrowprops={"arrowstyle": "-", "color": OKABE_ITO[5], "lw": 0.8, "ls": ":"})
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                 label="staleness τ = t − p of an applied job", fraction=0.03, pad=0.01)
    ticks = [f"client {k}" for k in shown] + ["server versions"]
    pos = [int(row[k]) for k in shown] + [server_y]
    if n_hidden:
        ticks.insert(0, f"other {n_hidden} clients")
        pos.insert(0, 0)
    ax.set_yticks(pos, ticks, fontsize=8)
    ax.set_ylim(-0.6, server_y + 1.9)  # room above the server row for the explanation
    ax.set_xlim(0, span * 1.02)
    ax.set_xlabel("virtual time")
    ax.set_ylabel("client")
    ax.set_title(title or "client jobs in virtual time: each bar runs from the pull of wᵖ to "
                 "the arrival that makes version t+1", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    legend = [Patch(facecolor=cmap(norm(tau_hi / 3)), edgecolor="k",
                    label="applied job, label p→t+1 (pulled → produced version)"),
              Patch(facecolor="0.85", edgecolor="0.4", hatch="//", label="dropped or failed job"),
              Line2D([], [], color="k", marker="|", ls="", ms=10,
                     label="server version made (number above)"),
              Line2D([], [], color=OKABE_ITO[4], lw=1.6, marker=">", ms=5,
                     label="pull: the job starts from wᵖ"),
              Line2D([], [], color=OKABE_ITO[5], lw=1.6, marker="^", ms=5,
                     label="apply: its update makes the next version")]
    if n_hidden:
        legend.append(Line2D([], [], color="0.3", marker="|", ls="", ms=9,
                             label=f"an arrival of one of the {n_hidden} clients without a row"))
    fig.legend(handles=legend, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    rows = [[tab[k][r] for k in TIMELINE_COLUMNS] for r in range(int(sel.sum()))]
    rows = [r[:6] + [_STATUS[int(r[6])]] for r in rows]
    save_figure(fig, path, TIMELINE_COLUMNS, rows)
    return fig
