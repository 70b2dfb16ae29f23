"""Cohort execution (theory/simulator.md §3.1): results do not depend on how jobs are grouped.

On NumPy every run must be bit-identical for cohort_size = 1 (every job computed alone, at its
arrival) and any larger cohort, counters included, and a checkpoint written in the middle of a
batch must resume to the same bits under any other cohort size.
"""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, fedasync, fedbuff, local_only, persafl, sync_average
from persafl_np.models import SoftmaxRegression
from persafl_np.personalization import MAML, AdditiveNoise, MoreauEnvelope, Plain
from persafl_np.sim import EventDriven, JobTime, Problem, Replay, TheoremMode, run


def _softmax_problem(oracle, n=7, seed=0, dtype=None, unequal=False):
    rng = np.random.default_rng(seed)
    clients = []
    for i in range(n):
        m = 9 + (3 * i if unequal else 0)
        X = rng.normal(size=(m, 4))
        y = rng.integers(0, 3, m)
        Xt = rng.normal(size=(4, 4))
        clients.append((X, y, Xt, rng.integers(0, 3, 4)))
    return Problem.build(SoftmaxRegression(3), oracle, clients, seed=seed, dtype=dtype)


_EV = EventDriven(job_time=JobTime("exponential"))
CASES = {
    "plain_event": (Plain(), Algorithm(persafl(0.5), Q=3, eta=0.1, batch_size=4), _EV),
    "maml_exact": (MAML(0.05), Algorithm(persafl(0.5), Q=2, eta=0.1, batch_size=3), _EV),
    "maml_hf": (MAML(0.05, "hessian_free"), Algorithm(persafl(0.5), Q=2, eta=0.1,
                                                      batch_size=3), _EV),
    "maml_fo": (MAML(0.05, "first_order"), Algorithm(fedbuff(1.0, 3), Q=2, eta=0.1,
                                                     batch_size=3), _EV),
    "moreau_warm": (MoreauEnvelope(5.0, inner_tol=1e-8), Algorithm(persafl(0.5), Q=2, eta=0.1,
                                                                  batch_size=4), _EV),
    "moreau_K": (MoreauEnvelope(5.0, inner_steps=5), Algorithm(persafl(0.5), Q=2, eta=0.1,
                                                               batch_size=4), _EV),
    "noise_full": (AdditiveNoise(Plain(), 0.3), Algorithm(persafl(0.5), Q=2, eta=0.1), _EV),
    # full batches of unequal clients: several padded widths (eval_width), one stack per width
    "plain_full_unequal": (Plain(), Algorithm(persafl(0.5), Q=2, eta=0.1), _EV),
    "moreau_full_unequal": (MoreauEnvelope(5.0, inner_tol=1e-8),
                            Algorithm(persafl(0.5), Q=2, eta=0.1, batch_size=12), _EV),
    "fedasync_prox": (Plain(), Algorithm(fedasync(0.6), Q=3, eta=0.1, batch_size=4, prox=0.5),
                      EventDriven(job_time=JobTime("lognormal", sigma=1.0), dropout=0.2,
                                  staleness="drop", tau_max=3)),
    "sync_rounds": (MAML(0.05), Algorithm(sync_average(1.0, 4), Q=2, eta=0.1, batch_size=3,
                                          synchronous=True), EventDriven(dropout=0.1)),
    "local_only": (Plain(), Algorithm(local_only(), Q=2, eta=0.1, batch_size=4), _EV),
    "availability": (Plain(), Algorithm(persafl(0.5), Q=2, eta=0.1, batch_size=4),
                     EventDriven(availability_period=3.0, availability_on=0.5, concurrency=4)),
    "theorem": (MoreauEnvelope(5.0, inner_tol=1e-8), Algorithm(persafl(0.5), Q=2, eta=0.1,
                                                               batch_size=4),
                TheoremMode(tau=3)),
    "theorem_fedbuff_max": (Plain(), Algorithm(fedbuff(1.0, 3), Q=2, eta=0.1, batch_size=4),
                            TheoremMode(tau=4, policy="max")),
    "theorem_local": (Plain(), Algorithm(local_only(), Q=2, eta=0.1, batch_size=4),
                      TheoremMode(tau=2, policy="max")),
}


