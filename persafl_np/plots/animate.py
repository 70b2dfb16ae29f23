"""Animations of a saved run (``persafl animate``): asynchrony and staleness you can watch.

Two views, each written as an animated GIF (matplotlib's ``PillowWriter``; Pillow is a
dependency of matplotlib, so nothing new is installed):

* **timeline** (:func:`animate_timeline`, any run): clients as rows, each job a bar growing in
  virtual time from the moment it pulled the server model w^p to the moment it returned; the
  server version counter t; every arrival *flashes* its staleness τ = t − p (theory/simulator.md
  §3–4) with a dashed line back to the moment version p was made, so the τ updates that were
  applied in between are visible; a live histogram of the staleness of the applied updates and
  the ‖∇F(w^t)‖² curve of ``history.csv`` (SIM-EVAL, theory/simulator.md §6).
* **contour** (:func:`animate_contour`, a run whose model has 2 parameters): the server iterate
  w^t moving on the contours of F(w) = (1/n)Σ_i F_i(w), and for every applied update the point
  w^p = u it was computed at (the stale pull, u = w^{t−τ} of (T0a), theory/async_theorem.md
  §1), the gap w^p → w^t, and the step w^t → w^{t+1} = w^t − βΔ the server took with it (T0b).

Frames are drawn on a pyplot-free Figure; the same run and options give the same frames and the
same GIF bytes (tested). The GIF is written atomically (temporary file in the same directory,
then ``os.replace``).
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.plots.style import OKABE_ITO

__all__ = ["RunTables", "animate_contour", "animate_timeline", "iterate_path", "load_run",
           "select_clients", "timeline_frame_times", "version_times"]

_STATUS = ("applied", "dropped", "failed")


@dataclass(frozen=True)
class RunTables:
    """What the animations read from a run directory (all NumPy arrays).

    jobs: client, start, end, pulled_version, status (0 applied, 1 dropped, 2 failed);
    trace: time, step, client, pulled_version, staleness, accepted (one row per arrival);
    history: step, time, grad_norm2 (evaluation points); n_clients; run_dir.
    """

    jobs: dict[str, np.ndarray]
    trace: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    n_clients: int
    run_dir: Path


_SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def w_version(v: int) -> str:
    """``w`` with the version as a Unicode superscript (no mathtext: fast, and any font has it)."""
    return "w" + str(int(v)).translate(_SUP)


def _read_csv(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        raise ValueError(f"RUN_DIR must hold {path.name} (a directory written by persafl run or "
                         f"persafl demo); {path} does not exist")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{path} has no rows")
    return {k: [r[k] for r in rows] for k in rows[0]}


def load_run(run_dir: str | os.PathLike[str]) -> RunTables:
    """Read ``jobs.csv``, ``trace.csv`` and ``history.csv`` of a saved run (ValueError if absent).

    ``trace.csv`` goes through :func:`persafl_np.results.read_trace_csv`, so a malformed trace is
    rejected naming its row.
    """
    from persafl_np.results import read_trace_csv

    d = Path(run_dir)
    if not d.is_dir():
        raise ValueError(f"RUN_DIR must be a directory written by persafl run or persafl demo, "
                         f"got {str(d)!r}")
    j = _read_csv(d / "jobs.csv")
    jobs = {"client": np.asarray(j["client"], dtype=np.int64),
            "start": np.asarray(j["start"], dtype=np.float64),
            "end": np.asarray(j["end"], dtype=np.float64),
            "pulled_version": np.asarray(j["pulled_version"], dtype=np.int64),
            "status": np.asarray([_STATUS.index(s) for s in j["status"]], dtype=np.int64)}
    n = int(jobs["client"].max()) + 1
    if (d / "config.toml").exists():
        from persafl_np.config import load_config

        n = max(n, int(load_config(d / "config.toml").data.n_clients))
    _read_csv(d / "trace.csv")  # a clear message if it is missing or empty
    t = read_trace_csv(d / "trace.csv", n)
    trace = {k: np.asarray(getattr(t, k)) for k in ("time", "step", "client", "pulled_version",
                                                    "staleness", "accepted")}
    h = _read_csv(d / "history.csv")
    history = {k: np.asarray(h[k], dtype=np.float64) for k in ("step", "time", "grad_norm2")}
    return RunTables(jobs, trace, history, n, d)


def select_clients(n_clients: int, counts: np.ndarray, max_rows: int) -> np.ndarray:
    """The clients given a row when at most ``max_rows`` fit: all if they fit, else the
    ``max_rows`` clients spread evenly over the ranking by number of arrivals (the busiest and
    the idlest are always shown), returned in client order."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
    if n_clients <= max_rows:
        return np.arange(n_clients)
    order = np.lexsort((np.arange(n_clients), -np.asarray(counts)))  # busiest first, ties by id
    pick = np.unique(np.round(np.linspace(0, n_clients - 1, max_rows)).astype(np.int64))
    return np.sort(order[pick])


