"""JobTime.quantile_fn (the event source's per-job closure) is JobTime.quantile bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.sim import JobTime
from persafl_np.sim.timing import U_MIN

LAWS = [
    JobTime("constant", mean=2.5, minimum=0.5),
    JobTime("exponential", mean=3.0, minimum=0.25),
    JobTime("halfnormal", sd=2.0),
    JobTime("lognormal", mu=0.3, sigma=1.5, minimum=1.0),
    JobTime("uniform", low=0.5, high=4.0, minimum=0.125),
    JobTime("pareto", shape=1.5, scale=2.0, minimum=0.1),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda j: j.law)
def test_quantile_fn_is_quantile_bit_for_bit(law: JobTime) -> None:
    u = np.random.default_rng(0).random(2000).tolist() + [U_MIN, 0.5, 1.0 - U_MIN]
    q = law.quantile_fn()
    got = [q(x) for x in u]
    want = [law.quantile(x) for x in u]
    assert got == want
    assert all(type(v) is float for v in got)


@pytest.mark.parametrize("block_bytes", [1, 8 * 2**20])  # the cache at B = 32 and at B = 256
def test_cached_job_uniforms_are_the_counter_law_through_refills(monkeypatch, block_bytes):
    """Every job duration of a run equals quantile(counter_uniform(k_i, 3j + 1)) of
    theory/simulator.md (SIM-1), however many jobs the per-client uniform cache holds: 3
    clients × ~400 jobs cross several refills of both cache sizes."""
    from persafl_np.sim import arrivals, streams

    monkeypatch.setattr(arrivals, "_UBLOCK_BYTES", block_bytes)
    law = JobTime("exponential")
    src = arrivals._EventSource(arrivals.EventDriven(job_time=law), 3, 5)
    assert src.B == (32 if block_bytes == 1 else 256)
    src.start(0)
    v = 0
    for _ in range(1200):
        a = src.next(v)
        v += 1
        src.after(a, v)
        src.dispatched.clear()
    jobs = src.jobs.array()
    keys = streams.client_keys(5, streams.PURPOSE_JOBS, 3).tolist()
    seen = [0, 0, 0]
    for row in jobs:
        i = int(row["client"])
        j = seen[i]
        seen[i] += 1
        want = law.quantile(streams.counter_uniform(keys[i], 3 * j + 1))
        # the float the source added: end = start + duration, exactly
        assert row["end"] == row["start"] + want
    assert min(seen) > 300
