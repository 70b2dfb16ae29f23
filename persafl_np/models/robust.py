"""Robust (Geman–McClure) regression: f(w) = (1/m)Σ_j φ(x_j·w − y_j) + (l2/2)‖w‖² (§RR).

φ(r) = r²/(1+r²) (eq. (RR-1)); nonconvex for every data set with X ≠ 0 and bounded gradient
when l2 = 0. Derivatives (eq. (RR-2)), with residuals r = Xw − y:

    ∇f(w)  = Xᵀφ'(r)/m + l2·w,     ∇²f(w) = Xᵀ diag(φ''(r)) X/m + l2·I.

Constants (Prop. RR-1..3): L = 2‖X‖₂²/m + l2,
ρ = GM3_MAX·min(max_j‖x_j‖‖X‖₂²/m, (1/m)Σ‖x_j‖³),
B = (3√3/8)·min((1/m)Σ‖x_j‖, ‖X‖₂/√m) when l2 = 0, else ∞.

Cohort methods (``*_many``, :mod:`persafl_np.models.cohort`, eq. (CO-1)): the same formulas per
client with residuals r_c = X_c w_c − y_c and the mean over its n_c real rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from persafl_np.backend import fast_namespace
from persafl_np.models.base import (
    ALLOW_INT_TARGETS,
    L2,
    check_data,
    check_params,
    design_norms,
    linear_init_params,
    linear_num_params,
    linear_residual,
    refuse_dense,
    row_sq_norms,
)
from persafl_np.models.cohort import (
    check_cohort,
    check_mask,
    check_predict_cohort,
    check_targets,
    client_counts,
    masked_xt_mean,
)
from persafl_np.models.geman_mcclure import GM1_MAX, GM2_MAX, GM3_MAX, gm, gm1, gm2
from persafl_np.parameters import Param, validate_fields

__all__ = ["RobustRegression"]


@dataclass(frozen=True)
class RobustRegression:
    """Linear regression with the bounded Geman–McClure loss; d weights, ridge ``l2`` ≥ 0.

    ``allow_int_targets``: integer-dtype ``y`` is refused (class labels given to a regression
    model) unless this is true.
    """

    l2: float = 0.0
    allow_int_targets: bool = False
    is_classifier = False
    params: ClassVar[tuple[Param, ...]] = (L2, ALLOW_INT_TARGETS)

    def __post_init__(self) -> None:
        validate_fields(self)

    def num_params(self, n_features: int) -> int:
        return linear_num_params(n_features)

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return linear_init_params(rng, n_features)

    # ------------------------------------------------------------ one client
    def _residual(self, w: Any, X: Any, y: Any) -> tuple[Any, Any]:
        xp = fast_namespace(w, X, y)
        check_targets(xp, y, self.allow_int_targets)
        return xp, linear_residual(w, X, y)

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w), eq. (RR-1)."""
        xp, r = self._residual(w, X, y)
        out = xp.mean(gm(r))
        return out + 0.5 * self.l2 * xp.sum(w * w) if self.l2 else out

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), eq. (RR-2)."""
        _, r = self._residual(w, X, y)
        g = (gm1(r) @ X) / X.shape[0]
        return g + self.l2 * w if self.l2 else g

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f(w) v, eq. (RR-2)."""
        _, r = self._residual(w, X, y)
        check_params(v, X.shape[1], "v")
        hv = ((gm2(r) * (X @ v)) @ X) / X.shape[0]
        return hv + self.l2 * v if self.l2 else hv

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w), eq. (RR-2)."""
        xp, r = self._residual(w, X, y)
        s = gm2(r)
        d = X.shape[1]
        refuse_dense(d)
        return ((X.T * s) @ X) / X.shape[0] + self.l2 * xp.eye(d, dtype=X.dtype)

    # ------------------------------------------------------------ a cohort
    def _residual_many(self, W: Any, X: Any, y: Any, mask: Any, validate: bool,
                       V: Any = None) -> tuple[Any, Any]:
        xp = fast_namespace(W, X, y, mask)
        if validate:
            check_cohort(W, X, y, self.num_params, mask, V)
            check_targets(xp, y, self.allow_int_targets)
            check_mask(xp, mask)
        return xp, (X @ W[..., None])[..., 0] - y

    def loss_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C,) losses of eq. (RR-1) per client, mean over its real rows (eq. (CO-1))."""
        xp, r = self._residual_many(W, X, y, mask, validate)
        ell = gm(r) if mask is None else gm(r) * mask
        out = xp.sum(ell, axis=-1) / client_counts(xp, X, mask)
        return out + 0.5 * self.l2 * xp.sum(W * W, axis=-1) if self.l2 else out

    def grad_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C, p) gradients of eq. (RR-2) per client (eq. (CO-1))."""
        xp, r = self._residual_many(W, X, y, mask, validate)
        g = masked_xt_mean(xp, gm1(r), X, mask)
        return g + self.l2 * W if self.l2 else g

    def hvp_many(self, W: Any, V: Any, X: Any, y: Any, mask: Any = None, *,
                 validate: bool = True) -> Any:
        """(C, p) products ∇²f_c(W[c]) V[c] of eq. (RR-2) per client (eq. (CO-1))."""
        xp, r = self._residual_many(W, X, y, mask, validate, V)
        hv = masked_xt_mean(xp, gm2(r) * (X @ V[..., None])[..., 0], X, mask)
        return hv + self.l2 * V if self.l2 else hv

    def predict_many(self, W: Any, X: Any, *, validate: bool = True) -> Any:
        """(C, m) predicted targets X_c W[c]."""
        if validate:
            check_predict_cohort(W, X, self.num_params)
        return (X @ W[..., None])[..., 0]

    def smoothness(self, X: Any, y: Any) -> float:
        """L = 2‖X‖₂²/m + l2 (theory/models.md, Prop. RR-1)."""
        return GM2_MAX * design_norms(X).spec2_over_m + self.l2

    def sample_smoothness(self, X: Any, y: Any) -> np.ndarray:
        """L_j = 2‖x_j‖² + l2 of every one-row objective, shape X.shape[:-1] (eq. (M-4))."""
        return GM2_MAX * row_sq_norms(X) + self.l2

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
        check_targets(fast_namespace(y), y, self.allow_int_targets)
