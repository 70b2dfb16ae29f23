"""Monotonicity of the measured floor in τ, and step sizes outside (T2) reported as such."""

from __future__ import annotations

import numpy as np

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.bounds import step_size_conditions
from persafl_np.bounds.check import check_bound, problem_constants
from persafl_np.data import shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.personalization import AdditiveNoise, Plain
from persafl_np.sim import Problem, TheoremMode, run


def test_floor_nondecreasing_in_tau_at_fixed_steps():
    # Fixed η, β; τ_t = min(τ, t) ("max" policy) so all τ share the client and noise streams
    # (common random numbers): compare paired floors (mean ‖∇F‖² after a burn-in) per seed.
    p = shifted_least_squares(6, 3, 8, 1, spread=1.5)
    oracle = AdditiveNoise(Plain(), 1.0)
    prob = Problem.build(LeastSquares(), oracle, p.dataset, w0=p.w_star.copy())
    L = problem_constants(LeastSquares(), oracle, p.dataset, prob.w0).L
    Q, eta, beta, T, burn = 2, 1 / (32 * L), 0.5, 3000, 1000
    taus = (0, 8, 16)
    floors = np.array([
        [run(prob, Algorithm(persafl(beta), Q=Q, eta=eta), TheoremMode(tau, "max"), T=T,
             seed=s).history.grad_norm2[burn:].mean() for s in range(4)]
        for tau in taus
    ])
    for lo, hi in zip(floors, floors[1:], strict=False):
        diff = hi - lo
        se = diff.std(ddof=1) / np.sqrt(diff.size)
        assert diff.mean() >= -2 * se
    d = floors[-1] - floors[0]
    assert d.mean() > 3 * d.std(ddof=1) / np.sqrt(d.size)  # τ = 16 is strictly worse than 0


def test_run_outside_conditions_is_reported():
    p = shifted_least_squares(3, 2, 5, 0)
    prob = Problem.build(LeastSquares(), Plain(), p.dataset, w0=p.w_star + 1.0)
    L, Q, tau = p.L, 3, 2
    eta = 2.0 / (16 * Q * L)  # twice the η cap
    beta = (0.5 / (24 * tau * Q * L)) / eta
    chk = check_bound(prob, Algorithm(persafl(beta), Q=Q, eta=eta), TheoremMode(tau), T=20)
    assert not chk.bound.valid
    assert chk.bound.conditions.violated and "eta" in chk.bound.conditions.violated[0]
    assert chk.bound.conditions == step_size_conditions(L, tau, Q, eta, beta)
    # a too large server step alone
    beta_bad = 1.5 / (24 * tau * Q * L) / (1 / (16 * Q * L))
    cond = step_size_conditions(L, tau, Q, 1 / (16 * Q * L), beta_bad)
    assert cond.eta_ok and not cond.a_ok and cond.a_ratio > 1.49
