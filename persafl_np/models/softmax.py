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

Cohort methods (``*_many``, :mod:`persafl_np.models.cohort`, eq. (CO-1)): a cohort of n
clients has W of shape (n, d·C), viewed as (n, d, C); every product is one slice of a stacked
matmul, and the rows of P − Y (and of A(p)U) are multiplied by the padding mask before Xᵀ.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, ClassVar

import numpy as np

from persafl_np.backend import NUMPY_NAMESPACE, fast_namespace
from persafl_np.models.base import (
    L2,
    N_CLASSES,
    check_data,
    check_params,
    check_xy,
    design_norms,
    refuse_dense,
    row_sq_norms,
)
from persafl_np.models.cohort import (
    check_cohort,
    check_labels,
    check_mask,
    check_predict_cohort,
    client_counts,
    np_label_index,
    one_hot_labels,
)
from persafl_np.parameters import Param, validate_fields

__all__ = ["SoftmaxRegression", "log_softmax", "one_hot", "softmax", "softmax_jvp",
           "to_class_major"]


def one_hot(y: Any, n_classes: int, dtype: Any, validate: bool = False) -> Any:
    """(…, C) one-hot matrix of integer labels, by comparison with ``arange`` (array API).

    ``validate``: refuse labels that are not integers in 0..C−1 (``ValueError`` naming ``y``).
    """
    return one_hot_labels(fast_namespace(y), y, n_classes, dtype, validate)


def log_softmax(Z: Any) -> Any:
    """Log softmax along the last axis, shifted by the maximum so exp never overflows."""
    xp = fast_namespace(Z)
    Zs = Z - xp.max(Z, axis=-1, keepdims=True)
    return Zs - xp.log(xp.sum(xp.exp(Zs), axis=-1, keepdims=True))


def softmax(Z: Any) -> Any:
    """Softmax along the last axis: E/ΣE with E = exp(Z − max), so exp never overflows."""
    xp = fast_namespace(Z)
    E = xp.exp(Z - xp.max(Z, axis=-1, keepdims=True))
    return E / xp.sum(E, axis=-1, keepdims=True)


def softmax_jvp(P: Any, U: Any) -> Any:
    """A(p_j) u_j row-wise: P ⊙ U − P ⊙ (row sums of P ⊙ U) (eq. (SM-2)); broadcasts batches."""
    xp = fast_namespace(P, U)
    PU = P * U
    return PU - P * xp.sum(PU, axis=-1, keepdims=True)


# ---------------------------------------------------------------- NumPy cohort kernels
# On NumPy the cohort kernels work in a class-leading layout Zᵏ (K, n, m): entry [k, c, j] is the
# logit of class k for row j of client c. The per-sample reductions over the K classes are then
# K − 1 elementwise steps over one contiguous (n·m,) row per class, for the whole cohort at once
# (NumPy's reductions along a short trailing axis cost a separate inner-loop call per row: ≈10×
# slower for K = 10; along axis −2 of (n, K, m) they still cost one call per client). Large
# temporaries are updated in place and labels enter by flat indexing instead of a one-hot matrix.
# Every per-client value is one slice of a stacked matmul, a reduction inside one client's
# slice, or a column-wise (per-sample) operation, so the results do not depend on the grouping
# (theory/models.md §CO).
def _np_logits_t(W: np.ndarray, X: np.ndarray, K: int) -> np.ndarray:
    """(K, n, m) logits, a fresh C-contiguous array (class-leading layout, see above).

    Computed as X_c W_c (the single-client method's product, so the same BLAS call and the
    same bits) and then copied transposed: a class-major product W_cᵀX_cᵀ rounds differently,
    and for saturated probabilities p_y ≈ 1 that rounding is amplified in p_y − 1.
    """
    n, _, d = X.shape
    return np.ascontiguousarray((X @ W.reshape(n, d, K)).transpose(2, 0, 1))


def to_class_major(Z: np.ndarray) -> np.ndarray:
    """(n, m, K) → C-contiguous (n, K, m) copy."""
    return np.ascontiguousarray(np.swapaxes(Z, -1, -2))


def _np_label_flat(y: np.ndarray, K: int, validate: bool) -> np.ndarray:
    """Flat indices of the entries (c, y_cj, j) of a (n, K, m) array."""
    n, m = y.shape
    yi = np_label_index(y, K, validate)
    return (np.arange(n)[:, None] * (K * m) + np.arange(m) + yi * m).reshape(-1)


@lru_cache(maxsize=64)
def _np_arange(N: int) -> np.ndarray:
    a = np.arange(N)
    a.flags.writeable = False
    return a