def _counters(res):
    return {k: v for k, v in res.counters.items() if k not in ("wall_seconds", "eval_seconds")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grouping_does_not_change_a_bit(name):
    oracle, alg, spec = CASES[name]
    prob = _softmax_problem(oracle, unequal=name in ("plain_event", "moreau_warm")
                            or name.endswith("_unequal"))
    ref = run(prob, alg, spec, T=25, seed=3, eval_every=6, cohort_size=1)
    assert ref.status == "ok"
    for cs in (2, 64):
        res = run(prob, alg, spec, T=25, seed=3, eval_every=6, cohort_size=cs)
        assert res.digest() == ref.digest(), f"cohort_size={cs}"
        assert _counters(res) == _counters(ref)
        for k in res.jobs:
            np.testing.assert_array_equal(res.jobs[k], ref.jobs[k])


def test_float32_grouping_and_dtype():
    oracle, alg, spec = CASES["maml_exact"]
    prob = _softmax_problem(oracle, dtype="float32")
    assert prob.w0.dtype == np.float32 and prob.clients[0][0].dtype == np.float32
    a = run(prob, alg, spec, T=20, seed=1, cohort_size=1)
    b = run(prob, alg, spec, T=20, seed=1, cohort_size=50)
    assert a.digest() == b.digest()
    # float32 runs are float32 runs: close to, not equal to, the float64 run
    c = run(_softmax_problem(oracle), alg, spec, T=20, seed=1)
    np.testing.assert_allclose(a.params, c.params, rtol=1e-4, atol=1e-5)
    assert not np.array_equal(a.params, c.params)


@pytest.mark.parametrize("name", ["plain_event", "moreau_warm", "sync_rounds", "local_only",
                                  "theorem_fedbuff_max"])
def test_resume_in_the_middle_of_a_batch(name, tmp_path):
    """The checkpoint is written while jobs are pending (computed or not) and resumed under a
    different cohort size: bit-identical to the uninterrupted run."""
    oracle, alg, spec = CASES[name]
    prob = _softmax_problem(oracle)
    full = run(prob, alg, spec, T=30, seed=5, eval_every=4, cohort_size=1)
    ck = tmp_path / "ck"
    part = run(prob, alg, spec, T=30, seed=5, eval_every=4, cohort_size=64, checkpoint_dir=ck,
               checkpoint_every=7, stop_after=14)
    assert part.counters["steps"] == 14
    for cs in (1, 3):
        res = run(prob, alg, spec, T=30, seed=5, eval_every=4, cohort_size=cs,
                  checkpoint_dir=ck, checkpoint_every=7, resume=True)
        assert res.digest() == full.digest()
        assert _counters(res) == _counters(full)
        # resuming rewrites the checkpoint; put the 14-step one back for the next cohort size
        run(prob, alg, spec, T=30, seed=5, eval_every=4, cohort_size=64, checkpoint_dir=ck,
            checkpoint_every=7, stop_after=14)


def test_record_batches_replays_without_the_rng(tmp_path):
    """record_batches saves every arrival's batch rows; a replay of the trace with those
    batches and a *different* seed (other client streams) reproduces the run."""
    oracle, alg, spec = CASES["maml_exact"]
    prob = _softmax_problem(oracle)
    res = run(prob, alg, spec, T=20, seed=2, record_batches=True)
    b = res.batches
    assert b is not None and b["client"].shape == (len(res.trace),)
    np.testing.assert_array_equal(b["client"], res.trace.client)
    assert np.all(b["shape"] == [alg.Q * 3, alg.batch_size])
    res.save(tmp_path / "out")
    rep = run(prob, alg, Replay.from_trace(res.trace), T=20, seed=99,
              batches=tmp_path / "out" / "batches.npz")
    np.testing.assert_array_equal(rep.params, res.params)
    np.testing.assert_array_equal(rep.trace.update_norm, res.trace.update_norm)
    # without the batches, the other seed gives other iterates (the test can fail)
    other = run(prob, alg, Replay.from_trace(res.trace), T=20, seed=99)
    assert not np.array_equal(other.params, res.params)


def test_full_batch_jobs_are_padded_to_their_own_width(monkeypatch):
    """Full-batch training pads client i to eval_width(m)_i, one stack per width (theory/
    simulator.md §3.1), not to the largest client; each job equals its client's unpadded
    single-client local update to rounding, and grouping does not change a bit."""
    from persafl_np.personalization.local import local_update
    from persafl_np.sim import engine
    from persafl_np.sim.evaluation import eval_width

    sizes = (3, 5, 8, 9, 17, 40)
    rng = np.random.default_rng(1)
    clients = [(rng.normal(size=(m, 4)), rng.integers(0, 3, m), rng.normal(size=(2, 4)),
                rng.integers(0, 3, 2)) for m in sizes]
    prob = Problem.build(SoftmaxRegression(3), Plain(), clients, seed=0)
    alg = Algorithm(persafl(0.5), Q=2, eta=0.1)
    widths = eval_width(np.asarray(sizes)).tolist()
    assert widths == [4, 8, 8, 16, 32, 40]
    calls = []
    orig = engine.local_update_many

    def spy(oracle, kern, data, cl, U, samplers, Q, eta, b, prox, warm, record=False,
            width=None):
        res = orig(oracle, kern, data, cl, U, samplers, Q, eta, b, prox, warm, record, width)
        for r, c in enumerate(cl.tolist()):
            one = local_update(oracle, prob.model, U[r], *prob.clients[c][:2], Q, eta, None)
            np.testing.assert_allclose(res.delta[r], one.delta, rtol=1e-12, atol=1e-15)
        calls.append((cl.tolist(), width))
        return res

    monkeypatch.setattr(engine, "local_update_many", spy)
    a = run(prob, alg, _EV, T=30, seed=2, eval_every=10, cohort_size=64)
    assert calls and all(w == widths[c] for cl, w in calls for c in cl)
    assert {w for _, w in calls} == set(widths)
    monkeypatch.setattr(engine, "local_update_many", orig)
    b = run(prob, alg, _EV, T=30, seed=2, eval_every=10, cohort_size=1)
    assert a.digest() == b.digest() and _counters(a) == _counters(b)


def test_malformed_batches_are_refused_at_the_boundary(tmp_path):
    """A batches file that does not match its layout, names unknown clients, or indexes
    outside a client's rows is refused before the run starts, naming what is wrong."""
    oracle, alg, spec = CASES["maml_exact"]
    prob = _softmax_problem(oracle)
    res = run(prob, alg, spec, T=6, seed=2, record_batches=True)
    good = {k: np.array(v) for k, v in res.batches.items()}
    rep = Replay.from_trace(res.trace)
    m0 = int(prob.clients[int(good["client"][0])][0].shape[0])

    def bad(**change):
        z = dict(good, **change)
        return {k: v for k, v in z.items() if v is not None}

    cases = [
        (bad(rows=None), "missing array"),
        (bad(rows=good["rows"].astype(float)), "integers"),
        (bad(offset=good["offset"][:-1]), "expected client"),
        (bad(offset=good["offset"] + 1), "offset must start at 0"),
        (bad(client=np.full_like(good["client"], len(prob.clients))), "client ids"),
        (bad(rows=np.where(np.arange(good["rows"].size) == 0, m0, good["rows"])),
         f"0..{m0 - 1}"),
    ]
    for z, msg in cases:
        with pytest.raises(ValueError, match=msg):
            run(prob, alg, rep, T=6, seed=2, batches=z)
        np.savez(tmp_path / "b.npz", **z)
        with pytest.raises(ValueError, match=msg):
            run(prob, alg, rep, T=6, seed=2, batches=tmp_path / "b.npz")
    # the well-formed file replays (the checks accept what a run saves)
    np.testing.assert_array_equal(run(prob, alg, rep, T=6, seed=9, batches=good).params,
                                  res.params)


def test_cohort_size_is_validated(ls_problem):
    with pytest.raises(ValueError, match="cohort_size"):
        run(ls_problem, Algorithm(persafl(0.5)), _EV, T=2, cohort_size=0)


def test_event_store_keeps_only_the_current_model(make_problem):
    """Pending jobs hold their pulled model themselves; the store keeps one version."""
    from persafl_np.sim.engine import _Run

    prob = make_problem(n=6)
    r = _Run(prob, Algorithm(persafl(0.5), Q=1, eta=0.05), _EV, 50, 0, 50, None)
    r.step_until(50)
    assert list(r.store) == [50]
    assert len(r.pending) + len(r.done) == 6


def test_theorem_look_ahead_batches_tau_plus_one_jobs(make_problem):
    """Under the max policy the coming τ arrivals pull versions that exist: the engine computes
    them with the current one (≈ τ + 1 per batch), with the same results as one at a time."""
    from persafl_np.sim import engine

    sizes = []
    orig = engine._Run._compute_group

    def spy(self, g, *args):
        sizes.append(len(g))
        return orig(self, g, *args)

    prob = make_problem(n=40)
    alg = Algorithm(persafl(0.5), Q=1, eta=0.05, batch_size=4)
    engine._Run._compute_group = spy
    try:
        a = run(prob, alg, TheoremMode(tau=6, policy="max"), T=60, seed=1, cohort_size=64)
    finally:
        engine._Run._compute_group = orig
    b = run(prob, alg, TheoremMode(tau=6, policy="max"), T=60, seed=1, cohort_size=1)
    assert a.digest() == b.digest()
    assert max(sizes) == 7 and np.mean(sizes) > 3


def test_config_fields_and_cli_record_batches(tmp_path):
    from persafl_np.cli import main
    from persafl_np.config import SimConfig, load_config

    for bad, match in (({"dtype": "float16"}, "dtype"), ({"cohort_size": 0}, "cohort_size"),
                       ({"record_batches": "yes"}, "record_batches")):
        with pytest.raises(ValueError, match=match):
            SimConfig.from_dict(bad)
    cfg = SimConfig.from_dict({"T": 12, "dtype": "float32", "cohort_size": 5,
                               "algorithm": {"Q": 2, "batch_size": 3},
                               "arrivals": {"mode": "event"}})
    path = tmp_path / "c.toml"
    path.write_text(cfg.to_toml())
    assert load_config(path) == cfg
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--record-batches",
                 "--quiet"]) == 0
    assert (tmp_path / "a" / "batches.npz").exists()
    assert load_config(tmp_path / "a" / "config.toml").record_batches is True
    assert main(["run", str(path), "--out", str(tmp_path / "b"), "--quiet",
                 "--replay", str(tmp_path / "a" / "trace.csv"),
                 "--batches", str(tmp_path / "a" / "batches.npz")]) == 0
    with np.load(tmp_path / "a" / "final.npz") as fa, np.load(tmp_path / "b" / "final.npz") as fb:
        np.testing.assert_array_equal(fa["params"], fb["params"])


