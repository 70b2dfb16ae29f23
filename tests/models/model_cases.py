"""Random model/data cases shared by the model tests (imported as a plain module)."""

from __future__ import annotations

import numpy as np

from persafl_np.models import (
    MLP,
    LeastSquares,
    LogisticRegression,
    RobustRegression,
    SoftmaxRegression,
)

#: One entry per model family (MLP once per activation).
KINDS = ("least_squares", "logistic", "softmax", "robust", "mlp_tanh", "mlp_softplus")
#: Families whose constants are finite (MLP's are ∞ by Prop. MLP-1).
FINITE_KINDS = ("least_squares", "logistic", "softmax", "robust")


def make_case(kind: str, seed: int, m: int, d: int, regularize: bool = True):
    """(model, X, y, rng) for a family, with random data and hyper-parameters.

    Hyper-parameters are drawn so that both l2 = 0 (finite B) and l2 > 0 occur.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d)) * rng.choice([0.3, 1.0, 3.0])
    l2 = float(rng.choice([0.0, 0.0, 0.1, 1.0])) if regularize else 0.0
    if kind == "least_squares":
        return LeastSquares(l2), X, rng.normal(size=m), rng
    if kind == "logistic":
        nu = float(rng.choice([0.0, 0.5, 2.0]))
        return LogisticRegression(l2=l2, nonconvex=nu), X, rng.integers(0, 2, m), rng
    if kind == "softmax":
        C = int(rng.integers(2, 5))
        return SoftmaxRegression(C, l2=l2), X, rng.integers(0, C, m), rng
    if kind == "robust":
        return RobustRegression(l2), X, rng.normal(size=m) * 2.0, rng
    if kind in ("mlp_tanh", "mlp_softplus"):
        C = int(rng.integers(2, 4))
        h = int(rng.integers(1, 4))
        model = MLP(h, C, activation=kind.split("_")[1], l2=l2)
        return model, X, rng.integers(0, C, m), rng
    raise AssertionError(kind)


def random_params(model, rng: np.random.Generator, d: int, scale: float) -> np.ndarray:
    """A random parameter vector of norm about ``scale``·√p."""
    return rng.normal(size=model.num_params(d)) * scale


def make_cohort(kind: str, seed: int, C: int, m: int, d: int, masked: bool):
    """(model, W, V, X, y, mask) for a cohort of C clients with m (padded) rows each.

    With ``masked``, each client keeps a random number n_c ∈ 1..m of real rows at random
    positions (mask 1), and its padding rows hold zeros and label 0, as the contract asks.
    """
    model, _, _, rng = make_case(kind, seed, 2, d)
    X = rng.normal(size=(C, m, d)) * rng.choice([0.3, 1.0, 3.0])
    if model.is_classifier:
        y = rng.integers(0, getattr(model, "n_classes", 2), (C, m))
    else:
        y = rng.normal(size=(C, m)) * 2.0
    p = model.num_params(d)
    W = rng.normal(size=(C, p)) * rng.choice([0.1, 1.0, 3.0])
    V = rng.normal(size=(C, p))
    mask = None
    if masked:
        mask = np.zeros((C, m))
        for c in range(C):
            mask[c, rng.choice(m, int(rng.integers(1, m + 1)), replace=False)] = 1.0
        X = X * mask[..., None]
        y = (y * mask).astype(y.dtype)
    return model, W, V, X, y, mask
