"""Server rules and staleness weights (theory/brief_results.md (B2)–(B6); staleness functions,
reductions)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persafl_np.algorithms import (
    Algorithm,
    Contribution,
    StalenessWeight,
    constant,
    fedasync,
    fedbuff,
    hinge,
    local_only,
    persafl,
    polynomial,
    sync_average,
)
from persafl_np.personalization import local_update
from persafl_np.sim import EventDriven, JobTime, TheoremMode, run, streams

vec = st.lists(st.floats(-10, 10), min_size=3, max_size=3).map(np.array)


@given(w=vec, d=vec, beta=st.floats(0.01, 2.0))
def test_persafl_step(w, d, beta):
    r = persafl(beta)
    s = r.update(r.init(w), Contribution(d, w, 0))
    np.testing.assert_array_equal(s.w, w - beta * d)
    assert s.version == 1


@given(w=vec, u=vec, d=vec, tau=st.integers(0, 50))
def test_fedasync_alpha_1_constant_replaces_w_by_client_model(w, u, d, tau):
    r = fedasync(1.0, constant())
    s = r.update(r.init(w), Contribution(d, u, tau))
    np.testing.assert_array_equal(s.w, u - d)


def test_fedasync_mixing_uses_staleness_weight():
    w, u, d = np.ones(2), np.zeros(2), np.ones(2)
    r = fedasync(0.5, polynomial(1.0))
    s = r.update(r.init(w), Contribution(d, u, 3))
    a = 0.5 * 4.0**-1
    np.testing.assert_allclose(s.w, (1 - a) * w + a * (u - d))


def test_fedbuff_steps_every_K_with_weighted_mean():
    w = np.zeros(2)
    r = fedbuff(2.0, 3, polynomial(0.5))
    s = r.init(w)
    ds = [np.array([1.0, 0]), np.array([0, 1.0]), np.array([1.0, 1.0])]
    taus = [0, 3, 8]
    for k, (d, t) in enumerate(zip(ds, taus, strict=True)):
        s = r.update(s, Contribution(d, w, t))
        assert s.version == (1 if k == 2 else 0)
    want = -2.0 * sum((1 + t) ** -0.5 * d for d, t in zip(ds, taus, strict=True)) / 3
    np.testing.assert_allclose(s.w, want)
    assert s.acc is None and s.count == 0


def test_fedbuff_K_equals_n_with_synchronized_pulls_is_a_fedavg_round(make_problem):
    """K = n, every slot pulled w⁰ (τ = 0), η_g = 1: one server step = FedAvg's
    w¹ = (1/n) Σ_i (w⁰ − Δ_i) with each client's Δ_i from its own stream."""
    n, Q, eta, seed = 5, 3, 0.05, 4
    prob = make_problem(n=n)
    # Synchronized pulls: equal constant job times, everybody pulls w⁰ and arrives at t = 1.
    res = run(prob, Algorithm(fedbuff(1.0, n), Q=Q, eta=eta, batch_size=4),
              EventDriven(job_time=JobTime("constant", mean=1.0)), T=1, seed=seed)
    assert np.all(res.trace.pulled_version == 0) and sorted(res.trace.client) == list(range(n))
    w0 = prob.w0
    ws = [w0 - local_update(prob.oracle, prob.model, w0, X, y, Q, eta,
                            streams.client_rng(seed, i), 4).delta
          for i, (X, y, _, _) in enumerate(prob.clients)]
    np.testing.assert_allclose(res.params, np.mean(ws, axis=0), rtol=1e-13, atol=1e-15)


def test_synchronous_round_samples_without_replacement_and_waits_for_slowest(make_problem):
    n, m = 8, 3
    prob = make_problem(n=n)
    res = run(prob, Algorithm(sync_average(1.0, m), Q=2, eta=0.05, synchronous=True),
              EventDriven(job_time=JobTime("exponential")), T=6, seed=2)
    tr, jobs = res.trace, res.jobs
    for t in range(6):
        rows = tr.step == t
        assert rows.sum() == m and len(set(tr.client[rows])) == m
        assert np.all(tr.pulled_version[rows] == t)
    # the next round starts when the slowest client of the previous one arrived
    starts = np.unique(jobs["start"])
    ends_by_round = [jobs["end"][jobs["start"] == s].max() for s in starts]
    np.testing.assert_array_equal(starts[1:], ends_by_round[:-1])


def test_pfedme_mixing_beta(make_problem):
    """w ← (1−β)w + β·mean w_i equals w − β·mean Δ_i (theory/brief_results.md (B6))."""
    prob = make_problem(n=4)
    w = prob.w0
    r = sync_average(1.7, 4)
    s = r.init(w)
    ds = [np.full(3, float(k)) for k in range(4)]
    for d in ds:
        s = r.update(s, Contribution(d, w, 0))
    np.testing.assert_allclose(s.w, (1 - 1.7) * w + 1.7 * np.mean([w - d for d in ds], axis=0))


def test_local_only_trains_each_client_alone(make_problem):
    prob = make_problem(n=3)
    Q, eta, T, seed = 2, 0.05, 12, 0
    res = run(prob, Algorithm(local_only(), Q=Q, eta=eta), TheoremMode(), T=T, seed=seed)
    for i, (X, y, _, _) in enumerate(prob.clients):
        w = prob.w0
        for _ in range(int((res.trace.client == i).sum())):
            w = w - local_update(prob.oracle, prob.model, w, X, y, Q, eta,
                                 streams.client_rng(seed, i)).delta
        np.testing.assert_allclose(res.client_params[i], w, rtol=1e-13)


def test_weights_properties():
    for s in (constant(), polynomial(0.5), polynomial(2.0), hinge(0.5, 3)):
        assert s(0) == 1.0
    taus = np.arange(30)
    p = [polynomial(0.7)(t) for t in taus]
    assert np.all(np.diff(p) < 0)
    assert all(hinge(0.5, 4)(t) == 1.0 for t in range(5))
    assert hinge(0.5, 4)(6) == pytest.approx(1 / (0.5 * 2 + 1))
    assert polynomial(0.5, normalize_at=3.7)(3.7) == pytest.approx(1.0)
    assert polynomial(0.5, normalize_at=3.7)(0) > 1.0  # FLSim weights exceed 1 below the mean


@pytest.mark.parametrize("make,msg", [
    (lambda: persafl(0.0), "beta"),
    (lambda: fedasync(1.5), "alpha"),
    (lambda: fedbuff(1.0, 0), "K"),
    (lambda: StalenessWeight("exp"), "kind"),
    (lambda: polynomial(-1.0), "weight a"),
    (lambda: Algorithm(persafl(1.0), Q=0), "Q"),
    (lambda: Algorithm(persafl(1.0), eta=float("nan")), "eta"),
    (lambda: Algorithm(persafl(1.0), batch_size=0), "batch_size"),
])
def test_bad_rule_arguments(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_negative_staleness_rejected():
    with pytest.raises(ValueError, match="tau"):
        constant()(-1)
