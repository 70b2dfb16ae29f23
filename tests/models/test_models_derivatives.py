"""Every model's gradient, HVP and Hessian against finite differences and each other.

Tolerances (float64): :mod:`persafl_np.checks` accepts a central difference when its error is
below rtol·|value| + (estimated truncation error |D_2h − D_h|) + 64·ε·|f|/h (eq. (CHK-1) of
theory/models.md). With h = ε^{1/3} ≈ 6e-6 the rounding part is ≈ 2e-9·|f| and the
truncation part ≈ h²|f'''|/2, so rtol = 1e-6 leaves three orders of magnitude between the
numerical noise and a genuine bug (a wrong term changes a derivative by O(1) relatively).
The exact Hessian-vs-HVP comparison only allows rounding, 1e-9 relative to |H||v|.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from model_cases import KINDS, make_case, random_params

from persafl_np.checks import check_grad, check_hessian, check_hvp

SEEDS = st.integers(0, 2**31 - 1)
SCALES = st.sampled_from([0.01, 0.3, 1.0, 3.0, 10.0])


def _bind(model, X, y):
    return (
        lambda w: model.loss(w, X, y),
        lambda w: model.grad(w, X, y),
        lambda w, v: model.hvp(w, v, X, y),
        lambda w: model.hessian(w, X, y),
    )


@pytest.mark.parametrize("kind", KINDS)
@given(seed=SEEDS, m=st.integers(1, 12), d=st.integers(1, 5), scale=SCALES)
def test_grad_matches_central_differences(kind, seed, m, d, scale):
    model, X, y, rng = make_case(kind, seed, m, d)
    w = random_params(model, rng, d, scale)
    f, g, _, _ = _bind(model, X, y)
    res = check_grad(f, g, w, rng=rng)
    assert res.ok, res
    assert res.n_checked == min(w.size, 64) or res.n_checked == 16


@pytest.mark.parametrize("kind", KINDS)
@given(seed=SEEDS, m=st.integers(1, 12), d=st.integers(1, 5), scale=SCALES)
def test_hvp_matches_fd_of_grad_and_dense_hessian(kind, seed, m, d, scale):
    model, X, y, rng = make_case(kind, seed, m, d)
    w = random_params(model, rng, d, scale)
    _, g, hv, he = _bind(model, X, y)
    res = check_hvp(g, hv, w, rng=rng, n_directions=4)
    assert res.ok, res
    res_h = check_hessian(he, hv, w, rng=rng)
    assert res_h.ok, res_h
    # Symmetry is part of res_h.ok; assert it separately so a failure names it. The bound is
    # relative to max|H|: saturated softmax blocks diag(p) − ppᵀ cancel to ≈ 0, leaving
    # rounding of O(ε·|terms|) ≫ ε·max|H|, hence 1e-9 rather than a few ε.
    assert res_h.max_asymmetry <= 1e-9


@pytest.mark.parametrize("kind", KINDS)
def test_independent_fd_reference(kind):
    """A plain coordinate-wise FD, independent of persafl_np.checks, on one fixed case."""
    model, X, y, rng = make_case(kind, 7, 6, 3)
    w = random_params(model, rng, 3, 0.7)
    h = 1e-6
    E = np.eye(w.size)
    fd = np.array([(model.loss(w + h * e, X, y) - model.loss(w - h * e, X, y)) / (2 * h)
                   for e in E])
    # FD error here is ≲ h²|f'''| + ε|f|/h ≈ 1e-10 for these O(1) losses.
    np.testing.assert_allclose(model.grad(w, X, y), fd, rtol=1e-6, atol=1e-8)
    H = np.array([(model.grad(w + h * e, X, y) - model.grad(w - h * e, X, y)) / (2 * h)
                  for e in E])
    np.testing.assert_allclose(model.hessian(w, X, y), H, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
def test_hvp_is_linear_in_v(kind):
    model, X, y, rng = make_case(kind, 11, 8, 4)
    w = random_params(model, rng, 4, 1.0)
    v1, v2 = rng.normal(size=w.size), rng.normal(size=w.size)
    lhs = model.hvp(w, 2.0 * v1 - 3.0 * v2, X, y)
    rhs = 2.0 * model.hvp(w, v1, X, y) - 3.0 * model.hvp(w, v2, X, y)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_minibatch_is_row_subset(kind):
    """grad on take_rows(X, idx) equals grad on the explicitly sliced arrays."""
    from persafl_np.backend import take_rows

    model, X, y, rng = make_case(kind, 5, 10, 3)
    w = random_params(model, rng, 3, 1.0)
    idx = np.array([7, 2, 2, 9])
    np.testing.assert_array_equal(
        model.grad(w, take_rows(X, idx), take_rows(y, idx)), model.grad(w, X[idx], y[idx])
    )


@pytest.mark.parametrize("kind", KINDS)
@given(seed=SEEDS, scale=st.sampled_from([0.1, 1.0, 5.0]))
def test_larger_problems_random_directions(kind, seed, scale):
    """m = 60, d = 30: p ≥ 30 (and > 64 for softmax/MLP, so random directions are probed)."""
    model, X, y, rng = make_case(kind, seed, 60, 30)
    w = random_params(model, rng, 30, scale / np.sqrt(30))
    f, g, hv, _ = _bind(model, X, y)
    assert check_grad(f, g, w, rng=rng, n_directions=8).ok
    assert check_hvp(g, hv, w, rng=rng, n_directions=2).ok
