"""applicable_bounds: every theorem of theory/ for one instance, evaluated or with its reason."""

from __future__ import annotations

import numpy as np
import pytest

from persafl_np.algorithms import (
    Algorithm,
    ClientReweight,
    DelayAdaptive,
    fedasync,
    persafl,
    sync_average,
)
from persafl_np.bounds import applicable_bounds, martingale_bound, stationarity_bound
from persafl_np.bounds.check import problem_constants
from persafl_np.bounds.report import BoundInstance
from persafl_np.data import robust_family, shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.models.robust import RobustRegression
from persafl_np.personalization import MAML, Plain
from persafl_np.sim import EventDriven, JobTime, Problem, TheoremMode

NAMES = ("T1", "TB-1", "TA", "TA-5", "TB-4", "TC-4")


def _ls():
    d = shifted_least_squares(4, 2, 8, 3)
    return d, Problem.build(LeastSquares(), Plain(), d.dataset, w0=d.centers.mean(axis=0) + 1)


def _by_name(entries):
    assert tuple(e.name for e in entries) == NAMES
    return {e.name: e for e in entries}


def test_theorem_mode_config_gets_T1_TB_TA():
    e = _by_name(applicable_bounds("figures/bound_default.toml"))
    assert e["T1"].applies and e["TB-1"].applies and e["TA"].applies
    assert e["TB-1"].total < e["T1"].total  # sharp (T1) vs (TB-1) at tau = 4
    assert e["TA"].total == e["T1"].total
    for k in ("TA-5", "TB-4", "TC-4"):
        assert not e[k].applies and e[k].reason


def test_values_equal_the_bound_functions():
    d, prob = _ls()
    alg = Algorithm(persafl(0.2), Q=2, eta=0.01)
    e = _by_name(applicable_bounds(BoundInstance(prob, alg, TheoremMode(3), 400)))
    c = problem_constants(LeastSquares(), Plain(), d.dataset, prob.w0)
    args = (c.L, c.sigma2, c.gamma2, c.delta_f, 400, 3, 2, 0.01, 0.2, 1)
    assert e["T1"].total == stationarity_bound(*args, constants="sharp").total
    assert e["TB-1"].total == martingale_bound(*args, rho=1, window="independent",
                                               slots="independent").total
    assert set(e["T1"].terms) == set(e["TB-1"].terms)


def test_options_and_event_driven_reasons():
    _, prob = _ls()
    da = Algorithm(persafl(0.2), Q=1, eta=0.01, delay_adaptive=DelayAdaptive(2))
    e = _by_name(applicable_bounds(BoundInstance(prob, da, TheoremMode(4), 500)))
    assert e["TB-4"].applies and not e["T1"].applies and "rescaled" in e["T1"].reason
    rw = Algorithm(persafl(0.2), Q=1, eta=0.01, reweight=ClientReweight((0.25,) * 4))
    assert _by_name(applicable_bounds(BoundInstance(prob, rw, TheoremMode(4), 500)))["TA-5"].applies
    online = Algorithm(persafl(0.2), Q=1, eta=0.01, reweight=ClientReweight())
    r = _by_name(applicable_bounds(BoundInstance(prob, online, TheoremMode(4), 500)))["TA-5"]
    assert not r.applies and "online" in r.reason
    ev = EventDriven(JobTime("exponential"), speeds=(1.0, 1.0, 2.0, 6.0))
    e = _by_name(applicable_bounds(BoundInstance(prob, Algorithm(persafl(0.2), Q=1, eta=0.01),
                                                 ev, 500)))
    assert not any(x.applies for x in e.values())
    assert "C5_p holds with p = [0.1, 0.1, 0.2, 0.6]" in e["TA"].reason
    assert "C4 fails" in e["TA"].reason
    fa = Algorithm(fedasync(0.5), Q=1, eta=0.01)
    e = _by_name(applicable_bounds(BoundInstance(prob, fa, TheoremMode(2), 100)))
    assert "fedasync" in e["T1"].reason


def test_sync_maml_on_l2_model_gets_only_TC4():
    ds = robust_family(4, 3, 20, 0)
    m = RobustRegression(l2=0.1)
    L = max(m.smoothness(c.X_train, c.y_train) for c in ds.clients)
    prob = Problem.build(m, MAML(0.5 / L), ds, w0=np.full(3, 3.0))
    alg = Algorithm(sync_average(1.0, 4), Q=1, eta=5e-4, synchronous=True)
    e = _by_name(applicable_bounds(BoundInstance(prob, alg, TheoremMode(), 400)))
    assert e["TC-4"].applies and e["TC-4"].total > 0
    assert [k for k, v in e.items() if v.applies] == ["TC-4"]
    with pytest.raises(ValueError):
        applicable_bounds(42)
