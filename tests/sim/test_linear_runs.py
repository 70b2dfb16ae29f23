"""Deferred runs of a linear server rule (theory/simulator.md §3.3): building the versions of a
run of PersA-FL updates w ← w − βΔ at once is bit-identical to applying them one by one — the
iterates, trace, history, counters, jobs table, the divergence stop and a resume — and the
overflow margin hands a run that approaches overflow back to the checked one-by-one path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.models import LeastSquares, SoftmaxRegression
from persafl_np.personalization import MAML, Plain
from persafl_np.sim import EventDriven, JobTime, Problem, Replay, TheoremMode, run


def _one_by_one(alg: Algorithm) -> Algorithm:
    rule = replace(alg.rule, linear=None)
    return replace(alg, rule=rule)


def _counters(res):
    return {k: v for k, v in res.counters.items() if k not in ("wall_seconds", "eval_seconds")}


def _softmax(n=6, seed=0, dtype=None):
    rng = np.random.default_rng(seed)
    clients = [(rng.normal(size=(8, 4)), rng.integers(0, 3, 8), rng.normal(size=(3, 4)),
                rng.integers(0, 3, 3)) for _ in range(n)]
    return Problem.build(SoftmaxRegression(3), Plain(), clients, seed=seed, dtype=dtype)


SPECS = {
    "event": EventDriven(job_time=JobTime("exponential")),
    "event_drop": EventDriven(job_time=JobTime("lognormal", sigma=1.0), staleness="drop",
                              tau_max=2),
    "event_dropout_concurrency": EventDriven(dropout=0.2, concurrency=3),
    "theorem_uniform": TheoremMode(tau=3),
    "theorem_max": TheoremMode(tau=4, policy="max"),
}


def _assert_same(a, b):
    assert a.digest() == b.digest()
    assert _counters(a) == _counters(b)
    assert a.status == b.status and a.message == b.message
    for k in a.jobs:
        np.testing.assert_array_equal(a.jobs[k], b.jobs[k])


def _patched_is_one_by_one(monkeypatch, constant, value, spec, *, eta, T, seed, eval_every):
    """A run with engine.<constant> = value (deferral on) equals the one-by-one run."""
    from persafl_np.sim import engine

    prob = _softmax()
    alg = Algorithm(persafl(0.7), Q=2, eta=eta, batch_size=3)
    b = run(prob, _one_by_one(alg), spec, T=T, seed=seed, eval_every=eval_every)
    monkeypatch.setattr(engine, constant, value)
    a = run(prob, alg, spec, T=T, seed=seed, eval_every=eval_every)
    _assert_same(a, b)


@pytest.mark.parametrize("dtype", [None, "float32"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_deferred_runs_are_the_one_by_one_updates(name, dtype):
    prob = _softmax(dtype=dtype)
    alg = Algorithm(persafl(0.7), Q=2, eta=0.1, batch_size=3)
    assert alg.rule.linear == 0.7
    for eval_every in (1, 7):
        a = run(prob, alg, SPECS[name], T=60, seed=2, eval_every=eval_every)
        b = run(prob, _one_by_one(alg), SPECS[name], T=60, seed=2, eval_every=eval_every)
        _assert_same(a, b)


def test_deferred_replay_and_maml():
    prob = Problem.build(SoftmaxRegression(3), MAML(0.05), _softmax().clients, seed=0)
    alg = Algorithm(persafl(0.5), Q=2, eta=0.1, batch_size=3)
    rec = run(prob, alg, SPECS["event"], T=40, seed=1, eval_every=5)
    sched = Replay.from_trace(rec.trace)
    a = run(prob, alg, sched, T=40, seed=1, eval_every=5)
    b = run(prob, _one_by_one(alg), sched, T=40, seed=1, eval_every=5)
    _assert_same(a, b)
    assert a.digest() == rec.digest()


@pytest.mark.parametrize("eta", [3.0, 40.0])
def test_growing_runs_stop_at_the_same_step(eta):
    """Least squares with a step far beyond 2/L: the iterates grow geometrically to overflow;
    the deferred path must hand over before it and stop exactly where one-by-one does."""
    rng = np.random.default_rng(0)
    clients = [(rng.normal(size=(5, 3)) * 3, rng.normal(size=5)) for _ in range(4)]
    prob = Problem.build(LeastSquares(), Plain(), clients, seed=0)
    alg = Algorithm(persafl(1.0), Q=3, eta=eta)
    a = run(prob, alg, SPECS["event"], T=5000, seed=0, eval_every=50)
    b = run(prob, _one_by_one(alg), SPECS["event"], T=5000, seed=0, eval_every=50)
    assert a.status == "diverged"
    _assert_same(a, b)
    assert np.isfinite(a.params).all()


def test_resume_in_the_middle_of_a_deferred_run(tmp_path):
    prob = _softmax()
    alg = Algorithm(persafl(0.7), Q=2, eta=0.1, batch_size=3)
    spec = SPECS["event"]
    full = run(prob, _one_by_one(alg), spec, T=80, seed=3, eval_every=9)
    ck = tmp_path / "ck"
    run(prob, alg, spec, T=80, seed=3, eval_every=9, checkpoint_dir=ck, checkpoint_every=23,
        stop_after=23)
    res = run(prob, alg, spec, T=80, seed=3, eval_every=9, checkpoint_dir=ck,
              checkpoint_every=23, resume=True)
    _assert_same(res, full)


@pytest.mark.parametrize("margin", [0.5, 3.0, 30.0])
def test_handover_at_the_margin(margin, monkeypatch):
    """With a tiny margin the run keeps crossing it: deferred runs end, one-by-one steps with
    the finiteness check take over, deferral resumes when ‖w‖∞ shrinks — same bits."""
    _patched_is_one_by_one(monkeypatch, "_SAFE_BOUND", margin, SPECS["event_drop"], eta=0.3,
                           T=150, seed=4, eval_every=11)



def test_pending_jobs_do_not_pin_a_run_block_in_large_runs(monkeypatch):
    """Without row views (engine._VIEW_BYTES exceeded) a job dispatched in a deferred run
    holds its own copy of its version, not a view of the run's block; same bits."""
    from persafl_np.sim import engine
    from persafl_np.sim.engine import _Run

    prob = _softmax()
    alg = Algorithm(persafl(0.7), Q=2, eta=0.1, batch_size=3)
    ref = run(prob, alg, SPECS["event"], T=60, seed=2, eval_every=7)
    monkeypatch.setattr(engine, "_VIEW_BYTES", 0)
    r = _Run(prob, alg, SPECS["event"], 60, 2, 7, None)
    r.step_until(30)
    held = [*r.pending.values(), *r.store.values(), r.state.w]
    assert all(u.base is None or u.base.ndim == 1 for u in held)  # no (k, p) block behind
    assert run(prob, alg, SPECS["event"], T=60, seed=2, eval_every=7).digest() == ref.digest()


