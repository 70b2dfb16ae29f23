"""The built-in main job (``persafl demo``): one asynchronous run, its timeline, and a bound check.

Two parts, both small enough for under a minute on 2 cores:

1. **An asynchronous PersA-FL run** (theory/brief_results.md (B2)) with MAML clients
   (α = 0.01): softmax regression on FedProx Synthetic(0.5, 0.5), 20 clients, exponential job
   times with every 4th client 4× faster, Q = 5, η = 0.05, β = 1, 600 server steps. Its files
   (config.toml, trace.csv, jobs.csv, history.csv, final.npz, summary.json, fingerprint.json)
   go to ``OUT/run`` and the Gantt
   chart of its first jobs to ``OUT/timeline.png`` + ``.csv`` (pulled version → produced
   version; staleness τ = t − p); ``persafl animate OUT/run --out run.gif`` animates it.
2. **The stationarity bound against a real run** (theory/async_theorem.md (T1)): the default
   bound instance of ``figures/make_bound_figures.py`` (AL variant: shifted least squares,
   n = 10, d = 5, exact gradients plus noise σ = 0.5, Q = 5, τ = 4, theorem-mode arrivals,
   steps at the (T2) maxima), measured (1/T)Σ_{t<T}‖∇F(w^t)‖² over 4 seeds against the bound,
   written to ``OUT/bound_vs_T.png`` + ``.csv``. This is a *different problem* from part 1,
   chosen because its constants L, σ², γ², Δ_F are known exactly; :func:`demo_report` says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np import fingerprint

__all__ = ["DEMO_CONFIG", "RUN_FILES", "DemoResult", "bound_demo", "demo_report", "run_demo"]

#: what RunResult.save writes into OUT/run
RUN_FILES = ("config.toml", "trace.csv", "jobs.csv", "history.csv", "final.npz", "summary.json",
             fingerprint.FILE)

N_CLIENTS = 20
DEMO_CONFIG: dict[str, Any] = {
    "seed": 0,
    "T": 600,
    "eval_every": 100,
    "model": {"name": "softmax"},
    "oracle": {"name": "maml", "alpha": 0.01},
    "data": {"name": "fedprox_synthetic", "n_clients": N_CLIENTS, "alpha": 0.5, "beta": 0.5,
             "n_features": 60, "n_classes": 10},
    "algorithm": {"name": "persafl", "Q": 5, "eta": 0.05, "beta": 1.0, "batch_size": 16},
    "arrivals": {"mode": "event", "job_time": {"law": "exponential", "mean": 1.0},
                 "speeds": [1.0 + 3.0 * (i % 4 == 0) for i in range(N_CLIENTS)]},
}

# The default bound instance (figures/make_bound_figures.py, theory/assumptions.md §6).
_Q, _TAU, _SIGMA = 5, 4, 0.5
_T_GRID = (25, 50, 100, 200, 400)


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` produced.

    run: the asynchronous run's :class:`~persafl_np.results.RunResult`.
    bound_T, bound_measured, bound_total: the bound check (seed-mean measured
    (1/T)Σ‖∇F‖² and the (T1) bound at each horizon T).
    files: every file written.
    """

    run: Any
    bound_T: tuple[int, ...]
    bound_measured: tuple[float, ...]
    bound_total: tuple[float, ...]
    files: tuple[Path, ...]

    @property
    def bound_ratio(self) -> float:
        """Largest measured/bound over the horizons (≤ 1 when (T1) holds)."""
        return max(m / b for m, b in zip(self.bound_measured, self.bound_total, strict=True))


def bound_demo(seeds: range = range(4)) -> tuple[Any, Any]:
    """Run the default bound instance (AL); return its ``BoundCurve`` and the constants."""
    from persafl_np.algorithms import Algorithm, persafl
    from persafl_np.bounds import stationarity_bound
    from persafl_np.bounds.check import problem_constants
    from persafl_np.data import shifted_least_squares
    from persafl_np.models import LeastSquares
    from persafl_np.personalization import AdditiveNoise, Plain
    from persafl_np.plots import BoundCurve
    from persafl_np.sim import Problem, TheoremMode, run

    p = shifted_least_squares(10, 5, 20, 0, condition_number=10.0)
    u = np.random.default_rng(0).normal(size=5)
    w0 = p.w_star + 2.0 * u / np.linalg.norm(u)
    oracle = AdditiveNoise(Plain(), _SIGMA)
    c = problem_constants(LeastSquares(), oracle, p.dataset, w0)
    eta = 1.0 / (16 * _Q * c.L)  # (T2) maxima
    beta = (1.0 / (24 * _TAU * _Q * c.L)) / eta
    prob = Problem.build(LeastSquares(), oracle, p.dataset, w0=w0)
    alg = Algorithm(persafl(beta), Q=_Q, eta=eta)
    T_max = max(_T_GRID)
    measured = np.empty((len(seeds), len(_T_GRID)))
    for j, s in enumerate(seeds):
        g = np.asarray(run(prob, alg, TheoremMode(_TAU, "uniform"), T=T_max, seed=s)
                       .history.grad_norm2)
        csum = np.cumsum(g)  # history rows are t = 0..T; prefix means over t < T
        measured[j] = [csum[T - 1] / T for T in _T_GRID]
    bound = np.array([stationarity_bound(c.L, c.sigma2, c.gamma2, c.delta_f, T, _TAU, _Q, eta,
                                         beta).total for T in _T_GRID])
    curve = BoundCurve("AL (shifted least squares, tau=4, Q=5)", np.array(_T_GRID, float),
                       measured, bound)
    return curve, c


