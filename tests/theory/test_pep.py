"""Exact worst cases by performance estimation (persafl_np.bounds.pep, theory/tightness.md §2).

Skipped when the optional extra ``pep`` (PEPit, cvxpy) is not installed.

* τ = 0: the PEP of the min-metric matches PEPit's published nonconvex gradient-descent example
  (4/(3N) at step 1/L, Abbaszadehpeivasti–de Klerk–Zamani 2021); the (T1) metric equals the
  descent-lemma value Δ/(aT(1 − aL/2)) (tight), and a 1-D quadratic run reproduces it;
* the issue's τ = 1, T = 6 worst case over all 32 delay patterns, 4.089;
* PEP worst case ≤ (T1) (D4 and sharp) on every tested setting, n = 1 and 2, Q = 1 and 2;
* the primal worst instance satisfies the recursion and reproduces the value;
* a clear ImportError naming the extra when PEPit is missing.
"""

from __future__ import annotations

import builtins
import warnings

import numpy as np
import pytest

pytest.importorskip("PEPit")
pytest.importorskip("cvxpy")

from persafl_np.bounds.families import QuadraticFamily  # noqa: E402
from persafl_np.bounds.pep import delay_patterns, pep_value, pep_worst_case  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
REL = 2e-5  # solver tolerance (Clarabel)


@pytest.mark.parametrize("N,h", [(5, 1.0), (4, 0.5), (3, 1.5)])
def test_tau0_min_metric_matches_pepit_gradient_descent(N, h):
    from PEPit.examples.nonconvex_optimization import wc_gradient_descent

    v = pep_value(N, 0, (0,) * N, a=h, metric="min", initial="last")
    ref, theory = wc_gradient_descent(L=1, gamma=h, n=N, verbose=-1)
    assert v == pytest.approx(ref, rel=1e-4)
    if h == 1.0:
        assert v == pytest.approx(theory, rel=REL)  # 4/(3N)


@pytest.mark.parametrize("T,a", [(6, 1 / 24), (8, 0.5)])
def test_tau0_average_metric_is_the_descent_lemma_and_a_quadratic_attains_it(T, a):
    v = pep_value(T, 0, (0,) * T, a=a, initial="all")
    assert v == pytest.approx(1.0 / (a * T * (1 - a / 2)), rel=REL)
    # the worst instance is F = w²/2: GD contracts by (1 − a), F(w⁰) − F(w^T) = Δ = 1
    w0 = np.sqrt(2.0 / (1.0 - (1.0 - a) ** (2 * T)))
    inst = {"family": "quadratic", "n": 1, "d": 1, "Q": 1, "tau": 0, "T": T, "K": 1,
            "lam": [1.0], "w0_minus_cbar": [w0], "centers": [[0.0]], "sigma": 0.0,
            "eta": a, "beta": 1.0, "pattern": [[0]]}
    assert QuadraticFamily().measure([inst])[0].measured == pytest.approx(v, rel=REL)


@pytest.mark.parametrize("T,tau", [(5, 0), (10, 0), (4, 1)])
def test_lower_relaxation_worst_case_is_the_quadratic(T, tau):
    """Under (R1') (F(x) − F* ≥ ‖∇F(x)‖²/(2L)), the PEP value at τ = 0 is attained by
    F = w²/2 with F(w⁰) − F* = Δ = 1: the relaxation is exact there, and the closed form of
    the falsifier's quadratic family reproduces the PEP value. For τ > 0 the quadratic is a
    lower bound (the falsifier's family) and the PEP value an upper bound."""
    d = tuple(min(t, tau) for t in range(T))
    a = 1.0 / (24 * max(1, tau))
    v = pep_value(T, tau, d)
    assert v < pep_value(T, tau, d, initial="all")  # (R1') is tighter than (R1)
    inst = {"family": "quadratic", "n": 1, "d": 1, "Q": 1, "tau": tau, "T": T, "K": 1,
            "lam": [1.0], "w0_minus_cbar": [np.sqrt(2.0)], "centers": [[0.0]], "sigma": 0.0,
            "eta": 1.0 / 16, "beta": a * 16, "pattern": [[x] for x in d]}
    q = QuadraticFamily().measure([inst])[0].measured
    if tau == 0:
        assert q == pytest.approx(v, rel=REL)
    else:
        assert q <= v * (1 + REL)


