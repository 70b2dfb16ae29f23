"""The issue-9 scale goal: 10⁵ clients × 610 parameters, all in flight, 10⁶ arrivals, heavy-tailed
job times — peak RSS < 2 GB, wall < 10 min on 2 cores (plain script; prints, asserts nothing).

    /usr/bin/time -v python benchmarks/bench_scale.py [--clients N] [--arrivals A]

Workload: softmax regression, 60 features + bias, 10 classes (p = 610), 20 training rows per
client drawn as one (N·20, 61) float64 array that the clients are slices of (the engine then
uses it in place: data.federated.packed_rows), Pareto(1.5) job times (infinite variance), every
client always in flight (event mode, restart on return), plain clients, Q = 1, batch 10,
PersA-FL β = 0.01, evaluation only at t = 0 and t = T. Prints the wall time, the peak RSS of
the process (``ru_maxrss``, also the figure ``/usr/bin/time -v`` reports) and
:func:`persafl_np.memory.estimate_parts` for the same sizes.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.memory import estimate_parts
from persafl_np.models import SoftmaxRegression
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, run


def _vm_hwm() -> float:
    """Peak RSS of this process image (VmHWM; ru_maxrss also counts a forking parent's)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100_000)
    ap.add_argument("--arrivals", type=int, default=1_000_000)
    ap.add_argument("--rows", type=int, default=20)
    args = ap.parse_args()
    n, m, d = args.clients, args.rows, 61
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n * m, d))
    X[:, -1] = 1.0
    y = rng.integers(0, 10, n * m)
    clients = [(X[i * m:(i + 1) * m], y[i * m:(i + 1) * m]) for i in range(n)]
    prob = Problem.build(SoftmaxRegression(10), Plain(), clients, seed=0)
    t_build = time.perf_counter() - t0
    alg = Algorithm(persafl(0.01), Q=1, eta=0.01, batch_size=10)
    t0 = time.perf_counter()
    res = run(prob, alg, EventDriven(job_time=JobTime("pareto", shape=1.5)), T=args.arrivals,
              seed=0, eval_every=10**9)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    hwm = _vm_hwm()
    p = int(prob.w0.shape[0])
    est = estimate_parts(n_clients=n, rows=n * m, test_rows=0, d=d, p=p, in_flight=n,
                         versions=2, arrivals=args.arrivals, batch_size=10, cohort_size=128)
    tr = res.trace
    print(f"n = {n}, p = {p}, arrivals {len(tr)}, status {res.status}: data built in "
          f"{t_build:.1f} s; run wall {wall:.1f} s ({len(tr) / wall:,.0f} arrivals/s; "
          f"evaluation {res.counters['eval_seconds']:.1f} s), peak RSS {rss / 1e9:.2f} GB "
          f"(VmHWM {hwm / 1e9:.2f} GB), "
          f"max staleness {int(tr.staleness.max())}")
    print("estimate (GB): " + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in est.items()))


if __name__ == "__main__":
    main()
