"""The model derivatives and checks run unchanged under array_api_strict (no NumPy-only call).

Values must match NumPy to rounding: both backends run the same float64 operations, possibly
in a different summation order, so 1e-12 relative (plus 1e-14 absolute for entries that
cancel to ≈ 0) is ample.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from model_cases import KINDS, make_case, random_params

from persafl_np.backend import array_namespace, take_rows, to_numpy
from persafl_np.checks import check_model

xs = pytest.importorskip("array_api_strict")


@pytest.mark.parametrize("kind", KINDS)
@given(seed=st.integers(0, 2**31 - 1), m=st.integers(1, 8), d=st.integers(1, 4))
def test_strict_matches_numpy(kind, seed, m, d):
    model, X, y, rng = make_case(kind, seed, m, d)
    w = random_params(model, rng, d, 1.0)
    v = rng.normal(size=w.size)
    Xs, ys, ws, vs = (xs.asarray(a) for a in (X, y, w, v))
    pairs = [
        (model.loss(ws, Xs, ys), model.loss(w, X, y)),
        (model.grad(ws, Xs, ys), model.grad(w, X, y)),
        (model.hvp(ws, vs, Xs, ys), model.hvp(w, v, X, y)),
        (model.hessian(ws, Xs, ys), model.hessian(w, X, y)),
        (model.predict(ws, Xs), model.predict(w, X)),
    ]
    for strict, ref in pairs:
        assert array_namespace(strict) is xs
        np.testing.assert_allclose(to_numpy(strict), ref, rtol=1e-12, atol=1e-14)
    assert model.smoothness(Xs, ys) == model.smoothness(X, y)
    assert model.hessian_lipschitz(Xs, ys) == model.hessian_lipschitz(X, y)
    assert model.grad_bound(Xs, ys) == model.grad_bound(X, y)


@pytest.mark.parametrize("kind", KINDS)
def test_check_model_under_strict(kind):
    model, X, y, rng = make_case(kind, 9, 7, 3)
    Xs, ys = xs.asarray(X), xs.asarray(y)
    res = check_model(model, Xs, ys, rng=0)
    assert res.ok, res
    assert res.hessian is not None and res.hessian.n_checked == model.num_params(3)


@pytest.mark.parametrize("kind", KINDS)
def test_minibatch_under_strict(kind):
    model, X, y, rng = make_case(kind, 4, 9, 2)
    w = random_params(model, rng, 2, 1.0)
    idx = np.array([0, 4, 8])
    Xs, ys, ws = xs.asarray(X), xs.asarray(y), xs.asarray(w)
    g = model.grad(ws, take_rows(Xs, idx), take_rows(ys, idx))
    np.testing.assert_allclose(to_numpy(g), model.grad(w, X[idx], y[idx]), rtol=1e-12,
                               atol=1e-14)
