"""persafl_np.checks: correct derivatives pass, planted bugs are caught, results are informative."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from persafl_np.checks import (
    check_cohort,
    check_grad,
    check_grad_bound,
    check_hessian,
    check_hessian_lipschitz,
    check_hvp,
    check_model,
    check_smoothness,
)
from persafl_np.models import LogisticRegression, SoftmaxRegression


def quartic():
    """f(w) = Σ w⁴/4 + ½‖w‖²: ∇f = w³ + w, ∇²f = diag(3w² + 1)."""
    return (
        lambda w: np.sum(w**4) / 4 + 0.5 * np.sum(w * w),
        lambda w: w**3 + w,
        lambda w, v: (3 * w**2 + 1) * v,
        lambda w: np.diag(3 * w**2 + 1),
    )


W0 = np.array([0.3, -1.2, 2.0, 0.7])


def test_correct_derivatives_pass():
    f, g, hv, he = quartic()
    r = check_grad(f, g, W0)
    assert r.ok and r.kind == "grad" and r.n_checked == 4 and r.max_rel_error < 1e-8
    r = check_hvp(g, hv, W0, rng=1)
    assert r.ok and r.n_checked == 8 and r.max_rel_error < 1e-8
    r = check_hessian(he, hv, W0)
    assert r.ok and r.max_asymmetry == 0.0 and r.max_abs_error < 1e-14


@pytest.mark.parametrize("rel", [1e-2, 1e-4])
def test_grad_bugs_caught(rel):
    f, g, _, _ = quartic()
    r = check_grad(f, lambda w: g(w) * (1 + rel), W0)
    assert not r.ok and r.worst_excess > 1
    r = check_grad(f, lambda w: w**3, W0)  # forgotten regularizer term
    assert not r.ok and r.max_abs_error > 0.1


def test_hvp_and_hessian_bugs_caught():
    f, g, hv, he = quartic()
    assert not check_hvp(g, lambda w, v: (2 * w**2 + 1) * v, W0).ok
    assert not check_hvp(g, lambda w, v: hv(w, v) + 1e-5 * v, W0).ok
    # Hessian inconsistent with the HVP.
    assert not check_hessian(lambda w: he(w) * 1.001, hv, W0).ok
    # Asymmetric Hessian whose product with the probes still matches on the diagonal part.
    skew = np.zeros((4, 4))
    skew[0, 1] = 1e-6

    def he_bad(w):
        return he(w) + skew

    r = check_hessian(he_bad, lambda w, v: he_bad(w) @ v, W0)
    assert not r.ok and r.max_asymmetry > 1e-8


def test_directions_argument():
    f, g, hv, _ = quartic()
    r = check_grad(f, g, W0, directions=np.array([[1.0, 1.0, 0.0, 0.0], [0, 0, 0, 2.0]]))
    assert r.ok and r.n_checked == 2
    # Only the direction along which the bug lives is probed → caught; the other → missed.
    bug = lambda w: g(w) + np.array([0.0, 0.0, 0.0, 0.1])  # noqa: E731
    assert not check_grad(f, bug, W0, directions=np.array([0, 0, 0, 1.0])).ok
    assert check_grad(f, bug, W0, directions=np.array([1.0, 0, 0, 0])).ok
    # Above 64 parameters, random directions are used.
    w = np.linspace(-1, 1, 100)
    assert check_grad(f, g, w, n_directions=5).n_checked == 5


def test_smoothness_exact_constant_and_violation():
    A = np.diag([4.0, 1.0, 0.5])
    g = lambda w: A @ w  # noqa: E731
    w = np.ones(3)
    r = check_smoothness(g, 4.0, w, rng=0)
    assert r.ok and r.worst_ratio <= 1 + 1e-12 and r.n_checked == 4 * 4 * 4
    r = check_smoothness(g, 1.0, w, rng=0)
    assert not r.ok and r.worst_ratio > 1.2
    # One dimension: every pair attains the constant exactly (rounding allowance exercised).
    r = check_smoothness(lambda w: 3.0 * w, 3.0, np.array([0.5]), rng=0)
    assert r.ok and r.worst_ratio == pytest.approx(1.0, rel=1e-6)
    r = check_smoothness(g, math.inf, w)
    assert r.ok and r.n_checked == 0


def test_hessian_lipschitz_and_grad_bound():
    # f(w) = w³/6 in 1-D: f'' = w is 1-Lipschitz exactly.
    he = lambda w: np.array([[w[0]]])  # noqa: E731
    w = np.array([0.2])
    r = check_hessian_lipschitz(he, 1.0, w, rng=0)
    assert r.ok and r.worst_ratio == pytest.approx(1.0, rel=1e-6)
    assert not check_hessian_lipschitz(he, 0.5, w, rng=0).ok
    # ‖∇ log cosh‖ = ‖tanh‖ ≤ √p.
    g = np.tanh
    r = check_grad_bound(g, 2.0, np.zeros(4), rng=0)
    assert r.ok and r.worst_ratio <= 1.0 and r.largest_norm > 1.9
    assert not check_grad_bound(g, 1.0, np.zeros(4), rng=0).ok
    r = check_grad_bound(lambda w: w, math.inf, np.zeros(2))
    assert r.ok and r.worst_ratio == 0.0 and r.largest_norm >= 1e6 * 0.999


def test_results_are_frozen():
    f, g, _, _ = quartic()
    r = check_grad(f, g, W0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.ok = False


def test_check_model_and_a_planted_model_bug():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 3, 10)
    model = SoftmaxRegression(3, l2=0.1)
    res = check_model(model, X, y, rng=0)
    assert res.ok and res.hessian is not None

    @dataclasses.dataclass(frozen=True)
    class Buggy(SoftmaxRegression):
        def hvp(self, w, v, X, y):  # drops the −ppᵀ part of the softmax Jacobian
            W = w.reshape(X.shape[1], self.n_classes)
            Z = X @ W
            P = np.exp(Z - Z.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            V = v.reshape(W.shape)
            return (X.T @ (P * (X @ V))).ravel() / X.shape[0] + self.l2 * v

    bad = check_model(Buggy(3, l2=0.1), X, y, rng=0)
    assert not bad.ok and not bad.hvp.ok and not bad.hessian.ok and bad.grad.ok


def test_check_model_skips_dense_for_large_models():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(5, 300)), rng.integers(0, 2, 5)
    res = check_model(LogisticRegression(0.1), X, y, rng=0)
    assert res.ok and res.hessian is None and res.hessian_lipschitz is None


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda f, g: check_grad(f, g, W0, step=0.0), "step"),
        (lambda f, g: check_grad(f, g, W0, rtol=-1.0), "rtol"),
        (lambda f, g: check_grad(f, g, W0, n_directions=0), "n_directions"),
        (lambda f, g: check_grad(f, g, W0, directions=np.ones((2, 3))), "directions"),
        (lambda f, g: check_grad(f, g, W0, rng="seed"), "rng"),
        (lambda f, g: check_grad(f, g, np.ones((2, 2))), "w must be"),
        (lambda f, g: check_grad(f, g, np.array([np.nan, 1.0])), "w contains"),
        (lambda f, g: check_grad(f, g, W0, noise_floor=-1.0), "noise_floor"),
        (lambda f, g: check_smoothness(g, -1.0, W0), "L must be"),
        (lambda f, g: check_smoothness(g, 1.0, W0, n_pairs=0), "n_pairs"),
        (lambda f, g: check_smoothness(g, 1.0, W0, distances=(0.0,)), "distances"),
        (lambda f, g: check_grad_bound(g, float("nan"), W0), "B must be"),
        (lambda f, g: check_grad_bound(g, 1.0, W0, spreads=(-1.0,)), "spreads"),
        (lambda f, g: check_hvp(g, lambda w, v: v, W0, v=np.zeros(4)), "v must be nonzero"),
    ],
)
def test_bad_arguments(call, name):
    f, g, _, _ = quartic()
    with pytest.raises(ValueError, match=name):
        call(f, g)


def test_shape_mismatch_of_user_callables_reported():
    f, g, hv, he = quartic()
    with pytest.raises(ValueError, match="grad"):
        check_grad(f, lambda w: g(w)[:-1], W0)
    with pytest.raises(ValueError, match="hessian"):
        check_hessian(lambda w: he(w)[:2, :2], hv, W0)


# ------------------------------------------------------------------ cohort (batched) methods
def _softmax_data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(9, 3)), rng.integers(0, 3, 9)


def test_check_model_includes_cohort_check():
    X, y = _softmax_data()
    res = check_model(SoftmaxRegression(3, l2=0.1), X, y, rng=0)
    c = res.cohort
    assert res.ok and c is not None and c.ok and c.n_clients == 3
    assert c.bit_identical and c.require_bits and c.max_grouping_diff == 0.0
    assert c.max_rel_error <= 1e-13


@dataclasses.dataclass(frozen=True)
class _ScaledGradMany(SoftmaxRegression):
    """Planted bug: a batched gradient off by a relative 1e-6 (e.g. a wrong constant)."""

    def grad_many(self, W, X, y, mask=None, *, validate=True):
        return super().grad_many(W, X, y, mask, validate=validate) * (1 + 1e-6)


@dataclasses.dataclass(frozen=True)
class _MaskIgnored(SoftmaxRegression):
    """Planted bug: the batched gradient averages over all m rows, padding included."""

    def grad_many(self, W, X, y, mask=None, *, validate=True):
        return super().grad_many(W, X, y, None, validate=validate)


@dataclasses.dataclass(frozen=True)
class _GroupingDependent(SoftmaxRegression):
    """Planted bug: a row depends (by 1e-14 relative, far below 1e-12) on the cohort size."""

    def grad_many(self, W, X, y, mask=None, *, validate=True):
        G = super().grad_many(W, X, y, mask, validate=validate)
        return G * (1 + 1e-14 * (W.shape[0] - 1))


@pytest.mark.parametrize("bug", [_ScaledGradMany, _MaskIgnored])
def test_cohort_check_catches_a_wrong_batched_gradient(bug):
    X, y = _softmax_data()
    res = check_model(bug(3, l2=0.1), X, y, rng=0)
    assert res.grad.ok and res.hvp.ok  # the single-client derivatives are right
    assert not res.cohort.ok and not res.ok
    assert res.cohort.worst_method == "grad" and res.cohort.max_rel_error > 1e-12


def test_cohort_check_catches_grouping_dependence():
    X, y = _softmax_data()
    c = check_model(_GroupingDependent(3, l2=0.1), X, y, rng=0).cohort
    assert c.max_rel_error <= 1e-12  # values pass ...
    assert not c.bit_identical and not c.ok  # ... but rows depend on how clients are grouped
    assert 0.0 < c.max_grouping_diff < 1e-12


def test_cohort_check_under_array_api_strict_needs_rtol_only():
    xs = pytest.importorskip("array_api_strict")
    X, y = _softmax_data()
    c = check_model(SoftmaxRegression(3), xs.asarray(X), xs.asarray(y), rng=0).cohort
    assert c.ok and not c.require_bits
    c = check_model(_GroupingDependent(3), xs.asarray(X), xs.asarray(y), rng=0).cohort
    assert c.ok and not c.bit_identical  # 2e-14 is within rtol where bits are not required


def test_model_without_batched_methods_gets_no_cohort_check():
    X, y = _softmax_data()

    class SingleOnly:
        """Delegates the single-client protocol only."""

        is_classifier = True

        def __init__(self):
            self._m = SoftmaxRegression(3)

        def __getattr__(self, name):
            if name.endswith("_many"):
                raise AttributeError(name)
            return getattr(self._m, name)

    res = check_model(SingleOnly(), X, y, rng=0)
    assert res.ok and res.cohort is None
    with pytest.raises(ValueError, match="no batched methods"):
        check_cohort(SingleOnly(), X, y, np.zeros(9))
