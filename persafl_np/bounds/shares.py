"""Arrival shares p, the chi-square bias factor χ²(u‖p) and the p-weighted constants of (TA).

Implements theory/arrival_bias.md:

* :func:`shares_from_rates` — eq. (TA-0): i.i.d. Exp(r_i) job times, every client in flight,
  zero latency, restart rule ⇒ P(i_t = i | F_t) = r_i / Σ_j r_j;
* :func:`shares_from_counts` — a run's measured shares (applied updates per client / all);
* :func:`chi2_uniform` — χ²(u‖p) = Σ_i (1/n − p_i)² / p_i, the factor of eq. (TA-3);
* :func:`weighted_ls_constants` — exact L, F_p*, Δ_{F_p}, γ_p² of F_p = Σ_i p_i F_i on the
  shared-design least-squares family (eq. (TA-6)), and χ²(u‖p)·γ_p².

All inputs are host-side; p is returned as a float64 NumPy vector that sums to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.backend import to_numpy
from persafl_np.bounds.constants import personalized_hessian

__all__ = [
    "WeightedConstants",
    "check_shares",
    "chi2_uniform",
    "shares_from_counts",
    "shares_from_rates",
    "weighted_ls_constants",
]


def check_shares(p: Any, name: str = "p") -> np.ndarray:
    """p as a float64 vector with every p_i in (0, 1] and Σ p_i = 1 (to 1e-9); else ValueError."""
    v = np.asarray(to_numpy(p), dtype=np.float64)
    if v.ndim != 1 or v.size < 1:
        raise ValueError(f"{name} must be a non-empty vector of shares, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v <= 0.0):
        raise ValueError(f"{name}: every share must be a finite number in (0, 1], got {v.tolist()}")
    s = float(math.fsum(v.tolist()))
    if abs(s - 1.0) > 1e-9:
        raise ValueError(f"{name}: shares must sum to 1, got sum {s!r}")
    return v / s


def shares_from_rates(rates: Any) -> np.ndarray:
    """p_i = r_i / Σ_j r_j (eq. (TA-0)): the next finisher's law under i.i.d. Exp(r_i) job times.

    Valid (C5_p holds) only with every client in flight (``concurrency=None``), the restart
    rule, zero latencies, no dropout and staleness control ``none`` (theory/arrival_bias.md §1).
    For ``EventDriven(job_time=JobTime("exponential", mean=m), speeds=v)`` the rates are
    r_i = v_i / m, so p_i = v_i / Σ_j v_j.
    """
    r = np.asarray(to_numpy(rates), dtype=np.float64)
    if r.ndim != 1 or r.size < 1 or not np.all(np.isfinite(r)) or np.any(r <= 0.0):
        raise ValueError(f"rates must be a non-empty vector of finite numbers > 0, got {rates!r}")
    return r / float(math.fsum(r.tolist()))


def shares_from_counts(counts: Any) -> np.ndarray:
    """Measured shares p̂_i = c_i / Σ_j c_j of a run (``RunResult.counts``).

    A client with no applied update has p̂_i = 0, and then χ²(u‖p̂) = ∞: the measured shares
    are an *estimate* of p, and (TA) is proved for the conditional law p, not for p̂.
    """
    c = np.asarray(to_numpy(counts), dtype=np.float64)
    if c.ndim != 1 or c.size < 1 or not np.all(np.isfinite(c)) or np.any(c < 0.0):
        raise ValueError(f"counts must be a non-empty vector of numbers >= 0, got {counts!r}")
    total = float(c.sum())
    if total <= 0.0:
        raise ValueError("counts: no applied update, the shares are undefined")
    return c / total


def chi2_uniform(p: Any) -> float:
    """χ²(u‖p) = Σ_i (1/n − p_i)² / p_i, eq. (TA-3); ``inf`` if some p_i = 0, 0 iff p = u."""
    v = np.asarray(to_numpy(p), dtype=np.float64)
    if v.ndim != 1 or v.size < 1 or not np.all(np.isfinite(v)) or np.any(v < 0.0):
        raise ValueError(f"p must be a non-empty vector of shares >= 0, got {p!r}")
    if abs(float(v.sum()) - 1.0) > 1e-9:
        raise ValueError(f"p: shares must sum to 1, got sum {float(v.sum())!r}")
    n = v.size
    if np.any(v == 0.0):
        return math.inf
    return float(math.fsum(((1.0 / n - v) ** 2 / v).tolist()))


@dataclass(frozen=True)
class WeightedConstants:
    """Exact constants of F_p = Σ_i p_i F_i on the shared-design least-squares family.

    L: λ_max(H_F) (every F_i and F_p). F_p_star, delta_fp: F_p* and Δ_{F_p} = F_p(w⁰) − F_p*.
    gamma2_p: γ_p² = Σ_i p_i ‖H_F(c_i − c_p)‖² (eq. (TA-6), attained at every w).
    gamma2: γ² of (C3) (uniform weights), delta_f: Δ_F, for the reweighted bound.
    chi2: χ²(u‖p). bias: χ²(u‖p)·γ_p² (eq. (TA-3)). gap: ‖∇F(c_p)‖² = ‖H_F(c_p − c̄)‖², the
    exact value of ‖∇F‖² at the stationary point of F_p (≤ bias by eq. (TA-3)).
    """

    p: tuple[float, ...]
    L: float
    F_p_star: float
    delta_fp: float
    gamma2_p: float
    gamma2: float
    delta_f: float
    chi2: float
    bias: float
    gap: float


def weighted_ls_constants(problem: Any, oracle: Any, w0: Any, p: Any) -> WeightedConstants:
    """Exact (TA) constants for F_i(w) = ½(w − c_i)ᵀH_F(w − c_i) (eq. (AS-1), (TA-6)).

    ``problem`` needs ``.A`` and ``.centers`` (``persafl_np.data.shifted_least_squares`` or
    :func:`persafl_np.bounds.check.quadratic_design`); H_F comes from the oracle.
    """
    A = np.asarray(to_numpy(problem.A), dtype=np.float64)
    C = np.asarray(to_numpy(problem.centers), dtype=np.float64)
    if C.ndim != 2 or C.shape[1] != A.shape[0]:
        raise ValueError(f"problem.centers must have shape (n, {A.shape[0]}), got {C.shape}")
    pv = check_shares(p)
    if pv.size != C.shape[0]:
        raise ValueError(f"p must have one share per client ({C.shape[0]}), got {pv.size}")
    w = np.asarray(to_numpy(w0), dtype=np.float64)
    if w.shape != (A.shape[0],) or not np.all(np.isfinite(w)):
        raise ValueError(f"w0 must be a finite vector of shape ({A.shape[0]},), got {w.shape}")
    H = personalized_hessian(A, oracle)
    L = float(np.abs(np.linalg.eigvalsh(H)).max())
    n = C.shape[0]
    u = np.full(n, 1.0 / n)

    def value(weights: np.ndarray, x: np.ndarray) -> float:
        D = x[None, :] - C
        return float(weights @ (0.5 * np.einsum("ij,jk,ik->i", D, H, D)))

    def minimum(weights: np.ndarray) -> float:
        # ∇F_q(w) = H(w − c_q) with c_q = Σ q_i c_i: the least-squares solution of Hw = Hc_q
        # is an exact minimiser even for singular H (H ⪰ 0).
        cq = weights @ C
        return value(weights, np.linalg.lstsq(H, H @ cq, rcond=None)[0])

    def het(weights: np.ndarray) -> float:
        G = (C - weights @ C) @ H
        return float(weights @ np.sum(G * G, axis=1))

    Fp_star = minimum(pv)
    chi2 = chi2_uniform(pv)
    g2p = het(pv)
    gvec = H @ (pv @ C - C.mean(axis=0))
    return WeightedConstants(
        p=tuple(pv.tolist()),
        L=L,
        F_p_star=Fp_star,
        delta_fp=max(value(pv, w) - Fp_star, 0.0),
        gamma2_p=g2p,
        gamma2=het(u),
        delta_f=max(value(u, w) - minimum(u), 0.0),
        chi2=chi2,
        bias=chi2 * g2p,
        gap=float(gvec @ gvec),
    )
