"""MLP specifics: flat layout, exact R-operator in blocks, and Prop. MLP-1 (no global L, ρ, B)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persafl_np.checks import check_hvp
from persafl_np.models import MLP
from persafl_np.models import mlp as mlp_module


def test_layout_and_init():
    model = MLP(4, 3)
    d = 5
    assert model.num_params(d) == 5 * 4 + 4 + 4 * 3 + 3
    w1 = model.init_params(np.random.default_rng(0), d)
    w2 = model.init_params(np.random.default_rng(0), d)
    np.testing.assert_array_equal(w1, w2)
    # Biases (b1 = w[20:24], b2 = w[36:39]) start at zero; weights do not.
    np.testing.assert_array_equal(w1[20:24], 0.0)
    np.testing.assert_array_equal(w1[36:], 0.0)
    assert np.all(w1[:20] != 0) and np.all(w1[24:36] != 0)


def test_layout_matches_manual_forward():
    """w = [vec(W1) | b1 | vec(W2) | b2], row-major: the loss equals a hand-written forward."""
    rng = np.random.default_rng(1)
    d, h, C, m = 3, 2, 4, 6
    model = MLP(h, C, activation="softplus")
    W1, b1, W2, b2 = (rng.normal(size=s) for s in [(d, h), (h,), (h, C), (C,)])
    w = np.concatenate([W1.ravel(), b1, W2.ravel(), b2])
    X, y = rng.normal(size=(m, d)), rng.integers(0, C, m)
    Z = np.logaddexp(0, X @ W1 + b1) @ W2 + b2
    ref = np.mean(np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(m), y])
    assert float(model.loss(w, X, y)) == pytest.approx(ref, rel=1e-13)
    np.testing.assert_array_equal(model.predict(w, X), np.argmax(Z, axis=1))


def test_dense_hessian_blocks_agree(monkeypatch):
    """Building the Hessian in many small blocks gives the same matrix as in one block."""
    rng = np.random.default_rng(2)
    model = MLP(3, 3, activation="tanh", l2=0.1)
    X, y = rng.normal(size=(7, 4)), rng.integers(0, 3, 7)
    w = rng.normal(size=model.num_params(4))
    H_one = model.hessian(w, X, y)
    monkeypatch.setattr(mlp_module, "_HESS_BLOCK_ELEMS", 7 * 4 * 5)  # 5 columns per block
    H_many = model.hessian(w, X, y)
    np.testing.assert_allclose(H_many, H_one, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_hvp_on_larger_network(activation):
    """Random directions on p = 1,000+ parameters (beyond the axis-by-axis regime)."""
    rng = np.random.default_rng(3)
    model = MLP(16, 5, activation=activation, l2=0.01)
    X, y = rng.normal(size=(40, 50)), rng.integers(0, 5, 40)
    w = model.init_params(rng, 50)
    res = check_hvp(lambda a: model.grad(a, X, y), lambda a, v: model.hvp(a, v, X, y), w,
                    rng=rng, n_directions=3)
    assert w.size > 800 and res.ok, res


def _witness(activation, h, C, d, t, y):
    """The parameter point of the proof of Prop. MLP-1 and the b1 coordinate it probes."""
    model = MLP(h, C, activation=activation)
    k = h - 1
    counts = np.bincount(y, minlength=C)
    cprime = int(np.argmin(counts))  # a class with frequency π ≤ 1/2
    pi = counts[cprime] / y.size
    a = math.atanh(0.5) if activation == "tanh" else 0.7  # σ(a) > 0 so that s = tσ(a) → ∞
    W1, b1 = np.zeros((d, h)), np.zeros(h)
    b1[k] = a
    W2, b2 = np.zeros((h, C)), np.zeros(C)
    W2[k, cprime] = t
    w = np.concatenate([W1.ravel(), b1, W2.ravel(), b2])
    e = np.zeros_like(w)
    e[d * h + k] = 1.0
    if activation == "tanh":
        T = math.tanh(a)
        s1, s2, s3 = 1 - T * T, -2 * T * (1 - T * T), -2 * (1 - T * T) * (1 - 3 * T * T)
    else:
        sg = 1 / (1 + math.exp(-a))
        s1, s2, s3 = sg, sg * (1 - sg), sg * (1 - sg) * (1 - 2 * sg)
    return model, w, e, pi, (s1, s2, s3)


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
@given(seed=st.integers(0, 2**31 - 1), m=st.integers(1, 8), d=st.integers(1, 4),
       h=st.integers(1, 3), C=st.integers(2, 4))
def test_no_global_constants_prop_mlp1(activation, seed, m, d, h, C):
    """Along the proof's ray, g'(0)/t, g''(0)/t, g'''(0)/t → (1−π)·(σ', σ'', σ''')(a) ≠ 0.

    So ‖∇f‖, ‖∇²f‖ and the Hessian's Lipschitz ratio all grow linearly in t: no finite B, L, ρ.
    The neglected terms decay like t³e^{−tσ(a)} (< 1e-6 at t = 200 for these a).
    """
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(m, d)) * 3.0, rng.integers(0, C, m)
    for t in (200.0, 400.0):
        model, w, e, pi, (s1, s2, s3) = _witness(activation, h, C, d, t, y)
        g1 = float(model.grad(w, X, y) @ e)
        g2 = float(model.hvp(w, e, X, y) @ e)
        delta = 1e-4
        g3 = (float(model.hvp(w + delta * e, e, X, y) @ e)
              - float(model.hvp(w - delta * e, e, X, y) @ e)) / (2 * delta)
        assert g1 / t == pytest.approx((1 - pi) * s1, rel=1e-6)
        assert g2 / t == pytest.approx((1 - pi) * s2, rel=1e-6)
        # FD of g'' with δ = 1e-4: relative error ≈ δ²·g⁽⁵⁾/g''' ≲ 1e-7, plus rounding ε·t/δ².
        assert g3 / t == pytest.approx((1 - pi) * s3, rel=1e-4)
    assert model.smoothness(X, y) == math.inf
    assert model.hessian_lipschitz(X, y) == math.inf
    assert model.grad_bound(X, y) == math.inf
    assert not model.is_convex()
