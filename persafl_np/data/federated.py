"""Federated data: one :class:`ClientData` per client, bundled in a :class:`FederatedDataset`.

Client i's local loss is f_i(w) = (1/m_i) Σ_j ℓ(w; x_j, y_j) over its *training* rows
(theory/brief_results.md §A); the test rows are only used to evaluate the personalized models.

Conventions (checked once, at construction — the boundary):

* arrays are NumPy, C-contiguous, **read-only** copies (a frozen dataclass should not
  hold arrays that someone can mutate behind its back); an array that already is read-only,
  C-contiguous and of the right dtype is shared instead of copied, so clients built on one
  shared design (``shifted_least_squares``) hold it once, not twice per client;
* ``X_*`` is float64 of shape ``(m, d)``, the same ``d`` for every client;
* classification (``n_classes`` an int ≥ 2): ``y_*`` is int64 with labels in
  ``0..n_classes-1``; regression (``n_classes is None``): ``y_*`` is float64;
* every client has at least one training row; a test set may be empty (shape ``(0, d)``),
  which :func:`persafl_np.data.partition.federate` only produces for one-sample clients;
* everything is finite.

Files: :meth:`FederatedDataset.save` writes a single ``.npz`` (no pickle; metadata as a
JSON string) atomically (temporary file in the same directory, then ``os.replace``);
:meth:`FederatedDataset.load` treats the file as untrusted: it checks the member names, the
metadata fields (types, ranges, ``n_clients`` against the number of arrays) and every array
header (dtype, dimensions, declared size against the member's stored size) *before* reading any
array data, then re-validates the arrays as above; anything malformed raises a ValueError
naming the file and the field.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from persafl_np.atomic import atomic_write_npz
from persafl_np.data.arguments import check_int

__all__ = ["ClientData", "FederatedDataset", "check_client_labels", "packed_rows", "packed_view"]

#: Version of the ``.npz`` layout written by :meth:`FederatedDataset.save`.
FORMAT_VERSION = 1
_FIELDS = ("X_train", "y_train", "X_test", "y_test")


def _frozen_copy(a: Any, dtype: type, name: str) -> np.ndarray:
    if (isinstance(a, np.ndarray) and not a.flags.writeable and a.flags.c_contiguous
            and a.dtype == dtype):
        return a  # already frozen: shared, not copied (a shared design is stored once)
    arr = np.asarray(a)
    if dtype is np.int64 and arr.dtype.kind not in "iub":
        # Float labels are accepted only when they are exact integers; no silent rounding.
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if dtype is np.float64 and arr.dtype.kind not in "iubf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    out = np.array(arr, dtype=dtype, order="C", copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class ClientData:
    """One client's local data (read-only NumPy arrays).

    Attributes
    ----------
    X_train, y_train: the rows that define f_i (``(m_i, d)`` float64 and ``(m_i,)``).
    X_test, y_test: held-out rows of the same client (``(m_i', d)`` and ``(m_i',)``; may be empty).

    ``y`` is kept in the dtype it was given (integers stay integers, floats stay floats);
    :class:`FederatedDataset` then fixes it to int64 (classification) or float64 (regression).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            X = np.asarray(getattr(self, f"X_{split}"))
            y = np.asarray(getattr(self, f"y_{split}"))
            if X.ndim != 2:
                raise ValueError(f"X_{split} must be 2-D (m, d), got shape {X.shape}")
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"y_{split} must be 1-D with one entry per row of X_{split} ({X.shape[0]}), "
                    f"got shape {y.shape}"
                )
            ydtype = np.int64 if y.dtype.kind in "iub" else np.float64
            object.__setattr__(self, f"X_{split}", _frozen_copy(X, np.float64, f"X_{split}"))
            object.__setattr__(self, f"y_{split}", _frozen_copy(y, ydtype, f"y_{split}"))
        if self.X_train.shape[0] < 1:
            raise ValueError("X_train must have at least one row (f_i needs data)")
        if self.X_train.shape[1] < 1:
            raise ValueError(
                f"X_train must have at least one feature, got shape {self.X_train.shape}"
            )
        if self.X_test.shape[1] != self.X_train.shape[1]:
            raise ValueError(
                f"X_test must have {self.X_train.shape[1]} columns like X_train, "
                f"got shape {self.X_test.shape}"
            )
        for name in _FIELDS:
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"{name} contains NaN or Inf")

    # Arrays make the generated __eq__ ambiguous; equality here is exact (dtype, shape, values).
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ClientData):
            return NotImplemented
        return all(
            a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
            for a, b in ((getattr(self, f), getattr(other, f)) for f in _FIELDS)
        )

    @property
    def n_train(self) -> int:
        """m_i, the number of training rows."""
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test rows (possibly 0)."""
        return int(self.X_test.shape[0])


@dataclass(frozen=True, eq=False)
class FederatedDataset:
    """n clients' data sets with a shared feature space.

    Attributes
    ----------
    clients: one :class:`ClientData` per client i = 0..n-1.
    n_features: d, the number of columns of every ``X``.
    n_classes: C ≥ 2 for classification (labels ``0..C-1``), ``None`` for regression.
    name: a short human-readable description (recorded in saved files and reports).
    """

    clients: tuple[ClientData, ...]
    n_features: int
    n_classes: int | None
    name: str

    def __post_init__(self) -> None:
        clients = tuple(self.clients)
        if len(clients) < 1:
            raise ValueError("clients must hold at least one ClientData, got 0")
        for i, c in enumerate(clients):
            if not isinstance(c, ClientData):
                raise ValueError(f"clients[{i}] must be a ClientData, got {type(c).__name__}")
        object.__setattr__(self, "clients", clients)
        d = check_int(self.n_features, "n_features", 1)
        object.__setattr__(self, "n_features", d)
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a str, got {type(self.name).__name__}")
        for i, c in enumerate(clients):
            if c.X_train.shape[1] != d:
                raise ValueError(
                    f"clients[{i}].X_train has {c.X_train.shape[1]} features, n_features is {d}"
                )
        if self.n_classes is None:
            object.__setattr__(
                self,
                "clients",
                tuple(_with_label_dtype(c, np.float64, i) for i, c in enumerate(clients)),
            )
            return
        C = check_int(self.n_classes, "n_classes (an int, or None for regression)", 2)
        object.__setattr__(self, "n_classes", C)
        checked = []
        for i, c in enumerate(clients):
            c = _with_label_dtype(c, np.int64, i)
            for split in ("y_train", "y_test"):
                y = getattr(c, split)
                if y.size and (y.min() < 0 or y.max() >= C):
                    raise ValueError(
                        f"clients[{i}].{split} labels must lie in 0..{C - 1}, "
                        f"got range {y.min()}..{y.max()}"
                    )
            checked.append(c)
        object.__setattr__(self, "clients", tuple(checked))

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        """Exact equality: same metadata and bit-identical client arrays."""
        if not isinstance(other, FederatedDataset):
            return NotImplemented
        return (
            (self.n_features, self.n_classes, self.name, self.n_clients)
            == (other.n_features, other.n_classes, other.name, other.n_clients)
            and all(a == b for a, b in zip(self.clients, other.clients, strict=True))
        )

    @property
    def n_clients(self) -> int:
        """n, the number of clients."""
        return len(self.clients)

    @property
    def train_sizes(self) -> np.ndarray:
        """(m_0, …, m_{n-1}), the number of training rows per client (int64)."""
        return np.array([c.n_train for c in self.clients], dtype=np.int64)

    @property
    def test_sizes(self) -> np.ndarray:
        """Number of test rows per client (int64)."""
        return np.array([c.n_test for c in self.clients], dtype=np.int64)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the data set to ``path`` as one ``.npz`` file, atomically; return the path.

        The file is written to a temporary name in the destination directory and then
        renamed over ``path``, so a reader never sees a half-written file. ``path`` is used
        verbatim (NumPy's automatic ``.npz`` suffix is not added).
        """
        path = Path(path)
        meta = {
            "format": "persafl_np.FederatedDataset",
            "version": FORMAT_VERSION,
            "n_clients": self.n_clients,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "name": self.name,
        }
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, sort_keys=True))}
        for i, c in enumerate(self.clients):
            for field in _FIELDS:
                arrays[f"client{i}_{field}"] = getattr(c, field)
        # Every array is numeric or a str scalar, so nothing is pickled; load() then
        # enforces allow_pickle=False. (savez's own allow_pickle needs NumPy >= 2.1.)
        atomic_write_npz(path, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FederatedDataset:
        """Read a file written by :meth:`save` (``allow_pickle=False``) and validate it
        (module docstring: every field is checked before any array is read)."""
        p = Path(path)
        where = f"dataset file {str(p)!r}"
        headers = _npz_headers(p, where)
        if "meta" not in headers:
            raise ValueError(f"{where} is not a saved FederatedDataset (no 'meta')")
        # zipfile accepts bytes before the archive (self-extracting zips), np.load does not: it
        # would read such a file as a pickle and refuse it without naming the file.
        with open(p, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                raise ValueError(f"{where}: not a readable .npz (no zip signature at byte 0)")
        try:
            with np.load(p, allow_pickle=False) as f:
                meta = _check_meta(f["meta"] if headers["meta"][1].kind == "U" else None,
                                   len(headers), where)
                n = meta["n_clients"]
                expected = {"meta"} | {f"client{i}_{fld}" for i in range(n) for fld in _FIELDS}
                missing = sorted(expected - set(headers))
                if missing:
                    raise ValueError(f"{where} is missing arrays {missing[:4]}")
                extra = sorted(set(headers) - expected)
                if extra:
                    raise ValueError(f"{where} has unexpected arrays {extra[:4]}")
                for key in sorted(expected - {"meta"}):
                    shape, dt = headers[key]
                    want = 2 if key.endswith(("X_train", "X_test")) else 1
                    if len(shape) != want or dt.kind not in "biuf":
                        raise ValueError(f"{where}: array {key!r} must be {want}-D numeric, got "
                                         f"shape {shape} dtype {dt}")
                clients = []
                for i in range(n):
                    try:
                        clients.append(ClientData(
                            **{fld: f[f"client{i}_{fld}"] for fld in _FIELDS}))
                    except ValueError as exc:
                        raise ValueError(f"{where}: client {i}: {exc}") from None
        except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
            # zipfile raises NotImplementedError (unknown compression) and RuntimeError
            # (encrypted member) for damaged flags (fuzz-found)
            raise ValueError(f"{where}: not a readable .npz ({exc})") from None
        try:
            return cls(clients=tuple(clients), n_features=meta["n_features"],
                       n_classes=meta["n_classes"], name=meta["name"])
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


def _npz_headers(p: Path, where: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name → (shape, dtype) of every member of an ``.npz``, from the headers alone; refuses
    pickled (object) members and headers that declare more bytes than the member stores."""
    try:
        zf = zipfile.ZipFile(p)
    except FileNotFoundError:
        raise ValueError(f"{where} does not exist") from None
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(f"{where}: not a readable .npz ({exc})") from None
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                raise ValueError(f"{where}: member {info.filename!r} is not an .npy array")
            key = info.filename[:-4]
            try:
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version in ((2, 0), (3, 0)):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                    offset = fh.tell()
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError,
                    NotImplementedError, RuntimeError) as exc:
                raise ValueError(f"{where}: array {key!r} has a malformed header ({exc})") from None
            if dtype.hasobject:
                raise ValueError(f"{where}: array {key!r} holds Python objects (pickle); refused")
            count = 1
            for k in shape:
                count *= int(k)
            if count * dtype.itemsize > info.file_size - offset:
                raise ValueError(f"{where}: array {key!r} declares shape {shape} of {dtype} "
                                 f"({count * dtype.itemsize} bytes) but stores only "
                                 f"{info.file_size - offset} bytes")
            out[key] = (tuple(int(k) for k in shape), dtype)
    return out


def _check_meta(raw: Any, n_arrays: int, where: str) -> dict[str, Any]:
    """Validate the JSON metadata of a saved data set (every field, before any allocation)."""
    if raw is None or raw.shape != ():
        raise ValueError(f"{where}: field 'meta' must be a JSON string scalar")
    try:
        meta = json.loads(str(raw[()]))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{where}: field 'meta' is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: field 'meta' must be a JSON object")
    if meta.get("format") != "persafl_np.FederatedDataset":
        raise ValueError(f"{where} is not a saved FederatedDataset (field 'meta.format')")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{where} has format version {meta.get('version')!r} (field 'meta.version'); "
            f"this persafl_np reads version {FORMAT_VERSION}"
        )
    n = meta.get("n_clients")
    most = -(-(n_arrays - 1) // len(_FIELDS))  # ceil: a short file is then "missing arrays"
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= most:
        raise ValueError(f"{where}: field 'meta.n_clients' must be an integer in 1..{most} "
                         f"(the file holds {n_arrays - 1} client arrays), got {n!r}")
    d = meta.get("n_features")
    if isinstance(d, bool) or not isinstance(d, int) or d < 1:
        raise ValueError(f"{where}: field 'meta.n_features' must be an integer >= 1, got {d!r}")
    c = meta.get("n_classes")
    if c is not None and (isinstance(c, bool) or not isinstance(c, int) or c < 2):
        raise ValueError(f"{where}: field 'meta.n_classes' must be null or an integer >= 2, "
                         f"got {c!r}")
    if not isinstance(meta.get("name"), str):
        raise ValueError(f"{where}: field 'meta.name' must be a string")
    return meta


def check_client_labels(clients: Any, n_classes: int | None) -> None:
    """For a classifier (``n_classes`` = C), every client's train and test labels must be
    integers in 0..C−1 (O(m) per client); ValueError naming the client and the split."""
    if n_classes is None:
        return
    from persafl_np.backend import array_namespace

    for k, c in enumerate(clients):
        for split, y in (("y_train", c[1]), ("y_test", c[3])):
            if int(y.shape[0]) == 0:
                continue
            xp = array_namespace(y)
            if not xp.isdtype(y.dtype, "integral"):
                if not xp.isdtype(y.dtype, "real floating") or not bool(
                        xp.all(y == xp.round(y))):
                    raise ValueError(f"client {k}: {split} must hold integer class labels "
                                     f"0..{n_classes - 1}, got dtype {y.dtype} with "
                                     "non-integer values")
            lo, hi = float(xp.min(y)), float(xp.max(y))
            if lo < 0 or hi > n_classes - 1:
                raise ValueError(f"client {k}: {split} labels must lie in 0..{n_classes - 1} "
                                 f"(n_classes={n_classes}), got range {lo:g}..{hi:g}")


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    out, step = [], itemsize
    for k in reversed(shape):
        out.append(step)
        step *= max(int(k), 1)
    return tuple(reversed(out))


def _consecutive_view(arrays: list) -> np.ndarray | None:
    """One read-only (N, ...) view over ``arrays`` when they are C-contiguous NumPy arrays of
    one dtype and trailing shape, views of the same owner, lying back to back in memory in
    list order (clients sliced out of one array); else None. Empty arrays are skipped."""
    full = [a for a in arrays if a.size]
    if not full:
        return None
    a0 = full[0]
    base, dt, tail = a0.base, a0.dtype, a0.shape[1:]
    if base is None and len(full) > 1:
        return None
    ptr = a0.__array_interface__["data"][0]
    for a in full:
        if (a.dtype != dt or a.shape[1:] != tail or not a.flags.c_contiguous
                or (len(full) > 1 and a.base is not base)
                or a.__array_interface__["data"][0] != ptr):
            return None
        ptr += a.nbytes
    shape = (sum(int(a.shape[0]) for a in full), *tail)
    # the range [ptr_0, ptr_0 + total) is exactly the union of the arrays' own ranges
    v = np.lib.stride_tricks.as_strided(a0, shape=shape, strides=_c_strides(shape, dt.itemsize))
    v.setflags(write=False)
    return v


def packed_view(arrays: list) -> np.ndarray | None:
    """The read-only (N, ...) view over ``arrays`` when they are consecutive rows of one
    C-contiguous NumPy array (what :func:`packed_rows` returns without copying), else None."""
    if not all(type(a) is np.ndarray for a in arrays):
        return None
    v = _consecutive_view(arrays)
    if v is None or v.shape[0] != sum(int(a.shape[0]) for a in arrays):
        return None
    return v


def packed_rows(arrays: list) -> Any:
    """The clients' arrays (one namespace, dtype and trailing shape) stacked along axis 0, in
    order: the *concatenated layout* of the cohort engine (rows of client c at
    ``off_c .. off_c + m_c − 1``).

    When they already are consecutive rows of one C-contiguous NumPy array (clients sliced out
    of one array, or a data set stored packed) the result is a read-only view — the data is
    held once —, else one concatenated copy."""
    if all(type(a) is np.ndarray for a in arrays):
        v = packed_view(arrays)
        return np.concatenate(arrays, axis=0) if v is None else v
    from persafl_np.backend import array_namespace

    return array_namespace(*arrays[:1]).concat(list(arrays), axis=0)


def _with_label_dtype(c: ClientData, dtype: type, i: int) -> ClientData:
    """``c`` with both label arrays in ``dtype`` (int64 labels or float64 targets)."""
    if c.y_train.dtype == dtype and c.y_test.dtype == dtype:
        return c
    return ClientData(
        c.X_train,
        _frozen_copy(c.y_train, dtype, f"clients[{i}].y_train"),
        c.X_test,
        _frozen_copy(c.y_test, dtype, f"clients[{i}].y_test"),
    )
