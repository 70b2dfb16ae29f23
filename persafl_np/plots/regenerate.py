"""Rebuild every committed figure from ``figures/configs/*.toml`` (``persafl figures``).

A figure config is a TOML file::

    kind = "tolerance"            # timeline | staleness | tolerance | personalization |
                                  # async_sync | arrival_bias
    title = "..."                 # optional
    seeds = [0, 1, 2]
    [base]                        # a full run configuration (the tables of `persafl run`)
    ...
    [variants.AL]                 # one curve / panel / box per variant: dotted overrides
    "oracle.name" = "plain"
    served = "global"             # personalization only: own | global | personalized
    [grid]                        # tolerance only: exactly one dotted key -> list
    "arrivals.tau" = [0, 2, 5]
    [quick]                       # --quick: fewer seeds and T scaled down (T_scale in (0, 1])
    seeds = [0]
    T_scale = 0.2

Every run is a :class:`~persafl_np.config.SimConfig` validated before anything runs; runs are
deterministic in their seed, so the CSV beside each PNG is identical on a rerun (the PNG too, with
the same matplotlib). ``name.toml`` writes ``name.png`` and ``name.csv``. Unless ``quick``, the
bound figures of ``figures/make_bound_figures.py`` (the theory helper's code) are rebuilt as well.

A ``quick`` preview never overwrites the committed figures: it must be written elsewhere
(``out_dir`` other than the figures folder), and its titles say that it is a preview, with its
real sizes (seeds and server steps), instead of the full run's title.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tomllib
from concurrent.futures import ProcessPoolExecutor
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FigureSpec", "KINDS", "figures_command", "load_figure_spec", "preview_title",
           "regenerate_figures", "render_figure"]

KINDS = ("timeline", "staleness", "tolerance", "personalization", "async_sync", "arrival_bias")
SERVED = ("own", "global", "personalized")


@dataclass(frozen=True)
class FigureSpec:
    """A validated figure config: its runs as (variant, grid value, seed, SimConfig)."""

    name: str
    kind: str
    title: str | None
    runs: tuple[tuple[str, Any, int, Any], ...]
    served: dict[str, str]
    grid_key: str | None
    t_max: float | None
    quick: bool = False


def _scaled_T(cfg: dict, scale: float) -> None:
    cfg["T"] = max(1, int(round(cfg.get("T", 100) * scale)))
    cfg["eval_every"] = max(1, min(int(cfg.get("eval_every", 1)), cfg["T"]))


def load_figure_spec(path: str | os.PathLike[str], quick: bool = False) -> FigureSpec:
    """Read and validate a figure config (module docstring); every run config is built."""
    from persafl_np.config import SimConfig
    from persafl_np.sweep import set_path

    p = Path(path)
    with p.open("rb") as fh:
        try:
            doc = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{p}: not valid TOML ({exc})") from None
    allowed = {"kind", "title", "seeds", "base", "variants", "grid", "quick", "t_max"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ValueError(f"{p}: unknown key {unknown[0]!r} (allowed: {sorted(allowed)})")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{p}: kind must be one of {KINDS}, got {kind!r}")
    quick_doc = doc.get("quick", {})
    if not isinstance(quick_doc, dict) or set(quick_doc) - {"seeds", "T_scale"}:
        raise ValueError(f"{p}: [quick] may only hold seeds and T_scale")
    for where, seeds in (("seeds", doc.get("seeds")),
                         ("quick.seeds", quick_doc.get("seeds", doc.get("seeds")))):
        if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds) or not
                all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
            raise ValueError(f"{p}: {where} must be a non-empty list of distinct integers >= 0, "
                             f"got {seeds!r}")
    seeds = quick_doc.get("seeds", doc["seeds"]) if quick else doc["seeds"]
    scale = quick_doc.get("T_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise ValueError(f"{p}: quick.T_scale must be a number in (0, 1], got {scale!r}")
    scale = scale if quick else 1.0
    base = doc.get("base")
    if not isinstance(base, dict):
        raise ValueError(f"{p}: a [base] table (the run configuration) is required")
    variants = doc.get("variants", {"": {}})
    if not isinstance(variants, dict) or not variants:
        raise ValueError(f"{p}: [variants] must be a non-empty table of tables")
    grid = doc.get("grid", {})
    if kind == "tolerance":
        if not isinstance(grid, dict) or len(grid) != 1:
            raise ValueError(f"{p}: kind 'tolerance' needs a [grid] with exactly one key")
    elif grid:
        raise ValueError(f"{p}: [grid] is only allowed for kind 'tolerance'")
    grid_key, grid_vals = (next(iter(grid.items())) if grid else (None, [None]))
    if not isinstance(grid_vals, list) or not grid_vals:
        raise ValueError(f"{p}: grid {grid_key!r} must be a non-empty list")
    served: dict[str, str] = {}
    runs = []
    for label, over in variants.items():
        if not isinstance(over, dict):
            raise ValueError(f"{p}: variants.{label} must be a table")
        over = dict(over)
        s = over.pop("served", "personalized")
        if s not in SERVED:
            raise ValueError(f"{p}: variants.{label}.served must be one of {SERVED}, got {s!r}")
        served[label] = s
        for g in grid_vals:
            for seed in seeds:
                cfg = deepcopy(base)
                for k, v in over.items():
                    set_path(cfg, k, v)
                if grid_key is not None:
                    set_path(cfg, grid_key, g)
                cfg["seed"] = seed
                _scaled_T(cfg, scale)
                try:
                    sc = SimConfig.from_dict(cfg)
                except ValueError as exc:
                    raise ValueError(f"{p}: variant {label!r}, {grid_key}={g}, seed {seed}: "
                                     f"{exc}") from None
                runs.append((label, g, seed, sc))
    t_max = doc.get("t_max")
    if t_max is not None and (isinstance(t_max, bool) or not isinstance(t_max, (int, float))
                              or not math.isfinite(t_max) or t_max <= 0):
        raise ValueError(f"{p}: t_max must be a positive number, got {t_max!r}")
    return FigureSpec(p.stem, kind, doc.get("title"), tuple(runs), served, grid_key,
                      None if t_max is None else float(t_max), quick)


def preview_title(spec: FigureSpec) -> str:
    """The title of a ``quick`` preview: says so, with the sizes that were actually run."""
    seeds = sorted({r[2] for r in spec.runs})
    Ts = sorted({r[3].T for r in spec.runs})
    T = str(Ts[0]) if len(Ts) == 1 else f"{Ts[0]}-{Ts[-1]}"
    return (f"PREVIEW (persafl figures --quick) of {spec.name}: {len(seeds)} seed"
            f"{'s' if len(seeds) != 1 else ''}, T = {T} server steps per run; "
            "not the committed figure")


def _run(cfg: Any) -> dict[str, Any]:
    """Simulate and keep only what the figures read (small, picklable across processes)."""
    from persafl_np.config import simulate

    try:  # scikit-learn's dependency; absent, BLAS keeps its default thread count
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    # One BLAS thread per run: parallel runs would otherwise oversubscribe a small machine, and
    # the BLAS thread count can change float summation order (the CSVs must be reproducible).
    if threadpool_limits is None:
        res = simulate(cfg)
    else:
        with threadpool_limits(limits=1, user_api="blas"):
            res = simulate(cfg)
    if not res.ok:
        raise RuntimeError(f"run {cfg.algorithm.name} seed {cfg.seed} ended {res.status}: "
                           f"{res.message}")
    t = res.trace
    return {"history": {k: v.copy() for k, v in res.history.columns.items()},
            "staleness": t.staleness[t.accepted].copy(), "shares": res.shares.copy(),
            "params": res.params.copy(), "client_params": res.client_params,
            "jobs": {k: v.copy() for k, v in res.jobs.items()},
            "trace": {"time": t.time.copy(), "step": t.step.copy(), "client": t.client.copy(),
                      "accepted": t.accepted.copy()}}


def _execute(spec: FigureSpec, workers: int) -> list[dict[str, Any]]:
    cfgs = [r[3] for r in spec.runs]
    if workers <= 1 or len(cfgs) == 1:
        return [_run(c) for c in cfgs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_run, cfgs))


def render_figure(spec: FigureSpec, out_dir: str | os.PathLike[str], workers: int = 2) -> Path:
    """Run ``spec``'s simulations and write ``out_dir/<name>.png`` and ``.csv``."""
    from persafl_np import plots as _p  # noqa: F401  (package import keeps Agg-only figures)
    from persafl_np.plots.arrival_bias import plot_arrival_bias
    from persafl_np.plots.async_sync import plot_async_sync
    from persafl_np.plots.personalization import client_accuracies, plot_personalization
    from persafl_np.plots.staleness import plot_staleness_histograms
    from persafl_np.plots.timeline import plot_timeline, timeline_table
    from persafl_np.plots.tolerance import plot_tolerance

    out = Path(out_dir) / f"{spec.name}.png"
    res = _execute(spec, workers)
    kw = {"title": preview_title(spec) if spec.quick else spec.title}
    if spec.kind == "timeline":
        r = res[0]
        plot_timeline(timeline_table(r["jobs"], r["trace"]), out, t_max=spec.t_max, **kw)
    elif spec.kind == "staleness":
        samples: dict[str, list] = {}
        for (label, _, _, _), r in zip(spec.runs, res, strict=True):
            samples.setdefault(label, []).append(r["staleness"])
        plot_staleness_histograms({k: np.concatenate(v) for k, v in samples.items()}, out, **kw)
    elif spec.kind == "tolerance":
        rec: dict[str, list] = {k: [] for k in ("label", "tau_max", "seed", "acc_pers_mean",
                                                "grad_norm2")}
        for (label, g, seed, _), r in zip(spec.runs, res, strict=True):
            h = r["history"]
            for k, v in (("label", label), ("tau_max", g), ("seed", seed),
                         ("acc_pers_mean", h["acc_pers_mean"][-1]),
                         ("grad_norm2", h["grad_norm2"][-1])):
                rec[k].append(v)
        plot_tolerance(rec, out, **kw)
    elif spec.kind == "personalization":
        accs: dict[str, list] = {}
        data_cache: dict[int, Any] = {}
        for (label, _, seed, cfg), r in zip(spec.runs, res, strict=True):
            if seed not in data_cache:
                data_cache[seed] = cfg.data.build(cfg.seed)
            served = spec.served[label]
            a = client_accuracies(cfg, r["params"],
                                  r["client_params"] if served == "own" else None,
                                  personalize=served == "personalized", data=data_cache[seed])
            accs.setdefault(label, []).append(a)
        plot_personalization({k: np.concatenate(v) for k, v in accs.items()}, out, **kw)
    elif spec.kind == "async_sync":
        curves: dict[str, list] = {}
        for (label, _, _, _), r in zip(spec.runs, res, strict=True):
            h = r["history"]
            curves.setdefault(label, []).append((h["time"], h["step"], h["acc_pers_mean"]))
        plot_async_sync(curves, out, **kw)
    else:  # arrival_bias
        cfg = spec.runs[0][3]
        if cfg.arrivals.speeds is None:
            raise ValueError(f"{spec.name}: arrival_bias needs arrivals.speeds in [base]")
        h = [r["history"] for r in res]
        plot_arrival_bias(cfg.arrivals.speeds, [r["shares"] for r in res], h[0]["step"],
                          [x["grad_norm2"] for x in h], [x["weighted_grad_norm2"] for x in h],
                          out, **kw)
    return out


