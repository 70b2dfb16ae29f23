"""The built-in main job (``persafl demo``): one asynchronous run, its timeline, and a bound check.

Two parts, both small enough for under a minute on 2 cores:

1. **An asynchronous PersA-FL run** (theory/brief_results.md (B2)) with MAML clients (α = 0.01):
softmax
   regression on FedProx Synthetic(0.5, 0.5), 20 clients, exponential job times with every
   4th client 4× faster, Q = 5, η = 0.05, β = 1, 600 server steps. Its files (config.toml,
   trace.csv, jobs.csv, history.csv, final.npz) go to ``OUT/run`` and the Gantt chart of its
   first jobs to ``OUT/timeline.png`` (pulled version → produced version; staleness τ = t − p).
2. **The stationarity bound against a real run** (theory/async_theorem.md (T1)): the default
   bound instance of ``figures/make_bound_figures.py`` (AL variant: shifted least squares,
   n = 10, d = 5, exact gradients plus noise σ = 0.5, Q = 5, τ = 4, theorem-mode arrivals,
   steps at the (T2) maxima), measured (1/T)Σ_{t<T}‖∇F(w^t)‖² over 4 seeds against the bound,
   written to ``OUT/bound_vs_T.png``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEMO_CONFIG", "DemoResult", "bound_demo", "run_demo"]

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
    files = [out / "run" / f for f in ("config.toml", "trace.csv", "jobs.csv", "history.csv",
                                      "final.npz")]
    import matplotlib.pyplot as plt

    table = timeline_table(res.jobs, res.trace)
    fig = plot_timeline(table, out / "timeline.png", t_max=1.0,
                        title="persafl demo: first jobs of 20 clients (every 4th is 4x faster); "
                              "bar label p->t+1, colour = staleness")
    plt.close(fig)
    curve, _ = bound_demo()
    fig = plot_bound_vs_T([curve], out / "bound_vs_T.png",
                          title="(T1) bound vs measured, default instance (AL)")
    plt.close(fig)
    files += [out / "timeline.png", out / "bound_vs_T.png"]
    return DemoResult(
        run=res,
        bound_T=tuple(int(t) for t in curve.x),
        bound_measured=tuple(float(m) for m in curve.measured.mean(axis=0)),
        bound_total=tuple(float(b) for b in curve.bound),
        files=tuple(files),
    )
