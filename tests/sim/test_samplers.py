"""ParkedSampler draws exactly what the client's own BatchSampler draws (sim/samplers.py)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from persafl_np.personalization.sampling import BatchSampler
from persafl_np.sim import streams
from persafl_np.sim.samplers import ParkedSampler


def test_parked_samplers_match_their_own_generators_interleaved_and_resumed():
    rng = np.random.default_rng(0)
    shared = np.random.default_rng(123)
    n, m = 4, 13
    own = [BatchSampler(partial(streams.client_rng, 7, i)) for i in range(n)]
    parked = [ParkedSampler(partial(streams.client_rng, 7, i), shared) for i in range(n)]
    for step in range(200):
        i = int(rng.integers(n))
        if step == 100:  # checkpoint round trip of every parked sampler
            fresh = []
            for p in parked:
                st, perm = p.state()
                q = ParkedSampler(partial(streams.client_rng, 7, 99), shared)
                q.load_state(st, perm)
                fresh.append(q)
            parked = fresh
        if rng.random() < 0.2:
            np.testing.assert_array_equal(parked[i].normal((2, 3)), own[i].normal((2, 3)))
        else:
            b, k = int(rng.integers(1, 6)), int(rng.integers(1, 4))
            np.testing.assert_array_equal(parked[i].take(m, b, k), own[i].take(m, b, k))
    # the saved state has BatchSampler's format: a BatchSampler resumes from it
    st, perm = parked[0].state()
    b = BatchSampler(partial(streams.client_rng, 7, 99))
    b.load_state(st, perm)
    np.testing.assert_array_equal(b.take(m, 4, 3), own[0].take(m, 4, 3))
    assert ParkedSampler(partial(streams.client_rng, 7, 0), shared).state() == (None, None)


@pytest.mark.parametrize("resume_parked", [False, True])
def test_parked_and_live_samplers_make_the_same_run(resume_parked, tmp_path, monkeypatch):
    """The engine parks its samplers above samplers.PARK_ABOVE clients and keeps live
    generators below: the same run either way, and a checkpoint written by one resumes in
    the other (the sampler state format is shared)."""
    from persafl_np.algorithms import Algorithm, persafl
    from persafl_np.models import LeastSquares
    from persafl_np.personalization import MAML
    from persafl_np.sim import EventDriven, Problem, engine, run

    rng = np.random.default_rng(0)
    clients = [(rng.normal(size=(11, 3)), rng.normal(size=11)) for _ in range(5)]
    prob = Problem.build(LeastSquares(), MAML(0.05), clients, seed=0)
    alg = Algorithm(persafl(0.5), Q=3, eta=0.05, batch_size=2)
    live = run(prob, alg, EventDriven(), T=60, seed=1, eval_every=7)
    monkeypatch.setattr(engine, "PARK_ABOVE", 0)
    parked = run(prob, alg, EventDriven(), T=60, seed=1, eval_every=7)
    assert parked.digest() == live.digest()
    ck = tmp_path / "ck"
    monkeypatch.setattr(engine, "PARK_ABOVE", 0 if not resume_parked else 10**9)
    run(prob, alg, EventDriven(), T=60, seed=1, eval_every=7, checkpoint_dir=ck,
        checkpoint_every=20, stop_after=20)
    monkeypatch.setattr(engine, "PARK_ABOVE", 10**9 if not resume_parked else 0)
    res = run(prob, alg, EventDriven(), T=60, seed=1, eval_every=7, checkpoint_dir=ck,
              checkpoint_every=20, resume=True)
    assert res.digest() == live.digest()
