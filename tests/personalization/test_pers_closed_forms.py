"""Closed forms on quadratics and the L_F constants: (MAML-7/8), (ME-4/10), (TR-1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pers_testmodels import Quadratic, random_symmetric

from persafl_np.models import LeastSquares, LogisticRegression, RobustRegression
from persafl_np.personalization import MAML, MoreauEnvelope, Plain


def _shared_hessian_clients(rng, n=5, m=40, d=4, l2=0.05):
    """Least squares on one design X with client targets y_i: shared A = XᵀX/m + l2 I."""
    X = rng.normal(size=(m, d)) * np.array([2.0, 1.0, 0.5, 0.2])[:d]
    ys = [X @ rng.normal(size=d) + rng.normal(size=m) for _ in range(n)]
    A = X.T @ X / m + l2 * np.eye(d)
    cs = [np.linalg.solve(A, X.T @ yi / m) for yi in ys]
    return LeastSquares(l2=l2), X, ys, A, cs


@given(seed=st.integers(0, 2**31 - 1), frac=st.floats(0.05, 1.0), lam_f=st.floats(0.05, 20.0))
def test_least_squares_closed_forms(seed, frac, lam_f):
    """F^MAML = ½(w−c)ᵀA(I−αA)²(w−c) + f(c), F^ME = ½(w−c)ᵀλA(A+λI)⁻¹(w−c) + f(c)."""
    rng = np.random.default_rng(seed)
    M, X, ys, A, cs = _shared_hessian_clients(rng, n=1)
    y, c = ys[0], cs[0]
    L = M.smoothness(X, y)
    alpha, lam = frac / L, lam_f * L
    I = np.eye(A.shape[0])
    H_maml = A @ (I - alpha * A) @ (I - alpha * A)
    H_me = lam * A @ np.linalg.inv(A + lam * I)
    f_c = float(M.loss(c, X, y))
    w = c + rng.normal(size=c.shape)
    Fm = MAML(alpha).value(M, w, X, y)
    assert Fm == pytest.approx(0.5 * (w - c) @ H_maml @ (w - c) + f_c, rel=1e-10)
    np.testing.assert_allclose(MAML(alpha).grad(M, w, X, y), H_maml @ (w - c), atol=1e-10)
    me = MoreauEnvelope(lam)
    assert me.value(M, w, X, y) == pytest.approx(0.5 * (w - c) @ H_me @ (w - c) + f_c, rel=1e-9)
    np.testing.assert_allclose(me.grad(M, w, X, y), H_me @ (w - c), atol=1e-8)


def _pair_ratio(oracle, M, w, u, X, y):
    return np.linalg.norm(oracle.grad(M, w, X, y) - oracle.grad(M, u, X, y)) / np.linalg.norm(w - u)


def test_maml_L_F_holds_and_is_attained():
    """(MAML-7) with ρ = 0 (= (MAML-8)'s sup over [−L, L]) is attained at eigenvalue −L."""
    rng = np.random.default_rng(0)
    L = 2.0
    eigs = np.array([-L, -0.5, 0.7, L])
    A = random_symmetric(rng, eigs)
    M = Quadratic(A, rng.normal(size=4))
    X, y = np.zeros((1, 4)), np.zeros(1)
    ev, V = np.linalg.eigh(A)
    for frac in (0.1, 0.5, 1.0):
        o = MAML(frac / L)
        L_F = o.constants(L, 0.0, math.inf).L_F
        assert L_F == pytest.approx(o.constants(L, 0.0, math.inf, quadratic_eigs=eigs).L_F)
        for _ in range(30):
            w, u = rng.normal(size=4), rng.normal(size=4)
            assert _pair_ratio(o, M, w, u, X, y) <= L_F * (1 + 1e-12)
        w = rng.normal(size=4)
        assert _pair_ratio(o, M, w, w + V[:, 0], X, y) == pytest.approx(L_F, rel=1e-10)


@pytest.mark.parametrize(
    "model", [RobustRegression(), LogisticRegression()], ids=["robust", "logistic"]
)
def test_maml_L_F_on_random_pairs_nonquadratic(model):
    """(MAML-7) with ρ > 0 and finite B (l2 = 0) on random pairs."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(15, 3))
    y = X @ rng.normal(size=3) if not model.is_classifier else (rng.random(15) < 0.5).astype(int)
    L, rho, B = model.smoothness(X, y), model.hessian_lipschitz(X, y), model.grad_bound(X, y)
    assert math.isfinite(B) and rho > 0
    o = MAML(1.0 / L)
    L_F = o.constants(L, rho, B).L_F
    worst = 0.0
    for _ in range(200):
        w = 2 * rng.normal(size=3)
        u = w + rng.normal(size=3) * 10 ** rng.uniform(-3, 0.5)
        worst = max(worst, _pair_ratio(o, model, w, u, X, y))
    assert worst <= L_F
    assert worst > 0.01 * L_F  # the check is not vacuous


def test_moreau_L_F_tight_nonconvex_and_convex():
    """(ME-4): λL/(λ−L) attained at eigenvalue −L; λL/(λ+L) at eigenvalue L (convex case)."""
    rng = np.random.default_rng(2)
    L, lam = 1.0, 2.5
    X, y = np.zeros((1, 4)), np.zeros(1)
    A = random_symmetric(rng, np.array([-L, -0.3, 0.4, L]))
    M = Quadratic(A, rng.normal(size=4))
    ev, V = np.linalg.eigh(A)
    o = MoreauEnvelope(lam, inner_tol=1e-13)
    L_F = o.constants(L, 0.0, math.inf).L_F
    assert L_F == pytest.approx(lam * L / (lam - L))
    for _ in range(30):
        w, u = rng.normal(size=4), rng.normal(size=4)
        assert _pair_ratio(o, M, w, u, X, y) <= L_F * (1 + 1e-9)
    w = rng.normal(size=4)
    assert _pair_ratio(o, M, w, w + V[:, 0], X, y) == pytest.approx(L_F, rel=1e-9)
    # convex: eigenvalues in [0, L]
    Ac = random_symmetric(rng, np.array([0.0, 0.2, 0.6, L]))
    Mc = Quadratic(Ac, rng.normal(size=4), convex_flag=True)
    evc, Vc = np.linalg.eigh(Ac)
    L_Fc = o.constants(L, 0.0, math.inf, convex=True).L_F
    assert L_Fc == pytest.approx(lam * L / (lam + L))
    for _ in range(30):
        w, u = rng.normal(size=4), rng.normal(size=4)
        assert _pair_ratio(o, Mc, w, u, X, y) <= L_Fc * (1 + 1e-9)
    assert _pair_ratio(o, Mc, w, w + Vc[:, -1], X, y) == pytest.approx(L_Fc, rel=1e-9)


def test_moreau_L_F_on_random_pairs_robust():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(15, 3))
    y = X @ rng.normal(size=3)
    M = RobustRegression()
    L = M.smoothness(X, y)
    o = MoreauEnvelope(1.5 * L, inner_tol=1e-12)
    L_F = o.constants(L, 0.0, math.inf).L_F
    worst = 0.0
    for _ in range(60):
        w = 2 * rng.normal(size=3)
        u = w + rng.normal(size=3) * 10 ** rng.uniform(-2, 0.5)
        worst = max(worst, _pair_ratio(o, M, w, u, X, y))
    assert 0.01 * L_F < worst <= L_F


@pytest.mark.parametrize("oracle", [Plain(), MAML(0.5), MAML(1.0), MoreauEnvelope(0.3),
                                    MoreauEnvelope(5.0)], ids=lambda o: repr(o)[:40])
def test_heterogeneity_transfer_and_minimizer(oracle):
    """(TR-1): γ_F ≤ γ on shared-Hessian least squares (A ⪰ 0, α ≤ 1/L); argmin F = c̄."""
    rng = np.random.default_rng(4)
    M, X, ys, A, cs = _shared_hessian_clients(rng, n=6)
    L = M.smoothness(X, ys[0])
    if isinstance(oracle, MAML):
        oracle = MAML(oracle.alpha / L)
    cbar = np.mean(cs, axis=0)
    for _ in range(3):
        w = cbar + rng.normal(size=cbar.shape)
        gF = np.stack([oracle.grad(M, w, X, yi) for yi in ys])
        gf = np.stack([M.grad(w, X, yi) for yi in ys])
        gamma_F2 = np.mean(np.sum((gF - gF.mean(0)) ** 2, axis=1))
        gamma2 = np.mean(np.sum((gf - gf.mean(0)) ** 2, axis=1))
        assert gamma_F2 <= gamma2 * (1 + 1e-9)
        # γ² is the w-independent (1/n)Σ‖A(c_i − c̄)‖²
        assert gamma2 == pytest.approx(np.mean([np.sum((A @ (c - cbar)) ** 2) for c in cs]))
    gbar = np.mean([oracle.grad(M, cbar, X, yi) for yi in ys], axis=0)
    assert np.linalg.norm(gbar) <= 1e-8


def test_maml_L_F_convex_on_random_pairs():
    """(MAML-7c): convex f (logistic, l2 = 0), α ≤ 1/L: L_F = L + αρB."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(15, 3))
    y = (rng.random(15) < 0.5).astype(int)
    M = LogisticRegression()
    L, rho, B = M.smoothness(X, y), M.hessian_lipschitz(X, y), M.grad_bound(X, y)
    o = MAML(1.0 / L)
    L_F = o.constants(L, rho, B, convex=True).L_F
    assert L_F == pytest.approx(L + rho * B / L)
    assert L_F < o.constants(L, rho, B).L_F
    worst = max(
        _pair_ratio(o, M, w, w + rng.normal(size=3) * 10 ** rng.uniform(-3, 0.5), X, y)
        for w in 2 * rng.normal(size=(200, 3))
    )
    assert 0.01 * L_F < worst <= L_F


@pytest.mark.parametrize("oracle", [Plain(), MAML(0.1), MAML(0.1, "first_order"),
                                    MoreauEnvelope(5.0)], ids=["plain", "maml", "fo", "me"])
def test_constants_share_one_keyword_interface(oracle):
    """Every oracle accepts constants(L, ρ, B, *, convex, quadratic_eigs, sigma, batch_size)."""
    c = oracle.constants(2.0, 0.0, math.inf, convex=True, quadratic_eigs=None, sigma=1.0,
                         batch_size=4)
    assert 0 < c.L_F <= 2.0 and c.note
    q = oracle.constants(2.0, 0.0, math.inf, quadratic_eigs=[0.5, 2.0])
    assert 0 < q.L_F <= 2.0
