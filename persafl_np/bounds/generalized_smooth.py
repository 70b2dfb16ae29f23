"""(TC) MAML under (L₀, L₁)-smoothness, without a gradient bound B.

theory/maml_generalized_smooth.md:
* :func:`maml_l0_l1` — eq. (TC-1): for α < 1/L, F_i(w) = f_i(w − α∇f_i(w)) satisfies
  ‖∇F_i(w) − ∇F_i(u)‖ ≤ (L₀ + L₁‖∇F_i(u)‖)‖w − u‖ for all w, u, with L₀ = L(1+αL)²,
  L₁ = αρ/(1 − αL);
* :func:`gradient_level_bound` — eq. (TC-3): ‖∇F_i(w)‖ ≤ G(Δ) = L₁Δ + √(L₁²Δ² + 2L₀Δ) whenever
  F_i(w) − inf F_i ≤ Δ;
* :func:`sync_gd_bound` — Theorem (TC-4): full-participation synchronous GD on F = (1/n)Σ F_i
  (exact oracle, Q = 1, τ = 0) with F_i ≥ 0 and a ≤ 1/(L₀ + L₁ G(nF(w⁰))):
  (1/T)Σ_{t<T}‖∇F(w^t)‖² ≤ 2F(w⁰)/(aT). No B anywhere.

The asynchronous, stochastic, multi-step version is **not** proved (the proof of (TC-4) needs
monotone descent); the code says so by offering no such function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from persafl_np.arguments import check_int
from persafl_np.bounds.theorem import _nonneg_real, _pos_real

__all__ = ["GDBound", "gradient_level_bound", "maml_l0_l1", "sync_gd_bound"]


def maml_l0_l1(L: float, rho: float, alpha: float) -> tuple[float, float]:
    """(L₀, L₁) = (L(1+αL)², αρ/(1 − αL)) of eq. (TC-1); requires 0 ≤ α < 1/L."""
    L = _pos_real(L, "L")
    rho = _nonneg_real(rho, "rho", allow_inf=False)
    alpha = _nonneg_real(alpha, "alpha", allow_inf=False)
    if alpha * L >= 1.0:
        raise ValueError(f"alpha must lie in [0, 1/L) = [0, {1.0 / L:.6g}), got {alpha!r}")
    return L * (1.0 + alpha * L) ** 2, alpha * rho / (1.0 - alpha * L)


def gradient_level_bound(L0: float, L1: float, delta: float) -> float:
    """G(Δ) of eq. (TC-3): the largest ‖∇F_i‖ on {F_i − inf F_i ≤ Δ} for (L₀, L₁)-smooth F_i."""
    L0 = _pos_real(L0, "L0")
    L1 = _nonneg_real(L1, "L1", allow_inf=False)
    delta = _nonneg_real(delta, "delta", allow_inf=False)
    return L1 * delta + math.sqrt((L1 * delta) ** 2 + 2.0 * L0 * delta)


@dataclass(frozen=True)
class GDBound:
    """Theorem (TC-4): bound = 2F(w⁰)/(aT), valid iff a ≤ a_max = 1/(L₀ + L₁G)."""

    bound: float
    a: float
    a_max: float
    G: float
    L0: float
    L1: float

    @property
    def valid(self) -> bool:
        return self.a <= self.a_max * (1.0 + 1e-12)


def sync_gd_bound(L0: float, L1: float, F0: float, n: int, T: int, a: float) -> GDBound:
    """Theorem (TC-4) of theory/maml_generalized_smooth.md.

    F0: F(w⁰) = (1/n)Σ F_i(w⁰) with every F_i ≥ 0 (so F_i(w) ≤ nF(w) and Δ_F ≤ F0); n clients;
    a = βη the effective step of w ← w − a∇F(w). G = G(nF0) bounds every ‖∇F_i‖ on the
    sublevel set {F ≤ F0}, which the iterates never leave.
    """
    L0 = _pos_real(L0, "L0")
    L1 = _nonneg_real(L1, "L1", allow_inf=False)
    F0 = _nonneg_real(F0, "F0", allow_inf=False)
    n = check_int(n, "n", 1)
    T = check_int(T, "T", 1)
    a = _pos_real(a, "a")
    G = gradient_level_bound(L0, L1, n * F0)
    return GDBound(bound=2.0 * F0 / (a * T), a=a, a_max=1.0 / (L0 + L1 * G), G=G, L0=L0, L1=L1)
