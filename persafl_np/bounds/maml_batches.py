"""Bias of the exact MAML estimator under the simulator's batch law: eq. (MAML-10w).

theory/personalization.md §2: the three batches D, D′, D″ of a MAML step (eq. (MAML-3)) are
consecutive blocks of one permutation per pass (SIM-BATCH, theory/simulator.md §1.1), so within
a pass they are disjoint, not the independent draws (MAML-10) assumes. For a point y that does
not depend on the step's permutations,

    ‖E g − ∇F(y)‖ ≤ α(1 + αL) (min(L s, ραs²/2) + κ₁ min((L + L̂) s, h_b(w′) s + (ρ + ρ̂)αs²/2))
                    + α κ₂ σ_H (αL̂ s + s_b(w′)),      s = s_b(y),

with s_b the finite-population standard deviation of a batch mean (eq. (AS-5)), L̂ the largest
one-row smoothness, ρ (ρ̂) the Hessian-Lipschitz constant of f (of one row), h_b the
finite-population deviation of a batch Hessian, σ_H² the spread of the per-row Hessians at y,
w′ = y − α∇f(y), and κ₁, κ₂ the pass factors of the theory file. :func:`batch_statistics`
computes the data-dependent inputs at one point (a loop over rows: meant for checks on small
problems); :func:`disjoint_bias_bound` evaluates the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.arguments import check_int
from persafl_np.backend import to_numpy

__all__ = ["BatchStatistics", "batch_statistics", "disjoint_bias_bound", "pass_factors"]


@dataclass(frozen=True)
class BatchStatistics:
    """Inputs of (MAML-10w) for one client at one point y (notation of the theory file).

    m rows, batch size b; L = smoothness of f, rho = its Hessian-Lipschitz constant, L_hat = max
    one-row smoothness, rho_hat = max one-row Hessian-Lipschitz constant; s_y = s_b(y),
    s_wp = s_b(w′) with w′ = y − α∇f(y); sigma_H = √((1/m)Σ_j ‖∇²ℓ_j(y) − ∇²f(y)‖_F²);
    h_wp = h_b(w′), the finite-population standard deviation (Frobenius) of a batch Hessian at w′.
    """

    m: int
    b: int
    L: float
    rho: float
    L_hat: float
    rho_hat: float
    s_y: float
    s_wp: float
    sigma_H: float
    h_wp: float


def _finite_population_sd(G: np.ndarray, b: int) -> float:
    """s_b = √((m − b)/(b(m − 1)) · (1/m)Σ_j‖G_j − Ḡ‖²) for per-row values G (m, ...)."""
    m = G.shape[0]
    if b >= m:
        return 0.0
    spread = float(np.mean(np.sum((G - G.mean(axis=0)) ** 2, axis=tuple(range(1, G.ndim)))))
    return math.sqrt((m - b) / (b * (m - 1)) * spread)


def batch_statistics(model: Any, y: Any, X: Any, t: Any, alpha: float,
                     b: int) -> BatchStatistics:
    """The data-dependent inputs of (MAML-10w) at the point ``y`` (client data ``X``, ``t``)."""
    b = check_int(b, "b", 1)
    X = np.asarray(to_numpy(X), dtype=np.float64)
    t = np.asarray(to_numpy(t))
    y = np.asarray(to_numpy(y), dtype=np.float64)
    m = X.shape[0]
    rows = [(X[j:j + 1], t[j:j + 1]) for j in range(m)]
    wp = y - float(alpha) * np.asarray(to_numpy(model.grad(y, X, t)), dtype=np.float64)
    G_y = np.stack([np.asarray(to_numpy(model.grad(y, *r)), dtype=np.float64) for r in rows])
    G_w = np.stack([np.asarray(to_numpy(model.grad(wp, *r)), dtype=np.float64) for r in rows])
    Hs = np.stack([np.asarray(to_numpy(model.hessian(y, *r)), dtype=np.float64) for r in rows])
    H_w = np.stack([np.asarray(to_numpy(model.hessian(wp, *r)), dtype=np.float64) for r in rows])
    sigma_H = math.sqrt(float(np.mean(np.sum((Hs - Hs.mean(axis=0)) ** 2, axis=(1, 2)))))
    return BatchStatistics(
        m=m, b=b, L=float(model.smoothness(X, t)), rho=float(model.hessian_lipschitz(X, t)),
        L_hat=max(float(model.smoothness(*r)) for r in rows),
        rho_hat=max(float(model.hessian_lipschitz(*r)) for r in rows),
        s_y=_finite_population_sd(G_y, b), s_wp=_finite_population_sd(G_w, b), sigma_H=sigma_H,
        h_wp=_finite_population_sd(H_w, b))


def pass_factors(m: int, b: int) -> tuple[float, float]:
    """(κ₁, κ₂) of (MAML-10w): how many of a step's three batches can share a pass of m rows."""
    m, b = check_int(m, "m", 1), check_int(b, "b", 1)
    k1 = b / (m - b) if 2 * b <= m else 0.0
    if 3 * b <= m:
        k2 = math.sqrt(2 * b / ((m - 2 * b) * (m - 1)))
    elif 2 * b <= m:
        k2 = math.sqrt(b / ((m - b) * (m - 1)))
    else:
        k2 = 0.0
    return k1, k2


def disjoint_bias_bound(alpha: float, stats: BatchStatistics) -> float:
    """Right-hand side of (MAML-10w); 0 for a full batch (b ≥ m: the estimator is exact)."""
    a = float(alpha)
    if not (math.isfinite(a) and a >= 0.0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if stats.b >= stats.m:
        return 0.0
    k1, k2 = pass_factors(stats.m, stats.b)
    L, Lh = stats.L, stats.L_hat
    sy = stats.s_y
    cross = min((L + Lh) * sy, stats.h_wp * sy + (stats.rho + stats.rho_hat) * a * sy * sy / 2.0)
    term_a = a * (1.0 + a * L) * (min(L * sy, stats.rho * a * sy * sy / 2.0) + k1 * cross)
    term_b = a * k2 * stats.sigma_H * (a * Lh * stats.s_y + stats.s_wp)
    return term_a + term_b
