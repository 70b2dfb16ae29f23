"""Cohort (batched) model methods: equal to the single-client ones, independent of grouping.

Contract (persafl_np.models.cohort, theory/models.md eq. (CO-1)): row c of ``loss_many``,
``grad_many``, ``hvp_many`` and ``predict_many`` equals the single-client method on client c's
real rows to 1e-13 relative (only the summation order differs), and on NumPy it is
bit-identical to the same batched method on any other grouping of the clients (alone, in
contiguous chunks, or in an arbitrary subset).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from model_cases import KINDS, make_cohort

from persafl_np.backend import array_namespace, to_numpy
from persafl_np.models import (
    MLP,
    LeastSquares,
    LogisticRegression,
    RobustRegression,
    SoftmaxRegression,
)

#: Single vs batched differ only in summation order over ≤ 32 rows (eq. (CO-1)).
RTOL_SINGLE = 1e-13


def _sample_scale(fn, X, y) -> float:
    """max_k (1/n) Σ_j |fn(X[j], y[j])|_k: the rounding scale of a mean over the n samples.

    A mean can cancel far below the size of its terms (a gradient near a stationary point);
    the rounding error of a sum is relative to Σ|terms|, not to the sum.
    """
    rows = [np.abs(np.asarray(fn(X[j:j + 1], y[j:j + 1]))) for j in range(X.shape[0])]
    return float(np.max(np.mean(rows, axis=0)))


def _hvp_scale(model, w, v, X, y) -> float:
    """Rounding scale of an HVP: the sample scale, and max_i Σ_k |H_ik||v_k| (as in
    check_hessian), since one sample's A(p)u can itself cancel (a saturated softmax)."""
    return max(_sample_scale(lambda a, b: model.hvp(w, v, a, b), X, y),
               float(np.max(np.abs(model.hessian(w, X, y)) @ np.abs(v))))


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    err = float(np.max(np.abs(a - b))) if b.size else 0.0
    return err / scale if scale > 0 else err


def _batched(model, W, V, X, y, mask):
    return (model.loss_many(W, X, y, mask), model.grad_many(W, X, y, mask),
            model.hvp_many(W, V, X, y, mask), model.predict_many(W, X))


def _sub(mask, idx):
    return None if mask is None else mask[idx]


@pytest.mark.parametrize("kind", KINDS)
@given(seed=st.integers(0, 2**31 - 1), C=st.integers(1, 7), m=st.integers(1, 32),
       d=st.integers(1, 5), masked=st.booleans())
@example(seed=7, C=7, m=7, d=5, masked=True)  # mlp_softplus: a gradient cancels to 1e-3
@example(seed=62173994, C=1, m=4, d=1, masked=False)  # softmax: A(p)u cancels
def test_rows_equal_single_client_methods(kind, seed, C, m, d, masked):
    model, W, V, X, y, mask = make_cohort(kind, seed, C, m, d, masked)
    L, G, H, P = _batched(model, W, V, X, y, mask)
    assert L.shape == (C,) and G.shape == W.shape and H.shape == W.shape and P.shape == (C, m)
    for c in range(C):
        real = slice(None) if mask is None else mask[c] > 0
        Xc, yc = X[c][real], y[c][real]
        assert _rel_err(L[c], model.loss(W[c], Xc, yc)) <= RTOL_SINGLE
        ref = model.grad(W[c], Xc, yc)
        scale = max(float(np.max(np.abs(ref))),
                    _sample_scale(lambda a, b: model.grad(W[c], a, b), Xc, yc))  # noqa: B023
        assert float(np.max(np.abs(G[c] - ref))) <= RTOL_SINGLE * scale
        ref = model.hvp(W[c], V[c], Xc, yc)
        scale = max(float(np.max(np.abs(ref))), _hvp_scale(model, W[c], V[c], Xc, yc))
        assert float(np.max(np.abs(H[c] - ref))) <= RTOL_SINGLE * scale
        np.testing.assert_array_equal(P[c], model.predict(W[c], X[c]))


@pytest.mark.parametrize("kind", KINDS)
@given(seed=st.integers(0, 2**31 - 1), C=st.integers(1, 7), m=st.integers(10, 32),
       d=st.integers(1, 5), masked=st.booleans(), data=st.data())
