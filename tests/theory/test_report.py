"""bound_report (the text behind ``persafl bound``) and the arrival-assumption classifier."""

from __future__ import annotations

import re

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.bounds.assumptions import arrival_assumptions
from persafl_np.bounds.check import problem_constants
from persafl_np.bounds.report import BoundInstance, bound_report
from persafl_np.config import SimConfig
from persafl_np.data import shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, TheoremMode

TOML = """
seed = 3
T = 60
[data]
name = "shifted_least_squares"
n_clients = 4
n_features = 2
n_samples = 6
[oracle]
name = "moreau"
lam = 2.0
noise_sigma = 0.3
[algorithm]
name = "fedbuff"
Q = 2
eta = 0.01
eta_g = 0.3
K = 2
[arrivals]
mode = "theorem"
tau = 1
"""


def _num(text, label):
    return float(re.search(rf"{label}\s*=\s*([-+0-9.e]+)", text).group(1))


def test_report_from_toml_without_and_with_run(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    text = bound_report(path, run=False)
    assert "variant ME" in text and "C5 holds" in text and "measured" not in text
    assert "K = 2" in text and "tau = 1" in text
    for name in ("init", "server_het", "stale_noise", "total"):
        assert re.search(rf"^\s+{name}\s", text, re.M)
    ran = bound_report(path, run=True, n_seeds=2)
    measured, ratio = _num(ran, r"\|\|\^2"), _num(ran, "measured/bound")
    total = float(re.search(r"^\s+total\s+(\S+)", ran, re.M).group(1))
    assert ratio == pytest.approx(measured / total, rel=1e-4)
    assert 0 < ratio < 1


def test_report_flags_violations_and_broken_c5():
    p = shifted_least_squares(2, 2, 6, 0)
    prob = Problem.build(LeastSquares(), Plain(), p.dataset, w0=p.w_star + 1.0)
    L = problem_constants(LeastSquares(), Plain(), p.dataset, prob.w0).L
    alg = Algorithm(persafl(1.0), Q=1, eta=1.0 / L)  # far above both caps
    event = EventDriven(job_time=JobTime("constant"), speeds=(1.0, 3.0))
    text = bound_report(BoundInstance(prob, alg, event, T=30), run=True)
    assert text.count("VIOLATED") == 2 and "C5 FAILS" in text and "unequal speeds" in text
    assert "NOT a guaranteed bound" in text
    with pytest.raises(ValueError, match="run"):
        bound_report(BoundInstance(prob, alg, event, T=30), run=False)


def test_report_rejects_uncovered_rules_and_bad_config():
    cfg = SimConfig.from_dict({"T": 5, "algorithm": {"name": "fedasync"}})
    with pytest.raises(ValueError, match="algorithm"):
        bound_report(cfg, run=False)
    with pytest.raises(ValueError, match="config"):
        bound_report(42)
    with pytest.raises(ValueError, match="n_seeds"):
        bound_report(SimConfig(), n_seeds=0)


@pytest.mark.parametrize(
    ("spec", "c5", "c4"),
    [
        (TheoremMode(3), True, True),
        (EventDriven(job_time=JobTime("exponential")), True, False),
        (EventDriven(job_time=JobTime("exponential"), speeds=(1.0, 1.0, 1.0)), True, False),
        (EventDriven(job_time=JobTime("constant")), False, None),
        (EventDriven(job_time=JobTime("exponential"), speeds=(1.0, 2.0, 1.0)), False, False),
        (EventDriven(job_time=JobTime("exponential"), concurrency=2), False, False),
        (EventDriven(job_time=JobTime("exponential"), staleness="drop", tau_max=3), False, True),
        (EventDriven(job_time=JobTime("exponential"), staleness="block", tau_max=3), False, True),
        (EventDriven(job_time=JobTime("exponential"), dropout=0.1), False, False),
    ],
)
def test_arrival_assumptions(spec, c5, c4):
    a = arrival_assumptions(spec, 3)
    assert a.c5 is c5 and a.c4 is c4 and a.reasons


def test_exponential_equal_rates_gives_uniform_next_client():
    # The C5 claim for memoryless job times, checked on the simulator's trace: the arriving
    # client is uniform (chi-square) and independent of the previous one.
    from persafl_np.sim import run

    p = shifted_least_squares(4, 1, 3, 0)
    prob = Problem.build(LeastSquares(), Plain(), p.dataset, w0=np.zeros(1))
    res = run(prob, Algorithm(persafl(0.1), Q=1, eta=0.01),
              EventDriven(job_time=JobTime("exponential")), T=4000, seed=1, eval_every=4000)
    c = np.asarray(res.trace.client, dtype=int)
    pairs = np.zeros((4, 4))
    np.add.at(pairs, (c[:-1], c[1:]), 1)
    expected = pairs.sum() / 16
    chi2 = float(((pairs - expected) ** 2 / expected).sum())
    assert chi2 < 37.7  # 99.9% quantile of chi-square with 15 degrees of freedom


def test_readme_config_satisfies_the_conditions():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "figures" / "bound_default.toml"
    text = bound_report(path, run=False)
    assert "VIOLATED" not in text and "C5 holds; C4 holds" in text
    assert re.search(r"eta/max = 0\.99", text) and re.search(r"a/max = 0\.99", text)


def test_check_bound_runs_on_training_rows_with_the_same_measured_values():
    """check_bound drops the test rows for its runs (they only cost evaluation time): the
    measured left-hand side is bit-identical to a run on the full problem, for every stride."""
    from persafl_np.bounds.check import average_stationarity, check_bound
    from persafl_np.bounds.report import instance_from_config
    from persafl_np.sim import run as sim_run

    cfg = SimConfig.from_dict({
        "seed": 1, "T": 24, "model": {"name": "softmax"}, "oracle": {"name": "maml", "alpha": 0.01},
        "data": {"name": "fedprox_synthetic", "n_clients": 4},
        "algorithm": {"name": "persafl", "Q": 2, "eta": 0.01, "batch_size": 4},
        "arrivals": {"mode": "theorem", "tau": 2}})
    inst = instance_from_config(cfg, n_seeds=2)
    assert any(int(c[2].shape[0]) > 0 for c in inst.problem.clients)  # there are test rows
    for stride in (1, 5):
        chk = check_bound(inst.problem, inst.algorithm, inst.arrivals, T=inst.T,
                          seeds=inst.seeds, stride=stride)
        full = [average_stationarity(sim_run(inst.problem, inst.algorithm, inst.arrivals,
                                             T=inst.T, seed=s, eval_every=stride).history,
                                     inst.T, stride=stride) for s in inst.seeds]
        assert chk.measured == tuple(full)


def test_check_bound_in_forked_workers_measures_the_same_bits():
    from persafl_np.bounds.check import check_bound
    from persafl_np.bounds.report import instance_from_config

    cfg = SimConfig.from_dict({
        "seed": 2, "T": 20, "model": {"name": "softmax"}, "oracle": {"name": "maml", "alpha": 0.01},
        "data": {"name": "fedprox_synthetic", "n_clients": 4},
        "algorithm": {"name": "persafl", "Q": 2, "eta": 0.01, "batch_size": 4},
        "arrivals": {"mode": "event"}})
    inst = instance_from_config(cfg, n_seeds=3)
    ticks = []
    kw = dict(T=inst.T, seeds=inst.seeds, stride=4)
    one = check_bound(inst.problem, inst.algorithm, inst.arrivals, **kw)
    two = check_bound(inst.problem, inst.algorithm, inst.arrivals, workers=2,
                      progress=lambda d, t: ticks.append((d, t)), **kw)
    assert (two.measured, two.weighted, two.shares, two.max_staleness) == (
        one.measured, one.weighted, one.shares, one.max_staleness)
    assert two.bound == one.bound
    assert sorted(ticks) == [(20, 60), (40, 60), (60, 60)]
    with pytest.raises(ValueError, match="workers"):
        check_bound(inst.problem, inst.algorithm, inst.arrivals, workers=0, **kw)


def test_check_bound_workers_interrupted_or_failing_stop_instead_of_hanging(monkeypatch):
    """A Ctrl-C that reaches the forked workers (the terminal sends it to the whole process
    group) or an error in a worker ends check_bound with that exception, at once."""
    import persafl_np.sim as sim
    from persafl_np.bounds.check import check_bound

    p = shifted_least_squares(2, 2, 6, 0)
    prob = Problem.build(LeastSquares(), Plain(), p.dataset, w0=p.w_star + 1.0)
    alg = Algorithm(persafl(1.0), Q=1, eta=0.01)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    def failing(*a, **k):
        raise ValueError("boom")

    for fake, exc in ((interrupted, KeyboardInterrupt), (failing, ValueError)):
        monkeypatch.setattr(sim, "run", fake)
        with pytest.raises(exc):
            check_bound(prob, alg, TheoremMode(tau=1), T=10, seeds=(0, 1, 2), workers=2)
