"""Generate the figures of Theory II (deterministic): (TB) against τ and (TA) on event-driven runs.

Run ``python figures/make_theory2_figures.py`` from the repository root (``persafl figures``
runs it too). Writes

* ``staleness_linear_vs_tau.{png,csv}`` — delayed SGD solved exactly (discrete Lyapunov
  equation; theory/staleness_linear.md §5): the measured stationary ‖∇F‖² against τ at the step
  cap a = η = 1/(24τL), with (T1) (D4, sharp) and (TB-1) (μ = 1 and μ = 9), and measured/bound;
* ``arrival_bias_TA.{png,csv}`` — event-driven runs, i.i.d. exponential job times with rates
  (1, 1, 2, 6), every client in flight (theory/arrival_bias.md (TA-0): p = (0.1, 0.1, 0.2, 0.6)),
  AL on shifted least squares with condition number 1, σ = 0, 3 seeds: (1/T)Σ‖∇F_p‖² and
  (1/T)Σ‖∇F‖² of the plain step against (TA-1) and (TA-4), and (1/T)Σ‖∇F‖² of the
  1/(n p_i)-reweighted step against (TA-5).
  τ is the realised maximum staleness (C4 fails for exponential arrivals: these bounds are an
  empirical yardstick there, not proved; §5 of theory/arrival_bias.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from persafl_np.algorithms import Algorithm, ClientReweight, persafl
from persafl_np.bounds.arrival import arrival_bound, reweighted_bound
from persafl_np.bounds.constants import personalized_hessian
from persafl_np.bounds.shares import shares_from_rates, weighted_ls_constants
from persafl_np.bounds.staleness_linear import delayed_sgd_stationary, martingale_bound
from persafl_np.bounds.theorem import stationarity_bound
from persafl_np.data import shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.plots.output import new_figure, save_figure
from persafl_np.sim import EventDriven, JobTime, Problem, run

OUT = Path(__file__).resolve().parent
TAUS = (1, 2, 4, 8, 16, 32, 48)
RATES = (1.0, 1.0, 2.0, 6.0)
SEEDS = (0, 1, 2)
T_GRID = (200, 800, 3200, 12800, 51200)


def staleness_figure() -> Path:
    rows, cols = [], {k: [] for k in ("meas", "d4", "sharp", "tb1", "tb9")}
    for tau in TAUS:
        a = 1.0 / (24 * tau)
        g = delayed_sgd_stationary(a, 1.0, tau, 1.0)
        args = (1.0, 1.0, 0.0, 0.0, 10, tau, 1, a, 1.0)
        b = {
            "d4": stationarity_bound(*args).total,
            "sharp": stationarity_bound(*args, constants="sharp").total,
            "tb1": martingale_bound(*args, rho=1, window="independent").total,
            "tb9": martingale_bound(*args).total,
        }
        cols["meas"].append(g)
        for k, v in b.items():
            cols[k].append(v)
        rows.append([tau, a, g, b["d4"], b["sharp"], b["tb1"], b["tb9"], g / b["d4"],
                     g / b["sharp"], g / b["tb1"], g / b["tb9"]])
    fig, (ax, ax2) = new_figure(2, width=11.0, height=4.2)
    x = np.array(TAUS, float)
    labels = {"d4": "(T1) D4", "sharp": "(T1) sharp", "tb1": "(TB-1) mu=1", "tb9": "(TB-1) mu=9"}
    ax.loglog(x, cols["meas"], "k-o", ms=3, label="measured (exact)")
    for k, lab in labels.items():
        ax.loglog(x, cols[k], "--", label=lab)
        ax2.semilogx(x, np.array(cols["meas"]) / np.array(cols[k]), "-o", ms=3, label=lab)
    ax.set_xlabel("staleness bound tau")
    ax.set_ylabel("stationary E||grad F||^2")
    ax.set_title("delayed SGD at the step cap a = 1/(24 tau L)")
    ax.legend(fontsize=8)
    ax2.set_xlabel("staleness bound tau")
    ax2.set_ylabel("measured / bound")
    ax2.set_ylim(0, None)
    ax2.set_title("(T1) falls like 1/tau, (TB-1) stays flat")
    ax2.legend(fontsize=8)
    return save_figure(fig, OUT / "staleness_linear_vs_tau.png",
                       ["tau", "a", "measured", "bound_d4", "bound_sharp", "bound_tb_mu1",
                        "bound_tb_mu9", "ratio_d4", "ratio_sharp", "ratio_tb_mu1",
                        "ratio_tb_mu9"], rows)


def _ls_iterates(H, C, w0, trace, eta, beta, omega=None):
    """Server iterates of an exact-gradient, Q = 1 run on F_i = ½(w − c_i)ᵀH(w − c_i)."""
    ws = [np.asarray(w0, dtype=np.float64)]
    for i, v, acc in zip(np.asarray(trace.client).tolist(),
                         np.asarray(trace.pulled_version).tolist(),
                         np.asarray(trace.accepted).tolist(), strict=True):
        if acc:
            g = H @ (ws[v] - C[i])
            step = beta * (1.0 if omega is None else float(omega[i]))
            ws.append(ws[-1] - step * eta * g)
    return np.stack(ws)


def _prefix(values: np.ndarray, Ts) -> list[float]:
    c = np.cumsum(values)
    return [float(c[T - 1] / T) for T in Ts]


def arrival_figure() -> Path:
    data = shifted_least_squares(4, 2, 8, 3, condition_number=1.0, spread=2.0)
    oracle = Plain()
    H = personalized_hessian(data.A, oracle)
    p = shares_from_rates(RATES)
    w0 = data.centers.mean(axis=0) + np.array([-1.0, 1.0])
    prob = Problem.build(LeastSquares(), oracle, data.dataset, w0=w0)
    wc = weighted_ls_constants(data, oracle, w0, p)
    arrivals = EventDriven(job_time=JobTime("exponential"), speeds=RATES)
    T = max(T_GRID)
    tau = max(int(run(prob, Algorithm(persafl(1.0), Q=1, eta=1e-3), arrivals, T=T, seed=s,
                      eval_every=T).counters["max_staleness"]) for s in SEEDS)
    eta = 1.0 / (16 * wc.L)
    a = 1.0 / (24 * tau * wc.L)
    a_rw = a * len(RATES) * float(p.min())
    omega = 1.0 / (len(RATES) * p)
    c_bar, c_p = data.centers.mean(axis=0), p @ data.centers
    meas = {"plain F_p": [], "plain F": [], "reweighted F": []}
    for s in SEEDS:
        r1 = run(prob, Algorithm(persafl(a / eta), Q=1, eta=eta), arrivals, T=T, seed=s,
                 eval_every=T)
        ws = _ls_iterates(H, data.centers, w0, r1.trace, eta, a / eta)[:T]
        meas["plain F_p"].append(_prefix(np.sum(((ws - c_p) @ H.T) ** 2, axis=1), T_GRID))
        meas["plain F"].append(_prefix(np.sum(((ws - c_bar) @ H.T) ** 2, axis=1), T_GRID))
        r2 = run(prob, Algorithm(persafl(a_rw / eta), Q=1, eta=eta,
                                 reweight=ClientReweight(tuple(p.tolist()))), arrivals, T=T,
                 seed=s, eval_every=T)
        ws2 = _ls_iterates(H, data.centers, w0, r2.trace, eta, a_rw / eta, omega)[:T]
        meas["reweighted F"].append(_prefix(np.sum(((ws2 - c_bar) @ H.T) ** 2, axis=1), T_GRID))
    bnd = {"plain F_p": [], "plain F": [], "reweighted F": []}
    for Tk in T_GRID:
        b = arrival_bound(wc.L, 0.0, wc.gamma2_p, wc.delta_fp, p, Tk, tau, 1, eta, a / eta,
                          constants="sharp")
        bnd["plain F_p"].append(b.on_Fp.total)
        bnd["plain F"].append(b.on_F)
        bnd["reweighted F"].append(reweighted_bound(wc.L, 0.0, wc.gamma2, wc.delta_f, p, Tk, tau,
                                                    1, eta, a_rw / eta, constants="sharp").total)
    fig, (ax,) = new_figure(1, width=7.0, height=4.6)
    x = np.array(T_GRID, float)
    rows = []
    for k, (name, m) in enumerate(meas.items()):
        m = np.array(m)
        ax.loglog(x, m.mean(axis=0), "-o", color=f"C{k}", ms=3, label=f"{name}: measured")
        ax.fill_between(x, m.min(axis=0), m.max(axis=0), color=f"C{k}", alpha=0.25, lw=0)
        ax.loglog(x, bnd[name], "--", color=f"C{k}", label=f"{name}: bound")
        for j, s in enumerate(SEEDS):
            for t_, mv, bv in zip(T_GRID, m[j], bnd[name], strict=True):
                rows.append([name, t_, s, mv, bv, mv / bv, tau])
    ax.axhline(wc.bias, color="C1", lw=0.8, ls=":", label="chi2(u||p) gamma_p^2 (bias term)")
    ax.axhline(wc.gap, color="C1", lw=0.8, ls="-.", label="||grad F(c_p)||^2 (actual gap)")
    ax.set_xlabel("T (server steps)")
    ax.set_ylabel("(1/T) sum_t ||grad||^2")
    ax.set_title(f"exponential arrivals, rates {RATES}, tau = realised max {tau} (C4 fails)",
                 fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, OUT / "arrival_bias_TA.png",
                       ["curve", "T", "seed", "measured", "bound", "ratio", "tau"], rows)


def main() -> list[Path]:
    return [staleness_figure(), arrival_figure()]


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path} and {path.with_suffix('.csv').name}")
