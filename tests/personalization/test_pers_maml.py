"""MAML oracle: eqs. (MAML-1)–(MAML-11) of theory/personalization.md."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pers_testmodels import CASE_IDS, CASES, Linear, Quadratic, Spy, fd_grad, id_data

from persafl_np.models import LeastSquares, LogisticRegression, RobustRegression
from persafl_np.personalization import MAML, Plain, central_hvp
from persafl_np.personalization.base import sample_batch

# FD of the value with h = 1e-5: truncation ~h²·|F'''| ≈ 1e-10, rounding ~ε|F|/h ≈ 1e-11.
FD_TOL = 1e-6


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@given(frac=st.floats(0.05, 1.0))
def test_exact_grad_matches_fd_of_value(case, frac):
    """(MAML-2) against a central difference of (MAML-1), α ∈ (0, 1/L], every model."""
    o = MAML(frac / case.L)
    g = o.grad(case.model, case.w, case.X, case.y)
    fd = fd_grad(lambda v: o.value(case.model, v, case.X, case.y), case.w)
    assert np.linalg.norm(g - fd) <= FD_TOL * (1 + np.linalg.norm(g))
    # The Hessian term matters here: first order is measurably different.
    g_fo = MAML(frac / case.L, "first_order").grad(case.model, case.w, case.X, case.y)
    assert np.linalg.norm(g_fo - g) > 100 * FD_TOL * (1 + np.linalg.norm(g))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_alpha_zero_is_plain_exactly(case):
    o, p = MAML(0.0), Plain()
    M, w, X, y = case.model, case.w, case.X, case.y
    assert o.value(M, w, X, y) == p.value(M, w, X, y)
    np.testing.assert_array_equal(o.grad(M, w, X, y), p.grad(M, w, X, y))
    np.testing.assert_array_equal(o.personalize(M, w, X, y), w)
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(3):
        s1, s2 = o.step(M, w, X, y, r1, 4), p.step(M, w, X, y, r2, 4)
        np.testing.assert_array_equal(s1.g, s2.g)
        assert (s1.n_grad, s1.n_hvp) == (s2.n_grad, s2.n_hvp) == (1, 0)
    assert r1.random() == r2.random()  # the same amount of randomness was consumed


@pytest.mark.parametrize("case", [c for c in CASES if c.name != "least_squares"],
                         ids=[n for n in CASE_IDS if n != "least_squares"])
def test_hessian_free_converges_at_order_two(case):
    """(MAML-5): error ≤ αρδ‖v‖/2 (when ρ is finite) and shrinks like δ² (smooth models)."""
    M, w, X, y = case.model, case.w, case.X, case.y
    alpha = 0.5 / case.L
    exact = MAML(alpha).grad(M, w, X, y)
    v = M.grad(w - alpha * M.grad(w, X, y), X, y)
    rho = float(M.hessian_lipschitz(X, y))
    deltas = [4e-2, 2e-2, 1e-2, 5e-3]
    errs = [np.linalg.norm(MAML(alpha, "hessian_free", d).grad(M, w, X, y) - exact) for d in deltas]
    for d, e in zip(deltas, errs, strict=True):
        if math.isfinite(rho):
            assert e <= alpha * rho * d * np.linalg.norm(v) / 2 + 1e-12
    ratios = [errs[k] / errs[k + 1] for k in range(len(errs) - 1)]
    assert 3.0 < ratios[-1] < 5.0, ratios  # order 2 → ratio 4 per halving
    # The default δ is accurate to ~1e-10 relative.
    e_def = np.linalg.norm(MAML(alpha, "hessian_free").grad(M, w, X, y) - exact)
    assert e_def <= 1e-8 * alpha * np.linalg.norm(v) + 1e-13


def test_hessian_free_exact_on_quadratics():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 4)), rng.normal(size=20)
    M, w = LeastSquares(), rng.normal(size=4)
    alpha = 0.7 / M.smoothness(X, y)
    exact = MAML(alpha).grad(M, w, X, y)
    for d in (1e-1, 1e-3, 1e-5):
        hf = MAML(alpha, "hessian_free", d).grad(M, w, X, y)
        assert np.linalg.norm(hf - exact) <= 1e-9 * np.linalg.norm(exact)
    np.testing.assert_array_equal(central_hvp(M, w, np.zeros(4), X, y, 1e-5), np.zeros(4))


def test_first_order_equals_exact_when_hessian_is_zero():
    rng = np.random.default_rng(2)
    M = Linear(rng.normal(size=3))
    X, y = rng.normal(size=(10, 3)), rng.normal(size=10)
    w = rng.normal(size=3)
    np.testing.assert_array_equal(
        MAML(0.3, "first_order").grad(M, w, X, y), MAML(0.3).grad(M, w, X, y)
    )
    # and with a non-zero Hessian it is not (guards against a vacuous comparison)
    L = LeastSquares()
    diff = MAML(0.3, "first_order").grad(L, w, X, y) - MAML(0.3).grad(L, w, X, y)
    assert np.linalg.norm(diff) > 1e-3


@pytest.mark.parametrize("mode,n_draws", [("exact", 3), ("hessian_free", 3), ("first_order", 2)])
def test_batches_are_independent_draws_in_order(mode, n_draws):
    """D, D′, D″ are successive independent draws from the client rng (not one shared batch)."""
    rng = np.random.default_rng(5)
    X, y = id_data(rng, 30, 3)
    spy, w, b = Spy(LeastSquares()), rng.normal(size=3), 5
    seen_distinct = False
    r_oracle, r_ref = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(5):
        spy.log.clear()
        MAML(0.1, mode).step(spy, w, X, y, r_oracle, b)
        ref = [tuple(sorted(int(i) for i in sample_batch(r_ref, 30, b))) for _ in range(n_draws)]
        kinds = [k for k, _ in spy.log]
        ids = [s for _, s in spy.log]
        assert ids[0] == ref[0] and ids[1] == ref[1]  # ∇f(y; D), ∇f(·; D′)
        if mode == "exact":
            assert kinds == ["grad", "grad", "hvp"] and ids[2] == ref[2]
        elif mode == "hessian_free":
            assert kinds == ["grad"] * 4 and ids[2] == ids[3] == ref[2]
        else:
            assert kinds == ["grad", "grad"]
        assert all(len(s) == b for s in ids)
        seen_distinct |= len(set(ref)) == n_draws
    assert seen_distinct


def _per_sample_grads(M, w, X, y):
    return np.stack([M.grad(w, X[j:j + 1], y[j:j + 1]) for j in range(X.shape[0])])


def _exact_mean_over_batches(o, M, w, X, y, b):
    """E g of (MAML-3): E_{D′,D″} is exact (unbiased, independent), E_D by enumeration."""
    m = X.shape[0]
    H = M.hessian(w, X, y)
    vs, gds = [], []
    for D in itertools.combinations(range(m), b):
        idx = np.array(D)
        gD = M.grad(w, X[idx], y[idx])
        gds.append(gD)
        vs.append(M.grad(w - o.alpha * gD, X, y))
    Eg = (np.eye(len(w)) - o.alpha * H) @ np.mean(vs, axis=0)
    var_b = np.mean([np.sum((g - M.grad(w, X, y)) ** 2) for g in gds])
    return Eg, var_b


@pytest.mark.parametrize(
    "model", [RobustRegression(), LogisticRegression()], ids=["robust", "logistic"]
)
def test_stochastic_bias_within_derived_bound(model):
    """(MAML-10): ‖E g − ∇F‖ ≤ αL(1+αL)·sqrt(E‖g_D − ∇f‖²) ≤ αL(1+αL)σ/√b, and MC mean → E g."""
    rng = np.random.default_rng(7)
    m, d, b = 8, 2, 2
    X = 1.5 * rng.normal(size=(m, d))
    y = (X @ rng.normal(size=d) + rng.normal(size=m)) if not model.is_classifier else (
        rng.random(m) < 0.5).astype(np.int64)
    w = rng.normal(size=d)
    L, rho, B = model.smoothness(X, y), model.hessian_lipschitz(X, y), model.grad_bound(X, y)
    o = MAML(1.0 / L)
    Eg, var_b = _exact_mean_over_batches(o, model, w, X, y, b)
    true = o.grad(model, w, X, y)
    bias = np.linalg.norm(Eg - true)
    a = o.alpha
    assert 1e-8 < bias <= a * L * (1 + a * L) * math.sqrt(var_b)
    ps = _per_sample_grads(model, w, X, y)
    sigma = math.sqrt(np.mean(np.sum((ps - ps.mean(0)) ** 2, axis=1)))
    assert bias <= o.constants(L, rho, B, sigma=sigma, batch_size=b).bias
    # Monte Carlo mean of the oracle itself converges to the enumerated E g (CLT, 5 sd).
    N = 3000
    r = np.random.default_rng(8)
    G = np.stack([o.stochastic_grad(model, w, X, y, r, b) for _ in range(N)])
    sd = G.std(axis=0, ddof=1) / math.sqrt(N)
    assert np.all(np.abs(G.mean(0) - Eg) <= 5 * sd + 1e-12)


def test_least_squares_estimator_is_unbiased():
    """ρ = 0: ∇f affine, so (MAML-3) is unbiased (exact enumeration)."""
    rng = np.random.default_rng(9)
    X, y, w = rng.normal(size=(7, 3)), rng.normal(size=7), rng.normal(size=3)
    M = LeastSquares()
    o = MAML(0.8 / M.smoothness(X, y))
    Eg, _ = _exact_mean_over_batches(o, M, w, X, y, 3)
    assert np.linalg.norm(Eg - o.grad(M, w, X, y)) <= 1e-12 * (1 + np.linalg.norm(Eg))
    assert o.constants(M.smoothness(X, y), 0.0, math.inf, sigma=1.0, batch_size=3).bias == 0.0


def test_full_batch_step_is_grad_and_deterministic():
    c = CASES[-1]
    o = MAML(0.3 / c.L)
    r = np.random.default_rng(0)
    s = o.step(c.model, c.w, c.X, c.y, r, None)
    np.testing.assert_array_equal(s.g, o.grad(c.model, c.w, c.X, c.y))
    assert (s.n_grad, s.n_hvp) == (2, 1)
    assert r.random() == np.random.default_rng(0).random()


def test_personalize_is_one_adaptation_step():
    c = CASES[0]
    o = MAML(0.2)
    np.testing.assert_array_equal(
        o.personalize(c.model, c.w, c.X, c.y), c.w - 0.2 * c.model.grad(c.w, c.X, c.y)
    )
    assert o.value(c.model, c.w, c.X, c.y) == pytest.approx(
        float(c.model.loss(c.w - 0.2 * c.model.grad(c.w, c.X, c.y), c.X, c.y)), rel=1e-15
    )


def test_constants():
    o = MAML(0.1)
    c = o.constants(2.0, 3.0, 4.0)
    assert c.L_F == pytest.approx(2.0 * 1.2**2 + 0.1 * 3.0 * 4.0)
    assert c.L_F <= 4 * 2.0 + 0.1 * 3.0 * 4.0  # Per-FedAvg Lemma 4.2
    assert o.constants(2.0, 0.0, math.inf).L_F == pytest.approx(2.0 * 1.2**2)
    assert o.constants(2.0, 1.0, math.inf).L_F == math.inf
    eigs = np.array([-2.0, 0.5, 2.0])
    assert o.constants(2.0, 0.0, math.inf, quadratic_eigs=eigs).L_F == pytest.approx(2.0 * 1.2**2)
    assert MAML(0.1, "first_order").constants(2.0, 1.0, 4.0).bias == pytest.approx(0.1 * 2 * 4)
    assert MAML(0.1, "first_order").constants(2.0, 1.0, math.inf).bias == math.inf
    b = o.constants(2.0, 3.0, 4.0, sigma=1.5, batch_size=9).bias
    assert b == pytest.approx(0.1 * 2.0 * 1.2 * 1.5 / 3.0)
    # α > 1/L: rejected where the bound needs α ≤ 1/L, and only warned by check_alpha(strict=False)
    with pytest.raises(ValueError, match="alpha must lie in"):
        MAML(0.6).constants(2.0, 0.0, 1.0)
    with pytest.warns(UserWarning, match="alpha"):
        MAML(0.6).check_alpha(2.0, strict=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MAML(0.5).check_alpha(2.0)
    # the exact quadratic formula holds for any α
    assert MAML(0.6).constants(2.0, 0.0, 1.0, quadratic_eigs=[2.0]).L_F == pytest.approx(
        2.0 * 0.2**2
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"alpha": 0.1, "hessian": "dense"}, "hessian must be one of"),
        ({"alpha": 0.1, "hf_delta": 0.0}, "hf_delta"),
        ({"alpha": 0.1, "hf_delta": -1e-5}, "hf_delta"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAML(**kwargs)


def test_bad_constants_input():
    with pytest.raises(ValueError, match="L must"):
        MAML(0.1).constants(-1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="quadratic_eigs"):
        MAML(0.1).constants(1.0, 0.0, 1.0, quadratic_eigs=[])
    with pytest.raises(ValueError, match="batch_size"):
        MAML(0.1).constants(1.0, 1.0, 1.0, batch_size=0)


def test_array_api_strict_matches_numpy():
    xs = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(4)
    X, y, w = rng.normal(size=(10, 3)), rng.normal(size=10), rng.normal(size=3)
    M = LeastSquares(l2=0.1)
    for mode in ("exact", "hessian_free", "first_order"):
        o = MAML(0.2, mode)
        g_np = o.grad(M, w, X, y)
        g_s = o.grad(M, xs.asarray(w), xs.asarray(X), xs.asarray(y))
        np.testing.assert_allclose(np.asarray(g_s), g_np, rtol=1e-12, atol=1e-14)
        s = o.step(M, xs.asarray(w), xs.asarray(X), xs.asarray(y), np.random.default_rng(0), 4)
        s_np = o.step(M, w, X, y, np.random.default_rng(0), 4)
        np.testing.assert_allclose(np.asarray(s.g), s_np.g, rtol=1e-12, atol=1e-14)


def test_quadratic_closed_form_any_symmetric_A():
    """(MAML-8) with an indefinite A (Quadratic test model)."""
    rng = np.random.default_rng(6)
    eigs = np.array([-1.0, 0.3, 1.0])
    Qm, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    A = (Qm * eigs) @ Qm.T
    c = rng.normal(size=3)
    M = Quadratic(A, c, f0=0.7)
    X, y = np.zeros((2, 3)), np.zeros(2)
    o = MAML(0.4)
    I3 = np.eye(3)
    HF = A @ (I3 - 0.4 * A) @ (I3 - 0.4 * A)
    for _ in range(5):
        w = rng.normal(size=3)
        assert o.value(M, w, X, y) == pytest.approx(0.5 * (w - c) @ HF @ (w - c) + 0.7, rel=1e-12)
        np.testing.assert_allclose(o.grad(M, w, X, y), HF @ (w - c), rtol=1e-12, atol=1e-14)
