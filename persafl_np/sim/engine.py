"""The simulation loop: arrivals → client updates → server rule → evaluation (theory/simulator.md).

:func:`run` works on objects (a :class:`Problem`, an :class:`~persafl_np.algorithms.Algorithm`,
an arrival spec) and is what analysis code calls; :func:`persafl_np.simulate` builds those
objects from a :class:`~persafl_np.config.SimConfig` and calls it.

Per arrival (client i, pulled version p, staleness τ, accepted?):

1. u = w^p from the model store (the store keeps only versions some outstanding job or the
   theorem-mode window still needs: O(min(τ, C)·d) memory, not O(T·d));
2. Δ = local_update(oracle, model, u, X_i, y_i, Q, η, rng_i, b, warm_i, ρ) — eq. (LOC-1), or
   (LOC-PROX) when the algorithm's prox ρ > 0; client i's batches come from its own stream,
   so the update does not depend on other clients;
3. if accepted, the server rule updates (w, t); else the work is counted as wasted;
4. when t changes: NaN/Inf check (stop, keep everything so far), store w^t, evaluate every
   ``eval_every`` steps and at t = T. Evaluation is exact full-batch and outside the clock.

Evaluated quantities at w = w^t (eq. (SIM-EVAL) of theory/simulator.md):
‖∇F(w)‖² with F = (1/n)Σ F_i; F(w); ‖Σ_i p_i ∇F_i(w)‖² with p_i the applied-update shares so far
(uniform before the first update); for classifiers the pooled test accuracy of w and the mean
and minimum over clients of the test accuracy of the personalized model θ_i = personalize(w).
"""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.algorithms.algorithm import Algorithm
from persafl_np.algorithms.rules import Contribution, ServerState
from persafl_np.arguments import check_int
from persafl_np.backend import array_namespace, to_device_like, to_numpy
from persafl_np.data.federated import check_client_labels
from persafl_np.fingerprint import run_fingerprint
from persafl_np.personalization.local import _local_steps
from persafl_np.results import HISTORY_FIELDS, History, RunResult, Trace
from persafl_np.sim import streams
from persafl_np.sim.arrivals import EventDriven, Replay, TheoremMode, make_source
from persafl_np.sim.checkpoint import MANIFEST, Checkpointer, as_rows, has_checkpoint

__all__ = ["Problem", "evaluate", "run"]


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
    def build(cls, model: Any, oracle: Any, data: Any, w0: Any = None, seed: int = 0) -> Problem:
        """From a FederatedDataset (``.clients`` with X_train, …) or a list of (X, y[, Xt, yt]).

        ``w0=None`` draws ``model.init_params`` from the init stream of ``seed``.
        """
        n_classes = getattr(data, "n_classes", None)
        raw = data.clients if hasattr(data, "clients") else data
        clients = []
        for k, c in enumerate(raw):
            if hasattr(c, "X_train"):
                tup = (c.X_train, c.y_train, c.X_test, c.y_test)
            else:
                c = tuple(c)
                if len(c) == 2:
                    X, y = c
                    tup = (X, y, X[:0, ...], y[:0, ...])
                elif len(c) == 4:
                    tup = c
                else:
                    raise ValueError(f"client {k}: expected (X, y) or (X, y, X_test, y_test)")
            model.check_data(tup[0], tup[1])
            clients.append(tup)
        if not clients:
            raise ValueError("data must contain at least one client")
        d = int(clients[0][0].shape[1])
        if any(int(c[0].shape[1]) != d for c in clients):
            raise ValueError("every client's X must have the same number of features")
        if w0 is None:
            w0 = to_device_like(model.init_params(streams.init_rng(seed), d), clients[0][0])
        p = model.num_params(d)
        if tuple(w0.shape) != (p,):
            raise ValueError(f"w0 must have shape ({p},), got {tuple(w0.shape)}")
        if n_classes is None and getattr(model, "is_classifier", False):
            n_classes = getattr(model, "n_classes", None)
        check_client_labels(clients, n_classes)  # labels in 0..C-1 (issue 10 item 5)
        return cls(model, oracle, tuple(clients), w0, n_classes)


def _sq(xp: Any, v: Any) -> float:
    return float(xp.sum(v * v))