def test_pep_worst_instance_run_by_the_simulator():
    """τ = 0, Q = 2: the PEP value (R1') is attained by w²/2, run through the simulator."""
    from persafl_np.bounds.check import average_stationarity
    from persafl_np.bounds.families import quadratic_problem
    from persafl_np.sim import run

    T, Q = 5, 2
    v = pep_value(T, 0, (0,) * T, Q=Q)
    inst = {"family": "quadratic", "n": 1, "d": 1, "Q": Q, "tau": 0, "T": T, "K": 1,
            "lam": [1.0], "w0_minus_cbar": [np.sqrt(2.0)], "centers": [[0.0]], "sigma": 0.0,
            "eta": 1.0 / (16 * Q), "beta": (1.0 / (24 * Q)) * 16 * Q, "pattern": [[0]]}
    prob, alg, arr = quadratic_problem(inst)
    res = run(prob, alg, arr, T=T, seed=0, eval_every=1)
    assert average_stationarity(res.history, T) == pytest.approx(v, rel=REL)


def test_issue_table_tau1_T6_all_patterns():
    """The issue's numbers use (R1) (F(w⁰) − F(w^t) ≤ Δ)."""
    res = pep_worst_case(6, 1, initial="all")
    assert len(res.values) == 32 == len(delay_patterns(6, 1))
    assert res.worst == pytest.approx(4.089, abs=2e-3)
    assert res.bound_sharp == pytest.approx(16.0) and res.bound_d4 == pytest.approx(32.0)
    assert res.ratio_sharp == pytest.approx(3.91, abs=0.01)
    assert res.worst <= res.bound_sharp


@pytest.mark.parametrize("T,tau,Q,n", [(5, 2, 1, 1), (4, 1, 2, 1), (3, 2, 2, 1), (3, 1, 1, 2)])
def test_pep_worst_case_below_bound(T, tau, Q, n):
    res = pep_worst_case(T, tau, Q=Q, n=n, gamma2=0.5 if n > 1 else 0.0,
                         patterns="all" if n == 1 else "max")
    assert 0 < res.worst <= res.bound_sharp <= res.bound_d4
    # every pattern's value is a valid lower bound on the worst case and ≤ worst
    assert all(v <= res.worst * (1 + 1e-9) for _, v in res.values)


def test_heterogeneity_raises_the_worst_case():
    a = pep_value(3, 1, (0, 1, 1), n=2, gamma2=0.0)
    b = pep_value(3, 1, (0, 1, 1), n=2, gamma2=1.0)
    c = pep_value(3, 1, (0, 1, 1), n=1)
    # n = 2 with γ² = 0 equals n = 1 to ~1e-8; γ² = 1 adds ~1.7e-3 here
    assert a == pytest.approx(c, rel=1e-6) and b - a > 5e-4


def test_worst_instance_satisfies_the_recursion():
    T, tau = 6, 2
    d = (0, 1, 2, 2, 2, 2)
    a = 1.0 / 48
    v, pts = pep_value(T, tau, d, return_points=True)
    w, g, F = pts["w"], pts["grad"], pts["F"]
    for t in range(T):  # Q = 1: w^{t+1} = w^t − a ∇F(w^{t−d_t})
        assert np.allclose(w[t + 1], w[t] - a * g[t - d[t]], atol=1e-5)
    assert np.mean(np.sum(g * g, axis=1)) == pytest.approx(v, rel=1e-3)
    assert F[0] - F[1:].min() <= 1.0 + 1e-5


def test_patterns_argument_and_errors():
    assert len(delay_patterns(4, 2)) == 1 * 2 * 3 * 3
    with pytest.raises(ValueError, match="delays"):
        pep_value(3, 1, (0, 2, 0))
    with pytest.raises(ValueError, match="patterns"):
        pep_worst_case(3, 1, patterns="some")
    with pytest.raises(ValueError, match="metric"):
        pep_value(3, 0, (0, 0, 0), n=2, metric="min")


def test_missing_extra_names_it(monkeypatch):
    real = builtins.__import__

    def fake(name, *args, **kw):
        if name.startswith("PEPit"):
            raise ImportError("No module named 'PEPit'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    with warnings.catch_warnings(), pytest.raises(ImportError, match=r"extra 'pep'"):
        pep_value(2, 0, (0, 0))


def test_too_many_patterns_is_refused_not_enumerated():
    with pytest.raises(ValueError, match="delay patterns"):
        delay_patterns(40, 4)


def test_beyond_the_caps_the_sharp_formula_breaks_between_half_and_point_six():
    """τ = 2, T = 10: cap a ≤ 1/48, yet 4Δ/(aT) (sharp (T1) at σ = γ = 0) holds up to a ≈ 0.5
    (theory/tightness.md §3, item 5): the PEP detects the violation beyond."""
    d = tuple(min(t, 2) for t in range(10))
    assert pep_value(10, 2, d, a=0.5, initial="all") < 4 / (0.5 * 10)
    assert pep_value(10, 2, d, a=0.6, initial="all") > 1.5 * 4 / (0.6 * 10)
