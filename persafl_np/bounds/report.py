"""The report of ``persafl bound CONFIG.toml [--run]``: the problem family and its constants,
the step-size conditions (T2), the assumptions C1–C5, the seven terms of (T1) of
theory/async_theorem.md and, with ``run=True``, the measured left-hand side and measured/bound.

:func:`bound_assessment` says whether the bound applies and holds (``holds``), does not apply
(``not_applicable``: an infinite or unknown constant, a failed assumption or a violated (T2),
each named) or is violated by the measurement (``violated``). :func:`run_bound_report` prints
the report as it goes (constants first, then a progress bar of the runs) and can write the
same content as a JSON document (:func:`bound_document`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persafl_np.bounds.assumptions import arrival_assumptions
from persafl_np.bounds.check import BoundCheck, check_bound
from persafl_np.bounds.theorem import TERM_NAMES

__all__ = ["BoundInstance", "auto_stride", "bound_assessment", "bound_document", "bound_report",
           "default_workers", "instance_from_config", "run_bound_report"]


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


#: a problem is "small" (stride 1 by default) when T × samples × parameters is at most this;
#: otherwise the default stride keeps about MAX_POINTS evaluations per seed (with t = T), and
#: the measured value is the trapezoid estimate of ``check.average_stationarity``. 60: the
#: README config (T = 600, k = 10) then takes 61 evaluations per seed, with an estimate within
#: 3.1 % of the exact one per seed (check.py module docstring).
SMALL_WORK = 2e7
MAX_POINTS = 60


def auto_stride(inst: BoundInstance) -> int:
    """The default evaluation stride: 1 (the exact left-hand side) on small problems, else
    ⌈T / MAX_POINTS⌉. A function of the instance only, so the report is deterministic."""
    samples = sum(int(c[0].shape[0]) for c in inst.problem.clients)
    work = inst.T * samples * int(inst.problem.w0.size)
    return 1 if work <= SMALL_WORK else max(1, math.ceil(inst.T / MAX_POINTS))


def _family(inst: BoundInstance, chk: BoundCheck) -> str:
    model = type(inst.problem.model).__name__
    if chk.constants.exact:
        return (f"quadratics with a shared Hessian ({model}, rho = 0 on every client): exact "
                "constants (theory/assumptions.md eq. (AS-1))")
    return (f"nonnegative bounded-gradient loss ({model}): L_F, gamma2, Delta_F are upper bounds "
            "and F* = 0 a lower bound (theory/assumptions.md eq. (AS-4))")


def _tau(inst: BoundInstance, run: bool) -> int | None:
    from persafl_np.sim import TheoremMode

    if isinstance(inst.arrivals, TheoremMode):
        return int(inst.arrivals.tau)
    tau_max = getattr(inst.arrivals, "tau_max", None)
    if tau_max is not None and getattr(inst.arrivals, "staleness", "none") != "none":
        return int(tau_max)
    return None


def bound_assessment(inst: BoundInstance, chk: BoundCheck, run: bool) -> tuple[str, list[str]]:
    """(verdict, reasons): ``holds`` | ``not_applicable`` | ``violated`` (module docstring)."""
    c, b = chk.constants, chk.bound
    reasons = []
    batch = inst.algorithm.batch_size
    if not math.isfinite(c.sigma2):
        reasons.append(
            "C2: no global bound on the oracle's gradient variance sigma^2 is known"
            + (f" for mini-batches (algorithm.batch_size = {batch}); omit batch_size for full "
               "batches, or add oracle.noise_sigma for a known variance" if batch else ""))
    for name, v, ass in (("L_F", c.L, "C1"), ("gamma2", c.gamma2, "C3"),
                         ("Delta_F", c.delta_f, "C1 (F bounded below)")):
        if not math.isfinite(v):
            reasons.append(f"{ass}: {name} is infinite for this problem")
    assum = arrival_assumptions(inst.arrivals, inst.problem.n_clients)
    if not assum.c5:
        reasons += [f"C5 fails: {r}" for r in assum.reasons if "C4" not in r and "tau =" not in r]
    if assum.c4 is False:
        reasons.append("C4 fails: the staleness is unbounded (no staleness control)")
    for v in b.conditions.violated:
        reasons.append(f"(T2) violated: {v}")
    if not b.conditions.all_hold and not b.conditions.violated:
        reasons.append("(T2) violated")
    if reasons or not math.isfinite(b.total):
        return "not_applicable", reasons or ["the bound is infinite"]
    if run and chk.ratio > 1.0:
        return "violated", [f"measured/bound = {_fmt(chk.ratio)} > 1"]
    return "holds", []


def _points(chk: BoundCheck, T: int) -> int:
    """Evaluated steps per seed: t = 0, k, 2k, … < T, plus t = T for a strided estimate."""
    return T if chk.stride == 1 else len(range(0, T, chk.stride)) + 1


def _measured_label(chk: BoundCheck) -> str:
    if chk.stride == 1:
        return "(1/T) sum_t ||grad F(w^t)||^2"
    return "(1/T) sum_t ||grad F(w^t)||^2 (trapezoid estimate)"


def _measured_what(chk: BoundCheck, T: int) -> str:
    if chk.stride == 1:
        return "(1/T) sum_{t<T} ||grad F(w^t)||^2 (every step: the left-hand side of (T1))"
    return (f"(1/T) sum_{{t<T}} ||grad F(w^t)||^2 estimated from t = 0, {chk.stride}, "
            f"{2 * chk.stride}, ..., T ({_points(chk, T)} evaluated steps of {T}) by linear "
            "interpolation between them (trapezoid); an estimate of the left-hand side of (T1), "
            "exact with --stride 1")


def _header(inst: BoundInstance, chk: BoundCheck) -> list[str]:
    c, b = chk.constants, chk.bound
    return [
        "Bound check: theory/async_theorem.md (T1)",
        f"instance   : {inst.name}  (n = {inst.problem.n_clients}, variant {c.variant})",
        f"family     : {_family(inst, chk)}",
        f"  L_F = {_fmt(c.L)}   F* = {_fmt(c.F_star)}   F(w0) = {_fmt(c.F0)}   "
        f"Delta_F = {_fmt(c.delta_f)}",
        f"  gamma2 = {_fmt(c.gamma2)}   sigma2 = {_fmt(c.sigma2)}"
        + ("   (unknown: see C2 below)" if not math.isfinite(c.sigma2) else ""),
        f"steps      : Q = {b.Q}  eta = {_fmt(b.eta)}  beta = {_fmt(b.beta)}  "
        f"a = beta*eta = {_fmt(b.a)}  K = {b.K}  T = {b.T}",
    ]


def _body(inst: BoundInstance, chk: BoundCheck, run: bool) -> list[str]:
    b, s = chk.bound, chk.sharp
    cond = b.conditions
    assum = arrival_assumptions(inst.arrivals, inst.problem.n_clients)
    lines = [
        f"staleness  : tau = {b.tau}"
        + ("" if _tau(inst, run) is not None else " (largest staleness observed in the runs)"),
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
    if run:
        se = chk.measured_stderr
        lines += [
            f"measured   : {_measured_label(chk)} = {_fmt(chk.measured_mean)}"
            + (f" +- {_fmt(se)} (s.e.)" if math.isfinite(se) else "")
            + f" over seeds {list(inst.seeds)}",
            "  (" + ("every step: the left-hand side of (T1)" if chk.stride == 1 else
                     f"evaluated at t = 0, {chk.stride}, {2 * chk.stride}, ..., {inst.T} "
                     f"({_points(chk, inst.T)} steps), linear in t between them: an estimate of "
                     "the left-hand side of (T1), exact with --stride 1") + ")",
        ]
        if math.isfinite(b.total) and b.total > 0:
            lines.append(f"ratio      : measured/bound = {_fmt(chk.ratio)} (D4), "
                         f"{_fmt(chk.sharp_ratio)} (sharp)")
        else:
            lines.append("ratio      : undefined (the bound is infinite)")
        lines += [
            f"weighted   : the same mean of ||sum_i p_i grad F_i(w^t)||^2 = "
            f"{_fmt(sum(chk.weighted) / len(chk.weighted))}",
            f"shares p_i : {[round(p, 4) for p in chk.shares]}  "
            f"(max staleness seen {chk.max_staleness})",
        ]
    verdict, reasons = bound_assessment(inst, chk, run)
    lines.append({"holds": "verdict    : the bound applies" + (" and holds" if run else ""),
                  "not_applicable": "verdict    : NOT APPLICABLE: the total is NOT a guaranteed "
                  "bound, because",
                  "violated": "verdict    : VIOLATED:"}[verdict])
    lines += [f"  - {r}" for r in reasons]
    return lines


def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)  # "inf" / "nan": strict JSON has no infinities
    return x


def bound_document(inst: BoundInstance, chk: BoundCheck, run: bool) -> dict[str, Any]:
    """The report as a JSON-ready dict: constants, conditions, terms, measured values, ratio."""
    c, b, s = chk.constants, chk.bound, chk.sharp
    cond = b.conditions
    assum = arrival_assumptions(inst.arrivals, inst.problem.n_clients)
    verdict, reasons = bound_assessment(inst, chk, run)
    doc: dict[str, Any] = {
        "theorem": "theory/async_theorem.md (T1)",
        "instance": inst.name,
        "n_clients": inst.problem.n_clients,
        "family": _family(inst, chk),
        "constants": {"variant": c.variant, "exact": c.exact, "L_F": _num(c.L),
                      "F_star": _num(c.F_star), "F0": _num(c.F0), "Delta_F": _num(c.delta_f),
                      "gamma2": _num(c.gamma2), "sigma2": _num(c.sigma2)},
        "steps": {"Q": b.Q, "eta": b.eta, "beta": b.beta, "a": b.a, "K": b.K, "T": b.T,
                  "tau": b.tau, "tau_observed_only": _tau(inst, run) is None},
        "conditions": {"eta_max": _num(cond.eta_max), "eta_ratio": _num(cond.eta_ratio),
                       "eta_ok": cond.eta_ok, "a_max": _num(cond.a_max),
                       "a_ratio": _num(cond.a_ratio), "a_ok": cond.a_ok},
        "assumptions": {"C4": assum.c4, "C5": assum.c5, "reasons": list(assum.reasons)},
        "terms": {"d4": {k: _num(getattr(b, k)) for k in TERM_NAMES} | {"total": _num(b.total)},
                  "sharp": {k: _num(getattr(s, k)) for k in TERM_NAMES}
                  | {"total": _num(s.total)}},
        "verdict": verdict,
        "reasons": reasons,
    }
    if run:
        finite = math.isfinite(b.total) and b.total > 0
        doc["measured"] = {
            "quantity": _measured_what(chk, inst.T), "stride": chk.stride,
            "points_per_seed": _points(chk, inst.T), "seeds": list(inst.seeds),
            "per_seed": list(chk.measured), "mean": _num(chk.measured_mean),
            "stderr": _num(chk.measured_stderr), "weighted_per_seed": list(chk.weighted),
            "shares": list(chk.shares or ()), "max_staleness": chk.max_staleness,
        }
        doc["ratio"] = _num(chk.ratio) if finite else None
        doc["sharp_ratio"] = _num(chk.sharp_ratio) if finite else None
    return doc


def _check(inst: BoundInstance, run: bool, stride: int, progress: Any = None,
           constants: Any = None, workers: int = 1) -> BoundCheck:
    return check_bound(inst.problem, inst.algorithm, inst.arrivals, T=inst.T,
                       tau=_tau(inst, run), seeds=inst.seeds, run=run, stride=stride,
                       progress=progress, constants=constants, workers=workers)


def default_workers(n_seeds: int) -> int:
    """Seeds run at once by default: one per core, at most one per seed."""
    import os

    return max(1, min(n_seeds, os.cpu_count() or 1))


def _instance(config_or_instance: Any, n_seeds: int) -> BoundInstance:
    return (config_or_instance if isinstance(config_or_instance, BoundInstance)
            else instance_from_config(config_or_instance, n_seeds))


def _event_without_tau(inst: BoundInstance, run: bool) -> None:
    if not run and _tau(inst, run) is None:
        raise ValueError(
            "run: event-driven arrivals without a staleness control have no a-priori tau; "
            "use --run (tau = largest staleness observed)"
        )


def bound_report(config_or_instance: Any, run: bool = False, *, n_seeds: int = 4,
                 stride: int = 1) -> str:
    """The report as a string. ``config_or_instance``: a SimConfig, a TOML path or a
    :class:`BoundInstance`. Without ``run``, event-driven arrivals need a staleness control
    (``tau_max``) to give τ; with ``run`` the observed maximum is used. ``stride``: see
    :func:`~persafl_np.bounds.check.check_bound` (1: the exact left-hand side)."""
    inst = _instance(config_or_instance, n_seeds)
    _event_without_tau(inst, run)
    chk = _check(inst, run, stride)
    return "\n".join(_header(inst, chk) + _body(inst, chk, run))


def run_bound_report(config: Any, *, run: bool = False, n_seeds: int = 4,
                     stride: int | str = "auto", json_path: str | Path | None = None,
                     progress: bool = True, emit: Callable[[str], Any] = print,
                     workers: int | None = None) -> str:
    """``persafl bound``: print the report as it is computed, write ``json_path`` (optional);
    return the verdict of :func:`bound_assessment`. ``workers``: seeds run at once
    (None: :func:`default_workers`; the measured values do not depend on it).

    An instance the bound cannot be evaluated on at all (no known constants, e.g. least
    squares with client-specific designs, or a rule other than persafl/fedbuff) is reported
    as ``not_applicable`` with the reason."""
    inst = _instance(config, n_seeds)
    if stride == "auto":
        k = auto_stride(inst)
    else:
        try:
            k = int(stride)
        except (TypeError, ValueError):
            raise ValueError(f"--stride must be an integer >= 1 or 'auto', got {stride!r}"
                             ) from None
        if k < 1:
            raise ValueError(f"--stride must be an integer >= 1 or 'auto', got {k}")
    try:
        chk = _check(inst, False, k)
    except ValueError as exc:  # no constants for this problem / rule: the bound does not apply
        emit(f"verdict    : NOT APPLICABLE: {exc}")
        if json_path is not None:
            _write_json(json_path, {"theorem": "theory/async_theorem.md (T1)",
                                    "instance": inst.name, "verdict": "not_applicable",
                                    "reasons": [str(exc)]})
        return "not_applicable"
    for line in _header(inst, chk):
        emit(line)
    if not run and _tau(inst, run) is None:
        assum = arrival_assumptions(inst.arrivals, inst.problem.n_clients)
        reason = ("C4: event-driven arrivals without a staleness control have no a-priori "
                  "staleness bound tau; add arrivals.staleness = \"drop\" or \"block\" with "
                  "tau_max, or use --run (tau = the largest staleness observed)")
        emit(f"arrivals   : C5 {'holds' if assum.c5 else 'FAILS'}")
        for r in assum.reasons:
            emit(f"  - {r}")
        # every other failure that does not depend on tau (the a-condition does)
        others = [r for r in bound_assessment(inst, chk, run)[1]
                  if r.startswith(("C1", "C2", "C3", "C5")) or r.startswith("(T2) violated: eta")]
        reasons = [reason] + others
        emit("verdict    : NOT APPLICABLE:")
        for r in reasons:
            emit(f"  - {r}")
        if json_path is not None:
            doc = bound_document(inst, chk, run)
            doc["terms"], doc["steps"]["tau"] = None, None
            doc["verdict"], doc["reasons"] = "not_applicable", reasons
            _write_json(json_path, doc)
            emit(f"wrote {json_path}")
        return "not_applicable"
    if run:
        bar = None

        def tick(done: int, total: int) -> None:
            nonlocal bar
            if not progress:
                return
            if bar is None:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="step", leave=False,
                           desc=f"{len(inst.seeds)} seeds x {inst.T} steps")
            bar.update(done - bar.n)

        try:
            chk = _check(inst, True, k, progress=tick, constants=chk.constants,
                         workers=default_workers(len(inst.seeds)) if workers is None
                         else workers)
        finally:
            if bar is not None:
                bar.close()
    for line in _body(inst, chk, run):
        emit(line)
    if json_path is not None:
        _write_json(json_path, bound_document(inst, chk, run))
        emit(f"wrote {json_path}")
    return bound_assessment(inst, chk, run)[0]


def _write_json(path: str | Path, doc: dict[str, Any]) -> None:
    import json

    from persafl_np.atomic import atomic_write_text

    atomic_write_text(Path(path), json.dumps(doc, indent=2, allow_nan=False) + "\n")
