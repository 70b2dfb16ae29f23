"""Array backends: NumPy (default), CuPy (optional GPU), any array-API namespace.

Every numerical function in the package takes its namespace from its inputs,
``xp = array_namespace(w, X)``, and then only calls functions of the array API
standard on ``xp``. The same code therefore runs on NumPy, on CuPy when it is
installed, and on ``array_api_strict`` (the test suite's stand-in that refuses
anything outside the standard, which is how we prove no NumPy-only call slipped in).

Hot paths (the models' batched methods, the engine's local steps) call :func:`fast_namespace`
instead: when every argument is a plain ``numpy.ndarray`` it returns the cached NumPy namespace
after a few ``type`` comparisons (≈0.1 µs, against ≈2–7 µs for a full ``array_namespace``
look-up), and otherwise falls back to :func:`array_namespace`.

Host-side work that is not on the hot path (constants such as the largest
eigenvalue of XᵀX/m, random number generation, file I/O) converts to NumPy with
:func:`to_numpy` first.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import array_api_compat.numpy as _compat_numpy
import numpy as np
from array_api_compat import array_namespace as _array_namespace
from array_api_compat import is_cupy_array, is_numpy_array

__all__ = [
    "BACKENDS",
    "NUMPY_NAMESPACE",
    "array_namespace",
    "fast_namespace",
    "is_integer_dtype",
    "get_backend",
    "take_rows",
    "to_device_like",
    "to_numpy",
]

#: Names accepted by :func:`get_backend`.
BACKENDS = ("numpy", "cupy", "array_api_strict")


def array_namespace(*arrays: Any) -> ModuleType:
    """Return the (array-API compatible) namespace shared by ``arrays``.

    Python scalars and ``None`` are ignored. Raises ``TypeError`` when the
    arrays come from different libraries (for example a CuPy ``w`` with a NumPy
    ``X``), instead of letting one library silently convert the other.
    """
    arrs = [a for a in arrays if a is not None and not isinstance(a, (int, float, bool))]
    return _array_namespace(*arrs)


#: The array-API namespace of NumPy arrays (what ``array_namespace(numpy_array)`` returns).
NUMPY_NAMESPACE: ModuleType = _compat_numpy


def fast_namespace(*arrays: Any) -> ModuleType:
    """:func:`array_namespace` with a fast path: :data:`NUMPY_NAMESPACE` when every non-``None``
    argument is exactly a ``numpy.ndarray`` (subclasses and scalars take the full look-up)."""
    for a in arrays:
        if a is not None and type(a) is not np.ndarray:
            return array_namespace(*arrays)
    return _compat_numpy


def is_integer_dtype(xp: ModuleType, a: Any) -> bool:
    """True when ``a`` holds integers or booleans (any namespace; O(1), looks at the dtype only)."""
    if type(a) is np.ndarray:
        return a.dtype.kind in "iub"
    return bool(xp.isdtype(a.dtype, ("integral", "bool")))


def get_backend(name: str = "numpy") -> ModuleType:
    """Return the namespace module for a backend name in :data:`BACKENDS`.

    ``"cupy"`` is imported only when asked for; if CuPy is not installed this
    raises ``ImportError`` saying how to install it (the ``gpu`` extra).
    """
    if name == "numpy":
        return _array_namespace(np.empty(0))
    if name == "cupy":
        try:
            cp = importlib.import_module("cupy")
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise ImportError(
                "backend='cupy' needs CuPy and a CUDA GPU; install it with "
                "`pip install 'persafl_np[gpu]'` (or a cupy-cudaXXx wheel matching your CUDA), "
                "or use backend='numpy'."
            ) from exc
        return _array_namespace(cp.empty(0))  # pragma: no cover
    if name == "array_api_strict":
        try:
            return importlib.import_module("array_api_strict")
        except ImportError as exc:
            raise ImportError(
                "backend='array_api_strict' needs the array-api-strict package: "
                "`pip install 'persafl_np[test]'`."
            ) from exc
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


def to_numpy(a: Any) -> np.ndarray:
    """Copy (or view) any supported array as a NumPy array on the host."""
    if is_numpy_array(a):
        return a
    if is_cupy_array(a):  # pragma: no cover - needs a GPU
        return a.get()
    # array_api_strict and other DLPack-capable arrays.
    try:
        return np.from_dlpack(a)
    except (TypeError, AttributeError, RuntimeError, BufferError):
        return np.asarray(a)


def to_device_like(a: Any, like: Any) -> Any:
    """Return ``a`` (NumPy or scalar) as an array of the same namespace as ``like``."""
    if is_numpy_array(like):
        return np.asarray(a)
    return array_namespace(like).asarray(np.asarray(a))


def take_rows(a: Any, idx: Any) -> Any:
    """Rows ``a[idx]`` of a 1-D or 2-D array, for an integer index array or a slice.

    ``array_api_strict`` forbids mixing integer arrays with slices, so mini-batches
    inside the package go through ``xp.take``.
    """
    if isinstance(idx, slice):
        return a[idx, ...]
    xp = array_namespace(a)
    if not hasattr(idx, "__array_namespace__") or array_namespace(idx) is not xp:
        idx = xp.asarray(np.asarray(idx))
    return xp.take(a, idx, axis=0)
