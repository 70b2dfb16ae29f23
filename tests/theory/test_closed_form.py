"""(T4) of theory/async_theorem.md checked through the simulator, exactly at finite T.

F = (L/2)(w − c)², σ = γ = 0, τ = 0: the server map is w ← (1 − h)w with
h = β(1 − (1 − ηL)^Q), so (1/T)Σ_{t<T}‖∇F(w^t)‖² = L²e₀²(1 − (1 − h)^{2T})/(T h(2 − h)) and
measured/bound = ratio_∞ · (1 − (1 − h)^{2T}), ratio_∞ = (T4).
"""

from __future__ import annotations

import pytest

from persafl_np.algorithms import Algorithm, persafl
from persafl_np.bounds import quadratic_ratio_limit
from persafl_np.bounds.check import check_bound
from persafl_np.data import shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.personalization import Plain
from persafl_np.sim import Problem, TheoremMode


@pytest.mark.parametrize(("Q", "fe", "fa", "T"), [(1, 1.0, 1.0, 300), (5, 1.0, 1.0, 300),
                                                    (20, 1.0, 1.0, 500), (3, 0.4, 0.7, 400)])
def test_finite_T_ratio_matches_closed_form(Q, fe, fa, T):
    p = shifted_least_squares(2, 1, 5, 4, spread=0.0)  # identical clients: γ² = 0
    L = p.L
    eta, a = fe / (16 * Q * L), fa / (24 * Q * L)
    beta = a / eta
    prob = Problem.build(LeastSquares(), Plain(), p.dataset, w0=p.w_star + 7.0)
    chk = check_bound(prob, Algorithm(persafl(beta), Q=Q, eta=eta), TheoremMode(0), T=T)
    h = beta * (1 - (1 - eta * L) ** Q)
    expected = quadratic_ratio_limit(Q, eta, beta, L) * (1 - (1 - h) ** (2 * T))
    assert chk.ratio == pytest.approx(expected, rel=1e-9)
    assert chk.sharp_ratio == pytest.approx(2 * expected, rel=1e-9)
    assert chk.ratio < 0.1316  # the supremum over Q of (T4) at the maximal steps
