"""When C5 fails the bound fails: the restart rule with unequal client speeds.

theory/assumptions.md §5. Two clients with constant job times and speeds (1, 4), each restarting
on return (B2 as written): the fast client makes 80% of the updates, so the method minimises
Σ_i p_i F_i with p = (0.2, 0.8), not F. Starting at that weighted optimum c_p, ‖∇F(w^t)‖² stays
near ‖A(c_p − c̄)‖² > 0 while every γ-term of (T1) shrinks with the steps: once the steps are
small enough the measured value exceeds the bound. The schedule is deterministic, so the
observed maximum staleness is a valid τ (C4 holds); only C5 is broken. The same steps in
theorem mode (C5 holds) stay far below the bound.
"""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.bounds.check import check_bound, problem_constants
from persafl_np.data import shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import EventDriven, JobTime, Problem, TheoremMode

SPEEDS = (1.0, 4.0)


def _setup():
    p = shifted_least_squares(2, 2, 8, 3, condition_number=1.0, spread=2.0)
    shares = np.asarray(SPEEDS) / sum(SPEEDS)
    c_p = shares @ p.centers
    prob = Problem.build(LeastSquares(), Plain(), p.dataset, w0=c_p)
    return p, prob


@pytest.mark.parametrize(("scale", "min_ratio"), [(0.3, 1.5), (0.1, 4.5)])
def test_restart_rule_with_unequal_speeds_exceeds_bound(scale, min_ratio):
    p, prob = _setup()
    c = problem_constants(LeastSquares(), Plain(), p.dataset, prob.w0)
    Q, tau = 1, 4  # τ = 4: four fast updates land during one slow job
    eta = scale / (16 * Q * c.L)
    a = scale / (24 * tau * Q * c.L)
    T = int(40 / (a * Q))
    alg = Algorithm(persafl(a / eta), Q=Q, eta=eta)
    event = EventDriven(job_time=JobTime("constant", mean=1.0), speeds=SPEEDS)
    chk = check_bound(prob, alg, event, T=T, tau=tau)
    assert chk.max_staleness <= tau  # C4 holds on this deterministic schedule
    assert chk.bound.valid
    assert chk.shares == pytest.approx([0.2, 0.8], abs=1e-3)
    assert chk.ratio > min_ratio  # measured ‖∇F‖² above the (D4) bound: a violation
    # ... while the weighted objective Σ p_i F_i is driven to stationarity.
    assert chk.weighted[0] < 1e-3 * chk.measured_mean
    # Control: the same steps with C5 (theorem mode) respect the bound by a wide margin.
    ctl = check_bound(prob, alg, TheoremMode(tau, "max"), T=T, seeds=range(2))
    assert ctl.ratio < 0.1
