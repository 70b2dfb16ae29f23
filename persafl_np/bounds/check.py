"""Check the bound (T1) on a concrete instance: constants → bound → simulator runs → ratio.

This is the one module of :mod:`persafl_np.bounds` that runs the simulator (imported lazily,
so the bound arithmetic and constants never depend on it). The measured quantity is the
left-hand side of (T1), theory/async_theorem.md:

    (1/T) Σ_{t<T} ‖∇F(w^t)‖²   from the exact full-batch history (``stride = 1``),

averaged over seeds (one seed = one arrival/noise stream on the *same* data and w⁰). With
``stride = k > 1`` the runs evaluate only at t = 0, k, 2k, … and T (``eval_every = k``; the
trajectory is the same, evaluation draws no randomness) and the measured value is the trapezoid
estimate of :func:`average_stationarity` (linear interpolation between the evaluated steps): an
estimate of the left-hand side, not the left-hand side itself (:attr:`BoundCheck.stride`
records which). On the README's run config (T = 600, a curve that falls 25-fold in the first
100 steps) it was within 3.1 % of the exact stride-1 value at k = 10 for each of seeds 0–3
(their mean within 0.1 %), below the seed-to-seed standard error (6 %), where the plain mean
over the evaluated steps was 11–20 % high.

The runs see the clients' training rows only (their test rows are dropped: the left-hand side
of (T1) is a function of the training objective F alone, the trajectory never reads test rows,
and the evaluation then skips the test accuracies, a third of its cost on the README config).

The runs use one BLAS thread when threadpoolctl is installed (as ``persafl figures`` does): the
matrices are small, so this is faster, and the measured values then do not depend on the
machine's core count (a BLAS thread count can change float summation order). Independent seeds
may run in parallel processes (``workers``); each is the same single-threaded run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from persafl_np.arguments import check_int
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
    "quadratic_design",
]


@dataclass(frozen=True)
class SharedDesign:
    """A federation of quadratics f_i(w) = ½(w − c_i)ᵀA(w − c_i) + k_i with one Hessian A.

    A: the shared Hessian (d × d, symmetric); centers: the c_i (n × d); offsets: k_i = min f_i
    (n,), or ``None`` for 0 (``persafl_np.data.shifted_least_squares``: y_i = X c_i).
    """

    A: np.ndarray
    centers: np.ndarray
    offsets: np.ndarray | None = None


def _host(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a))


def quadratic_design(model: Any, dataset: Any, w0: Any) -> SharedDesign | None:
    """The shared-Hessian quadratic form of the clients' objectives, from the model's own methods.

    Dispatch is on the model's declared constants (the constants protocol of
    :class:`persafl_np.models.base.Model`), not on its class: a model whose Hessian-Lipschitz
    constant ρ is 0 on every client has a constant Hessian, so each f_i is a quadratic. Then
    A_i = ∇²f_i (``model.hessian``), c_i = w⁰ − A_i⁺∇f_i(w⁰) and k_i = f_i(c_i) (every
    variant of eq. (AS-1) keeps the additive k_i, so L_F, γ² and Δ_F are those of the shifted
    family; F* and F(w⁰) get the mean of k_i). Covers least squares with or without ℓ₂ and
    any user quadratic model.

    Returns ``None`` when some client declares ρ > 0 (not a quadratic: the bounded-gradient
    family applies instead). Raises ``ValueError`` when the Hessians differ between clients
    (γ² is then unbounded, theory/assumptions.md §2) or a gradient is not in the range of its
    Hessian (f_i is unbounded below: no F*).
    """
    clients = dataset.clients
    if any(float(model.hessian_lipschitz(c.X_train, c.y_train)) != 0.0 for c in clients):
        return None
    w = np.asarray(to_numpy(w0), dtype=np.float64)
    A = None
    centers, offsets = [], []
    for i, c in enumerate(clients):
        X, y = _host(c.X_train), _host(c.y_train)
        H = np.asarray(to_numpy(model.hessian(w, X, y)), dtype=np.float64)
        H = 0.5 * (H + H.T)
        if A is None:
            A = H
        elif not np.allclose(H, A, rtol=0.0, atol=1e-12 * max(1.0, float(np.abs(A).max()))):
            raise ValueError(
                "dataset: the clients' quadratic objectives have different Hessians (e.g. least "
                "squares with client-specific designs), so gamma2 is unbounded and (T1) is "
                "vacuous (theory/assumptions.md §2)"
            )
        g = np.asarray(to_numpy(model.grad(w, X, y)), dtype=np.float64)
        step = np.linalg.lstsq(A, g, rcond=None)[0]
        if not np.allclose(A @ step, g, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(g).max()))):
            raise ValueError(
                f"dataset: client {i}'s gradient is not in the range of its Hessian, so f_{i} is "
                "unbounded below (no F*, C1 fails; theory/assumptions.md §2)"
            )
        centers.append(w - step)
        offsets.append(float(to_numpy(model.loss(w - step, X, y))))
    return SharedDesign(A=A, centers=np.stack(centers), offsets=np.asarray(offsets))


def problem_constants(
    model: Any, oracle: Any, dataset: Any, w0: Any, *, batch_size: int | None = None
) -> ProblemConstants:
    """Constants of (T1) for the model's problem family, chosen by its declared constants.

    Quadratics with a shared Hessian (ρ = 0 on every client, :func:`quadratic_design`): exact
    constants (eqs. (AS-1)–(AS-3)). Otherwise the bounded-gradient family: upper bounds from
    the model's L, ρ, B (eq. (AS-4), :func:`~persafl_np.bounds.constants.robust_constants`).
    Raises ``ValueError`` when neither applies, naming the assumption that fails (different
    Hessians: γ² = ∞; an infinite gradient bound B).
    """
    design = quadratic_design(model, dataset, w0)
    if design is not None:
        return shifted_ls_constants(design, oracle, w0, batch_size=batch_size)
    return robust_constants(model, dataset, oracle, w0, batch_size=batch_size)


def average_stationarity(history: Any, T: int, column: str = "grad_norm2",
                         stride: int = 1) -> float:
    """(1/T) Σ_{t<T} ‖∇F(w^t)‖² from a run's history (``stride=1``: every step 0..T−1 recorded).

    ``column="weighted_grad_norm2"`` averages ‖Σ_i p_i ∇F_i(w^t)‖² instead. ``stride=k > 1``: the
    trapezoid estimate from the values at S = {0, k, 2k, …} ∪ {T} (all must be recorded; the
    engine evaluates t = T too): between consecutive s < s′ of S the k values are replaced by
    the straight line through (s, g_s) and (s′, g_s′), so the estimate is
    (1/T) Σ_{(s, s′)} [(s′ − s) g_s + (g_s′ − g_s)(s′ − s − 1)/2] — exact when g_t is affine
    in t between the points. (The plain mean over S overestimates a decaying curve: +6..11 % at
    k = 6 on the README config, where this estimate is within 2 %; module docstring.)
    """
    steps = np.asarray(history.step)
    g = np.asarray(getattr(history, column))
    # history may hold a row per step plus the final one; keep the first row of each t <= T.
    sel: dict[int, float] = {}
    for st, v in zip(steps.tolist(), g.tolist(), strict=True):
        if st <= T and int(st) not in sel:
            sel[int(st)] = v
    if stride == 1:
        missing = [t for t in range(T) if t not in sel]
        if missing:
            raise ValueError(f"history has {T - len(missing)} of the {T} steps t < T; "
                             "run with eval_every=1")
        return math.fsum(sel[t] for t in range(T)) / T
    points = sorted(set(range(0, T, stride)) | {T})
    missing = [t for t in points if t not in sel]
    if missing:
        raise ValueError(
            f"history lacks steps {missing[:3]} of t = 0, {stride}, {2 * stride}, ... and T = "
            f"{T}; run with eval_every={stride}"
        )
    terms = []
    for s0, s1 in zip(points[:-1], points[1:], strict=True):
        n = s1 - s0
        terms += [n * sel[s0], (sel[s1] - sel[s0]) * (n - 1) / 2.0]
    return math.fsum(terms) / T


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


def _one_thread() -> Any:
    """A BLAS thread limit for one run (a fresh context per run: it applies at once)."""
    import contextlib

    try:  # scikit-learn's dependency; absent, BLAS keeps its default thread count
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _measure_seed(job: tuple, seed: int,
                  progress: Callable[[int, int], None] | None = None) -> tuple:
    """(measured, weighted, shares, max staleness) of one seed's run (module docstring)."""
    from persafl_np.sim import run as sim_run

    problem, algorithm, arrivals, T, stride = job
    kw = {} if progress is None else {"progress": progress}
    with _one_thread():
        res = sim_run(problem, algorithm, arrivals, T=T, seed=seed, eval_every=stride, **kw)
    if res.status != "ok":
        raise ValueError(f"run with seed {seed} ended with status {res.status}: {res.message}")
    return (average_stationarity(res.history, T, stride=stride),
            average_stationarity(res.history, T, "weighted_grad_norm2", stride=stride),
            np.asarray(res.shares, dtype=np.float64), int(res.counters["max_staleness"]))


