"""Cost of the personalization oracles relative to one plain (AL) stochastic gradient.

Run: ``python benchmarks/bench_personalization.py [--batch 32] [--m 2000] [--d 50] [--repeat 200]``.
Prints two tables (medians of ``--repeat`` timed calls, after a warm-up):

1. per model: time of one exact-MAML / Hessian-free / first-order stochastic step divided by
   one Plain stochastic step (goal for exact MAML: ≤ 4×, i.e. two gradients + one HVP);
2. Moreau envelope: time of one mini-batch step with K fixed inner GD steps divided by Plain.
3. absolute µs per client step at FL batch sizes b = 10, 20, 32 on the workload's softmax
   (d = 61, 10 classes): bare NumPy (the reference's hand-written gradient + update), one
   single-client ``oracle.step``, and the cohort path (``local_update_many``, C jobs,
   Q = 10 steps, time / (C·Q)) for Plain, exact MAML and Moreau (K = 5, fixed L), at
   C = 13 (the event-mode cohort of the workload: ~13 pending jobs per computation when all
   100 clients are in flight) and C = 100 (a synchronous round).

Measured, never asserted (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from persafl_np.models import (
    MLP,
    LeastSquares,
    LogisticRegression,
    RobustRegression,
    SoftmaxRegression,
)
from persafl_np.personalization import MAML, MoreauEnvelope, Plain


def _median_time(fn, repeat: int) -> float:
    for _ in range(max(3, repeat // 20)):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def _problems(m: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d)) / np.sqrt(d)
    y_reg = X @ rng.normal(size=d) + 0.1 * rng.normal(size=m)
    y_bin = (rng.random(m) < 0.5).astype(np.int64)
    y_10 = rng.integers(0, 10, size=m)
    return [
        ("least_squares", LeastSquares(l2=1e-3), y_reg),
        ("logistic", LogisticRegression(l2=1e-3), y_bin),
        ("softmax(C=10)", SoftmaxRegression(n_classes=10, l2=1e-3), y_10),
        ("robust", RobustRegression(), y_reg),
        ("mlp(h=32,C=10)", MLP(n_hidden=32, n_classes=10), y_10),
    ], X, rng


def _step_time(oracle, model, w, X, y, batch: int, repeat: int) -> float:
    r = np.random.default_rng(1)
    return _median_time(lambda: oracle.step(model, w, X, y, r, batch), repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--m", type=int, default=2000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--absolute-only", action="store_true", help="only table 3")
    a = ap.parse_args()
    if a.absolute_only:
        absolute(a.repeat)
        return
    problems, X, rng = _problems(a.m, a.d)
    print(f"m={a.m} d={a.d} batch={a.batch} repeat={a.repeat}  (ratios to one Plain step)")
    print(f"{'model':16s} {'p':>6s} {'plain us':>9s} {'exact':>7s} {'HF':>7s} {'FO':>7s}")
    ws = {}
    for name, model, y in problems:
        w = ws[name] = model.init_params(rng, a.d)
        L = model.smoothness(X, y)
        alpha = 0.5 / L if np.isfinite(L) else 0.01
        base = _step_time(Plain(), model, w, X, y, a.batch, a.repeat)
        ex, hf, fo = (
            _step_time(MAML(alpha, h), model, w, X, y, a.batch, a.repeat) / base
            for h in ("exact", "hessian_free", "first_order")
        )
        print(f"{name:16s} {w.shape[0]:6d} {base * 1e6:9.1f} {ex:7.2f} {hf:7.2f} {fo:7.2f}")

    print("\nMoreau envelope: one mini-batch step with K fixed inner GD steps, ratio to Plain;")
    print("last column: K=10 with L = model.smoothness(batch) computed per call (no smoothness=)")
    Ks = (1, 5, 10, 20, 50)
    print(f"{'model':16s} " + " ".join(f"{'K=' + str(k):>7s}" for k in Ks) + f" {'K=10,L?':>8s}")
    for name, model, y in problems:
        w = ws[name]
        L_model = model.smoothness(X, y)
        L = L_model if np.isfinite(L_model) else 10.0  # MLP: no global L; a guess for timing
        base = _step_time(Plain(), model, w, X, y, a.batch, a.repeat)
        row = [
            _step_time(MoreauEnvelope(3 * L, inner_steps=K, smoothness=L), model, w, X, y,
                       a.batch, a.repeat // 4) / base
            for K in Ks
        ]
        uncached = float("nan")
        if np.isfinite(L_model):
            # λ = 30L: a mini-batch's L can exceed the full-data L (robust: ~3x here), and
            # a non-convex model rejects λ ≤ L_batch.
            o = MoreauEnvelope(30 * L, inner_steps=10)
            uncached = _step_time(o, model, w, X, y, a.batch, a.repeat // 4) / base
        print(f"{name:16s} " + " ".join(f"{v:7.1f}" for v in row) + f" {uncached:8.1f}")
    absolute(a.repeat)


def absolute(repeat: int) -> None:
    """Section 3 of the module docstring."""
    from persafl_np.personalization.cohort import CohortData, Kernels

    rng = np.random.default_rng(0)
    n, m, d, K = 100, 200, 61, 10
    Xs = [rng.normal(size=(m, d)) for _ in range(n)]
    ys = [rng.integers(0, K, m) for _ in range(n)]
    M = SoftmaxRegression(K)
    data, kern = CohortData(Xs, ys), Kernels(M)
    w = M.init_params(rng, d)
    print("\nabsolute us per client step, softmax d=61 C=10 (cohort: C jobs x Q=10)")
    print(f"{'b':>3s} {'C':>4s} {'bare numpy':>11s} {'Plain.step':>11s} {'cohort plain':>13s} "
          f"{'cohort MAML':>12s} {'cohort ME K=5':>14s}")
    for b in (10, 20, 32):
        for jobs in (13, 100):
            _absolute_row(b, jobs, Xs, ys, M, data, kern, w, rng, repeat)


def _absolute_row(b, n, Xs, ys, M, data, kern, w, rng, repeat) -> None:  # noqa: ANN001
    from persafl_np.personalization.cohort import local_update_many
    from persafl_np.personalization.sampling import BatchSampler

    (m, d), K = Xs[0].shape, M.n_classes
    X, y = Xs[0], ys[0]
    W = w.reshape(d, K).copy()
    idx = rng.permutation(m)[:b]

    def bare():
        Z = X[idx] @ W
        Z -= Z.max(axis=1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(b), y[idx]] -= 1.0
        W[...] -= 0.01 * (X[idx].T @ P) / b

    t_bare = _median_time(bare, repeat)
    r = np.random.default_rng(1)
    t_one = _median_time(lambda: Plain().step(M, w, X, y, r, b), repeat)
    U = np.repeat(w[None, :], n, axis=0)
    cl = np.arange(n)
    row = []
    for o in (Plain(), MAML(0.01), MoreauEnvelope(15.0, inner_steps=5, smoothness=20.0)):
        samplers = [BatchSampler(np.random.default_rng(i)) for i in range(n)]

        def job(o=o, s=samplers):
            local_update_many(o, kern, data, cl, U, s, 10, 0.01, b, 0.0, None)

        row.append(_median_time(job, max(3, repeat // 20)) / (n * 10))
    print(f"{b:3d} {n:4d} {t_bare * 1e6:11.1f} {t_one * 1e6:11.1f} {row[0] * 1e6:13.1f} "
          f"{row[1] * 1e6:12.1f} {row[2] * 1e6:14.1f}")


if __name__ == "__main__":
    main()
