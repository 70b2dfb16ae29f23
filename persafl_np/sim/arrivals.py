"""Arrival models: who reaches the server next, from which version, and when.

theory/simulator.md §2.

Three *specifications* (frozen, validated, what a config holds):

* :class:`TheoremMode` — the analysis model (theory/brief_results.md (C5)): no clock; at each
  arrival the
  client is uniform on [n] from the server stream, independent of the past, and its staleness is
  drawn by the policy ``uniform`` (on {0..min(τ, t)}), ``max`` (min(τ, t)) or an explicit list.
* :class:`EventDriven` — virtual clock: per-client job-time laws, speeds, latencies, dropout,
  concurrency, staleness control.
* :class:`Replay` — a recorded (client, pulled_version, accepted) sequence forced row by row
  (its jobs computed in cohorts all the same: ``ahead``).

Each has ``source(n, seed, K)`` (the :class:`ArrivalSpec` protocol) returning a runtime
*source*, the :class:`ArrivalSource` protocol: ``start(v)``, ``next(v) -> Arrival | None``,
``after(arrival, v)``, ``oldest_needed(v)``, ``state()``/``load_state()`` (JSON-able, for
checkpoints), the ``jobs`` table and the ``dispatched`` list. The engine asks ``next`` for the
next arrival, computes the client's update (cohort execution, theory/simulator.md §3.1),
applies it, then calls ``after`` with the new version. ``K`` (arrivals per server step of the
rule) is used by theorem mode to predict versions for its look-ahead; event-driven and replay
sources do not need it (their versions come from the engine; a replay's look-ahead needs only
the recorded pulled versions).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field
from heapq import heappop, heapreplace
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np

from persafl_np.arguments import check_int
from persafl_np.parameters import Param, validate_fields
from persafl_np.results import JOB_DTYPE, RowBuffer
from persafl_np.sim import streams
from persafl_np.sim.bounded import BlockedIntegers
from persafl_np.sim.events import ARRIVAL, FAILURE, START, EventQueue
from persafl_np.sim.staleness import CONTROLS, block_safe
from persafl_np.sim.streams import counter_uniform
from persafl_np.sim.timing import JobTime, TraceJobTimes, load_job_trace, speeds_array

__all__ = [
    "APPLIED",
    "Arrival",
    "ArrivalSource",
    "ArrivalSpec",
    "DROPPED",
    "EventDriven",
    "FAILED",
    "POLICIES",
    "Replay",
    "TheoremMode",
]

POLICIES = ("uniform", "max")
#: Arrival(...) without the NamedTuple's Python-level __new__ (hot path).
_new = tuple.__new__
#: Job-time uniforms hashed per client per block (_EventSource._u): 256 jobs while the
#: (n, B) float64 cache stays within _UBLOCK_BYTES, else 32. A refill (one vectorised hash call)
#: costs ~160k instructions whatever B: at B = 32 that was ~5k of the ~55k instructions of an
#: event (valgrind, null oracle, 100 clients), at 256 it is ~0.7k. The first B jobs of every
#: client are hashed at construction: ~33 ms at the largest n (4096) that gets B = 256.
_UBLOCK, _UBLOCK_SMALL, _UBLOCK_BYTES = 256, 32, 8 * 2**20
#: Arrivals simulated ahead per _EventSource._simulate call.
_SIM_BLOCK = 256


@runtime_checkable
class ArrivalSource(Protocol):
    """The runtime of an arrival model, driven by the engine (module docstring).

    ``dispatched``: (client, version) of every job started since the engine last looked whose
    inputs are now fixed and that will not fail — the engine may compute it at any time
    (theory/simulator.md §3.1); the engine empties the list. ``jobs``: the jobs.csv rows.
    Sources that can tell coming jobs in advance may also offer
    ``ahead(version, count, client) -> list[(client, pulled)]`` (theorem mode).
    """

    jobs: RowBuffer
    dispatched: list[tuple[int, int]]

    def start(self, version: int) -> None: ...

    def next(self, version: int) -> Arrival | None: ...

    def after(self, a: Arrival, version: int) -> None: ...

    def oldest_needed(self, version: int) -> int: ...

    def state(self) -> dict: ...

    def load_state(self, s: dict) -> None: ...


@runtime_checkable
class ArrivalSpec(Protocol):
    """A frozen arrival specification (what a config holds)."""

    def source(self, n: int, seed: int, K: int) -> ArrivalSource: ...

#: jobs.csv status codes.
APPLIED, DROPPED, FAILED = 0, 1, 2


class Arrival(NamedTuple):
    """One update reaching the server: processed by the engine in this order."""

    time: float
    client: int
    pulled: int
    staleness: int
    accepted: bool
    flush: bool = False
    job_start: float = 0.0
    job_end: float = 0.0


# --------------------------------------------------------------------------- theorem mode
@dataclass(frozen=True)
class TheoremMode:
    """C5 arrivals: client uniform on [n]; τ_t ≤ min(τ, t) by ``policy``.

    policy: ``"uniform"``, ``"max"``, or a sequence of staleness values (each in 0..tau) used
    cyclically, arrival k getting min(seq[k mod len], t).
    """

    tau: int = 0
    policy: str | tuple[int, ...] = "uniform"

    params: ClassVar[tuple[Param, ...]] = (
        Param("tau", "int", 0, "staleness bound: tau_t <= min(tau, t)", lo=0),
        Param("policy", "any", "uniform",
              "staleness policy: 'uniform' on 0..min(tau, t), 'max', or a list of ints in "
              "0..tau used cyclically"),
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if isinstance(self.policy, str):
            if self.policy not in POLICIES:
                raise ValueError(
                    f"policy must be one of {POLICIES} or a list of ints, got {self.policy!r}"
                )
        else:
            if not isinstance(self.policy, (list, tuple)) or not self.policy:
                raise ValueError(f"policy list must be non-empty with entries in 0..tau={self.tau}")
            seq = tuple(check_int(x, "policy list entry", 0, self.tau) for x in self.policy)
            object.__setattr__(self, "policy", seq)

    def source(self, n: int, seed: int, K: int) -> _TheoremSource:
        return _TheoremSource(self, n, seed, K)


class _TheoremSource:
    """Runtime of :class:`TheoremMode`.

    Look-ahead (theory/simulator.md §3.1): the arrivals are a function of the server stream and
    the version sequence alone, and the version after j more arrivals is known in advance
    (v + ⌊(c + j)/K⌋, c the rule's buffer count), so :meth:`ahead` may pre-draw the coming
    arrivals — in the same order, from the same stream — and hand the engine those whose pulled
    version already exists, to be computed together. ``next`` then serves the queue first.
    """

    def __init__(self, spec: TheoremMode, n: int, seed: int, K: int = 1) -> None:
        self.spec, self.n, self.K = spec, n, K
        self.rng = streams.server_rng(seed)
        self.ints = BlockedIntegers(self.rng)  # rng.integers(n), bit for bit, cheaper
        self.k = 0
        self.jobs = RowBuffer(JOB_DTYPE)
        self.dispatched: list[tuple[int, int]] = []
        self.queue: deque[tuple[int, Arrival]] = deque()

    def start(self, version: int) -> None:
        pass

    def _draw(self, version: int) -> Arrival:
        # Documented stream use: first the client, then (policy "uniform", only when
        # min(τ, t) > 0) the staleness; with τ = 0 the stream is exactly SGD's client sequence.
        i = self.ints.draw(self.n)
        cap = min(self.spec.tau, version)
        pol = self.spec.policy
        if pol == "uniform":
            tau = self.ints.draw(cap + 1) if cap > 0 else 0
        elif pol == "max":
            tau = cap
        else:
            tau = min(pol[self.k % len(pol)], version)
        t = float(self.k)
        self.k += 1
        return _new(Arrival, (t, i, version - tau, tau, True, False, t, t))

    def next(self, version: int) -> Arrival:
        if self.queue:
            v, a = self.queue.popleft()
            if v != version:  # pragma: no cover - would be a bug in the version prediction
                raise RuntimeError(f"theorem-mode look-ahead predicted version {v}, got {version}")
            return a
        return self._draw(version)

    def ahead(self, version: int, count: int, client: int) -> list[tuple[int, int]]:
        """Pre-draw the next arrivals (only when none is queued) and return (client, pulled)
        of those computable now: pulled ≤ ``version``, clients distinct and ≠ ``client``
        (a client's next job may depend on its previous one). Drawing stops at the first
        arrival that is not; it stays queued. ``count``: the rule's buffered arrivals."""
        if self.queue:
            return []
        out: list[tuple[int, int]] = []
        seen = {client}
        for j in range(self.n):
            v = version + (count + 1 + j) // self.K
            a = self._draw(v)
            self.queue.append((v, a))
            if a.pulled > version or a.client in seen:
                break
            seen.add(a.client)
            out.append((a.client, a.pulled))
        return out

    def after(self, a: Arrival, version: int) -> None:
        self.jobs.append((a.client, a.job_start, a.job_end, a.pulled, APPLIED))

    def oldest_needed(self, version: int) -> int:
        return max(0, version - self.spec.tau)

    def state(self) -> dict:
        return {"rng": self.ints.state(), "k": self.k,
                "queue": [[v, *a] for v, a in self.queue]}

    def load_state(self, s: dict) -> None:
        self.ints.load_state(s["rng"])
        self.k = int(s["k"])
        self.queue = deque(
            (int(q[0]), Arrival(float(q[1]), int(q[2]), int(q[3]), int(q[4]), bool(q[5]),
                                bool(q[6]), float(q[7]), float(q[8])))
            for q in s.get("queue", []))


# --------------------------------------------------------------------------- event driven
@dataclass(frozen=True)
class EventDriven:
    """Virtual-clock arrivals (theory/simulator.md §2–§4).

    job_time: compute-time law (or a :class:`TraceJobTimes`, or a path to a job CSV).
    speeds: per-client multipliers v_i > 0 (compute time is divided by v_i); None = all 1.
    download, upload: latency laws. concurrency: at most C jobs outstanding, a finished client
    is replaced by one drawn uniformly from the idle clients; None = every client always has a
    job and restarts on return (the restart rule of B2). dropout: probability that a job is lost.
    staleness: ``none`` | ``drop`` | ``block`` with bound ``tau_max``.
    availability_period P, availability_on a ∈ (0, 1]: client i is online on the windows
    [φ_i + kP, φ_i + kP + aP), φ_i uniform on [0, P) from its own stream; a job starts only
    online (a client that is offline waits for its next window and then pulls the then-current
    model) and is lost (``failed``) if the window closes before it ends.
    """

    job_time: JobTime | TraceJobTimes | str = field(default_factory=lambda: JobTime("exponential"))
    speeds: tuple[float, ...] | None = None
    download: JobTime = field(default_factory=lambda: JobTime("constant", mean=0.0))
    upload: JobTime = field(default_factory=lambda: JobTime("constant", mean=0.0))
    concurrency: int | None = None
    dropout: float = 0.0
    staleness: str = "none"
    tau_max: int | None = None
    availability_period: float | None = None
    availability_on: float = 1.0

    params: ClassVar[tuple[Param, ...]] = (
        Param("job_time", "table", JobTime("exponential"), "compute-time law of a job",
              component=JobTime),
        Param("speeds", "floats", None, "per-client speed multipliers v_i (n_clients entries)",
              lo=0.0, lo_open=True, optional=True),
        Param("download", "table", JobTime("constant", mean=0.0), "download latency law",
              component=JobTime),
        Param("upload", "table", JobTime("constant", mean=0.0), "upload latency law",
              component=JobTime),
        Param("concurrency", "int", None, "jobs in flight C (omit: every client)", lo=1,
              optional=True),
        Param("dropout", "float", 0.0, "probability that a job is lost", lo=0.0, hi=1.0,
              hi_open=True),
        Param("staleness", "str", "none", "staleness control", choices=CONTROLS),
        Param("tau_max", "int", None, "staleness bound of the control (required with it)",
              lo=0, optional=True, when=("staleness", ("drop", "block"))),
        Param("availability_period", "float", None, "period P of the availability windows",
              lo=0.0, lo_open=True, optional=True),
        Param("availability_on", "float", 1.0, "online fraction a of each period", lo=0.0,
              hi=1.0, lo_open=True),
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if not isinstance(self.job_time, (JobTime, TraceJobTimes, str)):
            raise ValueError("job_time must be a JobTime, a TraceJobTimes or a CSV path")
        for k in ("download", "upload"):
            if not isinstance(getattr(self, k), JobTime):
                raise ValueError(f"{k} must be a JobTime")
        if self.staleness != "none" and self.tau_max is None:
            raise ValueError(
                f"tau_max (integer >= 0) is required with staleness={self.staleness!r}"
            )

    def source(self, n: int, seed: int, K: int) -> _EventSource:
        return _EventSource(self, n, seed)


class _EventSource:
    """Runtime of :class:`EventDriven`. Per event: O(log C) heap work, O(1) bookkeeping,
    plus O(τ_max) for the block check; nothing O(n)."""

    def __init__(self, spec: EventDriven, n: int, seed: int) -> None:
        self.spec, self.n = spec, n
        jt = spec.job_time
        self.trace = load_job_trace(jt, n) if isinstance(jt, str) else (
            jt if isinstance(jt, TraceJobTimes) else None
        )
        if self.trace is not None and len(self.trace.durations) != n:
            raise ValueError(f"job trace has {len(self.trace.durations)} clients, the run has {n}")
        self.law = jt if isinstance(jt, JobTime) else None
        self.speeds = speeds_array(spec.speeds, n)
        # Constant laws skip the draw; the counter index 3j+k still names the same draw, so
        # switching a law to constant changes no other draw.
        self.law_const = self.law is not None and self.law.law == "constant"
        self.has_dl, self.has_ul = not spec.download.is_zero, not spec.upload.is_zero
        self.C = n if spec.concurrency is None else min(spec.concurrency, n)
        self.control = spec.staleness
        self.tau_max = spec.tau_max
        if self.control == "block" and self.C > self.tau_max + 1:
            raise ValueError(
                f"staleness='block' needs concurrency <= tau_max + 1 (here concurrency={self.C}, "
                f"tau_max={self.tau_max}): C jobs pulled at version 0 need C versions <= tau_max"
            )
        self.period = spec.availability_period
        if self.period is not None:
            ph = streams.counter_uniforms(streams.client_keys(seed, streams.PURPOSE_AVAIL, n),
                                          np.zeros(n, dtype=np.int64))
            self.phase = (ph * self.period).tolist()
            self.on_len = spec.availability_on * self.period
        self.off_t = [math.inf] * n
        keys = streams.client_keys(seed, streams.PURPOSE_JOBS, n)
        self.keys = keys.tolist()
        # The job-time uniforms u_{i,j} = counter_uniform(k_i, 3j + 1), computed B jobs ahead
        # per client in one vectorised hash (the same integers, so the same floats as the
        # scalar function; a scalar hash was ~1.4 µs of a ~10 µs event). Row i holds jobs
        # ubase[i] .. ubase[i] + B − 1; derived from (keys, job index) only, never checkpointed.
        self._ukeys = keys
        self.B = B = _UBLOCK if n * _UBLOCK * 8 <= _UBLOCK_BYTES else _UBLOCK_SMALL
        self._uj = 3 * np.arange(B, dtype=np.int64) + 1
        self.ub = streams.counter_uniforms(keys[:, None], self._uj[None, :])  # jobs 0..B−1
        self.ubase = [0] * n
        self.dkeys = streams.client_keys(seed, streams.PURPOSE_DROPOUT, n).tolist()
        self.rng = streams.server_rng(seed)
        self.q = EventQueue()
        self.limit = max(100_000, 10 * n)
        # Every client always has a job and no availability windows: a return restarts at once.
        self.direct = self.C == n and self.period is None
        self.dropout = spec.dropout
        self.quantile = self.law.quantile_fn() if self.law is not None else None
        self.plain_law = (self.law is not None and not self.law_const and self.speeds is None
                          and not self.has_dl and not self.has_ul)
        self.now = 0.0
        self.pulled = [-1] * n
        # cnt[p] (jobs outstanding per pulled version) is needed by rule (BLK) only
        self.track = self.control == "block"
        self.drop = self.control == "drop"
        self.start_t = [0.0] * n
        self.jobidx = [0] * n
        self.cnt: dict[int, int] = {}
        self.lo = 0
        self.idle: list[int] = []
        self.held: list[tuple[int, float, int, float]] = []
        self.n_dropped = 0
        self.n_failed = 0
        self.jobs = RowBuffer(JOB_DTYPE)
        self.dispatched: list[tuple[int, int]] = []
        # Simulated ahead (theory/simulator.md §3.2): when every client always has a job and
        # restarts at its arrival, and nothing but the staleness test depends on versions
        # (no dropout, control none/drop), the event order does not depend on the engine:
        # :meth:`_simulate` pops and restarts a block of arrivals in one tight loop; ``next``
        # serves them. blk[bk:] = simulated, not yet served (checkpointed as "ahead").
        self.blocked = self.direct and self.dropout == 0 and self.control != "block"
        self.blk: list[tuple[float, int, float]] = []
        self.bk = 0

    # -- job bookkeeping
    def _duration(self, i: int, j: int) -> float:
        key = self.keys[i]
        if self.trace is not None:
            d = self.trace.durations[i]
            c = d[j % len(d)]
        elif self.law_const:
            c = self.law.minimum + self.law.mean
        else:
            c = self.quantile(self._u(i, j))
        if self.speeds is not None:
            c /= self.speeds[i]
        if self.has_dl:
            c += self.spec.download.quantile(counter_uniform(key, 3 * j))
        if self.has_ul:
            c += self.spec.upload.quantile(counter_uniform(key, 3 * j + 2))
        return c

    def _u(self, i: int, j: int) -> float:
        """u_{i,j} = counter_uniform(k_i, 3j + 1), the uniform of client i's job j."""
        r = j - self.ubase[i]
        if not 0 <= r < self.B:
            self.ub[i, :] = streams.counter_uniforms(
                np.full(self.B, self._ukeys[i]), self._uj + 3 * j)
            self.ubase[i] = j
            r = 0
        return self.ub.item(i, r)

    def _window(self, i: int, t: float) -> tuple[float, float]:
        """(start, end) of the availability window that contains t, or else of the next one."""
        P, ph = self.period, self.phase[i]
        s = ph + math.floor((t - ph) / P) * P
        if t < s + self.on_len:
            return max(s, t), s + self.on_len
        return s + P, s + P + self.on_len

    def _dispatch(self, i: int, version: int) -> None:
        if self.period is not None:
            t_on, t_off = self._window(i, self.now)
            self.off_t[i] = t_off
            if t_on > self.now:
                # Offline: the job starts (and pulls) when the window opens.
                self.q.push(t_on, START, i)
                return
        self._start(i, version)

    def _start(self, i: int, version: int) -> None:
        j = self.jobidx[i]
        self.jobidx[i] = j + 1
        now = self.now
        end = now + self._duration(i, j)  # (blocked runs draw in _simulate, not here)
        fail = self.dropout > 0 and counter_uniform(self.dkeys[i], j) < self.dropout
        if end > self.off_t[i]:
            end, fail = self.off_t[i], True
        self.q.push(end, FAILURE if fail else ARRIVAL, i)
        self.pulled[i] = version
        self.start_t[i] = now
        if self.track:
            cnt = self.cnt
            cnt[version] = cnt.get(version, 0) + 1
        if not fail:
            # the job's inputs (client stream, w^version) are fixed now: the engine may compute
            # it whenever it likes (a job that will fail is never computed)
            self.dispatched.append((i, version))

    def _release(self, i: int) -> None:
        if self.track:
            p = self.pulled[i]
            c = self.cnt[p] - 1
            if c:
                self.cnt[p] = c
            else:
                del self.cnt[p]
        self.pulled[i] = -1

    def _draw_idle(self) -> int:
        k = int(self.rng.integers(len(self.idle)))
        # Swap-remove: O(1); the order of `idle` is part of the (checkpointed) state.
        self.idle[k], self.idle[-1] = self.idle[-1], self.idle[k]
        return self.idle.pop()

    def _restart(self, i: int, version: int) -> None:
        if self.C == self.n:
            if self.period is None:
                self._start(i, version)
            else:
                self._dispatch(i, version)
        else:
            self.idle.append(i)
            self._dispatch(self._draw_idle(), version)

    # -- protocol
    def start(self, version: int) -> None:
        if self.C == self.n:
            for i in range(self.n):
                self._dispatch(i, version)
        else:
            self.idle = list(range(self.n))
            for _ in range(self.C):
                self._dispatch(self._draw_idle(), version)

    def _simulate(self, k: int) -> None:
        """The next k arrivals as (time, client, job start), each client's next job started
        (drawn and queued) at its arrival: exactly what k rounds of :meth:`next` +
        :meth:`after` do to the queue, the job indices and the push counter."""
        q = self.q
        times, seq, add = q.times, q.seq, q.add
        jobidx, start_t, ubase = self.jobidx, self.start_t, self.ubase
        item, quantile = self.ub.item, self.quantile
        plain = self.plain_law
        out = []
        push = out.append
        t = self.now
        B, kind = self.B, ARRIVAL
        at, pop_tie = q.at, q.pop_tie
        get = at.get
        for _ in range(k):
            # EventQueue.pop and .push inlined (the counter kept in a local): the hot path
            t = times[0]  # popped below by heapreplace, together with the push (one sift)
            e = at[t]
            if type(e) is tuple:
                del at[t]
            else:
                e = pop_tie(t, e)
            i = e[2]
            push((t, i, start_t[i]))
            j = jobidx[i]
            jobidx[i] = j + 1
            if plain:
                r = j - ubase[i]
                end = t + quantile(item(i, r) if 0 <= r < B else self._u(i, j))
            else:
                end = t + self._duration(i, j)
            start_t[i] = t
            heapreplace(times, end)
            e = (end, kind, i, seq)
            b = get(end)
            if b is None:
                at[end] = e
            else:
                add(e)
            seq += 1
        q.seq = seq
        self.now = t
        self.blk, self.bk = out, 0

    def block(self) -> tuple[list[tuple[float, int, float]], int]:
        """(simulated arrivals (time, client, job start), index of the first unserved one),
        simulating the next block first when every arrival of this one was served.

        For the engine's fast path (theory/simulator.md §3.2): it serves ``blk[bk:]`` itself
        with exactly the bookkeeping of :meth:`next` + :meth:`after` in blocked mode (job row,
        ``pulled``, ``n_dropped``) and stores the new position in ``bk``."""
        if self.bk == len(self.blk):
            self._simulate(_SIM_BLOCK)
        return self.blk, self.bk

    def next(self, version: int) -> Arrival | None:
        if self.blocked:
            bk = self.bk
            if bk == len(self.blk):
                self._simulate(_SIM_BLOCK)
                bk = 0
            t, i, s = self.blk[bk]
            self.bk = bk + 1
            p = self.pulled[i]
            tau = version - p
            ok = not self.drop or tau <= self.tau_max
            # the job row (after() only restarts bookkeeping); RowBuffer.append inlined
            rows = self.jobs.pending
            rows.append((i, s, t, p, APPLIED if ok else DROPPED))
            if len(rows) >= RowBuffer.CHUNK:
                self.jobs.flush()
            return _new(Arrival, (t, i, p, tau, ok, False, s, t))
        idle_events = 0
        limit = self.limit
        q = self.q
        times, at = q.times, q.at
        while True:
            # Held updates are re-examined after *every* event: a failure or another hold can
            # make the earliest one safe (Prop. 4.1 (ii) relies on it).
            if self.held:
                p, end, i, _ = self.held[0]
                if block_safe(self.cnt, p, version, self.tau_max):
                    heapq.heappop(self.held)
                    return Arrival(self.now, i, p, version - p, True, False, self.start_t[i], end)
            if not times or idle_events >= limit:
                # No job can finish (e.g. every job outlasts its availability window).
                return None
            idle_events += 1
            # EventQueue.pop inlined: hot path.
            t = heappop(times)
            b = at[t]
            if type(b) is tuple:
                del at[t]
            else:
                b = q.pop_tie(t, b)
            kind, i = b[1], b[2]
            self.now = t
            if kind == START:
                self._start(i, version)
                continue
            p = self.pulled[i]
            if kind == FAILURE:
                self.n_failed += 1
                self.jobs.append((i, self.start_t[i], t, p, FAILED))
                self._release(i)
                self._restart(i, version)
                continue
            tau = version - p
            if self.control == "drop":
                return Arrival(t, i, p, tau, tau <= self.tau_max, False, self.start_t[i], t)
            if self.control == "block" and not block_safe(self.cnt, p, version, self.tau_max):
                heapq.heappush(self.held, (p, t, i, self.q.seq))
                self.q.seq += 1
                continue
            return Arrival(t, i, p, tau, True, False, self.start_t[i], t)

    def after(self, a: Arrival, version: int) -> None:
        if self.blocked:  # the job row is written; _simulate started (drew, queued) the next
            i = a[1]
            if not a[4]:
                self.n_dropped += 1
            self.pulled[i] = version
            self.dispatched.append((i, version))
            return
        _, i, p, _, accepted, _, job_start, job_end = a
        if not accepted:
            self.n_dropped += 1
        self.jobs.append((i, job_start, job_end, p, APPLIED if accepted else DROPPED))
        # _release(i) inlined: hot path.
        if self.track:
            cnt, p = self.cnt, self.pulled[i]
            c = cnt[p] - 1
            if c:
                cnt[p] = c
            else:
                del cnt[p]
        self.pulled[i] = -1
        if self.direct:
            self._start(i, version)
        else:
            self._restart(i, version)

    def oldest_needed(self, version: int) -> int:
        # Dispatched jobs hold their pulled model themselves (the engine's pending jobs keep a
        # reference): the store needs only the current version.
        return version

    def state(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state, "q": self.q.state(), "now": self.now,
            "pulled": self.pulled, "start_t": self.start_t, "jobidx": self.jobidx,
            "cnt": [[k, v] for k, v in self.cnt.items()], "lo": self.lo, "idle": self.idle,
            "held": [list(h) for h in self.held], "n_dropped": self.n_dropped,
            "n_failed": self.n_failed, "off_t": self.off_t,
            "ahead": [list(a) for a in self.blk[self.bk:]],
        }

    def load_state(self, s: dict) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.q.load_state(s["q"])
        self.now = float(s["now"])
        self.pulled = [int(x) for x in s["pulled"]]
        self.start_t = [float(x) for x in s["start_t"]]
        self.jobidx = [int(x) for x in s["jobidx"]]
        self.cnt = {int(k): int(v) for k, v in s["cnt"]}
        self.lo = int(s["lo"])
        self.idle = [int(x) for x in s["idle"]]
        self.held = [(int(p), float(e), int(i), int(q)) for p, e, i, q in s["held"]]
        self.n_dropped, self.n_failed = int(s["n_dropped"]), int(s["n_failed"])
        self.off_t = [float(x) for x in s["off_t"]]
        self.blk = [(float(t), int(i), float(st)) for t, i, st in s.get("ahead", [])]
        self.bk = 0
        self.ubase = [-self.B] * self.n  # the uniform cache restarts from the job indices


# --------------------------------------------------------------------------- synchronous rounds
class _RoundSource:
    """Synchronous rounds: m = K clients sampled without replacement from the server stream, all
    pulling the current model; arrivals in (end time, client) order, the last one flushes; the
    next round starts when the slowest sampled client has arrived (or failed). Without a clock
    (theorem mode) every job takes 1 time unit."""

    def __init__(self, n: int, seed: int, m: int, timing: EventDriven | None) -> None:
        if m > n:
            raise ValueError(f"clients_per_round must be <= n_clients={n}, got {m}")
        self.n, self.m = n, m
        self.ev = _EventSource(timing, n, seed) if timing is not None else None
        self.rng = streams.server_rng(seed)
        self.pending: list[Arrival] = []
        self.now = 0.0
        self.jobs = RowBuffer(JOB_DTYPE)
        self.n_dropped = self.n_failed = 0
        self.dispatched: list[tuple[int, int]] = []

    def start(self, version: int) -> None:
        pass

    def _round(self, version: int) -> None:
        while not self.pending:
            clients = sorted(int(c) for c in self.rng.choice(self.n, self.m, replace=False))
            ends = []
            for i in clients:
                fail = False
                if self.ev is None:
                    d = 1.0
                else:
                    ev = self.ev
                    j = ev.jobidx[i]
                    ev.jobidx[i] = j + 1
                    d = ev._duration(i, j)
                    fail = ev.spec.dropout > 0 and (
                        streams.counter_uniform(ev.dkeys[i], j) < ev.spec.dropout
                    )
                ends.append((self.now + d, i, fail))
            ends.sort()
            ok = [(t, i) for t, i, f in ends if not f]
            self.dispatched.extend((i, version) for _, i in ok)
            for t, i, f in ends:
                if f:
                    self.n_failed += 1
                    self.jobs.append((i, self.now, t, version, FAILED))
            self.pending = [
                Arrival(t, i, version, 0, True, k == len(ok) - 1, self.now, t)
                for k, (t, i) in enumerate(ok)
            ][::-1]
            self.now = ends[-1][0]

    def next(self, version: int) -> Arrival:
        self._round(version)
        return self.pending.pop()

    def after(self, a: Arrival, version: int) -> None:
        self.jobs.append((a.client, a.job_start, a.job_end, a.pulled, APPLIED))

    def oldest_needed(self, version: int) -> int:
        return version

    def state(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state, "now": self.now,
            "pending": [list(a) for a in self.pending],
            "jobidx": None if self.ev is None else self.ev.jobidx, "n_failed": self.n_failed,
        }

    def load_state(self, s: dict) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.now = float(s["now"])
        self.pending = [
            Arrival(float(a[0]), int(a[1]), int(a[2]), int(a[3]), bool(a[4]), bool(a[5]),
                    float(a[6]), float(a[7]))
            for a in s["pending"]
        ]
        if self.ev is not None:
            self.ev.jobidx = [int(x) for x in s["jobidx"]]
        self.n_failed = int(s["n_failed"])


# --------------------------------------------------------------------------- replay
@dataclass(frozen=True)
class Replay:
    """Force a recorded sequence of (time, client, pulled_version, accepted) arrivals.

    Build it with :meth:`from_trace` (a :class:`~persafl_np.results.Trace`) or
    :meth:`from_csv` (a ``trace.csv``). ``step`` is kept to know where rounds/buffers flushed.
    """

    time: tuple[float, ...]
    step: tuple[int, ...]
    client: tuple[int, ...]
    pulled: tuple[int, ...]
    accepted: tuple[bool, ...]

    @classmethod
    def from_trace(cls, trace: Any) -> Replay:
        return cls(
            tuple(float(x) for x in trace.time), tuple(int(x) for x in trace.step),
            tuple(int(x) for x in trace.client), tuple(int(x) for x in trace.pulled_version),
            tuple(bool(x) for x in trace.accepted),
        )

    @classmethod
    def from_csv(cls, path: str, n_clients: int) -> Replay:
        from persafl_np.results import read_trace_csv

        return cls.from_trace(read_trace_csv(path, n_clients))

    def source(self, n: int, seed: int, K: int) -> _ReplaySource:
        return _ReplaySource(self, n)


class _ReplaySource:
    def __init__(self, spec: Replay, n: int) -> None:
        bad = [k for k, c in enumerate(spec.client) if not 0 <= c < n]
        if bad:
            raise ValueError(f"replay trace row {bad[0] + 1}: client id {spec.client[bad[0]]} "
                             f"outside 0..{n - 1}")
        self.spec, self.k = spec, 0
        m = len(spec.pulled)
        # suffix minimum of pulled versions: which old models the rest of the replay still needs
        suf = np.minimum.accumulate(np.asarray(spec.pulled[::-1] or (0,), dtype=np.int64))[::-1]
        self.suffix_min = suf.tolist() + [10**18]
        self.m = m
        self.window = n  # look-ahead: at most one job per client
        self.jobs = RowBuffer(JOB_DTYPE)
        self.n_dropped = self.n_failed = 0
        self.dispatched: list[tuple[int, int]] = []

    def start(self, version: int) -> None:
        pass

    def next(self, version: int) -> Arrival | None:
        k, s = self.k, self.spec
        if k >= self.m:
            return None
        p = s.pulled[k]
        if p > version or p < 0:
            raise ValueError(
                f"replay trace row {k + 1}: pulled_version {p} is not in 0..current step {version}"
            )
        flush = k + 1 == self.m or s.step[k + 1] > s.step[k]
        self.k = k + 1
        return Arrival(s.time[k], s.client[k], p, version - p, s.accepted[k], flush,
                       s.time[k], s.time[k])

    def ahead(self, version: int, count: int, client: int) -> list[tuple[int, int]]:
        """(client, pulled) of the coming rows whose jobs are computable now (cohort execution,
        theory/simulator.md §3.1): from the next row on, while the pulled version exists
        (≤ ``version``) and the client is new to the window (≠ ``client``: a client's next job
        may depend on its previous one — its stream position, warm start, own model). The
        engine computes them together; results are those of row-by-row replay."""
        s, k, m = self.spec, self.k, self.m
        out: list[tuple[int, int]] = []
        seen = {client}
        while k < m and len(out) < self.window:
            c, p = s.client[k], s.pulled[k]
            if p > version or p < 0 or c in seen:
                break
            seen.add(c)
            out.append((c, p))
            k += 1
        return out

    def after(self, a: Arrival, version: int) -> None:
        if not a.accepted:
            self.n_dropped += 1
        status = APPLIED if a.accepted else DROPPED
        self.jobs.append((a.client, a.job_start, a.job_end, a.pulled, status))

    def oldest_needed(self, version: int) -> int:
        return min(version, self.suffix_min[self.k])

    def state(self) -> dict:
        return {"k": self.k, "n_dropped": self.n_dropped}

    def load_state(self, s: dict) -> None:
        self.k, self.n_dropped = int(s["k"]), int(s["n_dropped"])


def make_source(arrivals: Any, n: int, seed: int, K: int, synchronous: bool) -> ArrivalSource:
    """The runtime source for a spec (synchronous algorithms use rounds over its timing)."""
    if synchronous and not isinstance(arrivals, Replay):
        timing = arrivals if isinstance(arrivals, EventDriven) else None
        return _RoundSource(n, seed, K, timing)
    return arrivals.source(n, seed, K)


def replay_of(trace: Any) -> Replay:
    """A :class:`Replay` from a Trace object or an existing Replay."""
    return trace if isinstance(trace, Replay) else Replay.from_trace(trace)

