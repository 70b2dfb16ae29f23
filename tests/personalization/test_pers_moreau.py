"""Moreau-envelope oracle: eqs. (ME-1)–(ME-13) of theory/personalization.md."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pers_testmodels import CASE_IDS, CASES, Quadratic, fd_grad, random_symmetric

from persafl_np.models import LeastSquares, RobustRegression
from persafl_np.personalization import MoreauEnvelope, solve_prox

FD_TOL = 1e-6


def _oracle(case, factor, **kw):
    """λ = factor·L; the case's L is passed as ``smoothness`` (the MLP has no global L)."""
    return MoreauEnvelope(factor * case.L, smoothness=case.L, **kw)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@given(factor=st.floats(1.3, 6.0))
def test_grad_matches_fd_of_envelope_value(case, factor):
    """(ME-2): λ(w − θ̂) equals the FD gradient of the envelope value and ∇f(θ̂)."""
    M, w, X, y = case.model, case.w, case.X, case.y
    o = _oracle(case, factor)
    g = o.grad(M, w, X, y)
    fd = fd_grad(lambda v: o.value(M, v, X, y), w)
    assert np.linalg.norm(g - fd) <= FD_TOL * (1 + np.linalg.norm(g))
    theta = o.personalize(M, w, X, y)
    assert np.linalg.norm(o.lam * (w - theta) - M.grad(theta, X, y)) <= 1e-9
    info = o.value_info(M, w, X, y)
    assert info.prox.converged and info.gap_bound <= 1e-18


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_envelope_below_f_and_tends_to_f(case):
    """(ME-12): 0 ≤ f − F_λ ≤ ‖∇f‖²/(2μ), F_λ non-decreasing in λ, hence F_λ → f."""
    M, w, X, y = case.model, case.w, case.X, case.y
    f = float(M.loss(w, X, y))
    gn2 = float(np.sum(M.grad(w, X, y) ** 2))
    prev = -math.inf
    for factor in (1.5, 3.0, 10.0, 100.0, 1e4):
        o = _oracle(case, factor)
        F = o.value(M, w, X, y)
        mu = o.lam if M.is_convex() else o.lam - case.L
        assert -1e-12 <= f - F <= gn2 / (2 * mu) * (1 + 1e-9) + 1e-12
        assert F >= prev - 1e-12
        prev = F
    assert f - prev <= 1e-3 * gn2 / case.L


def _quad_nonconvex(rng, L=1.0, d=4):
    eigs = np.concatenate([[-L, L], rng.uniform(-L, L, size=d - 2)])
    A = random_symmetric(rng, eigs)
    return Quadratic(A, rng.normal(size=d)), eigs, np.zeros((1, d)), np.zeros(1)


@pytest.mark.parametrize("K", [1, 2, 3, 5, 8])
def test_inner_gd_relative_bias(K):
    """(ME-5): cold start, K GD steps: ‖g_K − ∇F‖ ≤ (2L/(λ+L))^K ‖∇F‖; (ME-6) a posteriori."""
    rng = np.random.default_rng(K)
    for case in CASES:
        M, w, X, y = case.model, case.w, case.X, case.y
        lam = 2.5 * case.L
        exact = MoreauEnvelope(lam, smoothness=case.L).grad(M, w, X, y)
        o = MoreauEnvelope(lam, inner_steps=K, smoothness=case.L)
        s = o.step(M, w, X, y, rng, None)
        assert (s.n_inner, s.n_grad) == (K, K + 1)
        q = (case.L if M.is_convex() else 2 * case.L) / (lam + case.L)
        err = np.linalg.norm(s.g - exact)
        assert err <= q**K * np.linalg.norm(exact) * (1 + 1e-9) + 1e-12, case.name
        mu = lam if M.is_convex() else lam - case.L
        assert err <= lam * s.inner_residual / mu * (1 + 1e-9) + 1e-12, case.name


def test_inner_gd_relative_bias_is_tight():
    """The (2L/(λ+L))^K rate is attained along the eigenvector of eigenvalue −L."""
    rng = np.random.default_rng(0)
    M, eigs, X, y = _quad_nonconvex(rng)
    evals, evecs = np.linalg.eigh(M.A)
    w = M.c + evecs[:, 0]  # eigenvalue −L = −1
    lam = 3.0
    exact = MoreauEnvelope(lam).grad(M, w, X, y)
    for K in (1, 4):
        g = MoreauEnvelope(lam, inner_steps=K).grad(M, w, X, y)
        ratio = np.linalg.norm(g - exact) / np.linalg.norm(exact)
        assert ratio == pytest.approx((2.0 / (lam + 1.0)) ** K, rel=1e-8)


