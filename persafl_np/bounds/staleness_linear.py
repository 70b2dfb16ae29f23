"""(TB) staleness charged linearly in τ: the martingale-split bound of theory/staleness_linear.md.

* :func:`martingale_bound` — eq. (TB-1): the seven terms of (T1) with the stale terms
  c_s μ a²τQL²(Qγ² + σ²)/K_e instead of c a²τ²(…); μ = 1 when the staleness of a slot is
  independent of the past (``window="independent"``, e.g. theorem mode), μ = 9 for any
  staleness rule (``"any"``, Doob's maximal inequality); K_e = K when the K slots of a buffer
  are conditionally independent given the past (``slots="independent"``, FedBuff's 1/K), else 1.
* :func:`delay_adaptive_bound` — eq. (TB-4): C jobs in flight, step a·1{τ_t ≤ τ̄}, under the
  independence condition (I) (the skip decision independent of the client given the past);
  bounds (1/T) E Σ_{t applied} ‖∇F(w^t)‖², whatever the staleness (no τ_max).
* :func:`martingale_corollary` — eq. (TB-3): O(√(LΔ(Qγ²+σ²)/(QT)) + τLΔ/T).
* :func:`delayed_sgd_stationary` — the exact stationary E‖∇F‖² of delayed SGD on F = (L/2)‖w‖²
  (theory/staleness_linear.md §5: the measured column of its τ sweep, tests and figures).

Both bounds return a :class:`~persafl_np.bounds.theorem.BoundResult` (same term names and
conditions object as (T1)); ``constants`` is ``"martingale"`` / ``"delay_adaptive"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from persafl_np.arguments import check_int
from persafl_np.bounds.theorem import (
    BoundResult,
    _nonneg_real,
    _pos_real,
    _problem_constants,
    _product,
    step_size_conditions,
)

__all__ = [
    "MARTINGALE_CONSTANTS",
    "MartingaleCorollary",
    "delay_adaptive_bound",
    "delayed_sgd_stationary",
    "martingale_bound",
    "martingale_corollary",
]

#: Corner values of (TB-2) (x = 1/16, y = z = 1/24), rounded up: c1, c2 = c3, c4 per unit ρ,
#: c5, c_s per unit μ. Net coefficient 0.38380 aQ; theory/staleness_linear.md §3.
MARTINGALE_CONSTANTS: dict[str, float] = {
    "c1": 2.61, "c2": 2.61, "c3": 2.61, "c4_per_rho": 22.9, "c5": 11.5, "cs_per_mu": 9.10,
}

WINDOWS = {"independent": 1.0, "any": 9.0}
SLOTS = ("correlated", "independent")


def _terms(L, sigma2, gamma2, delta_f, T, tau_eff, Q, eta, a, K_e, rho, mu):
    c = MARTINGALE_CONSTANTS
    return (
        _product(c["c1"], delta_f, 1.0 / (a * Q * T)),
        _product(c["c2"], L, a, Q, gamma2, 1.0 / K_e),
        _product(c["c3"], L, a, sigma2, 1.0 / K_e),
        _product(c["c4_per_rho"] * rho, eta**2, Q**2, L**2, gamma2),
        _product(c["c5"], eta**2, Q, L**2, sigma2),
        _product(c["cs_per_mu"] * mu, a**2, tau_eff, Q**2, L**2, gamma2, 1.0 / K_e),
        _product(c["cs_per_mu"] * mu, a**2, tau_eff, Q, L**2, sigma2, 1.0 / K_e),
    )


def _check_rho(rho: int) -> float:
    if rho not in (1, 2):
        raise ValueError(f"rho must be 1 (staleness independent of the client) or 2, got {rho!r}")
    return float(rho)


def martingale_bound(
    L: float,
    sigma2: float,
    gamma2: float,
    delta_f: float,
    T: int,
    tau: int,
    Q: int,
    eta: float,
    beta: float,
    K: int = 1,
    *,
    rho: int = 2,
    window: str = "any",
    slots: str = "correlated",
) -> BoundResult:
    """Evaluate (TB-1) of theory/staleness_linear.md on (1/T) Σ_{t<T} E‖∇F(w^t)‖².

    Same assumptions and step conditions (T2) as (T1). rho: 1 if a slot's staleness is
    independent of its client given the past, else 2. window: ``"independent"`` (μ = 1) if
    every slot's staleness is independent of the past F_t, ``"any"`` (μ = 9) otherwise.
    slots: ``"independent"`` if the K slots of a step are conditionally independent given F_t
    (then the server and stale terms get 1/K), ``"correlated"`` otherwise.
    """
    L, sigma2, gamma2, delta_f, T = _problem_constants(L, sigma2, gamma2, delta_f, T)
    K = check_int(K, "K", 1)
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {sorted(WINDOWS)}, got {window!r}")
    if slots not in SLOTS:
        raise ValueError(f"slots must be one of {SLOTS}, got {slots!r}")
    r = _check_rho(rho)
    cond = step_size_conditions(L, tau, Q, eta, beta)
    tau, Q, eta, beta = int(tau), int(Q), float(eta), float(beta)
    K_e = float(K) if slots == "independent" else 1.0
    terms = _terms(L, sigma2, gamma2, delta_f, T, float(tau), Q, eta, beta * eta, K_e, r,
                   WINDOWS[window])
    return BoundResult(
        math.fsum(terms), *terms, L=L, sigma2=sigma2, gamma2=gamma2, delta_f=delta_f, T=T,
        tau=tau, Q=Q, eta=eta, beta=beta, K=K, constants="martingale", conditions=cond,
    )


def delay_adaptive_bound(
    L: float,
    sigma2: float,
    gamma2: float,
    delta_f: float,
    T: int,
    C: int,
    tau_bar: int,
    Q: int,
    eta: float,
    beta: float,
    *,
    rho: int = 2,
) -> BoundResult:
    """Evaluate (TB-4): at most C jobs in flight, server step a·1{τ_t ≤ tau_bar}, condition (I).

    Bounds (1/T) E Σ_{t<T, τ_t ≤ tau_bar} ‖∇F(w^t)‖²; at least T(1 − (C−1)/(tau_bar+1)) of the
    T steps are applied (> T/2 for tau_bar = 2C), pathwise. The step condition is (T2) with
    τ² replaced by Λ = tau_bar·max(1, C − 1) (``tau`` of the result is ⌈√Λ⌉, used only for
    that condition), and the martingale term has μ = 9, τ = tau_bar.
    """
    L, sigma2, gamma2, delta_f, T = _problem_constants(L, sigma2, gamma2, delta_f, T)
    C = check_int(C, "C", 1)
    tau_bar = check_int(tau_bar, "tau_bar", 0)
    r = _check_rho(rho)
    lam = tau_bar * max(1, C - 1)
    # (T2) with τ = √Λ: a ≤ 1/(24 max(1, √Λ) QL). step_size_conditions takes an integer τ, so
    # check against the exact √Λ here and report ⌈√Λ⌉.
    cond = step_size_conditions(L, 0, Q, eta, beta)
    a = float(beta) * float(eta)
    a_max = 1.0 / (24.0 * max(1.0, math.sqrt(lam)) * int(Q) * L)
    a_ratio = a / a_max
    a_ok = a_ratio <= 1.0 + 1e-12
    violated = tuple(v for v in cond.violated if v.startswith("eta"))
    if not a_ok:
        violated += (f"a = beta*eta = {a:.6g} > 1/(24 sqrt(tau_bar max(1,C-1)) Q L) = "
                     f"{a_max:.6g} (x{a_ratio:.3g})",)
    cond = replace(cond, a_max=a_max, a_ratio=a_ratio, a_ok=a_ok, violated=violated)
    terms = _terms(L, sigma2, gamma2, delta_f, T, float(tau_bar), int(Q), float(eta), a, 1.0,
                   r, WINDOWS["any"])
    return BoundResult(
        math.fsum(terms), *terms, L=L, sigma2=sigma2, gamma2=gamma2, delta_f=delta_f, T=T,
        tau=math.ceil(math.sqrt(lam)), Q=int(Q), eta=float(eta), beta=float(beta), K=1,
        constants="delay_adaptive", conditions=cond,
    )


@dataclass(frozen=True)
class MartingaleCorollary:
    """Steps and rate of (TB-3): β = 1, a = η = min(a0, a_star) as in (T3); ``rate`` bounds
    (TB-1) at these steps (ρ = 2, the given μ)."""

    eta: float
    beta: float
    a0: float
    a_star: float
    rate: float


def martingale_corollary(
    T: int, L: float, sigma2: float, gamma2: float, delta_f: float, tau: int, Q: int,
    *, window: str = "any",
) -> MartingaleCorollary:
    """The ∝ 1/√T steps of (TB-3), theory/staleness_linear.md, and the rate they give:

    rate = (c1 + max(c2, c3) + c_s μ/24)·√(LΔ_F(Qγ²+σ²)/(QT))
                    + (24 c1 max(1,τ) + max(2 c4_per_rho, c5))·LΔ_F/T.
    """
    T = check_int(T, "T", 1)
    L = _pos_real(L, "L")
    sigma2 = _nonneg_real(sigma2, "sigma2", allow_inf=False)
    gamma2 = _nonneg_real(gamma2, "gamma2", allow_inf=False)
    delta_f = _pos_real(delta_f, "delta_f")
    tau = check_int(tau, "tau", 0)
    Q = check_int(Q, "Q", 1)
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {sorted(WINDOWS)}, got {window!r}")
    c = MARTINGALE_CONSTANTS
    a0 = 1.0 / (24.0 * max(1, tau) * Q * L)
    spread = Q * gamma2 + sigma2
    a_star = math.sqrt(delta_f / (L * Q * T * spread)) if spread > 0 else math.inf
    root = math.sqrt(L * delta_f * spread / (Q * T))
    rate = (c["c1"] + max(c["c2"], c["c3"]) + c["cs_per_mu"] * WINDOWS[window] / 24.0) * root + (
        24.0 * c["c1"] * max(1, tau) + max(2.0 * c["c4_per_rho"], c["c5"])
    ) * L * delta_f / T
    a = min(a0, a_star)
    return MartingaleCorollary(eta=a, beta=1.0, a0=a0, a_star=a_star, rate=rate)


def delayed_sgd_stationary(a: float, L: float, tau: int, sigma2: float) -> float:
    """lim E‖∇F(w^t)‖² of w^{t+1} = w^t − a(L w^{t−τ} + ξ_t), E‖ξ‖² = σ² (isotropic).

    The state (w^t, …, w^{t−τ}) is a linear system x ← Ax + bξ; its stationary covariance solves
    the discrete Lyapunov equation Σ = AΣAᵀ + a²σ² e₁e₁ᵀ (per unit of σ² summed over
    coordinates), and E‖∇F‖² = L²Σ₀₀ (theory/staleness_linear.md §5). Needs a stable system
    (aLτ small; the step cap of (TB-1) is one).
    """
    import numpy as np
    import scipy.linalg

    tau = check_int(tau, "tau", 0)
    m = tau + 1
    A = np.zeros((m, m))
    A[0, 0] = 1.0
    A[0, tau] -= a * L
    for k in range(1, m):
        A[k, k - 1] = 1.0
    B = np.zeros((m, m))
    B[0, 0] = a * a * sigma2
    return float(L * L * scipy.linalg.solve_discrete_lyapunov(A, B)[0, 0])
