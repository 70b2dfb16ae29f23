"""Redraw a committed figure from the CSV beside it, without rerunning its simulations.

Every figure of ``figures/`` is written together with the tidy CSV of the numbers it shows
(:func:`persafl_np.plots.output.save_figure`). :func:`replot` reads ``name.csv``, rebuilds the
inputs of the figure's plot function and calls it again, so a change of *presentation* (legend,
markers, title) can be applied to every figure in seconds — and the CSV it writes back must be
byte-identical to the one it read (the data did not change; :func:`replot` checks this and
raises otherwise). ``persafl figures`` remains the way to regenerate the *data*.
"""

from __future__ import annotations

import csv
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["REPLOTTABLE", "replot"]

#: the committed figures (file stems); the kind of each comes from figures/configs/<name>.toml
#: (figures/personalization.png is drawn by experiments/personalization_regime/run.py --report
#: from its runs, and personalization_regime.png too: both have no figure config)
REPLOTTABLE = ("arrival_bias", "async_vs_sync", "staleness_histograms", "staleness_tolerance",
               "timeline", "bound_vs_T", "bound_vs_tau", "bound_ratio_vs_step")

#: titles of the bound figures (figures/make_bound_figures.py passes the same strings)
BOUND_TITLES = {
    "bound_vs_T": "measured stationarity and its bound against the horizon T\n"
                  "(default instance: Q = 5, τ = 4, σ = 0.5, largest steps (T2) allows)",
    "bound_vs_tau": "measured stationarity and its bound against the staleness bound τ\n"
                    "(default instance, T = 800, largest steps (T2) allows at each τ)",
    "bound_ratio_vs_step": "measured / bound as the steps shrink: the bound fails only when "
                           "arrivals are not uniform",
}
#: old CSV labels of the bound figures → the labels make_bound_figures.py now writes
BOUND_LABELS = {
    "C5 fails: restart rule, speeds 1:4 (event-driven)":
        "arrivals not uniform (C5 fails): speeds 1:4, restart rule",
    "C5 holds: theorem mode, same steps (4 seeds)":
        "uniform arrivals (C5 holds): theorem mode, same steps",
}


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise ValueError(f"{path} does not exist (replot needs the CSV written with the figure)")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _kind(figures_dir: Path, name: str) -> str:
    if name.startswith("bound_"):
        return name
    cfg = figures_dir / "configs" / f"{name}.toml"
    if not cfg.exists():
        raise ValueError(f"no figure config {cfg} for figure {name!r}")
    with cfg.open("rb") as fh:
        return str(tomllib.load(fh)["kind"])


def _title(figures_dir: Path, name: str) -> str | None:
    cfg = figures_dir / "configs" / f"{name}.toml"
    if not cfg.exists():
        return None
    with cfg.open("rb") as fh:
        return tomllib.load(fh).get("title")