def test_float32_regression_stays_float32(make_problem):
    """float32 casts regression targets too (a float64 y would silently upcast every step)."""
    base = make_problem(n=3)
    prob = Problem.build(base.model, base.oracle, [c[:2] for c in base.clients], seed=0,
                         dtype="float32")
    assert prob.clients[0][1].dtype == np.float32
    res = run(prob, Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4), _EV, T=10, seed=0)
    from persafl_np.sim.engine import _Run

    r = _Run(prob, Algorithm(persafl(0.5), Q=2, eta=0.05, batch_size=4), _EV, 10, 0, 10, None)
    r.step_until(10)
    assert r.state.w.dtype == np.float32 and res.ok


@pytest.mark.parametrize("name", ["plain_event", "moreau_warm", "fedasync_prox", "maml_fo",
                                  "sync_rounds", "local_only", "noise_full"])
def test_replay_is_batched_and_bit_identical_to_row_by_row(name, tmp_path):
    """A replay computes every job whose pulled version exists in cohorts (look-ahead); the
    result is that of the recorded run and of a row-by-row replay (cohort_size = 1), also
    resumed from a checkpoint written in the middle of a look-ahead window."""
    oracle, alg, spec = CASES[name]
    prob = _softmax_problem(oracle, unequal=name == "plain_event")
    rec = run(prob, alg, spec, T=30, seed=4, eval_every=5)
    sched = Replay.from_trace(rec.trace)
    one = run(prob, alg, sched, T=30, seed=4, eval_every=5, cohort_size=1)
    assert one.digest() == rec.digest()
    from persafl_np.sim.engine import _Run

    r = _Run(prob, alg, sched, 30, 4, 5, None)
    sizes = []
    compute = r._compute_group
    r._compute_group = lambda g, *a: (sizes.append(len(g)), compute(g, *a))[1]
    r.step_until(30)
    assert max(sizes) > 1 and len(sizes) < len(rec.trace)  # batched
    batched = run(prob, alg, sched, T=30, seed=4, eval_every=5)
    assert batched.digest() == rec.digest() and _counters(batched) == _counters(one)
    ck = tmp_path / "ck"
    run(prob, alg, sched, T=30, seed=4, eval_every=5, checkpoint_dir=ck, checkpoint_every=6,
        stop_after=12)
    res = run(prob, alg, sched, T=30, seed=4, eval_every=5, cohort_size=2, checkpoint_dir=ck,
              checkpoint_every=6, resume=True)
    assert res.digest() == rec.digest()


@pytest.mark.parametrize("view_bytes", [0, 1 << 40])
def test_results_are_row_views_only_when_the_pinned_blocks_are_bounded(view_bytes,
                                                                        monkeypatch):
    """Results are copied out of their cohort's block unless n·min(n, cohort_size)·p entries
    fit in engine._VIEW_BYTES; either way the run is the same, bit for bit."""
    from persafl_np.sim import engine
    from persafl_np.sim.engine import _Run

    oracle, alg, spec = CASES["moreau_warm"]
    prob = _softmax_problem(oracle)
    ref = run(prob, alg, spec, T=25, seed=2, eval_every=5)
    monkeypatch.setattr(engine, "_VIEW_BYTES", view_bytes)
    r = _Run(prob, alg, spec, 25, 2, 5, None)
    assert r.row_views == (view_bytes > 0)
    r.step_until(10)
    owns = [d.base is None for _, d, *_ in r.done.values()]
    assert owns and all(owns) == (view_bytes == 0) and any(owns) == (view_bytes == 0)
    assert run(prob, alg, spec, T=25, seed=2, eval_every=5).digest() == ref.digest()