def test_warm_start_same_answer_fewer_iterations():
    rng = np.random.default_rng(1)
    c = next(c for c in CASES if c.name == "robust")
    o = _oracle(c, 1.5, inner_tol=1e-11)
    w2 = c.w + 1e-3 * rng.normal(size=c.w.shape)
    s1 = o.step(c.model, c.w, c.X, c.y, rng, None)
    cold = o.step(c.model, w2, c.X, c.y, rng, None)
    warm = o.step(c.model, w2, c.X, c.y, rng, None, warm=s1.warm)
    np.testing.assert_array_equal(s1.warm, c.w - s1.g / o.lam)  # warm = θ̃
    mu = o.lam - c.L
    assert np.linalg.norm(warm.g - cold.g) <= 2 * o.lam * 1e-11 / mu
    assert warm.n_inner < cold.n_inner
    # warm_start=False: the state is neither used nor returned
    o_off = _oracle(c, 1.5, inner_tol=1e-11, warm_start=False)
    off = o_off.step(c.model, w2, c.X, c.y, rng, None, warm=s1.warm)
    assert off.warm is None and off.n_inner == cold.n_inner
    with pytest.raises(ValueError, match="warm must have the shape"):
        o.step(c.model, w2, c.X, c.y, rng, None, warm=np.zeros(1))


def test_nesterov_convex_only_and_faster():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(30, 5)) * np.array([3, 1, 1, 0.3, 0.1]), rng.normal(size=30)
    M, w = LeastSquares(), rng.normal(size=5)
    L = M.smoothness(X, y)
    gd = MoreauEnvelope(0.05 * L, inner_tol=1e-10).prox(M, w, X, y)
    nes = MoreauEnvelope(0.05 * L, inner="nesterov", inner_tol=1e-10).prox(M, w, X, y)
    assert gd.converged and nes.converged
    np.testing.assert_allclose(nes.theta, gd.theta, rtol=0, atol=1e-9 / (0.05 * L))
    assert nes.n_inner < gd.n_inner / 2
    with pytest.raises(ValueError, match="nesterov"):
        MoreauEnvelope(100 * L, inner="nesterov").grad(RobustRegression(), w, X, y)


def test_lam_le_L_rejected_unless_convex():
    rng = np.random.default_rng(3)
    X, y, w = rng.normal(size=(20, 3)), rng.normal(size=20), rng.normal(size=3)
    R = RobustRegression()
    L = R.smoothness(X, y)
    with pytest.raises(ValueError, match="lam must be > L"):
        MoreauEnvelope(0.9 * L).grad(R, w, X, y)
    with pytest.raises(ValueError, match="not strongly convex"):
        MoreauEnvelope(L).step(R, w, X, y, rng, 5)
    # a mini-batch can be less smooth than the full data: the error says what to do
    with pytest.raises(ValueError, match="computed on this batch of 1 samples"):
        MoreauEnvelope(1.01 * L).step(R, w, X[:1] * 10, y[:1], rng, None)
    with pytest.raises(ValueError, match="nesterov"):
        MoreauEnvelope(0.5 * L, inner="nesterov").grad(R, w, X, y)
    # convex: any λ > 0 is fine and matches the closed form (ME-10)
    M = LeastSquares()
    lam = 0.1 * M.smoothness(X, y)
    A = X.T @ X / 20
    c = np.linalg.solve(A, X.T @ y / 20)
    HF = lam * A @ np.linalg.inv(A + lam * np.eye(3))
    np.testing.assert_allclose(MoreauEnvelope(lam).grad(M, w, X, y), HF @ (w - c), atol=1e-9)


def test_stopping_rules():
    c = CASES[0]
    M, w, X, y = c.model, c.w, c.X, c.y
    r = MoreauEnvelope(2 * c.L, inner_steps=4).prox(M, w, X, y)
    assert (r.n_inner, r.n_grad, r.converged) == (4, 5, False)
    r = MoreauEnvelope(2 * c.L, inner_tol=1e-6).prox(M, w, X, y)
    assert r.converged and r.residual <= 1e-6
    r2 = MoreauEnvelope(2 * c.L, inner_tol=1e-6, inner_steps=2).prox(M, w, X, y)
    assert r2.n_inner == min(2, r.n_inner)
    o = MoreauEnvelope(2 * c.L)
    assert o.tol == 1e-10 and o.max_steps == 1000
    # the residual is measured at the returned point
    res = solve_prox(M, w, X, y, 2 * c.L, c.L, max_steps=3, tol=None)
    gh = M.grad(res.theta, X, y) + 2 * c.L * (res.theta - w)
    assert res.residual == pytest.approx(np.linalg.norm(gh), rel=1e-14)