def _group(rows: list[dict[str, str]], key: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def replot(figures_dir: str | os.PathLike[str], name: str,
           out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Redraw ``figures_dir/name.png`` from ``name.csv`` into ``out_dir`` (default: in place).

    Raises ValueError if the figure is unknown, its CSV is missing, or the CSV written back
    differs from the one read (other than the bound figures' renamed labels).
    """
    from persafl_np.plots.arrival_bias import plot_arrival_bias
    from persafl_np.plots.async_sync import plot_async_sync
    from persafl_np.plots.bounds import (
        BoundCurve,
        plot_bound_vs_T,
        plot_bound_vs_tau,
        plot_ratio_vs_step,
    )
    from persafl_np.plots.personalization import plot_personalization
    from persafl_np.plots.staleness import plot_staleness_histograms
    from persafl_np.plots.timeline import plot_timeline
    from persafl_np.plots.tolerance import plot_tolerance

    d = Path(figures_dir)
    if name not in REPLOTTABLE:
        raise ValueError(f"name must be one of {REPLOTTABLE}, got {name!r}")
    src = d / f"{name}.csv"
    rows = _rows(src)
    before = src.read_text()
    out = Path(out_dir if out_dir is not None else d) / f"{name}.png"
    kind = _kind(d, name)
    title = _title(d, name)
    fig: Any
    if kind == "timeline":
        cols = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
        status = {"applied": 0, "dropped": 1, "failed": 2}
        tab = {"client": cols["client"].astype(np.int64),
               "start": cols["start"].astype(np.float64),
               "end": cols["end"].astype(np.float64),
               "pulled_version": cols["pulled_version"].astype(np.int64),
               "produced_version": cols["produced_version"].astype(np.int64),
               "staleness": cols["staleness"].astype(np.int64),
               "status": np.asarray([status[s] for s in cols["status"]], dtype=np.int64)}
        fig = plot_timeline(tab, out, title=title)
    elif kind == "staleness":
        samples = {lab: np.repeat(np.asarray([int(r["staleness"]) for r in rs]),
                                  [int(r["count"]) for r in rs])
                   for lab, rs in _group(rows, "label").items()}
        fig = plot_staleness_histograms(samples, out, title=title)
    elif kind == "tolerance":
        rec = {"label": np.asarray([r["label"] for r in rows]),
               "tau_max": np.asarray([int(r["tau_max"]) for r in rows]),
               "seed": np.asarray([int(r["seed"]) for r in rows]),
               "acc_pers_mean": np.asarray([float(r["acc_pers_mean"]) for r in rows]),
               "grad_norm2": np.asarray([float(r["grad_norm2"]) for r in rows])}
        fig = plot_tolerance(rec, out, title=title)
    elif kind == "personalization":
        accs = {lab: np.asarray([float(r["accuracy"]) for r in rs])
                for lab, rs in _group(rows, "label").items()}
        fig = plot_personalization(accs, out, title=title)
    elif kind == "async_sync":
        curves = {}
        for lab, rs in _group(rows, "label").items():
            curves[lab] = [(np.asarray([float(r["time"]) for r in s]),
                            np.asarray([int(r["step"]) for r in s]),
                            np.asarray([float(r["accuracy"]) for r in s]))
                           for s in _group(rs, "seed").values()]
        fig = plot_async_sync(curves, out, title=title)
    elif kind == "arrival_bias":
        sh = [r for r in rows if r["panel"] == "shares"]
        gr = [r for r in rows if r["panel"] == "gradients"]
        by_seed = _group(sh, "seed")
        speeds = np.asarray([float(r["x"]) for r in next(iter(by_seed.values()))])
        shares = np.asarray([[float(r["value"]) for r in s] for s in by_seed.values()])
        g_seed = _group(gr, "seed")
        steps = np.asarray([float(r["x"]) for r in next(iter(g_seed.values()))])
        g = np.asarray([[float(r["value"]) for r in s] for s in g_seed.values()])
        gw = np.asarray([[float(r["value2"]) for r in s] for s in g_seed.values()])
        fig = plot_arrival_bias(speeds, shares, steps, g, gw, out, title=title)
    else:
        curves = []
        for lab, rs in _group(rows, "label").items():
            seeds = _group(rs, "seed")
            first = next(iter(seeds.values()))
            curves.append(BoundCurve(
                BOUND_LABELS.get(lab, lab), np.asarray([float(r["x"]) for r in first]),
                np.asarray([[float(r["measured"]) for r in s] for s in seeds.values()]),
                np.asarray([float(r["bound"]) for r in first])))
        plot = {"bound_vs_T": plot_bound_vs_T, "bound_vs_tau": plot_bound_vs_tau,
                "bound_ratio_vs_step": plot_ratio_vs_step}[kind]
        fig = plot(curves, out, title=BOUND_TITLES[kind])
        for old, new in BOUND_LABELS.items():
            before = before.replace(old if "," not in old else f'"{old}"',
                                    new if "," not in new else f'"{new}"')
    del fig
    after = out.with_suffix(".csv").read_text()
    if after != before:
        raise ValueError(f"replotting {name} changed its data ({out.with_suffix('.csv')} differs "
                         f"from {src}); rerun `persafl figures` instead")
    return out
