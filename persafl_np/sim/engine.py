"""The simulation loop: arrivals → client updates → server rule → evaluation (theory/simulator.md).

:func:`run` works on objects (a :class:`Problem`, an :class:`~persafl_np.algorithms.Algorithm`,
an arrival spec) and is what analysis code calls; :func:`persafl_np.simulate` builds those
objects from a :class:`~persafl_np.config.SimConfig` and calls it.

Per arrival (client i, pulled version p, staleness τ, accepted?):

1. the job's result: computed when first needed, together with the other pending jobs (cohort
   execution, theory/simulator.md §3.1): Δ of eq. (LOC-C) from the model the job pulled when
   it was dispatched (pending jobs hold it: the store keeps only the current version — theorem
   mode: the last τ + 1 — so memory is O(min(τ_max, C)·d)), with client i's batches from its
   own stream (law (SIM-BATCH)), so the update does not depend on other clients or on the
   grouping;
2. if accepted, the server rule updates (w, t); else the work is counted as wasted;
3. when t changes: NaN/Inf check (stop, keep everything so far), store w^t, evaluate every
   ``eval_every`` steps and at t = T. Evaluation is exact, float64, full-batch and outside the
   clock (:mod:`persafl_np.sim.evaluation`).

Evaluated quantities at w = w^t (eq. (SIM-EVAL) of theory/simulator.md):
‖∇F(w)‖² with F = (1/n)Σ F_i; F(w); ‖Σ_i p_i ∇F_i(w)‖² with p_i the applied-update shares so far
(uniform before the first update); for classifiers the pooled test accuracy of w and the mean
and minimum over clients of the test accuracy of the personalized model θ_i = personalize(w).
"""

from __future__ import annotations

import gc
import math
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.algorithms.algorithm import Algorithm
from persafl_np.algorithms.rules import Contribution, ServerState
from persafl_np.arguments import check_int
from persafl_np.backend import array_namespace, to_device_like, to_numpy
from persafl_np.data.federated import check_client_labels, packed_rows
from persafl_np.fingerprint import run_fingerprint
from persafl_np.personalization.cohort import CohortData, Kernels, local_update_many
from persafl_np.personalization.sampling import BatchSampler
from persafl_np.results import (
    HISTORY_FIELDS,
    JOB_DTYPE,
    TRACE_DTYPE,
    History,
    RowBuffer,
    RunResult,
    Trace,
)
from persafl_np.sim import streams
from persafl_np.sim.arrivals import APPLIED, DROPPED, EventDriven, Replay, TheoremMode, make_source
from persafl_np.sim.checkpoint import MANIFEST, Checkpointer, as_rows, has_checkpoint
from persafl_np.sim.evaluation import (
    PADDED_BYTES,
    Evaluator,
    eval_width,
    evaluate,
    padded_chunk,
)
from persafl_np.sim.samplers import PARK_ABOVE, ParkedSampler, RecordedSampler

__all__ = ["DEFAULT_COHORT_SIZE", "Problem", "batches_from_npz", "evaluate", "run"]


def _cast(a: Any, dtype: str) -> Any:
    xp = array_namespace(a)
    return xp.astype(a, getattr(xp, dtype))


def _floating(a: Any) -> bool:
    return bool(array_namespace(a).isdtype(a.dtype, "real floating"))


def _cast_clients(clients: list, dtype: str) -> list:
    """The clients with features and regression targets in ``dtype`` (labels stay integers).

    Each field is cast once, in the concatenated layout (:func:`packed_rows`: no copy when the
    clients already lie back to back), and the clients become views of the cast array, so the
    cohort engine finds them packed and holds the cast data once."""
    out = [list(c) for c in clients]
    for k in range(4):
        col = [c[k] for c in clients]
        if k % 2 == 1 and not _floating(col[0]):
            continue
        xp = array_namespace(col[0])
        if all(a.dtype == getattr(xp, dtype) for a in col):
            continue
        flat = _cast(packed_rows(col), dtype)
        o = 0
        for c, a in zip(out, col, strict=True):
            m = int(a.shape[0])
            c[k] = flat[o:o + m, ...]
            o += m
    return [tuple(c) for c in out]


