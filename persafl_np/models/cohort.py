"""The cohort (batched) input contract of the models: shapes, padding masks, labels.

A *cohort* is C clients evaluated at once, each at its own parameters. Every model has

* ``loss_many(W, X, y, mask=None) -> (C,)``,
* ``grad_many(W, X, y, mask=None) -> (C, p)``,
* ``hvp_many(W, V, X, y, mask=None) -> (C, p)``,
* ``predict_many(W, X) -> (C, m)``,

with ``W, V`` of shape (C, p), ``X`` (C, m, d), ``y`` (C, m) (integer labels for classifiers,
float targets for regression) and row c of every result equal to the single-client method on
``(W[c], X[c], y[c])`` (theory/models.md §CO, eq. (CO-1)).

Why pad + mask for unequal data sizes
-------------------------------------
Mini-batches of one size b stack directly as (C, b, d). Full-batch work on clients with
unequal sizes m_i is stacked by padding every client to m = max_i m_i rows and passing
``mask`` (C, m) of 0/1 in X's dtype: 1 marks a real row, 0 a padding row, and client c
averages over its n_c = Σ_j mask[c, j] real rows (eq. (CO-1)). We chose padding over
concatenation with segment sums because (i) the array API has no segment-sum / scatter-add,
so segment sums would need a NumPy-only ``np.add.reduceat`` or a dense (C, Σm_i) indicator
matmul; (ii) with padding every per-client quantity stays one slice of one stacked
``matmul``, which is what makes the results independent of how clients are grouped (below);
(iii) the waste is bounded by max_i m_i / mean_i m_i, and federated partitions that are
very unequal can be bucketed by size by the caller. Padding rows must hold finite features
(zeros are best) and, for classifiers, a valid label (0): they are multiplied by 0, and
0·NaN would be NaN. ``mask=None`` means every row is real (n_c = m) and skips the multiply.

Grouping invariance
-------------------
On NumPy the batched results are **bit-identical** for every grouping of clients: row c of a
call on C clients equals the same method called on the cohort ``W[c:c+1], X[c:c+1], …``.
The kernels are written for that: every product is one slice of a stacked ``matmul`` (NumPy
calls the same BLAS routine with the same shape for each slice), every reduction runs along
a trailing axis of one client's slice, and everything else is elementwise. Inputs must be
C-contiguous for that guarantee (strided views may take a different BLAS or SIMD path).

Validation
----------
The public methods do O(1) shape checks and the cheap O(C·m) value checks of the boundary:
classifiers refuse labels that are not integers in 0..K−1 (:func:`one_hot_labels`, reusing
the one-hot comparison the model needs anyway), regression models refuse integer-dtype
targets unless built with ``allow_int_targets=True`` (:func:`check_targets`), and a mask must
hold only 0/1 with at least one real row per client (:func:`check_mask`). Passing
``validate=False`` skips *all* of that (shapes too): it is for callers such as the engine's
hot path that validated the data once (``model.check_data``) and own the shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from persafl_np.backend import is_integer_dtype, to_numpy

__all__ = [
    "check_cohort",
    "check_labels",
    "check_mask",
    "check_targets",
    "client_counts",
    "masked_xt_mean",
    "np_binary_neg_sign",
    "np_label_index",
    "one_hot_labels",
]


def check_cohort(W: Any, X: Any, y: Any, num_params: Callable[[int], int], mask: Any = None,
                 V: Any = None) -> None:
    """O(1) shape checks of a cohort call: X (C, m, d), y (C, m), W and V (C, p), mask (C, m).

    ``num_params``: the model's d ↦ p (called once X is known to be 3-D).
    """
    if len(X.shape) != 3:
        raise ValueError(
            f"X must be 3-D (C clients, m rows, d features) for a cohort call, got shape "
            f"{tuple(X.shape)}"
        )
    C, m, p = X.shape[0], X.shape[1], num_params(X.shape[2])
    if tuple(y.shape) != (C, m):
        raise ValueError(f"y must have shape ({C}, {m}) (one row per client), got {tuple(y.shape)}")
    if tuple(W.shape) != (C, p):
        raise ValueError(f"W must have shape ({C}, {p}) (one parameter row per client), "
                         f"got {tuple(W.shape)}")
    if V is not None and tuple(V.shape) != (C, p):
        raise ValueError(f"V must have shape ({C}, {p}), got {tuple(V.shape)}")
    if mask is not None and tuple(mask.shape) != (C, m):
        raise ValueError(f"mask must have shape ({C}, {m}) or be None, got {tuple(mask.shape)}")


def check_predict_cohort(W: Any, X: Any, num_params: Callable[[int], int]) -> None:
    """O(1) shape checks of ``predict_many``: X (C, m, d), W (C, p)."""
    if len(X.shape) != 3:
        raise ValueError(
            f"X must be 3-D (C clients, m rows, d features) for a cohort call, got shape "
            f"{tuple(X.shape)}"
        )
    p = num_params(X.shape[2])
    if tuple(W.shape) != (X.shape[0], p):
        raise ValueError(f"W must have shape ({X.shape[0]}, {p}), got {tuple(W.shape)}")


def check_mask(xp: Any, mask: Any) -> None:
    """O(C·m): ``mask`` holds only 0 and 1, and every client has at least one real row."""
    if mask is None:
        return
    if is_integer_dtype(xp, mask) or not xp.isdtype(mask.dtype, "real floating"):
        raise ValueError(f"mask must be a floating-point 0/1 array in X's dtype, got {mask.dtype}")
    if not bool(xp.all((mask == 0.0) | (mask == 1.0))):
        raise ValueError("mask must hold only 0 (padding row) and 1 (real row)")
    if bool(xp.any(xp.max(mask, axis=-1) == 0.0)):
        raise ValueError("mask: every client needs at least one real row (a row of mask is all 0)")


def client_counts(xp: Any, X: Any, mask: Any) -> Any:
    """n_c of eq. (CO-1): the Python int m when ``mask`` is None, else Σ_j mask[c, j] (C,).

    A sum of 0/1 values is exact (below 2^24 rows in float32), and each row sums along its own
    trailing axis, so the counts do not depend on the grouping.
    """
    if mask is None:
        return X.shape[-2]
    return xp.sum(mask, axis=-1)


def masked_xt_mean(xp: Any, u: Any, X: Any, mask: Any) -> Any:
    """(C, d) rows (1/n_c) Σ_j mask[c, j] u[c, j] x_cj — the X_cᵀu_c / n_c of eq. (CO-1) that
    every single-output model's gradient and HVP end with (u: per-sample weights, (C, m)).

    One stacked (1, m) @ (m, d) product per client: the arithmetic of a row does not depend on
    the other clients, so the result is grouping-invariant.
    """
    if mask is not None:
        u = u * mask
    n = client_counts(xp, X, mask)
    return (u[..., None, :] @ X)[..., 0, :] / (n if mask is None else n[..., None])


@lru_cache(maxsize=64)
def _np_classes(n_classes: int) -> np.ndarray:
    cls = np.arange(n_classes)
    cls.flags.writeable = False
    return cls


def _label_error(y: Any, n_classes: int) -> ValueError:
    yn = np.asarray(to_numpy(y)).ravel()
    hi = n_classes - 1
    if yn.dtype.kind == "f":
        bad = yn[~(np.isfinite(yn) & (yn == np.round(yn)) & (yn >= 0) & (yn <= hi))]
    else:
        bad = yn[(yn < 0) | (yn > hi)]
    shown = ", ".join(str(v) for v in bad[:5].tolist())
    return ValueError(
        f"y must hold integer labels in 0..{hi}, got {bad.size} invalid "
        f"(e.g. {shown}; dtype {yn.dtype})"
    )


def _label_match(xp: Any, y: Any, n_classes: int, validate: bool) -> Any:
    """Boolean ``y[..., None] == arange(K)``; with ``validate``, refuse labels matching nothing."""
    if type(y) is np.ndarray:
        E = y[..., None] == _np_classes(n_classes)
        if validate and np.count_nonzero(E) != y.size:
            raise _label_error(y, n_classes)
        return E
    if xp.isdtype(y.dtype, "bool"):
        y = xp.astype(y, xp.int64)
    E = y[..., None] == xp.arange(n_classes, dtype=y.dtype)
    if validate and int(xp.sum(xp.astype(E, xp.int64))) != y.size:
        raise _label_error(y, n_classes)
    return E


def one_hot_labels(xp: Any, y: Any, n_classes: int, dtype: Any, validate: bool = True) -> Any:
    """One-hot labels Y (y.shape + (K,)) in ``dtype``; with ``validate``, refuse bad labels.

    A label is valid when it equals exactly one of 0..K−1, so the labels are valid iff the
    boolean comparison ``y[..., None] == arange(K)`` has exactly ``y.size`` true entries: the
    check costs one count over the comparison the one-hot needs anyway. NaN, 2.5, −1 and K all
    match nothing. Raises ``ValueError`` naming ``y`` and the range 0..K−1.
    """
    E = _label_match(xp, y, n_classes, validate)
    return E.astype(dtype) if type(E) is np.ndarray else xp.astype(E, dtype)


def check_labels(xp: Any, y: Any, n_classes: int) -> None:
    """Refuse labels that are not integers in 0..K−1 (O(m·K), see :func:`one_hot_labels`)."""
    _label_match(xp, y, n_classes, True)


def np_label_index(y: np.ndarray, n_classes: int, validate: bool = True) -> np.ndarray:
    """NumPy labels as an integer array for flat indexing; with ``validate``, refuse bad ones.

    O(m) without the (m, K) comparison of :func:`one_hot_labels`: integer labels are checked
    by their min and max, float labels also for being integer-valued (NaN and ±inf fail every
    comparison). Same ``ValueError`` as :func:`one_hot_labels`.
    """
    kind = y.dtype.kind
    if validate and y.size:
        if kind in "iu":
            ok = int(y.min()) >= 0 and int(y.max()) <= n_classes - 1
        elif kind == "b":
            ok = True
        else:
            ok = bool(np.all((y >= 0) & (y <= n_classes - 1) & (y == np.round(y))))
        if not ok:
            raise _label_error(y, n_classes)
    return y if kind in "iu" else y.astype(np.intp)


_NEG_SIGN: dict = {}


def np_binary_neg_sign(y: np.ndarray, dtype: Any, validate: bool = True) -> np.ndarray:
    """−s = 1 − 2y ∈ {+1, −1} in ``dtype`` of NumPy *integer* labels y ∈ {0, 1} (eq. (LR-1):
    s = 2y − 1), by one look-up; with ``validate``, refuse other labels (same ``ValueError``
    as :func:`check_labels`): an integer is 0 or 1 iff y >> 1 is 0."""
    if validate and np.count_nonzero(y >> 1):
        raise _label_error(y, 2)
    table = _NEG_SIGN.get(dtype)
    if table is None:
        table = _NEG_SIGN[dtype] = np.array([1.0, -1.0], dtype=dtype)
        table.flags.writeable = False
    return table.take(y)


def check_targets(xp: Any, y: Any, allow_int_targets: bool) -> None:
    """Regression targets: refuse an integer/bool dtype (class labels) unless allowed. O(1)."""
    if not allow_int_targets and is_integer_dtype(xp, y):
        raise ValueError(
            f"y has integer dtype {y.dtype}: these look like class labels, not regression "
            "targets; build the model with allow_int_targets=True to fit integer targets"
        )
