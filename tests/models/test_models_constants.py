"""Every global constant (L, ρ, B) holds at random points, and the proven ones are tight.

Float64 tolerances: a constant is accepted up to a relative 1e-9 (check_* default rtol) —
‖X‖₂ comes from an SVD that is accurate to a few ε relative, and the Hessians are sums of
m rank-one terms whose rounding is O(m·ε) relative, both ≪ 1e-9. Tightness tests use the
closed-form extremal points of theory/models.md and compare to rtol 1e-9 as well.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from model_cases import FINITE_KINDS, make_case, random_params

from persafl_np.checks import check_grad_bound, check_hessian_lipschitz, check_smoothness
from persafl_np.models import (
    LeastSquares,
    LogisticRegression,
    RobustRegression,
    SoftmaxRegression,
)
from persafl_np.models.geman_mcclure import GM1_MAX, GM3_MAX
from persafl_np.models.logistic import SIGMOID2_MAX

SEEDS = st.integers(0, 2**31 - 1)
BIG_SCALES = st.sampled_from([0.0, 0.1, 1.0, 10.0, 100.0, 1e4])
RTOL = 1e-9


def _spectral(H):
    return float(np.max(np.abs(np.linalg.eigvalsh(0.5 * (H + H.T)))))


@pytest.mark.parametrize("kind", FINITE_KINDS)
@given(seed=SEEDS, m=st.integers(1, 12), d=st.integers(1, 5), scale=BIG_SCALES)
def test_hessian_norm_at_most_L(kind, seed, m, d, scale):
    model, X, y, rng = make_case(kind, seed, m, d)
    L = model.smoothness(X, y)
    for _ in range(3):
        w = random_params(model, rng, d, scale)
        assert _spectral(model.hessian(w, X, y)) <= L * (1 + RTOL)


@pytest.mark.parametrize("kind", FINITE_KINDS)
@given(seed=SEEDS, m=st.integers(1, 12), d=st.integers(1, 5), scale=BIG_SCALES)
def test_smoothness_on_far_and_close_pairs(kind, seed, m, d, scale):
    model, X, y, rng = make_case(kind, seed, m, d)
    w = random_params(model, rng, d, scale)
    res = check_smoothness(lambda a: model.grad(a, X, y), model.smoothness(X, y), w, rng=rng,
                           n_pairs=2)
    assert res.n_checked == 2 * 4 * 4
    assert res.ok, res
    # Raw ratio: gradients at ‖w‖ ≈ 1e3 carry rounding ≈ ε·L·1e3, divided by L·1e-4 for the
    # closest pairs ⇒ up to 64·ε·1e7 ≈ 1.4e-7 above 1 when L is attained (least squares).
    assert res.worst_ratio <= 1.0 + 1e-6


@pytest.mark.parametrize("kind", FINITE_KINDS)
@given(seed=SEEDS, m=st.integers(1, 10), d=st.integers(1, 4),
       scale=st.sampled_from([0.0, 0.3, 3.0]))
def test_hessian_lipschitz_on_pairs(kind, seed, m, d, scale):
    model, X, y, rng = make_case(kind, seed, m, d)
    w = random_params(model, rng, d, scale)
    rho = model.hessian_lipschitz(X, y)
    res = check_hessian_lipschitz(lambda a: model.hessian(a, X, y), rho, w, rng=rng, n_pairs=2)
    assert res.ok, res
    if kind == "least_squares":
        assert rho == 0.0 and res.worst_ratio == 0.0


@pytest.mark.parametrize("kind", FINITE_KINDS)
@given(seed=SEEDS, m=st.integers(1, 12), d=st.integers(1, 5))
def test_grad_bound_at_extreme_points(kind, seed, m, d):
    model, X, y, rng = make_case(kind, seed, m, d)
    w = random_params(model, rng, d, 1.0)
    B = model.grad_bound(X, y)
    res = check_grad_bound(lambda a: model.grad(a, X, y), B, w, rng=rng)
    assert res.ok, res
    l2 = model.l2
    if l2 > 0 or kind == "least_squares":
        # B = ∞ must be honest: the gradient grows without bound along the ray of the proof.
        assert math.isinf(B)
        t = 1e6
        if kind == "least_squares":  # Prop. LS-1: along a top eigenvector, ‖∇f‖ ≥ tL − ‖Xᵀy‖/m
            v = np.linalg.eigh(model.hessian(w, X, y))[1][:, -1]
            floor = t * model.smoothness(X, y) - np.linalg.norm(X.T @ y) / m
        else:  # Props. LR-3, SM-3, RR-3: ‖∇f(tv)‖ ≥ l2·t − B(l2 = 0)
            v = rng.normal(size=w.size)
            v /= np.linalg.norm(v)
            floor = l2 * t - dataclasses.replace(model, l2=0.0).grad_bound(X, y)
        assert np.linalg.norm(model.grad(t * v, X, y)) >= floor * (1 - RTOL)
    else:
        assert math.isfinite(B) and res.worst_ratio <= 1.0 + RTOL


# ----------------------------------------------------------------- tightness
def test_least_squares_L_attained():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(7, 3)), rng.normal(size=7)
    model = LeastSquares(0.3)
    H = model.hessian(rng.normal(size=3), X, y)
    assert _spectral(H) == pytest.approx(model.smoothness(X, y), rel=RTOL)


@given(seed=SEEDS, m=st.integers(1, 10), d=st.integers(1, 5),
       l2=st.sampled_from([0.0, 0.5]), nu=st.sampled_from([0.0, 1.0]))
def test_logistic_L_attained_at_zero(seed, m, d, l2, nu):
    """Prop. LR-1: at w = 0, σ'(0) = 1/4 and φ''(0) = 2, so λ_max(∇²f(0)) = L exactly."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(m, d)), rng.integers(0, 2, m)
    model = LogisticRegression(l2, nu)
    H = model.hessian(np.zeros(d), X, y)
    assert float(np.linalg.eigvalsh(H).max()) == pytest.approx(model.smoothness(X, y), rel=RTOL)