def _np_label_flat_k(y: np.ndarray, K: int, validate: bool) -> np.ndarray:
    """Flat indices of the entries (y_cj, c, j) of a class-leading (K, n, m) array."""
    N = y.size
    yi = y if not validate and y.dtype.kind in "iu" else np_label_index(y, K, validate)
    flat = yi.reshape(N) * N
    flat += _np_arange(N)
    return flat


def _np_probs_t(Zt: np.ndarray) -> np.ndarray:
    """Softmax over axis −2 of (n, K, m) logits, in place: P = exp(Z − max)/Σ exp(Z − max)."""
    Zt -= np.max(Zt, axis=-2, keepdims=True)
    np.exp(Zt, out=Zt)
    Zt /= np.sum(Zt, axis=-2, keepdims=True)
    return Zt


def _np_class_sum(Zk: np.ndarray) -> np.ndarray:
    """(N,) Σ_k Zk[k] of a (K, N) array, accumulated k = 0, 1, … for every column.

    NumPy reduces axis 0 of a (K, N ≥ 2) array by that sequential accumulation; for N = 1 it
    would sum the K contiguous values pairwise instead (another rounding), so that case is
    summed explicitly: the result of a sample never depends on how many others share the call.
    """
    if Zk.shape[1] != 1:
        return np.add.reduce(Zk, axis=0)
    s = Zk[0].copy()
    for k in range(1, Zk.shape[0]):
        s += Zk[k]
    return s


def _np_probs_k(W: np.ndarray, X: np.ndarray, K: int) -> np.ndarray:
    """Class-leading probabilities P (K, n, m) of the logits :func:`_np_logits_t`, the softmax
    over axis 0 in place: P = exp(Z − max)/Σ exp(Z − max), one max, one exp, one sum
    (eq. (SM-2))."""
    n, m, d = X.shape
    Zk = (X @ W.reshape(n, d, K)).transpose(2, 0, 1).copy()    # _np_logits_t, one call less
    Zf = Zk.reshape(K, n * m)
    Zf -= np.maximum.reduce(Zf, axis=0)
    np.exp(Zf, out=Zf)
    Zf /= np.add.reduce(Zf, axis=0) if n * m != 1 else _np_class_sum(Zf)
    return Zk


def _np_xt_times(X: np.ndarray, Rk: np.ndarray, n: Any, mask: Any) -> np.ndarray:
    """(n, d·K) rows vec(X_cᵀ R_c)/n_c for class-leading R (K, n, m), mask applied first."""
    if mask is not None:
        Rk *= mask
    G = X.transpose(0, 2, 1) @ Rk.transpose(1, 2, 0)
    G /= n if mask is None else n[:, None, None]
    return G.reshape(X.shape[0], -1)


def _np_grad(W: np.ndarray, X: np.ndarray, flat: np.ndarray, K: int, n: Any,
             mask: Any) -> np.ndarray:
    """(n, d·K) rows vec(X_cᵀ(P_c − Y_c))/n_c of the class-leading kernels, the labels given by
    their flat indices ``flat`` (:func:`_np_label_flat_k`) (eq. (SM-2), no l2 term)."""
    Pk = _np_probs_k(W, X, K)
    Pk.reshape(-1)[flat] -= 1.0
    return _np_xt_times(X, Pk, n, mask)


