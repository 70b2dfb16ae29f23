"""The unified asynchronous stationarity bound, its step-size conditions and its corollary.

Everything here implements ``theory/async_theorem.md``:

* :func:`stationarity_bound` evaluates the seven terms of eq. (T1);
* :func:`step_size_conditions` checks eq. (T2): η ≤ 1/(16QL) and a = βη ≤ 1/(24 max(1,τ) QL);
* :func:`corollary_step_sizes` returns the ∝ 1/√T steps of eq. (T3) and the corollary's rate;
* :func:`quadratic_ratio_limit` is eq. (T4), the exact T → ∞ measured/bound ratio on F = (L/2)w².

All inputs are host-side Python scalars: the bound is arithmetic on constants, not on arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from persafl_np.arguments import check_int

__all__ = [
    "CONSTANT_SETS",
    "TERM_NAMES",
    "BoundResult",
    "ConditionsResult",
    "CorollaryStepSizes",
    "corollary_step_sizes",
    "quadratic_ratio_limit",
    "stationarity_bound",
    "step_size_conditions",
]

#: Names of the seven terms of (T1), in order; also the field names of :class:`BoundResult`.
TERM_NAMES = (
    "init",
    "server_het",
    "server_noise",
    "drift_het",
    "drift_noise",
    "stale_het",
    "stale_noise",
)

#: (c1, ..., c7) of (T1). "d4": the constants of (D4) in theory/brief_results.md; "sharp": what
#: the proof in theory/async_theorem.md §4 (eq. (P9)) gives, valid also for client-dependent
#: staleness (ρ = 2); "net": the same proof divided by its exact net coefficient 0.28096·aQ
#: instead of aQ/4 (theory/staleness_linear.md §3; every sharp constant × 0.25/0.28096, rounded
#: up).
CONSTANT_SETS: dict[str, tuple[float, ...]] = {
    "d4": (8.0, 24.0, 8.0, 128.0, 64.0, 336.0, 144.0),
    "sharp": (4.0, 12.0, 4.0, 80.0, 20.0, 37.0, 12.0),
    "net": (3.56, 10.7, 3.56, 71.2, 17.8, 32.7, 10.6),
}

# Steps exactly at the maxima are computed in floating point (e.g. 1/(16*Q*L)); a relative slack
# of a few ulps keeps them "inside" without admitting anything materially larger.
_REL_TOL = 1e-12


def _pos_real(value: float, name: str, *, allow_inf: bool = False) -> float:
    v = float(value)
    if math.isnan(v) or v <= 0 or (math.isinf(v) and not allow_inf):
        rng = "(0, inf]" if allow_inf else "(0, inf)"
        raise ValueError(f"{name} must be a real number in {rng}, got {value!r}")
    return v


def _nonneg_real(value: float, name: str, *, allow_inf: bool = True) -> float:
    v = float(value)
    if math.isnan(v) or v < 0 or (math.isinf(v) and not allow_inf):
        rng = "[0, inf]" if allow_inf else "[0, inf)"
        raise ValueError(f"{name} must be a real number in {rng}, got {value!r}")
    return v


def _problem_constants(L: float, sigma2: float, gamma2: float, delta_f: float,
                       T: int) -> tuple[float, float, float, float, int]:
    """(L, σ², γ², Δ_F, T) of a (T1)-type bound checked: L ∈ (0, ∞), σ², γ², Δ_F ∈ [0, ∞],
    T ≥ 1 — the inputs every bound of theory/async_theorem.md and its extensions share."""
    return (_pos_real(L, "L"), _nonneg_real(sigma2, "sigma2"), _nonneg_real(gamma2, "gamma2"),
            _nonneg_real(delta_f, "delta_f"), check_int(T, "T", 1))


def _product(*factors: float) -> float:
    """Product where a zero factor wins over an infinite one (a term that is absent is 0)."""
    if any(f == 0 for f in factors):
        return 0.0
    return math.prod(factors)


@dataclass(frozen=True)
class ConditionsResult:
    """Which step-size conditions of (T2) hold, and by what margin.

    Attributes
    ----------
    eta_max, a_max: the limits 1/(16QL) and 1/(24 max(1,τ) QL).
    eta_ratio, a_ratio: η/eta_max and a/a_max (a condition holds iff its ratio ≤ 1).
    eta_ok, a_ok: whether each condition holds.
    violated: human-readable description of each violated condition (empty if all hold).
    """

    eta: float
    a: float
    eta_max: float
    a_max: float
    eta_ratio: float
    a_ratio: float
    eta_ok: bool
    a_ok: bool
    violated: tuple[str, ...] = field(default_factory=tuple)

    @property
    def all_hold(self) -> bool:
        return self.eta_ok and self.a_ok

    @property
    def eta_margin(self) -> float:
        """1 − η/eta_max: ≥ 0 when the condition holds (fraction of head-room left)."""
        return 1.0 - self.eta_ratio

    @property
    def a_margin(self) -> float:
        """1 − a/a_max: ≥ 0 when the condition holds."""
        return 1.0 - self.a_ratio


def step_size_conditions(L: float, tau: int, Q: int, eta: float, beta: float) -> ConditionsResult:
    """Check the step-size conditions (T2) of theory/async_theorem.md.

    η ≤ 1/(16 Q L) and a = βη ≤ 1/(24 max(1, τ) Q L).
    """
    L = _pos_real(L, "L")
    tau = check_int(tau, "tau", 0)
    Q = check_int(Q, "Q", 1)
    eta = _pos_real(eta, "eta")
    beta = _pos_real(beta, "beta")
    a = beta * eta
    eta_max = 1.0 / (16.0 * Q * L)
    a_max = 1.0 / (24.0 * max(1, tau) * Q * L)
    eta_ratio, a_ratio = eta / eta_max, a / a_max
    eta_ok, a_ok = eta_ratio <= 1.0 + _REL_TOL, a_ratio <= 1.0 + _REL_TOL
    violated = []
    if not eta_ok:
        violated.append(f"eta = {eta:.6g} > 1/(16 Q L) = {eta_max:.6g} (x{eta_ratio:.3g})")
    if not a_ok:
        violated.append(
            f"a = beta*eta = {a:.6g} > 1/(24 max(1,tau) Q L) = {a_max:.6g} (x{a_ratio:.3g})"
        )
    return ConditionsResult(
        eta=eta,
        a=a,
        eta_max=eta_max,
        a_max=a_max,
        eta_ratio=eta_ratio,
        a_ratio=a_ratio,
        eta_ok=eta_ok,
        a_ok=a_ok,
        violated=tuple(violated),
    )


@dataclass(frozen=True, kw_only=True)
class T1Inputs:
    """What (T1) is a function of (notation of theory/async_theorem.md): L, σ², γ², Δ_F of
    (C1)–(C3); T server steps; τ the staleness bound; Q local steps; η the client step; β the
    server step (a = βη); K the buffer size. Shared by :class:`BoundResult` and the
    falsifier's ``BoundInputs``."""

    L: float
    sigma2: float
    gamma2: float
    delta_f: float
    T: int
    tau: int
    Q: int
    eta: float
    beta: float
    K: int = 1

    @property
    def a(self) -> float:
        """Effective step a = βη."""
        return self.beta * self.eta


