"""Tests of the bound arithmetic itself: (T1), (T2), (T3), (T4) of theory/async_theorem.md."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persafl_np.bounds import (
    CONSTANT_SETS,
    TERM_NAMES,
    corollary_step_sizes,
    quadratic_ratio_limit,
    stationarity_bound,
    step_size_conditions,
)

pos = st.floats(1e-3, 1e3)
nonneg = st.one_of(st.just(0.0), st.floats(1e-4, 1e3))


def _max_steps(L, tau, Q):
    eta = 1.0 / (16 * Q * L)
    a = 1.0 / (24 * max(1, tau) * Q * L)
    return eta, a / eta


def test_terms_by_hand():
    # L=2, σ²=3, γ²=5, Δ=7, T=11, τ=2, Q=4, η=1/200, β=1/2 (a = 1/400), D4 constants.
    b = stationarity_bound(2, 3, 5, 7, 11, 2, 4, 1 / 200, 0.5)
    a = 1 / 400
    expected = {
        "init": 8 * 7 / (a * 4 * 11),
        "server_het": 24 * 2 * a * 4 * 5,
        "server_noise": 8 * 2 * a * 3,
        "drift_het": 128 * (1 / 200) ** 2 * 16 * 4 * 5,
        "drift_noise": 64 * (1 / 200) ** 2 * 4 * 4 * 3,
        "stale_het": 336 * a**2 * 4 * 16 * 4 * 5,
        "stale_noise": 144 * a**2 * 4 * 4 * 4 * 3,
    }
    for name in TERM_NAMES:
        assert getattr(b, name) == pytest.approx(expected[name], rel=1e-14), name
    assert b.total == pytest.approx(sum(expected.values()), rel=1e-14)
    assert b.floor == pytest.approx(b.total - expected["init"], rel=1e-14)
    assert b.valid  # η = 1/200 ≤ 1/128, a = 1/400 ≤ 1/192


@given(L=pos, s2=nonneg, g2=nonneg, d=nonneg, T=st.integers(1, 10**6), tau=st.integers(0, 50),
       Q=st.integers(1, 50), K=st.integers(1, 8), fe=st.floats(0.01, 1.0), fa=st.floats(0.01, 1.0))
def test_sharp_below_d4_and_independent_of_K(L, s2, g2, d, T, tau, Q, K, fe, fa):
    eta_max, beta_max = _max_steps(L, tau, Q)
    eta = fe * eta_max
    beta = fa * beta_max * eta_max / eta  # a = fa · a_max
    d4 = stationarity_bound(L, s2, g2, d, T, tau, Q, eta, beta, K)
    sharp = stationarity_bound(L, s2, g2, d, T, tau, Q, eta, beta, K, constants="sharp")
    assert d4.valid and sharp.valid
    for name in TERM_NAMES:
        assert getattr(sharp, name) <= getattr(d4, name) * (1 + 1e-12)
    assert d4.total == stationarity_bound(L, s2, g2, d, T, tau, Q, eta, beta, 1).total
    assert math.isfinite(d4.total) and d4.total >= 0


def test_sharp_constants_dominate_proof_corner():
    # eq. (P9) at the corner x = 1/16, y = z = 1/24, ρ = 2: the sharp set must cover it.
    x, y, z, rho = 1 / 16, 1 / 24, 1 / 24, 2
    kappa = 1 / (1 - 12 * z * z * (1 + 16 * x * x))
    g_coeff = 3 * y + 16 * (1 + 6 * y) * x * x + (1 + 6 * y) * (1 + 16 * x * x) * kappa * z * z * (
        6 + 192 * x * x
    )
    assert g_coeff < 0.25  # net coefficient aQ/2 − g_coeff·aQ ≥ aQ/4
    proof = (
        4,
        12,
        4,
        32 * rho * (1 + 6 * y),
        16 * (1 + 6 * y),
        4 * (1 + 6 * y) * (1 + 16 * x * x) * kappa * (6 + 96 * rho * x * x),
        4 * (1 + 6 * y) * (1 + 16 * x * x) * kappa * (2 + 48 * x * x),
    )
    for c_proof, c_sharp, c_d4 in zip(proof, CONSTANT_SETS["sharp"], CONSTANT_SETS["d4"],
                                      strict=True):
        assert c_proof <= c_sharp <= c_d4


def test_conditions_report_violations_and_margins():
    L, tau, Q = 1.0, 3, 5
    eta_max, beta_max = _max_steps(L, tau, Q)
    ok = step_size_conditions(L, tau, Q, eta_max, beta_max)
    assert ok.all_hold and ok.violated == ()
    assert ok.eta_margin == pytest.approx(0.0, abs=1e-12)
    half = step_size_conditions(L, tau, Q, eta_max / 2, beta_max)
    assert half.eta_margin == pytest.approx(0.5) and half.a_ratio == pytest.approx(0.5)
    bad_eta = step_size_conditions(L, tau, Q, 2 * eta_max, beta_max / 2)
    assert not bad_eta.eta_ok and bad_eta.a_ok and len(bad_eta.violated) == 1
    assert "eta" in bad_eta.violated[0]
    bad_a = step_size_conditions(L, tau, Q, eta_max, 1.01 * beta_max)
    assert bad_a.eta_ok and not bad_a.a_ok and bad_a.a_margin < 0
    assert "beta*eta" in bad_a.violated[0]
    b = stationarity_bound(L, 1, 1, 1, 10, tau, Q, eta_max, 1.01 * beta_max)
    assert not b.valid and b.conditions == bad_a
    # τ = 0 and τ = 1 share the cap 1/(24QL)
    caps = [step_size_conditions(L, t, Q, 1e-3, 1).a_max for t in (0, 1)]
    assert caps[0] == caps[1]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"L": 0.0}, "L"),
        ({"L": math.inf}, "L"),
        ({"sigma2": -1.0}, "sigma2"),
        ({"gamma2": math.nan}, "gamma2"),
        ({"delta_f": -0.1}, "delta_f"),
        ({"T": 0}, "T"),
        ({"T": 2.5}, "T"),
        ({"tau": -1}, "tau"),
        ({"Q": 0}, "Q"),
        ({"eta": 0.0}, "eta"),
        ({"beta": -1.0}, "beta"),
        ({"K": 0}, "K"),
        ({"constants": "paper"}, "constants"),
    ],
)
def test_bad_input_names_argument(kwargs, name):
    args = {"L": 1.0, "sigma2": 1.0, "gamma2": 1.0, "delta_f": 1.0, "T": 10, "tau": 1, "Q": 2,
            "eta": 1e-3, "beta": 1.0, "K": 1} | kwargs
    with pytest.raises(ValueError, match=name):
        stationarity_bound(**args)


def test_infinite_constants_give_vacuous_bound_without_nan():
    b = stationarity_bound(1.0, 0.0, math.inf, 1.0, 10, 0, 1, 1e-3, 1.0)
    assert b.total == math.inf and b.stale_het == 0.0 and b.server_noise == 0.0


@given(L=pos, s2=nonneg, g2=nonneg, d=st.floats(1e-3, 1e3), tau=st.integers(0, 20),
       Q=st.integers(1, 20), T=st.integers(1, 10**5))
def test_corollary_steps_satisfy_conditions_and_rate_dominates(L, s2, g2, d, tau, Q, T):
    c = corollary_step_sizes(T, L, s2, g2, d, tau, Q)
    b = stationarity_bound(L, s2, g2, d, T, tau, Q, c.eta, c.beta)
    assert c.beta == 1.0 and b.valid
    assert b.total <= c.rate * (1 + 1e-12)
    assert c.eta == pytest.approx(min(c.a0, c.a_star))


def test_corollary_rate_decreases_like_inverse_sqrt_T():
    L, s2, g2, d, tau, Q = 1.0, 1.0, 0.5, 10.0, 4, 5
    Ts = [10**k for k in range(2, 9)]
    totals = []
    for T in Ts:
        c = corollary_step_sizes(T, L, s2, g2, d, tau, Q)
        totals.append(stationarity_bound(L, s2, g2, d, T, tau, Q, c.eta, c.beta).total)
    assert all(math.isfinite(v) for v in totals)
    assert all(b < a for a, b in zip(totals, totals[1:], strict=False))
    # Once a = a* (horizon-limited), √T·bound = lim + O(1/√T), with
    # lim = 8√(LΔS/Q) + √(Δ/(LQS))·L(24Qγ² + 8σ²), S = Qγ² + σ² (init + server terms of (T1)).
    S = Q * g2 + s2
    lim = 8 * math.sqrt(L * d * S / Q) + math.sqrt(d / (L * Q * S)) * L * (24 * Q * g2 + 8 * s2)
    excess = [v * math.sqrt(T) - lim for v, T in zip(totals, Ts, strict=True)]
    assert all(e > 0 for e in excess)
    assert excess[-1] / excess[-2] == pytest.approx(10**-0.5, rel=0.02)
    assert excess[-1] < 0.1 * lim


def test_corollary_bad_input():
    with pytest.raises(ValueError, match="delta_f"):
        corollary_step_sizes(10, 1.0, 1.0, 1.0, 0.0, 1, 1)
    with pytest.raises(ValueError, match="sigma2"):
        corollary_step_sizes(10, 1.0, math.inf, 1.0, 1.0, 1, 1)


def test_quadratic_ratio_limit_matches_audit():
    # theory/brief_results.md (AUD-2): Q = 1, 2, 5, 20 at the maximal steps give .12766, .12964,
    # .13082, .13141.
    for Q, expected in [(1, 0.12766), (2, 0.12964), (5, 0.13082), (20, 0.13141)]:
        eta, beta = _max_steps(1.0, 0, Q)
        assert quadratic_ratio_limit(Q, eta, beta, 1.0) == pytest.approx(expected, abs=1e-5)
        assert quadratic_ratio_limit(Q, eta, beta, 1.0, "sharp") == pytest.approx(2 * expected,
                                                                                  abs=2e-5)
    with pytest.raises(ValueError, match="h"):
        quadratic_ratio_limit(1, 1.0, 3.0, 1.0)
