"""Adversarial falsifier for any bound (theory/tightness.md §1).

:func:`falsify` maximizes measured / bound over the instances of a family
(:mod:`persafl_np.bounds.families`), every one of which satisfies the bound's stated assumptions
(C1–C5, τ_t ≤ τ, steps up to the (T2) caps). The measured quantity is the left-hand side of
(T1) of theory/async_theorem.md, (1/T) Σ_{t<T} E‖∇F(w^t)‖², exactly as in the D4 audit.

Search: a scrambled Sobol sequence (``scipy.stats.qmc``) over the unit cube, evaluated in
batches (vectorized inside a family, batches split over local processes or any
``concurrent.futures``-style executor such as a Dask client's ``get_executor()``), then bounded
Nelder–Mead (``scipy.optimize``) on the continuous coordinates from the best distinct points.
Everything is deterministic in ``seed``; with ``state=PATH`` every evaluation is saved
(atomic JSON) and a rerun replays them instead of recomputing, so a killed search resumes.

``bound`` is any callable ``bound(inputs: BoundInputs) -> float`` (or returning an object with
``.total``); a bound may have a ``step_rule(inputs) -> (eta, beta)`` attribute when it holds only
at specific step sizes (the corollary (T3)).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from persafl_np.arguments import check_int
from persafl_np.atomic import atomic_write_text
from persafl_np.bounds.families import (
    BoundInputs,
    Family,
    QuadraticFamily,
    RobustFamily,
    robust_config,
)
from persafl_np.bounds.theorem import corollary_step_sizes, stationarity_bound

__all__ = [
    "Bound",
    "FalsifyResult",
    "T1Bound",
    "T3Bound",
    "bound_ratio",
    "falsify",
    "family_from_dict",
    "rerun_instance",
]


class Bound(Protocol):
    """A bound on (1/T) Σ_t E‖∇F(w^t)‖² as a function of the problem's constants."""

    def __call__(self, inputs: BoundInputs) -> float: ...


@dataclass(frozen=True)
class T1Bound:
    """(T1) of theory/async_theorem.md with constant set ``constants``, times ``scale``
    (``scale = 0.05`` is the deliberately wrong (T1)/20 of the tests)."""

    constants: str = "d4"
    scale: float = 1.0

    def __call__(self, c: BoundInputs) -> float:
        return self.scale * stationarity_bound(c.L, c.sigma2, c.gamma2, c.delta_f, c.T, c.tau,
                                               c.Q, c.eta, c.beta, c.K,
                                               constants=self.constants).total

    @property
    def name(self) -> str:
        return f"T1[{self.constants}]" + ("" if self.scale == 1.0 else f"x{self.scale:g}")


@dataclass(frozen=True)
class T3Bound:
    """The corollary (T3): its rate at its own steps β = 1, a = η = min(a0, a*) (D4 constants).
    Vacuous (``inf``) when Δ_F = 0 (its step would be 0)."""

    name: str = "T3"

    def step_rule(self, c: BoundInputs) -> tuple[float, float]:
        if c.delta_f <= 0:
            return 1.0 / (24.0 * max(1, c.tau) * c.Q * c.L), 1.0
        s = corollary_step_sizes(c.T, c.L, c.sigma2, c.gamma2, c.delta_f, c.tau, c.Q)
        return s.eta, s.beta

    def __call__(self, c: BoundInputs) -> float:
        if c.delta_f <= 0:
            return math.inf
        return corollary_step_sizes(c.T, c.L, c.sigma2, c.gamma2, c.delta_f, c.tau, c.Q).rate


def bound_ratio(bound: Callable, measured: float, inputs: BoundInputs) -> tuple[float, float]:
    """(ratio, bound value): measured / bound; ``inf`` for a zero bound on a positive
    measurement, 0 for an infinite bound."""
    b = bound(inputs)
    b = float(getattr(b, "total", b))
    if math.isnan(b) or b < 0:
        raise ValueError(f"bound returned {b!r} for {inputs}; a bound must be a number >= 0")
    if b == 0:
        return (math.inf if measured > 0 else 0.0), b
    return (measured / b if math.isfinite(b) else 0.0), b