@given(seed=SEEDS, m=st.integers(1, 10), d=st.integers(1, 5), l2=st.sampled_from([0.0, 0.5]))
def test_robust_L_attained_at_zero_residual(seed, m, d, l2):
    """Prop. RR-1: where every residual is 0, φ'' = 2 and λ_max(∇²f) = L exactly."""
    rng = np.random.default_rng(seed)
    X, w0 = rng.normal(size=(m, d)), rng.normal(size=d)
    model = RobustRegression(l2)
    y = X @ w0
    H = model.hessian(w0, X, y)
    assert float(np.linalg.eigvalsh(H).max()) == pytest.approx(model.smoothness(X, y), rel=RTOL)


@given(seed=SEEDS, m=st.integers(1, 10), d=st.integers(1, 5))
def test_softmax_L_attained_for_two_classes(seed, m, d):
    """Prop. SM-1: with C = 2 and w = 0, A(p) = [[1,−1],[−1,1]]/4 has norm 1/2 ⇒ ‖∇²f‖ = L."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(m, d)), rng.integers(0, 2, m)
    model = SoftmaxRegression(2)
    assert _spectral(model.hessian(np.zeros(2 * d), X, y)) == pytest.approx(
        model.smoothness(X, y), rel=RTOL)


def _third_derivative_ratio(model, X, y, t0, delta=1e-4):
    """|f''(t0+δ) − f''(t0−δ)| / (2δρ) in 1-D: → 1 at the maximizer of |f'''| if ρ is tight."""
    h = lambda t: float(model.hessian(np.array([t]), X, y)[0, 0])  # noqa: E731
    return abs(h(t0 + delta) - h(t0 - delta)) / (2 * delta * model.hessian_lipschitz(X, y))


def test_robust_rho_tight_in_one_dimension():
    """Prop. RR-2 with m = d = 1, x = 1: ρ = GM3_MAX is |φ'''| at t₃² = 1 − 2/√5."""
    X, y = np.ones((1, 1)), np.zeros(1)
    model = RobustRegression()
    assert model.hessian_lipschitz(X, y) == pytest.approx(GM3_MAX, rel=1e-15)
    t3 = math.sqrt(1 - 2 / math.sqrt(5))
    ratio = _third_derivative_ratio(model, X, y, t3)
    # Central difference of f'' has relative error O(δ²·f⁽⁵⁾/f''') ≈ 1e-7 at δ = 1e-4.
    assert 1 - 1e-6 <= ratio <= 1 + 1e-9


def test_logistic_rho_tight_in_one_dimension():
    """Prop. LR-2, m = d = 1, x = 1, ν = 0: ρ = max|σ''| = 1/(6√3), at σ = 1/2 − 1/(2√3)."""
    X, y = np.ones((1, 1)), np.ones(1, dtype=np.int64)
    model = LogisticRegression()
    assert model.hessian_lipschitz(X, y) == pytest.approx(SIGMOID2_MAX, rel=1e-15)
    s = 0.5 - 0.5 / math.sqrt(3)
    z = math.log(s / (1 - s))
    ratio = _third_derivative_ratio(model, X, y, z)
    assert 1 - 1e-6 <= ratio <= 1 + 1e-9


def test_robust_B_attained():
    """Prop. RR-3: one sample, residual 1/√3 ⇒ ‖∇f‖ = (3√3/8)‖x‖ = B."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 4))
    w = rng.normal(size=4)
    y = x @ w - 1 / math.sqrt(3)
    model = RobustRegression()
    assert np.linalg.norm(model.grad(w, x, y)) == pytest.approx(model.grad_bound(x, y), rel=1e-12)
    assert model.grad_bound(x, y) == pytest.approx(GM1_MAX * np.linalg.norm(x), rel=1e-12)


