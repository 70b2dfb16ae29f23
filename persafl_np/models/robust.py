"""Robust (Geman–McClure) regression: f(w) = (1/m)Σ_j φ(x_j·w − y_j) + (l2/2)‖w‖² (§RR).

φ(r) = r²/(1+r²) (eq. (RR-1)); nonconvex for every data set with X ≠ 0 and bounded gradient
when l2 = 0. Derivatives (eq. (RR-2)), with residuals r = Xw − y:

    ∇f(w)  = Xᵀφ'(r)/m + l2·w,     ∇²f(w) = Xᵀ diag(φ''(r)) X/m + l2·I.

Constants (Prop. RR-1..3): L = 2‖X‖₂²/m + l2,
ρ = GM3_MAX·min(max_j‖x_j‖‖X‖₂²/m, (1/m)Σ‖x_j‖³),
B = (3√3/8)·min((1/m)Σ‖x_j‖, ‖X‖₂/√m) when l2 = 0, else ∞.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.backend import array_namespace
from persafl_np.models.base import (
    check_data,
    check_nonneg,
    check_params,
    design_norms,
    linear_init_params,
    linear_num_params,
    linear_residual,
    refuse_dense,
)
from persafl_np.models.geman_mcclure import GM1_MAX, GM2_MAX, GM3_MAX, gm, gm1, gm2

__all__ = ["RobustRegression"]


@dataclass(frozen=True)
class RobustRegression:
    """Linear regression with the bounded Geman–McClure loss; d weights, ridge ``l2`` ≥ 0."""

    l2: float = 0.0
    is_classifier = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "l2", check_nonneg(self.l2, "l2"))

    def num_params(self, n_features: int) -> int:
        return linear_num_params(n_features)

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return linear_init_params(rng, n_features)


    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w), eq. (RR-1)."""
        xp = array_namespace(w, X, y)
        return xp.mean(gm(linear_residual(w, X, y))) + 0.5 * self.l2 * xp.sum(w * w)

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), eq. (RR-2)."""
        return (gm1(linear_residual(w, X, y)) @ X) / X.shape[0] + self.l2 * w

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f(w) v, eq. (RR-2)."""
        s = gm2(linear_residual(w, X, y))
        check_params(v, X.shape[1], "v")
        return ((s * (X @ v)) @ X) / X.shape[0] + self.l2 * v

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w), eq. (RR-2)."""
        s = gm2(linear_residual(w, X, y))
        d = X.shape[1]
        refuse_dense(d)
        xp = array_namespace(w, X)
        return ((X.T * s) @ X) / X.shape[0] + self.l2 * xp.eye(d, dtype=X.dtype)

    def smoothness(self, X: Any, y: Any) -> float:
        """L = 2‖X‖₂²/m + l2 (theory/models.md, Prop. RR-1)."""
        return GM2_MAX * design_norms(X).spec2_over_m + self.l2

    def hessian_lipschitz(self, X: Any, y: Any) -> float:
        """ρ = GM3_MAX·min(max_j‖x_j‖‖X‖₂²/m, (1/m)Σ‖x_j‖³) (Prop. RR-2)."""
        return GM3_MAX * design_norms(X).cubic

    def grad_bound(self, X: Any, y: Any) -> float:
        """B = (3√3/8)·min((1/m)Σ‖x_j‖, ‖X‖₂/√m) if l2 = 0, else ∞ (Prop. RR-3)."""
        if self.l2 > 0.0:
            return math.inf
        return GM1_MAX * design_norms(X).linear

    def is_convex(self) -> bool:
        """False: φ'' < 0 for |r| > 1/√3, so f is nonconvex on some data set (Prop. RR-4)."""
        return False

    def predict(self, w: Any, X: Any) -> Any:
        """Predicted targets Xw."""
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2-D (m samples, d features), got shape {tuple(X.shape)}")
        check_params(w, X.shape[1])
        return X @ w

    def check_data(self, X: Any, y: Any) -> None:
        check_data(X, y)
