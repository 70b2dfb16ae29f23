"""FedAsync's proximal local objective (LOC-PROX) through Algorithm, the engine and the config."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from persafl_np import SimConfig, simulate
from persafl_np.algorithms import Algorithm, fedasync, persafl
from persafl_np.sim import EventDriven, JobTime, TheoremMode, run

SMALL = {"T": 12, "eval_every": 4, "data": {"n_clients": 4, "n_features": 3, "n_samples": 10},
         "arrivals": {"mode": "event", "job_time": {"law": "exponential"}}}


def _cfg(**alg) -> SimConfig:
    return SimConfig.from_dict({**SMALL, "algorithm": {"name": "fedasync", "Q": 3, **alg}})


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, True, "0.5"])
def test_algorithm_prox_is_validated(bad):
    with pytest.raises(ValueError, match="prox"):
        Algorithm(fedasync(0.5), prox=bad)


@pytest.mark.parametrize("bad", [-0.5, math.inf, True, "1"])
def test_config_prox_is_validated_naming_the_field(bad):
    with pytest.raises(ValueError, match=r"algorithm\.prox"):
        _cfg(prox=bad)


def test_config_prox_only_for_fedasync():
    with pytest.raises(ValueError, match=r"algorithm\.prox applies to algorithm\.name='fedasync'"):
        SimConfig.from_dict({**SMALL, "algorithm": {"name": "persafl", "prox": 0.1}})
    # a key that does not apply is an error even at its default (issue 11), and absent from
    # the resolved config of the algorithms it does not apply to
    with pytest.raises(ValueError, match=r"algorithm\.prox applies to algorithm\.name='fedasync'"):
        SimConfig.from_dict({**SMALL, "algorithm": {"name": "persafl", "prox": 0.0}})
    assert "prox" not in SimConfig.from_dict({**SMALL, "algorithm": {"name": "persafl"}}).to_toml()


def test_config_prox_round_trips_and_reaches_the_algorithm():
    cfg = _cfg(prox=0.25)
    assert cfg.algorithm.prox == 0.25 and cfg.algorithm.build().prox == 0.25
    assert SimConfig.from_dict(tomllib.loads(cfg.to_toml())) == cfg


def test_prox_zero_is_bit_identical_and_prox_changes_the_run():
    base = simulate(_cfg())
    assert simulate(_cfg(prox=0.0)).digest() == base.digest()
    other = simulate(_cfg(prox=2.0))
    # same schedule (prox touches no random stream), different iterates
    np.testing.assert_array_equal(other.trace.client, base.trace.client)
    np.testing.assert_array_equal(other.trace.time, base.trace.time)
    assert not np.array_equal(other.params, base.params)


def test_engine_fedasync_step_uses_the_prox_recursion(make_problem):
    """One arrival, τ = 0, α = 1: w¹ = u − Δ with Δ from (LOC-PROX) on client i's full batch."""
    prob = make_problem(n=3, m=8, d=2)
    Q, eta, rho = 4, 0.05, 3.0
    res = run(prob, Algorithm(fedasync(1.0), Q=Q, eta=eta, prox=rho), TheoremMode(tau=0), T=1)
    i = int(res.trace.client[0])
    X, y = prob.clients[i][0], prob.clients[i][1]
    m = X.shape[0]
    A, c = X.T @ X / m, X.T @ y / m
    u = prob.w0
    yq = u.copy()
    for _ in range(Q):
        yq = yq - eta * ((A @ yq - c) + rho * (yq - u))
    np.testing.assert_allclose(res.params, yq, rtol=1e-12, atol=1e-14)


def test_prox_with_resume_is_bit_identical(make_problem, tmp_path):
    prob = make_problem(n=4)
    alg = Algorithm(fedasync(0.6), Q=2, eta=0.05, batch_size=4, prox=1.0)
    spec = EventDriven(job_time=JobTime("lognormal", sigma=1.0))
    full = run(prob, alg, spec, T=30, seed=5)
    run(prob, alg, spec, T=30, seed=5, checkpoint_dir=tmp_path, checkpoint_every=7, stop_after=14)
    resumed = run(prob, alg, spec, T=30, seed=5, checkpoint_dir=tmp_path, checkpoint_every=7,
                  resume=True)
    assert resumed.digest() == full.digest()


def test_prox_applies_to_any_rule_at_library_level(make_problem):
    """The library accepts ρ with any rule (the config restricts it to FedAsync, B4)."""
    prob = make_problem(n=3)
    a = run(prob, Algorithm(persafl(0.5), Q=3, eta=0.05), TheoremMode(tau=1), T=10, seed=1)
    b = run(prob, Algorithm(persafl(0.5), Q=3, eta=0.05, prox=5.0), TheoremMode(tau=1), T=10,
            seed=1)
    assert np.linalg.norm(b.trace.update_norm) < np.linalg.norm(a.trace.update_norm)
