"""Property tests of (T1), theory/async_theorem.md, against real simulator runs in theorem mode.

Random shifted-least-squares and robust-regression instances, AL / MAML / ME, random τ, Q, K,
σ, staleness policy and step sizes drawn inside (T2). The seed-averaged measured
(1/T)Σ_t‖∇F(w^t)‖² must lie below the bound, with the D4 constants and with the sharp ones.
Set PERSAFL_BOUND_LOG=path to append one JSON line per example (for the ratio report).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persafl_np.algorithms import Algorithm, fedbuff, persafl
from persafl_np.bounds.check import check_bound, problem_constants
from persafl_np.data import robust_family, shifted_least_squares
from persafl_np.models import LeastSquares
from persafl_np.models.robust import RobustRegression
from persafl_np.personalization import MAML, AdditiveNoise, MoreauEnvelope, Plain
from persafl_np.sim import Problem, TheoremMode

CI = os.environ.get("CI", "").lower() == "true"


def _log(kind: str, **row) -> None:
    path = os.environ.get("PERSAFL_BOUND_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"test": kind, **row}) + "\n")


def _oracle(variant: str, L: float, sigma: float, convex: bool):
    if variant == "AL":
        base = Plain()
    elif variant == "MAML":
        base = MAML(0.5 / L)
    else:
        # λ > L keeps the envelope smooth for the nonconvex model; Nesterov only when convex.
        base = MoreauEnvelope(2.5 * L, inner="nesterov" if convex else "gd")
    return AdditiveNoise(base, sigma) if sigma > 0 else base


def _run_case(model, dataset, variant, L_model, w0, *, tau, Q, K, sigma, fe, fa, policy, T,
              seeds, convex, kind):
    oracle = _oracle(variant, L_model, sigma, convex)
    prob = Problem.build(model, oracle, dataset, w0=w0)
    c = problem_constants(model, oracle, dataset, prob.w0)
    eta = fe / (16 * Q * c.L)
    a = fa / (24 * max(1, tau) * Q * c.L)
    rule = persafl(a / eta) if K == 1 else fedbuff(a / eta, K)
    alg = Algorithm(rule, Q=Q, eta=eta)
    chk = check_bound(prob, alg, TheoremMode(tau, policy), T=T, seeds=seeds, constants=c)
    assert chk.bound.valid and chk.sharp.valid
    assert math.isfinite(chk.bound.total)
    _log(kind, variant=variant, tau=tau, Q=Q, K=K, sigma=sigma, fe=fe, fa=fa, policy=policy,
         T=T, measured=chk.measured_mean, bound=chk.bound.total, sharp=chk.sharp.total,
         ratio=chk.ratio, sharp_ratio=chk.sharp_ratio)
    # The bound is on an expectation; the seed mean carries noise, but the worst ratio known
    # under C5 is 0.1316 (D4) / 0.263 (sharp), so a violation here is a real finding.
    assert chk.measured_mean <= chk.sharp.total, (chk.measured, chk.sharp.terms)
    assert chk.measured_mean <= chk.bound.total
    return chk


common = dict(
    variant=st.sampled_from(["AL", "MAML", "ME"]),
    tau=st.integers(0, 4),
    Q=st.integers(1, 4),
    K=st.sampled_from([1, 1, 2, 3]),
    sigma=st.sampled_from([0.0, 0.3, 1.5]),
    fe=st.floats(0.2, 1.0),
    fa=st.floats(0.2, 1.0),
    policy=st.sampled_from(["uniform", "max"]),
)


# w0_scale > 0 keeps Δ_F > 0: with Δ_F = γ² = σ² = 0 the bound is exactly 0 while the measured
# ‖∇F(c̄)‖² is a rounding error (~1e-32) — a float artefact, not a finding.
@given(seed=st.integers(0, 2**16), n=st.integers(2, 5), d=st.integers(1, 3),
       spread=st.floats(0.0, 2.0), w0_scale=st.floats(0.1, 5.0), **common)
def test_bound_holds_shifted_least_squares(seed, n, d, spread, w0_scale, variant, tau, Q, K,
                                           sigma, fe, fa, policy):
    p = shifted_least_squares(n, d, 2 * d + 1, seed, spread=spread)
    w0 = p.w_star + w0_scale * np.random.default_rng(seed).normal(size=d)
    T = 40 if variant == "ME" else 100
    _run_case(LeastSquares(), p.dataset, variant, p.L, w0, tau=tau, Q=Q, K=K, sigma=sigma,
              fe=fe, fa=fa, policy=policy, T=T, seeds=range(3), convex=True, kind="ls")


@given(seed=st.integers(0, 2**16), n=st.integers(2, 4), d=st.integers(1, 3),
       shift=st.floats(0.0, 3.0), w0_scale=st.floats(0.0, 2.0), **common)
def test_bound_holds_robust_regression(seed, n, d, shift, w0_scale, variant, tau, Q, K, sigma,
                                       fe, fa, policy):
    ds = robust_family(n, d, 12, seed, shift=shift)
    model = RobustRegression()
    L = max(model.smoothness(c.X_train, c.y_train) for c in ds.clients)
    w0 = w0_scale * np.random.default_rng(seed).normal(size=d)
    T = 30 if variant == "ME" else 80
    _run_case(model, ds, variant, L, w0, tau=tau, Q=Q, K=K, sigma=sigma, fe=fe, fa=fa,
              policy=policy, T=T, seeds=range(3), convex=False, kind="robust")


@pytest.mark.slow
@settings(max_examples=6 if CI else 40)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 10), d=st.integers(1, 5),
       spread=st.floats(0.0, 3.0), w0_scale=st.floats(0.1, 10.0),
       variant=st.sampled_from(["AL", "MAML"]), tau=st.integers(0, 10),
       Q=st.integers(1, 10), K=st.integers(1, 5), sigma=st.sampled_from([0.0, 0.5, 3.0]),
       fe=st.floats(0.5, 1.0), fa=st.floats(0.5, 1.0), policy=st.sampled_from(["uniform", "max"]))
def test_bound_holds_larger_sweep(seed, n, d, spread, w0_scale, variant, tau, Q, K, sigma, fe,
                                  fa, policy):
    p = shifted_least_squares(n, d, 2 * d, seed, spread=spread)
    w0 = p.w_star + w0_scale * np.random.default_rng(seed).normal(size=d)
    _run_case(LeastSquares(), p.dataset, variant, p.L, w0, tau=tau, Q=Q, K=K, sigma=sigma,
              fe=fe, fa=fa, policy=policy, T=400, seeds=range(4), convex=True, kind="sweep")


def test_worst_case_instance_from_the_audit():
    # theory/brief_results.md (AUD-2): 1-D, no noise/heterogeneity, Q = 20, τ = 0, steps at the
    # (T2) maxima:
    # ratio → 0.1314 (D4) as T grows, the largest known under C5.
    p = shifted_least_squares(3, 1, 4, 0, spread=0.0)
    w0 = p.w_star + 50.0
    chk = _run_case(LeastSquares(), p.dataset, "AL", p.L, w0, tau=0, Q=20, K=1, sigma=0.0,
                    fe=1.0, fa=1.0, policy="max", T=2000, seeds=[0], convex=True, kind="audit")
    assert chk.ratio == pytest.approx(0.13141, abs=2e-5)
