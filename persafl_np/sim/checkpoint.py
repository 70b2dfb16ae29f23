"""Crash-safe checkpoint storage (theory/simulator.md §7, "Checkpoint files", CK-ATOMIC).

A checkpoint directory holds

* ``MANIFEST.json`` — the one file that makes a checkpoint: format, sequence number k, the run
  fingerprint (:mod:`persafl_np.fingerprint`), the run's JSON meta (generator states, counters,
  source state...), the state file and every table segment with its byte size and SHA-256, the
  row counts, and a ``checksum`` (SHA-256 of everything else in the manifest);
* ``state-k.npz`` — the arrays of checkpoint k (server model, model store, warm starts...);
* ``seg-j.npz`` — the rows that were appended to each table (trace, history, jobs) between
  checkpoints j−1 and j, one immutable segment per checkpoint: checkpoint cost is proportional
  to what changed, not to the length of the run.

Commit protocol of :meth:`Checkpointer.save` (each file: temporary file, fsync, rename):
write ``seg-k.npz`` and ``state-k.npz`` under new names, fsync the directory, replace
``MANIFEST.json`` (fsync again), then delete files no manifest refers to. A kill at any instant
therefore leaves the previous complete checkpoint (old manifest, its files untouched) or the new
one, never a mix; the stray ``.tmp`` / unreferenced files it may leave are ignored by
:meth:`Checkpointer.load` and removed by it and by the next save.

:meth:`Checkpointer.load` validates every manifest field (types, sizes, counts) *before* reading
any array, checks the checksum, the fingerprint, each file's size and SHA-256 and each segment's
row counts, and raises a ValueError naming the file and the field otherwise.

The format does not know how the engine groups jobs: the engine hands over a dict of arrays, a
JSON-able meta and append-only row tables.

Test hook (documented, for the real-kill tests only): when the environment variable
``PERSAFL_CHECKPOINT_KILL_AT=k`` (k ≥ 1) is set, the process calls ``os._exit(KILL_EXIT_CODE)``
at the k-th injection point it reaches. The points are, per save: before and after the rename of
each of the (up to) three files, and after the cleanup — :data:`POINTS_PER_SAVE` per save that
has new rows. Nothing else reads the variable.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.atomic import TMP_SUFFIX, atomic_write_bytes, fsync_dir, npz_bytes
from persafl_np.json_object import read_json_object

__all__ = ["KILL_ENV", "KILL_EXIT_CODE", "MANIFEST", "POINTS_PER_SAVE", "Checkpointer",
           "has_checkpoint"]

MANIFEST = "MANIFEST.json"
FORMAT = "persafl_np.checkpoint"
FORMAT_VERSION = 2
KILL_ENV = "PERSAFL_CHECKPOINT_KILL_AT"
KILL_EXIT_CODE = 86
POINTS_PER_SAVE = 7
_NAME = re.compile(r"^(seg|state)-(\d{6,})\.npz$")
_HEX = frozenset("0123456789abcdef")
#: Upper bound on the manifest's size read into memory (its meta holds O(n) per-client state).
MAX_MANIFEST_BYTES = 1 << 30
_points_reached = 0


def _kill_point() -> None:
    """The test hook of the module docstring."""
    global _points_reached
    at = os.environ.get(KILL_ENV)
    if not at:
        return
    _points_reached += 1
    if _points_reached == int(at):
        os._exit(KILL_EXIT_CODE)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checksum(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return _sha(text.encode("utf-8"))


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a checkpoint manifest (valid or not)."""
    return (Path(directory) / MANIFEST).is_file()


def _rows_array(rows: Any, dtype: np.dtype, start: int) -> np.ndarray:
    """Rows ``start:`` of a table (a list of tuples or a structured array) as ``dtype``."""
    if isinstance(rows, np.ndarray):
        return np.ascontiguousarray(rows[start:], dtype=dtype)
    part = rows[start:] if start else rows
    return np.fromiter(part, dtype=dtype, count=len(part))


