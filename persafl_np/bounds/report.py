"""Plain-text report for ``persafl bound CONFIG.toml [--run]``: constants, the step-size
conditions (T2), the seven terms of (T1) and, with ``run=True``, measured/bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persafl_np.bounds.assumptions import arrival_assumptions
from persafl_np.bounds.check import BoundCheck, check_bound
from persafl_np.bounds.theorem import TERM_NAMES

__all__ = ["BoundInstance", "bound_report", "instance_from_config"]


@dataclass(frozen=True)
class BoundInstance:
    """What to check: a simulator problem, algorithm, arrival spec, horizon and seeds."""

    problem: Any
    algorithm: Any
    arrivals: Any
    T: int
    seeds: tuple[int, ...] = (0,)
    name: str = "instance"


def instance_from_config(config: Any, n_seeds: int = 4) -> BoundInstance:
    """Build the problem exactly as ``persafl_np.simulate`` does (data and w⁰ from
    ``config.seed``); the runs use seeds ``config.seed + k``, k < n_seeds, on that problem."""
    from persafl_np.config import SimConfig, load_config
    from persafl_np.sim import Problem

    if isinstance(config, (str, Path)):
        config = load_config(config)
    if not isinstance(config, SimConfig):
        raise ValueError(
            f"config must be a SimConfig or a TOML path, got {type(config).__name__}"
        )
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"n_seeds must be an integer >= 1, got {n_seeds!r}")
    data = config.data.build(config.seed)
    model = config.model.build(getattr(data, "n_classes", None))
    problem = Problem.build(model, config.oracle.build(), data, seed=config.seed)
    return BoundInstance(
        problem=problem,
        algorithm=config.algorithm.build(),
        arrivals=config.arrivals.build(problem.n_clients),
        T=config.T,
        seeds=tuple(config.seed + k for k in range(n_seeds)),
        name=f"{config.data.name} / {config.model.name} / {config.oracle.name} / "
             f"{config.algorithm.name} / {config.arrivals.mode}",
    )


def _fmt(x: float) -> str:
    return f"{x:.6g}" if math.isfinite(x) else str(x)


def _format(inst: BoundInstance, chk: BoundCheck, run: bool) -> str:
    c, b, s = chk.constants, chk.bound, chk.sharp
    cond = b.conditions
    assum = arrival_assumptions(inst.arrivals, inst.problem.n_clients)
    lines = [
        "Bound check: theory/async_theorem.md (T1)",
        f"instance   : {inst.name}  (n = {inst.problem.n_clients}, variant {c.variant})",
        f"constants  : {'exact' if c.exact else 'bounds (L, gamma2, Delta_F upper; F* lower)'}",
        f"  L_F = {_fmt(c.L)}   F* = {_fmt(c.F_star)}   F(w0) = {_fmt(c.F0)}   "
        f"Delta_F = {_fmt(c.delta_f)}",
        f"  gamma2 = {_fmt(c.gamma2)}   sigma2 = {_fmt(c.sigma2)}",
        f"  {c.note}",
        f"steps      : Q = {b.Q}  eta = {_fmt(b.eta)}  beta = {_fmt(b.beta)}  "
        f"a = beta*eta = {_fmt(b.a)}  K = {b.K}  T = {b.T}  tau = {b.tau}",
        "conditions (T2):",
        f"  eta <= 1/(16QL) = {_fmt(cond.eta_max)} : "
        f"{'ok' if cond.eta_ok else 'VIOLATED'} (eta/max = {cond.eta_ratio:.3g})",
        f"  a <= 1/(24 max(1,tau)QL) = {_fmt(cond.a_max)} : "
        f"{'ok' if cond.a_ok else 'VIOLATED'} (a/max = {cond.a_ratio:.3g})",
        f"arrivals   : C5 {'holds' if assum.c5 else 'FAILS'}; C4 "
        f"{ {True: 'holds', False: 'FAILS', None: 'observed only'}[assum.c4] }",
    ]
    lines += [f"  - {r}" for r in assum.reasons]
    lines.append(f"bound terms  {'D4 constants':>14}  {'sharp':>12}")
    for name in TERM_NAMES:
        lines.append(f"  {name:<12}{_fmt(getattr(b, name)):>14}  {_fmt(getattr(s, name)):>12}")
    lines.append(f"  {'total':<12}{_fmt(b.total):>14}  {_fmt(s.total):>12}")
    if not (cond.all_hold and assum.c5 and assum.c4 is not False):
        lines.append("  NOTE: an assumption or condition fails: the total is NOT a guaranteed "
                     "bound")
    if run:
        se = chk.measured_stderr
        lines += [
            f"measured   : (1/T) sum_t ||grad F(w^t)||^2 = {_fmt(chk.measured_mean)}"
            + (f" +- {_fmt(se)} (s.e.)" if math.isfinite(se) else "")
            + f" over seeds {list(inst.seeds)}",
            f"ratio      : measured/bound = {_fmt(chk.ratio)} (D4), {_fmt(chk.sharp_ratio)} "
            f"(sharp)",
            f"weighted   : (1/T) sum_t ||sum_i p_i grad F_i(w^t)||^2 = "
            f"{_fmt(sum(chk.weighted) / len(chk.weighted))}",
            f"shares p_i : {[round(p, 4) for p in chk.shares]}  "
            f"(max staleness seen {chk.max_staleness})",
        ]
    return "\n".join(lines)


def bound_report(config_or_instance: Any, run: bool = False, *, n_seeds: int = 4) -> str:
    """The report as a string. ``config_or_instance``: a SimConfig, a TOML path or a
    :class:`BoundInstance`. Without ``run``, event-driven arrivals need a staleness control
    (``tau_max``) to give τ; with ``run`` the observed maximum is used."""
    inst = (config_or_instance if isinstance(config_or_instance, BoundInstance)
            else instance_from_config(config_or_instance, n_seeds))
    from persafl_np.sim import TheoremMode

    tau = None
    if not isinstance(inst.arrivals, TheoremMode):
        tau_max = getattr(inst.arrivals, "tau_max", None)
        if tau_max is not None and getattr(inst.arrivals, "staleness", "none") != "none":
            tau = int(tau_max)
        elif not run:
            raise ValueError(
                "run: event-driven arrivals without a staleness control have no a-priori tau; "
                "use --run (tau = largest staleness observed)"
            )
    chk = check_bound(inst.problem, inst.algorithm, inst.arrivals, T=inst.T, tau=tau,
                      seeds=inst.seeds, run=run)
    return _format(inst, chk, run)
