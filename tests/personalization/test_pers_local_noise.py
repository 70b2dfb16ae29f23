"""Plain unbiasedness, AdditiveNoise (NOISE-1) and local_update (LOC-1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pers_testmodels import CASE_IDS, CASES

from persafl_np.models import LeastSquares, RobustRegression
from persafl_np.personalization import (
    MAML,
    AdditiveNoise,
    MoreauEnvelope,
    Oracle,
    Plain,
    local_update,
)
from persafl_np.personalization.sampling import BatchSampler


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_plain_minibatch_gradient_is_unbiased(case):
    """(AL-1). Tolerance: 5 standard errors per coordinate, with the exact without-replacement
    variance s²(m−b)/(b(m−1)) of the batch mean (s² = per-sample population variance)."""
    M, w, X, y = case.model, case.w, case.X, case.y
    m, b, N = X.shape[0], 4, 4000
    rng = np.random.default_rng(0)
    G = np.stack([Plain().stochastic_grad(M, w, X, y, rng, b) for _ in range(N)])
    ps = np.stack([M.grad(w, X[j:j + 1], y[j:j + 1]) for j in range(m)])
    s2 = ps.var(axis=0)
    se = np.sqrt(s2 * (m - b) / (b * (m - 1)) / N)
    full = M.grad(w, X, y)
    assert np.all(np.abs(G.mean(0) - full) <= 5 * se + 1e-12)
    # the empirical variance matches the exact one (the batches really are b of m, no repeats)
    np.testing.assert_allclose(G.var(axis=0), s2 * (m - b) / (b * (m - 1)), rtol=0.15)


@pytest.mark.parametrize("base", [Plain(), MAML(0.05), MoreauEnvelope(200.0)],
                         ids=["plain", "maml", "moreau"])
def test_additive_noise_moments_and_delegation(base):
    """E ξ = 0, E‖ξ‖² = σ² (NOISE-1); value/grad/personalize/constants are the base's."""
    rng = np.random.default_rng(1)
    d, sigma, N = 6, 1.7, 4000
    X, y, w = rng.normal(size=(20, d)), rng.normal(size=20), rng.normal(size=d)
    M = LeastSquares()
    o = AdditiveNoise(base, sigma)
    assert isinstance(o, Oracle) and o.name == f"{base.name}+noise"
    exact = base.grad(M, w, X, y)
    r = np.random.default_rng(2)
    Xi = np.stack([o.stochastic_grad(M, w, X, y, r, None) for _ in range(N)]) - exact
    sq = np.sum(Xi**2, axis=1)
    # d‖ξ‖²/σ² ~ χ²_d: mean σ², variance 2σ⁴/d; 5 standard errors.
    assert abs(sq.mean() - sigma**2) <= 5 * sigma**2 * math.sqrt(2 / d / N)
    assert np.all(np.abs(Xi.mean(0)) <= 5 * sigma / math.sqrt(d * N))
    assert o.value(M, w, X, y) == base.value(M, w, X, y)
    np.testing.assert_array_equal(o.grad(M, w, X, y), exact)
    np.testing.assert_array_equal(o.personalize(M, w, X, y), base.personalize(M, w, X, y))
    assert o.constants(4.0, 0.0, math.inf).L_F == base.constants(4.0, 0.0, math.inf).L_F
    # batch_size is ignored: the same seed gives the same step
    s1 = o.step(M, w, X, y, np.random.default_rng(3), None)
    s2 = o.step(M, w, X, y, np.random.default_rng(3), 5)
    np.testing.assert_array_equal(s1.g, s2.g)
    assert s1.n_grad == base.step(M, w, X, y, np.random.default_rng(3), None).n_grad


def test_additive_noise_zero_sigma_is_base_and_bad_input():
    rng = np.random.default_rng(4)
    X, y, w = rng.normal(size=(10, 3)), rng.normal(size=10), rng.normal(size=3)
    np.testing.assert_array_equal(
        AdditiveNoise(Plain(), 0.0).stochastic_grad(LeastSquares(), w, X, y, rng, None),
        LeastSquares().grad(w, X, y),
    )
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="sigma"):
            AdditiveNoise(Plain(), bad)
    with pytest.raises(ValueError, match="base must be"):
        AdditiveNoise(object(), 1.0)


