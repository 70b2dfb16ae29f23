"""Per-sample smoothness (theory/models.md eq. (M-4)) and the mini-batch bound of
theory/personalization.md eq. (ME-13): the mean of a batch's L_j bounds its objective's L."""

from __future__ import annotations

import numpy as np
import pytest
from model_cases import FINITE_KINDS, KINDS, make_case, random_params

from persafl_np.checks import check_smoothness
from persafl_np.models import LeastSquares
from persafl_np.models.base import row_sq_norms

#: (ME-13) is an inequality of real numbers; the float64 mean may round below it by ~1e-16.
RTOL = 1e-12


@pytest.mark.parametrize("kind", KINDS)
def test_sample_smoothness_is_the_one_row_constant(kind):
    """L_j of (M-4) equals the model's own proposition on the one-row data set, and the cohort
    form (C, m, d) gives each client's rows."""
    model, X, y, _ = make_case(kind, 3, 12, 4)
    Lj = model.sample_smoothness(X, y)
    assert Lj.shape == (12,) and Lj.dtype == np.float64
    one = np.array([model.smoothness(X[j:j + 1], y[j:j + 1]) for j in range(12)])
    if kind.startswith("mlp"):
        assert np.all(np.isinf(Lj)) and np.all(np.isinf(one))
        return
    np.testing.assert_allclose(Lj, one, rtol=RTOL)
    X3, y3 = np.stack([X, X[::-1]]), np.stack([y, y[::-1]])
    np.testing.assert_array_equal(model.sample_smoothness(X3, y3), np.stack([Lj, Lj[::-1]]))
    # float32 data: the constant is still computed in float64
    assert model.sample_smoothness(X.astype(np.float32), y).dtype == np.float64


@pytest.mark.parametrize("kind", FINITE_KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_batch_bound_holds_on_random_batches(kind, seed):
    """(ME-13) on random batches D of every size: mean_{j∈D} L_j ≥ the proposition's L(X_D),
    ≥ the exact λ_max(X_DᵀX_D)/|D| + l2 for least squares, and sampled gradient pairs of
    f(·; D) respect it."""
    model, X, y, rng = make_case(kind, 100 + seed, 24, 3)
    # heavy-tailed row norms, so that batches differ from the full data
    X = X * rng.pareto(1.5, size=(24, 1))
    Lj = model.sample_smoothness(X, y)
    w = random_params(model, rng, 3, 1.0)
    for b in (1, 2, 5, 12, 24):
        for _ in range(3):
            D = rng.choice(24, b, replace=False)
            bound = float(np.mean(Lj[D]))
            assert model.smoothness(X[D], y[D]) <= bound * (1 + RTOL)
            assert bound <= np.mean(np.sort(Lj)[-b:]) * (1 + RTOL)  # the per-client bound
            if isinstance(model, LeastSquares):
                exact = np.linalg.eigvalsh(X[D].T @ X[D] / b)[-1] + model.l2
                assert exact <= bound * (1 + RTOL)
            chk = check_smoothness(lambda v, D=D: model.grad(v, X[D], y[D]), bound, w, rng=rng,
                                   n_pairs=2)
            assert chk.ok, chk


def test_full_data_L_does_not_bound_a_batch():
    """Why (ME-13) is needed: one large row makes a batch containing it m/b times less smooth
    than the full data suggests (theory/personalization.md, before (ME-13))."""
    rng = np.random.default_rng(0)
    m, b = 40, 4
    X = rng.normal(size=(m, 3)) * 0.1
    X[0] = [10.0, 0.0, 0.0]
    y = rng.normal(size=m)
    model = LeastSquares()
    L_full = model.smoothness(X, y)
    D = np.array([0, 1, 2, 3])
    L_D = np.linalg.eigvalsh(X[D].T @ X[D] / b)[-1]
    assert L_D > 5 * L_full
    assert L_D <= np.mean(model.sample_smoothness(X[D], y[D])) * (1 + RTOL)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 1, 5), (7, 20, 61), (2, 33, 100), (5, 4, 8)])
def test_row_sq_norms_do_not_depend_on_the_other_rows(shape):
    """Bit-identical per row alone and inside any array (the Moreau inner step size of a cohort
    row must not depend on its cohort, theory/models.md §CO)."""
    rng = np.random.default_rng(sum(shape))
    X = rng.normal(size=shape) * rng.pareto(1.0, size=shape[:-1] + (1,))
    full = row_sq_norms(X)
    for c in range(shape[0]):
        np.testing.assert_array_equal(row_sq_norms(X[c:c + 1])[0], full[c])
        for j in range(shape[1]):
            np.testing.assert_array_equal(row_sq_norms(X[c, j:j + 1])[0], full[c, j])
