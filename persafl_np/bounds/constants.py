"""Problem constants for the bound (T1) of theory/async_theorem.md: L_F, F*, Δ_F, γ², σ².

Two families (theory/assumptions.md §2), chosen by the model's declared constants
(:func:`persafl_np.bounds.check.problem_constants`), never by its class:

* **Quadratics with a shared Hessian** (ρ = 0 on every client; shifted least squares, shared
  Hessian A, centres c_i, ``persafl_np.data.shifted_least_squares``): every variant is again a
  shared-Hessian quadratic F_i(w) = ½(w − c_i)ᵀH_F(w − c_i) + k_i with
  H_F = A (AL), A(I − αA)² (MAML), λA(A + λI)⁻¹ (ME) — eq. (AS-1) — so L_F, F*, Δ_F and γ²
  are *exact* (:func:`shifted_ls_constants`).
* **Nonnegative losses with bounded gradients** (robust regression, logistic and softmax
  regression with ℓ₂ = 0; convex or not): only *bounds* are available, from the model's
  ``smoothness``/``hessian_lipschitz``/``grad_bound`` (:func:`robust_constants`): L_F from the
  oracle's ``constants``, γ² ≤ (1/n)Σ_i B_{F,i}² (eq. (AS-4)), F* ≥ 0 so Δ_F ≤ F(w⁰).

Plus two estimators that are *not* bounds: :func:`estimate_sigma2` (Monte Carlo E‖g − ∇F_i‖² at
one point, with a standard error) and :func:`probe_gamma2` (max of the heterogeneity over probe
points: a LOWER estimate of the supremum that (C3) needs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from persafl_np.backend import to_numpy
from persafl_np.models.base import Model
from persafl_np.personalization import Oracle

__all__ = [
    "BoundOracle",
    "Gamma2Probe",
    "ProblemConstants",
    "Sigma2Estimate",
    "estimate_sigma2",
    "oracle_noise_sigma2",
    "personalized_hessian",
    "probe_gamma2",
    "robust_constants",
    "shifted_ls_constants",
]


@dataclass(frozen=True)
class ProblemConstants:
    """Constants of F = (1/n)Σ F_i that the bound (T1) takes.

    Attributes
    ----------
    L: L_F (exact, or an upper bound when ``exact`` is False).
    F_star: F* = inf F (exact, or a lower bound when ``exact`` is False).
    F0: F(w⁰).
    delta_f: Δ_F = F(w⁰) − F* (exact, or an upper bound).
    gamma2: γ² of (C3) (exact and attained at every w, or an upper bound).
    sigma2: σ² of (C2) for the oracle: exact for ``AdditiveNoise`` and full-batch oracles
        (0); ``nan`` when no global bound is known (mini-batch oracles — use
        :func:`estimate_sigma2` for a local estimate).
    variant: "AL", "MAML" or "ME".
    exact: True when L, F*, Δ_F, γ² are exact values, False when they are bounds.
    note: where each number comes from.
    """

    L: float
    F_star: float
    F0: float
    delta_f: float
    gamma2: float
    sigma2: float
    variant: str
    exact: bool
    note: str


@runtime_checkable
class BoundOracle(Protocol):
    """What the bounds need from an oracle. Each oracle class answers for itself, so a new
    oracle needs these methods and no edit here (``Plain``, ``MAML``, ``MoreauEnvelope``,
    ``AdditiveNoise`` implement them)."""

    def bound_variant(self) -> str:
        """"AL" | "MAML" | "ME"; raises ``ValueError`` when the oracle is biased (no (C2))."""
        ...

    def personalized_hessian(self, A: Any) -> Any:
        """H_F of eq. (AS-1) for f_i = ½(w − c_i)ᵀA(w − c_i)."""
        ...

    def gradient_bound_factor(self, L: float) -> float:
        """‖∇F_i‖ ≤ factor·B_i, eq. (AS-4)."""
        ...

    def noise_sigma2(self) -> float:
        """σ² the oracle adds on top of its full-batch gradient (0 if none)."""
        ...


def _bound_oracle(oracle: Oracle) -> BoundOracle:
    if not isinstance(oracle, BoundOracle):
        raise ValueError(
            f"oracle {type(oracle).__name__} does not provide the bound constants "
            "(bound_variant, personalized_hessian, gradient_bound_factor, noise_sigma2)"
        )
    return oracle


def _variant(oracle: Oracle) -> str:
    return _bound_oracle(oracle).bound_variant()


def oracle_noise_sigma2(oracle: Oracle, batch_size: int | None = None) -> float:
    """σ² of (C2) when it is known exactly: σ² for ``AdditiveNoise``, 0 for full batches.

    Mini-batch oracles (``batch_size`` not None) return ``nan``: their variance depends on w
    (for least squares it grows like ‖w − c_i‖², theory/assumptions.md §2).
    """
    added = _bound_oracle(oracle).noise_sigma2()
    if added > 0:
        return float(added)
    return 0.0 if batch_size is None else math.nan


def personalized_hessian(A: Any, oracle: Oracle) -> np.ndarray:
    """H_F of eq. (AS-1): A (AL), A(I − αA)² (MAML), λA(A + λI)⁻¹ (ME), symmetrized.

    The formula comes from the oracle's own ``personalized_hessian``.
    """
    A = np.asarray(to_numpy(A), dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.all(np.isfinite(A)):
        raise ValueError(f"A must be a finite square matrix, got shape {A.shape}")
    _variant(oracle)
    H = np.asarray(_bound_oracle(oracle).personalized_hessian(A), dtype=np.float64)
    return 0.5 * (H + H.T)


def _quadratic_min(H: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, float]:
    """argmin and min of F(w) = (1/n)Σ ½(w − c_i)ᵀH(w − c_i) for H ⪰ 0, possibly singular.

    ∇F(w) = H(w − c̄) = 0 is consistent (H c̄ is in the range of H), so the least-squares
    solution of Hw = Hc̄ is an exact minimizer even when H is singular.
    """
    cbar = centers.mean(axis=0)
    w_star = np.linalg.lstsq(H, H @ cbar, rcond=None)[0]
    return w_star, _quadratic_value(H, centers, w_star)


def _quadratic_value(H: np.ndarray, centers: np.ndarray, w: np.ndarray) -> float:
    D = w[None, :] - centers
    return float(0.5 * np.mean(np.einsum("ij,jk,ik->i", D, H, D)))


def shifted_ls_constants(
    problem: Any, oracle: Oracle, w0: Any, *, batch_size: int | None = None
) -> ProblemConstants:
    """Exact L_F, F*, Δ_F, γ² for the shifted least-squares family (eqs. (AS-1)–(AS-3)).

    ``problem`` needs ``.A`` (d × d, ⪰ 0) and ``.centers`` (n × d), as returned by
    ``persafl_np.data.shifted_least_squares`` or :func:`persafl_np.bounds.check.quadratic_design`,
    and may have ``.offsets`` (the k_i = min f_i, added to F* and F(w⁰); absent or None: 0).
    L_F = λ_max(H_F); F* = min F computed by least squares (A may be singular);
    γ² = (1/n)Σ‖H_F(c_i − c̄)‖², attained at every w.
    """
    A = np.asarray(to_numpy(problem.A), dtype=np.float64)
    centers = np.asarray(to_numpy(problem.centers), dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != A.shape[0]:
        raise ValueError(f"problem.centers must have shape (n, {A.shape[0]}), got {centers.shape}")
    w0 = np.asarray(to_numpy(w0), dtype=np.float64)
    if w0.shape != (A.shape[0],) or not np.all(np.isfinite(w0)):
        raise ValueError(f"w0 must be a finite vector of shape ({A.shape[0]},), got {w0.shape}")
    if np.linalg.eigvalsh(0.5 * (A + A.T))[0] < -1e-12 * max(1.0, float(np.abs(A).max())):
        raise ValueError("problem.A must be positive semidefinite (a least-squares Hessian)")
    variant = _variant(oracle)
    H = personalized_hessian(A, oracle)
    L = float(np.abs(np.linalg.eigvalsh(H)).max())
    offsets = getattr(problem, "offsets", None)
    k = 0.0 if offsets is None else math.fsum(np.asarray(offsets, dtype=np.float64)) / len(offsets)
    _, F_star = _quadratic_min(H, centers)
    F_star += k
    F0 = _quadratic_value(H, centers, w0) + k
    G = (centers - centers.mean(axis=0)) @ H
    gamma2 = float(np.mean(np.sum(G * G, axis=1)))
    return ProblemConstants(
        L=L,
        F_star=F_star,
        F0=F0,
        delta_f=max(F0 - F_star, 0.0),
        gamma2=gamma2,
        sigma2=oracle_noise_sigma2(oracle, batch_size),
        variant=variant,
        exact=True,
        note=(f"quadratics with a shared Hessian, {variant}: exact "
              "(theory/assumptions.md eq. (AS-1)-(AS-3))"),
    )


def robust_constants(
    model: Model, dataset: Any, oracle: Oracle, w0: Any, *, batch_size: int | None = None
) -> ProblemConstants:
    """Bounds for a nonnegative loss with bounded gradients (robust, logistic or softmax
    regression), eq. (AS-4).

    With L_i, ρ_i, B_i the model's constants on client i's training data:
    L_F = oracle.constants(max L_i, max ρ_i, max B_i).L_F; the gradient of F_i is bounded by
    B_{F,i} = B_i (AL, ME: ∇F_i(w) = ∇f_i(θ̂)) or (1 + αL_i)B_i (MAML), so
    γ² ≤ (1/n)Σ_i B_{F,i}²; F* ≥ 0 because the loss is ≥ 0, so Δ_F ≤ F(w⁰).
    Raises ``ValueError`` if some B_i is infinite (then no global γ² is known).
    """
    variant = _variant(oracle)
    bo = _bound_oracle(oracle)
    clients = dataset.clients
    Ls, rhos, Bs = [], [], []
    for c in clients:
        Ls.append(float(model.smoothness(c.X_train, c.y_train)))
        rhos.append(float(model.hessian_lipschitz(c.X_train, c.y_train)))
        Bs.append(float(model.grad_bound(c.X_train, c.y_train)))
    if not all(math.isfinite(b) for b in Bs):
        raise ValueError(
            "model.grad_bound is infinite on some client: no global gamma2 bound is known "
            "for this model (use probe_gamma2 for a lower estimate)"
        )
    L_max, rho_max, B_max = max(Ls), max(rhos), max(Bs)
    L_F = float(oracle.constants(L_max, rho_max, B_max).L_F)
    BF = [bo.gradient_bound_factor(Li) * Bi for Li, Bi in zip(Ls, Bs, strict=True)]
    gamma2 = float(np.mean(np.square(BF)))
    w0n = np.asarray(to_numpy(w0), dtype=np.float64)
    F0 = float(np.mean([oracle.value(model, w0n, c.X_train, c.y_train) for c in clients]))
    return ProblemConstants(
        L=L_F,
        F_star=0.0,
        F0=F0,
        delta_f=F0,
        gamma2=gamma2,
        sigma2=oracle_noise_sigma2(oracle, batch_size),
        variant=variant,
        exact=False,
        note=(
            f"nonnegative bounded-gradient loss ({type(model).__name__}), {variant}: L_F, "
            "gamma2, delta_f are upper bounds and F* = 0 a lower bound "
            "(theory/assumptions.md eq. (AS-4))"
        ),
    )


@dataclass(frozen=True)
class Sigma2Estimate:
    """Monte-Carlo estimate of (1/n)Σ_i E‖g_i(w) − ∇F_i(w)‖² at ONE point w.

    Not a bound: (C2) needs the supremum over w. ``stderr`` is the standard error over the
    ``n_draws`` independent rounds (each round averages one draw per client).
    """

    sigma2: float
    stderr: float
    per_client: tuple[float, ...]
    n_draws: int


def estimate_sigma2(
    oracle: Oracle,
    model: Model,
    dataset: Any,
    w: Any,
    *,
    batch_size: int | None,
    n_draws: int = 200,
    seed: int | np.random.SeedSequence = 0,
) -> Sigma2Estimate:
    """Estimate the oracle variance at w by repeated ``oracle.step`` calls (eq. (AS-5))."""
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 2:
        raise ValueError(f"n_draws must be an integer >= 2, got {n_draws!r}")
    rng = np.random.default_rng(seed)
    clients = dataset.clients
    errs = np.empty((n_draws, len(clients)))
    for i, c in enumerate(clients):
        full = to_numpy(oracle.grad(model, w, c.X_train, c.y_train))
        for r in range(n_draws):
            g = to_numpy(oracle.step(model, w, c.X_train, c.y_train, rng, batch_size).g)
            errs[r, i] = float(np.sum((g - full) ** 2))
    rounds = errs.mean(axis=1)
    return Sigma2Estimate(
        sigma2=float(rounds.mean()),
        stderr=float(rounds.std(ddof=1) / math.sqrt(n_draws)),
        per_client=tuple(float(v) for v in errs.mean(axis=0)),
        n_draws=n_draws,
    )


@dataclass(frozen=True)
class Gamma2Probe:
    """Heterogeneity (1/n)Σ‖∇F_i(w) − ∇F(w)‖² at probe points.

    ``lower_estimate`` = max over the probes: a LOWER estimate of sup_w, which is what (C3)
    needs. Never use it as γ² in a bound without a proof that the supremum is attained.
    """

    lower_estimate: float
    values: tuple[float, ...]
    argmax: int


def probe_gamma2(oracle: Oracle, model: Model, dataset: Any, points: Any) -> Gamma2Probe:
    """Evaluate the heterogeneity of (C3) at each row of ``points`` (shape (k, d))."""
    P = np.asarray(to_numpy(points), dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 1:
        raise ValueError(f"points must be a (k, d) array with k >= 1, got shape {P.shape}")
    vals = []
    for w in P:
        G = np.stack(
            [to_numpy(oracle.grad(model, w, c.X_train, c.y_train)) for c in dataset.clients]
        )
        vals.append(float(np.mean(np.sum((G - G.mean(axis=0)) ** 2, axis=1))))
    k = int(np.argmax(vals))
    return Gamma2Probe(lower_estimate=vals[k], values=tuple(vals), argmax=k)
