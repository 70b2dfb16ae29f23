"""Atomic file writes: a temporary file in the target's directory, fsync, then ``os.replace``.

A reader (or a run killed mid-write) therefore sees either the old file or the new one,
never a torn one. Files get mode 0644 (``mkstemp`` would leave 0600), so figures and
results written by one user stay readable by others.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_write_npz", "atomic_write_text"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> Path:
    """Write arrays as one ``.npz`` atomically.

    Callers pass numeric arrays or string scalars only, so nothing is pickled; readers load
    with ``allow_pickle=False``.
    """
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
