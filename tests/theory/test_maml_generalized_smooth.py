"""(TC) of theory/maml_generalized_smooth.md: MAML without a gradient bound.

Robust regression (nonconvex) with l2 > 0 has grad_bound = ∞, so (MAML-7) gives L_F = ∞ and
(T1) nothing. (TC-1)/(TC-2) are checked on random pairs, (TC-4) against a synchronous run.
Also the oracle-provided constants (bounds need no isinstance on oracle classes) and the
(MAML-11) first-order bias.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persafl_np.algorithms import Algorithm, sync_average
from persafl_np.bounds.constants import personalized_hessian, robust_constants
from persafl_np.bounds.generalized_smooth import (
    gradient_level_bound,
    maml_l0_l1,
    sync_gd_bound,
)
from persafl_np.data import robust_family
from persafl_np.models.robust import RobustRegression
from persafl_np.personalization import MAML, AdditiveNoise, MoreauEnvelope, Plain
from persafl_np.sim import Problem, TheoremMode, run


def _setup(l2=0.1, seed=0, n=4, d=3):
    ds = robust_family(n, d, 20, seed)
    model = RobustRegression(l2=l2)
    Ls = [model.smoothness(c.X_train, c.y_train) for c in ds.clients]
    rhos = [model.hessian_lipschitz(c.X_train, c.y_train) for c in ds.clients]
    return ds, model, max(Ls), max(rhos)


def test_l2_model_has_no_B_so_T1_has_no_constant():
    ds, model, L, rho = _setup()
    assert all(math.isinf(model.grad_bound(c.X_train, c.y_train)) for c in ds.clients)
    with pytest.raises(ValueError, match="grad_bound is infinite"):
        robust_constants(model, ds, MAML(0.5 / L), np.zeros(3))
    L0, L1 = maml_l0_l1(L, rho, 0.5 / L)
    assert math.isfinite(L0) and math.isfinite(L1)
    assert MAML(0.5 / L).smoothness_l0_l1(L, rho) == (L0, L1)
    assert AdditiveNoise(MAML(0.5 / L), 0.1).smoothness_l0_l1(L, rho) == (L0, L1)
    with pytest.raises(ValueError, match="alpha must lie"):
        maml_l0_l1(L, rho, 1.5 / L)


@settings(max_examples=20)
@given(seed=st.integers(0, 10**6), frac=st.floats(0.05, 0.95), l2=st.sampled_from([0.01, 0.1, 1.0]))
def test_TC1_and_TC2_on_random_pairs(seed, frac, l2):
    ds, model, L, rho = _setup(l2=l2, seed=seed % 5)
    alpha = frac / L
    oracle = MAML(alpha)
    L0, L1 = maml_l0_l1(L, rho, alpha)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        w = rng.standard_normal(3) * 10.0 ** rng.uniform(-1, 2)
        u = w + rng.standard_normal(3) * 10.0 ** rng.uniform(-3, 1)
        for c in ds.clients:
            X, y = c.X_train, c.y_train
            gw, gu = oracle.grad(model, w, X, y), oracle.grad(model, u, X, y)
            lhs = float(np.linalg.norm(gw - gu))
            assert lhs <= (L0 + L1 * float(np.linalg.norm(gu))) * float(np.linalg.norm(w - u)) * (
                1 + 1e-9) + 1e-12
            # (TC-2): ‖∇f(φ(u))‖ ≤ ‖∇F(u)‖/(1 − αL)
            phi = oracle.personalize(model, u, X, y)
            gf = float(np.linalg.norm(model.grad(phi, X, y)))
            assert gf <= float(np.linalg.norm(gu)) / (1 - alpha * L) * (1 + 1e-9) + 1e-12


def test_TC3_gradient_level_bound_is_the_root():
    L0, L1, delta = 2.0, 0.5, 3.0
    g = gradient_level_bound(L0, L1, delta)
    assert g * g == pytest.approx(2 * (L0 + L1 * g) * delta, rel=1e-12)
    assert gradient_level_bound(L0, 0.0, delta) == pytest.approx(math.sqrt(2 * L0 * delta))


def test_TC4_sync_gd_on_l2_nonconvex_maml_is_below_the_bound():
    ds, model, L, rho = _setup()
    oracle = MAML(0.5 / L)
    L0, L1 = maml_l0_l1(L, rho, 0.5 / L)
    w0 = np.full(3, 3.0)
    n, T = len(ds.clients), 400
    F0 = float(np.mean([oracle.value(model, w0, c.X_train, c.y_train) for c in ds.clients]))
    a = sync_gd_bound(L0, L1, F0, n, T, 1.0).a_max
    b = sync_gd_bound(L0, L1, F0, n, T, a)
    assert b.valid and not sync_gd_bound(L0, L1, F0, n, T, 1.01 * a).valid
    prob = Problem.build(model, oracle, ds, w0=w0)
    alg = Algorithm(sync_average(1.0, n), Q=1, eta=a, synchronous=True)
    res = run(prob, alg, TheoremMode(), T=T, seed=0, eval_every=1)
    g = np.asarray(res.history.grad_norm2)[:T]
    F = np.asarray(res.history.loss)[: T + 1]
    assert np.all(np.diff(F) <= 1e-12)  # monotone descent, the induction of (TC-4)
    assert float(g.mean()) <= b.bound
    assert float(g.mean()) <= 2 * (F[0] - F[T]) / (a * T) * (1 + 1e-9)  # the sharper form


# ------------------------------------------------- constants come from the oracles themselves
def test_oracles_provide_their_personalized_hessian_and_variant():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((4, 4))
    A = M @ M.T / 4
    alpha, lam = 0.1, 2.0
    eye = np.eye(4)
    expect = {
        "AL": (Plain(), A),
        "MAML": (MAML(alpha), A @ (eye - alpha * A) @ (eye - alpha * A)),
        "ME": (MoreauEnvelope(lam), lam * A @ np.linalg.inv(A + lam * eye)),
    }
    for variant, (oracle, H) in expect.items():
        for o in (oracle, AdditiveNoise(oracle, 0.3)):
            assert o.bound_variant() == variant
            assert np.allclose(personalized_hessian(A, o), H, atol=1e-12)
    assert AdditiveNoise(Plain(), 0.3).noise_sigma2() == pytest.approx(0.09)
    with pytest.raises(ValueError, match="biased"):
        MAML(alpha, "first_order").bound_variant()

    class Custom:  # a new oracle: no edit in bounds/ is needed, only the methods
        def bound_variant(self):
            return "AL"

        def personalized_hessian(self, A):
            return 2.0 * np.asarray(A)

        def gradient_bound_factor(self, L):
            return 1.0

        def noise_sigma2(self):
            return 0.0

    assert np.allclose(personalized_hessian(A, Custom()), 2 * A)
    with pytest.raises(ValueError, match="does not provide the bound constants"):
        personalized_hessian(A, object())


def test_first_order_bias_is_MAML_11():
    """(MAML-11): ‖E g_FO − ∇F‖ ≤ αLσ/√b + αLB (no (1 + αL) factor); exact keeps (MAML-10)."""
    a, L, rho, B, s, b = 0.1, 2.0, 1.0, 4.0, 1.0, 4
    fo = MAML(a, "first_order").constants(L, rho, B, sigma=s, batch_size=b).bias
    assert fo == pytest.approx(a * L * s / math.sqrt(b) + a * L * B, rel=1e-14)
    ex = MAML(a).constants(L, rho, B, sigma=s, batch_size=b).bias
    assert ex == pytest.approx(a * L * (1 + a * L) * s / math.sqrt(b), rel=1e-14)
