"""Full-batch training on unequal clients: each client padded to its own width vs to the largest.

    python benchmarks/bench_full_batch.py [--clients 20] [--arrivals 200]

FedProx Synthetic(0.5, 0.5) (lognormal client sizes: m_max ≈ 40 × the mean), softmax
regression, PersA-FL with plain full-batch clients (batch_size = None, Q = 2), event-driven,
all clients in flight. The engine pads client i's full batch to eval_width(m)_i (m_i rounded up
to a power of two; theory/simulator.md §3.1); the comparison row forces the earlier layout
(every client padded to the run's largest m) in the same process, interleaved, CPU time, best
of 3. Both give the same trajectory to rounding (the relative difference of the final models
is printed). A plain script: prints a table, asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.data import fedprox_synthetic
from persafl_np.models import SoftmaxRegression
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, engine, run
from persafl_np.sim.evaluation import eval_width


def _problem(n: int) -> Problem:
    ds = fedprox_synthetic(0.5, 0.5, n_clients=n, seed=0)
    clients = [(c.X_train, c.y_train, c.X_test, c.y_test) for c in ds.clients]
    return Problem.build(SoftmaxRegression(10), Plain(), clients, seed=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--arrivals", type=int, default=200)
    a = ap.parse_args()
    prob = _problem(a.clients)
    m = np.asarray([c[0].shape[0] for c in prob.clients])
    alg = Algorithm(persafl(0.5), Q=2, eta=0.01)
    spec = EventDriven(job_time=JobTime("exponential"))
    own = eval_width(m)
    print(f"{a.clients} clients, m = {m.min()}..{m.max()} (mean {m.mean():.0f}); padded rows per "
          f"round of jobs: own width {own.sum() / m.sum():.2f}x the real rows, largest "
          f"{m.max() * m.size / m.sum():.2f}x")

    def largest(sizes: np.ndarray) -> np.ndarray:  # the earlier layout
        return np.full(np.asarray(sizes).shape, int(np.max(sizes)), dtype=np.int64)

    times: dict[str, list[float]] = {"own width": [], "largest m": []}
    out: dict[str, np.ndarray] = {}
    for _ in range(3):
        for name in times:
            engine.eval_width = eval_width if name == "own width" else largest
            t0 = time.process_time()
            res = run(prob, alg, spec, T=a.arrivals, seed=0, eval_every=10**9)
            times[name].append(time.process_time() - t0)
            out[name] = res.params
    engine.eval_width = eval_width
    t_own, t_big = min(times["own width"]), min(times["largest m"])
    rel = float(np.linalg.norm(out["own width"] - out["largest m"])
                / np.linalg.norm(out["largest m"]))
    print(f"{'layout':<12} {'CPU s':>8} {'arrivals/s':>11}")
    for name, t in (("own width", t_own), ("largest m", t_big)):
        print(f"{name:<12} {t:>8.3f} {a.arrivals / t:>11,.0f}")
    print(f"speed-up {t_big / t_own:.2f}x; final models differ by {rel:.1e} (relative)")


if __name__ == "__main__":
    main()