@dataclass(frozen=True)
class BoundResult(T1Inputs):
    """The right-hand side of (T1), term by term, with its inputs.

    ``total`` is the sum of the seven terms. It is a valid bound on
    (1/T) Σ_t E‖∇F(w^t)‖² only when ``conditions.all_hold`` and assumptions C1–C5 of
    theory/assumptions.md hold; ``valid`` reports the first part.
    """

    total: float
    init: float
    server_het: float
    server_noise: float
    drift_het: float
    drift_noise: float
    stale_het: float
    stale_noise: float
    constants: str
    conditions: ConditionsResult

    @property
    def valid(self) -> bool:
        """True when the step sizes satisfy (T2)."""
        return self.conditions.all_hold

    @property
    def terms(self) -> dict[str, float]:
        """The seven terms by name, in the order of (T1)."""
        return {name: getattr(self, name) for name in TERM_NAMES}

    @property
    def floor(self) -> float:
        """The T-independent part (all terms but ``init``): the bound's T → ∞ limit."""
        return self.total - self.init


def stationarity_bound(
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
    constants: str = "d4",
) -> BoundResult:
    """Evaluate the bound (T1) of theory/async_theorem.md on (1/T) Σ_{t<T} E‖∇F(w^t)‖².

    Parameters
    ----------
    L: gradient-Lipschitz constant of every F_i (L_F), finite and > 0.
    sigma2: oracle noise variance σ² (C2), ≥ 0; ``inf`` gives an infinite (vacuous) bound.
    gamma2: heterogeneity γ² (C3), a bound valid for all w; ≥ 0, may be ``inf``.
    delta_f: Δ_F = F(w^0) − F*, ≥ 0 (may be ``inf`` if F* is unknown).
    T: number of server steps, ≥ 1.   tau: staleness bound τ ≥ 0 (server steps).
    Q: local steps ≥ 1.   eta: client step η > 0.   beta: server step β > 0.
    K: buffer size ≥ 1. The bound does not depend on K (theory/async_theorem.md, step 7).
    constants: "d4" (8, 24, 8, 128, 64, 336, 144), "sharp" (4, 12, 4, 80, 20, 37, 12) or
        "net" (3.56, 10.7, 3.56, 71.2, 17.8, 32.7, 10.6).

    The result is computed even when (T2) fails, with ``conditions`` saying which
    condition fails; such a number is not a bound.
    """
    L, sigma2, gamma2, delta_f, T = _problem_constants(L, sigma2, gamma2, delta_f, T)
    K = check_int(K, "K", 1)
    if constants not in CONSTANT_SETS:
        raise ValueError(f"constants must be one of {sorted(CONSTANT_SETS)}, got {constants!r}")
    cond = step_size_conditions(L, tau, Q, eta, beta)
    tau, Q, eta, beta = int(tau), int(Q), float(eta), float(beta)
    a = beta * eta
    c1, c2, c3, c4, c5, c6, c7 = CONSTANT_SETS[constants]
    terms = (
        _product(c1, delta_f, 1.0 / (a * Q * T)),
        _product(c2, L, a, Q, gamma2),
        _product(c3, L, a, sigma2),
        _product(c4, eta**2, Q**2, L**2, gamma2),
        _product(c5, eta**2, Q, L**2, sigma2),
        _product(c6, a**2, tau**2, Q**2, L**2, gamma2),
        _product(c7, a**2, tau**2, Q, L**2, sigma2),
    )
    return BoundResult(
        math.fsum(terms),
        *terms,
        L=L,
        sigma2=sigma2,
        gamma2=gamma2,
        delta_f=delta_f,
        T=T,
        tau=tau,
        Q=Q,
        eta=eta,
        beta=beta,
        K=K,
        constants=constants,
        conditions=cond,
    )


