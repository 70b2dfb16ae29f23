"""Least squares: f(w) = ‖Xw − y‖²/(2m) + (l2/2)‖w‖²  (theory/models.md, eq. (LS-1)).

Derivatives (eq. (LS-2)): ∇f(w) = Xᵀ(Xw − y)/m + l2·w,  ∇²f = XᵀX/m + l2·I (constant).
Constants (theory/models.md §LS): L = λ_max(XᵀX/m) + l2, ρ = 0, B = ∞ (the gradient is
affine and unbounded unless XᵀX/m + l2 I = 0, in which case B = ‖Xᵀy‖/m).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.backend import array_namespace, to_numpy
from persafl_np.models.base import (
    check_data,
    check_nonneg,
    check_params,
    check_xy,
    linear_init_params,
    linear_num_params,
    linear_residual,
    refuse_dense,
)

__all__ = ["LeastSquares"]


@dataclass(frozen=True)
class LeastSquares:
    """Linear least squares with optional ridge term ``l2`` ≥ 0 (parameters: d weights)."""

    l2: float = 0.0
    is_classifier = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "l2", check_nonneg(self.l2, "l2"))

    def num_params(self, n_features: int) -> int:
        return linear_num_params(n_features)

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return linear_init_params(rng, n_features)


    def loss(self, w: Any, X: Any, y: Any) -> Any:
        xp = array_namespace(w, X, y)
        r = linear_residual(w, X, y)
        return xp.sum(r * r) / (2 * X.shape[0]) + 0.5 * self.l2 * xp.sum(w * w)

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        r = linear_residual(w, X, y)
        return (r @ X) / X.shape[0] + self.l2 * w

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        check_xy(X, y)
        check_params(w, X.shape[1])
        check_params(v, X.shape[1], "v")
        return ((X @ v) @ X) / X.shape[0] + self.l2 * v

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        check_xy(X, y)
        check_params(w, X.shape[1])
        d = X.shape[1]
        refuse_dense(d)
        xp = array_namespace(w, X)
        return (X.T @ X) / X.shape[0] + self.l2 * xp.eye(d, dtype=X.dtype)

    def smoothness(self, X: Any, y: Any) -> float:
        """L = λ_max(XᵀX/m) + l2 (theory/models.md, Prop. LS-1; exact, attained everywhere)."""
        Xn = to_numpy(X)
        s = np.linalg.norm(Xn, 2) if Xn.size else 0.0
        return float(s * s / Xn.shape[0] + self.l2)

    def hessian_lipschitz(self, X: Any, y: Any) -> float:
        """ρ = 0: the Hessian does not depend on w (theory/models.md, Prop. LS-1)."""
        return 0.0

    def grad_bound(self, X: Any, y: Any) -> float:
        """B = ∞ unless the Hessian vanishes (theory/models.md, Prop. LS-1)."""
        if self.smoothness(X, y) > 0.0:
            return math.inf
        Xn, yn = to_numpy(X), to_numpy(y)
        return float(np.linalg.norm(Xn.T @ yn) / Xn.shape[0])

    def is_convex(self) -> bool:
        return True

    def predict(self, w: Any, X: Any) -> Any:
        """Predicted targets Xw."""
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2-D (m samples, d features), got shape {tuple(X.shape)}")
        check_params(w, X.shape[1])
        return X @ w

    def check_data(self, X: Any, y: Any) -> None:
        check_data(X, y)
