"""Theorem mode (theory/brief_results.md (C5)): uniform clients, staleness policies, reductions."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, fedbuff, persafl
from persafl_np.personalization.base import sample_batch
from persafl_np.personalization.sampling import BatchSampler
from persafl_np.sim import TheoremMode, run, streams
from persafl_np.sim.engine import _Run


def test_tau0_Q1_K1_is_sgd_with_uniform_client_sampling(ls_problem):
    """τ=0, Q=1, K=1: w^{t+1} = w^t − βη ∇f_{i_t}(w^t; D_t), i_t from the server stream,
    D_t from client i_t's batch stream — the same draws give the same iterates, bit for bit."""
    beta, eta, b, T, seed = 0.7, 0.1, 4, 60, 11
    res = run(ls_problem, Algorithm(persafl(beta), Q=1, eta=eta, batch_size=b),
              TheoremMode(tau=0), T=T, seed=seed)
    server = streams.server_rng(seed)
    crng = {}
    w = ls_problem.w0
    clients = []
    for _ in range(T):
        i = int(server.integers(ls_problem.n_clients))
        clients.append(i)
        r = crng.setdefault(i, BatchSampler(streams.client_rng(seed, i)))
        X, y = ls_problem.clients[i][:2]
        idx = sample_batch(r, X.shape[0], b)
        g = ls_problem.model.grad(w, X[idx], y[idx])
        w = w - beta * (w - (w - eta * g))
    np.testing.assert_array_equal(res.trace.client, clients)
    np.testing.assert_allclose(res.params, w, rtol=0, atol=1e-15)
    assert np.all(res.trace.staleness == 0)


def test_policy_max_gives_min_tau_t(ls_problem):
    res = run(ls_problem, Algorithm(persafl(0.5), Q=2, eta=0.05), TheoremMode(tau=3, policy="max"),
              T=20, seed=0)
    t = res.trace.step
    np.testing.assert_array_equal(res.trace.staleness, np.minimum(3, t))
    np.testing.assert_array_equal(res.trace.pulled_version, t - np.minimum(3, t))


def test_policy_explicit_list_cycles_and_is_capped_by_t(ls_problem):
    res = run(ls_problem, Algorithm(persafl(0.5)), TheoremMode(tau=4, policy=(4, 0, 2)),
              T=9, seed=0)
    want = [min((4, 0, 2)[k % 3], k) for k in range(9)]
    np.testing.assert_array_equal(res.trace.staleness, want)


def test_uniform_policy_covers_0_to_tau_and_respects_bound(ls_problem):
    res = run(ls_problem, Algorithm(persafl(0.5)), TheoremMode(tau=3), T=400, seed=2)
    s, t = res.trace.staleness, res.trace.step
    assert np.all(s <= np.minimum(3, t))
    late = s[t >= 3]
    counts = np.bincount(late, minlength=4)
    assert np.all(counts > 0.15 * len(late))  # each of 0..3 about 25%


def test_buffered_slots_independent_and_staleness_in_server_steps(ls_problem):
    K = 3
    res = run(ls_problem, Algorithm(fedbuff(1.0, K), Q=1, eta=0.05), TheoremMode(tau=2),
              T=30, seed=5)
    tr = res.trace
    assert len(tr) == K * 30
    # K arrivals per server step, staleness = step − pulled_version ≤ min(τ, step)
    np.testing.assert_array_equal(tr.step, np.repeat(np.arange(30), K))
    np.testing.assert_array_equal(tr.staleness, tr.step - tr.pulled_version)
    assert np.all(tr.staleness <= np.minimum(2, tr.step))


def test_model_store_keeps_only_the_window(ls_problem):
    r = _Run(ls_problem, Algorithm(persafl(0.5)), TheoremMode(tau=4), 200, 0, 1000, None)
    r.step_until(200)
    assert set(r.store) == set(range(196, 201))


def test_history_is_exact_full_batch(ls_problem):
    res = run(ls_problem, Algorithm(persafl(0.5), Q=2, eta=0.05), TheoremMode(tau=1),
              T=10, seed=0, eval_every=5)
    assert list(res.history.step) == [0, 5, 10]
    w = res.params
    g = np.mean([ls_problem.model.grad(w, X, y) for X, y, _, _ in ls_problem.clients], axis=0)
    F = np.mean([ls_problem.model.loss(w, X, y) for X, y, _, _ in ls_problem.clients])
    assert res.history.grad_norm2[-1] == pytest.approx(float(g @ g), rel=1e-12)
    assert res.history.loss[-1] == pytest.approx(float(F), rel=1e-12)
    p = res.shares
    gw = sum(p[i] * ls_problem.model.grad(w, X, y)
             for i, (X, y, _, _) in enumerate(ls_problem.clients))
    assert res.history.weighted_grad_norm2[-1] == pytest.approx(float(gw @ gw), rel=1e-12)
    assert p.sum() == pytest.approx(1.0) and res.counts.sum() == 10


def test_bad_arguments_raise_naming_the_argument(ls_problem):
    alg = Algorithm(persafl(0.5))
    with pytest.raises(ValueError, match="T must"):
        run(ls_problem, alg, TheoremMode(), T=0)
    with pytest.raises(ValueError, match="seed must"):
        run(ls_problem, alg, TheoremMode(), T=3, seed=-1)
    with pytest.raises(ValueError, match="tau must"):
        TheoremMode(tau=-1)
    with pytest.raises(ValueError, match="policy"):
        TheoremMode(tau=1, policy="worst")
    with pytest.raises(ValueError, match="policy list"):
        TheoremMode(tau=1, policy=(2,))
