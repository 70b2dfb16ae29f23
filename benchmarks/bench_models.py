"""Time per grad and per hvp of every model; HVP/grad ratio and grad vs a plain X.T @ (X @ w).

Run: ``python benchmarks/bench_models.py`` (about a minute on 2 cores). Prints a Markdown
table. Goals (issue 2): HVP/grad ≤ 3 for every model; grad within 2× of the baseline
``X.T @ (X @ w)`` of the same (m, d). For softmax and the MLP the gradient necessarily does
C (resp. h) times the work of a matrix-vector product, so the table also reports the ratio
to the *same-shaped* linear map ``X.T @ (X @ W)`` with W of shape (d, C) (softmax) or
(d, h) (MLP layer 1), which is the fair floor for those models.

At small sizes the MLP's cost is dominated by glibc serving each fresh ~256 KB temporary
with mmap + page faults (measured: MLP grad at m=1000, d=100 drops from ≈0.84 ms to ≈0.50 ms
when run with ``MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=67108864``); that is
an allocator setting of the machine, not of the algorithm, so the default run leaves it alone.

Timings are the minimum over repeated calls after one warm-up call (the minimum, as in
``timeit``, is the estimate least disturbed by other processes on a shared machine); they are
measurements, never asserted on.
"""

from __future__ import annotations

import os
import sys

# BLAS threads must be fixed before NumPy is imported. One thread by default: the machine
# is shared, and multi-threaded BLAS under contention makes small timings swing by 4×.
_THREADS = "1"
for _i, _a in enumerate(sys.argv):
    if _a.startswith("--threads"):
        _THREADS = _a.split("=", 1)[1] if "=" in _a else sys.argv[_i + 1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _THREADS)

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from persafl_np.models import (  # noqa: E402
    MLP,
    LeastSquares,
    LogisticRegression,
    RobustRegression,
    SoftmaxRegression,
)


def min_time(fn: Callable[[], object], budget: float, min_reps: int = 5) -> float:
    """Minimum wall time of ``fn`` over at least ``min_reps`` calls or ``budget`` seconds."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return min(times)


def cases(rng: np.random.Generator, m: int, d: int):
    X = rng.normal(size=(m, d)) / np.sqrt(d)
    y_reg = rng.normal(size=m)
    y_bin = rng.integers(0, 2, m)
    y_10 = rng.integers(0, 10, m)
    return [
        ("LeastSquares", LeastSquares(0.01), X, y_reg, 1),
        ("LogisticRegression(nonconvex)", LogisticRegression(0.01, 0.1), X, y_bin, 1),
        ("SoftmaxRegression(C=10)", SoftmaxRegression(10, 0.01), X, y_10, 10),
        ("RobustRegression", RobustRegression(0.01), X, y_reg, 1),
        ("MLP(h=32,C=10,tanh)", MLP(32, 10, "tanh", 0.01), X, y_10, 32),
        ("MLP(h=32,C=10,softplus)", MLP(32, 10, "softplus", 0.01), X, y_10, 32),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.4, help="seconds per timed quantity")
    ap.add_argument("--threads", default="1", help="BLAS threads (read before NumPy loads)")
    args = ap.parse_args()
    if not args.budget > 0:
        raise ValueError(f"--budget must be > 0, got {args.budget}")
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS')}")
    print()
    print("| model | m | d | p | grad ms | hvp ms | hvp/grad | grad / X.T(Xw) "
          "| grad / X.T(XW) same width |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, d in ((1000, 100), (10000, 1000)):
        for name, model, X, y, width in cases(rng, m, d):
            w = model.init_params(rng, d)
            v = rng.normal(size=w.size)
            wv = rng.normal(size=d)
            Wk = rng.normal(size=(d, width))
            t_grad = min_time(lambda: model.grad(w, X, y), args.budget)  # noqa: B023
            t_hvp = min_time(lambda: model.hvp(w, v, X, y), args.budget)  # noqa: B023
            t_base = min_time(lambda: X.T @ (X @ wv), args.budget)  # noqa: B023
            t_wide = (min_time(lambda: X.T @ (X @ Wk), args.budget)  # noqa: B023
                      if width > 1 else t_base)
            print(f"| {name} | {m} | {d} | {w.size} | {1e3 * t_grad:.3f} | {1e3 * t_hvp:.3f} "
                  f"| {t_hvp / t_grad:.2f} | {t_grad / t_base:.2f} | {t_grad / t_wide:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