def timeline_frame_times(t_end: float, frames: int) -> np.ndarray:
    """Virtual times of the frames: frames k = 1..N at t_end·k/N."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    return t_end * np.arange(1, frames + 1, dtype=np.float64) / frames


def version_times(trace: dict[str, np.ndarray], T: int) -> np.ndarray:
    """Virtual time at which each server version v = 0..T was made (version 0 at time 0).

    A trace row records the version *before* its arrival (column ``step``); the version after
    it is the next row's ``step`` (T after the last row), so version v was made by the row
    where the step first moves past v − 1 — one row per version for PersA-FL, the flushing
    arrival for FedBuff.
    """
    step = np.asarray(trace["step"], dtype=np.int64)
    after = np.append(step[1:], T)
    made = np.full(T + 1, np.nan)
    made[0] = 0.0
    for r in np.flatnonzero(after > step):
        made[step[r] + 1:after[r] + 1] = trace["time"][r]
    if np.isnan(made).any():
        raise ValueError("trace.csv does not reach the last version of history.csv")
    return made


def _check_common(out: Path, frames: int, seconds: float, dpi: int) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".gif":
        raise ValueError(f"--out must end in .gif (animated GIF through Pillow), got {str(out)!r}")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a number > 0, got {seconds!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)) or not 20 <= dpi <= 300:
        raise ValueError(f"dpi must be an integer in [20, 300], got {dpi!r}")
    return out


def _write_gif(fig: Any, out: Path, n_frames: int, seconds: float, dpi: int,
               draw: Any) -> Path:
    """Draw frames 0..n_frames−1 with ``draw(k)`` and write them as one GIF, atomically."""
    from matplotlib.animation import PillowWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fps = n_frames / float(seconds)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".gif", dir=out.parent)
    os.close(fd)
    try:
        writer = PillowWriter(fps=fps)
        writer.setup(fig, tmp, dpi=dpi)
        for k in range(n_frames):
            draw(k)
            writer.grab_frame()
        writer.finish()
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _staleness_norm(tau_max: int) -> tuple[Any, Any]:
    import matplotlib.colors as mcolors
    from matplotlib import colormaps

    return mcolors.Normalize(0, max(1, tau_max)), colormaps["viridis"]


def _hist_panel(ax: Any, taus: np.ndarray, tau_max: int, fresh: Sequence[int]) -> None:
    """Histogram of the staleness of the applied updates so far; the bins hit in this frame
    are outlined in vermillion."""
    bins = np.arange(tau_max + 2) - 0.5
    counts = np.bincount(taus, minlength=tau_max + 1) if taus.size else np.zeros(tau_max + 1)
    norm, cmap = _staleness_norm(tau_max)
    centers = np.arange(tau_max + 1)
    ax.bar(centers, counts, width=1.0, color=[cmap(norm(c)) for c in centers],
           edgecolor="0.3", lw=0.3)
    hit = sorted(set(int(x) for x in fresh))
    if hit:  # the bins of this frame's arrivals
        ax.plot(hit, counts[hit] + 0.04 * max(1, counts.max()), "v", color=OKABE_ITO[5],
                ms=5, mec="k", mew=0.3)
    ax.set_xlim(bins[0], bins[-1])
    ax.set_xlabel(r"staleness $\tau = t - p$ (versions)", fontsize=8)
    ax.set_ylabel("applied updates", fontsize=8)
    mean = f", mean {taus.mean():.1f}" if taus.size else ""
    ax.set_title(f"staleness of the applied updates\n({taus.size} so far{mean}; ▼ arrived now)",
                 fontsize=8)
    ax.tick_params(labelsize=7)


def _grad_panel(ax: Any, steps: np.ndarray, g: np.ndarray, version: int, T: int,
                g_lim: tuple[float, float]) -> None:
    sel = steps <= version
    ax.plot(steps[sel], g[sel], "-o", color=OKABE_ITO[4], ms=3, lw=1.2)
    if sel.any():
        ax.plot(steps[sel][-1:], g[sel][-1:], "o", color=OKABE_ITO[5], ms=6)
    ax.axvline(version, color="0.5", lw=0.8, ls=":")
    ax.set_yscale("log")
    ax.set_xlim(0, max(T, 1))
    ax.set_ylim(*g_lim)
    ax.set_xlabel("server version t", fontsize=8)
    ax.set_ylabel(r"$\|\nabla F(w^t)\|^2$", fontsize=8)
    ax.set_title("stationarity of the server model", fontsize=8)
    ax.tick_params(labelsize=7)


def _g_limits(g: np.ndarray) -> tuple[float, float]:
    pos = g[np.isfinite(g) & (g > 0)]
    if not pos.size:
        return 1e-3, 1.0
    return float(pos.min()) / 2.0, float(pos.max()) * 2.0


def animate_timeline(run: RunTables, out: str | os.PathLike[str], *, frames: int = 150,
                     seconds: float = 30.0, dpi: int = 80, max_rows: int = 16,
                     window: float | None = None, until: float | None = None) -> Path:
    """Write the timeline animation of ``run`` to ``out`` (a ``.gif``).

    frames: number of frames (virtual time advances by ``until/frames`` per frame);
    seconds: total duration (frame rate = frames/seconds); dpi: resolution;
    max_rows: at most this many client rows (:func:`select_clients`; the histogram, the counter
    and the curve always cover every client); window: virtual-time width of the scrolling view
    (default: a fifth of ``until``, at least 8 mean job durations or all of it);
    until: last virtual time shown (default: the last arrival).
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    out = _check_common(Path(out), frames, seconds, dpi)
    jobs, tr, hist = run.jobs, run.trace, run.history
    t_end = float(tr["time"].max()) if until is None else float(until)
    if not (math.isfinite(t_end) and t_end > 0):
        raise ValueError(f"until must be a number > 0, got {until!r}")
    dur = jobs["end"] - jobs["start"]
    if window is None:
        window = min(t_end, max(t_end / 5.0, 8.0 * float(np.mean(dur))))
    if not (isinstance(window, (int, float)) and math.isfinite(window) and window > 0):
        raise ValueError(f"window must be a number > 0, got {window!r}")
    window = float(window)
    acc = tr["accepted"].astype(bool)
    counts = np.bincount(tr["client"][acc], minlength=run.n_clients)
    shown = select_clients(run.n_clients, counts, max_rows)
    row_of = {int(c): r for r, c in enumerate(shown)}
    server_y = len(shown)
    made_time = version_times(tr, int(hist["step"].max()))
    T = made_time.size - 1
    a_time, a_client = tr["time"][acc], tr["client"][acc]
    a_tau, a_pulled, a_step = tr["staleness"][acc], tr["pulled_version"][acc], tr["step"][acc]
    tau_max = int(a_tau.max()) if a_tau.size else 1
    norm, cmap = _staleness_norm(tau_max)
    g_lim = _g_limits(hist["grad_norm2"])
    times = timeline_frame_times(t_end, frames)
    from persafl_np.plots.timeline import timeline_table

    job_tau = timeline_table(jobs, tr)["staleness"]
    row_lookup = np.full(run.n_clients, -1, dtype=np.int64)
    row_lookup[shown] = np.arange(len(shown))
    job_row = row_lookup[jobs["client"]]
    shown_job = job_row >= 0

    fig = Figure(figsize=(12.8, 7.2), layout="constrained")
    gs = fig.add_gridspec(2, 3, width_ratios=(2.4, 0.06, 1.0))
    ax = fig.add_subplot(gs[:, 0])
    ax_h = fig.add_subplot(gs[0, 2])
    ax_g = fig.add_subplot(gs[1, 2])
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=fig.add_subplot(gs[:, 1]),
                 label="staleness τ = t − p of an applied job")
    legend = [Patch(facecolor=cmap(norm(0)), edgecolor="k", label="applied job (colour = τ)"),
              Patch(facecolor="white", edgecolor="0.3",
                    label="job in flight (label: pulled wᵖ)"),
              Patch(facecolor="0.85", edgecolor="0.4", hatch="//", label="dropped / failed job"),
              Line2D([], [], color="k", marker="|", ls="", ms=10,
                     label="server version made (update applied)"),
              Line2D([], [], color=OKABE_ITO[5], marker="*", ls="", ms=11,
                     label="arrival now: flashes its τ"),
              Line2D([], [], color=OKABE_ITO[5], ls="--", lw=1.2, marker="|", ms=10,
                     label="newest arrival: back to when its wᵖ was made; the τ versions since")]
    fig.legend(handles=legend, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    prev = [0.0]

    def draw(k: int) -> None:
        if k == 1:  # the layout of frame 0 is kept: faster, and no jitter between frames
            fig.set_layout_engine("none")
        now = float(times[k])
        lo = max(0.0, now - window) if now > window else 0.0
        hi = max(window, now) + 0.03 * window  # room for the flashes at "now"
        t_prev = prev[0]
        prev[0] = now
        ax.cla()
        ax_h.cla()
        ax_g.cla()
        version = int(np.searchsorted(made_time[1:], now, side="right"))
        vis = np.flatnonzero((jobs["start"] < now) & (jobs["end"] > lo) & shown_job)
        s_, e_ = jobs["start"][vis], jobs["end"][vis]
        y_, p_, tau_ = job_row[vis], jobs["pulled_version"][vis], job_tau[vis]
        flying = e_ > now
        done_ok = ~flying & (jobs["status"][vis] == 0)
        done_bad = ~flying & ~done_ok
        ax.barh(y_[flying], now - s_[flying], left=s_[flying], height=0.6, color="white",
                edgecolor="0.3", lw=0.6)
        ax.barh(y_[done_ok], (e_ - s_)[done_ok], left=s_[done_ok], height=0.6,
                color=cmap(norm(tau_[done_ok])), edgecolor="k", lw=0.5)
        ax.barh(y_[done_bad], (e_ - s_)[done_bad], left=s_[done_bad], height=0.6,
                color="0.85", edgecolor="0.4", hatch="//", lw=0.5)
        left = np.maximum(s_, lo)
        right = np.minimum(e_, now)
        for k_ in np.flatnonzero(right - left > 0.07 * window):
            mid = (left[k_] + right[k_]) / 2
            if flying[k_]:
                ax.text(mid, y_[k_], w_version(p_[k_]), va="center", ha="center", fontsize=7,
                        clip_on=True)
            elif done_ok[k_]:
                ax.text(mid, y_[k_], f"τ={int(tau_[k_])}", ha="center", va="center",
                        fontsize=7, color="w" if norm(tau_[k_]) < 0.5 else "k", clip_on=True)
        in_view = (made_time >= lo) & (made_time <= now)
        ax.plot(made_time[in_view], np.full(int(in_view.sum()), server_y), "k|", ms=12)
        # this frame's arrivals flash their τ; the newest one is explained in words
        fresh = np.flatnonzero((a_time > t_prev) & (a_time <= now))
        for a in fresh[-6:]:  # at most 6 flashes per frame stay readable
            y = row_of.get(int(a_client[a]))
            if y is None:
                continue
            e = float(a_time[a])
            ax.plot([e], [y], marker="*", color=OKABE_ITO[5], ms=14, mec="k", mew=0.5)
            ax.text(e - 0.01 * window, y + 0.42, f"τ={int(a_tau[a])}", ha="right",
                    va="center", fontsize=8, color=OKABE_ITO[5], fontweight="bold",
                    clip_on=True, bbox={"fc": "white", "ec": "none", "pad": 0.5, "alpha": 0.8})
        fresh_shown = [a for a in fresh if int(a_client[a]) in row_of]
        if fresh_shown:
            a = fresh_shown[-1]
            c, e, p = int(a_client[a]), float(a_time[a]), int(a_pulled[a])
            tp = float(made_time[p])
            y = row_of[c]
            between = (made_time > tp) & (made_time <= e)
            ax.plot(made_time[between], np.full(int(between.sum()), server_y), "|",
                    color=OKABE_ITO[5], ms=16, mew=2)
            ax.plot([tp, e], [server_y - 0.3, y + 0.3], ls="--", color=OKABE_ITO[5], lw=1.2)
            ax.text(0.99, 0.985, f"newest arrival: client {c}, computed at {w_version(p)}, "
                    f"applied at t = {int(a_step[a])}\n"
                    f"staleness τ = t − p = {int(a_step[a])} − {p} = {int(a_tau[a])}: "
                    f"{int(a_tau[a])} other updates were applied while it computed",
                    transform=ax.transAxes, ha="right", va="top", fontsize=8,
                    color="k", bbox={"fc": "#fff3e0", "ec": OKABE_ITO[5], "pad": 3})
        ax.set_xlim(lo, hi)
        ax.set_ylim(-0.7, server_y + 1.6)
        labels = [f"client {c}" for c in shown] + ["server\nversions"]
        ax.set_yticks(list(range(server_y + 1)), labels, fontsize=7)
        ax.set_xlabel("virtual time")
        if len(shown) < run.n_clients:
            ax.set_ylabel(f"{len(shown)} of {run.n_clients} clients (spread over arrival counts)",
                          fontsize=8)
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_title(f"virtual time {now:6.2f}      server version t = {version} of {T}",
                     fontsize=11, loc="left")
        _hist_panel(ax_h, a_tau[a_time <= now], tau_max, a_tau[fresh])
        _grad_panel(ax_g, hist["step"], hist["grad_norm2"], version, T, g_lim)

    return _write_gif(fig, out, frames, seconds, dpi, draw)


def iterate_path(run_dir: str | os.PathLike[str]) -> tuple[np.ndarray, Any, Any]:
    """(w^0..w^T as a (T+1, d) array, the run's SimConfig, its data set), recomputed.

    The run directory's ``config.toml`` is rerun with its recorded ``trace.csv`` replayed
    (``simulate(cfg, arrivals=trace, stop_after=t)`` for t = 1..T: the public API, deterministic),
    and w^T is checked against ``final.npz`` — a mismatch means the files do not belong together
    (ValueError). Cost: O(T²) server steps, meant for the small 2-D problems of the contour view.
    """
    from persafl_np.config import load_config, simulate

    d = Path(run_dir)
    if not (d / "config.toml").exists():
        raise ValueError(f"the contour view reruns the run: {d / 'config.toml'} is missing")
    cfg = load_config(d / "config.toml")
    n = int(cfg.data.n_clients)
    from persafl_np.results import read_trace_csv

    trace = read_trace_csv(d / "trace.csv", n)
    data = cfg.data.build(cfg.seed)
    first = simulate(cfg, arrivals=trace, stop_after=0)
    w0 = np.asarray(first.params, dtype=np.float64).ravel()
    if w0.size != 2:
        raise ValueError(f"the contour view needs a model with 2 parameters, this run has "
                         f"{w0.size} (use --view timeline)")
    path = [w0]
    for t in range(1, cfg.T + 1):
        r = simulate(cfg, arrivals=trace, stop_after=t)
        path.append(np.asarray(r.params, dtype=np.float64).ravel())
    path = np.stack(path)
    if (d / "final.npz").exists():
        with np.load(d / "final.npz", allow_pickle=False) as z:
            final = np.asarray(z["params"], dtype=np.float64).ravel()
        if not np.allclose(final, path[-1], rtol=1e-9, atol=1e-12):
            raise ValueError(f"rerunning {d / 'config.toml'} does not reproduce final.npz")
    return path, cfg, data


def _objective_grid(cfg: Any, data: Any, path: np.ndarray, n_grid: int) -> tuple:
    """F(w) = (1/n)Σ_i F_i(w) on a grid around the path (the oracle's own F_i)."""
    model = cfg.model.build(getattr(data, "n_classes", None))
    oracle = cfg.oracle.build()
    lo, hi = path.min(axis=0), path.max(axis=0)
    pad = 0.25 * np.maximum(hi - lo, 1e-3)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], n_grid)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], n_grid)
    F = np.zeros((n_grid, n_grid))
    for c in data.clients:
        for a, yv in enumerate(ys):
            for b, xv in enumerate(xs):
                F[a, b] += float(oracle.value(model, np.array([xv, yv]), c.X_train, c.y_train))
    F /= len(data.clients)
    g2 = np.array([float(np.sum(sum(oracle.grad(model, w, c.X_train, c.y_train)
                                    for c in data.clients) ** 2)) / len(data.clients) ** 2
                   for w in path])
    return xs, ys, F, g2