def evaluate(problem: Problem, w: Any, shares: np.ndarray, own: list | None = None) -> tuple:
    """(‖∇F‖², F, ‖Σ p_i ∇F_i‖², acc_global, acc_pers_mean, acc_pers_min) at w (SIM-EVAL).

    ``own``: per-client models for the local-only baseline (then θ_i = own[i]).
    """
    model, oracle = problem.model, problem.oracle
    xp = array_namespace(w)
    n = problem.n_clients
    g_mean = None
    g_w = None
    F = 0.0
    for i, (X, y, _, _) in enumerate(problem.clients):
        g = oracle.grad(model, w, X, y)
        F += float(oracle.value(model, w, X, y))
        g_mean = g if g_mean is None else g_mean + g
        gw = float(shares[i]) * g
        g_w = gw if g_w is None else g_w + gw
    g_mean = g_mean / n
    nan = math.nan
    acc_g = acc_m = acc_min = nan
    if getattr(model, "is_classifier", False):
        correct = total = 0
        accs = []
        for i, (X, y, Xt, yt) in enumerate(problem.clients):
            m = int(Xt.shape[0])
            if m == 0:
                continue
            correct += int(xp.sum(xp.astype(model.predict(w, Xt) == yt, xp.int64)))
            total += m
            theta = own[i] if own is not None else oracle.personalize(model, w, X, y)
            accs.append(float(xp.mean(xp.astype(model.predict(theta, Xt) == yt, xp.float64))))
        if total:
            acc_g = correct / total
            acc_m, acc_min = float(np.mean(accs)), float(np.min(accs))
    return _sq(xp, g_mean), F / n, _sq(xp, g_w), acc_g, acc_m, acc_min


_TRACE_DTYPE = np.dtype([("time", np.float64), ("step", np.int64), ("client", np.int64),
                         ("pulled_version", np.int64), ("staleness", np.int64),
                         ("accepted", np.bool_), ("update_norm", np.float64)])
_JOB_DTYPE = np.dtype([("client", np.int64), ("start", np.float64), ("end", np.float64),
                       ("pulled_version", np.int64), ("status", np.int64)])


def _columns(rows: list[tuple], dtype: np.dtype) -> dict[str, np.ndarray]:
    """Row tuples → one contiguous array per field of ``dtype``.

    Same values and dtypes as ``np.asarray`` per ``zip(*rows)`` column, at ~half the cost (that
    conversion was ~1.3 µs per event of a 10⁵-event run)."""
    rec = np.fromiter(rows, dtype=dtype, count=len(rows))
    return {k: np.ascontiguousarray(rec[k]) for k in dtype.names}


class _LazyRng:
    """Client i's batch stream, created on first use: full-batch oracles never draw, and
    creating a SeedSequence-seeded Generator costs ~50 µs, which would dominate per-event cost
    with 10⁵ clients. Attribute access is forwarded to the Generator."""

    __slots__ = ("gen", "i", "seed")

    def __init__(self, seed: int, i: int) -> None:
        self.seed, self.i, self.gen = seed, i, None

    def __getattr__(self, name: str) -> Any:
        if self.gen is None:
            self.gen = streams.client_rng(self.seed, self.i)
        return getattr(self.gen, name)


