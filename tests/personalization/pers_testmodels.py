"""Test-only models and the per-model cases the personalization tests are parametrized over.

* :class:`Quadratic`: f(w) = ½(w − c)ᵀA(w − c) + f0 for any symmetric A (indefinite allowed), the
  data being ignored except for its shapes. It is the tightness witness of eqs. (MAML-8), (ME-4).
* :class:`Spy`: wraps a model and records which sample ids (column 0 of X) each call saw.
* :func:`model_cases`: every model of ``persafl_np.models`` on small data, with a curvature
  bound ``L`` valid near the test point (the model's global L when finite, else twice the
  spectral norm of the dense Hessian at w — the MLP has no global L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import persafl_np.models as M


@dataclass(frozen=True)
class Quadratic:
    A: np.ndarray
    c: np.ndarray
    f0: float = 0.0
    convex_flag: bool = False
    is_classifier = False

    def num_params(self, n_features: int) -> int:
        return int(self.c.shape[0])

    def init_params(self, rng: np.random.Generator, n_features: int) -> np.ndarray:
        return rng.normal(size=self.c.shape[0])

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        r = w - self.c
        return 0.5 * r @ (self.A @ r) + self.f0

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        return self.A @ (w - self.c)

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        return self.A @ v

    def hessian(self, w: Any, X: Any, y: Any) -> Any:
        return self.A

    def smoothness(self, X: Any, y: Any) -> float:
        return float(np.max(np.abs(np.linalg.eigvalsh(self.A))))

    def hessian_lipschitz(self, X: Any, y: Any) -> float:
        return 0.0

    def grad_bound(self, X: Any, y: Any) -> float:
        return math.inf

    def is_convex(self) -> bool:
        return self.convex_flag

    def predict(self, w: Any, X: Any) -> Any:
        return X @ w[: X.shape[1]]

    def check_data(self, X: Any, y: Any) -> None:
        pass


@dataclass
class Spy:
    """Delegates to ``base``; logs (method, sorted sample ids) per call. X[:, 0] holds the ids."""

    base: Any
    log: list = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)

    def _rec(self, kind: str, X: Any) -> None:
        self.log.append((kind, tuple(sorted(int(round(v)) for v in np.asarray(X)[:, 0]))))

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        self._rec("grad", X)
        return self.base.grad(w, X, y)

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        self._rec("hvp", X)
        return self.base.hvp(w, v, X, y)


def random_symmetric(rng: np.random.Generator, eigs: np.ndarray) -> np.ndarray:
    Qm, _ = np.linalg.qr(rng.normal(size=(len(eigs), len(eigs))))
    return (Qm * eigs) @ Qm.T


@dataclass(frozen=True)
class Case:
    name: str
    model: Any
    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    L: float  # curvature bound valid near w (global when the model has one)
    global_L: bool


def _local_L(model: Any, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, bool]:
    L = float(model.smoothness(X, y))
    if math.isfinite(L):
        return L, True
    H = np.asarray(model.hessian(w, X, y))
    return 2.0 * float(np.linalg.norm(H, 2)), False


def model_cases(seed: int = 0, m: int = 12, d: int = 3) -> list[Case]:
    """One small client per model exported by ``persafl_np.models``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    y_reg = X @ rng.normal(size=d) + 0.3 * rng.normal(size=m)
    y_bin = (rng.random(m) < 0.5).astype(np.int64)
    y_c3 = rng.integers(0, 3, size=m)
    specs: list[tuple[str, Any, np.ndarray]] = [("least_squares", M.LeastSquares(l2=0.1), y_reg)]
    if hasattr(M, "LogisticRegression"):
        specs.append(("logistic", M.LogisticRegression(l2=0.05), y_bin))
        specs.append(("logistic_nonconvex", M.LogisticRegression(nonconvex=0.2), y_bin))
    if hasattr(M, "SoftmaxRegression"):
        specs.append(("softmax", M.SoftmaxRegression(n_classes=3, l2=0.05), y_c3))
    if hasattr(M, "RobustRegression"):
        specs.append(("robust", M.RobustRegression(), y_reg))
    if hasattr(M, "MLP"):
        specs.append(("mlp", M.MLP(n_hidden=4, n_classes=3), y_c3))
    cases = []
    for name, model, y in specs:
        w = model.init_params(rng, d) + 0.3 * rng.normal(size=model.num_params(d))
        L, is_global = _local_L(model, w, X, y)
        cases.append(Case(name, model, X, y, w, L, is_global))
    return cases


CASES = model_cases()
CASE_IDS = [c.name for c in CASES]


def fd_grad(fun: Any, w: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central finite-difference gradient of a scalar function (error O(h²) + O(ε/h))."""
    g = np.empty_like(w)
    for k in range(w.shape[0]):
        e = np.zeros_like(w)
        e[k] = h
        g[k] = (fun(w + e) - fun(w - e)) / (2 * h)
    return g


@dataclass(frozen=True)
class Linear:
    """f(w) = bᵀw: zero Hessian everywhere (first-order MAML is then exact)."""

    b: np.ndarray
    is_classifier = False

    def num_params(self, n_features: int) -> int:
        return int(self.b.shape[0])

    def loss(self, w: Any, X: Any, y: Any) -> Any:
        return self.b @ w

    def grad(self, w: Any, X: Any, y: Any) -> Any:
        return self.b + 0.0 * w

    def hvp(self, w: Any, v: Any, X: Any, y: Any) -> Any:
        return 0.0 * v

    def smoothness(self, X: Any, y: Any) -> float:
        return 0.0

    def is_convex(self) -> bool:
        return True


def id_data(rng: np.random.Generator, m: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Data whose column 0 is the sample id (for :class:`Spy`)."""
    X = rng.normal(size=(m, d))
    X[:, 0] = np.arange(m, dtype=np.float64)
    return X, rng.normal(size=m)