def family_from_dict(d: dict) -> Family:
    """Rebuild a family from its ``to_dict()`` (the ``[family]`` table of a spec)."""
    d = dict(d)
    name = d.pop("name", "quadratic")
    cls = {"quadratic": QuadraticFamily, "robust": RobustFamily}.get(name)
    if cls is None:
        raise ValueError(f"family.name must be 'quadratic' or 'robust', got {name!r}")
    try:
        return cls(**d)
    except TypeError as exc:
        raise ValueError(f"family: {exc}") from None


@dataclass(frozen=True)
class FalsifyResult:
    """What :func:`falsify` found.

    worst_ratio: the largest measured / bound; violated: worst_ratio > 1.
    instance: the worst instance as a runnable config (:func:`rerun_instance` reproduces it);
    u: its point of the unit cube; measured, bound_value, inputs: its numbers.
    history: (evaluation index, phase "global"/"local", ratio) of every evaluation.
    """

    worst_ratio: float
    violated: bool
    instance: dict
    u: tuple[float, ...]
    measured: float
    bound_value: float
    inputs: BoundInputs
    history: tuple[tuple[int, str, float], ...]
    n_evals: int
    seconds: float
    bound_name: str
    family: dict
    seed: int
    resumed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def best_so_far(self) -> np.ndarray:
        r = np.array([h[2] for h in self.history], dtype=np.float64)
        return np.maximum.accumulate(np.nan_to_num(r, nan=0.0)) if r.size else r

    def to_json(self) -> str:
        d = asdict(self)
        d["inputs"] = asdict(self.inputs)
        d["history"] = [list(h) for h in self.history]
        return json.dumps(d, indent=1, allow_nan=True)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Ratio vs evaluations (every evaluation and the best so far); PNG + CSV at ``path``."""
        from persafl_np.plots.tightness import plot_falsify_history

        return plot_falsify_history(self.history, path, title=f"falsify {self.bound_name} on "
                                    f"{self.family.get('name')}")


def _bound_name(bound: Any) -> str:
    return str(getattr(bound, "name", getattr(bound, "__qualname__", type(bound).__name__)))


def _bound_repr(bound: Any) -> str:
    """A description of the bound that is stable across processes (no memory addresses)."""
    if hasattr(bound, "__qualname__") and hasattr(bound, "__module__"):
        return f"{bound.__module__}.{bound.__qualname__}"
    return repr(bound)


def _measure_chunk(args: tuple[Family, list[dict]]) -> list[tuple[float, dict]]:
    family, insts = args
    return [(m.measured, asdict(m.inputs)) for m in family.measure(insts)]


class _Evaluator:
    """Evaluations in call order, replayed from the saved state when it holds them."""

    def __init__(self, family: Family, bound: Callable, state: Path | None, key: str,
                 workers: int, executor: Any) -> None:
        self.family, self.bound, self.state, self.key = family, bound, state, key
        self.workers, self.executor = workers, executor
        self.step_rule = getattr(bound, "step_rule", None)
        self.done: list[dict] = []
        self.resumed = 0
        self._since_save = 0
        if state is not None and state.exists():
            doc = json.loads(state.read_text())
            if doc.get("key") != key:
                raise ValueError(f"state={str(state)!r} belongs to another search (different "
                                 "bound, family, budget or seed); use a new state file")
            self.done = doc["evals"]
            self.resumed = len(self.done)
        self.pos = 0
        self.pool = None

    def _save(self, force: bool = False) -> None:
        if self.state is None or (self._since_save < 50 and not force):
            return
        atomic_write_text(self.state, json.dumps({"key": self.key, "evals": self.done}))
        self._since_save = 0

    def batch(self, U: np.ndarray, phase: str) -> list[dict]:
        out: list[dict | None] = [None] * len(U)
        todo = []
        for j, u in enumerate(U):
            k = self.pos + j
            if k < len(self.done):
                rec = self.done[k]
                if not np.allclose(rec["u"], u, rtol=0, atol=1e-12):
                    raise ValueError(f"state={str(self.state)!r} does not match this search at "
                                     f"evaluation {k}")
                out[j] = rec
            else:
                todo.append(j)
        if todo:
            insts = [self.family.decode(U[j], self.step_rule) for j in todo]
            chunks = _split(insts, self.workers if self.executor is None else max(
                self.workers, 1))
            if len(chunks) == 1:
                res = _measure_chunk((self.family, chunks[0]))
            else:
                ex = self.executor
                if ex is None:
                    if self.pool is None:
                        self.pool = ProcessPoolExecutor(max_workers=self.workers)
                    ex = self.pool
                res = [r for part in ex.map(_measure_chunk, [(self.family, c) for c in chunks])
                       for r in part]
            for j, inst, (meas, inp) in zip(todo, insts, res, strict=True):
                inputs = BoundInputs(**inp)
                ratio, bval = bound_ratio(self.bound, meas, inputs)
                rec = {"u": [float(v) for v in U[j]], "phase": phase, "ratio": ratio,
                       "measured": meas, "bound": bval, "instance": inst, "inputs": inp}
                out[j] = rec
            self.done.extend(out[j] for j in todo)  # todo is the tail, in order
            self._since_save += len(todo)
            self._save(force=phase == "global")
        self.pos += len(U)
        return out  # type: ignore[return-value]

    def close(self) -> None:
        self._save(force=True)
        if self.pool is not None:
            self.pool.shutdown()


def _split(items: list, k: int) -> list[list]:
    k = max(1, min(k, len(items)))
    size = math.ceil(len(items) / k)
    return [items[i:i + size] for i in range(0, len(items), size)]


def falsify(
    bound: Callable,
    family: Family,
    *,
    budget: int,
    seed: int = 0,
    global_fraction: float = 0.75,
    starts: int = 4,
    batch: int = 256,
    workers: int = 1,
    executor: Any = None,
    state: str | os.PathLike[str] | None = None,
) -> FalsifyResult:
    """Maximize measured / ``bound`` over ``family`` with ``budget`` evaluations.

    global_fraction: share of the budget for the Sobol exploration (rounded to batches);
    starts: Nelder–Mead runs from the best distinct global points, sharing the rest;
    batch: instances per vectorized evaluation; workers: local processes (1 = in process);
    executor: any object with ``map`` (e.g. ``dask.distributed.Client.get_executor()``)
    used instead of local processes; state: JSON file for resuming (written atomically).
    """
    budget = check_int(budget, "budget", 2)
    seed = check_int(seed, "seed", 0)
    starts = check_int(starts, "starts", 0)
    batch = check_int(batch, "batch", 1)
    workers = check_int(workers, "workers", 1)
    gf = float(global_fraction)
    if not 0.0 < gf <= 1.0:
        raise ValueError(f"global_fraction must be in (0, 1], got {global_fraction!r}")
    if not isinstance(family, Family):
        raise ValueError(f"family must implement the Family protocol, got {type(family)}")
    if not callable(bound):
        raise ValueError(f"bound must be callable, got {type(bound).__name__}")
    names = family.names
    p = len(names)
    cont = np.array(family.continuous, dtype=bool)
    n_global = max(1, min(budget, int(round(budget * gf)))) if starts else budget
    key_doc = {"bound": _bound_name(bound), "bound_repr": _bound_repr(bound),
               "family": family.to_dict(), "budget": budget, "seed": seed, "gf": gf,
               "starts": starts, "batch": batch}
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()
    ev = _Evaluator(family, bound, None if state is None else Path(state), key, workers,
                    executor)
    t0 = time.perf_counter()
    try:
        ss = np.random.SeedSequence(seed)
        sobol = qmc.Sobol(d=p, scramble=True, seed=np.random.default_rng(ss))
        U = sobol.random_base2(max(0, math.ceil(math.log2(n_global))))[:n_global]
        recs: list[dict] = []
        for i in range(0, n_global, batch):
            recs += ev.batch(U[i:i + batch], "global")
        left = budget - n_global
        if starts and left > 0 and cont.any():
            order = sorted(range(len(recs)), key=lambda j: -_finite(recs[j]["ratio"]))
            chosen: list[int] = []
            seen: set = set()
            for j in order:  # distinct discrete settings first: different (Q, τ, T, …)
                sig = tuple(np.round(np.asarray(recs[j]["u"])[~cont], 6))
                if sig not in seen:
                    chosen.append(j)
                    seen.add(sig)
                if len(chosen) == starts:
                    break
            per = max(1, left // len(chosen))
            for s, j in enumerate(chosen):
                n_here = per if s < len(chosen) - 1 else left - per * (len(chosen) - 1)
                if n_here <= 0:
                    break
                recs += _refine(ev, np.asarray(recs[j]["u"]), cont, n_here)
        done = ev.done[:budget]
    finally:
        ev.close()
    best = max(range(len(done)), key=lambda j: _finite(done[j]["ratio"]))
    b = done[best]
    return FalsifyResult(
        worst_ratio=float(b["ratio"]), violated=bool(b["ratio"] > 1.0),
        instance=b["instance"], u=tuple(b["u"]), measured=float(b["measured"]),
        bound_value=float(b["bound"]), inputs=BoundInputs(**b["inputs"]),
        history=tuple((k, r["phase"], float(r["ratio"])) for k, r in enumerate(done)),
        n_evals=len(done), seconds=time.perf_counter() - t0, bound_name=_bound_name(bound),
        family=family.to_dict(), seed=seed, resumed=ev.resumed)


def _finite(r: float) -> float:
    return r if not math.isnan(r) else -math.inf


def _refine(ev: _Evaluator, u0: np.ndarray, cont: np.ndarray, n_evals: int) -> list[dict]:
    """Bounded Nelder–Mead on the continuous coordinates, exactly ``n_evals`` evaluations."""
    recs: list[dict] = []
    x0 = u0[cont]

    def f(x: np.ndarray) -> float:
        if len(recs) >= n_evals:
            raise _Budget
        u = u0.copy()
        u[cont] = np.clip(x, 0.0, 1.0)
        rec = ev.batch(u[None, :], "local")[0]
        recs.append(rec)
        r = rec["ratio"]
        return -r if math.isfinite(r) else (-1e300 if r > 0 else 0.0)

    # start from a simplex of 10 % steps pointing into the cube (the default 5 % of x0 is
    # tiny near 0 and leaves the cube near 1)
    k = len(x0)
    sim = np.repeat(x0[None, :], k + 1, axis=0)
    for i in range(k):
        sim[i + 1, i] += 0.1 if x0[i] <= 0.9 else -0.1
    try:
        minimize(f, x0, method="Nelder-Mead", bounds=[(0.0, 1.0)] * k,
                 options={"maxfev": n_evals, "initial_simplex": sim, "xatol": 1e-6,
                          "fatol": 1e-12})
    except _Budget:
        pass
    while len(recs) < n_evals:  # converged early: spend the rest around the best point
        best = max(recs, key=lambda r: _finite(r["ratio"])) if recs else {"u": u0}
        f(np.asarray(best["u"])[cont])
    return recs


class _Budget(Exception):
    pass


def rerun_instance(instance: dict, bound: Callable) -> tuple[float, float, BoundInputs]:
    """Measure a saved instance again: (ratio, measured, inputs). Reproduces the falsifier's
    numbers exactly (the quadratic closed form and the simulator are deterministic)."""
    name = instance.get("family")
    if name == "quadratic":
        m = QuadraticFamily().measure([instance])[0]
    elif name == "robust":
        m = RobustFamily().measure([instance])[0]
    else:
        raise ValueError(f"instance.family must be 'quadratic' or 'robust', got {name!r}")
    ratio, _ = bound_ratio(bound, m.measured, m.inputs)
    return ratio, m.measured, m.inputs


def robust_instance_toml(instance: dict) -> str:
    """The ``SimConfig`` TOML of a robust instance (``persafl bound FILE --run`` reruns it)."""
    from persafl_np.config import SimConfig

    return SimConfig.from_dict(robust_config(instance)).to_toml()