class Checkpointer:
    """Writes and reads the checkpoints of one run in ``directory`` (module docstring).

    fingerprint: the run's fingerprint; :meth:`load` refuses a checkpoint of another run.
    tables: table name → structured dtype of its rows (append-only between saves).
    """

    def __init__(self, directory: str | os.PathLike[str], fingerprint: str,
                 tables: Mapping[str, np.dtype]) -> None:
        self.dir = Path(directory)
        self.fingerprint = fingerprint
        self.tables = {k: np.dtype(v) for k, v in tables.items()}
        self.segments: list[dict[str, Any]] = []
        self.rows = dict.fromkeys(self.tables, 0)
        self.seq: int | None = None  # next sequence number; None = not yet scanned

    # ------------------------------------------------------------------ save
    def _next_seq(self) -> int:
        if self.seq is None:  # continue after any file already there: names never collide
            top = 0
            if self.dir.is_dir():
                for p in self.dir.iterdir():
                    m = _NAME.match(p.name)
                    if m:
                        top = max(top, int(m.group(2)))
            self.seq = top + 1
        k = self.seq
        self.seq += 1
        return k

    def _write(self, name: str, data: bytes) -> dict[str, Any]:
        atomic_write_bytes(self.dir / name, data, before_replace=_kill_point)
        _kill_point()
        return {"file": name, "bytes": len(data), "sha256": _sha(data)}

    def save(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
             tables: Mapping[str, Any]) -> None:
        """Commit one checkpoint: the full ``arrays`` and ``meta`` and the rows of each table
        appended since the previous save (``tables[name]`` is the whole row list so far)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        k = self._next_seq()
        new = {name: _rows_array(tables[name], dt, self.rows[name])
               for name, dt in self.tables.items()}
        segments = list(self.segments)
        if any(len(a) for a in new.values()):
            entry = self._write(f"seg-{k:06d}.npz", npz_bytes(**new))
            entry["rows"] = {name: len(a) for name, a in new.items()}
            segments.append(entry)
        state = self._write(f"state-{k:06d}.npz",
                            npz_bytes(**{f"a_{key}": np.asarray(v) for key, v in arrays.items()}))
        fsync_dir(self.dir)
        rows = {name: self.rows[name] + len(a) for name, a in new.items()}
        doc: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "seq": k,
            "fingerprint": self.fingerprint, "state": state, "segments": segments,
            "rows": rows, "tables": {n: dt.descr for n, dt in self.tables.items()},
            "meta": meta,
        }
        doc["checksum"] = _checksum(doc)
        self._write(MANIFEST, json.dumps(doc, allow_nan=True).encode("utf-8"))
        fsync_dir(self.dir)
        self.segments, self.rows = segments, rows
        self._cleanup({state["file"], *(s["file"] for s in segments)})
        _kill_point()

    def _cleanup(self, keep: set[str]) -> None:
        """Delete temporary files and checkpoint files the manifest does not refer to."""
        if not self.dir.is_dir():
            return
        for p in self.dir.iterdir():
            stray_tmp = p.name.startswith(".") and p.name.endswith(TMP_SUFFIX)
            if (stray_tmp or (_NAME.match(p.name) and p.name not in keep)) and p.is_file():
                try:
                    p.unlink()
                except OSError:
                    pass

    # ------------------------------------------------------------------ load
    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray]]:
        """Verify and read the checkpoint: ``(arrays, meta, tables)``, each table the whole
        structured array of its rows. Raises ValueError naming the file and the field."""
        mpath = self.dir / MANIFEST
        doc = _read_manifest(mpath)
        if doc["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"checkpoint {mpath}: field 'fingerprint' {doc['fingerprint'][:12]}… belongs to "
                f"another run (this run's is {self.fingerprint[:12]}…: the config, the data, the "
                "package version or the run arguments differ); start the run afresh"
            )
        descr = {n: dt.descr for n, dt in self.tables.items()}
        if _jsonable(descr) != doc["tables"]:
            raise ValueError(f"checkpoint {mpath}: field 'tables' {doc['tables']!r} does not "
                             f"match this engine's tables {_jsonable(descr)!r}")
        for seg in doc["segments"]:
            if set(seg["rows"]) != set(self.tables):
                raise ValueError(f"checkpoint {mpath}: segment {seg['file']} field 'rows' must "
                                 f"name the tables {sorted(self.tables)}")
        totals = {n: sum(s["rows"][n] for s in doc["segments"]) for n in self.tables}
        if totals != doc["rows"]:
            raise ValueError(f"checkpoint {mpath}: field 'rows' {doc['rows']} is not the sum of "
                             f"the segments' rows {totals}")
        z = _read_npz(self.dir, doc["state"])
        arrays = {}
        for key in z:
            if not key.startswith("a_"):
                raise ValueError(f"checkpoint {self.dir / doc['state']['file']}: unexpected "
                                 f"array {key!r}")
            arrays[key[2:]] = z[key]
        parts: dict[str, list[np.ndarray]] = {n: [] for n in self.tables}
        for seg in doc["segments"]:
            z = _read_npz(self.dir, seg)
            for name, dt in self.tables.items():
                a = z.get(name)
                where = f"checkpoint {self.dir / seg['file']}: table {name!r}"
                if a is None or a.dtype != dt or a.ndim != 1 or len(a) != seg["rows"][name]:
                    raise ValueError(f"{where} must be {seg['rows'][name]} rows of {dt.descr}")
                parts[name].append(a)
        tables = {n: (np.concatenate(p) if p else np.zeros(0, dtype=self.tables[n]))
                  for n, p in parts.items()}
        self.segments = [dict(s) for s in doc["segments"]]
        self.rows = dict(doc["rows"])
        self.seq = doc["seq"] + 1
        self._cleanup({doc["state"]["file"], *(s["file"] for s in doc["segments"])})
        return arrays, doc["meta"], tables


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x))


def _field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise ValueError(f"{where}: missing field {key!r}")
    v = doc[key]
    if isinstance(v, bool) and kind is int or not isinstance(v, kind):
        raise ValueError(f"{where}: field {key!r} must be of type "
                         f"{getattr(kind, '__name__', kind)}, got {type(v).__name__}")
    return v


def _count(doc: Mapping[str, Any], key: str, where: str, lo: int = 0) -> int:
    v = _field(doc, key, int, where)
    if v < lo or v > 1 << 62:
        raise ValueError(f"{where}: field {key!r} must be an integer in {lo}..2^62, got {v}")
    return v


def _file_entry(e: Any, where: str, kind: str) -> None:
    if not isinstance(e, dict):
        raise ValueError(f"{where}: must be an object")
    name = _field(e, "file", str, where)
    m = _NAME.match(name)
    if not m or m.group(1) != kind:
        raise ValueError(f"{where}: field 'file' {name!r} is not a {kind}-NNNNNN.npz name")
    _count(e, "bytes", where)
    sha = _field(e, "sha256", str, where)
    if len(sha) != 64 or not set(sha) <= _HEX:
        raise ValueError(f"{where}: field 'sha256' must be 64 lower-case hex digits")


def _read_manifest(path: Path) -> dict[str, Any]:
    """Read and validate ``MANIFEST.json`` (structure only; files are checked when read)."""
    where = f"checkpoint {path}"
    doc = read_json_object(path, "a checkpoint manifest", MAX_MANIFEST_BYTES, where)
    if _field(doc, "format", str, where) != FORMAT:
        raise ValueError(f"{where}: field 'format' must be {FORMAT!r}")
    if _field(doc, "format_version", int, where) != FORMAT_VERSION:
        raise ValueError(f"{where}: field 'format_version' is {doc['format_version']!r}; this "
                         f"persafl_np reads version {FORMAT_VERSION}")
    checksum = _field(doc, "checksum", str, where)
    if checksum != _checksum(doc):
        raise ValueError(f"{where}: field 'checksum' does not match the manifest's content "
                         "(the file was edited or damaged)")
    _count(doc, "seq", where, 1)
    fp = _field(doc, "fingerprint", str, where)
    if len(fp) != 64 or not set(fp) <= _HEX:
        raise ValueError(f"{where}: field 'fingerprint' must be 64 lower-case hex digits")
    _file_entry(_field(doc, "state", dict, where), f"{where}: field 'state'", "state")
    segs = _field(doc, "segments", list, where)
    seen = set()
    for j, s in enumerate(segs):
        w = f"{where}: field 'segments[{j}]'"
        _file_entry(s, w, "seg")
        if s["file"] in seen:
            raise ValueError(f"{w}: file {s['file']!r} listed twice")
        seen.add(s["file"])
        rows = _field(s, "rows", dict, w)
        for name in rows:
            _count(rows, name, f"{w} rows")
    rows = _field(doc, "rows", dict, where)
    for name in rows:
        _count(rows, name, f"{where}: field 'rows'")
    _field(doc, "tables", dict, where)
    _field(doc, "meta", dict, where)
    return doc


def _read_npz(directory: Path, entry: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Read one file of the manifest after checking its size and SHA-256."""
    path = directory / entry["file"]
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValueError(f"checkpoint {path}: missing or unreadable ({exc.strerror}); the "
                         "checkpoint is damaged") from None
    if size != entry["bytes"]:
        raise ValueError(f"checkpoint {path}: {size} bytes, the manifest's field 'bytes' says "
                         f"{entry['bytes']}; the checkpoint is damaged")
    data = path.read_bytes()
    if _sha(data) != entry["sha256"]:
        raise ValueError(f"checkpoint {path}: content does not match the manifest's field "
                         "'sha256'; the checkpoint is damaged")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"checkpoint {path}: not a readable .npz ({exc})") from None


def as_rows(a: np.ndarray) -> list[tuple]:
    """A structured array back to the engine's list of row tuples (Python scalars)."""
    return a.tolist()


def check_keys(meta: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    """ValueError naming the first key of ``keys`` missing from ``meta``."""
    for k in keys:
        if k not in meta:
            raise ValueError(f"{where}: missing field 'meta.{k}'")