def animate_contour(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *,
                    frames: int | None = None, seconds: float = 30.0, dpi: int = 80,
                    n_grid: int = 60) -> Path:
    """Write the contour animation of a 2-parameter run to ``out`` (a ``.gif``).

    One frame per applied update by default (``frames`` ≤ T picks evenly spaced versions);
    each frame shows the path w^0..w^t, the update just applied (t−1 → t): the point w^p it was
    computed at, the gap from w^p to w^{t−1} (τ versions) and the step w^{t−1} → w^t.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    path, cfg, data = iterate_path(run_dir)
    T = path.shape[0] - 1
    n_frames = T if frames is None else frames
    out = _check_common(Path(out), n_frames, seconds, dpi)
    if T < 1:
        raise ValueError("the run has no applied update to animate")
    run = load_run(run_dir)
    tr = run.trace
    acc = tr["accepted"].astype(bool)
    a_pulled, a_tau, a_client = tr["pulled_version"][acc], tr["staleness"][acc], tr["client"][acc]
    if not np.array_equal(tr["step"][acc], np.arange(T)):
        raise ValueError("the contour view needs a run in which every accepted arrival makes "
                         "one server version (persafl, fedasync); use --view timeline")
    tau_max = int(a_tau.max()) if a_tau.size else 1
    norm, cmap = _staleness_norm(tau_max)
    xs, ys, F, g2 = _objective_grid(cfg, data, path, n_grid)
    steps = np.unique(np.round(np.linspace(1, T, min(n_frames, T))).astype(np.int64))
    if steps.size < n_frames:  # more frames than updates: hold the last one
        steps = np.concatenate([steps, np.full(n_frames - steps.size, T)])
    g_lim = _g_limits(g2)
    f_lo, f_hi = float(F.min()), float(F.max())
    levels = f_lo + (f_hi - f_lo) * np.geomspace(1e-3, 1.0, 14)  # rings down to the minimum

    fig = Figure(figsize=(12.8, 7.2), layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(1.6, 1.0))
    ax = fig.add_subplot(gs[:, 0])
    ax_h = fig.add_subplot(gs[0, 1])
    ax_g = fig.add_subplot(gs[1, 1])
    legend = [Line2D([], [], color="0.4", lw=1, marker=".", label="server path w⁰, w¹, …, wᵗ"),
              Line2D([], [], color=OKABE_ITO[4], marker="o", ls="", ms=8,
                     label="wᵗ⁻¹: where the server is"),
              Line2D([], [], color=OKABE_ITO[5], marker="o", mfc="none", ls="", ms=9, mew=2,
                     label="wᵖ: stale point the update was computed at"),
              Line2D([], [], color=OKABE_ITO[5], ls=":", lw=1.5,
                     label="gap wᵖ → wᵗ⁻¹ (τ = t − 1 − p versions)"),
              Line2D([], [], color=OKABE_ITO[2], lw=2, marker=">",
                     label="step applied: wᵗ⁻¹ → wᵗ"),
              Line2D([], [], color=OKABE_ITO[2], lw=1, ls="--", marker=">", alpha=0.6,
                     label="same step drawn at wᵖ (where it was computed)")]

    def draw(k: int) -> None:
        if k == 1:  # the layout of frame 0 is kept: faster, and no jitter between frames
            fig.set_layout_engine("none")
        t = int(steps[k])
        ax.cla()
        ax_h.cla()
        ax_g.cla()
        ax.contour(xs, ys, F, levels=levels, colors="0.6", linewidths=0.7)
        ax.plot(path[:t + 1, 0], path[:t + 1, 1], ".-", color="0.4", lw=1, ms=3)
        p, tau = int(a_pulled[t - 1]), int(a_tau[t - 1])
        wp, wc, wn = path[p], path[t - 1], path[t]
        step = wn - wc
        ax.plot(*wc, "o", color=OKABE_ITO[4], ms=8)
        ax.plot(*wp, "o", mfc="none", mec=OKABE_ITO[5], ms=9, mew=2)
        ax.plot([wp[0], wc[0]], [wp[1], wc[1]], ":", color=OKABE_ITO[5], lw=1.5)
        ax.annotate("", xy=wn, xytext=wc,
                    arrowprops={"arrowstyle": "-|>", "color": OKABE_ITO[2], "lw": 2})
        ax.annotate("", xy=wp + step, xytext=wp,
                    arrowprops={"arrowstyle": "-|>", "color": OKABE_ITO[2], "lw": 1,
                                "ls": "--", "alpha": 0.6})
        ax.set_xlim(xs[0], xs[-1])
        ax.set_ylim(ys[0], ys[-1])
        ax.set_xlabel("$w_1$")
        ax.set_ylabel("$w_2$")
        ax.set_title(f"server version t = {t} of {T}: client {int(a_client[t - 1])}'s update, "
                     f"computed at {w_version(p)}, applied to {w_version(t - 1)}: "
                     f"staleness τ = {t - 1} − {p} = {tau}", fontsize=10, loc="left")
        ax.legend(handles=legend, loc="best", fontsize=7, framealpha=0.9)
        _hist_panel(ax_h, a_tau[:t], tau_max, [tau])
        _grad_panel(ax_g, np.arange(T + 1, dtype=np.float64), g2, t, T, g_lim)
        ax_g.set_title(r"$\|\nabla F(w^t)\|^2$ along the path (exact, full batch)", fontsize=8)

    return _write_gif(fig, out, n_frames, seconds, dpi, draw)