def test_minibatch_bias_within_bound():
    """(ME-11): ‖E g − ∇F‖ ≤ (λ/μ)·sqrt(E_D‖∇f(θ̂;D) − ∇f(θ̂)‖²), exact enumeration over D."""
    rng = np.random.default_rng(4)
    m, d, b = 8, 2, 2
    X, y = rng.normal(size=(m, d)), rng.normal(size=m)
    M, w = RobustRegression(), rng.normal(size=d)
    # a smoothness valid for every batch objective: 2·max_j‖x_j‖² (≥ 2‖X_D‖²/b)
    Lb = 2 * float(np.max(np.sum(X**2, axis=1)))
    o = MoreauEnvelope(2 * Lb, smoothness=Lb, inner_tol=1e-12)
    true = o.grad(M, w, X, y)
    th = w - true / o.lam
    gs, dev = [], []
    for D in itertools.combinations(range(m), b):
        idx = np.array(D)
        gs.append(o.grad(M, w, X[idx], y[idx]))
        dev.append(np.sum((M.grad(th, X[idx], y[idx]) - M.grad(th, X, y)) ** 2))
    bias = np.linalg.norm(np.mean(gs, axis=0) - true)
    assert 1e-10 < bias <= o.lam / (o.lam - Lb) * math.sqrt(np.mean(dev))