def test_results_do_not_depend_on_grouping(kind, seed, C, m, d, masked, data):
    """Bit-identical: each client alone, contiguous chunks, and an arbitrary subset."""
    model, W, V, X, y, mask = make_cohort(kind, seed, C, m, d, masked)
    full = _batched(model, W, V, X, y, mask)
    for c in range(C):
        one = _batched(model, W[c:c + 1], V[c:c + 1], X[c:c + 1], y[c:c + 1],
                       _sub(mask, slice(c, c + 1)))
        for a, b in zip(one, full, strict=True):
            np.testing.assert_array_equal(a[0], b[c])
    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, C - 1)), max_size=3)))
    bounds = [0, *[k for k in cuts if k < C], C]
    parts = [_batched(model, W[a:b], V[a:b], X[a:b], y[a:b], _sub(mask, slice(a, b)))
             for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    for i, b in enumerate(full):
        np.testing.assert_array_equal(np.concatenate([p[i] for p in parts]), b)
    idx = np.array(data.draw(st.lists(st.integers(0, C - 1), min_size=1, max_size=C,
                                      unique=True)))
    sub = _batched(model, W[idx], V[idx], X[idx], y[idx], _sub(mask, idx))
    for a, b in zip(sub, full, strict=True):
        np.testing.assert_array_equal(a, b[idx])


@pytest.mark.parametrize("kind", KINDS)
def test_padding_rows_change_nothing(kind):
    """Padding a cohort with extra zero rows (mask 0) gives the unpadded results to rounding."""
    model, W, V, X, y, _ = make_cohort(kind, 3, 4, 12, 3, masked=False)
    Xp = np.concatenate([X, np.zeros((4, 5, 3))], axis=1)
    yp = np.concatenate([y, np.zeros((4, 5), dtype=y.dtype)], axis=1)
    mask = np.concatenate([np.ones((4, 12)), np.zeros((4, 5))], axis=1)
    for a, b in zip(_batched(model, W, V, Xp, yp, mask)[:3],
                    _batched(model, W, V, X, y, None)[:3], strict=True):
        assert _rel_err(a, b) <= RTOL_SINGLE


@pytest.mark.parametrize("kind", KINDS)
def test_unvalidated_kernels_equal_validated(kind):
    model, W, V, X, y, mask = make_cohort(kind, 5, 3, 10, 2, masked=True)
    for mk in (None, mask):
        pairs = [
            (model.loss_many(W, X, y, mk), model.loss_many(W, X, y, mk, validate=False)),
            (model.grad_many(W, X, y, mk), model.grad_many(W, X, y, mk, validate=False)),
            (model.hvp_many(W, V, X, y, mk), model.hvp_many(W, V, X, y, mk, validate=False)),
            (model.predict_many(W, X), model.predict_many(W, X, validate=False)),
        ]
        for a, b in pairs:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_follows_dtype_and_stays_accurate(kind):
    """float32 in → float32 out, close to the float64 result.

    Each entry is a sum of ≤ 16 products of O(1) float32 values, so its absolute error is a
    small multiple of 16·ε₃₂·(scale of the summands) ≈ 2e-6 × scale; 1e-4 of the result's
    scale (plus the same absolute floor) leaves margin for exp/log and still fails on any
    formula error, which is O(1) relative.
    """
    model, W, V, X, y, mask = make_cohort(kind, 11, 5, 16, 4, masked=True)
    W, V = W / np.max(np.abs(W)), V / np.max(np.abs(V))
    ref = _batched(model, W, V, X, y, mask)
    f32 = [a.astype(np.float32) for a in (W, V, X)]
    y32 = y if model.is_classifier else y.astype(np.float32)
    got = _batched(model, f32[0], f32[1], f32[2], y32, mask.astype(np.float32))
    for a, b in zip(got[:3], ref[:3], strict=True):
        assert a.dtype == np.float32
        assert float(np.max(np.abs(a - b))) <= 1e-4 * (float(np.max(np.abs(b))) + 1.0)
    if model.is_classifier:
        assert np.mean(got[3] == ref[3]) >= 0.9
    else:
        assert got[3].dtype == np.float32


@pytest.mark.parametrize("kind", KINDS)
def test_cohort_under_array_api_strict(kind):
    xs = pytest.importorskip("array_api_strict")
    model, W, V, X, y, mask = make_cohort(kind, 7, 3, 11, 3, masked=True)
    for mk in (None, mask):
        ref = _batched(model, W, V, X, y, mk)
        args = [xs.asarray(a) for a in (W, V, X, y)]
        got = _batched(model, *args, None if mk is None else xs.asarray(mk))
        for a, b in zip(got, ref, strict=True):
            assert array_namespace(a) is xs
            np.testing.assert_allclose(to_numpy(a), b, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- validation at the boundary
CLASSIFIERS = [SoftmaxRegression(3), LogisticRegression(nonconvex=0.5), MLP(2, 3)]


def _public_calls(model, w, X, y):
    """Every public method that takes labels, single-client and batched."""
    W, Xc, yc = w[None], X[None], y[None]
    return [
        lambda: model.loss(w, X, y), lambda: model.grad(w, X, y),
        lambda: model.hvp(w, w, X, y), lambda: model.hessian(w, X, y),
        lambda: model.loss_many(W, Xc, yc), lambda: model.grad_many(W, Xc, yc),
        lambda: model.hvp_many(W, W, Xc, yc),
    ]


@pytest.mark.parametrize("model", CLASSIFIERS, ids=lambda m: type(m).__name__)
def test_classifiers_refuse_bad_labels(model):
    K = getattr(model, "n_classes", 2)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2))
    w = rng.normal(size=model.num_params(2))
    good = rng.integers(0, K, 6)
    for call in _public_calls(model, w, X, good):
        call()
    # Integer-valued float labels are accepted (as check_data accepts them).
    for call in _public_calls(model, w, X, good.astype(np.float64)):
        call()
    bads = []
    for v in (K, -1, 7):
        b = good.copy()
        b[2] = v
        bads.append(b)
    for v in (0.5, np.nan, np.inf):
        b = good.astype(np.float64)
        b[4] = v
        bads.append(b)
    for bad in bads:
        for call in _public_calls(model, w, X, bad):
            with pytest.raises(ValueError, match=rf"y must hold integer labels in 0\.\.{K - 1}"):
                call()


