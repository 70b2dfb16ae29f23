"""Precompute and draw figures/bound_tightness.{png,csv} (theory/tightness.md §3).

``python figures/make_tightness_figure.py`` (needs the extra ``pep``; ≈ 15–25 min on 2 shared
cores) solves, for each setting of the grid below, the performance-estimation problem of
:func:`persafl_np.bounds.pep_worst_case` — steps at the (T2) caps, σ = 0, Δ = 1, L = 1, γ² = 1
for n = 2 — over every delay pattern when there are at most ``MAX_PATTERNS`` of them, else over
three candidates — the max-delay pattern, the all-fresh one and the falsifier's best — (column
``patterns``); the falsifier runs first on the same setting (quadratics, n = 1: measured / Δ_F,
the full delay pattern searched). Then it writes the CSV and
the figure. ``--from-csv`` only redraws the figure from the committed CSV (seconds; what
``persafl figures`` does); ``--cache FILE`` keeps finished rows across interrupted runs.
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


def falsifier_best(Q: int, tau: int, T: int, budget: int = 96) -> tuple[float, tuple[int, ...]]:
    """The falsifier's best measured / Δ_F on the setting, and its delay pattern."""
    from persafl_np.bounds.falsify import falsify
    from persafl_np.bounds.families import QuadraticFamily

    fam = QuadraticFamily(n=(1,), d=(1, 2), Q=(Q,), tau=(tau,), T=(T,), period=T, noise=False,
                          heterogeneity=False, fixed_steps=True)
    res = falsify(DeltaNormalizer(), fam, budget=budget, seed=0, starts=2, batch=64)
    pat = tuple(min(int(row[0]), t) for t, row in enumerate(res.instance["pattern"]))
    return res.worst_ratio, pat


def compute(cache: Path | None = None) -> list[dict]:
    """Every row of the grid; with ``cache`` (a JSON file) finished rows are kept across runs."""
    import json

    from persafl_np.atomic import atomic_write_text
    from persafl_np.bounds.pep import pep_worst_case

    done = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    rows = []
    for n, Q, tau, T in GRID:
        key = f"{n},{Q},{tau},{T}"
        if key in done:
            rows.append(done[key])
            continue
        t0 = time.perf_counter()
        npat = math.prod(min(t, tau) + 1 for t in range(T))
        fz, fpat = falsifier_best(Q, tau, T) if n == 1 else (math.nan, None)
        if npat <= MAX_PATTERNS and n == 1:
            pats, cand = "all", "all"
        else:  # candidates: always the largest delay, always fresh, the falsifier's pattern
            cand = sorted({tuple(min(t, tau) for t in range(T)), (0,) * T}
                          | ({fpat} if fpat else set()))
            pats = "candidates"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = pep_worst_case(T, tau, Q=Q, n=n, gamma2=1.0 if n > 1 else 0.0, patterns=cand)
        row = {"n": n, "Q": Q, "tau": tau, "T": T, "exact": res.worst,
               "bound_d4": res.bound_d4, "bound_sharp": res.bound_sharp, "falsifier": fz,
               "patterns": pats, "n_patterns": len(res.values),
               "worst_pattern": "-".join(map(str, res.pattern)),
               "max_is_worst": res.max_delay_is_worst,
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(row, flush=True)
        if cache is not None:
            done[key] = row
            atomic_write_text(cache, json.dumps(done))
    return rows


def main(from_csv: bool = False, cache: Path | None = None) -> Path:
    from persafl_np.plots.tightness import TITLE, plot_bound_tightness, replot_bound_tightness

    if from_csv:
        return replot_bound_tightness(OUT)[0]
    png = OUT / "bound_tightness.png"
    plot_bound_tightness(compute(cache), png, title=TITLE)
    return png


if __name__ == "__main__":
    sys.path.insert(0, str(OUT.parent))  # this checkout's package, not an installed copy
    args = sys.argv[1:]
    print(main(from_csv="--from-csv" in args,
               cache=Path(args[args.index("--cache") + 1]) if "--cache" in args else None))
