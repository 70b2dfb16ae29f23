"""Run results and their files (theory/simulator.md §6).

:class:`RunResult` holds the final parameters, the per-arrival :class:`Trace`, the per-job table,
the :class:`History` at evaluation points, arrival shares p_i and counters. ``save(dir)`` writes,
each file atomically (temporary file in the same directory, then ``os.replace``):

* ``config.toml``  — the resolved config (when the run came from :func:`persafl_np.simulate`);
* ``trace.csv``    — time, step, client, pulled_version, staleness, accepted, update_norm;
* ``jobs.csv``     — client, start, end, pulled_version, status (applied/dropped/failed);
* ``history.csv``  — step, time, arrivals, grad_norm2, loss, weighted_grad_norm2, acc_global,
  acc_pers_mean, acc_pers_min (NaN where not applicable);
* ``final.npz``    — params, shares, counts (``allow_pickle=False`` readable);
* ``batches.npz``  — with ``record_batches``: every arrival's batch row indices
  (theory/simulator.md §1.1; :func:`persafl_np.sim.engine.load_batches`);
* ``summary.json`` — status, message, counters, and ``final``: the last evaluated metrics
  (step and every history column at the last row; NaN written as null);
* ``fingerprint.json`` — the run's fingerprint (:mod:`persafl_np.fingerprint`), written last.

:meth:`RunResult.load` reads such a folder back (``RunResult.load("out/")``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.atomic import atomic_write_npz, atomic_write_text
from persafl_np.json_object import read_json_object

__all__ = [
    "HISTORY_FIELDS",
    "JOB_DTYPE",
    "TRACE_DTYPE",
    "RowBuffer",
    "TRACE_FIELDS",
    "History",
    "RunResult",
    "Trace",
    "read_history_csv",
    "read_summary_json",
    "read_trace_csv",
]

#: Largest summary.json read into memory (its counters are a few dozen numbers).
_MAX_SUMMARY_BYTES = 1 << 20
RUN_STATUSES = ("ok", "diverged", "stalled")
_INT64_MAX = 2**63 - 1

TRACE_FIELDS = ("time", "step", "client", "pulled_version", "staleness", "accepted", "update_norm")
HISTORY_FIELDS = (
    "step", "time", "arrivals", "grad_norm2", "loss", "weighted_grad_norm2",
    "acc_global", "acc_pers_mean", "acc_pers_min",
)
JOB_STATUS = ("applied", "dropped", "failed")

#: One trace row (an arrival) as stored while a run grows.
#: Counters that measure wall-clock time: the only fields of summary.json that differ between
#: two runs of the same config and seed (an interrupted + resumed run included).
WALL_CLOCK_COUNTERS = ("wall_seconds", "eval_seconds")

TRACE_DTYPE = np.dtype([("time", np.float64), ("step", np.int64), ("client", np.int64),
                        ("pulled_version", np.int64), ("staleness", np.int64),
                        ("accepted", np.bool_), ("update_norm", np.float64)])


#: One jobs.csv row as stored while a run grows (status: index into JOB_STATUS).
JOB_DTYPE = np.dtype([("client", np.int64), ("start", np.float64), ("end", np.float64),
                      ("pulled_version", np.int64), ("status", np.int64)])


class RowBuffer:
    """Rows of a fixed structured dtype in one growing array (amortized doubling).

    ``append`` takes a tuple in field order; tuples are first collected in a short list (a
    Python append is ~30 ns, a structured-array store ~1 µs) and moved into the array every
    :attr:`CHUNK` rows, so a run with 10⁶ arrivals holds 10⁶ × itemsize bytes, not 10⁶ tuples.
    A hot loop may append to :attr:`pending` itself and call :meth:`flush` once it holds
    :attr:`CHUNK` rows (one method call fewer per row).
    """

    CHUNK = 4096
    __slots__ = ("arr", "dtype", "n", "pending")

    def __init__(self, dtype: np.dtype, arr: np.ndarray | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.arr = np.empty(self.CHUNK, dtype=self.dtype) if arr is None else arr.copy()
        self.n = 0 if arr is None else int(arr.shape[0])
        self.pending: list[tuple] = []

    def append(self, row: tuple) -> None:
        p = self.pending
        p.append(row)
        if len(p) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        p = self.pending
        if not p:
            return
        need = self.n + len(p)
        if need > self.arr.shape[0]:
            new = np.empty(max(need, 2 * self.arr.shape[0]), dtype=self.dtype)
            new[:self.n] = self.arr[:self.n]
            self.arr = new
        self.arr[self.n:need] = np.fromiter(p, dtype=self.dtype, count=len(p))
        self.n = need
        p.clear()

    def __len__(self) -> int:
        return self.n + len(self.pending)

    def array(self) -> np.ndarray:
        """The rows so far as one structured array (a copy)."""
        self.flush()
        return self.arr[:self.n].copy()

    def columns(self) -> dict[str, np.ndarray]:
        """One contiguous array per field (copied from the buffer, no intermediate copy)."""
        self.flush()
        a = self.arr[:self.n]
        return {k: np.ascontiguousarray(a[k]) for k in self.dtype.names}


@dataclass(frozen=True)
class Trace:
    """One row per server arrival (applied or not), columns :data:`TRACE_FIELDS`."""

    time: np.ndarray
    step: np.ndarray
    client: np.ndarray
    pulled_version: np.ndarray
    staleness: np.ndarray
    accepted: np.ndarray
    update_norm: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> Trace:
        if rows:
            cols = list(zip(*rows, strict=True))
        else:
            cols = [()] * 7
        return cls(
            np.asarray(cols[0], dtype=np.float64), np.asarray(cols[1], dtype=np.int64),
            np.asarray(cols[2], dtype=np.int64), np.asarray(cols[3], dtype=np.int64),
            np.asarray(cols[4], dtype=np.int64), np.asarray(cols[5], dtype=bool),
            np.asarray(cols[6], dtype=np.float64),
        )


@dataclass(frozen=True)
class History:
    """Metrics at evaluation points (columns :data:`HISTORY_FIELDS`, float64 arrays)."""

    columns: dict[str, np.ndarray]

    def __getattr__(self, name: str) -> np.ndarray:
        cols = object.__getattribute__(self, "columns")
        if name in cols:
            return cols[name]
        raise AttributeError(name)

    def __len__(self) -> int:
        return int(self.columns["step"].shape[0])

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> History:
        arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(HISTORY_FIELDS))
        return cls({k: arr[:, j].copy() for j, k in enumerate(HISTORY_FIELDS)})


def _r(x: float) -> str:
    # repr round-trips float64 exactly, so a replay from trace.csv reproduces times bit for bit
    return repr(float(x)) if math.isfinite(x) else ("nan" if math.isnan(x) else repr(float(x)))


@dataclass(frozen=True)
class RunResult:
    """Outcome of a run.

    params: final server model w^T (NumPy); for ``local`` the mean of the clients' models.
    trace, jobs, history: see the module docstring; jobs is a dict of arrays.
    shares: p_i = applied updates of client i / all applied updates.
    status: ``"ok"``, ``"diverged"`` (NaN/Inf, run stopped, everything before kept) or
    ``"stalled"`` (the arrival source ran dry). counters: work and waste totals.
    config: the resolved :class:`~persafl_np.config.SimConfig` (None for engine-level runs).
    fingerprint: the run's fingerprint (:mod:`persafl_np.fingerprint`), written to
    ``fingerprint.json`` by :meth:`save`.
    """

    params: np.ndarray
    trace: Trace
    jobs: dict[str, np.ndarray]
    history: History
    shares: np.ndarray
    counts: np.ndarray
    status: str = "ok"
    message: str = ""
    counters: dict[str, float] = field(default_factory=dict)
    config: Any = None
    client_params: np.ndarray | None = None
    fingerprint: str | None = None
    batches: dict[str, np.ndarray] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def digest(self) -> str:
        """SHA-256 of params, trace and history bytes: equal digests ⇔ identical runs."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.params).tobytes())
        for k in TRACE_FIELDS:
            h.update(np.ascontiguousarray(getattr(self.trace, k)).tobytes())
        for k in HISTORY_FIELDS:
            h.update(np.ascontiguousarray(self.history.columns[k]).tobytes())
        return h.hexdigest()

    def save(self, out_dir: str | Path) -> Path:
        """Write the files of the module docstring into ``out_dir`` (created if needed)."""
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        if self.config is not None:
            atomic_write_text(d / "config.toml", self.config.to_toml())
        t = self.trace
        atomic_write_text(d / "trace.csv", _trace_text(t))
        j = self.jobs
        atomic_write_text(d / "jobs.csv", "client,start,end,pulled_version,status\n" + "".join(
            f"{c},{_r(s)},{_r(e)},{p},{JOB_STATUS[st]}\n"
            for c, s, e, p, st in zip(j["client"], j["start"], j["end"], j["pulled_version"],
                                      j["status"], strict=True)
        ))
        h = self.history.columns
        atomic_write_text(d / "history.csv", ",".join(HISTORY_FIELDS) + "\n" + "".join(
            ",".join(_r(h[k][r]) if k not in ("step", "arrivals") else str(int(h[k][r]))
                     for k in HISTORY_FIELDS) + "\n"
            for r in range(len(self.history))
        ))
        arrays = {"params": self.params, "shares": self.shares, "counts": self.counts}
        if self.client_params is not None:
            arrays["client_params"] = self.client_params
        atomic_write_npz(d / "final.npz", **arrays)
        if self.batches is not None:
            atomic_write_npz(d / "batches.npz", **self.batches)
        atomic_write_text(d / "summary.json", json.dumps(
            {"status": self.status, "message": self.message, "counters": self.counters,
             "final": self._final_metrics()},
            indent=2, sort_keys=True,
        ))
        if self.fingerprint is not None:
            from persafl_np import fingerprint

            fingerprint.write(d, self.fingerprint, self.config)
        return d

    def _final_metrics(self) -> dict[str, float | int | None]:
        """The last history row (None where NaN or when nothing was evaluated)."""
        if len(self.history) == 0:
            return {}
        row = {k: float(self.history.columns[k][-1]) for k in HISTORY_FIELDS}
        out: dict[str, float | int | None] = {
            k: (None if not math.isfinite(v) else v) for k, v in row.items()}
        out["step"], out["arrivals"] = int(row["step"]), int(row["arrivals"])
        return out

    @classmethod
    def load(cls, run_dir: str | Path) -> RunResult:
        """Read a folder written by :meth:`save` (or ``persafl run``) back into a RunResult.

        Every array is as saved (floats round-trip exactly); ``config`` is the validated
        :class:`~persafl_np.config.SimConfig` when ``config.toml`` is present. Raises
        ``ValueError`` naming the file for a folder that is not a saved run.
        """
        d = Path(run_dir)
        if not d.is_dir():
            raise ValueError(f"{d}: not a folder")
        for name in ("trace.csv", "jobs.csv", "history.csv", "final.npz", "summary.json"):
            if not (d / name).is_file():
                raise ValueError(f"{d}: not a saved run (no {name})")
        with np.load(d / "final.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        summary = json.loads((d / "summary.json").read_text())
        with (d / "jobs.csv").open(newline="") as fh:
            jrows = list(csv.DictReader(fh))
        try:
            jobs = {
                "client": np.asarray([int(r["client"]) for r in jrows], dtype=np.int64),
                "start": np.asarray([float(r["start"]) for r in jrows], dtype=np.float64),
                "end": np.asarray([float(r["end"]) for r in jrows], dtype=np.float64),
                "pulled_version": np.asarray([int(r["pulled_version"]) for r in jrows],
                                             dtype=np.int64),
                "status": np.asarray([JOB_STATUS.index(r["status"]) for r in jrows],
                                     dtype=np.int64),
            }
            with (d / "history.csv").open(newline="") as fh:
                hrows = [tuple(float(r[k]) for k in HISTORY_FIELDS) for r in csv.DictReader(fh)]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{d}: damaged jobs.csv or history.csv ({exc})") from None
        config = None
        if (d / "config.toml").is_file():
            from persafl_np.config import load_config

            config = load_config(d / "config.toml")
        return cls(
            params=arrays["params"], trace=read_trace_csv(d / "trace.csv",
                                                          int(arrays["shares"].shape[0])),
            jobs=jobs, history=History.from_rows(hrows), shares=arrays["shares"],
            counts=arrays["counts"], status=summary["status"], message=summary["message"],
            counters=summary["counters"], config=config,
            client_params=arrays.get("client_params"),
        )


def _trace_text(t: Trace) -> str:
    lines = [",".join(TRACE_FIELDS)]
    for r in range(len(t)):
        lines.append(
            f"{_r(t.time[r])},{int(t.step[r])},{int(t.client[r])},{int(t.pulled_version[r])},"
            f"{int(t.staleness[r])},{int(t.accepted[r])},{_r(t.update_norm[r])}"
        )
    return "\n".join(lines) + "\n"


def read_trace_csv(path: str | Path, n_clients: int) -> Trace:
    """Read and validate a ``trace.csv``; ValueError names the row (1 = first data row).

    Rejected: missing columns, unparsable values, client ids outside 0..n_clients−1, decreasing
    time or step, pulled_version outside 0..step, staleness ≠ step − pulled_version.
    """
    p = Path(path)
    if isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer)) \
            or n_clients < 1:
        raise ValueError(f"trace {p}: n_clients must be an integer >= 1, got {n_clients!r}")
    try:
        fh = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"trace {p}: cannot read ({exc.strerror})") from None
    try:
        with fh:
            return _read_trace_rows(p, csv.DictReader(fh), int(n_clients))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"trace {p}: not a readable CSV ({exc})") from None


