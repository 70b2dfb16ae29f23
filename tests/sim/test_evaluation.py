"""Exact evaluation (SIM-EVAL, theory/simulator.md §6) with per-client padded widths.

The Evaluator pads each client to eval_width(m_i) (not to the largest client) and stacks the
clients of one width; these tests check the values against a one-client-at-a-time evaluation
through the oracles' single-client methods (no padding, no stacking), and that the grouping
(EVAL_CHUNK, PADDED_BYTES) does not change a single bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from persafl_np.models import LeastSquares, SoftmaxRegression
from persafl_np.personalization import MAML, MoreauEnvelope, Plain
from persafl_np.sim import Problem
from persafl_np.sim import evaluation as ev_mod
from persafl_np.sim.evaluation import Evaluator, eval_width

# very unequal sizes (1 … 300 rows; powers of two and their neighbours); test splits of
# unequal sizes, two clients without test rows
SIZES = [1, 300, 3, 64, 65, 2, 17, 128, 129, 5, 250, 33]
TEST = [4, 0, 7, 1, 30, 2, 0, 9, 16, 3, 11, 5]
ORACLES = {"plain": Plain(), "maml": MAML(0.05), "moreau": MoreauEnvelope(5.0)}


def _problem(oracle, sizes=SIZES, test=TEST, seed=0):
    rng = np.random.default_rng(seed)
    clients = []
    for m, mt in zip(sizes, test, strict=True):
        X = rng.normal(size=(m, 4))
        Xt = rng.normal(size=(mt, 4))
        clients.append((X, rng.integers(0, 3, m), Xt, rng.integers(0, 3, mt)))
    prob = Problem.build(SoftmaxRegression(3), oracle, clients, seed=seed)
    w = np.random.default_rng(seed + 1).normal(size=prob.w0.shape) * 0.3
    shares = rng.dirichlet(np.ones(len(sizes)))
    return prob, w, shares


def _one_by_one(prob, w, shares):
    """(SIM-EVAL) client by client with the oracle's single-client methods, unpadded."""
    model, oracle = prob.model, prob.oracle
    n = prob.n_clients
    F, g_mean, g_w = 0.0, np.zeros_like(w), np.zeros_like(w)
    correct = total = 0
    accs = []
    for i, (X, y, Xt, yt) in enumerate(prob.clients):
        F += float(oracle.value(model, w, X, y))
        g = oracle.grad(model, w, X, y)
        g_mean = g_mean + g
        g_w = g_w + float(shares[i]) * g
        if Xt.shape[0]:
            correct += int(np.sum(model.predict(w, Xt) == yt))
            total += Xt.shape[0]
            theta = oracle.personalize(model, w, X, y)
            accs.append(float(np.mean(model.predict(theta, Xt) == yt)))
    g_mean = g_mean / n
    return (float(g_mean @ g_mean), F / n, float(g_w @ g_w), correct / total,
            float(np.mean(accs)), float(np.min(accs)))


def test_eval_width_is_a_power_of_two_ladder_capped_at_the_largest():
    m = np.array([1, 2, 3, 4, 5, 63, 64, 65, 1000, 1024, 1025, 3000])
    w = eval_width(m)
    assert w.tolist() == [1, 2, 4, 4, 8, 64, 64, 128, 1024, 1024, 2048, 3000]
    assert np.all(w >= m) and np.all(w < 2 * m)
    assert eval_width(np.array([7, 7, 7])).tolist() == [7, 7, 7]  # equal clients: no padding


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_unequal_clients_equal_the_one_client_at_a_time_evaluation(name):
    prob, w, shares = _problem(ORACLES[name])
    got = Evaluator(prob)(w, shares)
    want = _one_by_one(prob, w, shares)
    # the stacked path pads (zeros · mask) and sums rows in another order than the unpadded
    # one: equal to rounding (measured ~2e-16), not to the bit
    for g, e in zip(got[:3], want[:3], strict=True):
        assert g == pytest.approx(e, rel=1e-12, abs=0)
    assert got[3:] == want[3:]  # accuracies: counts of identical predictions


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_grouping_does_not_change_a_bit(monkeypatch, name):
    prob, w, shares = _problem(ORACLES[name])
    ref = Evaluator(prob)(w, shares)
    for chunk, padded in [(1, ev_mod.PADDED_BYTES), (3, ev_mod.PADDED_BYTES), (5, 1)]:
        monkeypatch.setattr(ev_mod, "EVAL_CHUNK", chunk)
        monkeypatch.setattr(ev_mod, "PADDED_BYTES", padded)
        got = Evaluator(prob)(w, shares)
        assert got == ref, (chunk, padded)
    monkeypatch.undo()
    # also the client-local models path (local-only baseline)
    own = np.random.default_rng(3).normal(size=(prob.n_clients, w.size))
    ref_own = Evaluator(prob)(w, shares, own)
    monkeypatch.setattr(ev_mod, "EVAL_CHUNK", 2)
    assert Evaluator(prob)(w, shares, own) == ref_own


def test_padded_rows_follow_the_widths_not_the_largest_client():
    # FedProx-like: one huge client, many small ones
    sizes = [2000] + [20] * 40
    prob, w, shares = _problem(Plain(), sizes, [5] * len(sizes))
    ev = Evaluator(prob)
    real = sum(sizes) + 5 * len(sizes)
    assert ev.padded_rows == 2000 + 32 * 40 + 5 * len(sizes)  # equal test splits: unpadded
    assert ev.padded_rows < 2 * real < len(sizes) * 2000
    vals = ev(w, shares)
    assert vals == pytest.approx(_one_by_one(prob, w, shares), rel=1e-12)


def test_regression_without_test_rows():
    rng = np.random.default_rng(5)
    clients = [(rng.normal(size=(m, 3)), rng.normal(size=m)) for m in (1, 9, 40, 3)]
    prob = Problem.build(LeastSquares(), Plain(), clients, seed=0)
    w = rng.normal(size=prob.w0.shape)
    shares = np.full(4, 0.25)
    got = Evaluator(prob)(w, shares)
    n = len(clients)
    F = sum(float(prob.model.loss(w, X, y)) for X, y, *_ in prob.clients) / n
    g = sum(prob.model.grad(w, X, y) for X, y, *_ in prob.clients) / n
    assert got[1] == pytest.approx(F, rel=1e-12)
    assert got[0] == pytest.approx(float(g @ g), rel=1e-12)
    assert all(math.isnan(v) for v in got[3:])


@pytest.mark.parametrize("name", ["maml", "moreau"])
def test_strict_namespace_gives_the_numpy_values(name):
    """Unequal widths, clients without test rows (the sub-gather of personalize) under
    array_api_strict: the NumPy values to 1e-12."""
    xp = pytest.importorskip("array_api_strict")
    prob, w, shares = _problem(ORACLES[name])
    ps = Problem.build(SoftmaxRegression(3), ORACLES[name],
                       [tuple(xp.asarray(a) for a in c) for c in prob.clients], seed=0)
    got = Evaluator(ps)(xp.asarray(w), shares)
    want = Evaluator(prob)(w, shares)
    assert got == pytest.approx(want, rel=1e-12, abs=0)
