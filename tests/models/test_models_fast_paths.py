"""NumPy fast paths of the single-client methods compute the same operations as the generic
(array API) path, so their results are the same bits; they validate the same way."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.models import LogisticRegression, SoftmaxRegression
from persafl_np.models.geman_mcclure import _clip, gm1


@pytest.mark.parametrize("model", [LogisticRegression(), LogisticRegression(0.05),
                                   LogisticRegression(0.0, 0.3), LogisticRegression(0.1, 0.2)],
                         ids=["plain", "l2", "nonconvex", "both"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ydtype", [np.int64, np.int8, np.uint8])
def test_logistic_grad_fast_path_is_the_generic_path(model, dtype, ydtype):
    rng = np.random.default_rng(4)
    X = (rng.normal(size=(17, 5)) * 3).astype(dtype)
    w = (rng.normal(size=5) * 2).astype(dtype)
    w[0] = 0.0
    X[3] = 0.0                                  # a zero margin: z >= 0 for both labels
    y = rng.integers(0, 2, 17).astype(ydtype)
    fast = model.grad(w, X, y)
    generic = model.grad(w, X, y.astype(np.float64))   # float labels: the array-API path
    assert fast.dtype == generic.dtype and fast.tobytes() == generic.tobytes()
    for bad in (2, 3) if ydtype is np.uint8 else (2, -1, 3):
        yb = y.copy()
        yb[5] = bad
        with pytest.raises(ValueError, match=r"y must hold integer labels in 0\.\.1"):
            model.grad(w, X, yb)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gm1_fast_path_is_the_generic_formula(dtype):
    big = 1e120 if dtype is np.float64 else 1e30      # beyond each dtype's clip
    t = np.array([0.0, -0.0, 0.5, -2.0, 1e17, -1e17, big, -big, np.inf, -np.inf, np.nan],
                 dtype=dtype)
    tc, q = _clip(t)
    ref = 2.0 * tc / q / q
    out = gm1(t)
    assert out.dtype == ref.dtype and out.tobytes() == ref.tobytes()
    assert gm1(t[2:3]).tobytes() == ref[2:3].tobytes()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (13, 20)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_softmax_hot_kernels_are_the_validated_kernels(shape, dtype, l2):
    """grad_many/hvp_many with validate=False and no mask (the engine's inlined path) equal the
    validated path bit for bit, also for a one-row cohort (the sequential class sum)."""
    C, m = shape
    model = SoftmaxRegression(10, l2)
    rng = np.random.default_rng(5)
    for _ in range(20):     # a one-row sum rounds like a pairwise sum only now and then
        X = (rng.normal(size=(C, m, 6)) * 2).astype(dtype)
        y = rng.integers(0, 10, (C, m))
        W, V = (rng.normal(size=(2, C, 60)) * 3).astype(dtype)
        for fast, ref in ((model.grad_many(W, X, y, validate=False), model.grad_many(W, X, y)),
                          (model.hvp_many(W, V, X, y, validate=False),
                           model.hvp_many(W, V, X, y))):
            assert fast.dtype == ref.dtype and fast.tobytes() == ref.tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("ydtype", [np.int64, np.float64])
def test_softmax_grad_many_on_is_grad_many(dtype, l2, masked, ydtype):
    """grad_many_on(X, y, mask) prepares the labels once; at every point it equals
    grad_many(W, X, y, mask, validate=False) bit for bit (NumPy), and under array_api_strict it
    is grad_many itself."""
    model = SoftmaxRegression(4, l2)
    rng = np.random.default_rng(8)
    C, m = 5, 9
    X = (rng.normal(size=(C, m, 3)) * 2).astype(dtype)
    y = rng.integers(0, 4, (C, m)).astype(ydtype)
    mask = (np.arange(m)[None, :] < rng.integers(1, m + 1, C)[:, None]).astype(dtype) \
        if masked else None
    g = model.grad_many_on(X, y, mask)
    for _ in range(4):
        W = (rng.normal(size=(C, 12)) * 3).astype(dtype)
        out, ref = g(W), model.grad_many(W, X, y, mask, validate=False)
        assert out.dtype == ref.dtype and out.tobytes() == ref.tobytes()
    xs = pytest.importorskip("array_api_strict")
    Xs, ys, Ws = xs.asarray(X), xs.asarray(y.astype(np.int64)), xs.asarray(W)
    ms = None if mask is None else xs.asarray(mask)
    a = np.asarray(model.grad_many_on(Xs, ys, ms)(Ws))
    np.testing.assert_array_equal(a, np.asarray(model.grad_many(Ws, Xs, ys, ms, validate=False)))
