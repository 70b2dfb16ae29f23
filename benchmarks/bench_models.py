"""Time per grad and per hvp of every model at federated batch sizes and at large sizes.

Run: ``PYTHONPATH=. python benchmarks/bench_models.py`` (about two minutes on 2 cores; the
header prints which ``persafl_np`` was imported). Prints two Markdown tables.

**Federated sizes** (issue 9): mini-batches b = 10, 20, 32 of d = 61 features (60 + bias, the
FedProx Synthetic workload; softmax and the MLP with 10 classes). Every row reports absolute
µs per call of

* ``bare``: a hand-written, allocation-frugal NumPy gradient of the same model (for softmax:
  ``Z = X @ W``, shifted exp, normalize, subtract the one-hot by indexing, ``X.T @ P / b``),
  the code a user would write in a per-client loop, and ``X.T(XW)``, the two matrix products
  alone (the floor of any gradient of that width);
* ``grad`` / ``hvp``: the model's single-client methods (validated: shapes and labels);
* ``grad_many`` / ``hvp_many``: the batched methods over a cohort of C = 100 clients with
  ``validate=False`` (the engine's hot path), in µs **per client**;

and the ratios ``grad / bare`` (goal: ≤ 2 for one softmax gradient at 20 × 61) and
``grad_many / bare`` (per client, < 1 means the cohort beats a loop of bare calls).

**Large sizes** (issue 2): m = 1000 × d = 100 and 10000 × 1000; HVP/grad ≤ 3 and grad vs a
plain ``X.T @ (X @ w)`` of the same width (``--skip-large`` leaves this table out).

At small sizes the cost of fresh ~0.25–0.5 MB temporaries is dominated by glibc serving
each with mmap + page faults (measured: MLP grad at m=1000, d=100 drops from ≈0.84 ms to
≈0.50 ms, and a batched softmax gradient over 100 clients by ≈2×, when run with
``MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=67108864``); that is an allocator
setting of the machine, not of the algorithm, so the default run leaves it alone.

Timings are the minimum over repeated calls after one warm-up call (the minimum, as in
``timeit``, is the estimate least disturbed by other processes on a shared machine), with one
BLAS thread by default; all ratios come from the same run. They are measurements, never
asserted on.
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

import persafl_np  # noqa: E402
from persafl_np.models import (  # noqa: E402
    MLP,
    LeastSquares,
    LogisticRegression,
    RobustRegression,
    SoftmaxRegression,
)

#: Clients per cohort in the batched timings.
COHORT = 100


def min_time(fn: Callable[[], object], budget: float, min_reps: int = 5) -> float:
    """Minimum wall time of ``fn`` over at least ``min_reps`` calls or ``budget`` seconds."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2000:
            break
    return min(times)


