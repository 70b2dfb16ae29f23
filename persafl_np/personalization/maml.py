"""MAML personalization: F_i(w) = f_i(w − α∇f_i(w))  (theory/personalization.md §2).

Gradient (eq. (MAML-2)):  ∇F_i(w) = (I − α∇²f_i(w)) ∇f_i(w − α∇f_i(w)).

Three ways to apply the Hessian factor (``hessian=``):

* ``"exact"``: the model's analytic ``hvp`` (never a dense Hessian, never a finite difference).
* ``"hessian_free"``: a central difference of two gradients along v/‖v‖ with step ``hf_delta``
  (eq. (MAML-4)); error ≤ α‖v‖(ρδ/2 + ε_g/δ), eq. (MAML-5).
* ``"first_order"``: drop the Hessian term, g = ∇f_i(w − α∇f_i(w)) (eq. (MAML-6)).

Stochastic estimator (eq. (MAML-3), theory/brief_results.md (B1)): three *independent* mini-batches
D, D′, D″ drawn one after the other from the client's ``rng`` (each of ``batch_size`` distinct
samples; the three sets may overlap — they are independent draws, not a partition;
``first_order`` draws only D and D′, and no batch is drawn at all for ``batch_size=None``):

    g = (I − α∇²f_i(y; D″)) ∇f_i(y − α∇f_i(y; D); D′).

With ``alpha == 0`` the oracle *is* :class:`~persafl_np.personalization.plain.Plain`, draw for draw
(one batch, one gradient), so MAML(0) reproduces an AL run bit for bit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from persafl_np.backend import array_namespace, fast_namespace, take_rows
from persafl_np.models.base import Model
from persafl_np.parameters import Param, validate_fields
from persafl_np.personalization.base import OracleStep, PersonalizedConstants, sample_batch
from persafl_np.personalization.cohort import ManyStep

__all__ = ["DEFAULT_HF_DELTA", "HESSIAN_MODES", "MAML", "central_hvp_many"]

#: Accepted values of ``MAML(hessian=...)``.
HESSIAN_MODES = ("exact", "hessian_free", "first_order")

#: Default perturbation length of the Hessian-free difference (theory/personalization.md,
#: eq. (MAML-5)): balances the O(δ²) truncation of a smooth loss against the ε_mach/δ rounding
#: of two float64 gradients (δ ≈ ε_mach^{1/3} ≈ 6e-6), giving ~1e-10 relative error in Hv.
DEFAULT_HF_DELTA = 1e-5


def _norm(xp: Any, v: Any) -> float:
    return float(xp.sqrt(xp.sum(v * v)))


def _minus_alpha_times(A: Any, alpha: float, B: Any) -> Any:
    """A − α·B, on NumPy written into the fresh product α·B (the same two roundings as the
    expression, one (C, p) temporary fewer: the stacked step allocates nothing else)."""
    if type(B) is np.ndarray and type(A) is np.ndarray:
        t = np.multiply(B, alpha)
        return np.subtract(A, t, out=t)
    return A - alpha * B


def central_hvp(model: Model, w: Any, v: Any, X: Any, y: Any, delta: float) -> Any:
    """Hessian-free ∇²f(w)v by a central gradient difference along u = v/‖v‖ (eq. (MAML-4)).

    Returns ‖v‖·[∇f(w + δu) − ∇f(w − δu)]/(2δ); exactly 0 when v = 0. Error bound: eq. (MAML-5).
    """
    xp = array_namespace(w, v)
    nv = _norm(xp, v)
    if nv == 0.0:
        return xp.zeros_like(v)
    u = v / nv
    return (model.grad(w + delta * u, X, y) - model.grad(w - delta * u, X, y)) * (nv / (2 * delta))


def central_hvp_many(kern: Any, W: Any, V: Any, X: Any, y: Any, mask: Any, delta: float) -> Any:
    """:func:`central_hvp` row by row for a cohort (eq. (MAML-4)); rows with V[c] = 0 give 0."""
    xp = fast_namespace(W, V)  # the hot path: no full namespace look-up on NumPy
    nv = xp.sqrt(xp.sum(V * V, axis=1))                  # (C,)
    zero = nv == 0.0
    safe = xp.where(zero, xp.ones_like(nv), nv)
    Uv = V / safe[:, None]
    diff = kern.grad(W + delta * Uv, X, y, mask) - kern.grad(W - delta * Uv, X, y, mask)
    out = diff * (safe / (2 * delta))[:, None]
    return xp.where(zero[:, None], xp.zeros_like(out), out)


@dataclass(frozen=True)
class MAML:
    """MAML oracle (Per-FedAvg); see the module docstring for the modes and batches.

    Parameters
    ----------
    alpha: inner (adaptation) step α ≥ 0. The constants of theory/personalization.md assume
        α ≤ 1/L; the constructor can't know L, so :meth:`check_alpha` (called by
        :meth:`constants`) *rejects* α > 1/L where a bound needs it, and *warns* otherwise.
    hessian: ``"exact"`` | ``"hessian_free"`` | ``"first_order"``.
    hf_delta: perturbation length δ > 0 of the Hessian-free difference (ignored by other modes).
    """

    alpha: float
    hessian: str = "exact"
    hf_delta: float = DEFAULT_HF_DELTA
    name: str = "maml"
    params: ClassVar[tuple[Param, ...]] = (
        Param("alpha", "float", 0.01, "MAML inner (adaptation) step, eq. (MAML-1)", lo=0.0),
        Param("hessian", "str", "exact", "Hessian term of the MAML gradient",
              choices=HESSIAN_MODES),
        Param("hf_delta", "float", DEFAULT_HF_DELTA, "Hessian-free difference length delta",
              lo=0.0, lo_open=True, when=("hessian", ("hessian_free",))),
    )

    def __post_init__(self) -> None:
        validate_fields(self)

    # -- validation that needs the model's L -------------------------------------------------
    def check_alpha(self, L: float, *, strict: bool = True) -> None:
        """Check α ≤ 1/L (eq. (MAML-9)).

        (MAML-7) itself holds for every α ≥ 0 and the quadratic transfer γ_F ≤ γ up to α ≤ 2/L;
        α < 1/L is what keeps I − α∇²f nonsingular for a nonconvex f (eigenvalues in [−L, L]),
        which the bound without B needs (‖∇f(φ(w))‖ ≤ ‖∇F(w)‖/(1 − αL),
        theory/maml_generalized_smooth.md (TC-2)). So 1/L is the range every MAML bound of this
        package is proved on. ``strict=True`` raises ``ValueError``; ``strict=False`` warns.
        """
        L = float(L)
        if L > 0 and self.alpha * L > 1.0 + 1e-12:
            msg = (
                f"alpha must lie in [0, 1/L] = [0, {1.0 / L:.6g}] for L = {L:.6g}, got "
                f"{self.alpha!r}: beyond 1/L, I - alpha*H can be singular for a nonconvex f "
                "and the MAML bounds (theory/maml_generalized_smooth.md (TC-2)) are not proved"
            )
            if strict:
                raise ValueError(msg)
            warnings.warn(msg, UserWarning, stacklevel=2)

    # -- the oracle --------------------------------------------------------------------------
    def value(self, model: Model, w: Any, X: Any, y: Any) -> float:
        """F_i(w) = f_i(w − α∇f_i(w)), exact, full batch (eq. (MAML-1))."""
        return float(model.loss(self.personalize(model, w, X, y), X, y))

    def grad(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        """Full-batch ∇F_i(w) by eq. (MAML-2) (Hessian factor per ``hessian`` mode)."""
        g, _, _ = self._direction(model, w, (X, y), (X, y), (X, y))
        return g

    def _direction(
        self, model: Model, w: Any, d0: tuple[Any, Any], d1: tuple[Any, Any], d2: tuple[Any, Any]
    ) -> tuple[Any, int, int]:
        """eq. (MAML-3) on batches D=d0, D′=d1, D″=d2; returns (g, n_grad, n_hvp)."""
        if self.alpha == 0.0:
            return model.grad(w, *d1), 1, 0
        v = model.grad(w - self.alpha * model.grad(w, *d0), *d1)
        if self.hessian == "first_order":
            return v, 2, 0
        if self.hessian == "exact":
            return v - self.alpha * model.hvp(w, v, *d2), 2, 1
        return v - self.alpha * central_hvp(model, w, v, *d2, self.hf_delta), 4, 0

    def step(
        self,
        model: Model,
        w: Any,
        X: Any,
        y: Any,
        rng: np.random.Generator,
        batch_size: int | None,
        warm: Any = None,
    ) -> OracleStep:
        """eq. (MAML-3): D, D′, D″ drawn in that order from ``rng`` (none for a full batch)."""
        m = X.shape[0]
        if self.alpha == 0.0:
            # Plain's single draw: MAML(0) consumes the stream exactly like Plain.
            idx = sample_batch(rng, m, batch_size)
            return OracleStep(g=model.grad(w, take_rows(X, idx), take_rows(y, idx)), n_grad=1)
        batches = []
        for _ in range(3 if self.hessian != "first_order" else 2):
            idx = sample_batch(rng, m, batch_size)
            batches.append((take_rows(X, idx), take_rows(y, idx)))
        if len(batches) == 2:
            batches.append(batches[1])  # unused by first_order; no draw wasted on it
        g, n_grad, n_hvp = self._direction(model, w, *batches)
        return OracleStep(g=g, n_grad=n_grad, n_hvp=n_hvp)

    @property
    def exact_grad(self) -> bool:
        """``grad`` is ∇F_i (exact; Hessian-free to ~1e-10); first order drops the Hessian term
        (eq. (MAML-6)), a biased direction that finite differences of F_i do not match."""
        return self.hessian != "first_order" or self.alpha == 0.0

    def batches_per_step(self, batch_size: int | None) -> int:
        """D, D′, D″ (exact, hessian_free); D, D′ (first_order); one batch when α = 0."""
        if self.alpha == 0.0:
            return 1
        return 2 if self.hessian == "first_order" else 3

    def step_many(self, kern: Any, Y: Any, batches: list, warm: Any = None) -> ManyStep:
        """eq. (MAML-3) for a cohort on stacked batches D, D′, D″ (in draw order)."""
        if self.alpha == 0.0:
            return ManyStep(kern.grad(Y, *batches[0]), 1)
        d0, d1 = batches[0], batches[1]
        V = kern.grad(_minus_alpha_times(Y, self.alpha, kern.grad(Y, *d0)), *d1)
        if self.hessian == "first_order":
            return ManyStep(V, 2)
        d2 = batches[2]
        if self.hessian == "exact":
            return ManyStep(_minus_alpha_times(V, self.alpha, kern.hvp(Y, V, *d2)), 2, 1)
        return ManyStep(_minus_alpha_times(
            V, self.alpha, central_hvp_many(kern, Y, V, *d2, self.hf_delta)), 4)

    def value_grad_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                        L: Any = None) -> tuple[Any, Any]:
        """Full-batch (F_c, ∇F_c) for a cohort: eqs. (MAML-1), (MAML-2), D = D′ = D″ = all rows.

        The adapted point θ_c = W[c] − α∇f_c(W[c]) is both the argument of F_c and the point
        of the outer gradient: computed once (the expressions of :meth:`personalize_many` and
        :meth:`step_many`, so the same bits as calling both)."""
        if self.alpha == 0.0:
            return kern.loss(W, X, y, mask), kern.grad(W, X, y, mask)
        theta = _minus_alpha_times(W, self.alpha, kern.grad(W, X, y, mask))
        G = kern.grad(theta, X, y, mask)
        if self.hessian == "exact":
            G = _minus_alpha_times(G, self.alpha, kern.hvp(W, G, X, y, mask))
        elif self.hessian == "hessian_free":
            G = _minus_alpha_times(G, self.alpha,
                                   central_hvp_many(kern, W, G, X, y, mask, self.hf_delta))
        return kern.loss(theta, X, y, mask), G

    def personalize_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                         L: Any = None) -> Any:
        """θ_c = W[c] − α∇f_c(W[c]) on each client's full data."""
        if self.alpha == 0.0:
            return W
        return _minus_alpha_times(W, self.alpha, kern.grad(W, X, y, mask))

    def stochastic_grad(
        self, model: Model, w: Any, X: Any, y: Any, rng: np.random.Generator, batch_size: int | None
    ) -> Any:
        return self.step(model, w, X, y, rng, batch_size).g

    def personalize(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        """θ_i = w − α∇f_i(w) on the client's full data (one adaptation step)."""
        if self.alpha == 0.0:
            return w
        return w - self.alpha * model.grad(w, X, y)

    # -- constants ---------------------------------------------------------------------------
    def constants(
        self,
        L: float,
        rho: float,
        B: float,
        *,
        convex: bool = False,
        quadratic_eigs: Any = None,
        sigma: float = 0.0,
        batch_size: int | None = None,
    ) -> PersonalizedConstants:
        """L_F and the stochastic-oracle bias of F_i (theory/personalization.md §2).

        * ``quadratic_eigs`` (eigenvalues a of the constant Hessian of a quadratic f_i):
          L_F = max_a |a(1 − αa)²| exactly (eq. (MAML-8)), any α ≥ 0.
        * otherwise: L_F = L(1 + αL)² + αρB (eq. (MAML-7); ≤ 4L + αρB, Per-FedAvg Lemma 4.2,
          for α ≤ 1/L). The term αρB is 0 when ρ = 0 (also for B = ∞); when ρ > 0 and
          B = ∞ no constant is known and L_F = ∞. Requires α ≤ 1/L (:meth:`check_alpha`).
        * ``convex=True`` (f_i convex): L_F = L + αρB (eq. (MAML-7c): the adaptation step is
          non-expansive and ‖I − α∇²f_i‖ ≤ 1 for α ≤ 1/L).
        * bias (eq. (MAML-10)): ‖E g − ∇F_i‖ ≤ αL(1 + αL)σ/√b for mini-batches of b samples
          drawn independently, with per-sample gradient variance σ² (0 for full batches, and 0
          when ρ = 0 because ∇f_i is then affine). The simulator's batches of a step are
          disjoint within a pass (SIM-BATCH): their bias, nonzero also for ρ = 0, is
          eq. (MAML-10w) (:func:`persafl_np.bounds.maml_batches.disjoint_bias_bound`).
          ``first_order`` adds αLB (eq. (MAML-11)); ``hessian_free``
          adds the truncation part αρδB/2 of eq. (MAML-5) (float64 rounding not included).
        """
        L, rho, B, sigma = float(L), float(rho), float(B), float(sigma)
        if not (math.isfinite(L) and L >= 0):
            raise ValueError(f"L must be a finite number >= 0, got {L!r}")
        if not (math.isfinite(rho) and rho >= 0):
            raise ValueError(f"rho must be a finite number >= 0, got {rho!r}")
        if math.isnan(B) or B < 0:
            raise ValueError(f"B must be a number >= 0 or inf, got {B!r}")
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
        a = self.alpha
        if quadratic_eigs is not None:
            eigs = np.asarray(quadratic_eigs, dtype=np.float64).ravel()
            if eigs.size == 0 or not np.all(np.isfinite(eigs)):
                raise ValueError("quadratic_eigs must be a non-empty array of finite eigenvalues")
            L_F = float(np.max(np.abs(eigs * (1.0 - a * eigs) ** 2)))
            lq = float(np.max(np.abs(eigs)))
            fo_bias = a * lq * B if (self.hessian == "first_order" and a * lq > 0.0) else 0.0
            return PersonalizedConstants(
                L_F=L_F, bias=fo_bias, note="MAML quadratic: L_F = max|a(1-alpha a)^2| (MAML-8)"
            )
        self.check_alpha(L)
        if rho == 0.0:
            curv = 0.0
        elif math.isinf(B):
            curv = math.inf
        else:
            curv = a * rho * B
        L_F = (L if convex else L * (1.0 + a * L) ** 2) + curv
        bias = 0.0
        if batch_size is not None:
            if int(batch_size) < 1:
                raise ValueError(f"batch_size must be >= 1 or None, got {batch_size!r}")
            if rho > 0.0:
                # (MAML-10) carries the factor ‖I − αH‖ ≤ 1 + αL; first order has none (MAML-11).
                hfac = 1.0 if self.hessian == "first_order" else 1.0 + a * L
                bias = a * L * hfac * sigma / math.sqrt(int(batch_size))
        if self.hessian == "first_order" and a > 0.0:
            # FO drops alpha*H*grad f(w'), whose norm is at most alpha*L*B (MAML-11).
            bias += a * L * B if L > 0.0 else 0.0
        elif self.hessian == "hessian_free" and a > 0.0 and rho > 0.0:
            bias += a * rho * self.hf_delta * B / 2.0  # truncation part of (MAML-5)
        return PersonalizedConstants(
            L_F=L_F,
            bias=bias,
            note=(
                "MAML convex: L_F = L + alpha rho B (MAML-7c)"
                if convex
                else "MAML: L_F = L(1+alpha L)^2 + alpha rho B <= 4L + alpha rho B (MAML-7)"
            ),
        )

    # -- per-variant bound constants (bounds/constants.py asks the oracle, never its class) --
    def bound_variant(self) -> str:
        """"MAML"; raises ``ValueError`` for the biased first-order / Hessian-free modes."""
        if self.hessian != "exact":
            raise ValueError(
                f"oracle: MAML(hessian={self.hessian!r}) is biased; the bound needs an unbiased "
                "oracle, use hessian='exact' (theory/async_theorem.md §2, (C2))"
            )
        return "MAML"

    def personalized_hessian(self, A: Any) -> np.ndarray:
        """H_F of eq. (AS-1)/(MAML-8) for f = ½(w − c)ᵀA(w − c): A(I − αA)²."""
        A = np.asarray(A, dtype=np.float64)
        M = np.eye(A.shape[0]) - self.alpha * A
        return A @ M @ M

    def gradient_bound_factor(self, L: float) -> float:
        """‖∇F_i‖ ≤ (1 + αL_i)B_i (eq. (AS-4))."""
        return 1.0 + self.alpha * float(L)

    def noise_sigma2(self) -> float:
        """σ² added on top of the full-batch gradient: none."""
        return 0.0

    def smoothness_l0_l1(self, L: float, rho: float) -> tuple[float, float]:
        """(L₀, L₁) = (L(1+αL)², αρ/(1 − αL)) of eq. (TC-1), theory/maml_generalized_smooth.md:
        ‖∇F(w) − ∇F(u)‖ ≤ (L₀ + L₁‖∇F(u)‖)‖w − u‖ without any gradient bound B; α < 1/L."""
        L, rho = float(L), float(rho)
        if not (math.isfinite(L) and L > 0 and math.isfinite(rho) and rho >= 0):
            raise ValueError(f"L must be finite > 0 and rho finite >= 0, got {L!r}, {rho!r}")
        if self.alpha * L >= 1.0:
            raise ValueError(f"alpha must lie in [0, 1/L) = [0, {1.0 / L:.6g}), got {self.alpha!r}")
        return L * (1.0 + self.alpha * L) ** 2, self.alpha * rho / (1.0 - self.alpha * L)
