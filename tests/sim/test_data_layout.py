"""The cohort engine holds the training data once (issue 9, memory at 10^5 clients).

Clients sliced out of one array are used in place (a view, no copy); anything else is
concatenated once; the padded full batches are the same bits either way.
"""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.data.federated import packed_rows
from persafl_np.models import SoftmaxRegression
from persafl_np.personalization import Plain
from persafl_np.personalization.cohort import CohortData
from persafl_np.sim import EventDriven, JobTime, Problem, run
from persafl_np.sim.engine import _Run


def _sliced(sizes, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(sum(sizes), d))
    y = rng.integers(0, 3, sum(sizes))
    off = np.concatenate([[0], np.cumsum(sizes)])
    return X, y, [(X[a:b], y[a:b]) for a, b in zip(off[:-1], off[1:], strict=True)]


def test_packed_rows_is_a_view_only_for_back_to_back_slices():
    X, _, cl = _sliced([2, 5, 1, 4])
    v = packed_rows([c[0] for c in cl])
    assert np.shares_memory(v, X) and not v.flags.writeable
    np.testing.assert_array_equal(v, X)
    # out of order, a gap, another array, another dtype: one concatenated copy
    for parts in ([cl[1][0], cl[0][0]], [cl[0][0], cl[2][0]], [cl[0][0], X[:3].copy()],
                  [cl[0][0], cl[1][0].astype(np.float32)]):
        c = packed_rows(parts)
        assert not np.shares_memory(c, X) or c.shape[0] == 0
        np.testing.assert_array_equal(c, np.concatenate(parts))
    # empty clients (e.g. no test rows) are skipped in the check
    v = packed_rows([cl[0][0], X[2:2], cl[1][0]])
    assert np.shares_memory(v, X) and v.shape == (7, 3)


@pytest.mark.parametrize("sizes", [[4, 4, 4], [3, 6, 1, 2]])
def test_cohort_data_shares_the_rows_and_pads_with_zeros(sizes):
    X, y, cl = _sliced(sizes)
    data = CohortData([c[0] for c in cl], [c[1] for c in cl])
    assert np.shares_memory(data.Xz, X) and np.shares_memory(data.yz, y)
    copied = CohortData([c[0].copy() for c in cl], [c[1].copy() for c in cl])
    clients = np.array([2, 0, 1]) if len(sizes) > 3 else np.array([1, 2])
    for a, b in zip(data.full(clients), copied.full(clients), strict=True):
        if a is None:
            assert b is None
            continue
        np.testing.assert_array_equal(a, b)
    Xf, yf, mf = data.full(clients)
    m_max = max(sizes)
    for r, i in enumerate(clients.tolist()):
        m = sizes[i]
        np.testing.assert_array_equal(Xf[r, :m], cl[i][0])
        assert np.all(Xf[r, m:] == 0) and not np.any(np.signbit(Xf[r, m:]))
        assert np.all(yf[r, m:] == 0)
        if mf is not None:
            np.testing.assert_array_equal(mf[r], (np.arange(m_max) < m).astype(float))
    assert np.shares_memory(data.Xz, X)  # padding wrote into the gathered copies only


def test_run_and_float32_cast_hold_the_data_once():
    X, y, cl = _sliced([5, 7, 6, 5], d=4)
    prob = Problem.build(SoftmaxRegression(3), Plain(), cl, seed=0)
    alg = Algorithm(persafl(0.5), Q=2, eta=0.1, batch_size=3)
    r = _Run(prob, alg, EventDriven(job_time=JobTime("exponential")), 5, 0, 1, None)
    assert np.shares_memory(r.data.Xz, X) and r.evaluator.train is r.data
    p32 = Problem.build(SoftmaxRegression(3), Plain(), cl, seed=0, dtype="float32")
    r32 = _Run(p32, alg, EventDriven(job_time=JobTime("exponential")), 5, 0, 1, None)
    assert r32.data.Xz.dtype == np.float32
    assert all(np.shares_memory(r32.data.Xz, c[0]) for c in p32.clients)
    assert r32.evaluator.train.Xz.dtype == np.float64
    # the views give the same run as separately cast per-client copies
    sep = [(a.astype(np.float32), b) for a, b in cl]
    p_sep = Problem.build(SoftmaxRegression(3), Plain(), sep, seed=0, dtype="float32")
    spec = EventDriven(job_time=JobTime("exponential"))
    a = run(p32, alg, spec, T=20, seed=1, eval_every=5)
    b = run(p_sep, alg, spec, T=20, seed=1, eval_every=5)
    assert a.digest() == b.digest()


def test_data_digest_is_layout_independent_and_sees_every_byte():
    from persafl_np.fingerprint import data_digest

    X, y, cl = _sliced([3, 5, 2], d=4)
    packed = Problem.build(SoftmaxRegression(3), Plain(), cl, seed=0)
    sep = Problem.build(SoftmaxRegression(3), Plain(), [(a.copy(), b.copy()) for a, b in cl],
                        seed=0)
    assert data_digest(packed) == data_digest(sep)
    # the same bytes split between other clients are other data
    moved = [(X[0:4], y[0:4]), (X[4:8], y[4:8]), (X[8:10], y[8:10])]
    assert data_digest(Problem.build(SoftmaxRegression(3), Plain(), moved, seed=0)) != \
        data_digest(packed)
    X2 = X.copy()
    X2[9, 3] += 1e-12
    flipped = [(X2[0:3], y[0:3]), (X2[3:8], y[3:8]), (X2[8:10], y[8:10])]
    assert data_digest(Problem.build(SoftmaxRegression(3), Plain(), flipped, seed=0)) != \
        data_digest(packed)
    f32 = Problem.build(SoftmaxRegression(3), Plain(), cl, seed=0, dtype="float32")
    assert data_digest(f32) != data_digest(packed)