def test_local_update_matches_manual_loop_and_counters():
    """(LOC-1): Δ = y_0 − y_Q = η Σ_q g(y_q); costs summed over the Q steps."""
    c = next(c for c in CASES if c.name == "robust")
    M, w, X, y = c.model, c.w, c.X, c.y
    Q, eta = 4, 0.05
    for oracle, per_step in ((Plain(), (1, 0)), (MAML(0.5 / c.L), (2, 1)),
                             (MAML(0.5 / c.L, "hessian_free"), (4, 0))):
        # the manual loop continues one pass (law SIM-BATCH), as local_update does
        r1, r2 = np.random.default_rng(5), BatchSampler(np.random.default_rng(5))
        res = local_update(oracle, M, w, X, y, Q, eta, r1, batch_size=3)
        yq, gsum = w.copy(), np.zeros_like(w)
        for _ in range(Q):
            g = oracle.stochastic_grad(M, yq, X, y, r2, 3)
            gsum += g
            yq = yq - eta * g
        np.testing.assert_allclose(res.delta, w - yq, rtol=0, atol=1e-15)
        np.testing.assert_allclose(res.delta, eta * gsum, rtol=1e-12, atol=1e-15)
        assert (res.n_grad, res.n_hvp, res.n_inner) == (Q * per_step[0], Q * per_step[1], 0)
    # full batch: deterministic, no randomness consumed
    r = np.random.default_rng(6)
    a = local_update(MAML(0.5 / c.L), M, w, X, y, Q, eta, r)
    assert r.random() == np.random.default_rng(6).random()
    b = local_update(MAML(0.5 / c.L), M, w, X, y, Q, eta, r)
    np.testing.assert_array_equal(a.delta, b.delta)


def test_local_update_moreau_warm_state_threads_through():
    rng = np.random.default_rng(7)
    X, y, w = rng.normal(size=(20, 3)), rng.normal(size=20), rng.normal(size=3)
    M = RobustRegression()
    o = MoreauEnvelope(2 * M.smoothness(X, y), inner_tol=1e-9)
    res = local_update(o, M, w, X, y, 3, 0.1, rng)
    s = [o.step(M, w, X, y, rng, None)]
    yq = w - 0.1 * s[0].g
    for _ in range(2):
        s.append(o.step(M, yq, X, y, rng, None, warm=s[-1].warm))
        yq = yq - 0.1 * s[-1].g
    np.testing.assert_array_equal(res.delta, w - yq)
    np.testing.assert_array_equal(res.warm, s[-1].warm)
    assert res.n_inner == sum(t.n_inner for t in s)
    assert res.n_grad == sum(t.n_grad for t in s)
    assert res.inner_residual == max(t.inner_residual for t in s) <= 1e-9
    cold = [o.step(M, w, X, y, rng, None)]  # the warm chain saved iterations
    assert s[1].n_inner < cold[0].n_inner or s[2].n_inner < cold[0].n_inner


@pytest.mark.parametrize("Q,eta,match", [(0, 0.1, "Q"), (1.5, 0.1, "Q"), (True, 0.1, "Q"),
                                         (2, 0.0, "eta"), (2, -1.0, "eta"), (2, math.nan, "eta")])
def test_local_update_bad_input(Q, eta, match):
    rng = np.random.default_rng(8)
    X, y, w = rng.normal(size=(5, 2)), rng.normal(size=5), rng.normal(size=2)
    with pytest.raises(ValueError, match=match):
        local_update(Plain(), LeastSquares(), w, X, y, Q, eta, rng)


