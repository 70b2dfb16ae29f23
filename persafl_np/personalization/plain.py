"""Plain asynchronous learning (AL): F_i = f_i (theory/personalization.md §1).

The oracle is the model's own (mini-batch) gradient; the personalized model is w itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.backend import take_rows
from persafl_np.models.base import Model
from persafl_np.personalization.base import OracleStep, PersonalizedConstants, sample_batch
from persafl_np.personalization.cohort import ManyStep

__all__ = ["Plain"]


@dataclass(frozen=True)
class Plain:
    """AL: the client descends its own loss; g = ∇f_i(y; D) (theory/brief_results.md (B1))."""

    name: str = "plain"

    def value(self, model: Model, w: Any, X: Any, y: Any) -> float:
        return float(model.loss(w, X, y))

    def grad(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        return model.grad(w, X, y)

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
        idx = sample_batch(rng, X.shape[0], batch_size)
        return OracleStep(g=model.grad(w, take_rows(X, idx), take_rows(y, idx)), n_grad=1)

    @property
    def exact_grad(self) -> bool:
        """``grad`` is ∇F_i exactly (what :func:`~persafl_np.checks.check_oracle` verifies)."""
        return True

    def batches_per_step(self, batch_size: int | None) -> int:
        """One batch D per step."""
        return 1

    def step_many(self, kern: Any, Y: Any, batches: list, warm: Any = None) -> ManyStep:
        """``step`` for a cohort: G[c] = ∇f_c(Y[c]; D_c) (eq. (LOC-C))."""
        return ManyStep(kern.grad(Y, *batches[0]), 1)

    def value_grad_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                        L: Any = None) -> tuple[Any, Any]:
        """Full-batch (F_c(W[c]), ∇F_c(W[c])) for a cohort (F_c = f_c)."""
        return kern.loss(W, X, y, mask), kern.grad(W, X, y, mask)

    def personalize_many(self, kern: Any, W: Any, X: Any, y: Any, mask: Any,
                         L: Any = None) -> Any:
        return W

    def stochastic_grad(
        self, model: Model, w: Any, X: Any, y: Any, rng: np.random.Generator, batch_size: int | None
    ) -> Any:
        return self.step(model, w, X, y, rng, batch_size).g

    def personalize(self, model: Model, w: Any, X: Any, y: Any) -> Any:
        return w

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
        """L_F = L (or max|a| over ``quadratic_eigs``); the mini-batch gradient is unbiased.

        The keyword arguments are those of every oracle's ``constants`` (MAML, Moreau
        envelope), so callers can pass the same set to any oracle.
        """
        if quadratic_eigs is not None:
            eigs = np.asarray(quadratic_eigs, dtype=np.float64).ravel()
            if eigs.size == 0 or not np.all(np.isfinite(eigs)):
                raise ValueError("quadratic_eigs must be a non-empty array of finite eigenvalues")
            return PersonalizedConstants(
                L_F=float(np.max(np.abs(eigs))), bias=0.0, note="AL quadratic: L_F = max|a|"
            )
        return PersonalizedConstants(L_F=float(L), bias=0.0, note="AL: L_F = L")

    # -- per-variant bound constants (bounds/constants.py asks the oracle, never its class) --
    def bound_variant(self) -> str:
        """The variant label of the bounds ("AL"); an unbiased oracle, so (C2) can hold."""
        return "AL"

    def personalized_hessian(self, A: Any) -> np.ndarray:
        """H_F of eq. (AS-1) for f = ½(w − c)ᵀA(w − c): H_F = A."""
        return np.asarray(A, dtype=np.float64)

    def gradient_bound_factor(self, L: float) -> float:
        """‖∇F_i‖ ≤ factor·B_i (eq. (AS-4)): 1 for AL."""
        return 1.0

    def noise_sigma2(self) -> float:
        """σ² added on top of the full-batch gradient: none."""
        return 0.0
