"""Every bound of theory/ for one configuration: its evaluated terms, or why it does not apply.

:func:`applicable_bounds` takes a ``SimConfig``, a TOML path, or a
:class:`~persafl_np.bounds.report.BoundInstance` and returns one :class:`BoundEntry` per theorem:

* (T1)   theory/async_theorem.md            — C1–C5, C4 with an a-priori τ;
* (TB-1) theory/staleness_linear.md         — same scope, staleness linear in τ;
* (TA)   theory/arrival_bias.md             — C5_p (fixed arrival law p), C4; F_p and F;
* (TA-5) theory/arrival_bias.md             — the 1/(n p_i)-reweighted step with p fixed;
* (TB-4) theory/staleness_linear.md         — the delay-adaptive step under condition (I);
* (TC-4) theory/maml_generalized_smooth.md  — synchronous full-participation GD on MAML, no B.

The decision rules are those of the "which setting satisfies what" tables
(theory/assumptions.md §7). Nothing here runs the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BoundEntry", "applicable_bounds"]


@dataclass(frozen=True)
class BoundEntry:
    """One theorem for one instance. ``applies``: its assumptions are met and its step
    conditions hold; then ``terms``/``total`` are the evaluated bound. Otherwise ``reason``
    says which assumption or condition fails (``terms`` may still hold the arithmetic)."""

    name: str
    source: str
    applies: bool
    reason: str
    total: float = math.nan
    terms: dict[str, float] = field(default_factory=dict)
    result: Any = None


def _entry(name, source, result, *, reason_ok, extra_fail=None):
    total = float(getattr(result, "total", getattr(result, "bound", math.nan)))
    terms = dict(getattr(result, "terms", {}) or {})
    cond = getattr(result, "conditions", None)
    if extra_fail:
        return BoundEntry(name, source, False, extra_fail, total, terms, result)
    if cond is not None and not cond.all_hold:
        return BoundEntry(name, source, False, "step-size condition fails: "
                          + "; ".join(cond.violated), total, terms, result)
    if hasattr(result, "valid") and not result.valid:
        return BoundEntry(name, source, False, "step-size condition fails", total, terms, result)
    return BoundEntry(name, source, True, reason_ok, total, terms, result)


def _no(name: str, source: str, reason: str) -> BoundEntry:
    return BoundEntry(name, source, False, reason)


def _c5p_shares(arrivals: Any, n: int) -> tuple[float, ...] | None:
    """p of (TA-0) when the event-driven spec satisfies C5_p (exponential, all in flight,
    zero latencies, no dropout, staleness ``none``), else None."""
    from persafl_np.bounds.shares import shares_from_rates
    from persafl_np.sim import EventDriven, JobTime

    if not isinstance(arrivals, EventDriven):
        return None
    law = arrivals.job_time
    zero = all(getattr(x, "law", None) == "constant" and x.mean == 0.0 and x.minimum == 0.0
               for x in (arrivals.download, arrivals.upload))
    if not (isinstance(law, JobTime) and law.law == "exponential" and law.minimum == 0.0
            and zero and arrivals.concurrency in (None, n) and arrivals.dropout == 0.0
            and arrivals.staleness == "none" and arrivals.availability_period is None):
        return None
    return tuple(shares_from_rates(arrivals.speeds or (1.0,) * n).tolist())


def applicable_bounds(
    config_or_instance: Any, *, constants: str = "sharp"
) -> tuple[BoundEntry, ...]:
    """Evaluate every bound of theory/ on one instance (see the module docstring).

    constants: the (T1)/(TA) constant set ("d4", "sharp" or "net").
    """
    from persafl_np.bounds.arrival import reweighted_bound
    from persafl_np.bounds.assumptions import arrival_assumptions
    from persafl_np.bounds.check import problem_constants
    from persafl_np.bounds.generalized_smooth import sync_gd_bound
    from persafl_np.bounds.report import BoundInstance, instance_from_config
    from persafl_np.bounds.staleness_linear import delay_adaptive_bound, martingale_bound
    from persafl_np.bounds.theorem import stationarity_bound
    from persafl_np.data import ClientData, FederatedDataset
    from persafl_np.sim import TheoremMode

    inst = (config_or_instance if isinstance(config_or_instance, BoundInstance)
            else instance_from_config(config_or_instance, 1))
    prob, alg, arr, T = inst.problem, inst.algorithm, inst.arrivals, inst.T
    n = prob.n_clients
    rule, params = alg.rule, dict(alg.rule.params)
    T1, TB, TA, TA5, TB4, TC = ("T1", "TB-1", "TA", "TA-5", "TB-4", "TC-4")
    s_t1, s_tb, s_ta = ("theory/async_theorem.md", "theory/staleness_linear.md",
                        "theory/arrival_bias.md")
    s_tc = "theory/maml_generalized_smooth.md"
    out: list[BoundEntry] = []

    # ---- TC-4: synchronous full-participation GD on the MAML objective, no B
    tc_reason = None
    oracle = prob.oracle
    if not alg.synchronous or rule.name != "sync_average":
        tc_reason = "needs synchronous sync_average rounds (the asynchronous case is not proved)"
    elif int(params.get("clients_per_round", 0)) != n or alg.Q != 1 or alg.batch_size is not None:
        tc_reason = "needs full participation (clients_per_round = n), Q = 1, full batches"
    elif not hasattr(oracle, "smoothness_l0_l1") or getattr(oracle, "noise_sigma2", None) is None:
        tc_reason = "needs an exact MAML oracle"
    elif oracle.noise_sigma2() > 0 or getattr(oracle, "hessian", "exact") != "exact":
        tc_reason = "needs an exact (noise-free) MAML oracle"
    if tc_reason is None:
        Ls = [float(prob.model.smoothness(X, y)) for X, y, _, _ in prob.clients]
        rhos = [float(prob.model.hessian_lipschitz(X, y)) for X, y, _, _ in prob.clients]
        try:
            L0, L1 = oracle.smoothness_l0_l1(max(Ls), max(rhos))
        except ValueError as e:
            tc_reason = str(e)
    if tc_reason is None:
        F0 = float(sum(oracle.value(prob.model, prob.w0, X, y) for X, y, _, _ in prob.clients)
                   / n)
        a = float(params["beta"]) * alg.eta
        gd = sync_gd_bound(L0, L1, F0, n, T, a)
        out.append(_entry(TC, s_tc, gd, reason_ok="exact MAML, full-participation GD, F_i >= 0"))
    else:
        out.append(_no(TC, s_tc, tc_reason))
    if alg.synchronous:
        why = "synchronous rounds are not the asynchronous recursion (T0)"
        return tuple([_no(x, s, why) for x, s in ((T1, s_t1), (TB, s_tb), (TA, s_ta),
                                                  (TA5, s_ta), (TB4, s_tb))] + out)

    # ---- the asynchronous theorems: rule, constants, arrivals
    if rule.name == "persafl":
        beta, K = float(params["beta"]), 1
    elif rule.name == "fedbuff" and getattr(params["weight"], "kind", "") == "constant":
        beta, K = float(params["eta_g"]), int(params["K"])
    else:
        why = f"rule {rule.name!r} (with its weights) is not the recursion (T0b)"
        return tuple([_no(x, s, why) for x, s in ((T1, s_t1), (TB, s_tb), (TA, s_ta),
                                                  (TA5, s_ta), (TB4, s_tb))] + out)
    try:
        ds = FederatedDataset(
            clients=tuple(ClientData(X, y, Xt, yt) for X, y, Xt, yt in prob.clients),
            n_features=int(prob.clients[0][0].shape[1]), n_classes=prob.n_classes,
            name="applicable_bounds")
        c = problem_constants(prob.model, prob.oracle, ds, prob.w0, batch_size=alg.batch_size)
    except ValueError as e:
        why = f"no problem constants: {e}"
        return tuple([_no(x, s, why) for x, s in ((T1, s_t1), (TB, s_tb), (TA, s_ta),
                                                  (TA5, s_ta), (TB4, s_tb))] + out)
    sigma2 = c.sigma2 if math.isfinite(c.sigma2) else math.inf
    theorem = isinstance(arr, TheoremMode)
    assum = arrival_assumptions(arr, n)
    if theorem:
        tau, arrival_fail = int(arr.tau), None
    else:
        arrival_fail = "; ".join(assum.reasons)
        tau = None
    scaled = alg.reweight is not None or alg.delay_adaptive is not None
    args = (c.L, sigma2, c.gamma2, c.delta_f, T)
    plain_fail = ("the server step is rescaled (reweight / delay_adaptive): not (T0b)"
                  if scaled else None)
    if tau is None:
        fail = arrival_fail if arrival_fail else "no a-priori staleness bound (C4)"
        p_ta = _c5p_shares(arr, n)
        ta_fail = (f"C5_p holds with p = {[round(x, 4) for x in p_ta]} (theory/arrival_bias.md "
                   "(TA-0)), but C4 fails: exponential staleness is unbounded (§5)"
                   if p_ta is not None else fail + "; (TA) needs C4 and C5_p")
        out[:0] = [_no(T1, s_t1, fail), _no(TB, s_tb, fail), _no(TA, s_ta, ta_fail)]
    else:
        steps = (tau, alg.Q, alg.eta, beta, K)
        out.insert(0, _entry(T1, s_t1, stationarity_bound(*args, *steps, constants=constants),
                             reason_ok="theorem mode: C4, C5", extra_fail=plain_fail))
        out.insert(1, _entry(TB, s_tb, martingale_bound(*args, *steps, rho=1, window="independent",
                                                        slots="independent"),
                             reason_ok="theorem mode: staleness independent of the past (mu = 1),"
                                       " independent slots (1/K)", extra_fail=plain_fail))
        out.insert(2, BoundEntry(TA, s_ta, out[0].applies and not scaled,
                                 "theorem mode: p = uniform, chi2 = 0: (TA) equals (T1)"
                                 if not scaled else plain_fail, out[0].total, out[0].terms))
    # ---- TA-5: reweighted step with fixed p equal to the arrival law
    rw = alg.reweight
    if rw is None:
        out.insert(3, _no(TA5, s_ta, "algorithm has no reweight option"))
    elif rw.online:
        out.insert(3, _no(TA5, s_ta, "p estimated online: not covered (theory/arrival_bias.md "
                                     "§4.3)"))
    elif tau is None or alg.delay_adaptive is not None:
        out.insert(3, _no(TA5, s_ta, arrival_fail or "delay_adaptive also on"))
    elif any(abs(p - 1.0 / n) > 1e-12 for p in rw.shares):
        out.insert(3, _no(TA5, s_ta, "reweight shares differ from the arrival law (uniform in "
                                     "theorem mode)"))
    else:
        rb = reweighted_bound(*args[:4], rw.shares, T, tau, alg.Q, alg.eta, beta, K,
                              constants=constants)
        out.insert(3, _entry(TA5, s_ta, rb.bound, reason_ok="C5_p with the given p, C4"))
    # ---- TB-4: delay-adaptive
    da = alg.delay_adaptive
    if da is None:
        out.insert(4, _no(TB4, s_tb, "algorithm has no delay_adaptive option"))
    elif not theorem:
        out.insert(4, _no(TB4, s_tb, "condition (I) fails: event-driven staleness depends on the "
                                     "client (theory/staleness_linear.md §4)"))
    elif K != 1 or rw is not None:
        out.insert(4, _no(TB4, s_tb, "(TB-4) is proved for K = 1 without reweighting"))
    else:
        db = delay_adaptive_bound(*args, max(1, tau) + 1, int(da.threshold), alg.Q, alg.eta,
                                  beta, rho=1)
        out.insert(4, _entry(TB4, s_tb, db, reason_ok="theorem mode: (I) holds, each step in "
                                                      "at most tau windows"))
    return tuple(out)
