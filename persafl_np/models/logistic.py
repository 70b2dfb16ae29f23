"""Binary logistic regression with optional ridge and nonconvex regularizers (theory/models.md §LR).

f(w) = (1/m) Σ_j log(1 + exp(−s_j x_j·w)) + (l2/2)‖w‖² + ν Σ_k φ(w_k),   s_j = 2y_j − 1,

with labels y_j ∈ {0, 1}, ν = ``nonconvex`` and φ(t) = t²/(1+t²) (eq. (LR-1)). There is no
bias parameter: append a column of ones to X to get one. Derivatives (eq. (LR-2)), with
a = Xw and σ the logistic sigmoid:

    ∇f(w)  = Xᵀ(σ(a) − y)/m + l2·w + ν φ'(w),
    ∇²f(w) = Xᵀ diag(σ'(a)) X/m + l2·I + ν diag(φ''(w)).

Constants (Prop. LR-1, LR-2, LR-3): L = ‖X‖₂²/(4m) + l2 + 2ν,
ρ = min(max_j‖x_j‖·‖X‖₂²/m, (1/m)Σ_j‖x_j‖³)/(6√3) + ν·GM3_MAX,
B = min((1/m)Σ_j‖x_j‖, ‖X‖₂/√m) + ν·(3√3/8)·√d when l2 = 0, else ∞.
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
    check_xy,
    design_norms,
    linear_init_params,
    linear_num_params,
    refuse_dense,
)
from persafl_np.models.geman_mcclure import GM1_MAX, GM2_MAX, GM3_MAX, gm, gm1, gm2

__all__ = ["SIGMOID2_MAX", "LogisticRegression"]

#: max_z |σ''(z)| = 1/(6√3), attained where σ(z) = 1/2 ± 1/(2√3) (Lemma LR-0).
SIGMOID2_MAX = 1.0 / (6.0 * math.sqrt(3.0))


def _exp_neg_abs(xp: Any, z: Any) -> Any:
    """e = exp(−|z|) ∈ (0, 1]: every sigmoid quantity below is a rational function of it."""
    return xp.exp(-xp.abs(z))


def _softplus_neg(xp: Any, z: Any, e: Any) -> Any:
    """log(1 + e^{−z}) = max(−z, 0) + log1p(e^{−|z|}), no overflow (eq. (LR-1))."""
    return xp.maximum(-z, 0.0) + xp.log1p(e)


def _sigmoid_neg(xp: Any, z: Any, e: Any) -> Any:
    """σ(−z) = e/(1+e) for z ≥ 0, 1/(1+e) for z < 0: full relative precision in both tails."""
    r = 1.0 / (1.0 + e)
    return xp.where(z >= 0.0, e * r, r)


@dataclass(frozen=True)
class LogisticRegression:
    """Binary logistic regression (labels 0/1), d weights, optional ``l2`` ≥ 0, ``nonconvex`` ≥ 0.

    ``nonconvex`` = ν weights the smooth nonconvex regularizer ν Σ_k w_k²/(1+w_k²) (eq. (LR-1)).
    """

    l2: float = 0.0
    nonconvex: float = 0.0
    is_classifier = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "l2", check_nonneg(self.l2, "l2"))
        object.__setattr__(self, "nonconvex", check_nonneg(self.nonconvex, "nonconvex"))

    def num_params(self, n_features: int) -> int:
        return linear_num_params(n_features)

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return linear_init_params(rng, n_features)

    def _margin(self, w: Any, X: Any, y: Any) -> tuple[Any, Any, Any]:
        """(xp, signed margins z = s ⊙ Xw with s = 2y − 1, and s)."""
        check_xy(X, y)
        check_params(w, X.shape[1])
        xp = array_namespace(w, X, y)
        s = 2.0 * xp.astype(y, X.dtype) - 1.0
        return xp, s * (X @ w), s

    def _reg(self, w: Any, fn: Any) -> Any:
        # ν = 0 skips the elementwise regularizer entirely (a pure logistic model).
        return self.nonconvex * fn(w) if self.nonconvex else 0.0

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w), eq. (LR-1); log(1+e^{−z}) evaluated without overflow."""
        xp, z, _ = self._margin(w, X, y)
        data = xp.mean(_softplus_neg(xp, z, _exp_neg_abs(xp, z)))
        reg = self.nonconvex * xp.sum(gm(w)) if self.nonconvex else 0.0
        return data + 0.5 * self.l2 * xp.sum(w * w) + reg

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), eq. (LR-2); σ(a) − y = −s·σ(−z) keeps full precision for large margins."""
        xp, z, s = self._margin(w, X, y)
        r = -s * _sigmoid_neg(xp, z, _exp_neg_abs(xp, z))
        return (r @ X) / X.shape[0] + self.l2 * w + self._reg(w, gm1)

    def _curvature(self, xp: Any, z: Any) -> Any:
        # σ'(a) = σ'(z) = e/(1+e)² with e = exp(−|z|): exact in relative terms in both tails.
        e = _exp_neg_abs(xp, z)
        r = 1.0 / (1.0 + e)
        return e * r * r

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f(w) v, eq. (LR-2): two matrix-vector products with X, no d×d matrix."""
        xp, z, _ = self._margin(w, X, y)
        check_params(v, X.shape[1], "v")
        c = self._curvature(xp, z)
        reg = self.nonconvex * gm2(w) * v if self.nonconvex else 0.0
        return ((c * (X @ v)) @ X) / X.shape[0] + self.l2 * v + reg

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w), eq. (LR-2)."""
        xp, z, _ = self._margin(w, X, y)
        d = X.shape[1]
        refuse_dense(d)
        s = self._curvature(xp, z)
        diag = self.l2 + self.nonconvex * gm2(w)
        return ((X.T * s) @ X) / X.shape[0] + xp.eye(d, dtype=X.dtype) * diag

    def smoothness(self, X: Any, y: Any) -> float:
        """L = ‖X‖₂²/(4m) + l2 + 2ν (theory/models.md, Prop. LR-1)."""
        return design_norms(X).spec2_over_m / 4.0 + self.l2 + GM2_MAX * self.nonconvex

    def hessian_lipschitz(self, X: Any, y: Any) -> float:
        """ρ = min(max_j‖x_j‖‖X‖₂²/m, (1/m)Σ‖x_j‖³)/(6√3) + ν·GM3_MAX (Prop. LR-2)."""
        return SIGMOID2_MAX * design_norms(X).cubic + GM3_MAX * self.nonconvex

    def grad_bound(self, X: Any, y: Any) -> float:
        """B = min((1/m)Σ‖x_j‖, ‖X‖₂/√m) + ν(3√3/8)√d if l2 = 0, else ∞ (Prop. LR-3)."""
        if self.l2 > 0.0:
            return math.inf
        dn = design_norms(X)
        d = int(X.shape[1])
        return dn.linear + self.nonconvex * GM1_MAX * math.sqrt(d)

    def is_convex(self) -> bool:
        """Convex iff l2 ≥ ν/2, since φ'' ≥ −1/2 (Prop. LR-4)."""
        return self.l2 >= 0.5 * self.nonconvex

    def predict(self, w: Any, X: Any) -> Any:
        """Labels 1 where σ(x·w) ≥ 1/2 (i.e. x·w ≥ 0), else 0; integer dtype."""
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2-D (m samples, d features), got shape {tuple(X.shape)}")
        check_params(w, X.shape[1])
        xp = array_namespace(w, X)
        return xp.astype(X @ w >= 0.0, xp.int64)

    def check_data(self, X: Any, y: Any) -> None:
        check_data(X, y, binary=True)
