"""One-hidden-layer perceptron with softmax output and cross-entropy loss (theory/models.md §MLP).

Flat parameter layout (all blocks row-major), p = d·h + h + h·C + C:

    w = [ vec(W1) (d×h) | b1 (h) | vec(W2) (h×C) | b2 (C) ].

Forward pass (eq. (MLP-1)), σ = tanh or softplus applied elementwise:

    A = XW1 + 1b1ᵀ,  S = σ(A),  Z = SW2 + 1b2ᵀ,  P = softmax(Z),
    f(w) = (1/m)Σ_j [logsumexp(z_j) − z_{j,y_j}] + (l2/2)‖w‖²   (l2 acts on all parameters).

The gradient is reverse-mode differentiation written by hand (eq. (MLP-2)); the
Hessian-vector product is Pearlmutter's R-operator applied to that backward pass
(eq. (MLP-3)), exact and vectorized over samples; the dense Hessian is the same R-operator
applied to blocks of identity columns at once (a leading batch axis).

Constants (Prop. MLP-1): for every data set, every h ≥ 1, C ≥ 2, l2 ≥ 0 and both
activations, sup_w‖∇²f(w)‖ = ∞, the Hessian is not Lipschitz and ‖∇f‖ is unbounded, so
``smoothness``, ``hessian_lipschitz`` and ``grad_bound`` all return ``math.inf``.

Cohort methods (``*_many``, :mod:`persafl_np.models.cohort`, eq. (CO-1)): the same passes with
a leading client axis on every block (W1 (n, d, h), b1 (n, h), …) and on X (n, m, d); the
output-layer error D = (P − Y)/n_c and its R-derivative are multiplied by the padding mask, so
padding rows contribute nothing to any gradient or HVP block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from persafl_np.backend import NUMPY_NAMESPACE, fast_namespace
from persafl_np.models.base import (
    L2,
    MAX_DENSE_HESSIAN,
    N_CLASSES,
    check_data,
    check_params,
    check_xy,
    refuse_dense,
)
from persafl_np.models.cohort import (
    check_cohort,
    check_labels,
    check_mask,
    check_predict_cohort,
    client_counts,
    one_hot_labels,
)
from persafl_np.models.softmax import (
    _np_label_flat,
    _np_probs_t,
    log_softmax,
    softmax,
    softmax_jvp,
    to_class_major,
)
from persafl_np.parameters import Param, validate_fields

__all__ = ["ACTIVATIONS", "MLP"]

#: Smooth activations accepted by :class:`MLP`.
ACTIVATIONS = ("tanh", "softplus")

# Directions per R-operator block when building the dense Hessian: bounds memory at
# about _HESS_BLOCK_ELEMS floats for the (k, m, max(h, C)) intermediates.
_HESS_BLOCK_ELEMS = 1 << 22


def _activation(xp: Any, name: str, A: Any, order: int) -> tuple[Any, ...]:
    """(σ(A), σ'(A)) or, for ``order=2``, (σ, σ', σ'') for tanh or softplus (eq. (MLP-3)).

    Softplus shares one exponential e = exp(−|a|) (never overflows): σ = max(a, 0) + log1p(e),
    σ' = logistic(a) = 1/(1+e) or e/(1+e) by the sign of a, σ'' = e/(1+e)².
    """
    if name == "tanh":
        T = xp.tanh(A)
        d1 = 1.0 - T * T
        return (T, d1) if order == 1 else (T, d1, -2.0 * T * d1)
    e = xp.exp(-xp.abs(A))
    r = 1.0 / (1.0 + e)
    S = xp.clip(A, 0.0, None) + xp.log1p(e)
    d1 = xp.where(A >= 0.0, r, e * r)
    return (S, d1) if order == 1 else (S, d1, e * r * r)


@dataclass(frozen=True)
class MLP:
    """d → h (tanh or softplus) → C softmax net; n_hidden ≥ 1, n_classes ≥ 2, l2 ≥ 0."""

    n_hidden: int
    n_classes: int
    activation: str = "tanh"
    l2: float = 0.0
    is_classifier = True
    params: ClassVar[tuple[Param, ...]] = (
        Param("n_hidden", "int", 16, "hidden units h", lo=1),
        N_CLASSES,
        Param("activation", "str", "tanh", "hidden activation", choices=ACTIVATIONS),
        L2,
    )

    def __post_init__(self) -> None:
        validate_fields(self)

    # ----------------------------------------------------------------- layout
    def num_params(self, n_features: int) -> int:
        d = int(n_features)
        if d < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        h, C = self.n_hidden, self.n_classes
        return d * h + h + h * C + C

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        """W1 ~ N(0, 1/d), W2 ~ N(0, 1/h) (variance-preserving), biases 0."""
        d, h, C = int(n_features), self.n_hidden, self.n_classes
        self.num_params(d)
        W1 = rng.normal(0.0, 1.0 / math.sqrt(d), size=d * h)
        W2 = rng.normal(0.0, 1.0 / math.sqrt(h), size=h * C)
        return np.concatenate([W1, np.zeros(h), W2, np.zeros(C)])

    def _split(self, xp: Any, w: Any, d: int) -> tuple[Any, Any, Any, Any]:
        """Views (W1, b1, W2, b2) of a flat vector; a leading batch axis is kept if present."""
        h, C = self.n_hidden, self.n_classes
        lead = tuple(w.shape[:-1])
        o1, o2, o3 = d * h, d * h + h, d * h + h + h * C
        return (
            xp.reshape(w[..., :o1], lead + (d, h)),
            w[..., o1:o2],
            xp.reshape(w[..., o2:o3], lead + (h, C)),
            w[..., o3:],
        )

    def _join(self, xp: Any, parts: tuple[Any, ...], lead: tuple[int, ...]) -> Any:
        return xp.concat([xp.reshape(p, lead + (-1,)) for p in parts], axis=-1)

    # ----------------------------------------------------------------- passes
    def _check(self, w: Any, X: Any, y: Any) -> Any:
        check_xy(X, y)
        check_params(w, self.num_params(X.shape[1]))
        xp = fast_namespace(w, X, y)
        check_labels(xp, y, self.n_classes)
        return xp

    def _forward(self, xp: Any, w: Any, X: Any, order: int = 1) -> dict[str, Any]:
        W1, b1, W2, b2 = self._split(xp, w, X.shape[1])
        A = X @ W1 + b1
        acts = _activation(xp, self.activation, A, order)
        Z = acts[0] @ W2 + b2
        out = {"W1": W1, "W2": W2, "S": acts[0], "dS": acts[1], "Z": Z}
        if order == 2:
            out["d2S"] = acts[2]
        return out

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w), eq. (MLP-1)."""
        xp = self._check(w, X, y)
        fw = self._forward(xp, w, X)
        Y = one_hot_labels(xp, y, self.n_classes, X.dtype, validate=False)
        out = -xp.sum(Y * log_softmax(fw["Z"])) / X.shape[0]
        return out + 0.5 * self.l2 * xp.sum(w * w) if self.l2 else out

    def _backward(self, xp: Any, fw: dict[str, Any], X: Any, y: Any) -> dict[str, Any]:
        P = softmax(fw["Z"])
        D = (P - one_hot_labels(xp, y, self.n_classes, X.dtype, validate=False)) / X.shape[0]
        dS = D @ fw["W2"].T
        return {"P": P, "D": D, "dSum": dS, "dA": dS * fw["dS"]}

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w) by hand-written back-propagation, eq. (MLP-2)."""
        xp = self._check(w, X, y)
        fw = self._forward(xp, w, X)
        bw = self._backward(xp, fw, X, y)
        parts = (X.T @ bw["dA"], xp.sum(bw["dA"], axis=0), fw["S"].T @ bw["D"],
                 xp.sum(bw["D"], axis=0))
        g = self._join(xp, parts, ())
        return g + self.l2 * w if self.l2 else g

    def _rop(self, xp: Any, w: Any, V: Any, X: Any, y: Any) -> Any:
        """∇²f(w) applied to v (p,) or to the rows of V (k, p): the R-operator of eq. (MLP-3).

        A 1-D v keeps every product 2-D (BLAS); a batch adds a leading axis (dense Hessian).
        """
        fw = self._forward(xp, w, X, order=2)
        bw = self._backward(xp, fw, X, y)
        VW1, Vb1, VW2, Vb2 = self._split(xp, V, X.shape[1])
        Vb1, Vb2 = xp.expand_dims(Vb1, axis=-2), xp.expand_dims(Vb2, axis=-2)
        RA = X @ VW1 + Vb1                                   # (k, m, h)
        RS = fw["dS"] * RA
        RZ = RS @ fw["W2"] + fw["S"] @ VW2 + Vb2              # (k, m, C)
        RD = softmax_jvp(bw["P"], RZ) / X.shape[0]
        RgW2 = xp.matrix_transpose(RS) @ bw["D"] + fw["S"].T @ RD
        RdS = RD @ fw["W2"].T + bw["D"] @ xp.matrix_transpose(VW2)
        RdA = RdS * fw["dS"] + bw["dSum"] * fw["d2S"] * RA
        parts = (X.T @ RdA, xp.sum(RdA, axis=-2), RgW2, xp.sum(RD, axis=-2))
        hv = self._join(xp, parts, tuple(V.shape[:-1]))
        return hv + self.l2 * V if self.l2 else hv

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f(w) v, exact, by the R-operator (Pearlmutter 1994), eq. (MLP-3)."""
        xp = self._check(w, X, y)
        check_params(v, self.num_params(X.shape[1]), "v")
        return self._rop(xp, w, v, X, y)

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w): the R-operator on blocks of identity columns (exact, eq. (MLP-3))."""
        xp = self._check(w, X, y)
        p = self.num_params(X.shape[1])
        refuse_dense(p)
        eye = xp.eye(p, dtype=X.dtype)
        width = max(self.n_hidden, self.n_classes, X.shape[1])
        k = max(1, min(MAX_DENSE_HESSIAN, _HESS_BLOCK_ELEMS // (X.shape[0] * width)))
        cols = [self._rop(xp, w, eye[i:min(i + k, p), :], X, y) for i in range(0, p, k)]
        # Row i is ∇²f(w) e_i, i.e. column i; no symmetrization, so tests can check symmetry.
        return xp.concat(cols, axis=0)

    # ----------------------------------------------------------------- a cohort
    def _check_many(self, W: Any, X: Any, y: Any, mask: Any, validate: bool,
                    V: Any = None) -> Any:
        xp = fast_namespace(W, X, y, mask)
        if validate:
            check_cohort(W, X, y, self.num_params, mask, V)
            check_mask(xp, mask)
        return xp

    def _forward_many(self, xp: Any, W: Any, X: Any, order: int = 1) -> dict[str, Any]:
        """Eq. (MLP-1) per client: A = X W1 + 1b1ᵀ, S = σ(A), Z = S W2 + 1b2ᵀ."""
        W1, b1, W2, b2 = self._split(xp, W, X.shape[2])
        A = X @ W1 + b1[..., None, :]
        acts = _activation(xp, self.activation, A, order)
        Z = acts[0] @ W2 + b2[..., None, :]
        out = {"W2": W2, "S": acts[0], "dS": acts[1], "Z": Z}
        if order == 2:
            out["d2S"] = acts[2]
        return out

    def _backward_many(self, xp: Any, fw: dict[str, Any], X: Any, y: Any, mask: Any,
                       validate: bool) -> dict[str, Any]:
        """D_c = mask ⊙ (P_c − Y_c)/n_c and the back-propagated dS, dA of eq. (MLP-2)."""
        P = softmax(fw["Z"])
        R = P - one_hot_labels(xp, y, self.n_classes, X.dtype, validate)
        n = client_counts(xp, X, mask)
        if mask is None:
            D = R / n
        else:
            D = R * mask[..., None] / n[..., None, None]
        dS = D @ xp.matrix_transpose(fw["W2"])
        return {"P": P, "D": D, "n": n, "dSum": dS, "dA": dS * fw["dS"]}

    def loss_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C,) losses of eq. (MLP-1) per client, mean over its real rows (eq. (CO-1))."""
        xp = self._check_many(W, X, y, mask, validate)
        Z = self._forward_many(xp, W, X)["Z"]
        Y = one_hot_labels(xp, y, self.n_classes, X.dtype, validate)
        if mask is not None:
            Y = Y * mask[..., None]
        out = -xp.sum(Y * log_softmax(Z), axis=(-2, -1)) / client_counts(xp, X, mask)
        return out + 0.5 * self.l2 * xp.sum(W * W, axis=-1) if self.l2 else out

    def grad_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C, p) gradients by back-propagation, eq. (MLP-2), per client (eq. (CO-1))."""
        xp = self._check_many(W, X, y, mask, validate)
        if xp is NUMPY_NAMESPACE:
            g = self._np_grad_many(W, X, y, mask, validate)
            return g + self.l2 * W if self.l2 else g
        fw = self._forward_many(xp, W, X)
        bw = self._backward_many(xp, fw, X, y, mask, validate)
        mT = xp.matrix_transpose
        parts = (mT(X) @ bw["dA"], xp.sum(bw["dA"], axis=-2), mT(fw["S"]) @ bw["D"],
                 xp.sum(bw["D"], axis=-2))
        g = self._join(xp, parts, (X.shape[0],))
        return g + self.l2 * W if self.l2 else g

    def _np_grad_many(self, W: np.ndarray, X: np.ndarray, y: np.ndarray, mask: Any,
                      validate: bool) -> np.ndarray:
        """Eq. (MLP-2) on NumPy: output layer class-major (n, K, m), in-place temporaries.

        Same layout reasons as the softmax cohort kernels (``models/softmax.py``): the
        per-sample softmax reduces along axis −2, labels enter by flat indexing.
        """
        n, _, d = X.shape
        W1, b1, W2, b2 = self._split(NUMPY_NAMESPACE, W, d)
        A = X @ W1
        A += b1[:, None, :]
        S, dS = _activation(NUMPY_NAMESPACE, self.activation, A, 1)
        Z = S @ W2
        Z += b2[:, None, :]
        Dt = _np_probs_t(to_class_major(Z))                        # Pᵀ (n, K, m)
        Dt.reshape(-1)[_np_label_flat(y, self.n_classes, validate)] -= 1.0
        if mask is None:
            Dt /= X.shape[1]
        else:
            Dt *= mask[:, None, :]
            Dt /= np.sum(mask, axis=-1)[:, None, None]
        dA = np.swapaxes(Dt, -1, -2) @ np.swapaxes(W2, -1, -2)      # (n, m, h)
        dA *= dS
        parts = (np.swapaxes(X, -1, -2) @ dA, np.sum(dA, axis=-2),
                 S.transpose(0, 2, 1) @ Dt.transpose(0, 2, 1), np.sum(Dt, axis=-1))
        return np.concatenate([np.reshape(p, (n, -1)) for p in parts], axis=-1)

    def hvp_many(self, W: Any, V: Any, X: Any, y: Any, mask: Any = None, *,
                 validate: bool = True) -> Any:
        """(C, p) products ∇²f_c(W[c]) V[c] by the R-operator, eq. (MLP-3), per client."""
        xp = self._check_many(W, X, y, mask, validate, V)
        if xp is NUMPY_NAMESPACE:
            hv = self._np_hvp_many(W, V, X, y, mask, validate)
            return hv + self.l2 * V if self.l2 else hv
        fw = self._forward_many(xp, W, X, order=2)
        bw = self._backward_many(xp, fw, X, y, mask, validate)
        mT = xp.matrix_transpose
        VW1, Vb1, VW2, Vb2 = self._split(xp, V, X.shape[2])
        RA = X @ VW1 + Vb1[..., None, :]                       # (C, m, h)
        RS = fw["dS"] * RA
        RZ = RS @ fw["W2"] + fw["S"] @ VW2 + Vb2[..., None, :]  # (C, m, K)
        J = softmax_jvp(bw["P"], RZ)
        n = bw["n"]
        RD = J / n if mask is None else J * mask[..., None] / n[..., None, None]
        RgW2 = mT(RS) @ bw["D"] + mT(fw["S"]) @ RD
        RdS = RD @ mT(fw["W2"]) + bw["D"] @ mT(VW2)
        RdA = RdS * fw["dS"] + bw["dSum"] * fw["d2S"] * RA
        parts = (mT(X) @ RdA, xp.sum(RdA, axis=-2), RgW2, xp.sum(RD, axis=-2))
        hv = self._join(xp, parts, (X.shape[0],))
        return hv + self.l2 * V if self.l2 else hv

    def _np_hvp_many(self, W: np.ndarray, V: np.ndarray, X: np.ndarray, y: np.ndarray,
                     mask: Any, validate: bool) -> np.ndarray:
        """Eq. (MLP-3) on NumPy, the output layer class-major (see :meth:`_np_grad_many`)."""
        n, m, d = X.shape
        sw = np.swapaxes
        W1, b1, W2, b2 = self._split(NUMPY_NAMESPACE, W, d)
        VW1, Vb1, VW2, Vb2 = self._split(NUMPY_NAMESPACE, V, d)
        A = X @ W1
        A += b1[:, None, :]
        S, dS, d2S = _activation(NUMPY_NAMESPACE, self.activation, A, 2)
        Z = S @ W2
        Z += b2[:, None, :]
        Pt = _np_probs_t(to_class_major(Z))                          # Pᵀ (n, K, m)
        Dt = Pt.copy()
        Dt.reshape(-1)[_np_label_flat(y, self.n_classes, validate)] -= 1.0
        mask3 = None if mask is None else mask[:, None, :]
        count = m if mask is None else np.sum(mask, axis=-1)[:, None, None]
        if mask3 is not None:
            Dt *= mask3
        Dt /= count                                                 # Dᵀ = (P − Y)ᵀ/n_c
        dSum = sw(Dt, -1, -2) @ sw(W2, -1, -2)                       # (n, m, h)
        RA = X @ VW1
        RA += Vb1[:, None, :]
        RS = dS * RA
        RZ = RS @ W2
        RZ += S @ VW2
        RZ += Vb2[:, None, :]
        RZt = to_class_major(RZ)                                    # R(Z)ᵀ (n, K, m)
        RZt *= Pt                                                   # P ⊙ RZ
        Pt *= np.sum(RZt, axis=-2, keepdims=True)
        RZt -= Pt                                                   # A(p) RZ, eq. (SM-2)
        if mask3 is not None:
            RZt *= mask3
        RZt /= count                                                # R(D)ᵀ
        RgW2 = sw(RS, -1, -2) @ sw(Dt, -1, -2)
        RgW2 += sw(S, -1, -2) @ sw(RZt, -1, -2)
        RdA = sw(RZt, -1, -2) @ sw(W2, -1, -2)
        RdA += sw(Dt, -1, -2) @ sw(VW2, -1, -2)
        RdA *= dS
        dSum *= d2S
        dSum *= RA
        RdA += dSum
        parts = (sw(X, -1, -2) @ RdA, np.sum(RdA, axis=-2), RgW2, np.sum(RZt, axis=-1))
        return np.concatenate([np.reshape(p, (n, -1)) for p in parts], axis=-1)

    def predict_many(self, W: Any, X: Any, *, validate: bool = True) -> Any:
        """(C, m) labels argmax_k of each client's output logits."""
        if validate:
            check_predict_cohort(W, X, self.num_params)
        xp = fast_namespace(W, X)
        return xp.argmax(self._forward_many(xp, W, X)["Z"], axis=-1)

    # -------------------------------------------------------------- constants
    def smoothness(self, X: Any, y: Any) -> float:
        """∞: no global L exists for any data set (theory/models.md, Prop. MLP-1)."""
        return math.inf

    def sample_smoothness(self, X: Any, y: Any) -> np.ndarray:
        """∞ for every row: no one-row objective has a global L either (Prop. MLP-1)."""
        return np.full(tuple(X.shape[:-1]), math.inf)

    def hessian_lipschitz(self, X: Any, y: Any) -> float:
        """∞: the Hessian is not globally Lipschitz for any data set (Prop. MLP-1)."""
        return math.inf

    def grad_bound(self, X: Any, y: Any) -> float:
        """∞: ‖∇f‖ is unbounded for any data set, even with l2 = 0 (Prop. MLP-1)."""
        return math.inf

    def is_convex(self) -> bool:
        return False

    def predict(self, w: Any, X: Any) -> Any:
        """argmax_c of the output logits, integer labels."""
        if len(X.shape) != 2:
            raise ValueError(f"X must be 2-D (m samples, d features), got shape {tuple(X.shape)}")
        check_params(w, self.num_params(X.shape[1]))
        xp = fast_namespace(w, X)
        return xp.argmax(self._forward(xp, w, X)["Z"], axis=1)

    def check_data(self, X: Any, y: Any) -> None:
        check_data(X, y, n_classes=self.n_classes)
