"""Precompute and draw figures/bound_tightness.{png,csv} (theory/tightness.md §3).

``python figures/make_tightness_figure.py`` (needs the extra ``pep``; ≈ 15–25 min on 2 shared
cores) solves, for each setting of the grid below, the performance-estimation problem of
:func:`persafl_np.bounds.pep_worst_case` — steps at the (T2) caps, σ = 0, Δ = 1, L = 1, γ² = 1
for n = 2 — over every delay pattern when there are at most ``MAX_PATTERNS`` of them, else over
the max-delay pattern only (column ``patterns``), and runs the falsifier on the same setting
(quadratics, n = 1: measured / Δ_F, the full delay pattern searched). Then it writes the CSV and
the figure. ``--from-csv`` only redraws the figure from the committed CSV (seconds; what
``persafl figures`` does).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parent
MAX_PATTERNS = 64
# (n, Q, tau, T): n = 1 for τ ≤ 4, T ≤ 20, Q ∈ {1, 2, 5} (Q = 5 up to T = 10: one SDP takes
# minutes beyond); n = 2 holds the whole tree of 2^T client sequences, so T ≤ 4 there.
GRID = ([(1, Q, tau, T) for Q in (1, 2) for tau in (0, 1, 2, 4) for T in (2, 5, 10, 20)]
        + [(1, 5, tau, T) for tau in (0, 1, 2, 4) for T in (2, 5, 10)]
        + [(2, 1, tau, T) for tau in (0, 1) for T in (2, 3, 4)])


class DeltaNormalizer:
    """A 'bound' equal to Δ_F: the falsifier's ratio is then measured / Δ_F, comparable with
    the PEP value at Δ = 1."""

    name = "Delta_F"

    def __call__(self, c) -> float:
        return c.delta_f


def falsifier_best(Q: int, tau: int, T: int, budget: int = 96) -> float:
    from persafl_np.bounds.falsify import falsify
    from persafl_np.bounds.families import QuadraticFamily

    fam = QuadraticFamily(n=(1,), d=(1, 2), Q=(Q,), tau=(tau,), T=(T,), period=T, noise=False,
                          heterogeneity=False, fixed_steps=True)
    return falsify(DeltaNormalizer(), fam, budget=budget, seed=0, starts=2, batch=64).worst_ratio


def compute() -> list[dict]:
    from persafl_np.bounds.pep import delay_patterns, pep_worst_case

    rows = []
    for n, Q, tau, T in GRID:
        t0 = time.perf_counter()
        npat = math.prod(min(t, tau) + 1 for t in range(T))
        pats = "all" if npat <= MAX_PATTERNS and n == 1 else "max"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = pep_worst_case(T, tau, Q=Q, n=n, gamma2=1.0 if n > 1 else 0.0, patterns=pats)
        fz = falsifier_best(Q, tau, T) if n == 1 else math.nan
        row = {"n": n, "Q": Q, "tau": tau, "T": T, "exact": res.worst,
               "bound_d4": res.bound_d4, "bound_sharp": res.bound_sharp, "falsifier": fz,
               "patterns": pats, "n_patterns": len(res.values) if pats == "all" else 1,
               "worst_pattern": "-".join(map(str, res.pattern)),
               "max_is_worst": res.max_delay_is_worst if pats == "all" else math.nan,
               "seconds": round(time.perf_counter() - t0, 1)}
        assert delay_patterns(T, tau)  # the grid is valid
        rows.append(row)
        print(row, flush=True)
    return rows


def read_csv(path: Path) -> list[dict]:
    import csv

    num = {"n", "Q", "tau", "T", "n_patterns"}
    out = []
    with path.open() as fh:
        for r in csv.DictReader(fh):
            d = {}
            for k, v in r.items():
                if k in num:
                    d[k] = int(v)
                elif k in ("patterns", "worst_pattern"):
                    d[k] = v
                else:
                    d[k] = float(v)
            out.append(d)
    return out


def main(from_csv: bool = False) -> Path:
    from persafl_np.plots.tightness import plot_bound_tightness

    csv_path = OUT / "bound_tightness.csv"
    rows = read_csv(csv_path) if from_csv else compute()
    png = OUT / "bound_tightness.png"
    plot_bound_tightness(rows, png, title="(T1) against the exact worst case (PEP), steps at "
                                          "the (T2) caps, sigma = 0")
    return png


if __name__ == "__main__":
    sys.path.insert(0, str(OUT.parent))  # this checkout's package, not an installed copy
    print(main(from_csv="--from-csv" in sys.argv[1:]))