def test_logistic_and_softmax_B_approached():
    """Props. LR-3, SM-3: B is the supremum, approached as the margin of a wrong label → ∞."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 3))
    u = x[0] / np.linalg.norm(x)
    lr = LogisticRegression()
    y1 = np.ones(1, dtype=np.int64)
    g = lr.grad(-40.0 * u, x, y1)
    assert np.linalg.norm(g) == pytest.approx(lr.grad_bound(x, y1), rel=1e-12)
    sm = SoftmaxRegression(2)
    W = np.stack([-40.0 * u, 40.0 * u], axis=1).reshape(-1)  # class 1 wins, label 0
    y0 = np.zeros(1, dtype=np.int64)
    assert np.linalg.norm(sm.grad(W, x, y0)) == pytest.approx(sm.grad_bound(x, y0), rel=1e-12)


@given(seed=SEEDS, C=st.integers(2, 6), zscale=st.sampled_from([0.1, 1.0, 10.0]))
def test_softmax_jacobian_norm_and_lipschitz(seed, C, zscale):
    """Lemma SM-0: ‖diag(p) − ppᵀ‖₂ ≤ 1/2 and z ↦ A(softmax z) is (1/√2)-Lipschitz."""
    rng = np.random.default_rng(seed)

    def A(z):
        p = np.exp(z - z.max())
        p /= p.sum()
        return np.diag(p) - np.outer(p, p)

    z1, z2 = rng.normal(size=C) * zscale, rng.normal(size=C) * zscale
    assert np.linalg.norm(A(z1), 2) <= 0.5 + 1e-15
    dz = np.linalg.norm(z1 - z2)
    assert np.linalg.norm(A(z1) - A(z2), 2) <= dz / math.sqrt(2) * (1 + 1e-12)


def test_logistic_is_convex_iff_l2_at_least_half_nu():
    """Prop. LR-4: with l2 < ν/2 some data set (here X = 0) gives a negative curvature."""
    X, y = np.zeros((3, 2)), np.array([0, 1, 1])
    bad = LogisticRegression(l2=0.2, nonconvex=1.0)
    good = LogisticRegression(l2=0.5, nonconvex=1.0)
    assert not bad.is_convex() and good.is_convex()
    assert np.linalg.eigvalsh(bad.hessian(np.ones(2), X, y)).min() == pytest.approx(0.2 - 0.5)
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(5, 2))
    for _ in range(20):
        w = rng.normal(size=2) * rng.choice([0.3, 1.0, 3.0])
        assert np.linalg.eigvalsh(good.hessian(w, Xr, y[:1].repeat(5))).min() >= -1e-12


def test_robust_is_nonconvex():
    X, y = np.ones((1, 1)), np.zeros(1)
    assert not RobustRegression().is_convex()
    assert RobustRegression().hessian(np.array([2.0]), X, y)[0, 0] < 0