@dataclass(frozen=True)
class SoftmaxRegression:
    """Softmax regression with ``n_classes`` ≥ 2 and ridge ``l2`` ≥ 0; d·C parameters."""

    n_classes: int
    l2: float = 0.0
    is_classifier = True
    params: ClassVar[tuple[Param, ...]] = (N_CLASSES, L2)

    def __post_init__(self) -> None:
        validate_fields(self)

    def num_params(self, n_features: int) -> int:
        if int(n_features) < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        return int(n_features) * self.n_classes

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return rng.normal(0.0, 1.0 / math.sqrt(n_features), size=self.num_params(n_features))

    # ------------------------------------------------------------ one client
    def _unpack(self, w: Any, X: Any, y: Any) -> tuple[Any, Any]:
        check_xy(X, y)
        check_params(w, self.num_params(X.shape[1]))
        xp = fast_namespace(w, X, y)
        return xp, xp.reshape(w, (X.shape[1], self.n_classes))

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w), eq. (SM-1)."""
        xp, W = self._unpack(w, X, y)
        logp = log_softmax(X @ W)
        Y = one_hot_labels(xp, y, self.n_classes, X.dtype)
        out = -xp.sum(Y * logp) / X.shape[0]
        return out + 0.5 * self.l2 * xp.sum(w * w) if self.l2 else out

    def _probs(self, xp: Any, W: Any, X: Any) -> Any:
        return softmax(X @ W)

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), eq. (SM-2)."""
        xp, W = self._unpack(w, X, y)
        if xp is NUMPY_NAMESPACE:
            # P = exp(Z − max)/Σ exp(Z − max) in place, then P − Y by flat indexing.
            m, K = X.shape[0], self.n_classes
            R = X @ W
            R -= np.max(R, axis=1, keepdims=True)
            np.exp(R, out=R)
            R /= np.sum(R, axis=1, keepdims=True)
            R.reshape(-1)[np.arange(0, m * K, K) + np_label_index(y, K)] -= 1.0
            g = np.reshape(X.T @ R, (-1,))
            g /= m
            return g + self.l2 * w if self.l2 else g
        R = self._probs(xp, W, X) - one_hot_labels(xp, y, self.n_classes, X.dtype)
        g = xp.reshape(X.T @ R, (-1,)) / X.shape[0]
        return g + self.l2 * w if self.l2 else g

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f(w) v without forming the Hessian, eq. (SM-2): three (m×d)(d×C)-sized products."""
        xp, W = self._unpack(w, X, y)
        check_params(v, self.num_params(X.shape[1]), "v")
        check_labels(xp, y, self.n_classes)
        V = xp.reshape(v, W.shape)
        R = softmax_jvp(self._probs(xp, W, X), X @ V)
        hv = xp.reshape(X.T @ R, (-1,)) / X.shape[0]
        return hv + self.l2 * v if self.l2 else hv

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w) = (1/m)Σ_j x_j x_jᵀ ⊗ A(p_j) + l2·I, row-major (k, c), eq. (SM-2)."""
        xp, W = self._unpack(w, X, y)
        check_labels(xp, y, self.n_classes)
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

    # ------------------------------------------------------------ a cohort
    def _check_many(self, xp: Any, W: Any, X: Any, y: Any, mask: Any, V: Any = None) -> None:
        check_cohort(W, X, y, self.num_params, mask, V)
        check_mask(xp, mask)

    def _probs_many(self, xp: Any, W: Any, X: Any) -> Any:
        C, _, d = X.shape
        return softmax(X @ xp.reshape(W, (C, d, self.n_classes)))

    def loss_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C,) losses of eq. (SM-1) per client, mean over its real rows (eq. (CO-1))."""
        xp = fast_namespace(W, X, y, mask)
        if validate:
            self._check_many(xp, W, X, y, mask)
        if xp is NUMPY_NAMESPACE:
            K = self.n_classes
            Zk = _np_logits_t(W, X, K)
            Zf = Zk.reshape(K, -1)
            Zf -= np.maximum.reduce(Zf, axis=0)
            # −log p_{y} = log Σ_k exp(z_k − max) − (z_y − max).
            zy = Zf.reshape(-1)[_np_label_flat_k(y, K, validate)]
            np.exp(Zf, out=Zf)
            ell = np.log(_np_class_sum(Zf))
            ell -= zy
            ell = ell.reshape(y.shape)
            if mask is not None:
                ell *= mask
            out = np.sum(ell, axis=-1) / client_counts(xp, X, mask)
            return out + 0.5 * self.l2 * np.sum(W * W, axis=-1) if self.l2 else out
        C, _, d = X.shape
        logp = log_softmax(X @ xp.reshape(W, (C, d, self.n_classes)))
        Y = one_hot_labels(xp, y, self.n_classes, X.dtype, validate)
        if mask is not None:
            Y = Y * mask[..., None]
        out = -xp.sum(Y * logp, axis=(-2, -1)) / client_counts(xp, X, mask)
        return out + 0.5 * self.l2 * xp.sum(W * W, axis=-1) if self.l2 else out

    def grad_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C, p) gradients vec(X_cᵀ(P_c − Y_c)/n_c + l2·W_c) (eqs. (SM-2), (CO-1))."""
        # the engine's hot path (NumPy, validate=False) skips the namespace look-up
        hot = (not validate and type(X) is np.ndarray and type(W) is np.ndarray
               and type(y) is np.ndarray and (mask is None or type(mask) is np.ndarray))
        xp = NUMPY_NAMESPACE if hot else fast_namespace(W, X, y, mask)
        if validate:
            self._check_many(xp, W, X, y, mask)
        if xp is NUMPY_NAMESPACE:
            K = self.n_classes
            g = _np_grad(W, X, _np_label_flat_k(y, K, validate), K, client_counts(xp, X, mask),
                         mask)
            return g + self.l2 * W if self.l2 else g
        R = self._probs_many(xp, W, X) - one_hot_labels(xp, y, self.n_classes, X.dtype,
                                                        validate)
        if mask is not None:
            R = R * mask[..., None]
        n = client_counts(xp, X, mask)
        G = xp.reshape(xp.matrix_transpose(X) @ R, (X.shape[0], -1))
        g = G / (n if mask is None else n[..., None])
        return g + self.l2 * W if self.l2 else g

    def grad_many_on(self, X: Any, y: Any, mask: Any = None) -> Callable[[Any], Any]:
        """W ↦ ``grad_many(W, X, y, mask, validate=False)`` on one batch evaluated at many
        points (the Moreau inner solver, ``personalization.moreau.solve_prox_many``): on NumPy
        the labels' flat indices are computed once, not at every call (same bits)."""
        if not (type(X) is np.ndarray and type(y) is np.ndarray
                and (mask is None or type(mask) is np.ndarray)):
            return partial(self.grad_many, X=X, y=y, mask=mask, validate=False)
        K, l2 = self.n_classes, self.l2
        flat = _np_label_flat_k(y, K, False)
        n = client_counts(NUMPY_NAMESPACE, X, mask)

        def grad(W: np.ndarray) -> np.ndarray:
            g = _np_grad(W, X, flat, K, n, mask)
            return g + l2 * W if l2 else g

        return grad

    def hvp_many(self, W: Any, V: Any, X: Any, y: Any, mask: Any = None, *,
                 validate: bool = True) -> Any:
        """(C, p) products ∇²f_c(W[c]) V[c] of eq. (SM-2) per client (eq. (CO-1))."""
        # the engine's hot path (NumPy, validate=False) skips the namespace look-up
        hot = (not validate and type(X) is np.ndarray and type(W) is np.ndarray
               and type(V) is np.ndarray and (mask is None or type(mask) is np.ndarray))
        xp = NUMPY_NAMESPACE if hot else fast_namespace(W, V, X, y, mask)
        if validate:
            self._check_many(xp, W, X, y, mask, V)
        if xp is NUMPY_NAMESPACE:
            if validate:
                np_label_index(y, self.n_classes)
            K = self.n_classes
            Pk = _np_probs_k(W, X, K)
            Rk = _np_logits_t(V, X, K)                    # U, class-leading
            Rk *= Pk                                      # P ⊙ U
            Pf = Pk.reshape(K, -1)
            Pf *= _np_class_sum(Rk.reshape(K, -1))        # P ⊙ ((P ⊙ U) 1)
            Rk -= Pk                                      # A(p_j) u_j, eq. (SM-2)
            hv = _np_xt_times(X, Rk, client_counts(xp, X, mask), mask)
            return hv + self.l2 * V if self.l2 else hv
        if validate:
            check_labels(xp, y, self.n_classes)
        C, _, d = X.shape
        U = X @ xp.reshape(V, (C, d, self.n_classes))
        R = softmax_jvp(self._probs_many(xp, W, X), U)
        if mask is not None:
            R = R * mask[..., None]
        n = client_counts(xp, X, mask)
        hv = xp.reshape(xp.matrix_transpose(X) @ R, (C, -1)) / (n if mask is None
                                                                else n[..., None])
        return hv + self.l2 * V if self.l2 else hv

    def predict_many(self, W: Any, X: Any, *, validate: bool = True) -> Any:
        """(C, m) labels argmax_k (X_c W_c)_{jk}."""
        if validate:
            check_predict_cohort(W, X, self.num_params)
        xp = fast_namespace(W, X)
        C, _, d = X.shape
        return xp.argmax(X @ xp.reshape(W, (C, d, self.n_classes)), axis=-1)

    # ------------------------------------------------------------ constants
    def smoothness(self, X: Any, y: Any) -> float:
        """L = ‖X‖₂²/(2m) + l2 (theory/models.md, Prop. SM-1)."""
        return design_norms(X).spec2_over_m / 2.0 + self.l2

    def sample_smoothness(self, X: Any, y: Any) -> np.ndarray:
        """L_j = ‖x_j‖²/2 + l2 of every one-row objective, shape X.shape[:-1] (eq. (M-4))."""
        Lj = row_sq_norms(X)
        Lj /= 2.0
        return Lj + self.l2 if self.l2 else Lj    # x + 0.0 is x for the norms (≥ +0 or NaN)

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
        xp = fast_namespace(w, X)
        return xp.argmax(X @ xp.reshape(w, (X.shape[1], self.n_classes)), axis=1)

    def check_data(self, X: Any, y: Any) -> None:
        check_data(X, y, n_classes=self.n_classes)