def test_the_store_keeps_only_the_current_version_in_event_mode():
    """Deferred runs must not keep old versions for stale arrivals whose jobs are pending
    (their models are held by the jobs; the store needs only the current version)."""
    from persafl_np.sim.engine import _Run

    prob = _softmax(n=12)
    alg = Algorithm(persafl(0.7), Q=1, eta=0.1, batch_size=3)
    spec = EventDriven(job_time=JobTime("pareto", shape=1.1))
    r = _Run(prob, alg, spec, 400, 0, 10**9, None)
    sizes = []
    compute = r._compute
    r._compute = lambda first: (sizes.append(len(r.store)), compute(first))[1]
    r.step_until(400)
    assert sizes and max(sizes) <= 2, max(sizes)
    assert r.counters["max_staleness"] > 50


@pytest.mark.parametrize("run_bytes", [1, 3 * 4 * 18])
def test_runs_cut_at_the_byte_cap_are_the_same(run_bytes, monkeypatch):
    """A deferred run is built whenever its Δs reach engine._RUN_BYTES (cap 2 and 3 rows of
    the 18-parameter model here): same bits as one by one."""
    _patched_is_one_by_one(monkeypatch, "_RUN_BYTES", run_bytes, SPECS["event"], eta=0.1, T=90,
                           seed=5, eval_every=13)


def test_long_runs_use_the_running_sum(monkeypatch):
    """Runs of more than three updates are built by the running sum (SIM-LIN); make sure the
    comparisons above exercise it."""
    from persafl_np.sim import engine

    calls = []
    real = engine._running_sum
    monkeypatch.setattr(engine, "_running_sum",
                        lambda *a, **k: (np.ndim(a[0]) == 2 and calls.append(len(a[0])),
                                         real(*a, **k))[1])
    prob = _softmax(n=40)
    alg = Algorithm(persafl(0.7), Q=1, eta=0.1, batch_size=3)
    b = run(prob, _one_by_one(alg), SPECS["event"], T=200, seed=1, eval_every=50)
    assert not calls
    a = run(prob, alg, SPECS["event"], T=200, seed=1, eval_every=50)
    assert calls and max(calls) > 3
    _assert_same(a, b)


@pytest.mark.parametrize("name", ["event", "event_drop"])
def test_fast_path_serves_the_block_and_equals_the_general_loop(name, monkeypatch):
    """The engine's fast path for the blocked source (theory/simulator.md §3.2–3.3) serves
    every arrival from the simulated block (``next`` is never called), and a run through it —
    with a max_arrivals stop, recorded batches and small cohorts — is the one-by-one run
    through the general loop bit for bit, batches included."""
    from persafl_np.sim import arrivals

    prob = _softmax()
    alg = Algorithm(persafl(0.7), Q=2, eta=0.2, batch_size=3)
    kw = dict(T=10**6, seed=6, eval_every=13, max_arrivals=97, record_batches=True,
              cohort_size=2)
    b = run(prob, _one_by_one(alg), SPECS[name], **kw)
    calls = []
    orig = arrivals._EventSource.next
    monkeypatch.setattr(arrivals._EventSource, "next",
                        lambda self, v: calls.append(v) or orig(self, v))
    a = run(prob, alg, SPECS[name], **kw)
    assert calls == [] and a.status == b.status == "stalled"
    assert a.counters["arrivals"] == 97
    _assert_same(a, b)
    assert set(a.batches) == set(b.batches)
    for k in a.batches:
        np.testing.assert_array_equal(a.batches[k], b.batches[k])