def test_constants():
    o = MoreauEnvelope(3.0)
    assert o.constants(1.0, 0.0, math.inf).L_F == pytest.approx(1.5)
    assert o.constants(1.0, 0.0, math.inf, convex=True).L_F == pytest.approx(0.75)
    assert o.constants(1.0, 0.0, 0.0, quadratic_eigs=[-1.0, 0.5]).L_F == pytest.approx(1.5)
    with pytest.raises(ValueError, match="lam must be > L"):
        o.constants(3.0, 0.0, math.inf)
    assert o.constants(3.0, 0.0, math.inf, convex=True).L_F == pytest.approx(1.5)
    with pytest.raises(ValueError, match="unbounded below"):
        o.constants(1.0, 0.0, 0.0, quadratic_eigs=[-3.0])
    b = MoreauEnvelope(3.0, inner_tol=1e-3).constants(1.0, 0.0, 0.0, sigma=2.0, batch_size=4)
    assert b.bias == pytest.approx(1.5 * (1.0 + 1e-3))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lam": 0.0}, "lam"),
        ({"lam": -1.0}, "lam"),
        ({"lam": math.inf}, "lam"),
        ({"lam": 1.0, "inner": "newton"}, "inner must be one of"),
        ({"lam": 1.0, "inner_steps": 0}, "inner_steps"),
        ({"lam": 1.0, "inner_steps": 2.5}, "inner_steps"),
        ({"lam": 1.0, "inner_tol": 0.0}, "inner_tol"),
        ({"lam": 1.0, "smoothness": -1.0}, "smoothness"),
        ({"lam": 1.0, "warm_start": 1}, "warm_start"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MoreauEnvelope(**kwargs)


def test_infinite_smoothness_needs_explicit_L():
    c = next(c for c in CASES if not c.global_L) if any(not c.global_L for c in CASES) else None
    if c is None:
        pytest.skip("no model without a global L")
    with pytest.raises(ValueError, match="smoothness"):
        MoreauEnvelope(10.0).grad(c.model, c.w, c.X, c.y)


def test_array_api_strict_matches_numpy():
    xs = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(5)
    X, y, w = rng.normal(size=(10, 3)), rng.normal(size=10), rng.normal(size=3)
    M = LeastSquares(l2=0.1)
    for inner in ("gd", "nesterov"):
        o = MoreauEnvelope(2.0, inner=inner)
        g_np = o.grad(M, w, X, y)
        g_s = o.grad(M, xs.asarray(w), xs.asarray(X), xs.asarray(y))
        np.testing.assert_allclose(np.asarray(g_s), g_np, rtol=1e-10, atol=1e-12)


class _NoSampleSmoothness:
    """A model without ``sample_smoothness`` (a user's model): every other method delegates."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        if name == "sample_smoothness":
            raise AttributeError(name)
        return getattr(self._model, name)


def test_step_smoothness_per_sample_bound_full_batch_exact_and_fallback():
    """A mini-batch step solves the inner problem on D with L_D = mean_{j∈D} L_j (eq. (ME-13));
    a full-batch step with the model's full-data L; a model without ``sample_smoothness`` with
    ``model.smoothness`` of the batch. Checked against solve_prox with that L, bit for bit."""
    rng = np.random.default_rng(11)
    m, b, K, lam = 30, 6, 4, 3.0
    X, y = rng.normal(size=(m, 4)) * rng.pareto(2.0, size=(m, 1)), rng.normal(size=m)
    M, w = LeastSquares(), rng.normal(size=4)
    o = MoreauEnvelope(lam, inner_steps=K)
    D = np.random.default_rng(5).permutation(m)[:b]   # the first batch of a fresh pass
    cases = [(M, b, float(np.mean(M.sample_smoothness(X[D], y[D]))), D),
             (M, None, M.smoothness(X, y), slice(None)),
             (_NoSampleSmoothness(M), b, M.smoothness(X[D], y[D]), D)]
    for model, bs, L, rows in cases:
        s = o.step(model, w, X, y, np.random.default_rng(5), bs)
        ref = solve_prox(M, w, X[rows], y[rows], lam, L, max_steps=K, tol=None)
        np.testing.assert_array_equal(s.g, lam * (w - ref.theta))
        assert s.n_inner == K and s.inner_residual == ref.residual
    # the three L differ here, so the test tells them apart
    assert len({round(c[2], 12) for c in cases}) == 3


@pytest.mark.parametrize("method,tol", [("gd", None), ("gd", 1e-6), ("nesterov", None),
                                        ("nesterov", 1e-6)])
def test_stacked_prox_shortcuts_equal_the_row_removal_path(method, tol):
    """solve_prox_many skips the stopping vector while no row can stop and returns θ itself
    when every row stops at the same iterate; a row that stops at once (a NaN start) sends the
    same rows through the row-removal path: results and counters must agree bit for bit, and
    the caller's W and θ₀ must be left untouched."""
    from persafl_np.models import SoftmaxRegression
    from persafl_np.personalization.cohort import Kernels
    from persafl_np.personalization.moreau import solve_prox_many

    rng = np.random.default_rng(3)
    C, b, d, K = 6, 7, 5, 3
    X, y = rng.normal(size=(C + 1, b, d)), rng.integers(0, K, (C + 1, b))
    W = rng.normal(size=(C + 1, d * K))
    W[C] = np.nan
    theta0 = W + 0.1 * rng.normal(size=W.shape)
    L = 0.5 + rng.random(C + 1)
    kern = Kernels(SoftmaxRegression(K))
    before = W.tobytes(), theta0.tobytes()
    for steps in (1, 4, 60):
        a = solve_prox_many(kern, W[:C], X[:C], y[:C], None, 2.0, L[:C], theta0=theta0[:C],
                            method=method, max_steps=steps, tol=tol)
        ref = solve_prox_many(kern, W, X, y, None, 2.0, L, theta0=theta0, method=method,
                              max_steps=steps, tol=tol)
        assert ref.n_inner[C] == 0 and math.isnan(ref.residual[C])
        assert a.theta.tobytes() == ref.theta[:C].tobytes()
        assert a.residual.tobytes() == ref.residual[:C].tobytes()
        np.testing.assert_array_equal(a.n_inner, ref.n_inner[:C])
        np.testing.assert_array_equal(a.n_grad, a.n_inner + 1)
        if tol is None:
            assert np.all(a.n_inner == steps)
        assert a.theta is not W and a.theta is not theta0
    if tol is not None:  # the tolerance made rows stop at different iterates
        assert len(set(a.n_inner.tolist())) > 1
    assert (W.tobytes(), theta0.tobytes()) == before
    # a row whose step 1/(λ + L) is huge diverges and stops mid-way at a non-finite residual
    # (found by the finiteness test of ‖∇h‖²): the other rows are unaffected, and the row
    # stops where it stops alone
    Ld = L.copy()
    Ld[C] = -2.0 + 1e-9
    Wd, t0d = W.copy(), theta0.copy()
    Wd[C], t0d[C] = W[0], theta0[0]
    for steps in (5, 60):
        a = solve_prox_many(kern, W[:C], X[:C], y[:C], None, 2.0, L[:C], theta0=theta0[:C],
                            method=method, max_steps=steps, tol=tol)
        with np.errstate(over="ignore", invalid="ignore"):   # the diverging row
            ref = solve_prox_many(kern, Wd, X, y, None, 2.0, Ld, theta0=t0d, method=method,
                                  max_steps=steps, tol=tol)
            one = solve_prox_many(kern, Wd[C:], X[C:], y[C:], None, 2.0, Ld[C:],
                                  theta0=t0d[C:], method=method, max_steps=steps, tol=tol)
        assert a.theta.tobytes() == ref.theta[:C].tobytes()
        assert a.residual.tobytes() == ref.residual[:C].tobytes()
        np.testing.assert_array_equal(a.n_inner, ref.n_inner[:C])
        assert ref.n_inner[C] == one.n_inner[0]
        if steps == 60:
            assert 0 < ref.n_inner[C] < steps and not math.isfinite(ref.residual[C])