def run_demo(out: str | os.PathLike[str], seed: int = 0) -> DemoResult:
    """Run both parts of the demo and write their files under ``out``."""
    from persafl_np.config import SimConfig, simulate
    from persafl_np.plots import plot_bound_vs_T
    from persafl_np.plots.timeline import plot_timeline, timeline_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = simulate(SimConfig.from_dict({**DEMO_CONFIG, "seed": seed}))
    res.save(out / "run")
    files = [out / "run" / f for f in RUN_FILES]
    table = timeline_table(res.jobs, res.trace)
    plot_timeline(table, out / "timeline.png", t_max=2.0,
                  title="persafl demo, part 1: the first jobs of the 20 clients (every 4th is 4x "
                        "faster); each bar runs from the pull of wᵖ to the version it makes")
    curve, _ = bound_demo()
    plot_bound_vs_T([curve], out / "bound_vs_T.png",
                    title="persafl demo, part 2 (a different problem: shifted least squares, "
                          "AL, theorem mode):\nthe bound (T1) against measured stationarity")
    files += [out / f"{stem}.{ext}" for stem in ("timeline", "bound_vs_T")
              for ext in ("png", "csv")]
    return DemoResult(
        run=res,
        bound_T=tuple(int(t) for t in curve.x),
        bound_measured=tuple(float(m) for m in curve.measured.mean(axis=0)),
        bound_total=tuple(float(b) for b in curve.bound),
        files=tuple(files),
    )


def _table(header: tuple[str, ...], rows: list[tuple], fmt: tuple[str, ...]) -> list[str]:
    """Right-aligned columns; headers have no spaces, so the table reads back with split()."""
    widths = [max(len(h), 10) for h in header]
    lines = [" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True))]
    for r in rows:
        lines.append(" ".join(f"{format(v, f):>{w}}" for v, f, w in
                              zip(r, fmt, widths, strict=True)))
    return lines


def demo_report(demo: DemoResult, wall: float) -> str:
    """The text ``persafl demo`` prints: both parts, each naming its problem, then the files."""
    res = demo.run
    h, c, tr, p = res.history, res.counters, res.trace, res.shares
    lines = ["part 1 — asynchronous PersA-FL run: softmax regression on FedProx Synthetic(0.5, "
             "0.5), 20 clients (every 4th 4x faster), MAML clients (alpha = 0.01), Q = 5, "
             "eta = 0.05, beta = 1, exponential job times, 600 server steps "
             f"(status: {res.status})"]
    header = ("step", "time", "F(w)", "gradF_norm2", "weighted_grad_norm2", "acc_global",
              "acc_pers_mean", "acc_pers_min")
    rows = [(int(h.step[r]), h.time[r], h.loss[r], h.grad_norm2[r], h.weighted_grad_norm2[r],
             h.acc_global[r], h.acc_pers_mean[r], h.acc_pers_min[r]) for r in range(len(h))]
    lines += _table(header, rows, ("d", ".3f", ".4f", ".4g", ".4g", ".3f", ".3f", ".3f"))
    lines += [
        "  gradF_norm2 = ||grad F(w)||^2 with F = (1/n) sum_i F_i; weighted_grad_norm2 = "
        "||sum_i p_i grad F_i(w)||^2 (p_i = arrival shares); acc_* = test accuracy of the "
        "global model w, and mean / worst client of the personalized models",
        f"  arrivals {c['arrivals']}, applied {c['applied']}, dropped {c['dropped']}; "
        f"staleness tau = t - p: mean {tr.staleness.mean():.2f}, max {c['max_staleness']}; "
        f"arrival shares p_i from {p.min():.3f} to {p.max():.3f} (uniform {1 / len(p):.3f}); "
        f"gradient evaluations {c['n_grad']} (+{c['n_hvp']} Hessian-vector products)",
        "",
        "part 2 — the stationarity bound (T1) of theory/async_theorem.md against real runs, on a "
        "DIFFERENT problem whose constants are known exactly: shifted least squares, 10 clients, "
        "d = 5, plain oracle (AL) with gradient noise sigma = 0.5, theorem-mode arrivals with "
        "tau = 4, Q = 5, steps at the (T2) maxima; measured = (1/T) sum_{t<T} ||grad F(w^t)||^2, "
        "mean of 4 seeds"]
    lines += _table(("T", "measured", "bound", "ratio"),
                    [(T, m, b, m / b) for T, m, b in zip(demo.bound_T, demo.bound_measured,
                                                          demo.bound_total, strict=True)],
                    ("d", ".4g", ".4g", ".4f"))
    lines += [f"  largest measured/bound {demo.bound_ratio:.4f} (<= 1: the theorem holds here)",
              "",
              f"wall time {wall:.2f} s",
              "files: " + ", ".join(str(f) for f in demo.files)]
    return "\n".join(lines)
