"""Memory estimate before allocation (persafl_np/memory.py)."""

from __future__ import annotations

import time

import pytest

from persafl_np.config import SimConfig, simulate
from persafl_np.memory import check_fits, estimate


def _cfg(**data):
    return SimConfig.from_dict({"T": 20, "data": {"name": "fedprox_synthetic", **data},
                                "model": {"name": "softmax"}})


def test_huge_run_refused_before_allocating_with_the_estimate():
    cfg = _cfg(n_clients=10**9)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"needs about .* TB .*data\.n_clients=1000000000"):
        simulate(cfg)
    assert time.perf_counter() - t0 < 1.0  # refused up front, nothing was generated


def test_estimate_scales_and_small_runs_pass():
    small, big = estimate(_cfg(n_clients=10)), estimate(_cfg(n_clients=1000))
    assert big["data"] == pytest.approx(100 * small["data"], rel=1e-9)
    check_fits(_cfg(n_clients=10), available=10**9)
    with pytest.raises(ValueError, match="only 1 MB is available"):
        check_fits(_cfg(n_clients=1000), available=10**6)
    # a data set passed in is not counted again (the engine's concatenated copy of its
    # training rows, ``layout``, still is: per-client arrays are not stored back to back)
    est = estimate(_cfg(n_clients=1000))
    assert est["layout"] > 0.9 * est["data"] - 1000 * 1024
    check_fits(_cfg(n_clients=1000), available=est["total"] - est["data"], data_built=True)
    with pytest.raises(ValueError, match="layout"):
        check_fits(_cfg(n_clients=1000), available=est["total"] - est["data"] - 1,
                   data_built=True)


def test_shared_design_counted_once_and_largest_T_does_not_overflow():
    sls = SimConfig.from_dict({"data": {"name": "shifted_least_squares", "n_clients": 10**5,
                                        "n_samples": 50, "n_features": 10}})
    e = estimate(sls)
    assert e["data"] < 10**5 * (50 * 8 + 2048)  # targets + objects, the design once
    big = {"T": 2**63 - 1, "arrivals": {"mode": "event", "dropout": 0.5},
           "algorithm": {"name": "fedbuff", "K": 2**62}}
    e = estimate(SimConfig.from_dict(big))
    assert e["trace"] > 2**125  # exact integers, no float overflow
    with pytest.raises(ValueError, match=r"needs about ~10\^\d+ TB.*T=9223372036854775807"):
        check_fits(SimConfig.from_dict(big), available=10**12)
    with pytest.raises(ValueError, match=r"T must be an integer >= 1 \(and < 2\^63\)"):
        SimConfig.from_dict({"T": 2**63})


def test_estimate_parts_matches_a_measured_run():
    """The memory model against a real run (benchmarks/bench_scale.py at 5 000 clients,
    20 000 arrivals, in a fresh process): the peak RSS growth is the estimate within ±35 %."""
    import subprocess
    import sys
    from pathlib import Path

    code = r"""
import numpy as np
from persafl_np.algorithms import Algorithm, persafl
from persafl_np.memory import estimate_parts
from persafl_np.models import SoftmaxRegression
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, run
def rss(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
n, m, d, T = 5000, 40, 61, 20000
prob = Problem.build(SoftmaxRegression(10), Plain(), [(np.ones((1, d)), np.zeros(1, int))])
run(prob, Algorithm(persafl(0.01), Q=1, eta=0.01), EventDriven(), T=5)  # warm the imports
r0 = rss()
rng = np.random.default_rng(0)
X = rng.normal(size=(n * m, d))
y = rng.integers(0, 10, n * m)
prob = Problem.build(SoftmaxRegression(10), Plain(),
                     [(X[i * m:(i + 1) * m], y[i * m:(i + 1) * m]) for i in range(n)], seed=0)
run(prob, Algorithm(persafl(0.01), Q=1, eta=0.01, batch_size=10),
    EventDriven(job_time=JobTime("pareto", shape=1.5)), T=T, seed=0, eval_every=10**9)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent's image
peak = rss("VmHWM")
est = estimate_parts(n_clients=n, rows=n * m, test_rows=0, d=d, p=610, in_flight=n,
                     versions=2, arrivals=T, batch_size=10, cohort_size=128)
print(peak - r0, est["total"])
"""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    measured, est = (int(x) for x in out.stdout.split())
    assert 0.65 * est <= measured <= 1.35 * est, (measured, est)
