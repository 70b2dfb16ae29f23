"""(MAML-10w) of theory/personalization.md: the bias of exact MAML under the batch law (SIM-BATCH).

E g is computed exactly, as the mean over every ordered tuple of disjoint batches the law can
produce (each pass a uniform permutation; the three batches of a step consecutive in it), and
checked against the bound; a Monte Carlo mean of the real ``MAML.step`` with a ``BatchSampler``
checks that the enumeration is the law the code follows.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from persafl_np.bounds.maml_batches import batch_statistics, disjoint_bias_bound, pass_factors
from persafl_np.models import LeastSquares, LogisticRegression
from persafl_np.models.robust import RobustRegression
from persafl_np.personalization import MAML
from persafl_np.personalization.sampling import BatchSampler


def _ordered_disjoint(m, b, k):
    """Every ordered k-tuple of pairwise disjoint b-subsets of range(m)."""
    def rec(avail, k):
        if k == 0:
            yield ()
            return
        for S in itertools.combinations(sorted(avail), b):
            for rest in rec(avail - set(S), k - 1):
                yield (S, *rest)
    yield from rec(set(range(m)), k)


def _estimator(model, alpha, y, X, t, D, D1, D2):
    """(MAML-3): (I − αH(y; D″)) ∇f(y − α∇f(y; D); D′)."""
    D, D1, D2 = list(D), list(D1), list(D2)
    z = y - alpha * model.grad(y, X[D], t[D])
    v = model.grad(z, X[D1], t[D1])
    return v - alpha * model.hvp(y, v, X[D2], t[D2])


def _exact_mean(model, alpha, y, X, t, b, layout):
    """E g when the step's batches fall into passes of the given sizes (e.g. (3,), (2, 1))."""
    m = X.shape[0]
    groups = [list(_ordered_disjoint(m, b, k)) for k in layout]
    total, n = 0.0, 0
    for combo in itertools.product(*groups):
        batches = [S for group in combo for S in group]
        total = total + _estimator(model, alpha, y, X, t, *batches)
        n += 1
    return total / n


def _maml_grad(model, alpha, y, X, t):
    return MAML(alpha).grad(model, y, X, t)


def _problem(kind, m, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 2)) * np.array([1.5, 0.7])
    if kind == "ls":
        return LeastSquares(), X, X @ np.array([1.0, -2.0]) + rng.normal(size=m)
    if kind == "logistic":
        return LogisticRegression(), X, (rng.random(m) < 0.5).astype(np.int64)
    return RobustRegression(), X, X @ np.array([0.5, 1.0]) + 2 * rng.normal(size=m)


CASES = [("ls", 9, 3, (3,)), ("ls", 9, 2, (3,)), ("logistic", 8, 2, (3,)),
         ("robust", 7, 2, (3,)), ("ls", 5, 2, (2, 1)), ("ls", 5, 2, (1, 2)),
         ("robust", 5, 2, (2, 1))]


@pytest.mark.parametrize(("kind", "m", "b", "layout"), CASES)
def test_exact_bias_of_disjoint_batches_is_within_maml10w(kind, m, b, layout):
    model, X, t = _problem(kind, m, seed=m + b)
    L = model.smoothness(X, t)
    for alpha_L, y in ((0.3, np.array([0.4, -0.8])), (0.9, np.array([-1.0, 2.0]))):
        alpha = alpha_L / L
        Eg = _exact_mean(model, alpha, y, X, t, b, layout)
        bias = float(np.linalg.norm(Eg - _maml_grad(model, alpha, y, X, t)))
        bound = disjoint_bias_bound(alpha, batch_statistics(model, y, X, t, alpha, b))
        assert bias <= bound * (1 + 1e-9) + 1e-14, (bias, bound)
        if kind == "ls":
            # affine gradients: independent draws are exactly unbiased (MAML-10) ...
            Ez = np.mean([model.grad(y - alpha * model.grad(y, X[list(D)], t[list(D)]), X, t)
                          for D in itertools.combinations(range(m), b)], axis=0)
            indep = Ez - alpha * model.hvp(y, Ez, X, t)
            assert np.linalg.norm(indep - _maml_grad(model, alpha, y, X, t)) < 1e-12
            # ... disjoint batches of one pass are not: the extra terms of (MAML-10w) are needed
            assert bias > 1e-3 * float(np.linalg.norm(_maml_grad(model, alpha, y, X, t)))
            assert bias > 0.01 * bound  # and the bound is not vacuous here


def test_independent_batches_when_a_pass_holds_one_batch():
    # m < 2b: every batch starts a pass, the factors vanish and least squares is unbiased
    assert pass_factors(5, 3) == (0.0, 0.0)
    model, X, t = _problem("ls", 5, seed=1)
    y, alpha = np.array([0.3, 0.2]), 0.5 / model.smoothness(X, t)
    Eg = _exact_mean(model, alpha, y, X, t, 3, (1, 1, 1))
    assert np.linalg.norm(Eg - _maml_grad(model, alpha, y, X, t)) < 1e-12


@pytest.mark.parametrize(("m", "b", "skip", "layout"), [(9, 3, 0, (3,)), (5, 2, 0, (2, 1)),
                                                        (5, 2, 1, (1, 2))])
def test_real_maml_step_with_a_batch_sampler_follows_the_enumerated_law(m, b, skip, layout):
    """Monte Carlo over permutations with the code's own sampler: the mean of MAML.step agrees
    with the exact enumeration (5 standard errors per coordinate)."""
    model, X, t = _problem("ls", m, seed=m + b)
    alpha, y = 0.7 / model.smoothness(X, t), np.array([0.4, -0.8])
    exact = _exact_mean(model, alpha, y, X, t, b, layout)
    oracle = MAML(alpha)
    draws = []
    for s in range(3000):
        sampler = BatchSampler(np.random.default_rng(s))
        if skip:
            sampler.take(m, b, skip)  # the step starts after `skip` batches of the pass
        draws.append(oracle.step(model, y, X, t, sampler, b).g)
    draws = np.asarray(draws)
    se = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - exact) <= 5 * se + 1e-12)
