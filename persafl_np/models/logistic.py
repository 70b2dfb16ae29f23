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

Cohort methods (``*_many``, :mod:`persafl_np.models.cohort`, eq. (CO-1)): the same formulas per
client with margins z_c = s_c ⊙ X_c w_c and the mean over its n_c real rows; the regularizers
act on each client's own w_c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from persafl_np.backend import fast_namespace
from persafl_np.models.base import (
    L2,
    check_data,
    check_params,
    check_xy,
    design_norms,
    linear_init_params,
    linear_num_params,
    refuse_dense,
    row_sq_norms,
)
from persafl_np.models.cohort import (
    check_cohort,
    check_labels,
    check_mask,
    check_predict_cohort,
    client_counts,
    masked_xt_mean,
    np_binary_neg_sign,
)
from persafl_np.models.geman_mcclure import GM1_MAX, GM2_MAX, GM3_MAX, gm, gm1, gm2
from persafl_np.parameters import Param, validate_fields

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
    params: ClassVar[tuple[Param, ...]] = (
        L2,
        Param("nonconvex", "float", 0.0, "weight nu of the nonconvex regularizer (LR-1)", lo=0.0),
    )

    def __post_init__(self) -> None:
        validate_fields(self)

    def num_params(self, n_features: int) -> int:
        return linear_num_params(n_features)

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return linear_init_params(rng, n_features)

    # ------------------------------------------------------------ one client
    def _margin(self, w: Any, X: Any, y: Any) -> tuple[Any, Any, Any]:
        """(xp, signed margins z = s ⊙ Xw with s = 2y − 1, and s); refuses labels ∉ {0, 1}."""
        check_xy(X, y)
        check_params(w, X.shape[1])
        xp = fast_namespace(w, X, y)
        check_labels(xp, y, 2)
        s = 2.0 * xp.astype(y, X.dtype) - 1.0
        return xp, s * (X @ w), s

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w), eq. (LR-1); log(1+e^{−z}) evaluated without overflow."""
        xp, z, _ = self._margin(w, X, y)
        out = xp.mean(_softplus_neg(xp, z, _exp_neg_abs(xp, z)))
        if self.l2:
            out = out + 0.5 * self.l2 * xp.sum(w * w)
        return out + self.nonconvex * xp.sum(gm(w)) if self.nonconvex else out

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), eq. (LR-2); σ(a) − y = −s·σ(−z) keeps full precision for large margins."""
        if (type(X) is np.ndarray and type(w) is np.ndarray and type(y) is np.ndarray
                and y.dtype.kind in "iu" and X.dtype.kind == "f" and w.dtype.kind == "f"):
            return self._np_grad(w, X, y)
        xp, z, s = self._margin(w, X, y)
        r = -s * _sigmoid_neg(xp, z, _exp_neg_abs(xp, z))
        return self._add_reg(w, (r @ X) / X.shape[0])

    def _np_grad(self, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """:meth:`grad` on NumPy with integer labels: the same operations (so the same bits)
        with fewer temporaries. With a = Xw and ns = −s: |z| = |a| and z ≥ 0 ⟺ ns·a ≤ 0."""
        check_xy(X, y)
        check_params(w, X.shape[1])
        ns = np_binary_neg_sign(y, X.dtype)
        a = X @ w
        e = np.copysign(a, -1.0)                          # −|a| = −|z| (sign bit set)
        np.exp(e, out=e)                                  # e = exp(−|z|)
        r = e + 1.0
        np.divide(1.0, r, out=r)                          # 1/(1 + e)
        np.multiply(e, r, out=e)
        a *= ns                                           # −z
        q = np.where(a <= 0.0, e, r)                      # σ(−z), eq. (LR-2)
        q *= ns                                           # −s·σ(−z) = σ(a) − y
        g = q @ X
        g /= X.shape[0]
        if self.l2:
            g += self.l2 * w
        if self.nonconvex:
            g += self.nonconvex * gm1(w)
        return g

    def _add_reg(self, w: Any, out: Any, v: Any = None) -> Any:
        """Gradient (v None): out + l2·w + ν φ'(w); HVP: out + l2·v + ν φ''(w) v (eq. (LR-2)).

        Terms whose weight is 0 are skipped (elementwise along the last axis: any batch shape).
        """
        if v is None:
            if self.l2:
                out = out + self.l2 * w
            return out + self.nonconvex * gm1(w) if self.nonconvex else out
        if self.l2:
            out = out + self.l2 * v
        return out + self.nonconvex * gm2(w) * v if self.nonconvex else out

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
        return self._add_reg(w, ((c * (X @ v)) @ X) / X.shape[0], v)

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w), eq. (LR-2)."""
        xp, z, _ = self._margin(w, X, y)
        d = X.shape[1]
        refuse_dense(d)
        s = self._curvature(xp, z)
        diag = self.l2 + self.nonconvex * gm2(w)
        return ((X.T * s) @ X) / X.shape[0] + xp.eye(d, dtype=X.dtype) * diag

    # ------------------------------------------------------------ a cohort
    def _margin_many(self, W: Any, X: Any, y: Any, mask: Any, validate: bool,
                     V: Any = None) -> tuple[Any, Any, Any]:
        xp = fast_namespace(W, X, y, mask)
        if validate:
            check_cohort(W, X, y, self.num_params, mask, V)
            check_mask(xp, mask)
            check_labels(xp, y, 2)
        s = 2.0 * xp.astype(y, X.dtype) - 1.0
        return xp, s * (X @ W[..., None])[..., 0], s

    def loss_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C,) losses of eq. (LR-1) per client, mean over its real rows (eq. (CO-1))."""
        xp, z, _ = self._margin_many(W, X, y, mask, validate)
        ell = _softplus_neg(xp, z, _exp_neg_abs(xp, z))
        if mask is not None:
            ell = ell * mask
        out = xp.sum(ell, axis=-1) / client_counts(xp, X, mask)
        if self.l2:
            out = out + 0.5 * self.l2 * xp.sum(W * W, axis=-1)
        return out + self.nonconvex * xp.sum(gm(W), axis=-1) if self.nonconvex else out

    def grad_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C, p) gradients of eq. (LR-2) per client (eq. (CO-1))."""
        xp, z, s = self._margin_many(W, X, y, mask, validate)
        g = masked_xt_mean(xp, -s * _sigmoid_neg(xp, z, _exp_neg_abs(xp, z)), X, mask)
        return self._add_reg(W, g)

    def hvp_many(self, W: Any, V: Any, X: Any, y: Any, mask: Any = None, *,
                 validate: bool = True) -> Any:
        """(C, p) products ∇²f_c(W[c]) V[c] of eq. (LR-2) per client (eq. (CO-1))."""
        xp, z, _ = self._margin_many(W, X, y, mask, validate, V)
        hv = masked_xt_mean(xp, self._curvature(xp, z) * (X @ V[..., None])[..., 0], X, mask)
        return self._add_reg(W, hv, V)

    def predict_many(self, W: Any, X: Any, *, validate: bool = True) -> Any:
        """(C, m) labels 1 where x·w_c ≥ 0, else 0; integer dtype."""
        if validate:
            check_predict_cohort(W, X, self.num_params)
        xp = fast_namespace(W, X)
        return xp.astype((X @ W[..., None])[..., 0] >= 0.0, xp.int64)

    # ------------------------------------------------------------ constants
    def smoothness(self, X: Any, y: Any) -> float:
        """L = ‖X‖₂²/(4m) + l2 + 2ν (theory/models.md, Prop. LR-1)."""
        return design_norms(X).spec2_over_m / 4.0 + self.l2 + GM2_MAX * self.nonconvex

    def sample_smoothness(self, X: Any, y: Any) -> np.ndarray:
        """L_j = ‖x_j‖²/4 + l2 + 2ν of every one-row objective, shape X.shape[:-1] (eq. (M-4))."""
        return row_sq_norms(X) / 4.0 + (self.l2 + GM2_MAX * self.nonconvex)

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
        xp = fast_namespace(w, X)
        return xp.astype(X @ w >= 0.0, xp.int64)

    def check_data(self, X: Any, y: Any) -> None:
        check_data(X, y, binary=True)
