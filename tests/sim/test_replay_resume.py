"""Replay of recorded schedules, checkpoint/resume, result files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, fedasync, fedbuff, persafl, sync_average
from persafl_np.personalization import MoreauEnvelope
from persafl_np.results import TRACE_FIELDS, read_trace_csv
from persafl_np.sim import EventDriven, JobTime, Replay, TheoremMode, run

SPEC = EventDriven(job_time=JobTime("lognormal", sigma=1.0), dropout=0.1, staleness="drop",
                   tau_max=3)
ALG = Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4)


def _same_trace(a, b):
    for k in TRACE_FIELDS:
        np.testing.assert_array_equal(getattr(a.trace, k), getattr(b.trace, k), err_msg=k)


def test_replay_reproduces_the_run_exactly(make_problem, tmp_path):
    prob = make_problem(n=5)
    res = run(prob, ALG, SPEC, T=40, seed=3)
    rep = run(prob, ALG, Replay.from_trace(res.trace), T=40, seed=3)
    np.testing.assert_array_equal(rep.params, res.params)
    _same_trace(rep, res)
    # … also through trace.csv on disk (floats written with repr: exact)
    res.save(tmp_path)
    rep2 = run(prob, ALG, Replay.from_csv(str(tmp_path / "trace.csv"), 5), T=40, seed=3)
    assert rep2.digest() == res.digest()


def test_replay_compares_two_algorithms_on_one_schedule(make_problem):
    prob = make_problem(n=5)
    res = run(prob, ALG, SPEC, T=30, seed=3)
    other = run(prob, Algorithm(fedasync(0.6), Q=2, eta=0.05, batch_size=4),
                Replay.from_trace(res.trace), T=30, seed=3)
    np.testing.assert_array_equal(other.trace.client, res.trace.client)
    np.testing.assert_array_equal(other.trace.pulled_version, res.trace.pulled_version)
    assert not np.array_equal(other.params, res.params)


def test_replay_of_a_synchronous_run(make_problem):
    prob = make_problem(n=6)
    alg = Algorithm(sync_average(1.0, 3), Q=2, eta=0.05, synchronous=True)
    res = run(prob, alg, EventDriven(dropout=0.2), T=10, seed=1)
    rep = run(prob, alg, Replay.from_trace(res.trace), T=10, seed=1)
    np.testing.assert_array_equal(rep.params, res.params)


@pytest.mark.parametrize("body,msg", [
    ("time,step,client,pulled_version,staleness,accepted,update_norm\n0,0,9,0,0,1,0\n",
     "row 1: unknown client id 9"),
    ("time,step,client,pulled_version,staleness,accepted,update_norm\n"
     "1,0,0,0,0,1,0\n0.5,1,1,0,1,1,0\n", "row 2: time"),
    ("time,step,client,pulled_version,staleness,accepted,update_norm\n"
     "1,1,0,0,0,1,0\n", "row 1: need 0 <= pulled_version"),
    ("time,step,client\n", "missing column"),
])
def test_bad_trace_csv_is_rejected_with_row(tmp_path, body, msg):
    p = tmp_path / "trace.csv"
    p.write_text(body)
    with pytest.raises(ValueError, match=msg):
        read_trace_csv(p, 3)


@pytest.mark.parametrize("case", ["event", "theorem", "sync", "fedbuff"])
def test_resume_after_interrupt_is_bit_identical(make_problem, tmp_path, case):
    oracle = MoreauEnvelope(5.0, inner_steps=5) if case == "event" else None
    prob = make_problem(n=5, oracle=oracle)
    if case == "event":
        alg, arr = ALG, SPEC
    elif case == "theorem":
        alg, arr = ALG, TheoremMode(tau=3)
    elif case == "sync":
        alg, arr = Algorithm(sync_average(0.8, 3), Q=2, eta=0.05, synchronous=True), EventDriven()
    else:
        alg, arr = Algorithm(fedbuff(1.0, 3), Q=2, eta=0.05, batch_size=4), EventDriven(
            staleness="block", tau_max=6)
    full = run(prob, alg, arr, T=30, seed=7, eval_every=4)
    ck = tmp_path / "ck"
    part = run(prob, alg, arr, T=30, seed=7, eval_every=4, checkpoint_dir=ck,
               checkpoint_every=7, stop_after=15)
    assert part.counters["steps"] == 15
    assert json.loads((ck / "MANIFEST.json").read_text())["meta"]["version"] == 15
    resumed = run(prob, alg, arr, T=30, seed=7, eval_every=4, checkpoint_dir=ck,
                  checkpoint_every=7, resume=True)
    assert resumed.digest() == full.digest()
    for k in full.jobs:
        np.testing.assert_array_equal(resumed.jobs[k], full.jobs[k])
    assert resumed.counters["applied"] == full.counters["applied"]


def test_resume_without_checkpoint_is_an_error(make_problem, tmp_path):
    with pytest.raises(ValueError, match="checkpoint"):
        run(make_problem(), ALG, SPEC, T=3, checkpoint_dir=tmp_path, resume=True)


def test_save_writes_all_files(make_problem, tmp_path):
    res = run(make_problem(n=4), ALG, SPEC, T=20, seed=0, eval_every=5)
    res.save(tmp_path / "out")
    d = tmp_path / "out"
    assert (d / "trace.csv").read_text().splitlines()[0] == ",".join(TRACE_FIELDS)
    assert (d / "jobs.csv").read_text().startswith("client,start,end,pulled_version,status\n")
    hist = (d / "history.csv").read_text().splitlines()
    assert len(hist) == 1 + len(res.history) and hist[0].startswith("step,time,arrivals,grad_norm2")
    with np.load(d / "final.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["params"], res.params)
        np.testing.assert_array_equal(z["shares"], res.shares)
    assert json.loads((d / "summary.json").read_text())["status"] == "ok"
    assert not list(d.glob(".*tmp"))  # no temporary files left behind


def test_progress_callback_leaves_results_bit_identical(make_problem, tmp_path):
    """The progress callback advances the run in chunks; results must not change, with or
    without checkpointing, and the reported versions climb to T."""
    from persafl_np.algorithms import Algorithm, persafl
    from persafl_np.sim import EventDriven, JobTime, run

    prob = make_problem(n=6)
    alg = Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4)
    arr = EventDriven(job_time=JobTime("exponential"))
    plain = run(prob, alg, arr, T=250, seed=3, eval_every=7)
    seen: list[tuple[int, int]] = []
    with_bar = run(prob, alg, arr, T=250, seed=3, eval_every=7,
                   progress=lambda v, T: seen.append((v, T)))
    assert with_bar.digest() == plain.digest()
    versions = [v for v, _ in seen]
    assert versions == sorted(versions) and versions[-1] == 250 and len(versions) >= 50
    assert {T for _, T in seen} == {250}
    ck = tmp_path / "ck"
    ck.mkdir()
    part = run(prob, alg, arr, T=250, seed=3, eval_every=7, checkpoint_dir=ck,
               checkpoint_every=40, stop_after=130, progress=lambda v, T: None)
    assert part.params is not None
    resumed = run(prob, alg, arr, T=250, seed=3, eval_every=7, checkpoint_dir=ck,
                  checkpoint_every=40, resume=True, progress=lambda v, T: None)
    assert resumed.digest() == plain.digest()
