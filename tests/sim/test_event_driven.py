"""Event-driven arrivals: clock order, job-time laws, shares, staleness control, faults."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from persafl_np.algorithms import Algorithm, fedbuff, persafl
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, run
from persafl_np.sim.events import ARRIVAL, FAILURE, EventQueue
from persafl_np.sim.streams import client_keys
from persafl_np.sim.timing import load_job_trace

ALG = Algorithm(persafl(0.5), Q=1, eta=0.05)


def test_event_queue_total_order():
    q = EventQueue()
    q.push(1.0, FAILURE, 0)
    q.push(1.0, ARRIVAL, 5)
    q.push(1.0, ARRIVAL, 2)
    q.push(0.5, FAILURE, 9)
    q.push(1.0, ARRIVAL, 2)
    order = [q.pop()[:3] for _ in range(5)]
    assert order == [(0.5, FAILURE, 9), (1.0, ARRIVAL, 2), (1.0, ARRIVAL, 2),
                     (1.0, ARRIVAL, 5), (1.0, FAILURE, 0)]


def test_hand_computed_three_clients_six_events():
    """3 clients, f_i(w) = (w − c_i)²/2 with c = (0, 4, 8), w⁰ = 0, Q = 1, η = 0.5, β = 1, so
    Δ = 0.5(u − c_i) and w ← w − Δ. Job time 6/v_i with speeds v = (1, 2, 3): durations 6, 3, 2.
    Every client starts at t = 0 on w⁰; a returning client restarts on the new model.

      event  time  client  pulled  τ  u   Δ                 w after
      1      2     2       0       0  0   0.5(0−8) = −4     w1 = 4
      2      3     1       0       1  0   0.5(0−4) = −2     w2 = 6
      3      4     2       1       1  4   0.5(4−8) = −2     w3 = 8
      4      6     0       0       3  0   0.5(0−0) =  0     w4 = 8
      5      6     1       2       2  6   0.5(6−4) =  1     w5 = 7
      6      6     2       3       2  8   0.5(8−8) =  0     w6 = 7

    At t = 6 three arrivals tie; the total order (time, kind, client id, seq) takes them by id.
    """
    clients = [(np.ones((1, 1)), np.array([c])) for c in (0.0, 4.0, 8.0)]
    prob = Problem.build(LeastSquares(), Plain(), clients, w0=np.zeros(1))
    res = run(prob, Algorithm(persafl(1.0), Q=1, eta=0.5),
              EventDriven(job_time=JobTime("constant", mean=6.0), speeds=(1.0, 2.0, 3.0)),
              T=6, seed=0)
    tr = res.trace
    np.testing.assert_array_equal(tr.time, [2, 3, 4, 6, 6, 6])
    np.testing.assert_array_equal(tr.client, [2, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(tr.pulled_version, [0, 0, 1, 0, 2, 3])
    np.testing.assert_array_equal(tr.staleness, [0, 1, 1, 3, 2, 2])
    np.testing.assert_array_equal(tr.update_norm, [4, 2, 2, 0, 1, 0])
    assert res.params.tolist() == [7.0]
    assert res.history.loss[-1] == pytest.approx(np.mean([(7 - c) ** 2 / 2 for c in (0, 4, 8)]))


def test_equal_constant_times_give_round_robin_with_staleness_n_minus_1(make_problem):
    n = 6
    res = run(make_problem(n=n), ALG, EventDriven(job_time=JobTime("constant", mean=1.0)),
              T=5 * n, seed=0)
    tr = res.trace
    np.testing.assert_array_equal(tr.client, np.tile(np.arange(n), 5))
    np.testing.assert_array_equal(tr.staleness[:n], np.arange(n))
    assert np.all(tr.staleness[n:] == n - 1)


def test_iid_exponential_times_make_the_arriving_client_uniform(make_problem):
    n, T = 8, 4000
    res = run(make_problem(n=n, m=4, d=1), ALG, EventDriven(job_time=JobTime("exponential")),
              T=T, seed=3, eval_every=T)
    counts = np.bincount(res.trace.client, minlength=n)
    assert stats.chisquare(counts).pvalue > 1e-3
    # Memorylessness also makes *consecutive* arrivals independent: the pair table is uniform.
    pairs = np.bincount(res.trace.client[:-1] * n + res.trace.client[1:], minlength=n * n)
    assert stats.chisquare(pairs).pvalue > 1e-3


def test_unequal_rates_make_shares_proportional_to_rates(make_problem):
    speeds = (1.0, 2.0, 3.0, 4.0)
    T = 6000
    res = run(make_problem(n=4, m=4, d=1), ALG,
              EventDriven(job_time=JobTime("exponential"), speeds=speeds), T=T, seed=1,
              eval_every=T)
    p = np.asarray(speeds) / sum(speeds)
    se = np.sqrt(p * (1 - p) / T)
    assert np.all(np.abs(res.shares - p) < 5 * se)
    # The weighted objective Σ p_i F_i is recorded with the observed shares.
    assert np.isfinite(res.history.weighted_grad_norm2).all()


def test_laws_have_the_right_means():
    n = 20000
    keys = np.asarray(client_keys(0, 2, n))
    from persafl_np.sim.streams import counter_uniforms

    u = counter_uniforms(keys, np.zeros(n, dtype=np.int64))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    for law in (JobTime("exponential", mean=2.0), JobTime("halfnormal", sd=1.5, minimum=0.3),
                JobTime("lognormal", mu=0.1, sigma=0.5), JobTime("uniform", low=1, high=3),
                JobTime("pareto", shape=3.0, scale=2.0)):
        x = np.array([law.quantile(float(v)) for v in u[:5000]])
        assert x.mean() == pytest.approx(law.mean_value(), rel=0.06), law.law
        assert x.min() >= law.minimum


def test_drop_discards_late_updates_and_counts_the_waste(make_problem):
    tau_max, Q = 1, 3
    res = run(make_problem(n=6), Algorithm(persafl(0.5), Q=Q, eta=0.05),
              EventDriven(staleness="drop", tau_max=tau_max), T=60, seed=4)
    tr = res.trace
    assert np.all(tr.staleness[tr.accepted] <= tau_max)
    assert np.all(tr.staleness[~tr.accepted] > tau_max)
    n_drop = int((~tr.accepted).sum())
    assert n_drop > 0
    assert res.counters["dropped"] == n_drop
    assert res.counters["wasted_grad"] == Q * n_drop  # Plain full batch: one gradient per step
    assert res.counters["applied"] == 60 == res.counts.sum()
    assert int((res.jobs["status"] == 1).sum()) == n_drop


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 7),
    extra=st.integers(0, 3),
    law=st.sampled_from(["exponential", "lognormal", "pareto", "uniform", "halfnormal"]),
    speed_spread=st.floats(0.0, 2.0),
    limit=st.booleans(),
    K=st.sampled_from([1, 2]),
    dropout=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 2**16),
)
def test_block_never_applies_tau_above_tau_max(make_problem, n, extra, law, speed_spread,
                                              limit, K, dropout, seed):
    rng = np.random.default_rng(seed)
    speeds = tuple(np.exp(speed_spread * rng.normal(size=n)))
    C = max(1, n - 1) if limit else n
    tau_max = C - 1 + extra
    alg = ALG if K == 1 else Algorithm(fedbuff(1.0, K), Q=1, eta=0.05)
    res = run(make_problem(n=n, m=3, d=1), alg,
              EventDriven(job_time=JobTime(law, sigma=1.5, shape=1.5, low=0.1, high=5.0),
                          speeds=speeds, concurrency=C if limit else None, dropout=dropout,
                          staleness="block", tau_max=tau_max),
              T=40, seed=seed, eval_every=40)
    assert res.status == "ok" and res.counters["steps"] == 40  # no deadlock
    assert res.trace.accepted.all()
    assert res.trace.staleness.max() <= tau_max


def test_block_needs_concurrency_at_most_tau_max_plus_one(make_problem):
    with pytest.raises(ValueError, match="concurrency <= tau_max"):
        run(make_problem(n=4), ALG, EventDriven(staleness="block", tau_max=2), T=3)


def test_concurrency_limit_is_respected(make_problem):
    C = 3
    res = run(make_problem(n=10), ALG, EventDriven(concurrency=C), T=200, seed=2)
    j = res.jobs
    ev = sorted([(s, 1) for s in j["start"]] + [(e, -1) for e in j["end"]],
                key=lambda x: (x[0], x[1]))
    assert max(np.cumsum([d for _, d in ev])) <= C
    assert len(set(j["client"].tolist())) == 10  # idle clients are drawn, all get work


def test_dropout_loses_jobs_and_counts_them(make_problem):
    res = run(make_problem(n=5), ALG, EventDriven(dropout=0.3), T=200, seed=2)
    failed = int((res.jobs["status"] == 2).sum())
    assert res.counters["failed"] == failed
    frac = failed / (failed + len(res.trace))
    assert 0.2 < frac < 0.4
    assert len(res.trace) == 200  # failed jobs never reach the server


def test_latencies_add_to_job_times(make_problem):
    res = run(make_problem(n=2), ALG,
              EventDriven(job_time=JobTime("constant", mean=1.0),
                          download=JobTime("constant", mean=0.25),
                          upload=JobTime("constant", mean=0.5)), T=4, seed=0)
    np.testing.assert_allclose(res.jobs["end"] - res.jobs["start"], 1.75)


def test_determinism_and_independent_client_streams(make_problem):
    spec = EventDriven(job_time=JobTime("lognormal", sigma=1.0), dropout=0.1)
    alg = Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4)
    a = run(make_problem(n=5), alg, spec, T=50, seed=9)
    b = run(make_problem(n=5), alg, spec, T=50, seed=9)
    c = run(make_problem(n=5), alg, spec, T=50, seed=10)
    assert a.digest() == b.digest() != c.digest()
    # Adding a client leaves every other client's job-time sequence unchanged.
    d = run(make_problem(n=6), alg, spec, T=50, seed=9)
    for i in range(5):
        da = (a.jobs["end"] - a.jobs["start"])[a.jobs["client"] == i]
        dd = (d.jobs["end"] - d.jobs["start"])[d.jobs["client"] == i]
        k = min(len(da), len(dd))
        assert k > 0
        np.testing.assert_array_equal(da[:k], dd[:k])


def test_job_trace_file(tmp_path, make_problem):
    p = tmp_path / "jobs.csv"
    p.write_text("client,start,end\n0,0,2\n1,0,1\n0,2,3\n")
    res = run(make_problem(n=2), ALG, EventDriven(job_time=str(p)), T=12, seed=0)
    d0 = (res.jobs["end"] - res.jobs["start"])[res.jobs["client"] == 0]
    np.testing.assert_array_equal(d0[:4], [2, 1, 2, 1])  # cycled


@pytest.mark.parametrize("body,msg", [
    ("client,start,end\n0,0,1\n7,0,1\n", "row 2: unknown client id 7"),
    ("client,start,end\n0,5,6\n0,1,2\n1,0,1\n", "row 2: start times of client 0 are not monotone"),
    ("client,start,end\n0,2,1\n", "row 1"),
    ("client,begin,end\n0,0,1\n", "missing column"),
    ("client,start,end\n0,0,1\n", r"no rows for client\(s\) \[1\]"),
])
def test_bad_job_trace_is_rejected_with_row(tmp_path, body, msg):
    p = tmp_path / "t.csv"
    p.write_text(body)
    with pytest.raises(ValueError, match=msg):
        load_job_trace(p, 2)


@pytest.mark.parametrize("kw,msg", [
    ({"dropout": 1.0}, "dropout"),
    ({"staleness": "wait"}, "staleness"),
    ({"staleness": "drop"}, "tau_max"),
    ({"concurrency": 0}, "concurrency"),
])
def test_bad_event_spec(kw, msg):
    with pytest.raises(ValueError, match=msg):
        EventDriven(**kw)


@pytest.mark.parametrize("kw,msg", [
    ({"law": "exponential", "mean": 0.0}, "mean must be > 0"),
    ({"law": "gamma"}, "law must be one of"),
    ({"law": "uniform", "low": 2.0, "high": 1.0}, "high must be >= 2"),
    ({"law": "pareto", "shape": 0.0}, "shape must be > 0"),
    ({"law": "halfnormal", "minimum": -1.0}, "minimum must be >= 0"),
])
def test_bad_law(kw, msg):
    with pytest.raises(ValueError, match=msg):
        JobTime(**kw)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_stops_the_run_and_keeps_history(make_problem):
    res = run(make_problem(n=3), Algorithm(persafl(1.0), Q=5, eta=50.0), EventDriven(),
              T=500, seed=0)
    assert res.status == "diverged"
    assert "non-finite" in res.message
    assert 0 < len(res.history) < 500
    assert np.isfinite(res.params).all()  # the last finite model is kept
    assert np.isfinite(res.history.loss).all()


def test_block_actually_holds_fast_clients(make_problem):
    """Speeds (1, 4): without control the slow client's updates have τ ≈ 4; block with τ_max=1
    makes the fast client wait, so the two alternate and τ ≤ 1 while progress continues."""
    spec = dict(job_time=JobTime("constant", mean=4.0), speeds=(1.0, 4.0))
    free = run(make_problem(n=2), ALG, EventDriven(**spec), T=40, seed=0)
    assert free.trace.staleness.max() >= 3
    blk = run(make_problem(n=2), ALG, EventDriven(**spec, staleness="block", tau_max=1),
              T=40, seed=0)
    assert blk.trace.staleness.max() <= 1 and blk.counters["steps"] == 40
    # held updates are applied later than their job ended
    assert blk.counters["time"] > free.counters["time"]
    assert np.all(np.diff(blk.trace.client[4:]) != 0)  # strict alternation once in steady state


def test_availability_windows(make_problem, tmp_path):
    """Jobs start only inside a client's online window [φ_i + kP, φ_i + kP + aP) and a job
    still running when its window closes is lost at the closing time."""
    P, a = 4.0, 0.5
    spec = EventDriven(job_time=JobTime("exponential", mean=0.7), availability_period=P,
                       availability_on=a)
    prob = make_problem(n=4)
    res = run(prob, ALG, spec, T=150, seed=5)
    j = res.jobs
    from persafl_np.sim.arrivals import _EventSource

    src = _EventSource(spec, 4, 5)
    for c, s0, e, status in zip(j["client"], j["start"], j["end"], j["status"], strict=True):
        ph = src.phase[c]
        k = np.floor((s0 - ph) / P + 1e-9)  # window index; tolerance for φ + kP rounding
        off = ph + k * P + a * P
        assert s0 - (ph + k * P) >= -1e-9 and s0 < off + 1e-9  # started online
        assert e <= off + 1e-9  # ended (or was lost) by the window's end
        if e > off - 1e-9:
            assert status == 2  # cut off by the window's end ⇒ failed
    failed = j["status"] == 2
    assert failed.any() and res.counters["failed"] == int(failed.sum())
    # checkpoint/resume also holds with waiting clients in the queue
    ck = tmp_path / "ck"
    run(prob, ALG, spec, T=150, seed=5, checkpoint_dir=ck, checkpoint_every=25, stop_after=60)
    again = run(prob, ALG, spec, T=150, seed=5, checkpoint_dir=ck, checkpoint_every=25,
                resume=True)
    assert again.digest() == res.digest()


def test_availability_spec_validation():
    with pytest.raises(ValueError, match="availability_on"):
        EventDriven(availability_period=1.0, availability_on=0.0)
    with pytest.raises(ValueError, match="availability_period"):
        EventDriven(availability_period=-1.0)


def test_block_rechecks_held_updates_after_failures(make_problem):
    """Regression (found by a 400-case random stress run): three of four clients have jobs
    longer than their availability window, so they only ever *fail*; the fast client's held
    update becomes safe after such a failure, not after an arrival. Held updates must be
    re-examined after every event, else the run loops forever on failures."""
    spec = EventDriven(job_time=JobTime("constant", mean=1.0),
                       speeds=(28.26, 0.307, 0.0044, 0.223), concurrency=4, staleness="block",
                       tau_max=5, availability_period=3.78, availability_on=0.556)
    res = run(make_problem(n=4, m=2, d=1), Algorithm(fedbuff(1.0, 3), Q=1, eta=0.05), spec,
              T=200, seed=176, max_arrivals=10_000)
    assert res.status == "ok" and res.counters["failed"] > 0
    assert res.trace.staleness.max() <= 5


def test_no_job_can_finish_stalls_with_a_message(make_problem):
    spec = EventDriven(job_time=JobTime("constant", mean=10.0), availability_period=4.0,
                       availability_on=0.5)
    res = run(make_problem(n=2, m=2, d=1), ALG, spec, T=5, seed=0)
    assert res.status == "stalled" and "no job can finish" in res.message
    assert len(res.history) == 1  # the initial evaluation is kept


def test_counter_uniforms_stay_inside_the_open_unit_interval():
    """(2⁵³ − 1 + ½)/2⁵³ rounds to 1.0 in float64; that one value is U_MAX = 1 − 2⁻⁵³ instead
    (an infinite log-normal draw otherwise); every other value is unchanged."""
    import math

    from persafl_np.sim import JobTime
    from persafl_np.sim.streams import (
        U_MAX,
        counter_uniform,
        counter_uniforms,
        unit_float,
        unit_floats,
    )

    top = 2**53 - 1
    assert (top + 0.5) * 2.0**-53 == 1.0  # the rounding the clamp is for
    assert unit_float(top) == U_MAX < 1.0
    assert unit_float(0) == 2.0**-54 and unit_float(top - 1) == (top - 1 + 0.5) * 2.0**-53
    t = np.array([0, 1, top - 1, top], dtype=np.uint64)
    assert unit_floats(t).tolist() == [unit_float(int(x)) for x in t]
    assert math.isfinite(JobTime("lognormal", sigma=2.0).quantile(U_MAX))
    keys = np.arange(1, 50, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    j = np.arange(49, dtype=np.int64)
    assert counter_uniforms(keys, j).tolist() == [counter_uniform(int(k), int(i))
                                                  for k, i in zip(keys, j, strict=True)]
