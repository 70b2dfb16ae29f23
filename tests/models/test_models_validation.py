"""Bad input → ValueError naming the argument; no silent broadcasting; predict; stability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from model_cases import KINDS, make_case

from persafl_np.models import (
    MAX_DENSE_HESSIAN,
    MLP,
    LeastSquares,
    LogisticRegression,
    Model,
    RobustRegression,
    SoftmaxRegression,
)


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: LeastSquares(l2=-1.0), "l2"),
        (lambda: LogisticRegression(l2=-0.1), "l2"),
        (lambda: LogisticRegression(nonconvex=-1.0), "nonconvex"),
        (lambda: LogisticRegression(nonconvex=float("nan")), "nonconvex"),
        (lambda: SoftmaxRegression(1), "n_classes"),
        (lambda: SoftmaxRegression(2.5), "n_classes"),
        (lambda: SoftmaxRegression(3, l2=float("inf")), "l2"),
        (lambda: RobustRegression(l2=-2.0), "l2"),
        (lambda: MLP(0, 3), "n_hidden"),
        (lambda: MLP(True, 3), "n_hidden"),
        (lambda: MLP(2, 1), "n_classes"),
        (lambda: MLP(2, 3, activation="relu"), "activation"),
        (lambda: MLP(2, 3, l2=-1.0), "l2"),
    ],
)
def test_constructor_validation(factory, name):
    with pytest.raises(ValueError, match=name):
        factory()


@pytest.mark.parametrize("kind", KINDS)
def test_protocol_and_frozen(kind):
    model, *_ = make_case(kind, 0, 4, 3)
    assert isinstance(model, Model)
    with pytest.raises(AttributeError):
        model.l2 = 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_no_silent_broadcasting(kind):
    model, X, y, rng = make_case(kind, 1, 5, 3)
    p = model.num_params(3)
    w = rng.normal(size=p)
    for bad_w in (rng.normal(size=p + 1), rng.normal(size=(p, 1)), rng.normal(size=(1, p))):
        for call in (model.loss, model.grad, model.hessian):
            with pytest.raises(ValueError, match="w must have shape"):
                call(bad_w, X, y)
        with pytest.raises(ValueError, match="w must have shape"):
            model.predict(bad_w, X)
    with pytest.raises(ValueError, match="v must have shape"):
        model.hvp(w, rng.normal(size=p - 1), X, y)
    with pytest.raises(ValueError, match="v must have shape"):
        model.hvp(w, rng.normal(size=(p, 1)), X, y)
    for bad_y in (y[:-1], y[:, None], np.concatenate([y, y[:1]])):
        for call in (model.loss, model.grad):
            with pytest.raises(ValueError, match="y must have shape"):
                call(w, X, bad_y)
    with pytest.raises(ValueError, match="X must be 2-D"):
        model.grad(w, X[0], y)
    with pytest.raises(ValueError, match="X must be 2-D"):
        model.predict(w, X[0])
    with pytest.raises(ValueError, match="n_features"):
        model.num_params(0)


@pytest.mark.parametrize("kind", KINDS)
def test_check_data_rejects_bad_values(kind):
    model, X, y, _ = make_case(kind, 2, 5, 3)
    model.check_data(X, y)
    Xn = X.copy()
    Xn[1, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        model.check_data(Xn, y)
    with pytest.raises(ValueError, match="y must be 1-D"):
        model.check_data(X, y[:-1])
    with pytest.raises(ValueError, match="X must be a floating-point"):
        model.check_data(X.astype(np.int64), y)
    if model.is_classifier:
        hi = getattr(model, "n_classes", 2)
        for bad in (hi, -1):
            yb = y.copy()
            yb[0] = bad
            with pytest.raises(ValueError, match="y labels must lie in"):
                model.check_data(X, yb)
        with pytest.raises(ValueError, match="y must hold integer labels"):
            model.check_data(X, y + 0.5)
    else:
        yb = y.copy()
        yb[0] = np.inf
        with pytest.raises(ValueError, match="y contains NaN"):
            model.check_data(X, yb)


def test_dense_hessian_refused_above_limit():
    p = MAX_DENSE_HESSIAN + 1
    X, y = np.zeros((1, p)), np.zeros(1)
    with pytest.raises(ValueError, match="MAX_DENSE_HESSIAN"):
        LeastSquares().hessian(np.zeros(p), X, y)
    with pytest.raises(ValueError, match="MAX_DENSE_HESSIAN"):
        RobustRegression().hessian(np.zeros(p), X, y)
    with pytest.raises(ValueError, match="MAX_DENSE_HESSIAN"):
        LogisticRegression().hessian(np.zeros(p), X, np.zeros(1, dtype=np.int64))
    d = MAX_DENSE_HESSIAN // 2 + 1
    Xs = np.zeros((1, d))
    with pytest.raises(ValueError, match="MAX_DENSE_HESSIAN"):
        SoftmaxRegression(2).hessian(np.zeros(2 * d), Xs, np.zeros(1, dtype=np.int64))
    mlp = MLP(4, 2)
    d = MAX_DENSE_HESSIAN // 4
    with pytest.raises(ValueError, match="MAX_DENSE_HESSIAN"):
        mlp.hessian(np.zeros(mlp.num_params(d)), np.zeros((1, d)), np.zeros(1, dtype=np.int64))


def test_predict_semantics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    w = rng.normal(size=3)
    np.testing.assert_array_equal(LeastSquares().predict(w, X), X @ w)
    np.testing.assert_array_equal(RobustRegression().predict(w, X), X @ w)
    lab = LogisticRegression().predict(w, X)
    assert lab.dtype == np.int64
    np.testing.assert_array_equal(lab, (1 / (1 + np.exp(-(X @ w))) >= 0.5).astype(np.int64))
    W = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(SoftmaxRegression(4).predict(W.ravel(), X),
                                  np.argmax(X @ W, axis=1))


@pytest.mark.parametrize("kind", KINDS)
def test_extreme_parameters_are_finite_and_silent(kind):
    """Huge weights saturate sigmoids/softmax and residuals: still finite, no overflow warning."""
    model, X, y, rng = make_case(kind, 3, 6, 3, regularize=False)
    w = rng.normal(size=model.num_params(3)) * 1e6
    v = rng.normal(size=w.size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vals = [model.loss(w, X, y), model.grad(w, X, y), model.hvp(w, v, X, y),
                model.hessian(w, X, y)]
    assert all(np.all(np.isfinite(np.asarray(a))) for a in vals)


def test_logistic_loss_is_stable_for_large_margins():
    """log(1+e^{−z}) via logaddexp: ≈ e^{−z} for large correct margins, ≈ |z| for wrong ones."""
    X = np.array([[1.0], [1.0]])
    y = np.array([1, 0])
    model = LogisticRegression()
    assert float(model.loss(np.array([800.0]), X, y)) == pytest.approx(400.0, rel=1e-15)
    X1, y1 = np.array([[1.0]]), np.array([1])
    assert float(model.loss(np.array([40.0]), X1, y1)) == pytest.approx(np.exp(-40.0), rel=1e-12)
