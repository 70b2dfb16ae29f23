"""Check the bound (T1) on a concrete instance: constants → bound → simulator runs → ratio.

This is the one module of :mod:`persafl_np.bounds` that runs the simulator (imported lazily,
so the bound arithmetic and constants never depend on it). The measured quantity is the
left-hand side of (T1), theory/async_theorem.md:

    (1/T) Σ_{t<T} ‖∇F(w^t)‖²   from the exact full-batch history (``stride = 1``),

averaged over seeds (one seed = one arrival/noise stream on the *same* data and w⁰). With
``stride = k > 1`` the runs evaluate only at t = 0, k, 2k, … < T (``eval_every = k``; the
trajectory is the same, evaluation draws no randomness) and the measured value is the
systematic-sample mean (1/|S|) Σ_{t∈S} ‖∇F(w^t)‖², S = {0, k, 2k, …} ∩ [0, T): an estimate of the
left-hand side, not the left-hand side itself (:attr:`BoundCheck.stride` records which).

The runs use one BLAS thread when threadpoolctl is installed (as ``persafl figures`` does): the
matrices are small, so this is faster, and the measured values then do not depend on the
machine's core count (a BLAS thread count can change float summation order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.backend import to_numpy
from persafl_np.bounds.constants import (
    ProblemConstants,
    robust_constants,
    shifted_ls_constants,
)
from persafl_np.bounds.theorem import BoundResult, stationarity_bound

__all__ = [
    "BoundCheck",
    "SharedDesign",
    "average_stationarity",
    "check_bound",
    "problem_constants",
    "shared_design",
]


@dataclass(frozen=True)
class SharedDesign:
    """(A, centers) of a shared-design least-squares federation, recovered from its data."""

    A: np.ndarray
    centers: np.ndarray


def shared_design(dataset: Any) -> SharedDesign | None:
    """A = XᵀX/m and c_i (minimum-norm solution of X c = y_i) if every client has the same X.

    Returns ``None`` when the designs differ (then the Hessians differ and γ² is unbounded,
    theory/assumptions.md §2). With a singular X any solution c_i gives the same F_i, and
    the minimum-norm one gives the same H_F(c_i − c̄) (H_F = A·g(A)), so the constants are exact.
    """
    clients = dataset.clients
    X0 = np.asarray(to_numpy(clients[0].X_train), dtype=np.float64)
    for c in clients[1:]:
        X = np.asarray(to_numpy(c.X_train))
        if X.shape != X0.shape or not np.array_equal(X, X0):
            return None
    Y = np.stack([np.asarray(to_numpy(c.y_train), dtype=np.float64) for c in clients], axis=1)
    C = np.linalg.lstsq(X0, Y, rcond=None)[0].T
    if not np.allclose(C @ X0.T, Y.T, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(Y).max()))):
        return None  # y_i not in the range of X: not of the form ½(w − c_i)ᵀA(w − c_i)
    A = X0.T @ X0 / X0.shape[0]
    return SharedDesign(A=0.5 * (A + A.T), centers=C)


def problem_constants(
    model: Any, oracle: Any, dataset: Any, w0: Any, *, batch_size: int | None = None
) -> ProblemConstants:
    """Exact constants for shared-design least squares, bounds for bounded-gradient models.

    Raises ``ValueError`` when neither applies (e.g. least squares with client-specific
    designs: γ² = ∞, theory/assumptions.md §2).
    """
    from persafl_np.models import LeastSquares

    if isinstance(model, LeastSquares) and model.l2 == 0.0:
        design = shared_design(dataset)
        if design is None:
            raise ValueError(
                "dataset: least-squares clients with different designs have different Hessians, "
                "so gamma2 is unbounded and (T1) is vacuous (theory/assumptions.md §2)"
            )
        return shifted_ls_constants(design, oracle, w0, batch_size=batch_size)
    return robust_constants(model, dataset, oracle, w0, batch_size=batch_size)


def average_stationarity(history: Any, T: int, column: str = "grad_norm2",
                         stride: int = 1) -> float:
    """(1/T) Σ_{t<T} ‖∇F(w^t)‖² from a run's history (needs every step 0..T−1 recorded).

    ``column="weighted_grad_norm2"`` averages ‖Σ_i p_i ∇F_i(w^t)‖² instead. ``stride=k``: the
    mean over t = 0, k, 2k, … < T (every one of them must be recorded; module docstring).
    """
    steps = np.asarray(history.step)
    g = np.asarray(getattr(history, column))
    # history may hold a row per step plus the final one; keep the first row of each t < T.
    sel = {}
    for s, v in zip(steps.tolist(), g.tolist(), strict=True):
        if s < T and int(s) % stride == 0 and int(s) not in sel:
            sel[int(s)] = v
    need = len(range(0, T, stride))
    if len(sel) != need:
        raise ValueError(
            f"history has {len(sel)} of the {need} steps t < T with t % {stride} == 0; "
            f"run with eval_every={stride}"
        )
    return math.fsum(sel.values()) / need


@dataclass(frozen=True)
class BoundCheck:
    """Constants, the bound (D4 and sharp constants) and the measured left-hand side of (T1).

    measured: per-seed (1/T)Σ_t‖∇F(w^t)‖² (empty when not run).
    shares: mean arrival shares p_i over the seeds (None when not run).
    weighted: per-seed (1/T)Σ_t‖Σ_i p_i∇F_i(w^t)‖² with the running shares (what a biased
        arrival process actually drives to zero, theory/assumptions.md §5).
    max_staleness: the largest staleness seen in the runs (0 when not run).
    stride: the runs evaluated ‖∇F(w^t)‖² at t = 0, stride, 2·stride, … (1: the exact
        left-hand side of (T1); > 1: an estimate, module docstring).
    """

    constants: ProblemConstants
    bound: BoundResult
    sharp: BoundResult
    measured: tuple[float, ...] = ()
    weighted: tuple[float, ...] = ()
    shares: tuple[float, ...] | None = None
    max_staleness: int = 0
    stride: int = 1

    @property
    def measured_mean(self) -> float:
        return float(np.mean(self.measured)) if self.measured else math.nan

    @property
    def measured_stderr(self) -> float:
        m = len(self.measured)
        return float(np.std(self.measured, ddof=1) / math.sqrt(m)) if m > 1 else math.nan

    @property
    def ratio(self) -> float:
        """measured mean / bound (D4 constants)."""
        return self.measured_mean / self.bound.total if self.bound.total > 0 else math.nan

    @property
    def sharp_ratio(self) -> float:
        return self.measured_mean / self.sharp.total if self.sharp.total > 0 else math.nan


def check_bound(
    problem: Any,
    algorithm: Any,
    arrivals: Any,
    *,
    T: int,
    tau: int | None = None,
    seeds: Sequence[int] = (0,),
    run: bool = True,
    constants: ProblemConstants | None = None,
    stride: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> BoundCheck:
    """Evaluate (T1) for a simulator problem and (optionally) measure its left-hand side.

    problem: a ``persafl_np.sim.Problem``; algorithm: ``Algorithm`` with rule ``persafl``
    (β) or ``fedbuff`` with constant weights (β = η_g, K); arrivals: the arrival spec.
    tau: the staleness bound to put in (T1); default ``arrivals.tau`` in theorem mode, else
    the largest staleness observed in the runs (a pathwise bound only for deterministic
    schedules — C4 is not guaranteed otherwise, theory/assumptions.md §3).
    constants: override the computed :class:`ProblemConstants`.
    stride: evaluate every ``stride`` steps (1: the exact left-hand side; module docstring).
    progress: ``progress(done, total)`` server steps over all seeds (a progress bar).
    """
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    rule = algorithm.rule
    params = dict(rule.params)
    if rule.name == "persafl":
        beta, K = float(params["beta"]), 1
    elif rule.name == "fedbuff":
        if getattr(params["weight"], "kind", "constant") != "constant":
            raise ValueError("algorithm: (T1) covers fedbuff only with constant staleness weights")
        beta, K = float(params["eta_g"]), int(params["K"])
    else:
        raise ValueError(
            f"algorithm: (T1) covers the persafl and fedbuff rules, got {rule.name!r}"
        )
    if constants is None:
        from persafl_np.data import ClientData, FederatedDataset

        ds = FederatedDataset(
            clients=tuple(ClientData(*map(to_numpy, c)) for c in problem.clients),
            n_features=int(problem.clients[0][0].shape[1]),
            n_classes=problem.n_classes,
            name="check_bound",
        )
        constants = problem_constants(problem.model, problem.oracle, ds, problem.w0,
                                      batch_size=algorithm.batch_size)
    measured, weighted, shares, max_st = [], [], [], 0
    if run:
        import contextlib

        from persafl_np.sim import run as sim_run

        try:  # scikit-learn's dependency; absent, BLAS keeps its default thread count
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover
            threadpool_limits = None

        def one_thread() -> Any:  # a fresh context per run: threadpool_limits applies at once
            return (contextlib.nullcontext() if threadpool_limits is None
                    else threadpool_limits(limits=1, user_api="blas"))

        for k, s in enumerate(seeds):
            kw = {} if progress is None else {
                "progress": lambda v, _T, k=k: progress(k * T + v, len(seeds) * T)}
            with one_thread():
                res = sim_run(problem, algorithm, arrivals, T=T, seed=int(s), eval_every=stride,
                              **kw)
            if res.status != "ok":
                raise ValueError(f"run with seed {s} ended with status {res.status}: {res.message}")
            measured.append(average_stationarity(res.history, T, stride=stride))
            weighted.append(average_stationarity(res.history, T, "weighted_grad_norm2",
                                                 stride=stride))
            shares.append(np.asarray(res.shares, dtype=np.float64))
            max_st = max(max_st, int(res.counters["max_staleness"]))
    if tau is None:
        from persafl_np.sim import TheoremMode

        tau = int(arrivals.tau) if isinstance(arrivals, TheoremMode) else max_st
    sigma2 = constants.sigma2 if math.isfinite(constants.sigma2) else math.inf
    args = (constants.L, sigma2, constants.gamma2, constants.delta_f, T, tau, algorithm.Q,
            algorithm.eta, beta, K)
    return BoundCheck(
        constants=constants,
        bound=stationarity_bound(*args),
        sharp=stationarity_bound(*args, constants="sharp"),
        measured=tuple(measured),
        weighted=tuple(weighted),
        shares=tuple(np.mean(shares, axis=0).tolist()) if shares else None,
        max_staleness=max_st,
        stride=stride,
    )