def _bound_figures(figures_dir: Path) -> list[Path]:
    script = figures_dir / "make_bound_figures.py"
    if not script.exists():
        script = Path(__file__).resolve().parents[2] / "figures" / "make_bound_figures.py"
    if not script.exists():
        raise ValueError(f"make_bound_figures.py not found in {figures_dir}")
    mod_spec = importlib.util.spec_from_file_location("_persafl_bound_figures", script)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    mod.OUT = figures_dir  # the script writes next to itself by default
    mod.main()
    # Theory II figures ((TB) against tau, (TA) on event-driven runs): same loading rule.
    spec2 = importlib.util.spec_from_file_location(
        "_persafl_theory2_figures", script.with_name("make_theory2_figures.py"))
    mod2 = importlib.util.module_from_spec(spec2)
    spec2.loader.exec_module(mod2)
    mod2.OUT = figures_dir
    return [figures_dir / f"{n}.png" for n in ("bound_vs_T", "bound_vs_tau",
                                               "bound_ratio_vs_step")] + mod2.main()


def regenerate_figures(figures_dir: str | os.PathLike[str] = "figures", quick: bool = False,
                       workers: int = 2, bounds: bool | None = None,
                       out_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Rebuild every figure of ``figures_dir/configs/*.toml`` (sorted by name) into
    ``out_dir`` (default ``figures_dir``); returns the PNG paths written.

    quick: each config's ``[quick]`` seeds and T scale (a preview); then ``out_dir`` is required
        and must not be ``figures_dir`` (a preview never replaces a committed figure).
    bounds: also rebuild the bound figures (default: ``not quick``; they take minutes).
    """
    d = Path(figures_dir)
    cfg_dir = d / "configs"
    configs = sorted(cfg_dir.glob("*.toml"))
    if not configs:
        raise ValueError(f"figures_dir={str(d)!r} has no configs/*.toml")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    out_d = d if out_dir is None else Path(out_dir)
    if quick and out_d.resolve() == d.resolve():
        raise ValueError(f"--quick writes previews, never into {d}: give --out DIR (another "
                         "folder)")
    with_bounds = bounds if bounds is not None else not quick
    if with_bounds and out_d.resolve() != d.resolve():
        raise ValueError("the bound figures are written next to make_bound_figures.py: "
                         "run without --out, or with --quick")
    specs = [load_figure_spec(c, quick=quick) for c in configs]  # validate all before running
    out_d.mkdir(parents=True, exist_ok=True)
    out = [render_figure(s, out_d, workers) for s in specs]
    if with_bounds:
        out += _bound_figures(d)
    from persafl_np.plots.tightness import replot_bound_tightness  # from its committed CSV
    out += replot_bound_tightness(d)
    return out


def figures_command(quick: bool = False, figures_dir: str | os.PathLike[str] = "figures",
                    workers: int = 2, out: str | os.PathLike[str] | None = None) -> int:
    """``persafl figures [--quick] [--out DIR]``: render, print each PNG written, return 0."""
    for png in regenerate_figures(figures_dir, quick=quick, workers=workers, out_dir=out):
        print(f"wrote {png} and {png.with_suffix('.csv').name}")
    return 0
