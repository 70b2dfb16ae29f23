"""Cost of the personalization oracles relative to one plain (AL) stochastic gradient.

Run: ``python benchmarks/bench_personalization.py [--batch 32] [--m 2000] [--d 50] [--repeat 200]``.
Prints two tables (medians of ``--repeat`` timed calls, after a warm-up):

1. per model: time of one exact-MAML / Hessian-free / first-order stochastic step divided by
   one Plain stochastic step (goal for exact MAML: ≤ 4×, i.e. two gradients + one HVP);
2. Moreau envelope: time of one mini-batch step with K fixed inner GD steps divided by Plain.

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
    a = ap.parse_args()
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


if __name__ == "__main__":
    main()
