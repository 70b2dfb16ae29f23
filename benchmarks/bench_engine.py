"""Engine throughput benchmarks (plain script; prints a table, asserts nothing).

    python benchmarks/bench_engine.py [--quick]

1. server events per second, event-driven and theorem mode, with
   (a) a null oracle (g = 0, no arithmetic: the engine's own cost — heap, clock, staleness,
       model store, server rule, trace recording) and
   (b) a trivial model (least squares, d = 1, one sample per client);
2. per-event cost at n = 100, 10 000, 100 000 clients (all in flight, exponential job times),
   measured as the slope between two run lengths so one-off setup (the n initial dispatches)
   cancels;
4. (``--big``) the issue-9 memory goal: 100 000 clients × 610 parameters (softmax, 61 features,
   10 classes, 20 rows each), all in flight, Pareto(1.5) job times, plain clients, Q = 1,
   batch 10, ``--big-arrivals`` arrivals (default 10⁶): peak RSS and wall time.
3. end to end: PersA-FL with exact-MAML clients (α = 0.01), softmax regression on FedProx
   Synthetic(0.5, 0.5), 100 clients, Q = 5, η = 0.01, β = 1, batch 10, concurrency 10
   (FedBuff-style; with all 100 clients in flight the mean staleness is ≈ 94 and β = 1 is far
   outside the step condition of theory/brief_results.md (D4)), 10 000 arrivals, evaluation every
   2 000 steps
   (included in the wall time), d = 60 features (the FedProx recipe; DataConfig's default for
   fedprox_synthetic). Earlier versions of this script ran with d = 10, where the global
   softmax's minimum is F* ≈ 2.105 (L-BFGS, seed 0; client-mean accuracy 0.25): F ≈ 2.1 there is
   the optimum, not a stall; at d = 60, F* ≈ 0.54 (experiments/README.md, "Investigation").
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import dataclass

import numpy as np

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.personalization.base import OracleStep
from persafl_np.personalization.cohort import ManyStep
from persafl_np.sim import EventDriven, JobTime, Problem, TheoremMode, run


@dataclass(frozen=True)
class NullOracle(Plain):
    """g ≡ 0 without touching the data: isolates the simulator's per-event cost."""

    name: str = "null"

    def step(self, model, w, X, y, rng, batch_size, warm=None):  # noqa: ANN001
        return OracleStep(g=_ZERO, n_grad=1)

    def batches_per_step(self, batch_size):  # noqa: ANN001
        return 0

    def step_many(self, kern, Y, batches, warm=None):  # noqa: ANN001
        return ManyStep(np.zeros_like(Y), 1)


_ZERO = np.zeros(1)


def _problem(n: int, oracle) -> Problem:  # noqa: ANN001
    X = np.ones((1, 1))
    clients = [(X, np.array([float(i % 7)])) for i in range(n)]
    return Problem.build(LeastSquares(), oracle, clients, w0=np.zeros(1))


def _rate(prob: Problem, spec, T: int) -> float:  # noqa: ANN001
    alg = Algorithm(persafl(0.1), Q=1, eta=0.1)
    t0 = time.perf_counter()
    run(prob, alg, spec, T=T, seed=0, eval_every=10**9)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    ap.add_argument("--big", action="store_true", help="only section 4 (10^5 clients)")
    ap.add_argument("--big-arrivals", type=int, default=1_000_000)
    ap.add_argument("--per-event-only", action="store_true", help="only section 2")
    args = ap.parse_args()
    if args.big:
        big(args.big_arrivals)
        return
    T = 20_000 if args.quick else 100_000
    if args.per_event_only:
        per_event(args.quick)
        return
    print("1. server events per second (n = 100)")
    print(f"{'oracle':<10} {'arrivals':<10} {'events/s':>12}")
    for oname, oracle in (("null", NullOracle()), ("lsq d=1", Plain())):
        prob = _problem(100, oracle)
        for aname, spec in (("event", EventDriven(job_time=JobTime("exponential"))),
                            ("theorem", TheoremMode(tau=5))):
            dt = _rate(prob, spec, T)
            print(f"{oname:<10} {aname:<10} {T / dt:>12,.0f}")

    per_event(args.quick)
    _end_to_end(args.quick)


