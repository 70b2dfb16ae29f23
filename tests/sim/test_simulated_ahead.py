"""Arrivals simulated ahead in blocks (theory/simulator.md §3.2) are exactly the event-by-event
source's: same arrivals, same job rows, same queue and push counter, for any version sequence the
engine produces; and a checkpoint taken in the middle of a simulated block resumes bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, fedbuff, persafl
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, run
from persafl_np.sim.arrivals import _EventSource

SPECS = {
    "exp_none": EventDriven(job_time=JobTime("exponential")),
    "lognormal_drop": EventDriven(job_time=JobTime("lognormal", sigma=1.2), staleness="drop",
                                  tau_max=2),
    "pareto_speeds_latency": EventDriven(job_time=JobTime("pareto", shape=1.5),
                                         speeds=(1.0, 2.0, 0.5, 3.0, 1.0),
                                         upload=JobTime("uniform", low=0.1, high=0.3)),
    "constant_ties": EventDriven(job_time=JobTime("constant", mean=1.0)),
}


def _drive(src, n_events, K):
    """Serve n_events arrivals with the versions a K-buffer rule would produce."""
    src.start(0)
    src.dispatched.clear()
    out, version, count = [], 0, 0
    for _ in range(n_events):
        a = src.next(version)
        out.append(tuple(a))
        if a.accepted:
            count += 1
            if count == K:
                version, count = version + 1, 0
        src.after(a, version)
        out.append(tuple(src.dispatched))
        src.dispatched.clear()
    return out


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_blocked_source_is_the_event_by_event_source(name, K):
    spec = SPECS[name]
    fast, slow = _EventSource(spec, 5, 11), _EventSource(spec, 5, 11)
    assert fast.blocked
    slow.blocked = False
    n_events = 700  # several blocks of 256
    assert _drive(fast, n_events, K) == _drive(slow, n_events, K)
    np.testing.assert_array_equal(fast.jobs.array(), slow.jobs.array())
    assert fast.n_dropped == slow.n_dropped
    # the fast source is ahead by the unserved part of its block, and says so in its state
    st = fast.state()
    assert len(st["ahead"]) == len(fast.blk) - fast.bk == 3 * 256 - n_events
    json.dumps(st)  # JSON-able (checkpoint meta)


def test_blocked_needs_a_schedule_that_cannot_depend_on_the_run():
    n = 4
    assert _EventSource(EventDriven(), n, 0).blocked
    for spec in (EventDriven(dropout=0.1), EventDriven(concurrency=2),
                 EventDriven(staleness="block", tau_max=5),
                 EventDriven(availability_period=2.0, availability_on=0.5)):
        assert not _EventSource(spec, n, 0).blocked


@pytest.mark.parametrize("rule", ["persafl", "fedbuff"])
def test_resume_in_the_middle_of_a_simulated_block(rule, tmp_path):
    rng = np.random.default_rng(0)
    clients = [(rng.normal(size=(6, 3)), rng.normal(size=6)) for _ in range(5)]
    prob = Problem.build(LeastSquares(), Plain(), clients, seed=0)
    alg = Algorithm(persafl(0.5) if rule == "persafl" else fedbuff(1.0, 2), Q=2, eta=0.05,
                    batch_size=2)
    spec = SPECS["lognormal_drop"]
    full = run(prob, alg, spec, T=120, seed=3, eval_every=10)
    ck = tmp_path / "ck"
    run(prob, alg, spec, T=120, seed=3, eval_every=10, checkpoint_dir=ck, checkpoint_every=37,
        stop_after=37)
    res = run(prob, alg, spec, T=120, seed=3, eval_every=10, checkpoint_dir=ck,
              checkpoint_every=37, resume=True)
    assert res.digest() == full.digest()
    np.testing.assert_array_equal(res.jobs["end"], full.jobs["end"])
