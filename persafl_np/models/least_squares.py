"""Least squares: f(w) = ‖Xw − y‖²/(2m) + (l2/2)‖w‖²  (theory/models.md, eq. (LS-1)).

Derivatives (eq. (LS-2)): ∇f(w) = Xᵀ(Xw − y)/m + l2·w,  ∇²f = XᵀX/m + l2·I (constant).
Constants (theory/models.md §LS): L = λ_max(XᵀX/m) + l2, ρ = 0, B = ∞ (the gradient is
affine and unbounded unless XᵀX/m + l2 I = 0, in which case B = ‖Xᵀy‖/m).

Cohort methods (``*_many``, :mod:`persafl_np.models.cohort`, eq. (CO-1)): the same formulas per
client c with the mean over its n_c real rows, r_c = X_c w_c − y_c masked by mask_c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from persafl_np.backend import fast_namespace, to_numpy
from persafl_np.models.base import (
    ALLOW_INT_TARGETS,
    L2,
    check_data,
    check_params,
    check_xy,
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
from persafl_np.parameters import Param, validate_fields

__all__ = ["LeastSquares"]


@dataclass(frozen=True)
class LeastSquares:
    """Linear least squares with optional ridge term ``l2`` ≥ 0 (parameters: d weights).

    ``allow_int_targets``: integer-dtype ``y`` is refused (it is almost always a classification
    data set given to a regression model) unless this is true.
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
        """f(w), eq. (LS-1)."""
        xp, r = self._residual(w, X, y)
        out = xp.sum(r * r) / (2 * X.shape[0])
        return out + 0.5 * self.l2 * xp.sum(w * w) if self.l2 else out

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), eq. (LS-2)."""
        _, r = self._residual(w, X, y)
        g = (r @ X) / X.shape[0]
        return g + self.l2 * w if self.l2 else g

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f v = XᵀXv/m + l2·v, eq. (LS-2)."""
        check_xy(X, y)
        check_targets(fast_namespace(w, X, y), y, self.allow_int_targets)
        check_params(w, X.shape[1])
        check_params(v, X.shape[1], "v")
        hv = ((X @ v) @ X) / X.shape[0]
        return hv + self.l2 * v if self.l2 else hv

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f = XᵀX/m + l2·I, eq. (LS-2)."""
        check_xy(X, y)
        xp = fast_namespace(w, X, y)
        check_targets(xp, y, self.allow_int_targets)
        check_params(w, X.shape[1])
        d = X.shape[1]
        refuse_dense(d)
        return (X.T @ X) / X.shape[0] + self.l2 * xp.eye(d, dtype=X.dtype)

    # ------------------------------------------------------------ a cohort
    def _check_many(self, xp: Any, W: Any, X: Any, y: Any, mask: Any, V: Any = None) -> None:
        check_cohort(W, X, y, self.num_params, mask, V)
        check_targets(xp, y, self.allow_int_targets)
        check_mask(xp, mask)

    def loss_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C,) losses f_c(W[c]) of eq. (LS-1) per client (eq. (CO-1))."""
        xp = fast_namespace(W, X, y, mask)
        if validate:
            self._check_many(xp, W, X, y, mask)
        r = (X @ W[..., None])[..., 0] - y
        rr = r * r if mask is None else r * r * mask
        out = xp.sum(rr, axis=-1) / (2 * client_counts(xp, X, mask))
        return out + 0.5 * self.l2 * xp.sum(W * W, axis=-1) if self.l2 else out

    def grad_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C, p) gradients of eq. (LS-2) per client (eq. (CO-1))."""
        xp = fast_namespace(W, X, y, mask)
        if validate:
            self._check_many(xp, W, X, y, mask)
        g = masked_xt_mean(xp, (X @ W[..., None])[..., 0] - y, X, mask)
        return g + self.l2 * W if self.l2 else g

    def hvp_many(self, W: Any, V: Any, X: Any, y: Any, mask: Any = None, *,
                 validate: bool = True) -> Any:
        """(C, p) products ∇²f_c V[c] = X_cᵀX_c V[c]/n_c + l2·V[c] (eqs. (LS-2), (CO-1))."""
        xp = fast_namespace(W, V, X, y, mask)
        if validate:
            self._check_many(xp, W, X, y, mask, V)
        hv = masked_xt_mean(xp, (X @ V[..., None])[..., 0], X, mask)
        return hv + self.l2 * V if self.l2 else hv

    def predict_many(self, W: Any, X: Any, *, validate: bool = True) -> Any:
        """(C, m) predicted targets X_c W[c]."""
        if validate:
            check_predict_cohort(W, X, self.num_params)
        return (X @ W[..., None])[..., 0]

    def smoothness(self, X: Any, y: Any) -> float:
        """L = λ_max(XᵀX/m) + l2 (theory/models.md, Prop. LS-1; exact, attained everywhere)."""
        Xn = to_numpy(X)
        s = np.linalg.norm(Xn, 2) if Xn.size else 0.0
        return float(s * s / Xn.shape[0] + self.l2)

    def sample_smoothness(self, X: Any, y: Any) -> np.ndarray:
        """L_j = ‖x_j‖² + l2 of every one-row objective, shape X.shape[:-1] (eq. (M-4))."""
        return row_sq_norms(X) + self.l2

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
        check_targets(fast_namespace(y), y, self.allow_int_targets)