def _read_trace_rows(p: Path, reader: csv.DictReader, n_clients: int) -> Trace:
    rows: list[tuple] = []
    missing = set(TRACE_FIELDS) - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"trace {p}: missing column(s) {sorted(missing)}")
    last_t, last_s = -math.inf, 0
    for k, row in enumerate(reader, start=1):
        try:
            t, s = float(row["time"]), int(row["step"])
            c, pv = int(row["client"]), int(row["pulled_version"])
            st, acc = int(row["staleness"]), int(row["accepted"])
            un = float(row["update_norm"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"trace {p}, row {k}: unparsable value ({str(exc)[:80]})"
                             ) from None
        if None in row:
            raise ValueError(f"trace {p}, row {k}: more values than columns")
        if not 0 <= c < n_clients:
            raise ValueError(
                f"trace {p}, row {k}: unknown client id {c} (allowed 0..{n_clients - 1})"
            )
        if not math.isfinite(t) or t < last_t:
            raise ValueError(f"trace {p}, row {k}: time {t} is not finite and non-decreasing")
        if s > _INT64_MAX or c > _INT64_MAX:
            raise ValueError(f"trace {p}, row {k}: step/client beyond int64")
        if s < last_s:
            raise ValueError(f"trace {p}, row {k}: step {s} decreases (previous {last_s})")
        if not 0 <= pv <= s or st != s - pv or acc not in (0, 1):
            raise ValueError(
                f"trace {p}, row {k}: need 0 <= pulled_version <= step, "
                f"staleness = step - pulled_version, accepted in {{0,1}}"
            )
        last_t, last_s = t, s
        rows.append((t, s, c, pv, st, bool(acc), un))
    return Trace.from_rows(rows)


def read_summary_json(path: str | Path) -> dict[str, Any]:
    """Read and validate a run's ``summary.json``: status ∈ :data:`RUN_STATUSES`, message a
    string, counters an object of numbers. ValueError naming the file and the field."""
    p = Path(path)
    doc = read_json_object(p, "a summary.json", _MAX_SUMMARY_BYTES)
    if doc.get("status") not in RUN_STATUSES:
        raise ValueError(f"{p}: field 'status' must be one of {RUN_STATUSES}, "
                         f"got {doc.get('status')!r}")
    if not isinstance(doc.get("message", ""), str):
        raise ValueError(f"{p}: field 'message' must be a string")
    counters = doc.get("counters", {})
    if not isinstance(counters, dict):
        raise ValueError(f"{p}: field 'counters' must be an object")
    for k, v in counters.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{p}: field 'counters.{k}' must be a number, got {v!r}")
    return {"status": doc["status"], "message": doc.get("message", ""), "counters": counters}


def read_history_csv(path: str | Path, as_text: bool = False) -> dict[str, Any]:
    """Read and validate a ``history.csv``: a header of distinct non-empty column names, then
    rows of as many values, each a float (``nan``/``inf`` allowed). Returns column → float64
    array, or column → list of the cells' text when ``as_text`` (still validated).
    ValueError naming the file, the row and the column."""
    p = Path(path)
    try:
        fh = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror})") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if not header or any(not h for h in header) or len(set(header)) != len(header):
                raise ValueError(f"{p}: the header must name distinct, non-empty columns, "
                                 f"got {header!r}")
            text: list[list[str]] = [[] for _ in header]
            for k, row in enumerate(reader, start=1):
                if len(row) != len(header):
                    raise ValueError(f"{p}, row {k}: {len(row)} values, the header has "
                                     f"{len(header)} columns")
                for j, cell in enumerate(row):
                    try:
                        float(cell)
                    except ValueError:
                        raise ValueError(f"{p}, row {k}: column {header[j]!r} value {cell!r} "
                                         "is not a number") from None
                    text[j].append(cell)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValueError(f"{p}: not a readable CSV ({exc})") from None
    if as_text:
        return dict(zip(header, text, strict=True))
    return {h: np.array([float(c) for c in col], dtype=np.float64)
            for h, col in zip(header, text, strict=True)}
