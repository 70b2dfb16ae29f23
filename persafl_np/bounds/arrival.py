"""The arrival-biased bounds (TA) of theory/arrival_bias.md.

* :func:`arrival_bound` — clients drawn from a fixed p given the past (C5_p), plain server step:
  (TA-1) bounds (1/T)Σ E‖∇F_p(w^t)‖² by (T1) with (γ_p², Δ_{F_p}); (TA-4) bounds
  (1/T)Σ E‖∇F(w^t)‖² by (√RHS_p + √(χ²(u‖p)γ_p²))² ≤ 2 RHS_p + 2χ²(u‖p)γ_p².
* :func:`reweighted_bound` — the server step of client i scaled by 1/(n p_i), p known and fixed:
  (TA-5) is (T1) for F itself with a replaced by ã = a/(n p_min) in the step condition and in
  every term but ``init``.

Both reuse :func:`persafl_np.bounds.theorem.stationarity_bound` for the seven terms, so the term
names, the constant sets ("d4", "sharp") and the conditions object are those of (T1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from persafl_np.bounds.shares import check_shares, chi2_uniform
from persafl_np.bounds.theorem import BoundResult, _nonneg_real, stationarity_bound

__all__ = ["ArrivalBound", "ReweightedBound", "arrival_bound", "reweighted_bound"]


@dataclass(frozen=True)
class ArrivalBound:
    """(TA): the bound on F_p, the χ² bias term and the two bounds on F that follow.

    on_Fp: the (T1) terms for F_p (eq. (TA-1)); a bound on (1/T)Σ E‖∇F_p(w^t)‖².
    chi2: χ²(u‖p); bias: χ²(u‖p)·γ_p² (eq. (TA-3)), a bound on sup_w ‖∇F(w) − ∇F_p(w)‖².
    on_F: (√on_Fp.total + √bias)² (eq. (TA-4)); on_F_simple: 2 on_Fp.total + 2 bias.
    """

    on_Fp: BoundResult
    p: tuple[float, ...]
    chi2: float
    gamma2_p: float
    bias: float
    on_F: float
    on_F_simple: float

    @property
    def valid(self) -> bool:
        return self.on_Fp.valid


def arrival_bound(
    L: float,
    sigma2: float,
    gamma2_p: float,
    delta_fp: float,
    p: Any,
    T: int,
    tau: int,
    Q: int,
    eta: float,
    beta: float,
    K: int = 1,
    *,
    constants: str = "d4",
) -> ArrivalBound:
    """Evaluate (TA-1)–(TA-4) of theory/arrival_bias.md.

    gamma2_p: γ_p² = sup_w Σ_i p_i ‖∇F_i(w) − ∇F_p(w)‖²; delta_fp: Δ_{F_p} = F_p(w⁰) − F_p*.
    p: the conditional arrival law (C5_p), every p_i > 0. Other arguments as in
    :func:`~persafl_np.bounds.theorem.stationarity_bound` (the step conditions are (T2)).
    """
    pv = check_shares(p)
    gamma2_p = _nonneg_real(gamma2_p, "gamma2_p")
    on_Fp = stationarity_bound(L, sigma2, gamma2_p, delta_fp, T, tau, Q, eta, beta, K,
                               constants=constants)
    chi2 = chi2_uniform(pv)
    bias = 0.0 if chi2 == 0.0 else chi2 * gamma2_p
    total = on_Fp.total
    return ArrivalBound(
        on_Fp=on_Fp,
        p=tuple(pv.tolist()),
        chi2=chi2,
        gamma2_p=gamma2_p,
        bias=bias,
        on_F=(math.sqrt(total) + math.sqrt(bias)) ** 2,
        on_F_simple=2.0 * total + 2.0 * bias,
    )


@dataclass(frozen=True)
class ReweightedBound:
    """(TA-5): the bound on (1/T)Σ E‖∇F(w^t)‖² for the 1/(n p_i)-reweighted server step.

    bound: the seven terms; its ``conditions`` are (T2) with a replaced by ã = a·omega_max,
    and its ``init`` term is c1 Δ_F/(aQT) (the un-inflated a). omega_max = 1/(n p_min).
    ``bound.beta`` is the inflated β·omega_max, so ``bound.a`` is ã.
    """

    bound: BoundResult
    p: tuple[float, ...]
    omega_max: float

    @property
    def total(self) -> float:
        return self.bound.total

    @property
    def valid(self) -> bool:
        return self.bound.valid


def reweighted_bound(
    L: float,
    sigma2: float,
    gamma2: float,
    delta_f: float,
    p: Any,
    T: int,
    tau: int,
    Q: int,
    eta: float,
    beta: float,
    K: int = 1,
    *,
    constants: str = "d4",
) -> ReweightedBound:
    """Evaluate (TA-5) of theory/arrival_bias.md (server step β/(n p_i), p fixed and known).

    gamma2, delta_f: γ² of (C3) and Δ_F of F itself (uniform weights). The step conditions
    are η ≤ 1/(16QL) and ã = βη/(n p_min) ≤ 1/(24 max(1,τ) QL).
    """
    pv = check_shares(p)
    omega = 1.0 / (pv.size * float(pv.min()))
    inflated = stationarity_bound(L, sigma2, gamma2, delta_f, T, tau, Q, eta, beta * omega, K,
                                  constants=constants)
    # every term of (TA-5) is that of (T1) at ã = a·ω̄ except init, which keeps a: × ω̄.
    init = 0.0 if inflated.init == 0.0 else inflated.init * omega
    terms = [init] + [v for k, v in inflated.terms.items() if k != "init"]
    bound = replace(inflated, init=init, total=math.fsum(terms))
    return ReweightedBound(bound=bound, p=tuple(pv.tolist()), omega_max=omega)