@dataclass(frozen=True)
class Problem:
    """What is optimized: model f, oracle (F_i), per-client data, start point w⁰.

    clients: tuple of (X_train, y_train, X_test, y_test) per client (test may be empty).
    n_classes: number of classes for classifiers (None for regression).
    """

    model: Any
    oracle: Any
    clients: tuple[tuple[Any, Any, Any, Any], ...]
    w0: Any
    n_classes: int | None = None

    @property
    def n_clients(self) -> int:
        return len(self.clients)

    @classmethod
    def build(cls, model: Any, oracle: Any, data: Any, w0: Any = None, seed: int = 0,
              dtype: str | None = None) -> Problem:
        """From a FederatedDataset (``.clients`` with X_train, …) or a list of (X, y[, Xt, yt]).

        ``w0=None`` draws ``model.init_params`` from the init stream of ``seed``.
        ``dtype``: ``"float64"`` or ``"float32"`` casts the features and w⁰ (None: as given).
        Checks, constants and bounds stay float64 (they convert on the host).
        """
        if dtype not in (None, "float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        n_classes = getattr(data, "n_classes", None)
        raw = data.clients if hasattr(data, "clients") else data
        clients = []
        empty: dict[tuple, tuple] = {}  # one empty test split per array kind (10⁵ clients)
        for k, c in enumerate(raw):
            if hasattr(c, "X_train"):
                tup = (c.X_train, c.y_train, c.X_test, c.y_test)
            else:
                c = tuple(c)
                if len(c) == 2:
                    X, y = c
                    key = (type(X), X.dtype, tuple(X.shape[1:]), type(y), y.dtype)
                    e = empty.get(key)
                    if e is None:
                        e = empty[key] = (X[:0, ...], y[:0, ...])
                    tup = (X, y, *e)
                elif len(c) == 4:
                    tup = c
                else:
                    raise ValueError(f"client {k}: expected (X, y) or (X, y, X_test, y_test)")
            model.check_data(tup[0], tup[1])
            clients.append(tup)
        if not clients:
            raise ValueError("data must contain at least one client")
        if dtype is not None:
            clients = _cast_clients(clients, dtype)
        d = int(clients[0][0].shape[1])
        if any(int(c[0].shape[1]) != d for c in clients):
            raise ValueError("every client's X must have the same number of features")
        if w0 is None:
            w0 = to_device_like(model.init_params(streams.init_rng(seed), d), clients[0][0])
        if dtype is not None:
            w0 = _cast(w0, dtype)
        p = model.num_params(d)
        if tuple(w0.shape) != (p,):
            raise ValueError(f"w0 must have shape ({p},), got {tuple(w0.shape)}")
        if n_classes is None and getattr(model, "is_classifier", False):
            n_classes = getattr(model, "n_classes", None)
        check_client_labels(clients, n_classes)  # labels in 0..C-1 (issue 10 item 5)
        return cls(model, oracle, tuple(clients), w0, n_classes)


#: Default cohort limit (jobs computed together). Measured on the 100-client softmax workload
#: (float32, loaded 2-core machine, /tmp sweep noted in theory/simulator.md §3.1): client
#: updates/s at cohort 1 / 8 / 32 / 128 = 182 / 769 / 806 / 687 (event mode, where batches are
#: ~13 jobs anyway) and 199 / 892 / 1412 / 1717 (sync rounds of 100). 128 covers a 100-client
#: round and keeps a MAML cohort's gathers at ~37 MB (float64).
DEFAULT_COHORT_SIZE = 128
#: A deferred run is built once its Δs reach this many bytes (theory/simulator.md §3.3).
_RUN_BYTES = 4 * 2**20
#: The cyclic collector's generation-0 threshold while the event loop runs (step_until).
_GC_GEN0 = 50_000
#: Results stay views of their cohort's block when every block they could keep alive
#: (n clients × min(n, cohort_size) rows × p) fits in this many bytes (_compute_group).
_VIEW_BYTES = 64 * 2**20
#: A deferred run of linear updates continues while ‖w‖∞ + Σ s‖Δ‖ stays below this (§3.3):
#: then no entry can overflow, and the one-by-one finiteness check cannot fire.
_SAFE_BOUND = 1e300

#: The deferred run's running sum over rows (np.cumsum's own ufunc, without its wrapper).
_running_sum = np.add.accumulate


def _stack(rows: list, xp: Any) -> Any:
    """(C, p) from C vectors of p entries (np.stack's checks cost ~10 µs per cohort; the values
    are copied either way)."""
    if type(rows[0]) is np.ndarray:
        return np.concatenate(rows).reshape(len(rows), -1)
    return xp.stack(rows)


def _per_row(v: Any) -> Any:
    """A cohort counter as an iterable of Python ints (one per row)."""
    return repeat(v) if type(v) is int else v.tolist()


def batches_from_npz(z: Any, m: Any = None) -> dict[int, list]:
    """Per-client lists of (Q·k, b) batch arrays, in job order, from a ``batches.npz``.

    The file's layout is checked first (``ValueError`` naming what is wrong): integer arrays
    ``client`` (J,), ``shape`` (J, 2) ≥ 0, ``offset`` (J + 1,) rising from 0 by each job's
    rows to ``len(rows)``. With ``m`` (each client's number of training rows) the client ids
    must lie in 0..len(m)−1 and every row index of client i in 0..m_i − 1."""
    need = ("client", "offset", "rows", "shape")
    have = set(getattr(z, "files", None) or z.keys())
    missing = [k for k in need if k not in have]
    if missing:
        raise ValueError(f"batches: missing array(s) {', '.join(missing)} (a batches.npz holds "
                         f"{', '.join(need)})")
    cl, off, rows, shape = (np.asarray(z[k]) for k in need)
    for name, a in (("client", cl), ("offset", off), ("rows", rows), ("shape", shape)):
        if a.size and a.dtype.kind not in "iu":
            raise ValueError(f"batches: {name} must hold integers, got dtype {a.dtype}")
    J = cl.shape[0] if cl.ndim == 1 else -1
    if J < 0 or shape.shape != (J, 2) or off.shape != (J + 1,) or rows.ndim != 1:
        raise ValueError(f"batches: expected client (J,), shape (J, 2), offset (J+1,), rows "
                         f"(N,), got {cl.shape}, {shape.shape}, {off.shape}, {rows.shape}")
    sizes = shape[:, 0].astype(np.int64) * shape[:, 1] if J else np.zeros(0, np.int64)
    if (shape < 0).any() or int(off[0]) != 0 or (np.diff(off) != sizes).any() \
            or int(off[-1]) != rows.shape[0]:
        raise ValueError("batches: offset must start at 0 and rise by each job's shape[0]·"
                         "shape[1] rows to len(rows), with shapes >= 0")
    if m is not None:
        m = np.asarray(m, dtype=np.int64)
        if J and (int(cl.min()) < 0 or int(cl.max()) >= m.shape[0]):
            raise ValueError(f"batches: client ids must lie in 0..{m.shape[0] - 1}, got "
                             f"{int(cl.min())}..{int(cl.max())}")
        if rows.size:
            owner = np.repeat(cl.astype(np.int64), sizes)
            bad = (rows < 0) | (rows >= m[owner])
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                i = int(owner[k])
                raise ValueError(f"batches: client {i} has {int(m[i])} training rows, its "
                                 f"batch indices must lie in 0..{int(m[i]) - 1}, got "
                                 f"{int(rows[k])}")
    out: dict[int, list] = {}
    for j, c in enumerate(cl.tolist()):
        r = rows[off[j]:off[j + 1]].astype(np.int64).reshape(tuple(shape[j]))
        out.setdefault(int(c), []).append(r)
    return out


class _Run:
    """Mutable state of one run (everything a checkpoint must hold)."""

    def __init__(self, problem: Problem, algorithm: Algorithm, arrivals: Any, T: int, seed: int,
                 eval_every: int, max_arrivals: int | None, cohort_size: int | None = None,
                 record_batches: bool = False, batches: dict[int, list] | None = None) -> None:
        self.problem, self.alg, self.arrivals = problem, algorithm, arrivals
        self.T, self.seed, self.eval_every = T, seed, eval_every
        self.max_arrivals = max_arrivals
        self.cohort_size = DEFAULT_COHORT_SIZE if cohort_size is None else cohort_size
        self.record = record_batches
        self.replay_batches = batches
        if batches is not None and getattr(problem.oracle, "adds_noise", False):
            raise ValueError("recorded batches cannot replay the additive-noise oracle's draws")
        n = problem.n_clients
        self.n = n
        rule = algorithm.rule
        self.source = make_source(arrivals, n, seed, rule.K, algorithm.synchronous)
        self.state: ServerState = rule.init(problem.w0)
        self.store: dict[int, Any] = {0: problem.w0}
        self.store_lo = 0
        self.warm: dict[int, Any] = {}
        self.samplers: dict[int, Any] = {}
        self.shared_rng = np.random.default_rng(0)  # the parked samplers' working generator
        self.pending: dict[int, Any] = {}
        self.done: dict[int, tuple] = {}
        self.counts = np.zeros(n, dtype=np.int64)
        self.trace = RowBuffer(TRACE_DTYPE)
        self.hist_rows: list[tuple] = []
        self.batch_log: list[tuple[int, int, Any]] = []
        self.counters = {"n_grad": 0, "n_hvp": 0, "n_inner": 0, "wasted_grad": 0,
                         "wasted_hvp": 0, "arrivals": 0, "applied": 0, "max_staleness": 0}
        self.now = 0.0
        self.eval_seconds = 0.0
        self.status, self.message = "ok", ""
        self.started = False
        self.xp = array_namespace(problem.w0)
        self.data = CohortData([cl[0] for cl in problem.clients],
                               [cl[1] for cl in problem.clients])
        self.kern = Kernels(problem.model)
        self.evaluator = Evaluator(problem, self.data)
        self.full_chunk = padded_chunk(self.data, self.cohort_size)
        # full-batch jobs: each client padded to its own width (_compute_full)
        self.width = eval_width(self.data.m).tolist()
        self.one_width = len(set(self.width)) == 1
        self.m_list = self.data.m.tolist()
        self.noise = bool(getattr(problem.oracle, "adds_noise", False))
        self.zeros = self.xp.zeros_like(problem.w0)
        w0 = problem.w0
        self.row_bytes = int(w0.shape[0]) * getattr(w0.dtype, "itemsize", 8)  # one p-vector
        self.row_views = n * min(n, self.cohort_size) * self.row_bytes <= _VIEW_BYTES

    # -- helpers
    def _shares(self) -> np.ndarray:
        tot = int(self.counts.sum())
        return self.counts / tot if tot else np.full(self.n, 1.0 / self.n)

    def _eval(self) -> None:
        w = self.state.w
        own = None
        models = self.alg.rule.client_models
        if models is not None:
            own = self.xp.stack(models(self.state, self.n))
            w = sum((own[i, ...] for i in range(1, self.n)), own[0, ...]) / self.n
        t0 = _time.perf_counter()
        vals = self.evaluator(w, self._shares(), own)
        self.eval_seconds += _time.perf_counter() - t0
        self.hist_rows.append((self.state.version, self.now, self.counters["arrivals"], *vals))

    def _finite(self, w: Any) -> bool:
        # w·0 = 0 exactly when every entry is finite (NaN·0 and ±Inf·0 are NaN).
        if type(w) is np.ndarray:
            return w.dot(self.zeros) == 0.0
        return float(w @ self.zeros) == 0.0

    def _sampler(self, i: int) -> Any:
        s = self.samplers.get(i)
        if s is None:
            if self.replay_batches is not None:
                s = RecordedSampler(i, self.replay_batches.get(i, []))
            elif self.n <= PARK_ABOVE:
                s = BatchSampler(partial(streams.client_rng, self.seed, i))
            else:
                s = ParkedSampler(partial(streams.client_rng, self.seed, i), self.shared_rng)
            self.samplers[i] = s
        return s

    # -- cohort execution (theory/simulator.md §3.1)
    def _compute(self, first: int) -> None:
        """Compute the job of ``first`` together with up to cohort_size − 1 other pending jobs
        (in dispatch order); results go to ``done``. Row results do not depend on the group."""
        pend, cs = self.pending, self.cohort_size
        if len(pend) <= cs:
            group = list(pend)
            if group[0] != first:
                group.remove(first)
                group.insert(0, first)
        else:
            group = [first]
            if cs > 1:
                for j in pend:
                    if j != first:
                        group.append(j)
                        if len(group) >= cs:
                            break
        b = self.alg.batch_size
        if b is None:
            self._compute_full(group)
            return
        m = self.m_list
        mini = [j for j in group if m[j] > b]
        if len(mini) < len(group):
            self._compute_full([j for j in group if m[j] <= b])
        if mini:
            self._compute_group(mini, True)

    def _compute_full(self, jobs: list[int]) -> None:
        """Full-batch jobs (theory/simulator.md §3.1): client i padded to its own width
        :func:`~persafl_np.sim.evaluation.eval_width` (m_i up to a power of two), one stacked
        call per width, each of at most cohort_size jobs and PADDED_BYTES of padded rows.
        Padding everyone to the run's largest client processed 4.7× (20 clients) to 8.6×
        (100 clients) the real rows on FedProx Synthetic(0.5, 0.5), the ladder 1.4×
        (benchmarks/bench_full_batch.py)."""
        noise, width = self.noise, self.width
        if self.one_width:
            # the general branch below with its one width (padded_chunk is its step, width
            # m_max is full()'s default: the same calls); kept because the per-cohort grouping
            # costs ~1.3k instructions per event-driven arrival (valgrind, null oracle, 3 %)
            fc = self.full_chunk
            for a in range(0, len(jobs), fc):
                self._compute_group(jobs[a:a + fc], noise)
            return
        by: dict[int, list[int]] = {}
        for j in jobs:
            by.setdefault(width[j], []).append(j)
        row = (self.data.d + 1) * 8
        for wd in sorted(by):
            js = by[wd]
            step = max(1, min(self.cohort_size, PADDED_BYTES // (wd * row)))
            for a in range(0, len(js), step):
                self._compute_group(js[a:a + step], noise, wd)

    def _compute_group(self, g: list[int], draws: bool, width: int | None = None) -> None:
        """One layout group (theory/simulator.md §3.1); ``draws``: its jobs use their clients'
        streams (mini-batches or noise), so their samplers are needed; ``width``: the padded
        width of a full-batch group (None: the run's largest client)."""
        pend, warm, xp = self.pending, self.warm, self.xp
        us = list(map(pend.pop, g))
        U = _stack(us, xp)
        W0 = None
        if warm and any(j in warm for j in g):
            W0 = _stack([warm.get(j, us[c]) for c, j in enumerate(g)], xp)
        alg = self.alg
        res = local_update_many(
            self.problem.oracle, self.kern, self.data, np.asarray(g, dtype=np.int64), U,
            [self._sampler(j) for j in g] if draws else None, alg.Q, alg.eta, alg.batch_size,
            alg.prox, W0,
            self.record, width,
        )
        C = len(g)
        D, Wn = res.delta, res.warm
        # A result is a row of its cohort's (C, p) block; rows are copied out unless every
        # block that results could keep alive fits in _VIEW_BYTES (one result per client, so
        # at most n blocks): a straggler must not pin its cohort's block in a large run
        # (memory O(outstanding jobs · p), not O(outstanding · C · p)).
        # ‖Δ‖ of every row at once (the trace's update_norm): einsum's sum of products runs
        # over each row alone, so it does not depend on the cohort either (and it raises no
        # overflow warning: an infinite norm stops the run, theory/simulator.md §3.2).
        if type(D) is np.ndarray:
            norms = np.sqrt(np.einsum("ij,ij->i", D, D)).tolist()
            if self.row_views:
                Dr = list(D)
                Wr = repeat(None) if Wn is None else list(Wn)
            else:
                Dr = [r.copy() for r in D]
                Wr = repeat(None) if Wn is None else [r.copy() for r in Wn]
        else:
            norms = to_numpy(xp.sqrt(xp.sum(D * D, axis=1))).tolist()
            Dr = [xp.asarray(D[c, ...], copy=True) for c in range(C)]
            Wr = repeat(None) if Wn is None else [xp.asarray(Wn[c, ...], copy=True)
                                                  for c in range(C)]
        # done[j] = (pulled model or None, Δ, ‖Δ‖, n_grad, n_hvp, n_inner, warm or None,
        #            batch rows)
        # (repeat(None) for absent fields: the inner zip stops at the C rows)
        self.done.update(zip(g, zip(
            us if self.alg.rule.needs_pulled else repeat(None), Dr, norms, _per_row(res.n_grad),
            _per_row(res.n_hvp), _per_row(res.n_inner), Wr,
            repeat(None) if res.batches is None else res.batches, strict=False), strict=True))

    def _flush(self) -> None:
        """Compute every pending job (before a checkpoint: the saved state then holds the
        results of all outstanding jobs, whatever grouping the run used)."""
        while self.pending:
            self._compute(next(iter(self.pending)))

    # -- main loop
    def step_until(self, stop_version: int) -> None:
        rule, src = self.alg.rule, self.source
        pull = rule.pull  # the rule's own per-client models (local-only), else the server's
        pending, done = self.pending, self.done
        dispatched = src.dispatched
        if not self.started:
            src.start(0)
            for j, _ in dispatched:
                pending[j] = self.state.w if pull is None else pull(self.state, j)
            dispatched.clear()
            self._eval()
            self.started = True
        # Hot loop: names, counters and run state are bound locally and written back before
        # every evaluation and in `finally`.
        compute = self._compute
        store, warm, counts = self.store, self.warm, self.counts
        c, trace = self.counters, self.trace
        trace_rows = trace.pending  # RowBuffer.append inlined: hot path
        trace_append, chunk = trace_rows.append, trace.CHUNK
        record, batch_log = self.record, self.batch_log
        update, nxt, after = rule.update, src.next, src.after
        step_scale = self.alg.step_scale  # (TA-5) reweighting / (TB-4) delay-adaptive; None = off
        ahead = getattr(src, "ahead", None)
        oldest, finite = src.oldest_needed, self._finite
        eval_every, T = self.eval_every, self.T
        ndarray, zeros, new_tuple = np.ndarray, self.zeros, tuple.__new__
        max_arr = math.inf if self.max_arrivals is None else self.max_arrivals
        n_grad, n_hvp, n_inner = c["n_grad"], c["n_hvp"], c["n_inner"]
        arrivals, applied, max_tau = c["arrivals"], c["applied"], c["max_staleness"]
        w_grad, w_hvp = c["wasted_grad"], c["wasted_hvp"]
        state, now, store_lo = self.state, self.now, self.store_lo
        # Deferred runs of a linear rule (theory/simulator.md §3.3): while every update is
        # w ← w − s·Δ and provably finite, accepted Δs are queued (dz) and the versions they
        # make are built at once by a running sum; dispatches in the run wait in dd as
        # (client, index of the version they pull) until then.
        lin = rule.linear
        if step_scale is not None or pull is not None or type(state.w) is not ndarray:
            lin = None
        dz: list = []
        dd: list[tuple[int, int]] = []
        if lin is not None:  # no step scale reads them: counts as Python ints, synced below
            counts = counts.tolist()
        version = state.version
        bound = float(np.abs(state.w).max()) if lin is not None else 0.0  # ≥ ‖w‖∞
        safe, views, add_acc = _SAFE_BOUND, self.row_views, _running_sum
        # at most _RUN_BYTES of Δs per deferred run (materialize holds ~3 such blocks)
        run_cap = max(2, _RUN_BYTES // max(1, self.row_bytes))
        # the fast path of the blocked event source (below)
        fast = lin is not None and bool(getattr(src, "blocked", False)) and not dispatched
        if fast:
            src_pulled, src_jobs, drop, tau_max = src.pulled, src.jobs, src.drop, src.tau_max
            job_rows = src_jobs.pending

        def materialize(hold: int = 1 << 62) -> ServerState:
            """Build the deferred versions, store them, hand the waiting jobs their models;
            ``hold``: a version the arrival being processed may still read from the store."""
            nonlocal store_lo
            k, w = len(dz), state.w
            if k <= 3:  # short runs (theorem mode): the rule's own expression, one by one
                rows = [w]
                for d in dz:
                    rows.append(rows[-1] - lin * d)
            else:
                X = np.concatenate(dz).reshape(k, -1)
                np.multiply(X, -lin, out=X)  # −s·Δ_j = −(s·Δ_j): the rule's rounding
                x0 = X[0]
                x0 += w  # (−s·Δ_1) + w = w − s·Δ_1 (IEEE addition commutes exactly)
                # w − s·Δ_1 − s·Δ_2 − …, summed left to right (add.accumulate is cumsum, a
                # sequential sum): the one-by-one roundings; the k versions are rows of one
                # block, each pulled by a job of this run
                W = add_acc(X, axis=0)
                # without row views (a large run) every version owns its memory: a job
                # pending for long, or the store, must not pin the run's block (as results)
                rows = list(W) if views else [r.copy() for r in W]
                rows.insert(0, w)
            for j, q in dd:
                pending[j] = rows[q]
            v0 = state.version
            keep = min(oldest(v0 + k), hold)
            for q in range(max(1, keep - v0), k + 1):
                store[v0 + q] = rows[q]
            while store_lo < keep:
                store.pop(store_lo, None)
                store_lo += 1
            dz.clear()
            dd.clear()
            return new_tuple(ServerState, (rows[k], v0 + k, None, 0))

        # The loop allocates ~10 short-lived tuples per arrival; with CPython's default gen-0
        # threshold (700) the cyclic collector then runs every ~70 arrivals and costs ~10 % of
        # the per-event instructions (valgrind, null oracle). A higher threshold while the loop
        # runs lets those tuples die first (nothing here makes cycles); it is set only if
        # lower and put back only if still ours (safe with concurrent runs in threads).
        gc_old = gc.get_threshold()
        gc_ours = gc_old[0] < _GC_GEN0
        if gc_ours:
            gc.set_threshold(_GC_GEN0, gc_old[1], gc_old[2])
        try:
            while version < stop_version:
                if fast and arrivals < max_arr:
                    # The blocked source with a deferred linear rule: arrivals served straight
                    # from the simulated block, with next + after's bookkeeping written out
                    # (job row, pulled, n_dropped) and the lin branch below; no Arrival tuple,
                    # no dispatched list (~40 % of an event's instructions). It returns to the
                    # general body for the stop conditions and for an arrival that would cross
                    # the overflow margin, which it leaves unserved.
                    blk, bk = src.block()
                    nb = len(blk)
                    try:
                        while version < stop_version and arrivals < max_arr:
                            if bk == nb:
                                src.bk = bk
                                blk, bk = src.block()
                                nb = len(blk)
                            t, i, s0 = blk[bk]
                            r = done.pop(i, None)
                            if r is None:  # its cohort: every pending job, all dispatched
                                if dz or dd:
                                    state = materialize()
                                compute(i)
                                r = done.pop(i)
                            p = src_pulled[i]
                            tau = version - p
                            ok = not drop or tau <= tau_max
                            norm = r[2]
                            step = lin * norm
                            if ok and bound + step > safe:
                                done[i] = r  # the general body serves it, checked
                                break
                            bk += 1
                            job_rows.append((i, s0, t, p, APPLIED if ok else DROPPED))
                            if len(job_rows) >= chunk:
                                src_jobs.flush()
                            _, delta, _, g_i, h_i, in_i, wm, bidx = r
                            if wm is not None:
                                warm[i] = wm
                            if record:
                                batch_log.append((arrivals, i, bidx))
                            n_grad += g_i
                            n_hvp += h_i
                            n_inner += in_i
                            arrivals += 1
                            now = t
                            trace_append((t, version, i, p, tau, ok, norm))
                            if len(trace_rows) >= chunk:
                                trace.flush()
                            if ok:
                                counts[i] += 1
                                applied += 1
                                if tau > max_tau:
                                    max_tau = tau
                                dz.append(delta)
                                bound += step
                                version += 1
                            else:
                                w_grad += g_i
                                w_hvp += h_i
                                src.n_dropped += 1
                            src_pulled[i] = version
                            dd.append((i, len(dz)))
                            if ok and (version % eval_every == 0 or version == T):
                                src.bk = bk
                                state = materialize()
                                c["arrivals"] = arrivals
                                self.state, self.now = state, now
                                self.counts[:] = counts
                                self._eval()
                            elif len(dz) >= run_cap:
                                state = materialize()
                    finally:
                        src.bk = bk
                    if version >= stop_version or arrivals >= max_arr:
                        continue
                if arrivals >= max_arr:
                    self.status = "stalled"
                    self.message = f"stopped after max_arrivals={max_arr} arrivals"
                    break
                v_before = version
                a = nxt(v_before)
                if dispatched:  # jobs started by the source while advancing (START events)
                    if dz or dd:
                        state = materialize()
                    for j, _ in dispatched:
                        pending[j] = state.w if pull is None else pull(state, j)
                    dispatched.clear()
                if a is None:
                    self.status = "stalled"
                    self.message = (
                        "the arrival source has no more arrivals (replay exhausted, or no job "
                        "can finish: 10^5 consecutive events without an arrival)"
                    )
                    break
                now, i, pulled, tau, accepted, flush, _, _ = a
                r = done.pop(i, None)
                if r is None:
                    if dz or dd:  # the jobs to compute may pull deferred versions
                        # (keep w^pulled in the store if this job has to read it there: it was
                        # not dispatched, now or in the run — theorem mode, replay)
                        started = i in pending or any(j == i for j, _ in dd)
                        state = materialize(1 << 62 if started else pulled)
                    if i not in pending:  # theorem mode, replay: the job starts at its arrival
                        pending[i] = store[pulled] if pull is None else pull(state, i)
                        if ahead is not None:  # theorem mode, replay: coming jobs computable now
                            for j, pj in ahead(v_before, state.count, i):
                                pending[j] = store[pj] if pull is None else pull(state, j)
                    compute(i)
                    r = done.pop(i)
                u, delta, norm, g_i, h_i, in_i, wm, bidx = r
                if wm is not None:
                    warm[i] = wm
                if record:
                    batch_log.append((arrivals, i, bidx))
                n_grad += g_i
                n_hvp += h_i
                n_inner += in_i
                arrivals += 1
                trace_append((now, v_before, i, pulled, tau, accepted, norm))
                if len(trace_rows) >= chunk:
                    trace.flush()
                if accepted:
                    if step_scale is not None:  # reads the counts before this update
                        delta = delta * step_scale(counts, i, tau)
                    counts[i] += 1
                    applied += 1
                    if tau > max_tau:
                        max_tau = tau
                else:
                    w_grad += g_i
                    w_hvp += h_i
                if lin is not None:
                    step = lin * norm  # ≥ ‖s·Δ‖∞ (up to rounding, far inside the margin)
                    if not accepted or bound + step <= safe:
                        if accepted:
                            # every entry of the new model is ≤ bound + step in size: finite
                            dz.append(delta)
                            bound += step
                            version += 1
                        after(a, version)
                        if dispatched:
                            q = len(dz)
                            for j, _ in dispatched:
                                dd.append((j, q))
                            dispatched.clear()
                        if accepted and (version % eval_every == 0 or version == T):
                            state = materialize()
                            c["arrivals"] = arrivals
                            self.state, self.now = state, now
                            self.counts[:] = counts
                            self._eval()
                        elif len(dz) >= run_cap:  # the run's (k, p) blocks stay small
                            state = materialize()
                        continue
                    # near the overflow margin (or a non-finite Δ): one by one, checked
                    if dz or dd:
                        state = materialize()
                    bound = float(np.abs(state.w).max()) + step
                if accepted:
                    state = update(state, new_tuple(Contribution, (delta, u, tau, flush, i)))
                v = version = state.version
                after(a, v)
                if dispatched:
                    for j, _ in dispatched:
                        pending[j] = state.w if pull is None else pull(state, j)
                    dispatched.clear()
                if v != v_before:
                    w_new = state.w if pull is None else pull(state, i)
                    if not (math.isfinite(norm) and (w_new.dot(zeros) == 0.0
                                                     if type(w_new) is ndarray
                                                     else finite(w_new))):
                        self.status = "diverged"
                        self.message = (
                            f"non-finite model at step {v} (arrival {arrivals}, client {i}, "
                            f"time {now:.6g}); run stopped, everything recorded before kept"
                        )
                        if pull is not None:  # keep the client's last finite model
                            state.acc[i] = u
                        state = ServerState(store[v_before], v_before,
                                            state.acc if pull is not None else None)
                        version = v_before
                        break
                    store[v] = state.w
                    keep = oldest(v)
                    while store_lo < keep:
                        store.pop(store_lo, None)
                        store_lo += 1
                    if v % eval_every == 0 or v == T:
                        c["arrivals"] = arrivals
                        self.state, self.now = state, now
                        if lin is not None:
                            self.counts[:] = counts
                        self._eval()
        finally:
            if gc_ours and gc.get_threshold()[0] == _GC_GEN0:
                gc.set_threshold(*gc_old)
            if dz or dd:
                state = materialize()
            if lin is not None:
                self.counts[:] = counts
            self.state, self.now, self.store_lo = state, now, store_lo
            c.update(n_grad=n_grad, n_hvp=n_hvp, n_inner=n_inner, arrivals=arrivals,
                     applied=applied, max_staleness=max_tau, wasted_grad=w_grad,
                     wasted_hvp=w_hvp)

    def release(self) -> None:
        """Drop what only further steps need (pending jobs, computed results, samplers, warm
        starts, old versions) before :meth:`result` copies the tables: a large run's peak
        memory is then not the sum of both."""
        self.pending.clear()
        self.done.clear()
        self.samplers.clear()
        self.warm.clear()
        self.store = {self.state.version: self.state.w}

    def _batches(self) -> dict[str, np.ndarray] | None:
        if not self.record:
            return None
        log = self.batch_log
        shapes = np.asarray([(0, 0) if r is None else r.shape for _, _, r in log],
                            dtype=np.int64).reshape(len(log), 2)
        sizes = shapes[:, 0] * shapes[:, 1]
        off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        parts = [r.reshape(-1) for _, _, r in log if r is not None]
        rows = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        return {"arrival": np.asarray([a for a, _, _ in log], dtype=np.int64),
                "client": np.asarray([i for _, i, _ in log], dtype=np.int64),
                "shape": shapes, "offset": off, "rows": rows}

    def result(self, config: Any = None) -> RunResult:
        src = self.source
        job_arrays = src.jobs.columns()
        counters = dict(self.counters)
        counters["dropped"] = int(getattr(src, "n_dropped", 0))
        counters["failed"] = int(getattr(src, "n_failed", 0))
        counters["steps"] = int(self.state.version)
        counters["time"] = float(self.now)
        client_params = None
        w = self.state.w
        models = self.alg.rule.client_models
        if models is not None:
            client_params = np.stack([to_numpy(a) for a in models(self.state, self.n)])
            w = client_params.mean(axis=0)
        return RunResult(
            params=np.array(to_numpy(w), dtype=np.float64, copy=True),
            trace=Trace(**self.trace.columns()), jobs=job_arrays,
            history=History.from_rows(self.hist_rows), shares=self._shares(),
            counts=self.counts.copy(), status=self.status, message=self.message,
            counters=counters, config=config, client_params=client_params,
            batches=self._batches(),
        )

    # -- checkpoints (persafl_np/sim/checkpoint.py: manifest + hashed npz files, no pickle)
    def save_checkpoint(self, ck: Checkpointer) -> None:
        """Commit the run state as one checkpoint (arrays, JSON meta, appended table rows).

        Pending jobs are computed first (:meth:`_flush`), so the saved state holds every
        outstanding job's result and does not depend on the grouping."""
        self._flush()
        arrays: dict[str, np.ndarray] = {}
        arrays["w"] = np.asarray(to_numpy(self.state.w))
        acc = self.state.acc
        if isinstance(acc, dict):  # a rule's per-client model table (local-only)
            for i, w in acc.items():
                arrays[f"own_{i}"] = np.asarray(to_numpy(w))
        elif acc is not None:
            arrays["acc"] = np.asarray(to_numpy(acc))
        for v, w in self.store.items():
            arrays[f"store_{v}"] = np.asarray(to_numpy(w))
        for i, w in self.warm.items():
            arrays[f"warm_{i}"] = np.asarray(to_numpy(w))
        done_meta = {}
        for i, (u, delta, norm, g, h, inn, wm, bidx) in self.done.items():
            if u is not None:
                arrays[f"job_u_{i}"] = np.asarray(to_numpy(u))
            arrays[f"job_delta_{i}"] = np.asarray(to_numpy(delta))
            if wm is not None:
                arrays[f"job_warm_{i}"] = np.asarray(to_numpy(wm))
            if bidx is not None:
                arrays[f"job_idx_{i}"] = bidx
            done_meta[str(i)] = [g, h, inn, norm]
        arrays["counts"] = self.counts
        sampler_meta = {}
        for i, smp in self.samplers.items():
            st, perm = smp.state()
            sampler_meta[str(i)] = st
            if perm is not None:
                arrays[f"perm_{i}"] = perm
        log = self.batch_log
        meta = {
            "version": self.state.version, "count": self.state.count, "store_lo": self.store_lo,
            "samplers": sampler_meta, "done": done_meta, "counters": self.counters,
            "now": self.now, "source": self.source.state(), "started": self.started,
            "batch_log": [[a, i, None if r is None else r.tolist()] for a, i, r in log],
        }
        ck.save(arrays, meta, {"trace": self.trace.array(), "hist": self.hist_rows,
                               "jobs": self.source.jobs.array()})

    def load_checkpoint(self, ck: Checkpointer) -> None:
        """Restore the state of the checkpoint ``ck`` verifies (ValueError naming the file)."""
        arr, meta, tables = ck.load()
        try:
            self._restore(arr, meta, tables)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ValueError(f"checkpoint {ck.dir / MANIFEST}: field {exc} does not fit this "
                             "run's state") from None

    def _restore(self, arr: dict, meta: dict, tables: dict) -> None:
        like = self.problem.w0
        dev = lambda a: to_device_like(a, like)  # noqa: E731
        acc = dev(arr["acc"]) if "acc" in arr else None
        if self.alg.rule.pull is not None:
            acc = {int(k[4:]): dev(v) for k, v in arr.items() if k.startswith("own_")}
        self.state = ServerState(dev(arr["w"]), int(meta["version"]), acc, int(meta["count"]))
        self.store = {int(k[6:]): dev(v) for k, v in arr.items() if k.startswith("store_")}
        self.warm = {int(k[5:]): dev(v) for k, v in arr.items() if k.startswith("warm_")}
        self.pending = {}
        self.done = {}
        for k, gh in meta["done"].items():
            i = int(k)
            wm = arr.get(f"job_warm_{i}")
            bidx = arr.get(f"job_idx_{i}")
            u = arr.get(f"job_u_{i}")
            delta = arr[f"job_delta_{i}"]
            # ‖Δ‖ as _compute_group computed it (checkpoints before it was saved: recomputed)
            norm = (float(gh[3]) if len(gh) > 3
                    else math.sqrt(float(np.einsum("ij,ij->i", delta[None], delta[None])[0])))
            self.done[i] = (None if u is None else dev(u), dev(delta), norm, int(gh[0]),
                            int(gh[1]), int(gh[2]), None if wm is None else dev(wm), bidx)
        self.counts = arr["counts"].astype(np.int64)
        if self.counts.shape != (self.n,):
            raise ValueError(f"'counts' has shape {self.counts.shape}, expected ({self.n},)")
        self.store_lo = int(meta["store_lo"])
        self.samplers = {}
        for k, st in meta["samplers"].items():
            self._sampler(int(k)).load_state(st, arr.get(f"perm_{k}"))
        self.trace = RowBuffer(TRACE_DTYPE, tables["trace"])
        self.hist_rows = as_rows(tables["hist"])
        self.batch_log = [(int(a), int(i), None if r is None else np.asarray(r, dtype=np.int64))
                          for a, i, r in meta["batch_log"]]
        self.counters = {k: meta["counters"][k] for k in self.counters}
        self.now = float(meta["now"])
        self.source.load_state(meta["source"])
        self.source.jobs = RowBuffer(JOB_DTYPE, tables["jobs"])
        self.started = bool(meta["started"])


#: The append-only tables of a checkpoint (trace rows, history rows, job rows).
_CHECKPOINT_TABLES = {"trace": TRACE_DTYPE, "jobs": JOB_DTYPE,
                      "hist": np.dtype([(k, np.float64) for k in HISTORY_FIELDS])}


def run(
    problem: Problem,
    algorithm: Algorithm,
    arrivals: TheoremMode | EventDriven | Replay,
    *,
    T: int,
    seed: int = 0,
    eval_every: int = 1,
    max_arrivals: int | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    config: Any = None,
    progress: Callable[[int, int], None] | None = None,
    cohort_size: int | None = None,
    record_batches: bool = False,
    batches: Any = None,
) -> RunResult:
    """Simulate T server steps and return a :class:`~persafl_np.results.RunResult`.

    Parameters
    ----------
    problem, algorithm, arrivals: what to optimize, the server rule + client settings, and the
        arrival model (:class:`TheoremMode`, :class:`EventDriven`, :class:`Replay`).
    T: server steps (versions) to run; seed: root of every stream (:mod:`.streams`).
    eval_every: evaluate at t ≡ 0 (mod eval_every) and at t = T.
    max_arrivals: stop (status ``"stalled"``) after this many arrivals.
    checkpoint_dir, checkpoint_every: write a checkpoint every N server steps (atomic).
    resume: continue from the checkpoint in ``checkpoint_dir``; the result is bit-identical to
        an uninterrupted run with the same arguments.
    stop_after: stop (as if killed) once this many server steps are done — for testing resume.
    progress: called as ``progress(version, T)`` about 100 times during the run (a progress
        bar). The run is then advanced in chunks, exactly as checkpointing does, which leaves
        every result bit-identical.
    cohort_size: at most this many client jobs are computed together (default
        :data:`DEFAULT_COHORT_SIZE`); results do not depend on it (theory/simulator.md §3.1).
    record_batches: keep every arrival's batch row indices (``RunResult.batches``, saved as
        ``batches.npz``); batches: such a record (the dict, or a path to ``batches.npz``) to
        use instead of the clients' streams — a replay that needs no knowledge of the RNG.
    """
    T = check_int(T, "T", 1)
    seed = check_int(seed, "seed", 0)
    eval_every = check_int(eval_every, "eval_every", 1)
    if max_arrivals is not None:
        check_int(max_arrivals, "max_arrivals", 1)
    if checkpoint_every is not None:
        check_int(checkpoint_every, "checkpoint_every", 1)
        if checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir")
    if not isinstance(arrivals, (TheoremMode, EventDriven, Replay)):
        raise ValueError("arrivals must be a TheoremMode, EventDriven or Replay")
    if algorithm.synchronous and isinstance(arrivals, EventDriven):
        if arrivals.staleness != "none":
            raise ValueError("staleness control applies to asynchronous algorithms only")
        if arrivals.availability_period is not None:
            raise ValueError("availability windows apply to asynchronous algorithms only")
    if cohort_size is not None:
        check_int(cohort_size, "cohort_size", 1)
    rec = None
    if batches is not None:
        m = [int(cl[0].shape[0]) for cl in problem.clients]
        if isinstance(batches, (str, Path)):
            with np.load(Path(batches), allow_pickle=False) as z:
                rec = batches_from_npz(z, m)
        else:
            rec = batches_from_npz(batches, m)
    r = _Run(problem, algorithm, arrivals, T, seed, eval_every, max_arrivals, cohort_size,
             bool(record_batches), rec)
    fp = run_fingerprint(problem, algorithm, arrivals, config, T=T, seed=seed,
                         eval_every=eval_every, max_arrivals=max_arrivals)
    ck = None if checkpoint_dir is None else Checkpointer(checkpoint_dir, fp, _CHECKPOINT_TABLES)
    if resume:
        if ck is None or not has_checkpoint(ck.dir):
            raise ValueError(f"resume=True needs a checkpoint in checkpoint_dir, none at "
                             f"{checkpoint_dir}")
        r.load_checkpoint(ck)
    end = T if stop_after is None else min(T, check_int(stop_after, "stop_after", 0))
    t0 = _time.perf_counter()
    chunk = max(1, T // 100) if progress is not None else None
    while r.state.version < end and r.status == "ok":
        target = end
        if checkpoint_every is not None:
            target = min(end, (r.state.version // checkpoint_every + 1) * checkpoint_every)
        if chunk is not None:
            target = min(target, (r.state.version // chunk + 1) * chunk)
        r.step_until(target)
        if progress is not None:
            progress(r.state.version, T)
        if (checkpoint_every is not None and r.status == "ok"
                and (r.state.version % checkpoint_every == 0 or r.state.version == end)):
            r.save_checkpoint(ck)
    if not r.started:
        r.step_until(0)
    r.release()
    res = replace(r.result(config), fingerprint=fp)
    res.counters["wall_seconds"] = _time.perf_counter() - t0
    res.counters["eval_seconds"] = r.eval_seconds
    return res
