"""Instance families for the falsifier (theory/tightness.md §1): what a bound is tested on.

A family maps a point u of the unit cube [0, 1]^p to an *instance* (a JSON-able dict that is a
runnable config) and measures, for many instances at once, the left-hand side of (T1)

    (1/T) Σ_{t<T} E‖∇F(w^t)‖²

together with the constants a bound takes (:class:`BoundInputs`). Every instance satisfies the
stated assumptions of (T1) in theory/async_theorem.md: C1–C5, τ_t ≤ τ and the step sizes at most
the (T2) caps (or a user's caps), so measured / bound > 1 is a violation of the bound.

* :class:`QuadraticFamily`: shared-Hessian quadratics F_i = ½(w − c_i)ᵀA(w − c_i) with A diagonal
  (WLOG: the noise is isotropic), exact constants, and the expectation computed *exactly* by the
  moment recursion (TF-2) — no Monte Carlo — for any deterministic staleness pattern, including
  client-dependent ones (K = 1, ρ = 2) and buffers K > 1. Thousands of instances per call.
* :class:`RobustFamily`: the project's nonconvex robust regression (Geman–McClure), run by the
  simulator in theorem mode with a cyclic staleness pattern; its constants are the bounds of
  eq. (AS-4) (:func:`persafl_np.bounds.robust_constants`), its instance a ``SimConfig`` dict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from persafl_np.arguments import check_int
from persafl_np.bounds.theorem import T1Inputs

__all__ = [
    "BoundInputs",
    "Family",
    "Measurement",
    "QuadraticFamily",
    "RobustFamily",
    "quadratic_moments",
    "t2_caps",
]


@dataclass(frozen=True, kw_only=True)
class BoundInputs(T1Inputs):
    """The problem's constants a bound is a function of: the inputs of (T1)
    (:class:`~persafl_np.bounds.theorem.T1Inputs`) and ρ = 2 when the staleness may depend on
    the client (1 otherwise)."""

    rho: int = 1


@dataclass(frozen=True)
class Measurement:
    """The measured left-hand side of (T1) of one instance and the constants of its bound."""

    measured: float
    inputs: BoundInputs


def t2_caps(L: float, tau: int, Q: int) -> tuple[float, float]:
    """The (T2) caps (η_max, a_max) = (1/(16QL), 1/(24 max(1, τ) QL))."""
    return 1.0 / (16.0 * Q * L), 1.0 / (24.0 * max(1, tau) * Q * L)


@runtime_checkable
class Family(Protocol):
    """What :func:`persafl_np.bounds.falsify` searches over.

    ``names``: one name per coordinate of the unit cube; ``continuous``: which of them Nelder–
    Mead may refine (the others — choices of Q, τ, T, … — are held at the incumbent's value);
    ``decode(u)``: the instance (a JSON-able dict) at u; ``measure(instances)``: one
    :class:`Measurement` per instance (the family may vectorize); ``to_dict()``: the family's
    own settings (it is rebuilt by ``family_from_dict``).
    """

    name: str

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def continuous(self) -> tuple[bool, ...]: ...

    def decode(self, u: np.ndarray, step_rule: Callable | None = None) -> dict: ...

    def measure(self, instances: Sequence[dict]) -> list[Measurement]: ...

    def to_dict(self) -> dict: ...


def _choice(u: float, values: Sequence[int]) -> int:
    return int(values[min(int(u * len(values)), len(values) - 1)])


def _log_scale(u: float, lo_exp: float, hi_exp: float, zero_below: float) -> float:
    """0 for u < zero_below, else 10^(lo + (hi − lo)·(u − zero_below)/(1 − zero_below))."""
    if u < zero_below:
        return 0.0
    s = (u - zero_below) / (1.0 - zero_below)
    return 10.0 ** (lo_exp + (hi_exp - lo_exp) * s)


def _fraction(u: float) -> float:
    """A step as a fraction of its cap: 10^(−2(1 − u)) ∈ [0.01, 1] (1 at u = 1)."""
    return 10.0 ** (-2.0 * (1.0 - min(max(u, 0.0), 1.0)))


def _check_choices(values: Any, name: str, lo: int) -> tuple[int, ...]:
    if isinstance(values, int | np.integer) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        raise ValueError(f"{name} must be a non-empty list of integers >= {lo}, got {values!r}")
    return tuple(check_int(v, f"{name} entry", lo) for v in values)


# ---------------------------------------------------------------------------------------------
# Quadratics: exact moments
# ---------------------------------------------------------------------------------------------


def quadratic_moments(
    lam: np.ndarray,
    e0: np.ndarray,
    delta: np.ndarray,
    p: np.ndarray,
    Q: np.ndarray,
    eta: np.ndarray,
    beta: np.ndarray,
    sigma2: np.ndarray,
    dim: np.ndarray,
    pattern: np.ndarray,
    K: np.ndarray,
    T: int,
    client_dependent: bool = False,
) -> np.ndarray:
    """E‖∇F(w^t)‖², t < T, of recursion (T0) on F_i = ½(w − c_i)ᵀ diag(λ) (w − c_i), exactly.

    Shapes (m instances, d coordinates, n clients, P pattern period, Kmax slots):
    lam, e0 (m, d): eigenvalues and w⁰ − c̄; delta (m, n, d): c_i − c̄ (Σ_i p_i δ_i = 0);
    p (m, n): client probabilities (uniform on the instance's n clients, 0 for padding);
    Q, eta, beta, sigma2, dim, K (m,): local steps, steps, σ², the true dimension (the noise is
    N(0, σ²/dim I), as :class:`persafl_np.personalization.AdditiveNoise`), buffer size;
    pattern (m, P, Kmax) int — slot k of step t uses w^{t − min(pattern[t mod P, k], t)} — or,
    with ``client_dependent`` (K must be 1), (m, P, n): client i uses pattern[t mod P, i].

    Per coordinate the local run is linear, y_Q − c_i = (1 − ηλ)^Q (u − c_i) − η Σ_q
    (1 − ηλ)^{Q−1−q} ξ_q, so with e = w − c̄, h = 1 − (1 − ηλ)^Q and k = βh (eq. (TF-1))

        e^{t+1} = e^t − (k/K) Σ_slots (e^{u_slot} − δ_{i_slot}) + ζ_t,  Var ζ_t = ν/K,

    ν = β²η²(σ²/dim) Σ_q (1 − ηλ)^{2q}. The clients are i.i.d. uniform and independent of the past
    (C5), so first and second moments of the window (e^{t−τmax}, …, e^t) follow a closed recursion
    (eq. (TF-2), theory/tightness.md); the window is a ring buffer of τmax + 1 slots.
    Returns G of shape (m, T).
    """
    lam = np.asarray(lam, np.float64)
    m, d = lam.shape
    W = int(pattern.max()) + 1 if pattern.size else 1
    Qf = np.asarray(Q, np.float64)[:, None]
    r = 1.0 - np.asarray(eta)[:, None] * lam                       # (m, d)
    h = 1.0 - r ** Qf
    k = np.asarray(beta)[:, None] * h                              # (m, d)
    r2 = r * r
    geo = np.where(np.abs(1.0 - r2) > 1e-12, (1.0 - r2 ** Qf) / np.where(
        np.abs(1.0 - r2) > 1e-12, 1.0 - r2, 1.0), Qf)               # Σ_q r^{2q}
    nu = (np.asarray(beta) ** 2 * np.asarray(eta) ** 2 * np.asarray(sigma2)
          / np.asarray(dim, np.float64))[:, None] * geo             # (m, d)
    Kf = np.asarray(K, np.float64)[:, None]
    lam2 = lam * lam
    # ring buffers: C[m, d, a, b] = E[e^{s_a} e^{s_b}], mu[m, d, a] = E e^{s_a}
    C = np.broadcast_to((e0 * e0)[:, :, None, None], (m, d, W, W)).copy()
    mu = np.broadcast_to(e0[:, :, None], (m, d, W)).copy()
    P = pattern.shape[1]
    Kmax = pattern.shape[2]
    slot_on = (np.arange(Kmax)[None, :] < np.asarray(K)[:, None]).astype(np.float64)  # (m, Kmax)
    ii = np.arange(m)[:, None]
    jj = np.arange(d)[None, :]
    v_het = np.einsum("mn,mnd->md", p, delta * delta)              # Σ_i p_i δ_i² per coordinate
    G = np.empty((m, T))
    for t in range(T):
        cur = t % W
        G[:, t] = np.einsum("md,md->m", lam2, C[:, :, cur, cur])
        if t == T - 1:
            break
        taus = np.minimum(pattern[:, t % P, :], t)                 # (m, Kmax) or (m, n)
        src = (t - taus) % W
        row0 = C[:, :, cur, :]                                     # (m, d, W) E[e^t s_l]
        if not client_dependent:
            # E[Z_k s_l] = C[src_k, l]; E[Z_k Z_k'] = C[src_k, src_k'] + [k = k'] v_het
            rows = C[ii[:, :, None], jj[:, :, None], src[:, None, :], :]   # (m, d, Kmax, W)
            w_slot = slot_on[:, None, :] / Kf[:, :, None]                   # (m, 1, Kmax)
            zrow = np.einsum("mdkw,mok->mdw", rows, w_slot)                 # Σ_k (1/K) E[Z_k s]
            zz_idx_a = src[:, :, None]
            zz_idx_b = src[:, None, :]
            CC = C[ii[:, :, None, None], jj[:, :, None, None], zz_idx_a[:, None],
                   zz_idx_b[:, None]]                                       # (m, d, Kmax, Kmax)
            zz = np.einsum("mdab,ma,mb->md", CC, slot_on, slot_on) / (Kf * Kf) + v_het / Kf
            x_s = row0 - k[:, :, None] * zrow                               # E[x s_l]
            xx = (C[:, :, cur, cur] - 2.0 * k * zrow[:, :, cur] + k * k * zz + nu / Kf)
            x_mu = None
        else:
            # K = 1, client i uses src_i (Σ_i p_i δ_i = 0): E Z = Σ p_i μ_{src_i};
            # E[Z s_l] = Σ p_i C[src_i, l]; E Z² = Σ p_i (C[src_i, src_i] − 2 δ_i μ_{src_i} + δ_i²)
            rows = C[ii[:, :, None], jj[:, :, None], src[:, None, :], :]   # (m, d, n, W)
            mus = mu[ii[:, :, None], jj[:, :, None], src[:, None, :]]      # (m, d, n)
            diag = C[ii[:, :, None], jj[:, :, None], src[:, None, :], src[:, None, :]]
            dT = np.transpose(delta, (0, 2, 1))                             # (m, d, n)
            zrow = np.einsum("mdnw,mn->mdw", rows, p)
            zz = np.einsum("mn,mdn->md", p, diag - 2.0 * dT * mus + dT * dT)
            x_s = row0 - k[:, :, None] * zrow
            xx = C[:, :, cur, cur] - 2.0 * k * zrow[:, :, cur] + k * k * zz + nu
            x_mu = mu[:, :, cur] - k * np.einsum("mn,mdn->md", p, mus)
        new = (t + 1) % W
        C[:, :, new, :] = x_s
        C[:, :, :, new] = x_s
        C[:, :, new, new] = xx
        if x_mu is not None:
            mu[:, :, new] = x_mu
    return G


@dataclass(frozen=True)
class QuadraticFamily:
    """Shared-Hessian quadratics, measured exactly by :func:`quadratic_moments` (quadS of the
    D4 audit, generalized). L = 1 (the ratio is invariant under F → cF, w → sw).

    Choices (lists of integers): n clients, d dimensions, Q, τ, T, K. ``period``: the length P of
    the cyclic staleness pattern, whose entries are searched; ``client_dependent``: client i has
    its own pattern (then K must be 1; ρ = 2 in the bound inputs). ``noise``, ``heterogeneity``:
    whether σ² and γ² may be non-zero; ``fixed_steps``: steps at the caps (not searched).
    Coordinates: choices, the two step fractions (of the
    caps, log scale), the spectrum, w⁰ − c̄, the scales of w⁰ − c̄ / c_i / σ, the centres, the
    pattern.
    """

    n: tuple[int, ...] = (1, 2, 5)
    d: tuple[int, ...] = (1, 2)
    Q: tuple[int, ...] = (1, 2, 5, 20)
    tau: tuple[int, ...] = (0, 1, 5)
    T: tuple[int, ...] = (10, 50, 200, 2000)
    K: tuple[int, ...] = (1,)
    period: int = 4
    client_dependent: bool = False
    noise: bool = True
    heterogeneity: bool = True
    fixed_steps: bool = False
    caps: Callable[[float, int, int], tuple[float, float]] = t2_caps
    name: str = "quadratic"

    def __post_init__(self) -> None:
        for f, lo in (("n", 1), ("d", 1), ("Q", 1), ("tau", 0), ("T", 1), ("K", 1)):
            object.__setattr__(self, f, _check_choices(getattr(self, f), f"family.{f}", lo))
        check_int(self.period, "family.period", 1)
        if self.client_dependent and max(self.K) > 1:
            raise ValueError("family.K must be [1] when family.client_dependent is true "
                             "(client-dependent staleness is modelled for K = 1 only)")

    # the cube -------------------------------------------------------------------------------
    @property
    def _pat_cols(self) -> int:
        return max(self.n) if self.client_dependent else max(self.K)

    @property
    def names(self) -> tuple[str, ...]:
        dm, nm = max(self.d), max(self.n)
        return (("n", "d", "Q", "tau", "T", "K", "eta_frac", "a_frac")
                + tuple(f"lam{j}" for j in range(1, dm))
                + tuple(f"e0_{j}" for j in range(dm))
                + ("scale_e0", "scale_het", "scale_noise")
                + tuple(f"c{i}_{j}" for i in range(nm) for j in range(dm))
                + tuple(f"pat{s}_{k}" for s in range(self.period) for k in range(self._pat_cols)))

    @property
    def continuous(self) -> tuple[bool, ...]:
        nm = self.names
        return tuple(not (x in ("n", "d", "Q", "tau", "T", "K") or x.startswith("pat")) for x in nm)

    def decode(self, u: np.ndarray, step_rule: Callable | None = None) -> dict:
        """The instance at u ∈ [0, 1]^p: a dict with everything :meth:`measure` needs."""
        u = np.clip(np.asarray(u, np.float64), 0.0, 1.0)
        it = iter(u.tolist())
        n, d = _choice(next(it), self.n), _choice(next(it), self.d)
        Q, tau, T, K = (_choice(next(it), self.Q), _choice(next(it), self.tau),
                        _choice(next(it), self.T), _choice(next(it), self.K))
        f_eta, f_a = _fraction(next(it)), _fraction(next(it))
        if self.fixed_steps:
            f_eta = f_a = 1.0
        dm, nm = max(self.d), max(self.n)
        lam = [1.0] + [10.0 ** (-3.0 * next(it)) for _ in range(1, dm)]
        e0 = [2.0 * next(it) - 1.0 for _ in range(dm)]
        s_e0 = _log_scale(next(it), -3.0, 1.0, 0.05)
        s_het = _log_scale(next(it), -3.0, 1.0, 0.25) if self.heterogeneity else 0.0
        s_noise = _log_scale(next(it), -3.0, 1.0, 0.25) if self.noise else 0.0
        c = np.array([[2.0 * next(it) - 1.0 for _ in range(dm)] for _ in range(nm)])
        pat = np.array([[next(it) for _ in range(self._pat_cols)] for _ in range(self.period)])
        lam, e0, c = lam[:d], np.array(e0[:d]), c[:n, :d]
        nrm = float(np.linalg.norm(e0))
        e0 = e0 / nrm * s_e0 if nrm > 0 else np.zeros(d)
        c = (c - c.mean(axis=0)) * s_het if n > 1 else np.zeros((1, d))
        if not np.any(e0) and not np.any(c) and s_noise == 0.0:
            e0 = np.eye(d)[0]                                       # never the zero instance
        cols = n if self.client_dependent else K
        pattern = np.minimum((pat[:, :cols] * (tau + 1)).astype(int), tau).tolist()
        eta_max, a_max = self.caps(1.0, tau, Q)
        eta, a = f_eta * eta_max, f_a * a_max
        inst = {"family": self.name, "n": n, "d": d, "Q": Q, "tau": tau, "T": T, "K": K,
                "lam": list(map(float, lam)), "w0_minus_cbar": e0.tolist(),
                "centers": c.tolist(), "sigma": s_noise, "eta": eta, "beta": a / eta,
                "pattern": pattern, "client_dependent": self.client_dependent}
        if step_rule is not None:
            inst["eta"], inst["beta"] = map(float, step_rule(_quad_inputs(inst, 1.0, 1.0)))
        return inst

    def measure(self, instances: Sequence[dict]) -> list[Measurement]:
        """Exact (1/T) Σ E‖∇F(w^t)‖² for every instance, in one vectorized recursion."""
        if not instances:
            return []
        cd = bool(instances[0].get("client_dependent", False))
        if any(bool(x.get("client_dependent", False)) != cd for x in instances):
            raise ValueError("instances: mixed client_dependent settings in one batch")
        m = len(instances)
        dm = max(x["d"] for x in instances)
        nm = max(x["n"] for x in instances)
        km = max(len(x["pattern"][0]) for x in instances)
        P = max(len(x["pattern"]) for x in instances)
        Tm = max(x["T"] for x in instances)
        lam = np.zeros((m, dm))
        e0 = np.zeros((m, dm))
        delta = np.zeros((m, nm, dm))
        p = np.zeros((m, nm))
        pat = np.zeros((m, P, km), dtype=np.int64)
        for r, x in enumerate(instances):
            d, n = x["d"], x["n"]
            lam[r, :d] = x["lam"]
            e0[r, :d] = x["w0_minus_cbar"]
            delta[r, :n, :d] = x["centers"]
            p[r, :n] = 1.0 / n
            xp = np.asarray(x["pattern"], dtype=np.int64)
            rep = np.resize(np.arange(xp.shape[0]), P)             # cyclic: extend by repetition
            if P % xp.shape[0]:
                raise ValueError("instances: pattern periods in one batch must divide each other")
            pat[r, :, :xp.shape[1]] = xp[rep]
        f = np.array
        G = quadratic_moments(
            lam, e0, delta, p, f([x["Q"] for x in instances]), f([x["eta"] for x in instances]),
            f([x["beta"] for x in instances]), f([x["sigma"] ** 2 for x in instances]),
            f([x["d"] for x in instances]), pat, f([x["K"] for x in instances]), Tm, cd)
        csum = np.cumsum(G, axis=1)
        out = []
        for r, x in enumerate(instances):
            meas = float(csum[r, x["T"] - 1] / x["T"])
            out.append(Measurement(meas, _quad_inputs(x)))
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "n": list(self.n), "d": list(self.d), "Q": list(self.Q),
                "tau": list(self.tau), "T": list(self.T), "K": list(self.K),
                "period": self.period, "client_dependent": self.client_dependent,
                "noise": self.noise, "heterogeneity": self.heterogeneity,
                "fixed_steps": self.fixed_steps}


def _quad_inputs(x: dict, eta: float | None = None, beta: float | None = None) -> BoundInputs:
    lam = np.asarray(x["lam"], np.float64)
    e0 = np.asarray(x["w0_minus_cbar"], np.float64)
    c = np.asarray(x["centers"], np.float64).reshape(x["n"], x["d"])
    gamma2 = float(np.mean(np.sum((c * lam[None, :]) ** 2, axis=1)))
    return BoundInputs(
        L=float(lam.max()), sigma2=float(x["sigma"]) ** 2, gamma2=gamma2,
        delta_f=float(0.5 * np.sum(lam * e0 * e0)), T=int(x["T"]), tau=int(x["tau"]),
        Q=int(x["Q"]), eta=float(x["eta"] if eta is None else eta),
        beta=float(x["beta"] if beta is None else beta), K=int(x["K"]),
        rho=2 if x.get("client_dependent") else 1)


def quadratic_problem(instance: dict, m: int | None = None) -> tuple[Any, Any, Any]:
    """(Problem, Algorithm, TheoremMode) that run ``instance`` in the simulator.

    Client i gets X = √m·diag(√λ)-rows (so XᵀX/m = diag(λ)) and y_i = X c_i, hence
    F_i = ½(w − c_i)ᵀ diag(λ)(w − c_i) + const; w⁰ = c̄ + (w⁰ − c̄) with c̄ = 0. Client-dependent
    patterns have no simulator counterpart (``TheoremMode`` patterns are per arrival).
    """
    from persafl_np.algorithms import Algorithm, fedbuff, persafl
    from persafl_np.models import LeastSquares
    from persafl_np.personalization import AdditiveNoise, Plain
    from persafl_np.sim import Problem, TheoremMode

    if instance.get("client_dependent"):
        raise ValueError("instance: client-dependent staleness patterns cannot be run by the "
                         "simulator (TheoremMode patterns are per arrival); use the closed form")
    d, n = instance["d"], instance["n"]
    m = d if m is None else m
    X = np.zeros((d, d))
    X[np.arange(d), np.arange(d)] = np.sqrt(np.asarray(instance["lam"]) * d)
    c = np.asarray(instance["centers"], np.float64).reshape(n, d)
    clients = [(X.copy(), X @ c[i]) for i in range(n)]
    oracle = Plain() if instance["sigma"] == 0 else AdditiveNoise(Plain(), instance["sigma"])
    w0 = np.asarray(instance["w0_minus_cbar"], np.float64)
    problem = Problem.build(LeastSquares(), oracle, clients, w0=w0)
    K = int(instance["K"])
    rule = persafl(instance["beta"]) if K == 1 else fedbuff(instance["beta"], K)
    alg = Algorithm(rule, Q=int(instance["Q"]), eta=float(instance["eta"]))
    flat = tuple(int(v) for row in instance["pattern"] for v in row)
    return problem, alg, TheoremMode(tau=int(instance["tau"]), policy=flat)


# ---------------------------------------------------------------------------------------------
# Robust regression (nonconvex): the simulator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobustFamily:
    """Robust (Geman–McClure) regression on ``robust_family`` data, run by the simulator in
    theorem mode (C5 holds) with a cyclic staleness pattern; constants are the bounds of eq.
    (AS-4), so every instance satisfies the assumptions of (T1) and measured/bound is a valid
    test. The instance is a ``SimConfig`` dict (``persafl bound CONFIG.toml --run`` reruns it).
    ``seeds``: how many arrival/noise streams the measured value averages over.
    """

    n: tuple[int, ...] = (2, 3, 5)
    d: tuple[int, ...] = (1, 2, 5)
    Q: tuple[int, ...] = (1, 2, 5)
    tau: tuple[int, ...] = (0, 1, 2)
    T: tuple[int, ...] = (20, 50, 100)
    n_samples: int = 12
    data_seeds: int = 8
    period: int = 4
    seeds: int = 2
    caps: Callable[[float, int, int], tuple[float, float]] = t2_caps
    name: str = "robust"

    def __post_init__(self) -> None:
        for f, lo in (("n", 1), ("d", 1), ("Q", 1), ("tau", 0), ("T", 1)):
            object.__setattr__(self, f, _check_choices(getattr(self, f), f"family.{f}", lo))
        check_int(self.n_samples, "family.n_samples", 1)
        check_int(self.data_seeds, "family.data_seeds", 1)
        check_int(self.period, "family.period", 1)
        check_int(self.seeds, "family.seeds", 1)

    @property
    def names(self) -> tuple[str, ...]:
        return (("n", "d", "Q", "tau", "T", "data_seed", "eta_frac", "a_frac", "shift",
                 "data_noise", "scale_noise")
                + tuple(f"pat{s}" for s in range(self.period)))

    @property
    def continuous(self) -> tuple[bool, ...]:
        disc = {"n", "d", "Q", "tau", "T", "data_seed"}
        return tuple(not (x in disc or x.startswith("pat")) for x in self.names)

    def decode(self, u: np.ndarray, step_rule: Callable | None = None) -> dict:
        u = np.clip(np.asarray(u, np.float64), 0.0, 1.0).tolist()
        n, d = _choice(u[0], self.n), _choice(u[1], self.d)
        Q, tau, T = _choice(u[2], self.Q), _choice(u[3], self.tau), _choice(u[4], self.T)
        seed = _choice(u[5], range(self.data_seeds))
        cfg = {"seed": seed, "T": T, "eval_every": 1,
               "data": {"name": "robust_family", "n_clients": n, "n_features": d,
                        "n_samples": self.n_samples, "shift": _log_scale(u[8], -2, 1, 0.1),
                        "noise": _log_scale(u[9], -2, 0, 0.1)},
               "model": {"name": "robust"},
               "oracle": {"name": "plain", "noise_sigma": _log_scale(u[10], -2, 0.5, 0.3)},
               "arrivals": {"mode": "theorem", "tau": tau,
                            "policy": [min(int(v * (tau + 1)), tau) for v in u[11:]]}}
        if step_rule is not None:
            raise ValueError("family: the robust family takes bounds without a step rule "
                             "(its steps are fractions of the caps, which need L_F)")
        # steps need L_F (hence the data), so they are kept as fractions of the caps here
        return {"family": self.name, "config": cfg, "Q": Q, "eta_frac": _fraction(u[6]),
                "a_frac": _fraction(u[7]), "seeds": self.seeds}

    def measure(self, instances: Sequence[dict]) -> list[Measurement]:
        return [_robust_measure(x, self.caps) for x in instances]

    def to_dict(self) -> dict:
        return {"name": self.name, "n": list(self.n), "d": list(self.d), "Q": list(self.Q),
                "tau": list(self.tau), "T": list(self.T), "n_samples": self.n_samples,
                "data_seeds": self.data_seeds, "period": self.period, "seeds": self.seeds}


def robust_config(instance: dict, caps: Callable = t2_caps) -> dict:
    """The full ``SimConfig`` dict of a robust instance: steps at their fractions of the caps
    (which need L_F, hence the data). Runnable by ``persafl run`` / ``persafl bound --run``."""
    from persafl_np.bounds.constants import robust_constants
    from persafl_np.config import SimConfig

    if "algorithm" in instance["config"]:
        return instance["config"]
    cfg = dict(instance["config"])
    cfg["algorithm"] = {"name": "persafl", "Q": instance["Q"], "eta": 1.0, "beta": 1.0}
    sc = SimConfig.from_dict(cfg)
    data = sc.data.build(sc.seed)
    model = sc.model.build(None)
    from persafl_np.sim import Problem

    prob = Problem.build(model, sc.oracle.build(), data, seed=sc.seed)
    L = robust_constants(model, data, sc.oracle.build(), prob.w0).L
    tau = int(cfg["arrivals"]["tau"])
    eta_max, a_max = caps(L, tau, instance["Q"])
    eta = instance["eta_frac"] * eta_max
    cfg["algorithm"] = {"name": "persafl", "Q": instance["Q"], "eta": eta,
                        "beta": instance["a_frac"] * a_max / eta}
    return cfg


def _robust_measure(x: dict, caps: Callable) -> Measurement:
    from persafl_np.bounds.check import check_bound
    from persafl_np.bounds.report import instance_from_config
    from persafl_np.config import SimConfig

    sc = SimConfig.from_dict(robust_config(x, caps))
    inst = instance_from_config(sc, n_seeds=int(x["seeds"]))
    chk = check_bound(inst.problem, inst.algorithm, inst.arrivals, T=inst.T,
                      tau=int(sc.arrivals.tau), seeds=inst.seeds)
    c = chk.constants
    sigma2 = c.sigma2 if math.isfinite(c.sigma2) else math.inf
    return Measurement(chk.measured_mean, BoundInputs(
        L=c.L, sigma2=sigma2, gamma2=c.gamma2, delta_f=c.delta_f, T=sc.T,
        tau=int(sc.arrivals.tau), Q=sc.algorithm.Q, eta=sc.algorithm.eta,
        beta=sc.algorithm.beta, K=1, rho=1))
