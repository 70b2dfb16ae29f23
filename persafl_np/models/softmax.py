"""Multinomial (softmax) regression, C classes (theory/models.md §SM).

Parameters: w = vec(W) with W of shape (d, C), flattened **row-major** (C order):
w[k·C + c] = W[k, c], the weight of feature k for class c. No bias parameter (append a
ones column to X). With Z = XW, P = softmax(Z) row-wise and Y the one-hot labels
(eq. (SM-1), (SM-2)):

    f(w)   = (1/m) Σ_j [logsumexp(z_j) − z_{j,y_j}] + (l2/2)‖W‖_F²,
    ∇f(w)  = vec(Xᵀ(P − Y)/m + l2·W),
    ∇²f(w) = (1/m) Σ_j x_j x_jᵀ ⊗ A(p_j) + l2·I  (in (k, c) row-major order),
    A(p)   = diag(p) − p pᵀ,
    ∇²f(w) vec(V) = vec(Xᵀ[P ⊙ U − P ⊙ (P ⊙ U) 1 1ᵀ]/m + l2·V),  U = XV.

Constants (Prop. SM-1..3): L = ‖X‖₂²/(2m) + l2, ρ = min(max_j‖x_j‖‖X‖₂²/m, (1/m)Σ‖x_j‖³)/√2,
B = √2·min((1/m)Σ‖x_j‖, ‖X‖₂/√m) when l2 = 0, else ∞.
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
    refuse_dense,
)

__all__ = ["SoftmaxRegression", "log_softmax", "one_hot"]


def one_hot(y: Any, n_classes: int, dtype: Any) -> Any:
    """(m, C) one-hot matrix of integer labels, by comparison with ``arange`` (array API)."""
    xp = array_namespace(y)
    cls = xp.arange(n_classes, dtype=y.dtype)
    return xp.astype(xp.expand_dims(y, axis=1) == cls, dtype)


def log_softmax(Z: Any) -> Any:
    """Row-wise log softmax, shifted by the row maximum so exp never overflows."""
    xp = array_namespace(Z)
    Zs = Z - xp.max(Z, axis=1, keepdims=True)
    return Zs - xp.log(xp.sum(xp.exp(Zs), axis=1, keepdims=True))


def softmax_jvp(P: Any, U: Any) -> Any:
    """A(p_j) u_j row-wise: P ⊙ U − P ⊙ (row sums of P ⊙ U) (eq. (SM-2)); broadcasts batches."""
    xp = array_namespace(P, U)
    PU = P * U
    return PU - P * xp.sum(PU, axis=-1, keepdims=True)


@dataclass(frozen=True)
class SoftmaxRegression:
    """Softmax regression with ``n_classes`` ≥ 2 and ridge ``l2`` ≥ 0; d·C parameters."""

    n_classes: int
    l2: float = 0.0
    is_classifier = True

    def __post_init__(self) -> None:
        c = self.n_classes
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or int(c) < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {c!r}")
        object.__setattr__(self, "n_classes", int(c))
        object.__setattr__(self, "l2", check_nonneg(self.l2, "l2"))

    def num_params(self, n_features: int) -> int:
        if int(n_features) < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        return int(n_features) * self.n_classes

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return rng.normal(0.0, 1.0 / math.sqrt(n_features), size=self.num_params(n_features))

    def _unpack(self, w: Any, X: Any, y: Any) -> tuple[Any, Any]:
        check_xy(X, y)
        check_params(w, self.num_params(X.shape[1]))
        xp = array_namespace(w, X, y)
        return xp, xp.reshape(w, (X.shape[1], self.n_classes))

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w), eq. (SM-1)."""
        xp, W = self._unpack(w, X, y)
        logp = log_softmax(X @ W)
        Y = one_hot(y, self.n_classes, X.dtype)
        return -xp.sum(Y * logp) / X.shape[0] + 0.5 * self.l2 * xp.sum(w * w)

    def _probs(self, xp: Any, W: Any, X: Any) -> Any:
        return xp.exp(log_softmax(X @ W))

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), eq. (SM-2)."""
        xp, W = self._unpack(w, X, y)
        R = self._probs(xp, W, X) - one_hot(y, self.n_classes, X.dtype)
        return xp.reshape(X.T @ R, (-1,)) / X.shape[0] + self.l2 * w

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f(w) v without forming the Hessian, eq. (SM-2): three (m×d)(d×C)-sized products."""
        xp, W = self._unpack(w, X, y)
        check_params(v, self.num_params(X.shape[1]), "v")
        V = xp.reshape(v, W.shape)
        R = softmax_jvp(self._probs(xp, W, X), X @ V)
        return xp.reshape(X.T @ R, (-1,)) / X.shape[0] + self.l2 * v

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w) = (1/m)Σ_j x_j x_jᵀ ⊗ A(p_j) + l2·I, row-major (k, c), eq. (SM-2)."""
        xp, W = self._unpack(w, X, y)
        m, d = X.shape
        C = self.n_classes
        refuse_dense(d * C)
        P = self._probs(xp, W, X)
        # Gram blocks G[c] = Xᵀ diag(P[:, c]) X give the diag(p) part, placed on c = c'.
        G = (xp.expand_dims(X.T, axis=0) * xp.expand_dims(P.T, axis=1)) @ X
        eyeC = xp.eye(C, dtype=X.dtype)
        H1 = xp.expand_dims(xp.permute_dims(G, (1, 0, 2)), axis=3) * eyeC[None, :, None, :]
        # The p pᵀ part is a Gram matrix of the rows x_j ⊗ p_j.
        XP = xp.reshape(xp.expand_dims(X, axis=2) * xp.expand_dims(P, axis=1), (m, d * C))
        H = xp.reshape(H1, (d * C, d * C)) - XP.T @ XP
        return H / m + self.l2 * xp.eye(d * C, dtype=X.dtype)

    def smoothness(self, X: Any, y: Any) -> float:
        """L = ‖X‖₂²/(2m) + l2 (theory/models.md, Prop. SM-1)."""
        return design_norms(X).spec2_over_m / 2.0 + self.l2

    def hessian_lipschitz(self, X: Any, y: Any) -> float:
        """ρ = min(max_j‖x_j‖‖X‖₂²/m, (1/m)Σ‖x_j‖³)/√2 (Prop. SM-2)."""
        return design_norms(X).cubic / math.sqrt(2.0)

    def grad_bound(self, X: Any, y: Any) -> float:
        """B = √2·min((1/m)Σ‖x_j‖, ‖X‖₂/√m) if l2 = 0, else ∞ (Prop. SM-3)."""
        if self.l2 > 0.0:
            return math.inf
        return math.sqrt(2.0) * design_norms(X).linear

    def is_convex(self) -> bool:
        return True

    def predict(self, w: Any, X: Any) -> Any:
        """argmax_c (XW)_{jc}, integer labels."""
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2-D (m samples, d features), got shape {tuple(X.shape)}")
        check_params(w, self.num_params(X.shape[1]))
        xp = array_namespace(w, X)
        return xp.argmax(X @ xp.reshape(w, (X.shape[1], self.n_classes)), axis=1)

    def check_data(self, X: Any, y: Any) -> None:
        check_data(X, y, n_classes=self.n_classes)
