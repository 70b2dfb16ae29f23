"""Problem constants (persafl_np.bounds.constants) against the oracles they describe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persafl_np.bounds.constants import (
    estimate_sigma2,
    personalized_hessian,
    probe_gamma2,
    robust_constants,
    shifted_ls_constants,
)
from persafl_np.data import robust_family, shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.models.robust import RobustRegression
from persafl_np.personalization import MAML, AdditiveNoise, MoreauEnvelope, Plain


def _oracles(L):
    return [Plain(), MAML(0.5 / L), MAML(1.0 / L), MoreauEnvelope(0.7 * L), MoreauEnvelope(3 * L)]


def _F(oracle, model, ds, w):
    return float(np.mean([oracle.value(model, w, c.X_train, c.y_train) for c in ds.clients]))


def _grads(oracle, model, ds, w):
    return np.stack([oracle.grad(model, w, c.X_train, c.y_train) for c in ds.clients])


@given(seed=st.integers(0, 2**16), n=st.integers(2, 6), d=st.integers(1, 4),
       m=st.integers(1, 8), spread=st.floats(0.0, 3.0))
def test_shifted_ls_constants_are_exact(seed, n, d, m, spread):
    # m < d makes A singular: F* must still be exact (least-squares minimizer).
    p = shifted_least_squares(n, d, m, seed, spread=spread)
    model, rng = LeastSquares(), np.random.default_rng(seed)
    L_A = p.L
    w0 = rng.normal(size=d)
    for oracle in _oracles(max(L_A, 1e-3)):
        c = shifted_ls_constants(p, oracle, w0)
        H = personalized_hessian(p.A, oracle)
        # F from the oracle equals the closed form ½(w − c_i)ᵀH_F(w − c_i) (eq. (AS-1)).
        assert c.F0 == pytest.approx(_F(oracle, model, p.dataset, w0), rel=1e-8, abs=1e-10)
        # F* = (1/(2n))Σ(c_i − c̄)ᵀH(c_i − c̄), the minimum at c̄ (written out here rather than
        # via ShiftedLeastSquares.f_star_for, which rejects H ≈ 0 from rounding, e.g. α = 1/L
        # on a rank-1 A).
        D = p.centers - p.centers.mean(0)
        f_star = 0.5 * np.mean(np.einsum("ij,jk,ik->i", D, H, D))
        assert c.F_star == pytest.approx(f_star, rel=1e-9, abs=1e-12)
        assert c.delta_f == pytest.approx(c.F0 - c.F_star, rel=1e-9, abs=1e-12)
        # γ² is attained at every w: the probe returns it exactly.
        probe = probe_gamma2(oracle, model, p.dataset, rng.normal(size=(3, d)) * 5)
        assert probe.values == pytest.approx([c.gamma2] * 3, rel=1e-7, abs=1e-10)
        # L_F: smoothness holds on random pairs and is attained along the top eigenvector.
        w, u = rng.normal(size=(2, d))
        gw, gu = _grads(oracle, model, p.dataset, w), _grads(oracle, model, p.dataset, u)
        assert np.all(np.linalg.norm(gw - gu, axis=1) <= c.L * np.linalg.norm(w - u) + 1e-9)
        evals, evecs = np.linalg.eigh(H)
        top = evecs[:, np.argmax(np.abs(evals))]
        g_top = _grads(oracle, model, p.dataset, w + top)
        assert np.linalg.norm(g_top[0] - gw[0]) == pytest.approx(c.L, rel=1e-6, abs=1e-9)
        # F* is a minimum: no random point goes below it.
        for v in rng.normal(size=(5, d)) * 3:
            assert _F(oracle, model, p.dataset, v) >= c.F_star - 1e-9


def test_maml_L_matches_oracle_quadratic_formula():
    p = shifted_least_squares(4, 5, 20, 3, condition_number=10.0)
    eigs = np.linalg.eigvalsh(p.A)
    for alpha in (0.0, 0.3, 1.0):
        c = shifted_ls_constants(p, MAML(alpha), np.zeros(5))
        assert c.L == pytest.approx(MAML(alpha).constants(p.L, 0.0, np.inf,
                                                          quadratic_eigs=eigs).L_F, rel=1e-12)


def test_sigma2_of_additive_noise_is_exact_and_estimated():
    p = shifted_least_squares(3, 4, 10, 1)
    oracle = AdditiveNoise(Plain(), 0.7)
    c = shifted_ls_constants(p, oracle, np.zeros(4))
    assert c.sigma2 == pytest.approx(0.49)
    est = estimate_sigma2(oracle, LeastSquares(), p.dataset, np.ones(4), batch_size=None,
                          n_draws=400, seed=5)
    assert abs(est.sigma2 - 0.49) < 4 * est.stderr
    assert est.stderr < 0.05


def test_sigma2_estimator_matches_minibatch_variance_formula():
    # Least squares, batch of b out of m without replacement:
    # E‖g_b − ∇f‖² = (m − b)/(b(m − 1)) · (1/m)Σ_j‖g_j − ∇f‖² (eq. (AS-5)).
    p = shifted_least_squares(2, 3, 12, 7)
    model, w, b = LeastSquares(), np.array([1.0, -2.0, 0.5]), 3
    exact = []
    for cl in p.dataset.clients:
        per = cl.X_train * (cl.X_train @ w - cl.y_train)[:, None]
        m = per.shape[0]
        exact.append((m - b) / (b * (m - 1)) * np.mean(np.sum((per - per.mean(0)) ** 2, 1)))
    est = estimate_sigma2(Plain(), model, p.dataset, w, batch_size=b, n_draws=2000, seed=0)
    assert abs(est.sigma2 - np.mean(exact)) < 4 * est.stderr
    assert shifted_ls_constants(p, Plain(), w, batch_size=b).sigma2 != 0.0  # nan: unknown


def test_robust_constants_are_bounds():
    ds = robust_family(4, 3, 30, 11, shift=2.0)
    model, rng = RobustRegression(), np.random.default_rng(0)
    Lm = max(model.smoothness(c.X_train, c.y_train) for c in ds.clients)
    for oracle in (Plain(), MAML(0.5 / Lm), MoreauEnvelope(2.5 * Lm)):
        c = robust_constants(model, ds, oracle, np.zeros(3))
        assert not c.exact and c.F_star == 0.0 and c.delta_f == c.F0 >= 0
        pts = rng.normal(size=(6, 3)) * 2
        probe = probe_gamma2(oracle, model, ds, pts)
        assert probe.lower_estimate <= c.gamma2
        assert probe.lower_estimate > 0
        for w, u in rng.normal(size=(4, 2, 3)):
            gw, gu = _grads(oracle, model, ds, w), _grads(oracle, model, ds, u)
            assert np.all(np.linalg.norm(gw - gu, axis=1) <= c.L * np.linalg.norm(w - u) + 1e-8)
            assert _F(oracle, model, ds, w) >= 0.0


def test_bad_inputs():
    p = shifted_least_squares(3, 2, 5, 0)
    with pytest.raises(ValueError, match="w0"):
        shifted_ls_constants(p, Plain(), np.zeros(3))
    with pytest.raises(ValueError, match="oracle"):
        shifted_ls_constants(p, MAML(0.1, hessian="first_order"), np.zeros(2))
    with pytest.raises(ValueError, match="points"):
        probe_gamma2(Plain(), LeastSquares(), p.dataset, np.zeros(2))
    with pytest.raises(ValueError, match="n_draws"):
        estimate_sigma2(Plain(), LeastSquares(), p.dataset, np.zeros(2), batch_size=1, n_draws=1)
    with pytest.raises(ValueError, match="grad_bound"):
        robust_constants(RobustRegression(l2=0.1), robust_family(2, 2, 5, 0), Plain(), np.zeros(2))


class _Delegate:
    """A user model that is not a LeastSquares: it forwards to ``inner`` and may declare a
    different Hessian-Lipschitz constant (the family is chosen from the declared constants)."""

    def __init__(self, inner, rho=None):
        self.inner, self.rho = inner, rho

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def hessian_lipschitz(self, X, y):
        return self.inner.hessian_lipschitz(X, y) if self.rho is None else self.rho


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_problem_constants_dispatch_on_declared_constants_not_class(l2):
    from persafl_np.bounds.check import problem_constants

    p = shifted_least_squares(4, 3, 6, 2, spread=1.5)
    w0 = np.array([0.5, -1.0, 2.0])
    ls = LeastSquares(l2=l2)
    for oracle in (Plain(), MAML(0.3 / p.L), MoreauEnvelope(2.0 * p.L)):
        c = problem_constants(ls, oracle, p.dataset, w0)
        # rho = 0 on every client: the quadratic family, exact also with l2 > 0 (previously
        # refused: LS with l2 > 0 fell through to the bounded-gradient family, B = inf).
        assert c.exact and "shared Hessian" in c.note
        assert c.F0 == pytest.approx(_F(oracle, ls, p.dataset, w0), rel=1e-9, abs=1e-12)
        for v in np.random.default_rng(1).normal(size=(5, 3)) * 3:
            assert _F(oracle, ls, p.dataset, v) >= c.F_star - 1e-9
        probe = probe_gamma2(oracle, ls, p.dataset, np.random.default_rng(2).normal(size=(3, 3)))
        assert probe.values == pytest.approx([c.gamma2] * 3, rel=1e-7, abs=1e-10)
        # a model of another class with the same declared constants gets the same numbers
        same = problem_constants(_Delegate(ls), oracle, p.dataset, w0)
        assert (same.L, same.gamma2, same.delta_f) == (c.L, c.gamma2, c.delta_f)
    # declaring rho > 0 leaves the quadratic family: the bounded-gradient family refuses B = inf
    with pytest.raises(ValueError, match="grad_bound"):
        problem_constants(_Delegate(ls, rho=1.0), Plain(), p.dataset, w0)


def test_bounded_gradient_note_names_the_model_not_robust_family():
    from persafl_np.bounds.check import problem_constants
    from persafl_np.models import SoftmaxRegression

    rng = np.random.default_rng(0)
    from persafl_np.data import ClientData, FederatedDataset

    clients = tuple(ClientData(rng.normal(size=(8, 3)), rng.integers(0, 3, 8),
                               np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) for _ in range(3))
    ds = FederatedDataset(clients=clients, n_features=3, n_classes=3, name="t")
    c = problem_constants(SoftmaxRegression(n_classes=3), Plain(), ds, np.zeros(9))
    assert not c.exact and "SoftmaxRegression" in c.note and "robust" not in c.note


def test_client_specific_designs_are_refused_naming_gamma2():
    from persafl_np.bounds.check import problem_constants
    from persafl_np.data import ClientData, FederatedDataset

    rng = np.random.default_rng(3)
    clients = tuple(ClientData(rng.normal(size=(6, 2)), rng.normal(size=6),
                               np.zeros((0, 2)), np.zeros(0)) for _ in range(2))
    ds = FederatedDataset(clients=clients, n_features=2, n_classes=None, name="t")
    with pytest.raises(ValueError, match="different Hessians.*gamma2"):
        problem_constants(LeastSquares(), Plain(), ds, np.zeros(2))
