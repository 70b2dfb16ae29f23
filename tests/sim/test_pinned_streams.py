"""Pinned digests of short runs: any change of a random stream's order or of the arithmetic on
the hot path (engine, arrival sources, local update, server rules) changes them.

The digests were computed with the code *before* the engine throughput work (issue 4
follow-up) and must never be updated to make a refactor pass: a mismatch means results changed.
``schedule`` covers what comes from the streams alone (times, clients, versions, staleness,
acceptance, jobs) and is platform-independent; ``full`` is :meth:`RunResult.digest` plus the
jobs table (params, trace incl. update norms, history) and may in principle depend on the
NumPy/BLAS build, as any bit-exact float pin does.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from persafl_np.algorithms import (
    Algorithm,
    fedasync,
    fedbuff,
    local_only,
    persafl,
    polynomial,
    sync_average,
)
from persafl_np.sim import EventDriven, JobTime, TheoremMode, run

_JOB_KEYS = ("client", "start", "end", "pulled_version", "status")
_SCHED_KEYS = ("time", "step", "client", "pulled_version", "staleness", "accepted")


def _schedule_digest(res) -> str:
    h = hashlib.sha256()
    for k in _SCHED_KEYS:
        h.update(np.ascontiguousarray(getattr(res.trace, k)).tobytes())
    for k in _JOB_KEYS:
        h.update(np.ascontiguousarray(res.jobs[k]).tobytes())
    return h.hexdigest()[:16]


def _full_digest(res) -> str:
    h = hashlib.sha256(res.digest().encode())
    for k in _JOB_KEYS:
        h.update(np.ascontiguousarray(res.jobs[k]).tobytes())
    return h.hexdigest()[:16]


CASES = {
    "event_exp_all": (
        Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4),
        EventDriven(job_time=JobTime("exponential")),
    ),
    "event_lognormal_drop": (
        Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4),
        EventDriven(job_time=JobTime("lognormal", sigma=1.0), dropout=0.1, staleness="drop",
                    tau_max=3, concurrency=3),
    ),
    "event_block_latency": (
        Algorithm(fedasync(0.6, polynomial(0.5)), Q=3, eta=0.05),
        EventDriven(job_time=JobTime("pareto", shape=1.5), staleness="block", tau_max=4,
                    concurrency=4, download=JobTime("uniform", low=0.1, high=0.3),
                    upload=JobTime("exponential", mean=0.2), speeds=(1, 2, 0.5, 1, 3, 1)),
    ),
    "event_availability": (
        Algorithm(fedbuff(1.0, K=3), Q=1, eta=0.05, batch_size=3),
        EventDriven(job_time=JobTime("halfnormal"), availability_period=4.0,
                    availability_on=0.6, dropout=0.05),
    ),
    "theorem_uniform": (
        Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4),
        TheoremMode(tau=3),
    ),
    "local_theorem": (
        Algorithm(local_only(), Q=2, eta=0.05, batch_size=4),
        TheoremMode(tau=0),
    ),
    "sync_rounds": (
        Algorithm(sync_average(1.0, 3), Q=2, eta=0.05, batch_size=5, synchronous=True),
        EventDriven(job_time=JobTime("exponential"), dropout=0.1),
    ),
}

# Computed before the hot-path changes (commit aba119c code); see module docstring.
PINNED = {
    "event_exp_all": ("89e9d922e12f123c", "99678f478e2d4add"),
    "event_lognormal_drop": ("ff2aba1dce4f4de0", "9aa7e747efd4f826"),
    "event_block_latency": ("4109a88443b57874", "5e83d4ddac8291c2"),
    "event_availability": ("08280d521ebdf838", "29f9c3c4e0fa2d18"),
    "local_theorem": ("b76ab01f7eabb494", "651dd4221ef797f5"),
    "theorem_uniform": ("dad4c998ecc84116", "d7377292d3fd4c02"),
    "sync_rounds": ("65be6431b2be2b8a", "78973eb4cd14b347"),
}


def _run(make_problem, name):
    alg, spec = CASES[name]
    return run(make_problem(n=6), alg, spec, T=60, seed=11, eval_every=7)


@pytest.mark.parametrize("name", sorted(CASES))
def test_schedule_digest_is_pinned(make_problem, name):
    res = _run(make_problem, name)
    assert res.status == "ok"
    assert _schedule_digest(res) == PINNED[name][0]


#: The NumPy release the ``full`` digests were computed with. A new NumPy may change float
#: summation order (SIMD kernels), so on another release only the schedule digests apply;
#: re-pin deliberately, after checking the schedule digests still match.
PINNED_NUMPY = "2.4."


@pytest.mark.skipif(
    not np.__version__.startswith(PINNED_NUMPY),
    reason=f"full digests pinned under NumPy {PINNED_NUMPY}x, running {np.__version__}",
)
@pytest.mark.parametrize("name", sorted(CASES))
def test_full_digest_is_pinned(make_problem, name):
    assert _full_digest(_run(make_problem, name)) == PINNED[name][1]