class _Run:
    """Mutable state of one run (everything a checkpoint must hold)."""

    def __init__(self, problem: Problem, algorithm: Algorithm, arrivals: Any, T: int, seed: int,
                 eval_every: int, max_arrivals: int | None) -> None:
        self.problem, self.alg, self.arrivals = problem, algorithm, arrivals
        self.T, self.seed, self.eval_every = T, seed, eval_every
        self.max_arrivals = max_arrivals
        n = problem.n_clients
        self.n = n
        rule = algorithm.rule
        self.source = make_source(arrivals, n, seed, rule.K, algorithm.synchronous)
        self.state: ServerState = rule.init(problem.w0)
        self.store: dict[int, Any] = {0: problem.w0}
        self.store_lo = 0
        self.warm: dict[int, Any] = {}
        self.rngs: dict[int, np.random.Generator] = {}
        self.own: dict[int, Any] = {}
        self.counts = np.zeros(n, dtype=np.int64)
        self.trace_rows: list[tuple] = []
        self.hist_rows: list[tuple] = []
        self.counters = {"n_grad": 0, "n_hvp": 0, "n_inner": 0, "wasted_grad": 0,
                         "wasted_hvp": 0, "arrivals": 0, "applied": 0, "max_staleness": 0}
        self.now = 0.0
        self.status, self.message = "ok", ""
        self.started = False
        self.xp = array_namespace(problem.w0)
        self.Xs = [cl[0] for cl in problem.clients]
        self.ys = [cl[1] for cl in problem.clients]
        self.zeros = self.xp.zeros_like(problem.w0)

    # -- helpers
    def _shares(self) -> np.ndarray:
        tot = int(self.counts.sum())
        return self.counts / tot if tot else np.full(self.n, 1.0 / self.n)

    def _eval(self) -> None:
        w = self.state.w
        own = None
        if self.alg.local_only:
            own = [self.own.get(i, self.problem.w0) for i in range(self.n)]
            w = sum(own[1:], own[0]) / self.n
        vals = evaluate(self.problem, w, self._shares(), own)
        self.hist_rows.append((self.state.version, self.now, self.counters["arrivals"], *vals))

    def _finite(self, w: Any) -> bool:
        # w·0 = 0 exactly when every entry is finite (NaN·0 and ±Inf·0 are NaN); a dot product
        # with a zero vector is the cheapest exact test (no reduction wrapper). For NumPy,
        # ndarray.dot is the same BLAS ddot as `@` at ~40% of the dispatch cost.
        if type(w) is np.ndarray:
            return w.dot(self.zeros) == 0.0
        return float(w @ self.zeros) == 0.0

    # -- main loop
    def step_until(self, stop_version: int) -> None:
        prob, alg, rule, src = self.problem, self.alg, self.alg.rule, self.source
        if not self.started:
            src.start(0)
            self._eval()
            self.started = True
        # Hot loop: names, counters and run state are bound locally (attribute and dict look-ups
        # were ~40% of the per-event overhead) and written back before every evaluation and in
        # `finally`. The client update calls the unvalidated core of local_update: Q, η, b and ρ
        # were validated once by Algorithm.
        local = alg.local_only
        oracle, model, w0, Xs, ys = prob.oracle, prob.model, prob.w0, self.Xs, self.ys
        Q, eta, b, rho = alg.Q, alg.eta, alg.batch_size, alg.prox
        store, warm, own, counts, rngs = self.store, self.warm, self.own, self.counts, self.rngs
        trace_append, c = self.trace_rows.append, self.counters
        update, nxt, after = rule.update, src.next, src.after
        step_scale = alg.step_scale  # (TA-5) reweighting / (TB-4) delay-adaptive; None = off
        oldest, finite = src.oldest_needed, self._finite
        seed, eval_every, T = self.seed, self.eval_every, self.T
        ndarray = np.ndarray
        max_arr = math.inf if self.max_arrivals is None else self.max_arrivals
        n_grad, n_hvp, n_inner = c["n_grad"], c["n_hvp"], c["n_inner"]
        arrivals, applied, max_tau = c["arrivals"], c["applied"], c["max_staleness"]
        w_grad, w_hvp = c["wasted_grad"], c["wasted_hvp"]
        state, now, store_lo = self.state, self.now, self.store_lo
        try:
            while state.version < stop_version:
                if arrivals >= max_arr:
                    self.status = "stalled"
                    self.message = f"stopped after max_arrivals={max_arr} arrivals"
                    break
                v_before = state.version
                a = nxt(v_before)
                if a is None:
                    self.status = "stalled"
                    self.message = (
                        "the arrival source has no more arrivals (replay exhausted, or no job "
                        "can finish: 10^5 consecutive events without an arrival)"
                    )
                    break
                now, i, pulled, tau, accepted, flush, _, _ = a
                X, y = Xs[i], ys[i]
                u = own.get(i, w0) if local else store[pulled]
                rng = rngs.get(i)
                if rng is None:
                    rng = rngs[i] = _LazyRng(seed, i)
                delta, g_i, h_i, in_i, _, wm = _local_steps(
                    oracle, model, u, X, y, Q, eta, rng, b, warm.get(i), rho
                )
                if wm is not None:
                    warm[i] = wm
                n_grad += g_i
                n_hvp += h_i
                n_inner += in_i
                arrivals += 1
                if type(delta) is ndarray:
                    norm = math.sqrt(delta.dot(delta))
                else:
                    norm = math.sqrt(float(delta @ delta))
                trace_append((now, v_before, i, pulled, tau, accepted, norm))
                if accepted:
                    if local:
                        own[i] = u - delta
                    if step_scale is not None:
                        delta = delta * step_scale(counts, i, tau)
                    state = update(state, Contribution(delta, u, tau, flush))
                    counts[i] += 1
                    applied += 1
                    if tau > max_tau:
                        max_tau = tau
                else:
                    w_grad += g_i
                    w_hvp += h_i
                v = state.version
                after(a, v)
                if v != v_before:
                    w_new = own[i] if local else state.w
                    if not math.isfinite(norm) or not finite(w_new):
                        self.status = "diverged"
                        self.message = (
                            f"non-finite model at step {v} (arrival {arrivals}, client {i}, "
                            f"time {now:.6g}); run stopped, everything recorded before kept"
                        )
                        state = ServerState(store[v_before], v_before)
                        break
                    store[v] = state.w
                    keep = oldest(v)
                    while store_lo < keep:
                        store.pop(store_lo, None)
                        store_lo += 1
                    if v % eval_every == 0 or v == T:
                        c["arrivals"] = arrivals
                        self.state, self.now = state, now
                        self._eval()
        finally:
            self.state, self.now, self.store_lo = state, now, store_lo
            c.update(n_grad=n_grad, n_hvp=n_hvp, n_inner=n_inner, arrivals=arrivals,
                     applied=applied, max_staleness=max_tau, wasted_grad=w_grad,
                     wasted_hvp=w_hvp)

    def result(self, config: Any = None) -> RunResult:
        src = self.source
        job_arrays = _columns(src.jobs, _JOB_DTYPE)
        counters = dict(self.counters)
        counters["dropped"] = int(getattr(src, "n_dropped", 0))
        counters["failed"] = int(getattr(src, "n_failed", 0))
        counters["steps"] = int(self.state.version)
        counters["time"] = float(self.now)
        client_params = None
        w = self.state.w
        if self.alg.local_only:
            own = [to_numpy(self.own.get(i, self.problem.w0)) for i in range(self.n)]
            client_params = np.stack(own)
            w = client_params.mean(axis=0)
        return RunResult(
            params=np.array(to_numpy(w), dtype=np.float64, copy=True),
            trace=Trace(**_columns(self.trace_rows, _TRACE_DTYPE)), jobs=job_arrays,
            history=History.from_rows(self.hist_rows), shares=self._shares(),
            counts=self.counts.copy(), status=self.status, message=self.message,
            counters=counters, config=config, client_params=client_params,
        )

    # -- checkpoints (persafl_np/sim/checkpoint.py: manifest + hashed npz files, no pickle)
    def save_checkpoint(self, ck: Checkpointer) -> None:
        """Commit the run state as one checkpoint (arrays, JSON meta, appended table rows)."""
        arrays: dict[str, np.ndarray] = {}
        arrays["w"] = np.asarray(to_numpy(self.state.w))
        if self.state.acc is not None:
            arrays["acc"] = np.asarray(to_numpy(self.state.acc))
        for v, w in self.store.items():
            arrays[f"store_{v}"] = np.asarray(to_numpy(w))
        for i, w in self.warm.items():
            arrays[f"warm_{i}"] = np.asarray(to_numpy(w))
        for i, w in self.own.items():
            arrays[f"own_{i}"] = np.asarray(to_numpy(w))
        arrays["counts"] = self.counts
        meta = {
            "version": self.state.version, "count": self.state.count, "store_lo": self.store_lo,
            "rngs": {str(i): r.gen.bit_generator.state for i, r in self.rngs.items()
                     if r.gen is not None},
            "counters": self.counters, "now": self.now, "source": self.source.state(),
            "started": self.started,
        }
        ck.save(arrays, meta, {"trace": self.trace_rows, "hist": self.hist_rows,
                               "jobs": self.source.jobs})

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
        self.state = ServerState(dev(arr["w"]), int(meta["version"]),
                                 dev(arr["acc"]) if "acc" in arr else None, int(meta["count"]))
        self.store = {int(k[6:]): dev(v) for k, v in arr.items() if k.startswith("store_")}
        self.warm = {int(k[5:]): dev(v) for k, v in arr.items() if k.startswith("warm_")}
        self.own = {int(k[4:]): dev(v) for k, v in arr.items() if k.startswith("own_")}
        self.counts = arr["counts"].astype(np.int64)
        if self.counts.shape != (self.n,):
            raise ValueError(f"'counts' has shape {self.counts.shape}, expected ({self.n},)")
        self.store_lo = int(meta["store_lo"])
        self.rngs = {}
        for k, st in meta["rngs"].items():
            r = _LazyRng(self.seed, int(k))
            r.__getattr__("bit_generator").state = st
            self.rngs[int(k)] = r
        self.trace_rows = as_rows(tables["trace"])
        self.hist_rows = as_rows(tables["hist"])
        self.counters = {k: meta["counters"][k] for k in self.counters}
        self.now = float(meta["now"])
        self.source.load_state(meta["source"])
        self.source.jobs = as_rows(tables["jobs"])
        self.started = bool(meta["started"])


#: The append-only tables of a checkpoint (trace rows, history rows, job rows).
_CHECKPOINT_TABLES = {"trace": _TRACE_DTYPE, "jobs": _JOB_DTYPE,
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
    r = _Run(problem, algorithm, arrivals, T, seed, eval_every, max_arrivals)
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
    res = replace(r.result(config), fingerprint=fp)
    res.counters["wall_seconds"] = _time.perf_counter() - t0
    return res
