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