def test_array_api_strict_noise_and_minibatch_steps():
    xs = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(9)
    X, y, w = rng.normal(size=(12, 3)), rng.normal(size=12), rng.normal(size=3)
    Xs, ys, wsx = xs.asarray(X), xs.asarray(y), xs.asarray(w)
    M = LeastSquares(l2=0.1)
    for o in (AdditiveNoise(MAML(0.1), 0.5), MoreauEnvelope(3.0), MAML(0.1, "hessian_free")):
        a = o.step(M, wsx, Xs, ys, np.random.default_rng(0), 4)
        b = o.step(M, w, X, y, np.random.default_rng(0), 4)
        np.testing.assert_allclose(np.asarray(a.g), b.g, rtol=1e-10, atol=1e-12)
    res = local_update(MAML(0.1), M, wsx, Xs, ys, 3, 0.1, np.random.default_rng(1), 4)
    ref = local_update(MAML(0.1), M, w, X, y, 3, 0.1, np.random.default_rng(1), 4)
    np.testing.assert_allclose(np.asarray(res.delta), ref.delta, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- (LOC-PROX)
def _ls_client(seed: int = 10, m: int = 15, d: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(size=m), rng.normal(size=d)


def test_local_update_prox_zero_is_exactly_loc1():
    """ρ = 0 runs the (LOC-1) arithmetic: bit-identical to the manual loop and to no prox."""
    X, y, w = _ls_client()
    M, Q, eta = LeastSquares(), 5, 0.07
    for b in (None, 4):
        ref = local_update(Plain(), M, w, X, y, Q, eta, np.random.default_rng(2), b)
        res = local_update(Plain(), M, w, X, y, Q, eta, np.random.default_rng(2), b, prox=0.0)
        np.testing.assert_array_equal(res.delta, ref.delta)
        r, yq = BatchSampler(np.random.default_rng(2)), w
        for _ in range(Q):
            yq = yq - eta * Plain().step(M, yq, X, y, r, b).g
        np.testing.assert_array_equal(res.delta, w - yq)


@pytest.mark.parametrize("rho", [0.3, 2.0, 14.0])
def test_local_update_prox_full_batch_matches_affine_recursion(rho):
    """(LOC-PROX) with g = Ay − c (least squares, full batch):
    y_{q+1} = (I − η(A + ρI)) y_q + η(c + ρ y_0), computed independently of the code's form."""
    X, y, w = _ls_client()
    m, d = X.shape
    Q, eta = 6, 0.07
    A, c = X.T @ X / m, X.T @ y / m
    T = np.eye(d) - eta * (A + rho * np.eye(d))
    yq = w.copy()
    for _ in range(Q):
        yq = T @ yq + eta * (c + rho * w)
    res = local_update(Plain(), LeastSquares(), w, X, y, Q, eta, np.random.default_rng(0),
                       prox=rho)
    np.testing.assert_allclose(res.delta, w - yq, rtol=1e-12, atol=1e-14)
    assert (res.n_grad, res.n_hvp) == (Q, 0)
    # and ρ really changes the update (the test is not passing on ρ being ignored)
    plain = local_update(Plain(), LeastSquares(), w, X, y, Q, eta, np.random.default_rng(0))
    assert np.linalg.norm(res.delta - plain.delta) > 1e-3 * np.linalg.norm(plain.delta)


def test_local_update_prox_minibatch_matches_manual_loop():
    X, y, w = _ls_client(11, m=20)
    M, Q, eta, rho, b = LeastSquares(), 4, 0.05, 1.5, 5
    res = local_update(MAML(0.05), M, w, X, y, Q, eta, np.random.default_rng(3), b, prox=rho)
    r, yq = BatchSampler(np.random.default_rng(3)), w
    for _ in range(Q):
        g = MAML(0.05).stochastic_grad(M, yq, X, y, r, b)
        yq = yq - eta * (g + rho * (yq - w))
    np.testing.assert_array_equal(res.delta, w - yq)


def test_local_update_large_prox_keeps_iterate_near_anchor():
    """(LOC-PROX-B): for 0 < ηρ ≤ 1, ‖Δ‖ ≤ (G/ρ)(1 − (1 − ηρ)^Q) with G = max_q ‖g(y_q)‖,
    whatever Q; without prox the drift grows with Q."""
    X, y, w = _ls_client(12)
    w = w + 5.0  # far from the client optimum: large gradients
    M, Q, eta = LeastSquares(), 200, 0.05
    drift0 = np.linalg.norm(local_update(Plain(), M, w, X, y, Q, eta, None).delta)
    for rho in (2.0, 10.0, 1.0 / eta):
        res = local_update(Plain(), M, w, X, y, Q, eta, None, prox=rho)
        yq, G = w, 0.0
        for _ in range(Q):
            g = M.grad(yq, X, y)
            G = max(G, float(np.linalg.norm(g)))
            yq = yq - eta * (g + rho * (yq - w))
        bound = G / rho * (1 - (1 - eta * rho) ** Q)
        assert np.linalg.norm(res.delta) <= bound * (1 + 1e-12)
        assert np.linalg.norm(res.delta) < 0.5 * drift0
    # at ηρ = 1 every step restarts from the anchor: Δ = η g(y_{Q−1})
    res = local_update(Plain(), M, w, X, y, 3, eta, None, prox=1.0 / eta)
    y1 = w - eta * M.grad(w, X, y)
    y2 = w - eta * M.grad(y1, X, y)
    np.testing.assert_allclose(res.delta, eta * M.grad(y2, X, y), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("prox", [-0.1, math.nan, math.inf, True, "1", None])
def test_local_update_bad_prox(prox):
    X, y, w = _ls_client()
    msg = r"prox \(proximal weight rho\) must be (>= 0 \()?a finite number"
    with pytest.raises(ValueError, match=msg):
        local_update(Plain(), LeastSquares(), w, X, y, 2, 0.1, None, prox=prox)