#: The job the forked workers of :func:`_measure_seeds` inherit (set only while they run):
#: the problem and the rule hold closures, which cannot be pickled, and need not be.
_FORK_JOB: tuple | None = None


def _forked_seed(item: tuple[int, int]) -> tuple[int, tuple]:
    assert _FORK_JOB is not None
    k, seed = item
    return k, _measure_seed(_FORK_JOB, seed)


def _measure_seeds(job: tuple, seeds: list[int], workers: int,
                   progress: Callable[[int, int], None] | None) -> list[tuple]:
    """Every seed's measurement, in seed order; up to ``workers`` forked processes at once.

    An exception or an interrupt (Ctrl-C) in the parent or a worker terminates the workers.
    """
    import multiprocessing as mp

    T = job[3]
    total = len(seeds) * T
    if workers == 1 or len(seeds) == 1 or "fork" not in mp.get_all_start_methods():
        out = []
        for k, s in enumerate(seeds):
            tick = None if progress is None else (
                lambda v, _T, k=k: progress(k * T + v, total))
            out.append(_measure_seed(job, s, tick))
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    global _FORK_JOB
    _FORK_JOB = job
    results: dict[int, tuple] = {}
    # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies (killed, or interrupted
    # by a Ctrl-C sent to the whole process group) fails its future (BrokenProcessPool /
    # KeyboardInterrupt) instead of leaving the parent waiting for a result that never comes.
    pool = ProcessPoolExecutor(max_workers=min(workers, len(seeds)),
                               mp_context=mp.get_context("fork"))
    try:
        futures = [pool.submit(_forked_seed, (k, s)) for k, s in enumerate(seeds)]
        for fut in as_completed(futures):
            k, res = fut.result()
            results[k] = res
            if progress is not None:
                progress(len(results) * T, total)
    except BaseException:
        # stop at once: the workers are still computing their seeds (a SIGINT may have reached
        # only this process); the executor has no public way to end running tasks
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        _FORK_JOB = None
    return [results[k] for k in range(len(seeds))]


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
    workers: int = 1,
) -> BoundCheck:
    """Evaluate (T1) for a simulator problem and (optionally) measure its left-hand side.

    problem: a ``persafl_np.sim.Problem``; algorithm: ``Algorithm`` with rule ``persafl``
    (β) or ``fedbuff`` with constant weights (β = η_g, K); arrivals: the arrival spec.
    tau: the staleness bound to put in (T1); default ``arrivals.tau`` in theorem mode, else
    the largest staleness observed in the runs (a pathwise bound only for deterministic
    schedules — C4 is not guaranteed otherwise, theory/assumptions.md §3).
    constants: override the computed :class:`ProblemConstants`.
    stride: evaluate every ``stride`` steps (1: the exact left-hand side; module docstring).
    progress: ``progress(done, total)`` server steps over all seeds (a progress bar; with
        ``workers > 1`` it advances when a seed's run ends).
    workers: run up to this many seeds at once in forked processes (Linux/macOS; elsewhere, or
        with 1, one after the other). The measured values are the same bits either way: each
        seed is one deterministic run on one BLAS thread.
    """
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    workers = check_int(workers, "workers", 1)
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
        import dataclasses

        # training rows only (module docstring): same trajectory, same measured values
        problem = dataclasses.replace(problem, clients=tuple(
            (c[0], c[1], c[0][:0, ...], c[1][:0, ...]) for c in problem.clients))
        job = (problem, algorithm, arrivals, T, stride)
        for m in _measure_seeds(job, [int(s) for s in seeds], workers, progress):
            measured.append(m[0])
            weighted.append(m[1])
            shares.append(m[2])
            max_st = max(max_st, m[3])
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