# ------------------------------------------------------------------ bare NumPy gradients
def _bare_softmax_probs(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    Z -= Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    Z /= Z.sum(axis=1, keepdims=True)
    Z[np.arange(Z.shape[0]), y] -= 1.0
    return Z


def bare_grad(model: object, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The per-client gradient a user would hand-write in NumPy (same math as the model)."""
    b, d = X.shape
    l2 = model.l2
    if isinstance(model, LeastSquares):
        return X.T @ (X @ w - y) / b + l2 * w
    if isinstance(model, RobustRegression):
        r = X @ w - y
        q = 1.0 + r * r
        return X.T @ (2.0 * r / (q * q)) / b + l2 * w
    if isinstance(model, LogisticRegression):
        q = 1.0 + w * w
        reg = model.nonconvex * 2.0 * w / (q * q)
        return X.T @ (1.0 / (1.0 + np.exp(-(X @ w))) - y) / b + l2 * w + reg
    if isinstance(model, SoftmaxRegression):
        K = model.n_classes
        P = _bare_softmax_probs(X @ w.reshape(d, K), y)
        return (X.T @ P).ravel() / b + l2 * w
    if isinstance(model, MLP):
        h, K = model.n_hidden, model.n_classes
        o1, o2, o3 = d * h, d * h + h, d * h + h + h * K
        W1, b1, W2, b2 = w[:o1].reshape(d, h), w[o1:o2], w[o2:o3].reshape(h, K), w[o3:]
        A = X @ W1 + b1
        if model.activation == "tanh":
            S = np.tanh(A)
            dS = 1.0 - S * S
        else:
            S = np.logaddexp(0.0, A)
            dS = 1.0 / (1.0 + np.exp(-A))
        D = _bare_softmax_probs(S @ W2 + b2, y) / b
        dA = (D @ W2.T) * dS
        g = np.concatenate([(X.T @ dA).ravel(), dA.sum(0), (S.T @ D).ravel(), D.sum(0)])
        return g + l2 * w
    raise TypeError(type(model).__name__)


def cases(rng: np.random.Generator, m: int, d: int, lead: tuple[int, ...] = ()):
    X = rng.normal(size=lead + (m, d)) / np.sqrt(d)
    y_reg = rng.normal(size=lead + (m,))
    y_bin = rng.integers(0, 2, lead + (m,))
    y_10 = rng.integers(0, 10, lead + (m,))
    return [
        ("LeastSquares", LeastSquares(0.01), X, y_reg, 1),
        ("LogisticRegression(nonconvex)", LogisticRegression(0.01, 0.1), X, y_bin, 1),
        ("SoftmaxRegression(C=10)", SoftmaxRegression(10, 0.01), X, y_10, 10),
        ("RobustRegression", RobustRegression(0.01), X, y_reg, 1),
        ("MLP(h=32,C=10,tanh)", MLP(32, 10, "tanh", 0.01), X, y_10, 32),
        ("MLP(h=32,C=10,softplus)", MLP(32, 10, "softplus", 0.01), X, y_10, 32),
    ]


def federated_table(rng: np.random.Generator, budget: float) -> None:
    print(f"Federated sizes: d = 61, cohort of C = {COHORT} clients; µs per call "
          "(batched: per client)")
    print()
    print("| model | b | p | bare | X.T(XW) | grad | grad/bare | hvp | grad_many | hvp_many "
          "| grad_many/bare |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    d = 61
    for b in (10, 20, 32):
        single = cases(rng, b, d)
        many = cases(rng, b, d, (COHORT,))
        for (name, model, X, y, width), (_, _, XC, yC, _) in zip(single, many, strict=True):
            w = model.init_params(rng, d)
            v = rng.normal(size=w.size)
            W = np.stack([model.init_params(rng, d) for _ in range(COHORT)])
            V = rng.normal(size=W.shape)
            Wk = rng.normal(size=(d, width))
            ref = bare_grad(model, w, X, y)
            err = float(np.max(np.abs(ref - model.grad(w, X, y))) / np.max(np.abs(ref)))
            if not err < 1e-12:
                raise AssertionError(f"{name}: bare gradient disagrees with the model ({err})")
            t_bare = min_time(lambda: bare_grad(model, w, X, y), budget)  # noqa: B023
            t_mat = min_time(lambda: X.T @ (X @ Wk), budget)  # noqa: B023
            t_grad = min_time(lambda: model.grad(w, X, y), budget)  # noqa: B023
            t_hvp = min_time(lambda: model.hvp(w, v, X, y), budget)  # noqa: B023
            t_gm = min_time(lambda: model.grad_many(W, XC, yC, validate=False),  # noqa: B023
                            budget) / COHORT
            t_hm = min_time(lambda: model.hvp_many(W, V, XC, yC, validate=False),  # noqa: B023
                            budget) / COHORT
            print(f"| {name} | {b} | {w.size} | {1e6 * t_bare:.1f} | {1e6 * t_mat:.1f} "
                  f"| {1e6 * t_grad:.1f} | {t_grad / t_bare:.2f} | {1e6 * t_hvp:.1f} "
                  f"| {1e6 * t_gm:.1f} | {1e6 * t_hm:.1f} | {t_gm / t_bare:.2f} |", flush=True)
    print()


def large_table(rng: np.random.Generator, budget: float) -> None:
    print("Large sizes: ms per call")
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
            t_grad = min_time(lambda: model.grad(w, X, y), budget)  # noqa: B023
            t_hvp = min_time(lambda: model.hvp(w, v, X, y), budget)  # noqa: B023
            t_base = min_time(lambda: X.T @ (X @ wv), budget)  # noqa: B023
            t_wide = (min_time(lambda: X.T @ (X @ Wk), budget)  # noqa: B023
                      if width > 1 else t_base)
            print(f"| {name} | {m} | {d} | {w.size} | {1e3 * t_grad:.3f} | {1e3 * t_hvp:.3f} "
                  f"| {t_hvp / t_grad:.2f} | {t_grad / t_base:.2f} | {t_grad / t_wide:.2f} |",
                  flush=True)
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per timed quantity")
    ap.add_argument("--threads", default="1", help="BLAS threads (read before NumPy loads)")
    ap.add_argument("--skip-large", action="store_true", help="only the federated-size table")
    args = ap.parse_args()
    if not args.budget > 0:
        raise ValueError(f"--budget must be > 0, got {args.budget}")
    rng = np.random.default_rng(0)
    print(f"persafl_np from {os.path.dirname(persafl_np.__file__)}; numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS')}")
    print()
    federated_table(rng, args.budget)
    if not args.skip_large:
        large_table(rng, args.budget)


if __name__ == "__main__":
    main()
