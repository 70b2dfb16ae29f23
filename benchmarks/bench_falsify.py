"""Falsifier throughput (plain script; prints a table, asserts nothing).

    python benchmarks/bench_falsify.py [--quick]

1. instances per second of the exact moment recursion (TF-2) of ``QuadraticFamily.measure``
   (theory/tightness.md §1), batch sizes 1, 64, 256, T = 200, against
2. the simulator on the same instance (one seed: a deterministic instance needs one run, a
   stochastic one needs hundreds of seeds for a 1 % Monte-Carlo error, the closed form none).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(quick: bool = False) -> None:
    from persafl_np.bounds.check import average_stationarity
    from persafl_np.bounds.families import QuadraticFamily, quadratic_problem
    from persafl_np.sim import run

    T = 50 if quick else 200
    fam = QuadraticFamily(n=(5,), d=(2,), Q=(5,), tau=(4,), T=(T,), period=4)
    U = np.random.default_rng(0).random((256, len(fam.names)))
    insts = [fam.decode(u) for u in U]
    print(f"{'what':<38}{'instances':>10}{'seconds':>10}{'instances/s':>14}")
    for b in (1, 64, 256):
        t0 = time.perf_counter()
        fam.measure(insts[:b])
        dt = time.perf_counter() - t0
        print(f"{'closed form (TF-2), exact expectation':<38}{b:>10}{dt:>10.3f}{b / dt:>14.1f}")
    prob, alg, arr = quadratic_problem(insts[0])
    t0 = time.perf_counter()
    average_stationarity(run(prob, alg, arr, T=T, seed=0, eval_every=1).history, T)
    dt = time.perf_counter() - t0
    print(f"{'simulator, one seed (one sample)':<38}{1:>10}{dt:>10.3f}{1 / dt:>14.1f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    main(p.parse_args().quick)
