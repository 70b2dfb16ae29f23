"""Exact worst cases of the delayed / local-step / federated recursion by performance estimation
(theory/tightness.md §2). Needs the optional extra ``pep`` (PEPit + cvxpy).

:func:`pep_worst_case` builds, with PEPit, the performance-estimation problem (PEP) of recursion
(T0) of theory/async_theorem.md without noise (σ = 0):

    y_0 = w^{t−d_t},  y_{q+1} = y_q − η ∇F_{i_t}(y_q) (q < Q),  w^{t+1} = w^t − a Σ_q ∇F_{i_t}(y_q)

over n clients whose F_i are L-smooth (not necessarily convex) and every delay pattern
d_t ≤ min(t, τ) (enumerated, or the ones given). For n > 1 the client of each step is uniform and
independent (C5): the PEP holds the whole tree of the n^T client sequences and the metric is the
expectation. It maximizes

    (1/T) Σ_{t<T} E‖∇F(w^t)‖²      (the left-hand side of (T1))

subject to one of three relaxations of F(w^0) − F* ≤ Δ (``initial``):

* "lower" (default, (R1')): F(w^0) − F(x) + ‖∇F(x)‖²/(2L) ≤ Δ at every point x where F is
  evaluated — it holds for every L-smooth F with inf F = F*, since F(x) − F* ≥ ‖∇F(x)‖²/(2L);
* "all" ((R1)): F(w^0) − F(w^t) ≤ Δ for t = 1..T on every path (F* ≤ F(w^t));
* "last": F(w^0) − F(w^T) ≤ Δ only (the classical GD analyses);

and, for n > 1, (1/n) Σ_i ‖∇F_i(x) − ∇F(x)‖² ≤ γ² at every point x where the F_i are evaluated
(relaxation (R2) of (C3), which asks it for all x). Both relaxations enlarge the class, so the
PEP value is ≥ the worst case over the class of (T1): PEP ≤ bound certifies the bound there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from persafl_np.arguments import check_int

__all__ = ["PEPResult", "delay_patterns", "pep_worst_case", "pep_value"]

#: Most delay patterns :func:`delay_patterns` enumerates (one SDP each).
MAX_ENUMERATED = 100_000

_EXTRA = ("pep_worst_case needs the optional extra 'pep' (PEPit and cvxpy): "
          "pip install 'persafl_np[pep]'")


def _pepit():
    try:
        import cvxpy  # noqa: F401
        from PEPit import PEP
        from PEPit.functions import SmoothFunction
    except ImportError as exc:
        raise ImportError(_EXTRA) from exc
    return PEP, SmoothFunction


def delay_patterns(T: int, tau: int) -> list[tuple[int, ...]]:
    """Every delay pattern (d_0, …, d_{T−1}) with d_t ≤ min(t, τ): Π_t (min(t, τ) + 1) of them."""
    T = check_int(T, "T", 1)
    tau = check_int(tau, "tau", 0)
    count = math.prod(min(t, tau) + 1 for t in range(T))
    if count > MAX_ENUMERATED:
        raise ValueError(f"T={T}, tau={tau} has {count} delay patterns (> {MAX_ENUMERATED}, one "
                         "SDP each): pass patterns='max' or an explicit list")
    return [tuple(p) for p in itertools.product(*[range(min(t, tau) + 1) for t in range(T)])]


def pep_value(T: int, tau: int, delays: Sequence[int], *, L: float = 1.0, Q: int = 1,
              n: int = 1, eta: float | None = None, a: float | None = None,
              gamma2: float = 0.0, delta_f: float = 1.0, solver: str | None = None,
              metric: str = "average", initial: str = "lower",
              return_points: bool = False) -> float | tuple[float, dict]:
    """The PEP value for one delay pattern (module docstring). Defaults: steps at the (T2)
    caps, η = 1/(16QL), a = 1/(24 max(1, τ) QL).

    metric: "average" ((1/T)Σ_{t<T} E‖∇F(w^t)‖², the left-hand side of (T1)) or "min"
    (min_{t≤T} ‖∇F(w^t)‖², n = 1 only: the metric of the classical GD analyses);
    initial: "lower" ((R1'), module docstring), "all" ((R1)) or "last" (only t = T).
    ``return_points``: also the primal worst instance (server points, gradients, values along
    the first path, as NumPy arrays) for checks."""
    import numpy as np

    PEP, SmoothFunction = _pepit()
    T, tau, Q, n = (check_int(T, "T", 1), check_int(tau, "tau", 0), check_int(Q, "Q", 1),
                    check_int(n, "n", 1))
    if len(delays) != T or any(not 0 <= int(d) <= min(t, tau) for t, d in enumerate(delays)):
        raise ValueError(f"delays must have length T={T} with 0 <= d_t <= min(t, tau={tau}), "
                         f"got {tuple(delays)!r}")
    eta = 1.0 / (16.0 * Q * L) if eta is None else float(eta)
    a = 1.0 / (24.0 * max(1, tau) * Q * L) if a is None else float(a)
    if metric not in ("average", "min") or (metric == "min" and n > 1):
        raise ValueError(f"metric must be 'average' or (n = 1 only) 'min', got {metric!r}")
    if initial not in ("lower", "all", "last"):
        raise ValueError(f"initial must be 'lower', 'all' or 'last', got {initial!r}")
    if n > 1 and not (math.isfinite(gamma2) and gamma2 >= 0):
        raise ValueError(f"gamma2 must be a finite number >= 0 for n > 1, got {gamma2!r}")
    problem = PEP()
    fs = [problem.declare_function(SmoothFunction, L=L) for _ in range(n)]
    x0 = problem.set_initial_point()
    cache: dict = {}

    def grads(x, key):
        # ∇F_i at x for every client (memoized by the node key), plus ∇F and F there
        if key not in cache:
            out = [f.oracle(x) for f in fs]
            g = [o[0] for o in out]
            gbar = g[0] if n == 1 else (1.0 / n) * _sum(g)
            fbar = out[0][1] if n == 1 else (1.0 / n) * _sum([o[1] for o in out])
            if n > 1:
                problem.add_constraint((1.0 / n) * _sum([(gi - gbar) ** 2 for gi in g])
                                       <= gamma2)
            cache[key] = (g, gbar, fbar)
            evaluated.append((gbar, fbar))
        return cache[key]

    evaluated: list = []
    _, _, F0 = grads(x0, ())
    metric_terms = []
    # paths: tuple of clients so far; w[path] = list of server points along the path
    frontier = {(): [x0]}
    weight = {(): 1.0}
    for t in range(T):
        new_frontier, new_weight = {}, {}
        for path, ws in frontier.items():
            _, gbar, _ = grads(ws[t], path)
            metric_terms.append(weight[path] * gbar ** 2)
            u = ws[t - int(delays[t])]
            ukey = path[: t - int(delays[t])]
            for i in range(n):
                y, V = u, None
                for q in range(Q):
                    gi = grads(u, ukey)[0][i] if q == 0 else fs[i].gradient(y)
                    V = gi if V is None else V + gi
                    if q < Q - 1:
                        y = y - eta * gi
                        if n > 1:
                            # (R2) at local points too: evaluate every client there
                            grads(y, ("loc", path, i, q + 1))
                w_next = ws[t] - a * V
                p2 = path + (i,)
                new_frontier[p2] = ws + [w_next]
                new_weight[p2] = weight[path] / n
        frontier, weight = new_frontier, new_weight
        for path, ws in frontier.items():
            _, gT, Ft = grads(ws[t + 1], path)
            if initial == "all" or (initial == "last" and t == T - 1):
                problem.add_constraint(F0 - Ft <= delta_f)
    if initial == "lower":
        # (R1'): F(x) − F* ≥ ‖∇F(x)‖²/(2L) at every point where F is known (n = 1: every
        # point the client evaluates, local ones too, through the oracle's memo)
        if n == 1:
            for x in list(fs[0].list_of_points):
                evaluated.append((x[1], x[2]))
        for gx, fx in evaluated:
            problem.add_constraint(F0 - fx + (0.5 / L) * gx ** 2 <= delta_f)
    if metric == "average":
        problem.set_performance_metric((1.0 / T) * _sum(metric_terms))
    else:
        for term in metric_terms + [gT ** 2]:
            problem.set_performance_metric(term)
    kw = {"solver": solver or _default_solver()}
    val = float(problem.solve(verbose=0, **kw))
    if not return_points:
        return val
    path = next(iter(frontier))
    ws = frontier[path]
    pts = {"w": np.array([w.eval() for w in ws]),
           "grad": np.array([cache[path[:t]][1].eval() for t in range(T)]),
           "F": np.array([cache[path[:t]][2].eval() for t in range(T + 1)]),
           "value": val}
    return val, pts


def _sum(items):
    out = items[0]
    for x in items[1:]:
        out = out + x
    return out


def _default_solver() -> str:
    import cvxpy as cp

    inst = cp.installed_solvers()
    for s in ("CLARABEL", "SCS"):
        if s in inst:
            return s
    raise ImportError("no SDP solver for cvxpy (Clarabel or SCS); " + _EXTRA)


@dataclass(frozen=True)
class PEPResult:
    """Worst case over the delay patterns tried.

    worst: the largest PEP value (exact worst case of (1/T)Σ E‖∇F(w^t)‖² under (R1), (R2));
    pattern: the delay pattern attaining it; values: (pattern, value) of every pattern solved;
    bound_d4, bound_sharp: (T1) at the same constants (σ = 0); ratio_d4, ratio_sharp:
    bound / worst; setting: the parameters.
    """

    worst: float
    pattern: tuple[int, ...]
    values: tuple[tuple[tuple[int, ...], float], ...]
    bound_d4: float
    bound_sharp: float
    setting: dict

    @property
    def ratio_d4(self) -> float:
        return self.bound_d4 / self.worst if self.worst > 0 else math.inf

    @property
    def ratio_sharp(self) -> float:
        return self.bound_sharp / self.worst if self.worst > 0 else math.inf

    @property
    def max_delay_is_worst(self) -> bool:
        """Whether always taking the largest delay attains the worst case (to 1e-6)."""
        mx = tuple(min(t, self.setting["tau"]) for t in range(self.setting["T"]))
        d = dict(self.values)
        return mx in d and d[mx] >= self.worst * (1 - 1e-6)


def pep_worst_case(T: int, tau: int, *, L: float = 1.0, Q: int = 1, n: int = 1,
                   eta: float | None = None, a: float | None = None, gamma2: float = 0.0,
                   delta_f: float = 1.0, patterns: str | Sequence[Sequence[int]] = "all",
                   initial: str = "lower", solver: str | None = None) -> PEPResult:
    """Exact worst case of the recursion over delay patterns (module docstring).

    patterns: "all" (every d_t ≤ min(t, τ): Π_t(min(t,τ)+1) SDPs), "max" (d_t = min(t, τ)
    only) or an explicit list. Steps default to the (T2) caps; ``initial``: the relaxation of
    Δ_F (:func:`pep_value`).
    """
    from persafl_np.bounds.theorem import stationarity_bound

    T, tau = check_int(T, "T", 1), check_int(tau, "tau", 0)
    if isinstance(patterns, str):
        if patterns == "all":
            pats = delay_patterns(T, tau)
        elif patterns == "max":
            pats = [tuple(min(t, tau) for t in range(T))]
        else:
            raise ValueError(f"patterns must be 'all', 'max' or a list, got {patterns!r}")
    else:
        pats = [tuple(int(v) for v in p) for p in patterns]
        if not pats:
            raise ValueError("patterns must not be empty")
    eta_v = 1.0 / (16.0 * Q * L) if eta is None else float(eta)
    a_v = 1.0 / (24.0 * max(1, tau) * Q * L) if a is None else float(a)
    vals = []
    for p in pats:
        vals.append((p, float(pep_value(T, tau, p, L=L, Q=Q, n=n, eta=eta_v, a=a_v,
                                        gamma2=gamma2, delta_f=delta_f, solver=solver,
                                        initial=initial))))
    best = max(vals, key=lambda pv: pv[1])
    g2 = gamma2 if n > 1 else 0.0
    args = (L, 0.0, g2, delta_f, T, tau, Q, eta_v, a_v / eta_v)
    return PEPResult(
        worst=best[1], pattern=best[0], values=tuple(vals),
        bound_d4=stationarity_bound(*args).total,
        bound_sharp=stationarity_bound(*args, constants="sharp").total,
        setting={"T": T, "tau": tau, "L": L, "Q": Q, "n": n, "eta": eta_v, "a": a_v,
                 "gamma2": g2, "delta_f": delta_f, "initial": initial})