def per_event(quick: bool) -> None:
    """Section 2 of the module docstring."""
    print("\n2. per-event cost vs n (null oracle, event-driven, all clients in flight)")
    print(f"{'n':>8} {'us/event':>10} {'setup s':>8} {'maxrss MB':>10}")
    T1, T2 = (10_000, 30_000) if quick else (50_000, 150_000)
    for n in (100, 10_000, 100_000):
        prob = _problem(n, NullOracle())
        spec = EventDriven(job_time=JobTime("exponential"))
        a, b = _rate(prob, spec, T1), _rate(prob, spec, T2)
        per = (b - a) / (T2 - T1)
        setup = a - per * T1
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{n:>8} {per * 1e6:>10.2f} {setup:>8.2f} {rss:>10.0f}")


def _end_to_end(quick: bool) -> None:
    print("\n3. end to end: PersA-FL-MAML, softmax, Synthetic(0.5,0.5), 100 clients, Q=5")
    from persafl_np.config import SimConfig, simulate

    arrivals = 2_000 if quick else 10_000
    cfg = SimConfig.from_dict({
        "seed": 0, "T": arrivals, "eval_every": arrivals // 5,
        "model": {"name": "softmax"}, "oracle": {"name": "maml", "alpha": 0.01},
        "data": {"name": "fedprox_synthetic", "n_clients": 100, "alpha": 0.5, "beta": 0.5},
        "algorithm": {"name": "persafl", "Q": 5, "eta": 0.01, "batch_size": 10, "beta": 1.0},
        "arrivals": {"mode": "event", "job_time": {"law": "exponential"}, "concurrency": 10},
    })
    t0 = time.perf_counter()
    res = simulate(cfg)
    wall = time.perf_counter() - t0
    h = res.history
    c = res.counters
    print(f"arrivals {c['arrivals']}, wall {wall:.1f} s ({c['arrivals'] / wall:,.0f} arrivals/s), "
          f"gradients {c['n_grad']}, HVPs {c['n_hvp']}")
    print(f"F(w): {h.loss[0]:.4f} -> {h.loss[-1]:.4f}; ||grad F||^2: {h.grad_norm2[0]:.4g} -> "
          f"{h.grad_norm2[-1]:.4g}; acc global {h.acc_global[-1]:.3f}, personalized mean "
          f"{h.acc_pers_mean[-1]:.3f} min {h.acc_pers_min[-1]:.3f}; mean staleness "
          f"{res.trace.staleness.mean():.1f}")


def big(arrivals: int) -> None:
    """Section 4 of the module docstring."""
    from persafl_np.models import SoftmaxRegression

    n, m, d = 100_000, 20, 61
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n * m, d))
    X[:, -1] = 1.0
    y = rng.integers(0, 10, n * m)
    clients = [(X[i * m:(i + 1) * m], y[i * m:(i + 1) * m]) for i in range(n)]
    prob = Problem.build(SoftmaxRegression(10), Plain(), clients, seed=0)
    alg = Algorithm(persafl(0.01), Q=1, eta=0.01, batch_size=10)
    t0 = time.perf_counter()
    res = run(prob, alg, EventDriven(job_time=JobTime("pareto", shape=1.5)), T=arrivals,
              seed=0, eval_every=10**9)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tr = res.trace
    print(f"4. n = {n}, p = {prob.w0.shape[0]}, arrivals {len(tr)}: wall {wall:.0f} s "
          f"(evaluation {res.counters['eval_seconds']:.0f} s), peak RSS {rss:.0f} MB, "
          f"max staleness {int(tr.staleness.max())}, status {res.status}")


if __name__ == "__main__":
    main()