@dataclass(frozen=True)
class CorollaryStepSizes:
    """Step sizes of the corollary (T3): β = 1, a = η = min(a0, a_star).

    Attributes
    ----------
    eta, beta: the client and server steps to use.
    a0: 1/(24 max(1,τ) Q L), the step-size cap of (T2).
    a_star: √(Δ_F / (L Q T (Qγ² + σ²))) (``inf`` when Qγ² + σ² = 0).
    limited_by: "staleness_cap" if a0 < a_star else "horizon".
    rate: the right-hand side of (T3), an upper bound on (T1) at these steps (for the constant
        set ``constants``; D4 by default).
    """

    eta: float
    beta: float
    a0: float
    a_star: float
    limited_by: str
    rate: float


def corollary_step_sizes(
    T: int, L: float, sigma2: float, gamma2: float, delta_f: float, tau: int, Q: int,
    *, constants: str = "d4",
) -> CorollaryStepSizes:
    """The ∝ 1/√T step sizes of the corollary (T3) of theory/async_theorem.md.

    rate = (c1 + max(c2, c3))√(LΔ_F(Qγ² + σ²)/(QT))
           + (24 c1 max(1,τ) + max(c4, c5) + max(c6, c7) τ²) LΔ_F/T   (eq. (T3)),
    which is 32√· + (192 max(1,τ) + 128 + 336τ²)LΔ_F/T for the D4 set and
    16√· + (96 max(1,τ) + 80 + 37τ²)LΔ_F/T for the sharp set.
    ``delta_f`` must be finite and > 0: with Δ_F = 0 the optimal constant step is 0.
    """
    if constants not in CONSTANT_SETS:
        raise ValueError(f"constants must be one of {sorted(CONSTANT_SETS)}, got {constants!r}")
    c1, c2, c3, c4, c5, c6, c7 = CONSTANT_SETS[constants]
    T = check_int(T, "T", 1)
    L = _pos_real(L, "L")
    sigma2 = _nonneg_real(sigma2, "sigma2", allow_inf=False)
    gamma2 = _nonneg_real(gamma2, "gamma2", allow_inf=False)
    delta_f = _pos_real(delta_f, "delta_f")
    tau = check_int(tau, "tau", 0)
    Q = check_int(Q, "Q", 1)
    a0 = 1.0 / (24.0 * max(1, tau) * Q * L)
    spread = Q * gamma2 + sigma2
    a_star = math.sqrt(delta_f / (L * Q * T * spread)) if spread > 0 else math.inf
    a = min(a0, a_star)
    rate = (c1 + max(c2, c3)) * math.sqrt(L * delta_f * spread / (Q * T)) + (
        24.0 * c1 * max(1, tau) + max(c4, c5) + max(c6, c7) * tau**2
    ) * L * delta_f / T
    return CorollaryStepSizes(
        eta=a,
        beta=1.0,
        a0=a0,
        a_star=a_star,
        limited_by="staleness_cap" if a0 < a_star else "horizon",
        rate=rate,
    )


def quadratic_ratio_limit(
    Q: int, eta: float, beta: float, L: float, constants: str = "d4"
) -> float:
    """Eq. (T4): lim_{T→∞} measured/bound for F = (L/2)w², σ = γ = 0, τ = 0.

    With h = (a/η)(1 − (1 − ηL)^Q) the server map is w ← (1 − h)w, so
    Σ_t ‖∇F(w^t)‖² → L² w0² / (h(2 − h)) and the ratio to c1 Δ_F/(aQT) is
    (aQL/h) · 2/(c1 (2 − h)) (= (aQL/h)/(4(2 − h)) for c1 = 8). Requires 0 < h < 2.
    """
    Q = check_int(Q, "Q", 1)
    eta = _pos_real(eta, "eta")
    beta = _pos_real(beta, "beta")
    L = _pos_real(L, "L")
    if constants not in CONSTANT_SETS:
        raise ValueError(f"constants must be one of {sorted(CONSTANT_SETS)}, got {constants!r}")
    h = beta * (1.0 - (1.0 - eta * L) ** Q)
    if not 0.0 < h < 2.0:
        raise ValueError(f"the server map must contract: need 0 < h < 2, got h = {h!r}")
    c1 = CONSTANT_SETS[constants][0]
    return (beta * eta * Q * L / h) * 2.0 / (c1 * (2.0 - h))
