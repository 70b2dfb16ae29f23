"""The model protocol every per-client objective f_i implements, and its input contract.

A model is a stateless object describing a loss family over a *flat* parameter
vector ``w`` (shape ``(num_params(d),)``), evaluated on a client's data
``X`` (shape ``(m, d)``, float) and ``y`` (shape ``(m,)``: float targets for
regression, integer labels for classification). Notation follows
``theory/models.md`` (and theory/brief_results.md §A): f(w) = (1/m) Σ_j ℓ(w; x_j, y_j)
+ regularizer, L the gradient-Lipschitz constant, ρ the Hessian-Lipschitz
constant, B a bound on ‖∇f‖.

Contract
--------
* ``loss``/``grad``/``hvp``/``hessian`` are vectorized over samples and take their
  array namespace from the inputs (:mod:`persafl_np.backend`), so they run on
  NumPy, CuPy and ``array_api_strict``. They do O(1) shape checks on every call
  (no silent broadcasting) and trust the *values*; value checks (NaN/Inf, label
  range) are done once at the boundary by :func:`check_data`.
* The constants ``smoothness``/``hessian_lipschitz``/``grad_bound`` hold for
  **all** ``w`` (global constants), are computed on the host in float64, and
  each has a proof in ``theory/models.md``.
* A mini-batch is ``take_rows(X, idx), take_rows(y, idx)``
  (:func:`persafl_np.backend.take_rows`).
* Labels and targets are checked at the boundary *and* by the public methods, cheaply:
  classifiers refuse labels that are not integers in 0..K−1 (an O(m·K) count over the one-hot
  comparison they build anyway), regression models refuse integer-dtype ``y`` (class labels)
  unless built with ``allow_int_targets=True`` (O(1), the dtype only).

Cohort (batched) methods
------------------------
``loss_many(W, X, y, mask=None)`` → (C,), ``grad_many`` → (C, p), ``hvp_many(W, V, …)`` → (C, p)
and ``predict_many(W, X)`` → (C, m) evaluate C clients at once, each at its own parameters:
``W, V`` (C, p), ``X`` (C, m, d), ``y`` (C, m), ``mask`` None or (C, m) 0/1 in X's dtype
(padding rows, for clients with unequal data sizes). Row c equals the single-client method
on ``(W[c], X[c][real rows], y[c][real rows])`` to rounding, and on NumPy is bit-identical to
the same batched call on the one-client cohort ``W[c:c+1], X[c:c+1], …`` — results never
depend on how clients are grouped. The layout, the reason for pad + mask, and how the kernels
achieve grouping invariance are in :mod:`persafl_np.models.cohort` (theory/models.md §CO).

Unvalidated kernels: every ``*_many`` method takes a keyword ``validate=True``. With
``validate=False`` nothing is checked (no shapes, no label range, no mask values) and no
extra work is done: this is the entry point for hot paths, such as the engine's local steps,
whose data passed ``model.check_data`` once and whose shapes the caller builds itself. A bad
label then gives a wrong result (or an ``IndexError``), so never pass ``validate=False`` on
user input.

Adding a model: write a frozen dataclass with these methods (``least_squares.py`` is the
smallest template), prove its constants in ``theory/models.md`` (return ``math.inf`` where no
global constant exists, as for the MLP), and verify it with
``persafl_np.checks.check_model(model, X, y)``, which compares the gradient and HVP with
finite differences, the Hessian with the HVP, and samples the constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from persafl_np.arguments import check_nonneg
from persafl_np.backend import to_numpy
from persafl_np.parameters import Param

__all__ = [
    "ALLOW_INT_TARGETS",
    "L2",
    "N_CLASSES",
    "MAX_DENSE_HESSIAN",
    "DesignNorms",
    "Model",
    "check_data",
    "check_nonneg",
    "check_params",
    "check_xy",
    "design_norms",
    "refuse_dense",
    "row_sq_norms",
]

#: ``hessian`` refuses to build a dense matrix with more than this many parameters
#: (4096² float64 = 128 MiB); use ``hvp`` instead.
MAX_DENSE_HESSIAN = 4096


#: Declarations shared by the models (persafl_np.parameters): the ridge weight, the
#: regression models' integer-target switch, and the class count (taken from the data).
L2 = Param("l2", "float", 0.0, "ridge weight: + (l2/2)||w||^2", lo=0.0)
ALLOW_INT_TARGETS = Param("allow_int_targets", "bool", False,
                          "accept integer-dtype regression targets (class labels are refused)")
N_CLASSES = Param("n_classes", "int", None, "number of classes (from the data set)", lo=2,
                  toml=False)


@runtime_checkable
class Model(Protocol):
    """Per-client objective f_i over a flat parameter vector (see module docstring)."""

    #: True when labels are integers 0..C−1 and ``predict`` returns labels.
    is_classifier: bool

    def num_params(self, n_features: int) -> int:
        """Length of the flat parameter vector for ``n_features`` input features."""
        ...

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        """A deterministic (given ``rng``) initial parameter vector, NumPy float64."""
        ...

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        """f(w) on (X, y): a 0-d array of the inputs' namespace."""
        ...

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        """∇f(w), shape ``w.shape``."""
        ...

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        """∇²f(w) v, exact and analytic, shape ``w.shape``."""
        ...

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        """Dense ∇²f(w); raises ``ValueError`` above :data:`MAX_DENSE_HESSIAN` parameters."""
        ...

    def smoothness(self, X: Any, y: Any) -> float:
        """L with ‖∇f(w) − ∇f(u)‖ ≤ L‖w − u‖ for all w, u."""
        ...

    def hessian_lipschitz(self, X: Any, y: Any) -> float:
        """ρ with ‖∇²f(w) − ∇²f(u)‖₂ ≤ ρ‖w − u‖ for all w, u (0 if the Hessian is constant)."""
        ...

    def grad_bound(self, X: Any, y: Any) -> float:
        """B with ‖∇f(w)‖ ≤ B for all w, or ``math.inf`` when no such bound exists."""
        ...

    def is_convex(self) -> bool:
        """True when f is convex in w for every data set (used by the Moreau envelope)."""
        ...

    def predict(self, w: Any, X: Any) -> Any:
        """Predicted labels (classifiers) or predicted targets (regression)."""
        ...

    def check_data(self, X: Any, y: Any) -> None:
        """Raise ``ValueError`` naming ``X`` or ``y`` if the data can't be used by this model."""
        ...

    def loss_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C,) losses f_c(W[c]) of C clients (module docstring, eq. (CO-1))."""
        ...

    def grad_many(self, W: Any, X: Any, y: Any, mask: Any = None, *,
                  validate: bool = True) -> Any:
        """(C, p) gradients ∇f_c(W[c]) of C clients."""
        ...

    def hvp_many(self, W: Any, V: Any, X: Any, y: Any, mask: Any = None, *,
                 validate: bool = True) -> Any:
        """(C, p) Hessian-vector products ∇²f_c(W[c]) V[c] of C clients."""
        ...

    def predict_many(self, W: Any, X: Any, *, validate: bool = True) -> Any:
        """(C, m) predictions of C clients (labels for classifiers, targets for regression)."""
        ...


def check_data(
    X: Any,
    y: Any,
    *,
    n_classes: int | None = None,
    binary: bool = False,
) -> None:
    """Boundary check shared by all models: shapes, finiteness, label range.

    Parameters
    ----------
    X, y:
        Features ``(m, d)`` and targets ``(m,)``.
    n_classes:
        If given, ``y`` must hold integers in ``0..n_classes-1``.
    binary:
        If true, ``y`` must hold only 0 and 1.
    """
    Xn, yn = to_numpy(X), to_numpy(y)
    if Xn.ndim != 2:
        raise ValueError(f"X must be 2-D (m samples, d features), got shape {Xn.shape}")
    if Xn.shape[0] < 1 or Xn.shape[1] < 1:
        raise ValueError(f"X must have at least one sample and one feature, got shape {Xn.shape}")
    if yn.ndim != 1 or yn.shape[0] != Xn.shape[0]:
        raise ValueError(
            f"y must be 1-D with one entry per row of X ({Xn.shape[0]}), got shape {yn.shape}"
        )
    if not np.issubdtype(Xn.dtype, np.floating):
        raise ValueError(f"X must be a floating-point array, got dtype {Xn.dtype}")
    if not np.all(np.isfinite(Xn)):
        raise ValueError("X contains NaN or Inf; clean or impute the features first")
    if n_classes is not None or binary:
        hi = 2 if binary else int(n_classes)  # type: ignore[arg-type]
        if not (np.issubdtype(yn.dtype, np.integer) or np.issubdtype(yn.dtype, np.bool_)):
            if not np.all(np.isfinite(yn)) or np.any(yn != np.round(yn)):
                raise ValueError(f"y must hold integer labels in 0..{hi - 1}, got dtype {yn.dtype}")
        if yn.size and (yn.min() < 0 or yn.max() > hi - 1):
            raise ValueError(
                f"y labels must lie in 0..{hi - 1}, got range {yn.min()}..{yn.max()}"
            )
    elif not np.all(np.isfinite(yn)):
        raise ValueError("y contains NaN or Inf")


def check_params(w: Any, expected: int, name: str = "w") -> None:
    """O(1) shape check of a flat parameter vector (called on every public evaluation)."""
    shape = tuple(w.shape)
    if shape != (expected,):
        raise ValueError(f"{name} must have shape ({expected},), got {shape}")


def check_xy(X: Any, y: Any) -> None:
    """O(1) shape check of a data pair on every evaluation: ``X`` is (m, d), ``y`` is (m,)."""
    if len(X.shape) != 2:
        raise ValueError(f"X must be 2-D (m samples, d features), got shape {tuple(X.shape)}")
    if tuple(y.shape) != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {tuple(y.shape)}")


def linear_num_params(n_features: int) -> int:
    """Parameter count of a linear model without bias: one weight per feature (≥ 1)."""
    if int(n_features) < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
    return int(n_features)


def linear_init_params(rng: np.random.Generator, n_features: int) -> np.ndarray:
    """N(0, 1/d) weights for a linear model: unit-scale margins xᵀw for standardized x."""
    return rng.normal(0.0, 1.0 / math.sqrt(n_features), size=linear_num_params(n_features))


def linear_residual(w: Any, X: Any, y: Any) -> Any:
    """r = Xw − y after the O(1) shape checks of ``X``, ``y`` and ``w`` (linear regression)."""
    check_xy(X, y)
    check_params(w, X.shape[1])
    return X @ w - y


def refuse_dense(p: int) -> None:
    """Raise ``ValueError`` when a dense p×p Hessian exceeds :data:`MAX_DENSE_HESSIAN`."""
    if p > MAX_DENSE_HESSIAN:
        raise ValueError(
            f"hessian: {p} parameters exceed MAX_DENSE_HESSIAN={MAX_DENSE_HESSIAN}; use hvp"
        )


@dataclass(frozen=True)
class DesignNorms:
    """Host-side norms of a design matrix X (m×d) that the constants of theory/models.md use.

    Attributes
    ----------
    m: number of samples.
    spec2_over_m: ‖X‖₂²/m = λ_max(XᵀX/m).
    spec_over_sqrt_m: ‖X‖₂/√m.
    max_row: max_j ‖x_j‖.
    mean_row: (1/m) Σ_j ‖x_j‖.
    mean_row_cubed: (1/m) Σ_j ‖x_j‖³.
    """

    m: int
    spec2_over_m: float
    spec_over_sqrt_m: float
    max_row: float
    mean_row: float
    mean_row_cubed: float

    @property
    def cubic(self) -> float:
        """min(max_j‖x_j‖·‖X‖₂²/m, (1/m)Σ_j‖x_j‖³): the data factor of every ρ (eq. (M-2))."""
        return min(self.max_row * self.spec2_over_m, self.mean_row_cubed)

    @property
    def linear(self) -> float:
        """min((1/m)Σ_j‖x_j‖, ‖X‖₂/√m): the data factor of every finite B (eq. (M-3))."""
        return min(self.mean_row, self.spec_over_sqrt_m)


def design_norms(X: Any) -> DesignNorms:
    """Compute :class:`DesignNorms` of ``X`` on the host in float64."""
    Xn = np.asarray(to_numpy(X), dtype=np.float64)
    if Xn.ndim != 2 or Xn.shape[0] < 1:
        raise ValueError(f"X must be 2-D with at least one row, got shape {Xn.shape}")
    m = Xn.shape[0]
    spec = float(np.linalg.norm(Xn, 2)) if Xn.size else 0.0
    rows = np.linalg.norm(Xn, axis=1)
    return DesignNorms(
        m=m,
        spec2_over_m=spec * spec / m,
        spec_over_sqrt_m=spec / math.sqrt(m),
        max_row=float(rows.max()),
        mean_row=float(rows.mean()),
        mean_row_cubed=float(np.mean(rows**3)),
    )


def row_sq_norms(X: Any) -> np.ndarray:
    """‖x_j‖² of every row of X (…, m, d) as a float64 host array (…, m): the data factor of the
    per-sample smoothness L_j = ``sample_smoothness`` (theory/models.md eq. (M-4)).

    One ``einsum`` sums each row's d squares in one inner loop, the same arithmetic for every row
    whatever the array's shape, so a row's value does not depend on the other rows (grouping
    invariance, §CO); 4× faster than ``np.sum(X * X, axis=-1)``, whose reduction along a short
    trailing axis costs a loop call per row.
    """
    Xn = np.asarray(to_numpy(X), dtype=np.float64)
    return np.einsum("...j,...j->...", Xn, Xn)