@pytest.mark.parametrize("model", [LeastSquares(), RobustRegression(0.1)],
                         ids=lambda m: type(m).__name__)
def test_regression_refuses_integer_targets_unless_allowed(model):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 3))
    w = rng.normal(size=3)
    yi = rng.integers(0, 3, 5)
    for call in _public_calls(model, w, X, yi):
        with pytest.raises(ValueError, match="allow_int_targets"):
            call()
    with pytest.raises(ValueError, match="y has integer dtype"):
        model.check_data(X, yi)
    ok = type(model)(l2=model.l2, allow_int_targets=True)
    ok.check_data(X, yi)
    np.testing.assert_array_equal(ok.grad(w, X, yi), model.grad(w, X, yi.astype(np.float64)))
    np.testing.assert_array_equal(ok.grad_many(w[None], X[None], yi[None]),
                                  model.grad_many(w[None], X[None], yi[None].astype(float)))


@pytest.mark.parametrize("kind", KINDS)
def test_cohort_shape_and_mask_errors(kind):
    model, W, V, X, y, mask = make_cohort(kind, 2, 3, 6, 2, masked=True)
    C, m = 3, 6
    cases = [
        ((W[:2], X, y, mask), "W must have shape"),
        ((W[:, :-1], X, y, mask), "W must have shape"),
        ((W, X, y[:, :-1], mask), "y must have shape"),
        ((W, X, y[0], mask), "y must have shape"),
        ((W, X[0], y, mask), "X must be 3-D"),
        ((W, X, y, mask[:, :-1]), "mask must have shape"),
        ((W, X, y, np.full((C, m), 0.5)), "mask must hold only 0"),
        ((W, X, y, np.where(np.arange(C)[:, None] == 1, 0.0, mask)), "at least one real row"),
        ((W, X, y, mask.astype(np.int64)), "mask must be a floating"),
    ]
    for args, msg in cases:
        for call in (model.loss_many, model.grad_many):
            with pytest.raises(ValueError, match=msg):
                call(*args)
        with pytest.raises(ValueError, match=msg):
            model.hvp_many(args[0], args[0], *args[1:])
    with pytest.raises(ValueError, match="V must have shape"):
        model.hvp_many(W, V[:, :-1], X, y, mask)
    with pytest.raises(ValueError, match="W must have shape"):
        model.predict_many(W[:, :-1], X)
    with pytest.raises(ValueError, match="X must be 3-D"):
        model.predict_many(W, X[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m", [1, 2, 20])
def test_softmax_many_classes_grouping_at_one_row(dtype, m):
    """K = 10 ≥ 8 classes: NumPy sums 8+ contiguous values pairwise, but the cohort kernels sum
    the classes of every sample sequentially (models/softmax.py, _np_class_sum); a cohort whose
    only sample is one row (n·m = 1) must give the bits it gives inside a larger cohort."""
    rng = np.random.default_rng(5)
    model, C, d = SoftmaxRegression(10), 4, 3
    X = (rng.normal(size=(C, m, d)) * 3).astype(dtype)
    y = rng.integers(0, 10, (C, m))
    W = (rng.normal(size=(C, d * 10)) * 3).astype(dtype)
    V = rng.normal(size=(C, d * 10)).astype(dtype)
    full = _batched(model, W, V, X, y, None)
    for c in range(C):
        one = _batched(model, W[c:c + 1], V[c:c + 1], X[c:c + 1], y[c:c + 1], None)
        for a, b in zip(one, full, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a[0], b[c])
